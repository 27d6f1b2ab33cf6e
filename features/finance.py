"""Finance features: loans, utilisation, days past due (current, recent, worst), restructurings,
guarantees, court enforcement, months past due weighted by recency (``features.trajectory``); and the policy
inputs of ``models/grades.toml`` (``model = false`` in the catalogue): the records that show days past due, an
open court enforcement, or an ongoing default record (``default = true`` in ``features/sources.toml``:
write-off, bankruptcy), with the dates they began."""
from __future__ import annotations

from functools import cache

import numpy as np

from creditgrade.features import trajectory
from creditgrade.features.schemas import kinds
from creditgrade.features.snapshot import Snapshot


@cache
def default_kinds() -> tuple[str, ...]:
    """Finance kinds that put a subject in default while ongoing (``default = true`` in the contract)."""
    return tuple(k for k, v in kinds().items() if v.get("default") and v["source"] == "finance")


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
    worst = s.pick(current, s.value)  # the account now furthest past due (latest status on ties)
    out["fin_dpd_current_record"] = s.at(worst, s.record_id)
    past_due_since = s.at(worst, s.start_day - s.value)  # the status date less its days past due
    out["fin_past_due_since"] = np.where(out["fin_dpd_current"] > 0, past_due_since, np.nan)
    out["fin_dpd_worst_3m"] = s.maximum(status & s.window(3), s.value)
    out["fin_dpd_worst_12m"] = s.maximum(status & s.window(12), s.value)
    out["fin_months_past_due_12m"] = s.count(status & s.window(12) & (s.value > 0))
    out["fin_overdue_open"] = s.count(s.kinds("finance.overdue") & s.ongoing())
    out["fin_restructurings_36m"] = s.count(s.kinds("finance.restructuring") & s.window(36))
    out["fin_guarantees_amount"] = s.total(s.kinds("finance.guarantee") & s.ongoing(), s.amount)
    enforcements = s.kinds("finance.court_enforcement")
    out["fin_court_enforcements"] = s.count(enforcements)
    out["fin_court_enforcement_open_amount"] = s.total(enforcements & s.ongoing(), s.amount)
    out["fin_court_enforcements_open"] = s.count(enforcements & s.ongoing())
    out["fin_court_enforcement_record"] = s.at(s.pick(enforcements & s.ongoing()), s.record_id)
    for kind in default_kinds():
        name, ongoing = f"fin_{kind.split('.', 1)[1]}", s.kinds(kind) & s.ongoing()
        first = s.pick(ongoing, -s.start_day)  # the earliest: the subject is in default since it began
        out[f"{name}_open"] = s.count(ongoing)
        out[f"{name}_record"] = s.at(first, s.record_id)
        out[f"{name}_since"] = s.at(first, s.start_day)
    out.update(trajectory.finance(s))
    return out
