"""Tax features: filing punctuality, arrears, penalties, evasion, tax credit level, tax paid and its trend
(the latest quarter against the past, quarters with nothing paid: ``features.trajectory``)."""
from __future__ import annotations

import numpy as np

from creditgrade.features import trajectory
from creditgrade.features.snapshot import Snapshot

CREDIT_LEVELS = ("A", "B", "M", "C", "D")  # best to worst: feature value 1..5


def build(s: Snapshot) -> dict[str, np.ndarray]:
    out = s.source_summary("tax", "tax")
    filings = s.kinds("tax.filing") & s.window(12)
    out["tax_filings_late_12m"] = s.count(filings & (s.value > 0))
    out["tax_filing_days_late_max_12m"] = s.maximum(filings, s.value)
    arrears = s.kinds("tax.arrears")
    out["tax_arrears_12m"] = s.count(arrears & s.window(12))
    out["tax_arrears_amount_12m"] = s.total(arrears & s.window(12), s.amount)
    unpaid = arrears & s.ongoing()
    out["tax_arrears_open"] = s.count(unpaid)
    out["tax_arrears_open_amount"] = s.total(unpaid, s.amount)
    out["tax_arrears_open_age_months"] = s.maximum(unpaid, s.age_months)
    out["tax_penalties_36m"] = s.count(s.kinds("tax.penalty") & s.window(36))
    out["tax_evasion_cases"] = s.count(s.kinds("tax.evasion"))
    levels = s.kinds("tax.credit_level")
    out["tax_credit_level"] = s.latest(levels, s.category_rank(CREDIT_LEVELS))
    out["tax_credit_level_record"] = s.at(s.pick(levels), s.record_id)  # policy input: the level's evidence
    paid = s.kinds("tax.payment")
    out["tax_paid_12m"] = s.total(paid & s.window(12), s.amount)
    out["tax_paid_yoy"] = s.change(paid, s.amount, s.window(12), s.window(12, offset=12))
    out["tax_paid_vs_3y"] = s.change(paid, s.amount, s.window(6), s.window(36))
    out.update(trajectory.tax(s))
    return out
