"""Early warnings: a hand-made deterioration raises warnings with their evidence, a re-scan adds nothing,
acknowledgement sticks; trigger boundaries; the backtest's figures are proper shares."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from creditgrade.features.build import build_features
from creditgrade.features.frames import Frames
from creditgrade.features.store import Store, records
from creditgrade.serving.tables import grades, warnings
from creditgrade.models.registry import load_champion
from creditgrade.models.warnings import LEVELS, Moment, Trigger, fire
from creditgrade.serving.warnings import acknowledge, list_warnings, raise_on_arrival, scan
from creditgrade.training.backtest import backtest, figures, measure, naive
from tests.helpers import database, point_at

AS_OF = dt.date(2024, 9, 30)


@pytest.fixture(scope="module")
def copied(trained, tmp_path_factory):
    """A private copy of the trained store (the scan writes), with the trained home's registry."""
    mp = pytest.MonkeyPatch()
    store = Store(point_at(trained, mp, database(tmp_path_factory.mktemp("warnings"), trained.template)))
    yield store, load_champion("sme")
    store.dispose()
    mp.undo()


def _deteriorate(store: Store, champion) -> str:
    """Give the SME the champion finds riskiest at AS_OF (not in default) a best previous grade and, in the 90
    days before AS_OF, a loan rolling to 85 days past due, a court enforcement and tax arrears; return its key.
    (The model, not this test, decides PDs: a roll-rate shock that is rare in training moves it little.)"""
    X = build_features(store, "sme", AS_OF)
    graded = champion.model.grade(X)
    live = ~champion.model.scale.in_default(X)
    key = graded["pd"][live].idxmax()
    rec = dict(subject_key=key, segment="sme", end_date=None, amount=None, value=None, category=None,
               account=None, repaired_date=None, batch_id=None)
    rows = [
        dict(rec, source="finance", kind="finance.loan", start_date=dt.date(2023, 1, 5),
             reported_date=dt.date(2023, 1, 10), amount=500000.0, account="T-1", doc_ref="TEST-LOAN-1"),
        *(dict(rec, source="finance", kind="finance.loan_status", start_date=dt.date(2024, month, 1),
               reported_date=dt.date(2024, month, 10), amount=480000.0, value=float(dpd), account="T-1",
               doc_ref=f"TEST-STATUS-{month}")  # the loan rolls 30 -> 60 -> 85 days past due
          for month, dpd in ((7, 25), (8, 55), (9, 85))),
        dict(rec, source="finance", kind="finance.overdue", start_date=dt.date(2024, 7, 20),
             reported_date=dt.date(2024, 8, 15), value=85.0, severity="serious", account="T-1",
             doc_ref="TEST-OVERDUE-1"),
        dict(rec, source="finance", kind="finance.court_enforcement", start_date=dt.date(2024, 8, 1),
             reported_date=dt.date(2024, 8, 20), amount=200000.0, severity="serious", doc_ref="TEST-COURT-1"),
        dict(rec, source="tax", kind="tax.arrears", start_date=dt.date(2024, 7, 1),
             reported_date=dt.date(2024, 7, 25), amount=90000.0, severity="serious", doc_ref="TEST-ARREARS-1"),
    ]
    with store.engine.begin() as conn:  # as an ingest would: the records and the warnings they raise
        for row in rows:
            row["record_id"] = conn.execute(insert(records).values(row)).inserted_primary_key[0]
        raise_on_arrival(conn, rows)
        conn.execute(insert(grades).values(
            subject_key=key, segment="sme", as_of=dt.date(2024, 6, 30), graded_at=dt.datetime.now(dt.timezone.utc),
            pd=0.0005, score=800.0, grade="AAA", model_grade="AAA", model_name="creditgrade-sme",
            model_version="0", origin="api"))
    return key


def _count(store: Store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_scan_warns_with_evidence_once_and_acknowledges(copied):
    store, champion = copied
    key = _deteriorate(store, champion)
    report = scan(store, "sme", AS_OF, champion)
    assert report.grades_stored == report.subjects > 0
    assert report.warnings_new == sum(report.by_level.values()) > 0  # the trends: PD rise, downgrade
    mine = {w["trigger"]: w for w in list_warnings(store, segment="sme") if w["subject_key"] == key}
    assert {"pd_doubled", "downgrade", "past_due_60", "past_due_30", "court_enforcement", "tax_arrears"} <= set(mine)
    overdue = mine["past_due_60"]
    assert overdue["level"] == "orange" and overdue["display_id"] == key
    assert overdue["evidence"]["origin"] == "arrival" and overdue["as_of"] == dt.date(2024, 9, 10)
    assert [r["doc_ref"] for r in overdue["evidence"]["records"]] == ["TEST-STATUS-9"]
    rise = mine["pd_doubled"]["evidence"]
    assert rise["previous"]["grade"] == "AAA" and rise["previous"]["origin"] == "api"
    assert rise["current"]["pd"] >= 0.04 and rise["values"]["pd_ratio"] >= 2
    assert rise["current"]["grade_id"] is not None and rise["current"]["model_version"] == champion.version
    assert mine["downgrade"]["evidence"]["values"]["notches"] >= 2

    n_grades, n_warnings = _count(store, grades), _count(store, warnings)
    again = scan(store, "sme", AS_OF, champion)
    assert (again.grades_stored, again.warnings_new) == (0, 0)
    assert (_count(store, grades), _count(store, warnings)) == (n_grades, n_warnings)

    wid = overdue["warning_id"]
    done = acknowledge(store, wid, "officer-1")
    assert done["acknowledged_by"] == "officer-1" and done["acknowledged_at"] is not None
    assert acknowledge(store, wid, "officer-2")["acknowledged_by"] == "officer-1"
    assert wid not in {w["warning_id"] for w in list_warnings(store, acknowledged=False)}
    assert wid in {w["warning_id"] for w in list_warnings(store, acknowledged=True)}
    assert {w["level"] for w in list_warnings(store, level="orange")} == {"orange"}  # red is the warning model's alone
    assert list_warnings(store, segment="sme", townships=["410122101"]) == []  # SMEs have no township
    assert list_warnings(store, since=AS_OF + dt.timedelta(days=1)) == []


def _moment(now_pd, now_grade, before_pd, before_grade, X=None) -> Moment:
    index = pd.Index([f"s{i}" for i in range(len(now_pd))], name="subject_key")
    X = pd.DataFrame(index=index) if X is None else X.set_axis(index)
    return Moment("household", pd.Timestamp("2024-06-30"), ["AAA", "AA", "A", "NR"], X,
                  pd.DataFrame({"pd": now_pd, "grade": now_grade}, index=index),
                  pd.DataFrame({"pd": before_pd, "grade": before_grade}, index=index), pd.DataFrame())


def test_triggers_fire_at_their_boundaries():
    rise = Trigger("r", "red", "pd_rise", "", "", params={"ratio": 2.0, "min_pd": {"household": 0.04}})
    m = _moment([0.04, 0.06, 0.03, 0.05], ["A"] * 4, [0.02, 0.031, 0.01, np.nan], [None] * 4)
    assert fire(rise, m).tolist() == [True, False, False, False]
    down = Trigger("d", "orange", "downgrade", "", "", params={"notches": 2})
    m = _moment([0.1] * 4, ["A", "NR", "AA", "NR"], [0.1] * 4, ["AAA", "AA", "AAA", None])
    assert fire(down, m).tolist() == [True, True, False, False]
    falling = Trigger("f", "yellow", "feature", "", "", params={"when": [["tax_paid_yoy", "<=", -0.5]]})
    m = _moment([0.1] * 3, ["A"] * 3, [0.1] * 3, ["A"] * 3, pd.DataFrame({"tax_paid_yoy": [-0.5, -0.4, np.nan]}))
    assert fire(falling, m).tolist() == [True, False, False]
    assert not fire(falling, _moment([0.1], ["A"], [0.1], ["A"])).any()  # segment without the feature


def test_backtest_measures_each_period_beside_the_anchor(trained_env):
    store = Store(trained_env.db_url)
    model = load_champion("household").model
    tables = backtest(Frames.from_store(store, "household"), "household", model, log=False)
    store.dispose()
    dev, test = tables["dev"], tables["test"]
    assert dev.attrs["to"] < model.info["test_from"] <= test.attrs["from"]
    for table in (dev, test):
        assert {*LEVELS, "any"} <= set(table.index)
        shares = table[["warned_share", "precision", "recall", "naive_precision", "naive_recall"]].stack().dropna()
        assert ((shares >= 0) & (shares <= 1)).all()
        assert table.loc["any", "recall"] >= table.loc[list(LEVELS), "recall"].max()
        assert (table["recall_gain"] == table["recall"] - table["naive_recall"]).all()
        lead = table[["lead_q25", "lead_median", "lead_q75"]].dropna()
        assert ((lead["lead_q25"] <= lead["lead_median"]) & (lead["lead_median"] <= lead["lead_q75"])).all()
        assert ((lead >= 0) & (lead <= 15)).all().all()  # a warning at most 12 months (+ a quarter) ahead
        assert table.attrs["episodes"] > 0 and 0 < table.attrs["default_rate"] < 1


def test_naive_anchor_matches_the_warned_share():
    rows = pd.DataFrame({"pd": np.linspace(0, 1, 200)})
    for share in (0.0, 0.05, 0.15, 0.5):
        assert naive(rows, share).mean() == pytest.approx(share, abs=0.01)
    assert naive(rows, 0.1)[rows["pd"] >= 0.9].all()  # the riskiest are the ones warned


def test_lead_runs_from_the_first_warning_to_the_default_date():
    day = pd.to_datetime(["2024-03-31", "2024-06-30", "2024-09-30", "2024-03-31", "2024-06-30", "2024-03-31"])
    rows = pd.DataFrame({"as_of": day, "defaulted": [1, 1, 1, 0, 1, 1], "episode": [1, 1, 1, 2, 3, 4],
                         "default_at": pd.to_datetime(["2024-11-15"] * 3 + [None, "2024-08-01", "2024-05-01"]),
                         "episode_from": pd.to_datetime(["2024-03-31"] * 3 + [None, "2024-06-30", "2023-09-30"])})
    flag = pd.Series([False, True, True, True, False, True])
    out = figures(flag, rows)
    # episode 4 began in the period before: its warning counts for precision, not for recall or lead
    assert out["recall"] == 0.5 and out["precision"] == pytest.approx(3 / 4)
    assert out["lead_median"] == pytest.approx((pd.Timestamp("2024-11-15") - pd.Timestamp("2024-06-30")).days / 30.4375)


def test_ceiling_is_the_true_pd_at_the_same_warned_share():
    rng = np.random.default_rng(0)
    n = 400
    truth = rng.uniform(size=n)
    rows = pd.DataFrame({"as_of": pd.Timestamp("2024-03-31"), "defaulted": (truth > 0.9).astype(int),
                         "episode": np.arange(n), "default_at": pd.Timestamp("2024-09-30"),
                         "episode_from": pd.Timestamp("2024-03-31"), "pd": rng.uniform(size=n), "oracle_pd": truth})
    flags = pd.DataFrame({"t": rng.uniform(size=n) < 0.1})
    table = measure(flags, {"t": "yellow"}, rows)
    warned, bad = int(flags["t"].sum()), int(rows["defaulted"].sum())
    assert warned < bad  # the true PD's top share: defaults only, as many as the flag warned
    assert table.loc["t", "oracle_recall"] == pytest.approx(warned / bad)
    assert table.loc["t", "oracle_precision"] == 1.0 and table.loc["t", "naive_recall"] < 0.3
