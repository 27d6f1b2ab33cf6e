"""The policy layer over HTTP: a defaulter is graded D and a capped subject's binding rule is its first
reason, with the rule's action, record, authority and date as fields of the answer (not only in the text)."""
from __future__ import annotations

from tests.helpers import grade_body


def test_binding_rule_is_the_first_reason_with_its_evidence(api):
    body = [grade_body(sid, as_of="2024-12-31") for sid in api.keys.smes]
    r = api.call("/grade_batch", body, key=api.keys.bank)
    assert r.status_code == 200, r.text
    graded = [item["result"] for item in r.json() if item["status"] == 200]
    bound = [g for g in graded if g["override"]]
    assert bound, "the sample has SMEs bound by a policy rule at 2024-12-31"
    for g in bound:
        first = g["reasons"][0]
        assert first["override"] is True and first["policy"] in ("default", "cap")
        assert first["record_id"] is not None and set(first["authority"]) == {"en", "zh"}
        assert first["en"] and first["zh"]
        if first["policy"] == "default":
            assert g["grade"] == "D" and first["since"] is not None
    assert any(g["grade"] == "D" for g in bound)
