"""Early warnings, credit villages and evaluation sheets over HTTP (in process, as ``tests/test_serving.py``):
who may call them, the evaluator's township limit, acknowledgement and its audit, village shares equal
to the figures of ``serving.villages``, and a sheet that shows the grade and only the masked head id."""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.helpers import grade_body

AS_OF = "2024-09-30"
PATHS = ("/warnings", "/acknowledge_warning", "/villages", "/evaluation_sheet")


@pytest.fixture(scope="module")
def rural(api, trained):
    """Two quarterly scans (so grade changes warn too) of households, SMEs and practitioners, in the
    service's store, and an evaluator key for the township with most household warnings."""
    from creditgrade.features.store import Store
    from creditgrade.models.registry import load_champion
    from creditgrade.serving.keys import create_key
    from creditgrade.serving.warnings import list_warnings, scan

    store = Store(api.url)
    champions = {}
    for segment, days in (("household", ("2024-06-30", AS_OF)), ("sme", ("2024-06-30", AS_OF)),
                          ("practitioner", ("2024-06-30", AS_OF))):
        champions[segment] = load_champion(segment)
        for day in days:
            scan(store, segment, day, champions[segment])
    warned = list_warnings(store, segment="household", limit=None)
    township, _ = Counter(w["township_code"] for w in warned).most_common(1)[0]
    evaluator = create_key(store, "evaluator", "rural-evaluator", townships=[township])
    people = pd.read_parquet(trained.paths["subjects"])
    houses = people[people["segment"] == "household"]
    mine = houses[houses["village_code"].str[:9] == township]
    other = houses[houses["village_code"].str[:9] != township]
    yield SimpleNamespace(store=store, champion=champions["household"], township=township, evaluator=evaluator,
                          warned=warned, house=mine.iloc[0], other_house=other.iloc[0],
                          clear_ids=set(people["subject_id"][people["segment"] == "practitioner"])
                          | set(houses["head_id"].dropna()))
    store.dispose()


def _audit(api, action: str) -> list[dict]:
    entries = api.call("/audit_log", {"limit": 1000}, key=api.keys.regulator).json()
    return [e for e in entries if e["action"] == action]


def test_rural_paths_need_a_key_and_are_documented(api):
    for path in PATHS:
        r = api.call(path, {})
        assert r.status_code == 401 and r.json()["field"] == "Authorization", path
    spec = api.call("/docs.json", method="GET").json()
    for path in PATHS:
        op = spec["paths"][path]["post"]
        assert op["security"] == [{"apiKey": []}] and {"401", "403", "404", "422"} <= set(op["responses"]), path


@pytest.mark.parametrize("role,path", [
    ("subject", "/warnings"), ("subject", "/acknowledge_warning"), ("regulator", "/acknowledge_warning"),
    ("bank", "/villages"), ("analyst", "/villages"), ("subject", "/villages"), ("bank", "/evaluation_sheet"),
    ("admin", "/evaluation_sheet"), ("analyst", "/evaluation_sheet"), ("subject", "/evaluation_sheet"),
])
def test_roles_without_the_right_get_403(api, role, path):
    r = api.call(path, {}, key=getattr(api.keys, role))
    assert r.status_code == 403 and "may not" in r.json()["error"], r.text


def test_warnings_within_each_roles_reach(api, rural):
    everything = api.call("/warnings", {"limit": 1000}, key=api.keys.regulator)
    assert everything.status_code == 200, everything.text
    assert {w["segment"] for w in everything.json()} == {"sme", "household", "practitioner"}
    borrower = next(w["subject"] for w in everything.json() if w["segment"] == "sme")
    assert api.call("/grade", grade_body(borrower), key=api.keys.bank).status_code == 200  # a bank sees its borrowers'
    for role in ("bank", "analyst"):
        smes = api.call("/warnings", {"limit": 1000}, key=getattr(api.keys, role)).json()
        assert smes and {w["segment"] for w in smes} == {"sme"}
        r = api.call("/warnings", {"segment": "household"}, key=getattr(api.keys, role))
        assert r.status_code == 403 and r.json()["field"] == "segment"
    mine = api.call("/warnings", {"limit": 1000}, key=rural.evaluator).json()
    assert mine and {(w["segment"], w["township_code"]) for w in mine} == {("household", rural.township)}
    assert len(mine) == sum(w["township_code"] == rural.township for w in rural.warned)
    assert api.call("/warnings", {"segment": "sme"}, key=rural.evaluator).json()["field"] == "segment"
    assert api.call("/warnings", {}, key=api.keys.admin).status_code == 200

    w = mine[0]
    assert w["level"] in ("red", "orange", "yellow") and w["trigger"] == w["evidence"]["trigger"]
    assert w["as_of"] in ("2024-06-30", AS_OF) and w["subject"].startswith("H") and w["acknowledged"] is False
    persons = [w for w in everything.json() if w["segment"] == "practitioner"]
    assert persons and all("*" in w["subject"] for w in persons)
    assert not any(clear in everything.text for clear in rural.clear_ids)

    red = api.call("/warnings", {"level": "red", "limit": 1000}, key=api.keys.regulator).json()
    assert {w["level"] for w in red} <= {"red"}
    assert len(api.call("/warnings", {"limit": 3}, key=api.keys.regulator).json()) == 3
    later = api.call("/warnings", {"since": AS_OF, "limit": 1000}, key=api.keys.regulator).json()
    assert later and {w["as_of"] for w in later} == {AS_OF}
    assert api.call("/warnings", {"since": "2024-10-01"}, key=api.keys.regulator).json() == []
    for bad in ({"level": "purple"}, {"limit": 0}, {"since": "2024-02-30"}, {"colour": "red"}):
        r = api.call("/warnings", bad, key=api.keys.regulator)
        assert r.status_code == 400 and "Traceback" not in r.text and r.json()["error"], bad
    assert _audit(api, "warnings")[0]["outcome"] in ("200", "400")


def test_acknowledge_in_reach_and_audited(api, rural):
    theirs = api.call("/warnings", {"acknowledged": False}, key=rural.evaluator).json()[0]
    done = api.call("/acknowledge_warning", {"warning_id": theirs["warning_id"]}, key=rural.evaluator)
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged"] is True and done.json()["acknowledged_by"] == "rural-evaluator"
    again = api.call("/acknowledge_warning", {"warning_id": theirs["warning_id"]}, key=api.keys.admin).json()
    assert again["acknowledged_by"] == "rural-evaluator"  # the first acknowledgement stands
    acked = api.call("/warnings", {"acknowledged": True}, key=rural.evaluator).json()
    assert theirs["warning_id"] in {w["warning_id"] for w in acked}
    assert theirs["warning_id"] not in {
        w["warning_id"] for w in api.call("/warnings", {"acknowledged": False, "limit": 1000},
                                          key=rural.evaluator).json()}

    elsewhere = next(w for w in rural.warned if w["township_code"] != rural.township)
    r = api.call("/acknowledge_warning", {"warning_id": elsewhere["warning_id"]}, key=rural.evaluator)
    assert r.status_code == 403 and r.json()["field"] == "warning_id" and "township" in r.json()["error"]
    r = api.call("/acknowledge_warning", {"warning_id": elsewhere["warning_id"]}, key=api.keys.bank)
    assert r.status_code == 403 and "sme" in r.json()["error"]
    sme = api.call("/warnings", {}, key=api.keys.bank).json()[0]
    assert api.call("/acknowledge_warning", {"warning_id": sme["warning_id"]},
                    key=api.keys.analyst).json()["acknowledged_by"] == "test-analyst"
    r = api.call("/acknowledge_warning", {"warning_id": 2**31 - 1}, key=api.keys.admin)
    assert r.status_code == 404 and r.json()["field"] == "warning_id"
    for bad in ("x", 0, 2**31):
        assert api.call("/acknowledge_warning", {"warning_id": bad}, key=api.keys.admin).status_code == 400

    entries = _audit(api, "acknowledge_warning")
    assert {"200", "403", "404", "400"} <= {e["outcome"] for e in entries}
    assert any(e["outcome"] == "200" and f"warning {theirs['warning_id']} " in e["detail"]
               and "rural-evaluator" in e["detail"] for e in entries)


def test_villages_match_the_ratings_and_stay_in_township(api, rural):
    from creditgrade.models.credit_villages import rate_villages
    from creditgrade.serving.villages import households

    r = api.call("/villages", {"as_of": AS_OF}, key=rural.evaluator)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["as_of"] == AS_OF
    assert {v["township_code"] for v in got["villages"]} == {rural.township}
    assert [t["township_code"] for t in got["townships"]] == [rural.township]
    for v in got["villages"]:
        assert 0 <= v["rated_share"] <= 1 and (v["clean_share"] is None or 0 <= v["clean_share"] <= 1)
        assert v["rated"] <= v["households"] and v["borrowing_clean"] <= v["borrowing"] <= v["households"]
    town = got["townships"][0]
    assert 0 <= town["credit_village_share"] <= 1
    assert town["credit_villages"] == sum(v["qualifies"] for v in got["villages"])

    direct = rate_villages(households(rural.store, AS_OF, townships=[rural.township], model=rural.champion))
    direct = direct.set_index("village_code")
    served = pd.DataFrame(got["villages"]).set_index("village_code").loc[direct.index]
    assert served["households"].tolist() == direct["households"].tolist()
    assert served["rated_share"].tolist() == pytest.approx(direct["rated_share"].tolist())
    assert served["clean_share"].astype(float).fillna(-1).tolist() == pytest.approx(
        direct["clean_share"].fillna(-1).tolist())
    assert served["qualifies"].tolist() == direct["credit_village"].tolist()

    everything = api.call("/villages", {"as_of": AS_OF}, key=api.keys.regulator).json()
    assert len({t["township_code"] for t in everything["townships"]}) > 1
    picked = api.call("/villages", {"as_of": AS_OF, "townships": [rural.township]}, key=api.keys.admin).json()
    assert picked["villages"] == got["villages"]
    other = rural.other_house["village_code"][:9]
    r = api.call("/villages", {"townships": [other]}, key=rural.evaluator)
    assert r.status_code == 403 and r.json()["field"] == "townships"
    r = api.call("/villages", {"as_of": "2999-01-01"}, key=rural.evaluator)
    assert r.status_code == 422 and r.json()["field"] == "as_of"
    assert api.call("/villages", {"townships": ["41012"]}, key=api.keys.regulator).status_code == 400
    assert {"200", "403", "422"} <= {e["outcome"] for e in _audit(api, "villages")}


def test_evaluation_sheet_shows_grade_and_masked_head_only(api, rural):
    from creditgrade.features.store import subjects

    house = rural.house
    body = {"household_id": house["subject_id"], "as_of": AS_OF, "consent_ref": "CONSENT-H-1"}
    r = api.call("/evaluation_sheet", body, key=rural.evaluator)
    assert r.status_code == 200, r.text
    page = r.json()["html"]
    grade = api.call("/grade", grade_body(house["subject_id"], "household", as_of=AS_OF, consent_ref="C-1"),
                     key=rural.evaluator).json()["grade"]
    assert f'class="grade">{grade}' in page and house["subject_id"] in page
    assert "信用等级" in page and "Grade" in page and "优惠条件" in page
    masked = rural.store.frame(subjects.select().where(subjects.c.subject_key == house["subject_id"]))
    assert masked["head_id_masked"].iloc[0] in page and house["head_id"] not in page
    assert not any(clear in page for clear in rural.clear_ids)
    from creditgrade.serving.tables import grades
    given = rural.store.frame(grades.select().where(grades.c.subject_key == house["subject_id"],
                                                     grades.c.origin == "sheet"))
    assert len(given) == 1 and given["grade"].iloc[0] == grade and str(given["as_of"].iloc[0]) == AS_OF
    assert api.call("/evaluation_sheet", body, key=api.keys.regulator).status_code == 200

    no_consent = api.call("/evaluation_sheet", {k: v for k, v in body.items() if k != "consent_ref"},
                          key=rural.evaluator)
    assert no_consent.status_code == 400 and "consent_ref" in no_consent.text
    r = api.call("/evaluation_sheet", {**body, "household_id": rural.other_house["subject_id"]}, key=rural.evaluator)
    assert r.status_code == 403 and r.json()["field"] == "subject_id" and "township" in r.json()["error"]
    r = api.call("/evaluation_sheet", {**body, "household_id": "H123"}, key=rural.evaluator)
    assert r.status_code == 422 and r.json()["field"] == "subject_id"
    r = api.call("/evaluation_sheet", {**body, "household_id": "H" + "9" * 16}, key=api.keys.regulator)
    assert r.status_code == 404 and r.json()["field"] == "subject_id"
    r = api.call("/evaluation_sheet", {**body, "as_of": "1999-12-31"}, key=api.keys.regulator)
    assert r.status_code == 422 and r.json()["field"] == "as_of"

    entries = _audit(api, "evaluation_sheet")
    assert {"200", "400", "403", "404", "422"} <= {e["outcome"] for e in entries}
    served = [e for e in entries if e["outcome"] == "200"]
    assert served and all(e["consent_ref"] == "CONSENT-H-1" and e["subject_key"] == house["subject_id"]
                          for e in served)
    refused = next(e for e in entries if e["outcome"] == "403")
    assert refused["subject_key"] == rural.other_house["subject_id"] and refused["segment"] == "household"
