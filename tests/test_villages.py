"""Credit villages and townships: thresholds at their exact boundaries, terms from configuration, ratings
from the store, and the evaluation sheet (grade and masked head id shown, never the clear id)."""
from __future__ import annotations

import pandas as pd
import pytest

from creditgrade.features.store import Store
from creditgrade.models.registry import load_champion
from creditgrade.serving.villages import evaluation_sheet, household_terms, rate_townships, rate_villages, village_ratings
from tests.helpers import database, point_at

AS_OF = "2024-09-30"


def _village(code: str, n: int, rated: int, borrowing: int, clean: int) -> pd.DataFrame:
    """``n`` households: ``rated`` of them rated, ``borrowing`` borrowing of which ``clean`` without arrears."""
    return pd.DataFrame({"village_code": code, "township_code": code[:9],
                         "rated": [i < rated for i in range(n)], "borrowing": [i < borrowing for i in range(n)],
                         "arrears": [clean <= i < borrowing for i in range(n)]})


def test_village_thresholds_are_inclusive():
    h = pd.concat([_village("410000001001", 20, 14, 20, 17),   # exactly 70 % rated, exactly 85 % clean
                   _village("410000001002", 20, 13, 20, 20),   # 65 % rated
                   _village("410000001003", 20, 20, 20, 16),   # 80 % clean
                   _village("410000001004", 10, 7, 0, 0),      # no borrowers: the arrears test passes
                   _village("410000002001", 10, 10, 10, 10),
                   _village("410000002002", 10, 0, 0, 0),
                   _village("410000002003", 10, 0, 0, 0)])
    v = rate_villages(h).set_index("village_code")
    assert v["credit_village"].tolist() == [True, False, False, True, True, False, False]
    assert v.loc["410000001001", "rated_share"] == 0.7 and v.loc["410000001001", "clean_share"] == 0.85
    assert pd.isna(v.loc["410000001004", "clean_share"])
    t = rate_townships(v.reset_index()).set_index("township_code")
    assert t.loc["410000001", "credit_village_share"] == 0.5 and t.loc["410000001", "credit_township"]
    assert t.loc["410000002", "credit_villages"] == 1 and not t.loc["410000002", "credit_township"]


def test_terms_come_from_configuration():
    assert household_terms("AAA") == {"grade": "AAA", "eligible": True, "credit_line_cny": 300000,
                                      "rate_discount_bp": -50}
    assert household_terms("A")["credit_line_cny"] == 100000
    assert household_terms("NR") == {"grade": "NR", "eligible": False, "credit_line_cny": 0, "rate_discount_bp": 0}


@pytest.fixture(scope="module")
def home(trained):
    mp = pytest.MonkeyPatch()
    point_at(trained, mp)
    store = Store(trained.db_url)
    yield store, load_champion("household")
    store.dispose()
    mp.undo()


def test_ratings_from_the_store(home):
    store, champion = home
    v = village_ratings(store, AS_OF, model=champion)
    households = store.subjects("household")
    assert set(v["village_code"]) == set(households["village_code"])
    assert v["households"].sum() == len(households)
    assert v["rated_share"].between(0, 1).all() and v["clean_share"].dropna().between(0, 1).all()
    one = households["township_code"].iloc[0]
    mine = village_ratings(store, AS_OF, townships=[one], model=champion)
    assert set(mine["township_code"]) == {one}
    assert mine.set_index("village_code")["credit_village"].equals(
        v.set_index("village_code").loc[mine["village_code"], "credit_village"])


def test_evaluation_sheet(home, trained):
    store, champion = home
    subjects = pd.read_parquet(trained.paths["subjects"])
    row = subjects[subjects["segment"] == "household"].iloc[0]
    page = evaluation_sheet(store, row["subject_id"], AS_OF, model=champion)
    stored = store.subjects("household").set_index("display_id").loc[row["subject_id"]]
    assert row["head_id"] not in page
    assert stored["head_id_masked"] in page and row["subject_id"] in page
    assert "信用等级" in page and "Grade" in page and "优惠条件" in page
    graded = [g for g in ("AAA", "AA", "A", "NR") if f'class="grade">{g}' in page]
    assert len(graded) == 1



def test_household_figures_are_remembered_until_the_data_change(home, trained, tmp_path, monkeypatch):
    """A second read with nothing new costs one stamp query and gives the same figures; a grade stored for a
    household (a changed stamp) is taken into account."""
    from creditgrade.serving import villages
    from creditgrade.serving.tables import grades

    _, champion = home
    store = Store(database(tmp_path, trained.template))
    first = villages.households(store, AS_OF, model=champion)
    calls = []
    real = villages._households
    monkeypatch.setattr(villages, "_households", lambda *a: calls.append(a) or real(*a))
    pd.testing.assert_frame_equal(villages.households(store, AS_OF, model=champion), first)
    assert calls == []
    key = first.index[0]
    with store.engine.begin() as conn:
        conn.execute(grades.insert().values(
            subject_key=key, segment="household", as_of=pd.Timestamp(AS_OF).date() - pd.Timedelta(days=1),
            graded_at=pd.Timestamp.now(tz="UTC").to_pydatetime(), pd=0.5, score=1.0, grade="NR",
            model_grade="NR", model_name="test", model_version="0", origin="api"))
    again = villages.households(store, AS_OF, model=champion)
    assert len(calls) == 1 and again.loc[key, "grade"] == "NR" and again.loc[key, "graded"] == "stored"
    store.dispose()
