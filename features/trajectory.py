"""Trajectory features: where a subject's periodic records are heading over the last quarters, and its
adverse records weighted by recency.

Tax paid each quarter and insured headcount each month follow the subject's current condition; their
latest level against the subject's own past (and tax paid per insured employee, which the firm's size
mostly cancels) tells a deterioration the 12-month totals blur. Adverse records count with a weight
halving every ``HALF_LIFE_MONTHS``: a recent record weighs more than an old one of the same severity.
A practitioner's conduct (complaints, sanctions) is read the same way: out of time on generate(5000
practitioners, seed 7), the EBM's share of the oracle's lift went from 69.8 % to 71.6 % with the two
recency-weighted quality counts (tax paid against the profession's median at the date: 68.5 %, not kept).
"""
from __future__ import annotations

import numpy as np

from creditgrade.features.snapshot import Snapshot

HALF_LIFE_MONTHS = 12.0


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log1p(a) - log1p(b)``; NaN where either is missing."""
    return np.log1p(a) - np.log1p(b)


def _decay(s: Snapshot) -> np.ndarray:
    """Each record's weight by age: 1 when it starts, halving every ``HALF_LIFE_MONTHS`` (once per snapshot)."""
    return s.kept("decay", lambda: np.exp2(-np.maximum(s.age_months, 0.0) / HALF_LIFE_MONTHS))


def recency_weighted(s: Snapshot, mask: np.ndarray) -> np.ndarray:
    """Severity-weighted count of ``mask``'s records (weight 1 without a severity), weighted by :func:`_decay`."""
    return s.total(mask, np.where(s.weight > 0, s.weight, 1.0) * _decay(s))


def tax(s: Snapshot) -> dict[str, np.ndarray]:
    paid = s.kinds("tax.payment")
    latest = s.latest(paid & s.window(12), s.amount)
    return {
        "tax_paid_latest_vs_12m": _log_ratio(latest, s.mean(paid & s.window(12), s.amount)),
        "tax_paid_latest_vs_prior_year": _log_ratio(latest, s.mean(paid & s.window(12, offset=12), s.amount)),
        "tax_zero_quarters_12m": s.count(paid & s.window(12) & (s.amount <= 0)),
        "tax_negatives_recency": recency_weighted(s, s.negative("tax")),
    }


def labor(s: Snapshot) -> dict[str, np.ndarray]:
    insured = s.kinds("labor.social_insurance")
    latest = s.latest(insured & s.window(3), s.value)
    paid = s.kinds("tax.payment") & s.window(12)
    tax_paid = s.mean(paid, s.amount)
    per_head = np.divide(tax_paid, latest, out=np.full(s.n, np.nan), where=latest > 0)
    return {
        "labor_headcount_latest_vs_6m": _log_ratio(latest, s.mean(insured & s.window(6, offset=3), s.value)),
        "labor_headcount_latest_vs_12m": _log_ratio(latest, s.mean(insured & s.window(12), s.value)),
        "labor_tax_per_head_log": np.log1p(per_head),
        "labor_negatives_recency": recency_weighted(s, s.negative("labor")),
    }


def finance(s: Snapshot) -> dict[str, np.ndarray]:
    status = s.kinds("finance.loan_status")
    worst_before = s.maximum(status & s.window(12, offset=3), s.value)
    return {
        "fin_past_due_recency": s.total(status & (s.value > 0), _decay(s)),
        "fin_dpd_worst_3m_vs_12m": s.maximum(status & s.window(3), s.value) - worst_before,
        "fin_negatives_recency": recency_weighted(s, s.negative("finance")),
    }



def quality(s: Snapshot) -> dict[str, np.ndarray]:
    return {
        "quality_negatives_recency": recency_weighted(s, s.negative("quality")),
        "quality_complaints_recency": recency_weighted(s, s.kinds("quality.complaint")),
    }
