"""Data freshness: watermarks per source, grades given as of the data (never silently as of today), stale
flags, and as-of dates past a required source's watermark refused naming the source."""
from __future__ import annotations

import datetime as dt

import pytest

from creditgrade.features import freshness
from creditgrade.features.errors import CreditgradeError
from tests.helpers import grade_body

MARKS = {"tax": dt.date(2025, 12, 31), "finance": dt.date(2025, 11, 30), "safety": dt.date(2025, 6, 30)}


def test_month_end():
    assert freshness.month_end(dt.date(2024, 2, 10)) == dt.date(2024, 2, 29)
    assert freshness.month_end(dt.date(2025, 12, 31)) == dt.date(2025, 12, 31)


def test_default_as_of_is_the_earliest_required_watermark():
    assert freshness.default_as_of(MARKS, "sme") == dt.date(2025, 11, 30)  # tax and finance required
    with pytest.raises(CreditgradeError, match="no sme records"):
        freshness.default_as_of({}, "sme")


def test_assess_flags_stale_sources_and_caps_data_as_of():
    f = freshness.assess(MARKS, "sme", dt.date(2025, 12, 31))
    assert f.stale and f.stale_sources == ("safety",)
    assert f.data_as_of == {"tax": dt.date(2025, 12, 31), "finance": dt.date(2025, 11, 30),
                            "safety": dt.date(2025, 6, 30)}
    early = freshness.assess(MARKS, "sme", dt.date(2024, 6, 30))
    assert not early.stale and set(early.data_as_of.values()) == {dt.date(2024, 6, 30)}


def test_assess_refuses_a_date_past_a_required_watermark_naming_it():
    with pytest.raises(CreditgradeError, match=r"finance data's watermark 2025-11-30"):
        freshness.assess(MARKS, "sme", dt.date(2026, 3, 31))
    thin = freshness.assess({"tax": dt.date(2025, 12, 31)}, "sme", dt.date(2025, 12, 31))
    assert thin.stale_sources == ("finance",) and thin.data_as_of == {"tax": dt.date(2025, 12, 31)}


def test_watermarks_only_move_forward(store):
    with store.engine.begin() as conn:
        freshness.advance(conn, {("sme", "tax"): dt.date(2025, 12, 3)})
        freshness.advance(conn, {("sme", "tax"): dt.date(2024, 1, 9), ("sme", "finance"): dt.date(2024, 1, 9)})
    assert freshness.of_store(store, "sme") == {"finance": dt.date(2024, 1, 31), "tax": dt.date(2025, 12, 31)}


def test_grade_without_as_of_uses_the_watermark_and_says_so(api):
    r = api.call("/grade", grade_body(api.keys.smes[2]), key=api.keys.bank)
    assert r.status_code == 200, r.text
    g = r.json()
    marks = {s: dt.date.fromisoformat(d) for s, d in g["data_as_of"].items()}
    assert {"tax", "finance"} <= set(marks)
    assert g["as_of"] == min(marks["tax"], marks["finance"]).isoformat()
    assert g["as_of"] < dt.date.today().isoformat()
    assert g["stale"] is (bool(g["stale_sources"]))


def test_grade_past_the_watermark_is_422_naming_the_source(api):
    r = api.call("/grade", grade_body(api.keys.smes[2]), key=api.keys.bank)
    marks = r.json()["data_as_of"]
    late = (dt.date.fromisoformat(min(marks["tax"], marks["finance"])) + dt.timedelta(days=200)).isoformat()
    r = api.call("/grade", grade_body(api.keys.smes[2], as_of=late), key=api.keys.bank)
    assert r.status_code == 422 and r.json()["field"] == "as_of"
    assert "watermark" in r.json()["error"] and ("tax" in r.json()["error"] or "finance" in r.json()["error"])


def test_ingest_advances_the_watermarks(store, tmp_path):
    import pandas as pd

    from creditgrade.features.ingest import ingest_files
    from creditgrade.features.ids import make_uscc

    sid = make_uscc("91410100MA" + "1234567")
    pd.DataFrame([dict(segment="sme", subject_id=sid, name="Firm", district="410100", sector="retail",
                       size="small", founded="2015-01-01")]).to_csv(tmp_path / "subjects.csv", index=False)
    pd.DataFrame([dict(segment="sme", subject_id=sid, source="tax", kind="tax.payment", start_date=day,
                       reported_date=day, amount=100.0, doc_ref=f"T-{day}") for day in ("2024-03-31", "2024-07-15")]
                 ).to_csv(tmp_path / "records.csv", index=False)
    ingest_files(store, [tmp_path / "subjects.csv", tmp_path / "records.csv"])
    assert freshness.of_store(store, "sme") == {"tax": dt.date(2024, 7, 31)}
