"""Finance features: loans, utilisation, days past due (current, recent, worst), restructurings,
guarantees, court enforcement."""
from __future__ import annotations

import numpy as np

from features.snapshot import Snapshot


def build(s: Snapshot) -> dict[str, np.ndarray]:
    out = s.source_summary("finance", "fin")
    status = s.kinds("finance.loan_status")
    current = s.latest_per_account(status & s.window(3))  # an account silent for 3 months is closed
    balance = s.total(current, s.amount)
    loans = s.kinds("finance.loan") & s.ongoing()  # end_date of a loan = maturity
    limit = s.total(loans, s.amount)
    out["fin_loans_open"] = s.count(loans)
    out["fin_credit_limit"] = limit
    out["fin_balance"] = balance
    out["fin_utilisation"] = np.divide(balance, limit, out=np.full(s.n, np.nan), where=limit > 0)
    out["fin_dpd_current"] = s.maximum(current, s.value)
    out["fin_dpd_worst_3m"] = s.maximum(status & s.window(3), s.value)
    out["fin_dpd_worst_12m"] = s.maximum(status & s.window(12), s.value)
    out["fin_months_past_due_12m"] = s.count(status & s.window(12) & (s.value > 0))
    out["fin_overdue_open"] = s.count(s.kinds("finance.overdue") & s.ongoing())
    out["fin_restructurings_36m"] = s.count(s.kinds("finance.restructuring") & s.window(36))
    out["fin_guarantees_amount"] = s.total(s.kinds("finance.guarantee") & s.ongoing(), s.amount)
    enforcements = s.kinds("finance.court_enforcement")
    out["fin_court_enforcements"] = s.count(enforcements)
    out["fin_court_enforcement_open_amount"] = s.total(enforcements & s.ongoing(), s.amount)
    return out
