"""Issue 15 item 3: a wholly wrong record is voided through its objection (kept and shown, never used
again: the grade is the one the subject has without it; the history and the audit log say so), an older
store gains the column, and serving's tables are serving's (features neither defines nor imports them)."""
from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import MetaData, delete, inspect, select, text

from creditgrade.features import loader
from creditgrade.features.store import Store, metadata, objections, records

ROOT = Path(__file__).resolve().parents[1]


def grade_without(store: Store, grader, segment: str, subject_id: str, record_id: int, day: pd.Timestamp):
    """The subject's grade as of ``day`` with the record deleted (rolled back afterwards)."""
    with store.engine.connect() as conn:
        tx = conn.begin()
        conn.execute(delete(objections).where(objections.c.record_id == record_id))
        conn.execute(delete(records).where(records.c.record_id == record_id))
        g = grader.evaluate_subject(conn, grader.subject(conn, segment, subject_id), day)
        tx.rollback()
    return g


def weighty_record(store: Store, grader, segment: str, ids: list[str], day: pd.Timestamp):
    """The first subject with a record with a severity whose absence moves its PD: (id, record id, the grade
    with the record, the grade without it)."""
    with store.engine.connect() as conn:
        for sid in ids:
            subject = grader.subject(conn, segment, sid)
            now = grader.evaluate_subject(conn, subject, day)
            for rid in conn.execute(select(records.c.record_id).where(
                    records.c.subject_key == subject.key, records.c.reported_date < day.date(),
                    records.c.severity.is_not(None))).scalars():
                without = grade_without(store, grader, segment, sid, rid, day)
                if abs(without.pd - now.pd) > 1e-6:
                    return sid, rid, now, without
    raise AssertionError(f"no record of the first {len(ids)} subjects moves a PD")


def test_a_voided_record_is_kept_shown_and_never_graded(api):
    from creditgrade.models.registry import load_champion
    from creditgrade.serving.grading import Grader
    from creditgrade.serving.keys import create_key

    store = Store(api.url)
    grader = Grader(store, {"sme": load_champion("sme")})
    with store.engine.connect() as conn:
        day = grader.as_of("sme", None, conn)
    firm, wrong, with_it, expected = weighty_record(store, grader, "sme", api.keys.smes[:40], day)
    key = create_key(store, "subject", "void-test-firm", subject_id=firm, segment="sme")
    who = {"subject_id": firm, "segment": "sme"}
    mine = {**who, "purpose": "own report"}
    before = api.call("/report", mine, key=key).json()
    assert before["current"]["pd"] == pytest.approx(with_it.pd) and before["current"]["as_of"] == str(day.date())

    filed = api.call("/file_objection", {**who, "record_id": wrong, "reason": "not our record at all"}, key=key).json()
    done = api.call("/resolve_objection", {"objection_id": filed["objection_id"], "status": "voided",
                                           "resolution": "the court confirms the judgment names another firm"},
                    key=api.keys.admin)
    assert done.status_code == 200, done.text
    regrade = done.json()["regrade"]
    assert done.json()["objection"]["status"] == "voided"
    assert regrade["as_of"] == before["current"]["as_of"] and regrade["disputed"] is False
    assert regrade["pd"] == pytest.approx(expected.pd) and regrade["grade"] == expected.grade

    after = api.call("/report", mine, key=key).json()
    shown = {r["record_id"]: r for r in after["records"]}
    assert len(shown) == len(before["records"]) and shown[wrong]["voided_at"] is not None
    assert all(r["voided_at"] is None for rid, r in shown.items() if rid != wrong)
    (objection,) = [o for o in after["objections"] if o["record_id"] == wrong]
    assert objection["status"] == "voided" and "another firm" in objection["resolution"] and objection["resolved_at"]
    origins = [h["origin"] for h in after["history"]]
    assert origins[-2:] == ["regrade", "api"]   # the re-grade, then this report's own grade
    assert after["history"][-2]["pd"] == pytest.approx(expected.pd)
    assert after["current"]["pd"] == pytest.approx(expected.pd)

    with store.engine.connect() as conn:
        subject_key = grader.subject(conn, "sme", firm).key
        loaded = loader.load(conn, "sme", day.date(), keys=[subject_key])
    live = {rid for rid, r in shown.items() if pd.Timestamp(r["reported_date"]) < day} - {wrong}
    assert set(loaded.records["record_id"]) == live
    assert wrong not in set(store.records("sme")["record_id"])
    store.dispose()

    again = api.call("/file_objection", {**who, "record_id": wrong, "reason": "still there"}, key=key)
    assert again.status_code == 409 and "void" in again.json()["error"]
    trail = api.call("/audit_log", {**who, "purpose": "review of a voided record"}, key=api.keys.regulator).json()
    details = {e["action"]: e["detail"] for e in trail if e["action"] in ("resolve_objection", "regrade")}
    assert f"record {wrong} void" in details["resolve_objection"] and "voided" in details["resolve_objection"]
    assert "after voiding" in details["regrade"]


def test_voiding_takes_no_correction(api):
    r = api.call("/resolve_objection", {"objection_id": 1, "status": "voided", "resolution": "wrong record",
                                        "correction": {"amount": 1.0}}, key=api.keys.admin)
    assert r.status_code == 422 and r.json()["field"] == "correction"


def test_an_older_store_gains_the_void_column(store):
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE records DROP COLUMN voided_at"))
    assert "voided_at" not in {c["name"] for c in inspect(store.engine).get_columns("records")}
    store.dispose()
    again = Store(store.url)
    assert "voided_at" in {c["name"] for c in inspect(again.engine).get_columns("records")}
    assert again.records().empty
    again.dispose()


def test_serving_tables_are_created_by_serving_on_a_records_store(tmp_path):
    from creditgrade.serving import tables

    url = f"sqlite:///{tmp_path / 'records-only.db'}"
    Store(url).dispose()
    found = MetaData()
    found.reflect(Store(url).engine)
    assert set(found.tables) == set(metadata.tables)
    assert not set(metadata.tables) & set(tables.metadata.tables)
    store = tables.open_store(url)
    assert set(inspect(store.engine).get_table_names()) == set(metadata.tables) | set(tables.metadata.tables)
    store.dispose()


def test_features_import_nothing_of_serving():
    for path in sorted((ROOT / "features").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith(("creditgrade.serving", "serving")) for n in names), path.name
