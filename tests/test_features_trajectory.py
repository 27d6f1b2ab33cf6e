"""Trajectory features on hand-made records: the latest quarter's tax and month's headcount against the
subject's own past, tax per insured employee, and adverse records weighted by recency (half every 12 months)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgrade.features import trajectory
from creditgrade.features.frames import normalise_records
from creditgrade.features.snapshot import Snapshot

AS_OF = pd.Timestamp("2024-12-31")


def _record(rid, kind, start, amount=None, value=None, severity=None, account=None, end=None):
    start = pd.Timestamp(start)
    return {"record_id": rid, "subject_key": "A", "segment": "sme", "source": kind.split(".")[0], "kind": kind,
            "start_date": start, "end_date": pd.Timestamp(end) if end else start + pd.offsets.MonthEnd(0),
            "reported_date": start + pd.Timedelta(days=5), "repaired_date": pd.NaT, "severity": severity,
            "amount": amount, "value": value, "category": None, "account": account}


@pytest.fixture
def snap() -> Snapshot:
    quarters = ["2023-07-01", "2023-10-01", "2024-01-01", "2024-04-01", "2024-07-01"]
    rows = [_record(i, "tax.payment", q, amount=a) for i, (q, a) in enumerate(zip(quarters, [400, 400, 100, 0, 300]))]
    months = pd.date_range("2024-01-01", "2024-11-01", freq="MS")
    heads = [20, 20, 20, 20, 20, 20, 20, 20, 16, 12, 10]
    rows += [_record(100 + i, "labor.social_insurance", m, value=h) for i, (m, h) in enumerate(zip(months, heads))]
    rows += [_record(200, "tax.arrears", "2024-12-01", amount=50, severity="general"),  # a month old, weight 2
             _record(201, "tax.penalty", "2023-12-01", severity="minor"),  # a year old: half of 1
             _record(202, "labor.dispute", "2022-12-01", severity="serious"),  # two years old: a quarter of 4
             _record(203, "quality.complaint", "2024-12-01", severity="general"),
             _record(204, "quality.sanction", "2023-12-01", severity="serious")]
    rows += [_record(300 + i, "finance.loan_status", m, amount=1e5, value=v, account="L1")
             for i, (m, v) in enumerate(zip(["2023-12-01", "2024-06-01", "2024-11-01"], [0, 15, 45]))]
    records = normalise_records(pd.DataFrame(rows))
    return Snapshot(records, pd.Index(["A", "B"]), AS_OF)


def test_tax_trajectory(snap):
    out = trajectory.tax(snap)
    # the latest quarter paid 300; the last 12 months' quarters (2024) averaged (100 + 0 + 300) / 3
    assert out["tax_paid_latest_vs_12m"][0] == pytest.approx(np.log1p(300) - np.log1p(400 / 3))
    assert out["tax_paid_latest_vs_prior_year"][0] == pytest.approx(np.log1p(300) - np.log1p(400))
    assert out["tax_zero_quarters_12m"].tolist() == [1.0, 0.0]
    month = (AS_OF - pd.Timestamp("2024-12-01")).days / 30.4375
    year = (AS_OF - pd.Timestamp("2023-12-01")).days / 30.4375
    expected = 2 * 2 ** (-month / 12) + 1 * 2 ** (-year / 12)
    assert out["tax_negatives_recency"][0] == pytest.approx(expected)
    assert np.isnan(out["tax_paid_latest_vs_12m"][1]) and out["tax_negatives_recency"][1] == 0


def test_labor_trajectory(snap):
    out = trajectory.labor(snap)
    # latest month 10 insured; 6 months to 3 months back (April-September) 20, 20, 20, 20, 20, 16; the last
    # 12 months' mean of the 11 reported
    assert out["labor_headcount_latest_vs_6m"][0] == pytest.approx(np.log1p(10) - np.log1p(116 / 6))
    assert out["labor_headcount_latest_vs_12m"][0] == pytest.approx(np.log1p(10) - np.log1p(198 / 11))
    assert out["labor_tax_per_head_log"][0] == pytest.approx(np.log1p((100 + 0 + 300) / 3 / 10))
    two_years = (AS_OF - pd.Timestamp("2022-12-01")).days / 30.4375
    assert out["labor_negatives_recency"][0] == pytest.approx(4 * 2 ** (-two_years / 12))
    assert np.isnan(out["labor_tax_per_head_log"][1])


def test_finance_trajectory(snap):
    out = trajectory.finance(snap)
    ages = [(AS_OF - pd.Timestamp(d)).days / 30.4375 for d in ("2024-06-01", "2024-11-01")]
    assert out["fin_past_due_recency"][0] == pytest.approx(sum(2 ** (-a / 12) for a in ages))
    assert out["fin_past_due_recency"][1] == 0


def test_quality_trajectory(snap):
    out = trajectory.quality(snap)
    month = (AS_OF - pd.Timestamp("2024-12-01")).days / 30.4375
    year = (AS_OF - pd.Timestamp("2023-12-01")).days / 30.4375
    assert out["quality_complaints_recency"][0] == pytest.approx(2 * 2 ** (-month / 12))
    assert out["quality_negatives_recency"][0] == pytest.approx(2 * 2 ** (-month / 12) + 4 * 2 ** (-year / 12))
    assert out["quality_complaints_recency"][1] == 0 and out["quality_negatives_recency"][1] == 0
