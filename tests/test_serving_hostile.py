"""The attacks of issue 19 (serving half) kept as tests, one per numbered item, against the in-process
service (``tests.test_serving.api``): each failed on the main branch they were found on."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, insert, select

from tests.helpers import grade_body


@pytest.fixture(scope="module")
def db(api):
    from creditgrade.features.store import Store

    store = Store(api.url)
    yield store
    store.dispose()


def audit_rows(db, action: str, since: int = 0) -> list[dict]:
    from creditgrade.serving.tables import audit_log

    q = select(audit_log).where(audit_log.c.action == action, audit_log.c.audit_id > since)
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(audit_log.c.audit_id))]


def last_audit_id(db) -> int:
    from creditgrade.serving.tables import audit_log

    with db.engine.connect() as conn:
        return conn.execute(select(func.max(audit_log.c.audit_id))).scalar() or 0


def person(api, i: int = 0) -> dict:
    return {"subject_id": api.keys.practitioners[i], "segment": "practitioner"}


def own_records(api) -> list[dict]:
    r = api.call("/report", {**person(api), "purpose": "own report"}, key=api.keys.subject)
    assert r.status_code == 200, r.text
    return r.json()["records"]


def file_objection(api, record_id: int, reason: str = "this record is wrong") -> dict:
    r = api.call("/file_objection", {**person(api), "record_id": record_id, "reason": reason}, key=api.keys.subject)
    assert r.status_code == 200, r.text
    return r.json()


def in_progress(api) -> float:
    """BentoML's gauge of requests in progress, summed over endpoints."""
    from prometheus_client.parser import text_string_to_metric_families

    text = api.call("/metrics", method="GET").text
    return sum(s.value for f in text_string_to_metric_families(text) if "in_progress" in f.name for s in f.samples)


# ---------------------------------------------------------------- 1: nothing escapes the gate

def test_item1_nested_json_answers_400_and_is_audited(api, db):
    nested = b"[" * 1000 + b"]" * 1000
    before, busy = last_audit_id(db), in_progress(api)
    for path in ("/grade_batch", "/grade"):
        r = api.call(path, key=api.keys.bank, content=nested, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["field"] == "body" and "recursion" in r.json()["error"]
    assert [e["outcome"] for e in audit_rows(db, "grade_batch", before)] == ["400"]
    assert [e["outcome"] for e in audit_rows(db, "grade", before)] == ["400"]
    assert in_progress(api) == busy


def test_item1_unexpected_exceptions_answer_500_json_and_are_audited(api, db, monkeypatch):
    from creditgrade.serving import grading, service
    from creditgrade.serving.gate import Gate

    ric = api.keys.practitioners[5]

    def boom(*_args, **_kw):
        raise RuntimeError(f"disk on fire while reading {ric}")

    before = last_audit_id(db)
    monkeypatch.setattr(service, "warning_list", boom)
    r = api.call("/warnings", {}, key=api.keys.regulator)
    assert r.status_code == 500 and r.json()["field"] is None and "reference" in r.json()["error"]
    monkeypatch.setattr(grading.Grader, "grade_batch", boom)
    r = api.call("/grade_batch", [grade_body(s) for s in api.keys.smes[:3]], key=api.keys.bank)
    assert r.status_code == 200 and [i["status"] for i in r.json()] == [500] * 3
    monkeypatch.setattr(Gate, "_stamp", boom)
    r = api.call("/grade_batch", [grade_body(api.keys.smes[0])], key=api.keys.bank)
    assert r.status_code == 500 and set(r.json()) == {"error", "field", "rule"}
    assert ric not in r.text
    assert [e["outcome"] for e in audit_rows(db, "warnings", before)] == ["500"]
    assert [e["outcome"] for e in audit_rows(db, "grade_batch", before)] == ["500"] * 4
    assert all(ric not in (e["detail"] or "") for e in audit_rows(db, "grade_batch", before))


# ---------------------------------------------------------------- 2: corrections obey the ingest rules

def test_item2_correction_breaking_the_ingest_rules_is_422_and_changes_nothing(api, db):
    from creditgrade.features.schemas import kinds

    records = own_records(api)
    record = next(r for r in records if not kinds()[r["kind"]].get("repairable"))
    objection = file_objection(api, record["record_id"])
    reported = dt.date.fromisoformat(record["reported_date"])
    start = dt.date.fromisoformat(record["start_date"])
    before = api.call("/grade", {**person(api), "purpose": "check", "consent_ref": "C-2"}, key=api.keys.regulator)
    assert before.status_code == 200, before.text
    grades_before = count_grades(db)
    hostile = [({"end_date": "9999-12-31"}, "end_date"), ({"end_date": "2300-01-01"}, "end_date"),
               ({"start_date": "0001-01-01"}, "start_date"),
               ({"start_date": str(reported + dt.timedelta(days=1))}, "start_date"),
               ({"repaired_date": str(start + dt.timedelta(days=800))}, "repaired_date")]
    for correction, field in hostile:
        r = api.call("/resolve_objection", {"objection_id": objection["objection_id"], "status": "corrected",
                                            "resolution": "corrected at the source", "correction": correction},
                     key=api.keys.admin)
        assert r.status_code == 422, (correction, r.text)
        assert r.json()["field"] == f"correction.{field}", r.text
    assert own_records(api) == [{**r, "disputed": r["record_id"] == record["record_id"]} for r in records]
    assert count_grades(db) == grades_before + 1  # only the own-report grade above
    listed = api.call("/list_objections", {"status": "open"}, key=api.keys.admin).json()
    assert objection["objection_id"] in {o["objection_id"] for o in listed}
    assert {e["outcome"] for e in audit_rows(db, "resolve_objection")} == {"422"}
    after = api.call("/grade", {**person(api), "purpose": "check", "consent_ref": "C-2"}, key=api.keys.regulator)
    assert after.status_code == 200 and after.json()["grade"] == before.json()["grade"]
    done = api.call("/resolve_objection", {"objection_id": objection["objection_id"], "status": "corrected",
                                           "resolution": "end date corrected",
                                           "correction": {"end_date": record["reported_date"]}}, key=api.keys.admin)
    assert done.status_code == 200, done.text
    assert done.json()["regrade"]["grade"] and done.json()["objection"]["status"] == "corrected"
    assert record["record_id"] not in done.json()["regrade"]["disputed_records"]  # graded on the answered record


def count_grades(db) -> int:
    from creditgrade.serving.tables import grades

    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(grades)).scalar()


# ---------------------------------------------------------------- 3: ids beyond the store's integers

@pytest.mark.parametrize("big", [2**31, 2**63, 10**30])
def test_item3_ids_beyond_the_store_are_400_naming_the_field(api, big):
    calls = [("/file_objection", {**person(api), "record_id": big, "reason": "wrong"}, api.keys.subject, "record_id"),
             ("/resolve_objection", {"objection_id": big, "status": "rejected", "resolution": "no"}, api.keys.admin,
              "objection_id"),
             ("/acknowledge_warning", {"warning_id": big}, api.keys.admin, "warning_id")]
    for path, body, key, field in calls:
        r = api.call(path, body, key=key)
        assert r.status_code == 400 and r.json()["field"] == field, (path, r.text)


# ---------------------------------------------------------------- 4: consent for every computation on a person

def test_item4_report_on_a_person_needs_consent_whatever_the_role(api, db):
    body = {**person(api, 6), "purpose": "review"}
    grades_before = count_grades(db)
    for role in ("admin", "regulator"):
        r = api.call("/report", body, key=getattr(api.keys, role))
        assert r.status_code == 403 and r.json()["field"] == "consent_ref", (role, r.text)
    assert count_grades(db) == grades_before
    household = {"subject_id": api.keys.household, "segment": "household", "purpose": "review"}
    assert api.call("/report", household, key=api.keys.regulator).json()["field"] == "consent_ref"
    ok = api.call("/report", {**body, "consent_ref": "C-44"}, key=api.keys.admin)
    assert ok.status_code == 200, ok.text
    assert count_grades(db) == grades_before + 1


# ---------------------------------------------------------------- 5: identity numbers in free text

def test_item5_identity_numbers_in_free_text_are_masked_stored_and_shown(api, db):
    from creditgrade.features.ids import mask_ric
    from creditgrade.features.store import objections, records

    ric, other = api.keys.practitioners[7], api.keys.practitioners[8]
    record = own_records(api)[-1]
    filed = file_objection(api, record["record_id"], reason=f"not mine, it belongs to {ric}")
    assert ric not in json.dumps(filed) and mask_ric(ric) in filed["reason"]
    done = api.call("/resolve_objection", {"objection_id": filed["objection_id"], "status": "upheld",
                                           "resolution": f"confirmed with {other} by phone"}, key=api.keys.admin)
    assert done.status_code == 200, done.text
    assert other not in done.text and mask_ric(other) in done.json()["objection"]["resolution"]
    with db.engine.begin() as conn:
        stored = conn.execute(select(objections.c.reason, objections.c.resolution).where(
            objections.c.objection_id == filed["objection_id"])).one()
        assert ric not in stored.reason and other not in stored.resolution
        # a record stored before ingest redacted document references still shows masked
        legacy = conn.execute(select(records).where(records.c.record_id == record["record_id"])).one()._asdict()
        del legacy["record_id"]  # a new one (an explicit NULL is refused by PostgreSQL's serial key)
        conn.execute(insert(records).values(**{**legacy, "doc_ref": f"CASE-{ric}"}))
    report = api.call("/report", {**person(api), "purpose": "own report"}, key=api.keys.subject)
    assert report.status_code == 200 and ric not in report.text and f"CASE-{mask_ric(ric)}" in report.text


# ---------------------------------------------------------------- 10: the audit has no gaps

def test_item10_a_successful_batch_is_audited_once_per_item_and_nothing_else(api, db):
    before = last_audit_id(db)
    r = api.call("/grade_batch", [grade_body(s) for s in api.keys.smes[:4]], key=api.keys.bank)
    assert r.status_code == 200 and [i["status"] for i in r.json()] == [200] * 4
    rows = audit_rows(db, "grade_batch", before)
    assert [e["outcome"] for e in rows] == ["200"] * 4
    assert all(e["purpose"] == "credit application" for e in rows)


def test_item10_refusals_at_the_gate_record_the_subject_asked_about(api, db):
    from creditgrade.features.ids import subject_key

    sme, ric = api.keys.smes[9], api.keys.practitioners[9]
    before = last_audit_id(db)
    assert api.call("/grade", grade_body(sme)).status_code == 401
    assert api.call("/grade", grade_body(sme), key=api.keys.admin).status_code == 403
    assert api.call("/evaluation_sheet", {"household_id": api.keys.household, "consent_ref": "C"},
                    key=api.keys.bank).status_code == 403
    r = api.call("/explain", key=api.keys.bank, content=json.dumps(grade_body(ric, "practitioner")).encode(),
                 headers={"content-type": "text/plain"})
    assert r.status_code == 415
    rows = audit_rows(db, "grade", before)
    assert [(e["outcome"], e["subject_key"], e["purpose"]) for e in rows] == [
        ("401", sme, "credit application"), ("403", sme, "credit application")]
    assert audit_rows(db, "evaluation_sheet", before)[0]["subject_key"] == api.keys.household
    explained = audit_rows(db, "explain", before)[0]
    assert explained["outcome"] == "415" and explained["subject_key"] == subject_key("practitioner", ric)


def test_item10_every_action_naming_a_subject_records_a_purpose(api, db):
    before = last_audit_id(db)
    record = own_records(api)[0]
    filed = file_objection(api, record["record_id"])
    api.call("/resolve_objection", {"objection_id": filed["objection_id"], "status": "rejected",
                                    "resolution": "the source confirms it", "purpose": "dispute desk"},
             key=api.keys.admin)
    api.call("/audit_log", {**person(api), "limit": 5}, key=api.keys.regulator)
    assert audit_rows(db, "file_objection", before)[0]["purpose"]
    assert audit_rows(db, "resolve_objection", before)[0]["purpose"] == "dispute desk"
    read = audit_rows(db, "audit", before)[0]
    assert read["purpose"] and read["subject_key"] is not None


# ---------------------------------------------------------------- 11: the published schema is true

def test_item11_requests_are_strict_and_the_schema_says_where_null_comes_back(api):
    spec = api.call("/docs.json", method="GET").json()
    schemas = spec["components"]["schemas"]

    def answer(path: str) -> dict:
        schema = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        schema = schema.get("items", schema)
        return schemas[schema["$ref"].rsplit("/", 1)[1]]

    assert {"type": "null"} in answer("/acknowledge_warning")["properties"]["township_code"]["anyOf"]
    assert {"type": "null"} in answer("/warnings")["properties"]["village_code"]["anyOf"]
    assert {"type": "null"} in answer("/resolve_objection")["properties"]["regrade"]["anyOf"]
    assert {"type": "null"} in answer("/grade")["properties"]["override"]["anyOf"]
    body = grade_body(api.keys.smes[2])
    for path, bad, field in [("/grade", {**body, "as_of": 0}, "as_of"), ("/grade", {**body, "as_of": None}, "as_of"),
                             ("/grade", {**body, "as_of": "2024-06-30T00:00:00Z"}, "as_of"),
                             ("/grade", {**body, "consent_ref": None}, "consent_ref"),
                             ("/list_objections", {"overdue_only": 0}, "overdue_only"),
                             ("/list_objections", {"status": None}, "status"),
                             ("/list_objections", {"limit": "5"}, "limit"),
                             ("/warnings", {"acknowledged": 1}, "acknowledged"),
                             ("/audit_log", {"since": 0}, "since")]:
        key = api.keys.regulator if path != "/grade" else api.keys.bank
        r = api.call(path, bad, key=key)
        assert r.status_code == 400 and r.json()["field"] == field, (bad, r.text)
    r = api.call("/grade_batch", [{**body, "as_of": 0}], key=api.keys.bank)
    assert r.status_code == 400 and r.json()["field"] == "0.as_of", r.text
    assert api.call("/grade", {**body, "as_of": "2024-06-30"}, key=api.keys.bank).status_code == 200
