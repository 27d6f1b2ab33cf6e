"""Credit villages and townships: thresholds at their exact boundaries, terms from configuration, ratings
from the store (only the townships asked for are loaded), and the figures remembered until the data change.
The evaluation sheet is tested through the API (tests/test_serving_rural.py)."""
from __future__ import annotations

import pandas as pd
import pytest

from creditgrade.features.store import Store
from creditgrade.models.credit_villages import rate_townships, rate_villages
from creditgrade.models.registry import load_champion
from creditgrade.serving import villages
from creditgrade.serving.villages import household_terms, households
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


def test_ratings_from_the_store(home, monkeypatch):
    store, champion = home
    v = rate_villages(households(store, AS_OF, model=champion))
    every = store.subjects("household")
    assert set(v["village_code"]) == set(every["village_code"])
    assert v["households"].sum() == len(every)
    assert v["rated_share"].between(0, 1).all() and v["clean_share"].dropna().between(0, 1).all()
    one = every["township_code"].iloc[0]
    loaded = []
    real = villages.loader.load
    monkeypatch.setattr(villages.loader, "load", lambda *a, **kw: loaded.append(kw) or real(*a, **kw))
    villages._MEMO.clear()
    mine = rate_villages(households(store, AS_OF, townships=[one], model=champion))
    assert loaded == [{"townships": [one]}]
    assert set(mine["township_code"]) == {one}
    assert mine.set_index("village_code")["credit_village"].equals(
        v.set_index("village_code").loc[mine["village_code"], "credit_village"])
    assert households(store, AS_OF, townships=["419999999"], model=champion).empty


def test_empty_ratings():
    none = pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("village_code", "str"), ("township_code", "str"),
                         ("rated", bool), ("borrowing", bool), ("arrears", bool))})
    v = rate_villages(none)
    assert v.empty and "credit_village" in v and rate_townships(v).empty


def test_household_figures_are_remembered_until_the_data_change(home, trained, tmp_path, monkeypatch):
    """A second read with nothing new models nothing, reads no stored grade and gives the same figures; a
    grade stored for a household counts at once, without modelling; a new record has the township modelled
    afresh."""
    from creditgrade.features.store import records
    from creditgrade.serving.tables import grades

    _, champion = home
    store = Store(database(tmp_path, trained.template))
    one = store.subjects("household")["township_code"].iloc[0]
    first = households(store, AS_OF, townships=[one], model=champion)
    calls = []
    real = villages._modelled
    monkeypatch.setattr(villages, "_modelled", lambda *a: calls.append(a[2]) or real(*a))
    read = []
    real_read = villages.latest_grades
    monkeypatch.setattr(villages, "latest_grades", lambda *a, **kw: read.append(a) or real_read(*a, **kw))
    pd.testing.assert_frame_equal(households(store, AS_OF, townships=[one], model=champion), first)
    assert calls == [] and read == []
    key = first.index[0]
    with store.engine.begin() as conn:
        conn.execute(grades.insert().values(
            subject_key=key, segment="household", as_of=pd.Timestamp(AS_OF).date() - pd.Timedelta(days=1),
            graded_at=pd.Timestamp.now(tz="UTC").to_pydatetime(), pd=0.5, score=1.0, grade="NR",
            model_grade="NR", model_name="test", model_version="0", origin="api"))
    again = households(store, AS_OF, townships=[one], model=champion)
    assert calls == [] and len(read) == 1 and again.loc[key, "grade"] == "NR" and again.loc[key, "graded"] == "stored"
    assert not again.loc[key, "rated"] and again.drop(index=key).equals(first.drop(index=key))
    with store.engine.begin() as conn:
        theirs = records.select().where(records.c.subject_key.in_(first.index.tolist())).limit(1)
        row = conn.execute(theirs).mappings().one()
        copy = {k: v for k, v in row.items() if k != "record_id"}
        conn.execute(records.insert().values({**copy, "doc_ref": "memo-test"}))
    households(store, AS_OF, townships=[one], model=champion)
    assert calls == [[one]]
    store.dispose()
