"""The serving API in process (BentoML's ASGI app with its middleware, through httpx): auth per role,
consent, scopes, grades and their history, batches, explanations, objections, audit and bad input."""
from __future__ import annotations

import re
import time

import pandas as pd
import pytest
from sqlalchemy import MetaData, create_engine, select

from tests.helpers import bad_check, grade_body


def test_probes_need_no_key(api):
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert api.call(path, method="GET").status_code == 200, path
    spec = api.call("/docs.json", method="GET").json()
    assert "401" in spec["paths"]["/grade"]["post"]["responses"]


def test_missing_or_wrong_key_is_401(api):
    body = grade_body(api.keys.smes[0])
    assert api.call("/grade", body).status_code == 401
    r = api.call("/grade", body, key="cg_not-a-key")
    assert r.status_code == 401 and "key" in r.json()["error"]


@pytest.mark.parametrize("role,path,status", [
    ("admin", "/grade", 403), ("subject", "/grade_batch", 403), ("bank", "/audit_log", 403),
    ("bank", "/resolve_objection", 403), ("evaluator", "/report", 403), ("regulator", "/file_objection", 403),
])
def test_roles_without_the_right_get_403(api, role, path, status):
    r = api.call(path, {}, key=getattr(api.keys, role))
    assert r.status_code == status and "may not" in r.json()["error"]


def test_grade_answer(api):
    r = api.call("/grade", grade_body(api.keys.smes[1]), key=api.keys.bank)
    assert r.status_code == 200, r.text
    g = r.json()
    assert g["subject"] == api.keys.smes[1] and g["segment"] == "sme"
    assert 0 < g["pd"] < 1 and 300 <= g["score"] <= 900 and g["grade"] in ("AAA AA A BBB BB B CCC CC C D".split())
    assert g["model"]["name"] == "creditgrade-sme" and g["model"]["version"]
    assert g["disputed"] is False and g["reasons"] and {"feature", "en", "zh", "value"} <= set(g["reasons"][0])
    as_of = api.call("/grade", grade_body(api.keys.smes[1], as_of="2024-06-30"), key=api.keys.bank).json()
    assert as_of["as_of"] == "2024-06-30"


def test_analyst_grades_smes_only_and_persons_need_consent(api):
    body = grade_body(api.keys.practitioners[1], "practitioner")
    assert api.call("/grade", body, key=api.keys.analyst).json()["field"] == "segment"
    assert api.call("/grade", body, key=api.keys.bank).json()["field"] == "consent_ref"
    r = api.call("/grade", body, key=api.keys.regulator)
    assert r.status_code == 403 and r.json()["field"] == "consent_ref"
    r = api.call("/grade", {**body, "consent_ref": "CONSENT-2026-001"}, key=api.keys.regulator)
    assert r.status_code == 200 and "*" in r.json()["subject"]


def test_evaluator_limited_to_own_townships(api):
    ok = grade_body(api.keys.household, "household", consent_ref="C-1")
    assert api.call("/grade", ok, key=api.keys.evaluator).status_code == 200
    other = grade_body(api.keys.other_household, "household", consent_ref="C-1")
    r = api.call("/grade", other, key=api.keys.evaluator)
    assert r.status_code == 403 and "township" in r.json()["error"]


def test_subject_sees_only_itself(api):
    me, someone = api.keys.practitioners[0], api.keys.practitioners[2]
    mine = {"subject_id": me, "segment": "practitioner", "purpose": "own report"}
    assert api.call("/report", mine, key=api.keys.subject).status_code == 200
    r = api.call("/report", {**mine, "subject_id": someone}, key=api.keys.subject)
    assert r.status_code == 403 and r.json()["field"] == "subject_id"


@pytest.mark.parametrize("body,status,field", [
    (lambda k: grade_body(bad_check(k.smes[0])), 422, "subject_id"),
    (lambda k: grade_body("91410100MA00000000"), 422, "subject_id"),
    (lambda k: grade_body(k.household), 422, "subject_id"),           # a household id is no USCC
    (lambda k: grade_body(k.smes[0], as_of="2999-01-01"), 422, "as_of"),
    (lambda k: grade_body(k.smes[0], as_of="1999-12-31"), 422, "as_of"),
    (lambda k: grade_body(k.smes[0], as_of="2024-02-30"), 400, None),  # not a date: schema error
    (lambda k: grade_body(k.smes[0], segment="bank"), 400, None),
    (lambda k: {"segment": "sme", "purpose": "x"}, 400, None),
])
def test_bad_input_is_a_clear_4xx(api, body, status, field):
    r = api.call("/grade", body(api.keys), key=api.keys.bank)
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text and r.json()["error"]
    if field:
        assert r.json()["field"] == field


def test_unknown_subject_and_malformed_json(api):
    from creditgrade.features.ids import make_uscc

    r = api.call("/grade", grade_body(make_uscc("91410100MA0000001")), key=api.keys.bank)
    assert r.status_code == 404 and r.json()["field"] == "subject_id"
    r = api.call("/grade", key=api.keys.bank, content=b'{"subject_id": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.text and "Traceback" not in r.text


def test_batch_grades_many_and_refuses_per_item(api, monkeypatch):
    items = [grade_body(s) for s in api.keys.smes[:300]] + [grade_body(bad_check(api.keys.smes[0]))]
    r = api.call("/grade_batch", items, key=api.keys.bank)
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out) == 301 and all(o["status"] == 200 for o in out[:300])
    assert out[-1]["status"] == 422 and out[-1]["field"] == "subject_id"
    single = api.call("/grade", grade_body(api.keys.smes[5]), key=api.keys.bank).json()
    assert out[5]["result"]["pd"] == pytest.approx(single["pd"]) and out[5]["result"]["grade"] == single["grade"]
    from creditgrade.serving import service

    too_many = [grade_body(api.keys.smes[0])] * (service.MAX_BATCH + 1)
    r = api.call("/grade_batch", too_many, key=api.keys.bank)
    assert r.status_code == 413 and "at most" in r.json()["error"]


def test_explain_has_all_contributions_and_what_would_change(api):
    r = api.call("/explain", grade_body(api.keys.smes[3]), key=api.keys.bank)
    assert r.status_code == 200, r.text
    e = r.json()
    assert len(e["contributions"]) > 10 and {"feature", "value", "contribution"} <= set(e["contributions"][0])
    assert "reachable" in e["what_would_change"]


def test_objection_lifecycle_regrades_and_keeps_history(api):
    me = api.keys.practitioners[0]
    who = {"subject_id": me, "segment": "practitioner"}
    report = api.call("/report", {**who, "purpose": "own report"}, key=api.keys.subject).json()
    record = max(report["records"], key=lambda r: r["amount"] or 0)
    filed = api.call("/file_objection", {**who, "record_id": record["record_id"], "reason": "amount is wrong"},
                     key=api.keys.subject)
    assert filed.status_code == 200, filed.text
    objection = filed.json()
    assert objection["days_left"] == 20 and objection["status"] == "open" and not objection["overdue"]
    again = api.call("/file_objection", {**who, "record_id": record["record_id"], "reason": "again"},
                     key=api.keys.subject)
    assert again.status_code == 409
    listed = api.call("/list_objections", {"status": "open"}, key=api.keys.regulator).json()
    assert objection["objection_id"] in {o["objection_id"] for o in listed}
    after = api.call("/report", {**who, "purpose": "own report"}, key=api.keys.subject).json()
    assert any(r["disputed"] for r in after["records"] if r["record_id"] == record["record_id"])
    bad = api.call("/resolve_objection", {"objection_id": objection["objection_id"], "status": "corrected",
                                          "resolution": "checked"}, key=api.keys.admin)
    assert bad.status_code == 422 and bad.json()["field"] == "correction"
    done = api.call("/resolve_objection", {"objection_id": objection["objection_id"], "status": "corrected",
                                           "resolution": "amount corrected by the source",
                                           "correction": {"amount": 0.0}}, key=api.keys.admin)
    assert done.status_code == 200, done.text
    assert done.json()["objection"]["status"] == "corrected" and done.json()["regrade"]["grade"]
    history = api.call("/report", {**who, "purpose": "own report"}, key=api.keys.subject).json()["history"]
    origins = [h["origin"] for h in history]
    assert "regrade" in origins and origins.index("regrade") > 0
    assert api.call("/resolve_objection", {"objection_id": objection["objection_id"], "status": "rejected",
                                           "resolution": "twice"}, key=api.keys.admin).status_code == 409


def test_audit_log_records_queries_and_refusals_for_regulators(api):
    api.call("/grade", grade_body(api.keys.smes[7]), key=api.keys.bank)
    api.call("/grade", grade_body(api.keys.smes[7]))                        # 401
    api.call("/grade", grade_body(api.keys.smes[7]), key=api.keys.admin)    # 403
    r = api.call("/audit_log", {"subject_id": api.keys.smes[7], "segment": "sme"}, key=api.keys.regulator)
    assert r.status_code == 200
    entries = r.json()
    assert {"200"} <= {e["outcome"] for e in entries}
    assert all(e["purpose"] == "credit application" for e in entries if e["action"] == "grade")
    everything = api.call("/audit_log", {"limit": 1000}, key=api.keys.regulator).json()
    assert {"401", "403", "422"} <= {e["outcome"] for e in everything}


def test_grades_history_keeps_model_version(api):
    from sqlalchemy import select

    from creditgrade.features.store import Store
    from creditgrade.serving.tables import grades

    store = Store(api.url)
    rows = store.frame(select(grades))
    store.dispose()
    assert set(rows["origin"]) >= {"api", "batch", "regrade"}
    assert rows["model_version"].notna().all() and rows["model_name"].str.startswith("creditgrade-").all()


def test_no_identity_number_in_clear_in_the_store(api):
    for ric in api.keys.practitioners[:3]:
        api.call("/grade", grade_body(ric, "practitioner", consent_ref="C-9"), key=api.keys.regulator)
        api.call("/grade", grade_body(ric[:-1] + "Z", "practitioner", consent_ref="C-9"), key=api.keys.regulator)
    engine = create_engine(api.url)
    every = MetaData()
    every.reflect(engine)
    with engine.connect() as conn:
        dump = "\n".join(str(row) for table in every.sorted_tables for row in conn.execute(select(table)))
    engine.dispose()
    assert len(every.tables) >= 10 and "regulator" in dump   # every table read, the audit log among them
    shaped = set(re.findall(r"\d{17}[\dX]", dump))
    assert not shaped & set(api.keys.practitioners)


def test_a_revoked_key_stops_working_within_the_key_cache_time(api):
    """Keys are cached for speed, never for longer than ``auth.CACHE_SECONDS``: a revoked key is refused."""
    from creditgrade.serving.auth import CACHE_SECONDS
    from creditgrade.serving.keys import create_key, revoke_key
    from creditgrade.serving.tables import open_store

    store = open_store(api.url)
    key = create_key(store, "bank", "test-revoked-soon")
    body = grade_body(api.keys.smes[2])
    assert api.call("/grade", body, key=key).status_code == 200  # the key is cached now
    revoke_key(store, "test-revoked-soon")
    store.dispose()
    time.sleep(CACHE_SECONDS + 0.1)
    r = api.call("/grade", body, key=key)
    assert r.status_code == 401 and r.json()["field"] == "Authorization"


def test_uncached_grade_is_one_read_statement_and_refuses_in_order(api, monkeypatch):
    """Uncached, a grade reads its subject and records in one statement and writes the grade and its audit
    entry: three statements (through SQLAlchemy or on the driver's cursor), its date's freshness assessed
    once, the same grade as the two-statement path; a bad as-of date is still refused after an unknown
    subject (404) and a subject out of reach (403)."""
    from sqlalchemy import event

    from creditgrade.features import freshness
    from creditgrade.features.ids import make_uscc
    from creditgrade.features.store import Prepared, Store
    from creditgrade.models.registry import load_champion
    from creditgrade.serving.auth import Principal
    from creditgrade.serving.errors import ApiError
    from creditgrade.serving.grading import Grader
    from creditgrade.serving.schemas import GradeRequest

    store = Store(api.url)
    grader = Grader(store, {"sme": load_champion("sme")})
    grader.caching = False
    bank, evaluator = Principal(1, "bank", "b"), Principal(2, "evaluator", "e", frozenset({"x"}))
    req = GradeRequest(**grade_body(api.keys.smes[2], as_of="2024-06-30"))
    grader.grade(bank, req)  # the segment's extent, re-read once a minute
    statements = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0]))
    for name in ("run", "run_many"):
        def spy(self, conn, params, real=getattr(Prepared, name)):
            statements.append(str(self.statement).split()[0])
            return real(self, conn, params)
        monkeypatch.setattr(Prepared, name, spy)
    assessed = []
    monkeypatch.setattr(freshness, "assess", lambda *a, real=freshness.assess: assessed.append(a) or real(*a))
    _, graded = grader.grade(bank, req)
    assert statements == ["SELECT", "INSERT", "INSERT"] and len(assessed) == 1
    with store.engine.connect() as conn:
        apart = grader.evaluate_subject(conn, grader.subject(conn, "sme", req.subject_id), pd.Timestamp(req.as_of))
    assert (graded.pd, graded.grade, graded.reasons) == (apart.pd, apart.grade, apart.reasons)
    future = {"as_of": "2999-01-01"}
    for who, body, status, field in [
            (bank, grade_body(make_uscc("91410100MA0000001"), **future), 404, "subject_id"),
            (evaluator, grade_body(api.keys.smes[2], **future), 403, "segment"),
            (bank, grade_body(api.keys.smes[2], **future), 422, "as_of")]:
        with pytest.raises(ApiError) as refused:
            grader.grade(who, GradeRequest(**body))
        assert (refused.value.status, refused.value.field) == (status, field)
    store.dispose()
