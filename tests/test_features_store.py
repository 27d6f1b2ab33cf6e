"""Building from the store (chunked) equals building from frames; errors; Parquet export.
On PostgreSQL when CREDITGRADE_TEST_DB_URL is set, else SQLite."""
from __future__ import annotations

import os

import pandas as pd
import pytest
from sqlalchemy import insert

from creditgrade.features import store as tables
from creditgrade.features.build import build_features, build_training_set, out_of_time_split, write_features
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import Frames
from creditgrade.features.store import Store
from tests.helpers import random_population

AS_OF = "2021-09-30"


@pytest.fixture(scope="module")
def pop() -> Frames:
    pop = random_population(n_per_segment=30, records_per_subject=30, seed=9)
    days = pd.to_datetime(["2019-12-31", "2020-12-31", "2021-12-31"])
    subj = pop.subjects[["subject_key", "segment"]]
    pop.outcomes = pd.concat([subj.assign(as_of=d, horizon_months=12, defaulted=i % 2) for i, d in enumerate(days)])
    pop.open_objection_ids = frozenset(pop.records["record_id"].iloc[::40])
    return pop


def _dates(df: pd.DataFrame) -> list[dict]:
    return [{k: (None if pd.isna(v) else v.date() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()}
            for row in df.to_dict("records")]


@pytest.fixture(scope="module")
def store(pop, tmp_path_factory) -> Store:
    from creditgrade.serving import tables as serving_tables

    st = Store(os.environ.get("CREDITGRADE_TEST_DB_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'cg.db'}")
    serving_tables.metadata.drop_all(st.engine)  # first: serving's tables, left by earlier tests, refer to subjects
    tables.metadata.drop_all(st.engine)
    tables.metadata.create_all(st.engine)
    subjects = pop.subjects.assign(display_id=pop.subjects["subject_key"], name="x")
    subjects = subjects[[c.name for c in tables.subjects.columns if c.name in subjects.columns]]
    records = pop.records.assign(doc_ref=pop.records["record_id"].astype(str))
    with st.engine.begin() as conn:
        conn.execute(insert(tables.subjects), _dates(subjects))
        conn.execute(insert(tables.records), _dates(records))
        conn.execute(insert(tables.outcomes), _dates(pop.outcomes))
        conn.execute(insert(tables.objections), [
            {"record_id": int(r), "subject_key": "x", "filed_at": pd.Timestamp("2021-01-01"),
             "due_date": pd.Timestamp("2021-01-21").date(), "status": "open", "reason": "wrong"}
            for r in pop.open_objection_ids])
    yield st
    st.dispose()


@pytest.mark.parametrize("segment", ["sme", "household", "practitioner"])
def test_store_chunks_equal_frames(pop, store, segment):
    expected, disputed = build_features(pop, segment, AS_OF, with_disputed=True)
    got, got_disputed = build_features(store, segment, AS_OF, with_disputed=True, chunk_size=8)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got_disputed == disputed
    pd.testing.assert_frame_equal(build_features(Frames.from_store(store, segment), segment, AS_OF), expected,
                                  check_exact=True)


def test_write_features_round_trips_through_parquet(store, tmp_path):
    out = tmp_path / "f.parquet"
    rows = write_features(store, "sme", AS_OF, out)
    back = pd.read_parquet(out).set_index("subject_key")
    expected = build_features(store, "sme", AS_OF)
    assert rows == len(expected)
    pd.testing.assert_frame_equal(back, expected, check_exact=True)


def test_training_set_stacks_snapshots_and_splits_out_of_time(pop):
    df = build_training_set(pop, "sme")
    assert sorted(df["as_of"].unique()) == list(pd.to_datetime(["2019-12-31", "2020-12-31", "2021-12-31"]))
    assert set(df["defaulted"].unique()) <= {0, 1}
    train, test = out_of_time_split(df, "2021-01-01")
    assert train["as_of"].max() < pd.Timestamp("2021-01-01") <= test["as_of"].min()
    with pytest.raises(CreditgradeError, match="empty"):
        out_of_time_split(df, "2030-01-01")


@pytest.mark.parametrize("segment, as_of, message", [
    ("bank", AS_OF, "unknown segment"),
    ("sme", "2016-01-01", "before the sme data"),    # on the earliest reported date: nothing visible
    ("sme", "2027-01-01", r"past the (tax|finance) data's watermark"),  # a quarter past a required source's data
    ("sme", "30 Febtember", "not a date"),
])
def test_bad_requests_raise_clear_errors(pop, store, segment, as_of, message):
    for source in (pop, store):
        with pytest.raises(CreditgradeError, match=message):
            build_features(source, segment, as_of)


def test_empty_store_raises(tmp_path):
    with pytest.raises(CreditgradeError, match="no sme subjects"):
        build_features(Store(f"sqlite:///{tmp_path / 'empty.db'}"), "sme", AS_OF)
    with pytest.raises(CreditgradeError, match="no household outcomes"):
        build_training_set(Store(f"sqlite:///{tmp_path / 'empty.db'}"), "household")
