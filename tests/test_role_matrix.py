"""The role matrix as one table: every role × subject-naming action × segment, with and without a consent
reference, against the in-process service (``tests.test_serving.api``). Banks grade natural persons with
consent (rural credit cooperatives, issue 11); every computation on a person needs consent, whatever the
role, unless the person asks about itself (issue 19)."""
from __future__ import annotations

import pytest


SEGMENTS = ("sme", "household", "practitioner")
NA = None  # the action does not apply to the segment
ALL_403 = ((403, 403, 403), (403, 403, 403))
# (role, action): statuses for (sme, household, practitioner) with a consent reference, then without one.
# The household is in the evaluator's township; the practitioner is the subject key's own.
MATRIX = {
    ("bank", "grade"): ((200, 200, 200), (200, 403, 403)),
    ("bank", "grade_batch"): ((200, 200, 200), (200, 403, 403)),
    ("bank", "explain"): ((200, 200, 200), (200, 403, 403)),
    ("bank", "report"): ALL_403,
    ("bank", "evaluation_sheet"): ((NA, 403, NA), (NA, 403, NA)),
    ("evaluator", "grade"): ((403, 200, 403), (403, 403, 403)),
    ("evaluator", "grade_batch"): ((403, 200, 403), (403, 403, 403)),
    ("evaluator", "explain"): ((403, 200, 403), (403, 403, 403)),
    ("evaluator", "report"): ALL_403,
    ("evaluator", "evaluation_sheet"): ((NA, 200, NA), (NA, 400, NA)),
    ("analyst", "grade"): ((200, 403, 403), (200, 403, 403)),
    ("analyst", "grade_batch"): ((200, 403, 403), (200, 403, 403)),
    ("analyst", "explain"): ((200, 403, 403), (200, 403, 403)),
    ("analyst", "report"): ALL_403,
    ("analyst", "evaluation_sheet"): ((NA, 403, NA), (NA, 403, NA)),
    ("regulator", "grade"): ((200, 200, 200), (200, 403, 403)),
    ("regulator", "grade_batch"): ((200, 200, 200), (200, 403, 403)),
    ("regulator", "explain"): ((200, 200, 200), (200, 403, 403)),
    ("regulator", "report"): ((200, 200, 200), (200, 403, 403)),
    ("regulator", "evaluation_sheet"): ((NA, 200, NA), (NA, 400, NA)),
    ("subject", "grade"): ((403, 403, 200), (403, 403, 200)),
    ("subject", "grade_batch"): ALL_403,
    ("subject", "explain"): ((403, 403, 200), (403, 403, 200)),
    ("subject", "report"): ((403, 403, 200), (403, 403, 200)),
    ("subject", "evaluation_sheet"): ((NA, 403, NA), (NA, 403, NA)),
    ("admin", "grade"): ALL_403,
    ("admin", "grade_batch"): ALL_403,
    ("admin", "explain"): ALL_403,
    ("admin", "report"): ((200, 200, 200), (200, 403, 403)),
    ("admin", "evaluation_sheet"): ((NA, 403, NA), (NA, 403, NA)),
}
CASES = [pytest.param(role, action, segment, consent, statuses[0 if consent else 1][i],
                      id=f"{role}-{action}-{segment}-{'consent' if consent else 'no-consent'}")
         for (role, action), statuses in MATRIX.items() for consent in (True, False)
         for i, segment in enumerate(SEGMENTS) if statuses[0 if consent else 1][i] is not NA]


def body_for(keys, action: str, segment: str, consent: bool) -> dict:
    sid = {"sme": keys.smes[20], "household": keys.household, "practitioner": keys.practitioners[0]}[segment]
    consent_ref = {"consent_ref": "CONSENT-MATRIX-1"} if consent else {}
    if action == "evaluation_sheet":
        return {"household_id": sid, "purpose": "role matrix", **consent_ref}
    return {"subject_id": sid, "segment": segment, "purpose": "role matrix", **consent_ref}


@pytest.mark.parametrize("role,action,segment,consent,expected", CASES)
def test_role_matrix(api, role, action, segment, consent, expected):
    body = body_for(api.keys, action, segment, consent)
    batch = action == "grade_batch"
    r = api.call(f"/{action}", [body] if batch else body, key=getattr(api.keys, role))
    answer = r.json()
    status = answer[0]["status"] if batch and r.status_code == 200 else r.status_code
    assert status == expected, r.text[:300]
    if expected >= 400:
        refusal = answer[0] if batch and r.status_code == 200 else answer
        assert refusal["error"] and "field" in refusal
