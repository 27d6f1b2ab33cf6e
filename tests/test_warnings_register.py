"""The warnings register: states move only as configured, closing needs an outcome, owners and notes
(identity numbers masked), a store made before the register gains its columns; banks see and work the
warnings of their own borrowers only, and every change is audited."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, text

from creditgrade.features.errors import CreditgradeError
from creditgrade.features.ids import make_ric
from creditgrade.features.ingest import ingest_file, ingest_files
from creditgrade.features.store import records
from creditgrade.serving.tables import audit_log, open_store, warnings
from creditgrade.serving.warnings import list_warnings, raise_on_arrival, work
from tests.helpers import grade_body
from tests.test_ingest import RECORD_COLS, USCC, subjects_file, write_csv  # noqa: F401
from tests.test_warnings_arrival import _status


@pytest.fixture
def warned(store, subjects_file, tmp_path):
    ingest_file(store, subjects_file)
    rows = [_status(USCC[0], 6, 65, "S-6"), _status(USCC[1], 6, 35, "S-7")]
    path = write_csv(tmp_path / "r.csv", rows, RECORD_COLS)
    ingest_files(store, [path], on_records=raise_on_arrival)
    return store, {(w["subject_key"], w["trigger"]): w["warning_id"] for w in list_warnings(store)}


def test_a_warning_is_worked_to_a_close(warned):
    store, found = warned
    wid = found[(USCC[0], "past_due_60")]
    with store.engine.begin() as conn:
        before, after = work(conn, wid, "officer-1", owner="officer-2",
                             note=f"called the firm, id {make_ric('41010519900101001')}")
    assert (before["state"], after["state"], after["owner"]) == ("new", "assigned", "officer-2")
    assert after["notes"][0]["by"] == "officer-1" and "19900101" not in after["notes"][0]["text"]
    with store.engine.begin() as conn:
        with pytest.raises(CreditgradeError, match="outcome"):
            work(conn, wid, "officer-2", state="closed")  # closing needs an outcome
        with pytest.raises(CreditgradeError, match="outcome"):
            work(conn, wid, "officer-2", outcome="cured")  # and only closing takes one
        with pytest.raises(CreditgradeError, match="state"):
            work(conn, wid, "officer-2", state="new")  # no way back to new
        work(conn, wid, "officer-2", state="under_review", note="restructuring talks")
        _, closed = work(conn, wid, "officer-2", state="closed", outcome="restructured")
    assert (closed["state"], closed["outcome"], len(closed["notes"])) == ("closed", "restructured", 2)
    with store.engine.begin() as conn, pytest.raises(CreditgradeError, match="state"):
        work(conn, wid, "officer-2", state="assigned")  # closed is closed
    assert [w["warning_id"] for w in list_warnings(store, state="closed")] == [wid]
    assert wid not in [w["warning_id"] for w in list_warnings(store, state="new")]
    with pytest.raises(CreditgradeError, match="state"):
        list_warnings(store, state="lost")


def test_banks_see_the_warnings_of_their_own_borrowers(warned):
    store, found = warned
    now = dt.datetime.now(dt.timezone.utc)
    graded = dict(at=now, role="bank", action="grade", segment="sme", outcome="200")
    with store.engine.begin() as conn:
        conn.execute(insert(audit_log), [dict(graded, key_id=1, subject_key=USCC[0], purpose="Loan application"),
                                         dict(graded, key_id=1, subject_key=USCC[1], purpose="market research"),
                                         dict(graded, key_id=2, subject_key=USCC[1], purpose="授信审批")])
    assert {w["subject_key"] for w in list_warnings(store, borrowers_of=[1])} == {USCC[0]}
    assert {w["subject_key"] for w in list_warnings(store, borrowers_of=[2])} == {USCC[1]}
    assert {w["subject_key"] for w in list_warnings(store)} == {USCC[0], USCC[1]}  # a regulator: all


def test_a_store_made_before_the_register_gains_its_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = open_store(url)
    with old.engine.begin() as conn:
        conn.execute(text("DROP TABLE warnings"))
        conn.execute(text("CREATE TABLE warnings (warning_id INTEGER PRIMARY KEY, subject_key VARCHAR(64) NOT NULL, "
                          "segment VARCHAR(16) NOT NULL, as_of DATE NOT NULL, level VARCHAR(8) NOT NULL, "
                          "trigger VARCHAR(40) NOT NULL, evidence TEXT NOT NULL, created_at DATETIME NOT NULL, "
                          "acknowledged_at DATETIME, acknowledged_by VARCHAR(100))"))
        conn.execute(text("INSERT INTO warnings (subject_key, segment, as_of, level, trigger, evidence, created_at) "
                          "VALUES ('X', 'sme', '2024-06-30', 'red', 't', '{}', '2024-07-01 00:00:00')"))
    old.dispose()
    store = open_store(url)
    with store.engine.connect() as conn:
        row = conn.execute(select(warnings)).mappings().one()
    assert row["state"] == "new" and row["owner"] is None and row["notes"] is None
    store.dispose()


def test_the_register_over_http_reach_and_audit(api):
    """A bank works a warning of its borrower (an SME it graded for a loan) to a close, every change audited;
    another SME's warning is outside its reach (working and acknowledging); the regulator sees all, states included."""
    store = open_store(api.url)
    firm, other = api.keys.smes[0], api.keys.smes[1]
    rows = [dict(subject_key=key, segment="sme", source="finance", kind="finance.loan_status",
                 start_date=dt.date(2025, 11, 1), end_date=None, reported_date=dt.date(2025, 11, 10), severity=None,
                 amount=1000.0, value=70.0, category=None, account=f"REG-{key[-4:]}", doc_ref=f"REG-{key}",
                 repaired_date=None, batch_id=None) for key in (firm, other)]
    with store.engine.begin() as conn:
        for row in rows:
            row["record_id"] = conn.execute(insert(records).values(row)).inserted_primary_key[0]
        raise_on_arrival(conn, rows)
    store.dispose()
    assert api.call("/grade", grade_body(firm, purpose="loan application"), key=api.keys.bank).status_code == 200

    seen = api.call("/warnings", {"limit": 1000, "state": "new"}, key=api.keys.bank).json()
    assert {w["subject"] for w in seen} == {firm}
    wid = next(w["warning_id"] for w in seen if w["trigger"] == "past_due_60")
    r = api.call("/work_warning", {"warning_id": wid, "owner": "officer Li", "note": "visited the firm"},
                 key=api.keys.bank)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["owner"], r.json()["notes"][0]["by"]) == ("assigned", "officer Li", "test-bank")
    r = api.call("/work_warning", {"warning_id": wid, "state": "closed"}, key=api.keys.bank)
    assert r.status_code == 422 and r.json()["field"] == "outcome"
    r = api.call("/work_warning", {"warning_id": wid, "state": "closed", "outcome": "cured"}, key=api.keys.bank)
    assert (r.json()["state"], r.json()["outcome"]) == ("closed", "cured")

    listed = api.call("/warnings", {"limit": 1000}, key=api.keys.regulator)
    assert listed.status_code == 200, listed.text
    theirs = next(w["warning_id"] for w in listed.json() if w["subject"] == other)
    r = api.call("/work_warning", {"warning_id": theirs, "state": "assigned"}, key=api.keys.bank)
    assert r.status_code == 403 and r.json()["field"] == "warning_id"
    r = api.call("/acknowledge_warning", {"warning_id": theirs}, key=api.keys.bank)
    assert r.status_code == 403 and r.json()["field"] == "warning_id"  # acknowledging: the same reach
    r = api.call("/acknowledge_warning", {"warning_id": wid}, key=api.keys.bank)
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "test-bank"
    r = api.call("/work_warning", {"warning_id": theirs, "state": "assigned"}, key=api.keys.regulator)
    assert r.status_code == 403  # regulators read the register, banks and evaluators work it
    closed = api.call("/warnings", {"state": "closed", "limit": 1000}, key=api.keys.regulator).json()
    assert [w["warning_id"] for w in closed] == [wid]

    audited = [e for e in api.call("/audit_log", {"limit": 1000}, key=api.keys.regulator).json()
               if e["action"] == "work_warning"]
    assert {e["outcome"] for e in audited} >= {"200", "422", "403"}
    assert any('"state": ["assigned", "closed"]' in e["detail"] and '"outcome": [null, "cured"]' in e["detail"]
               for e in audited if e["outcome"] == "200")
