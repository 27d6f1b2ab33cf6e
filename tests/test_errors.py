"""One error shape (issue 14, item 2): every error answer is ``{"error", "field", "rule"}`` in plain words,
a schema error lists each broken rule without echoing the input or linking pydantic's site; the evaluation
sheet names its household ``subject_id`` like every other call (``household_id`` still accepted)."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from creditgrade.serving.gate import error_body
from creditgrade.serving.schemas import GradeRequest

RIC = "410122199001011234"  # shaped like a resident identity number


def test_schema_errors_become_plain_field_and_rule():
    with pytest.raises(ValidationError) as err:
        GradeRequest.model_validate({"subject_id": RIC, "segment": "practitioner", "as_of": "2025-13-01"})
    raw = json.dumps({"error": "validation failed", "detail": err.value.errors(include_context=False)}, default=str)
    assert "errors.pydantic.dev" in raw and RIC in raw  # what pydantic gives
    body = error_body(raw.encode())
    assert (body["field"], body["rule"]) == ("as_of", "date_from_datetime_parsing")
    assert body["error"].startswith("as_of: Input should be a valid date") and "(and 1 more)" in body["error"]
    assert [(d["field"], d["rule"]) for d in body["detail"]] == [("as_of", "date_from_datetime_parsing"),
                                                                 ("purpose", "missing")]
    text = json.dumps(body)
    assert "pydantic.dev" not in text and RIC not in text and "input" not in text


def test_every_error_answer_has_the_same_keys(api):  # noqa: F811
    missing_key = api.call("/grade", {"subject_id": api.keys.smes[0], "segment": "sme", "purpose": "p"})
    no_purpose = api.call("/grade", {"subject_id": api.keys.smes[0], "segment": "sme"}, key=api.keys.bank)
    bad_date = api.call("/grade", {"subject_id": api.keys.smes[0], "segment": "sme", "purpose": "p",
                                   "as_of": "2025-02-30"}, key=api.keys.bank)
    for r in (missing_key, no_purpose, bad_date):
        assert r.status_code >= 400 and {"error", "field", "rule"} <= set(r.json()), r.text
        assert "pydantic.dev" not in r.text
    assert (no_purpose.json()["field"], no_purpose.json()["rule"]) == ("purpose", "missing")
    assert (missing_key.json()["field"], missing_key.json()["rule"]) == ("Authorization", "api_key")
    assert bad_date.json()["field"] == "as_of"


def test_evaluation_sheet_takes_subject_id_and_the_old_name(api):  # noqa: F811
    body = {"consent_ref": "CONSENT-1", "purpose": "sheet"}
    new = api.call("/evaluation_sheet", {**body, "subject_id": api.keys.household}, key=api.keys.evaluator)
    old = api.call("/evaluation_sheet", {**body, "household_id": api.keys.household}, key=api.keys.evaluator)
    assert new.status_code == old.status_code == 200
    unknown = api.call("/evaluation_sheet", {**body, "subject_id": "H" + "9" * 16}, key=api.keys.regulator)
    assert unknown.status_code == 404 and unknown.json()["field"] == "subject_id"
    spec = api.call("/docs.json", method="GET").json()
    schema = spec["paths"]["/evaluation_sheet"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    sheet = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
    assert "subject_id" in sheet["properties"] and "household_id" not in sheet["properties"]
