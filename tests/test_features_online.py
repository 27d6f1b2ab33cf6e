"""The per-subject feature path (``features.online``) equals the batch builder (``features.build``):
every feature to 1e-9 (NaN equal, categories equal) and the same disputed records with the same features,
for random subjects of every segment and random as-of dates, with retired (past the 5-year retention),
repaired, late-reported, open and disputed records; and from the store through ``features.loader``."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from creditgrade.features import loader, online
from creditgrade.features import store as tables
from creditgrade.features.build import build_features, disputed_of, features_of
from creditgrade.features.catalog import spec
from creditgrade.features.frames import normalise_records, normalise_subjects
from creditgrade.features.profile import exists_at
from creditgrade.features.schemas import kinds
from creditgrade.features.snapshot import still_counts

DAY0 = dt.date(2016, 1, 1)
SEGMENTS = ("sme", "household", "practitioner")
TEXT = {"severity": [None, "minor", "general", "serious"], "account": [None, "L1", "L2", "L3"]}


def _categories(kind: str) -> list:
    return [None, *kinds()[kind].get("categories", ["A", "pass", "fail"])]


days = st.integers(0, 3650).map(lambda d: DAY0 + dt.timedelta(days=d))
coarse_days = st.integers(0, 120).map(lambda m: DAY0 + dt.timedelta(days=30 * m))  # ties on start dates


@st.composite
def record(draw, rid: int, key: str):
    kind = draw(st.sampled_from(sorted(kinds())))
    start = draw(st.one_of(days, coarse_days))
    end = draw(st.one_of(st.none(), st.integers(0, 2500).map(lambda d: start + dt.timedelta(days=d))))
    return {
        "record_id": rid, "subject_key": key, "kind": kind, "source": kinds()[kind]["source"],
        "start_date": start, "end_date": end,
        "reported_date": start + dt.timedelta(days=draw(st.integers(0, 400))),
        "repaired_date": draw(st.one_of(st.none(), st.integers(0, 2000).map(lambda d: start + dt.timedelta(days=d)))),
        "severity": draw(st.sampled_from(TEXT["severity"])), "account": draw(st.sampled_from(TEXT["account"])),
        "category": draw(st.sampled_from(_categories(kind))),
        "amount": draw(st.one_of(st.none(), st.floats(0, 1e7))),
        "value": draw(st.one_of(st.none(), st.floats(0, 400), st.integers(0, 120).map(float))),
        "disputed": draw(st.booleans()),
    }


@st.composite
def subject(draw, key: str, segment: str):
    def among(name):
        return draw(st.sampled_from([None, "not_a_category", *spec(name).categories]))
    return {
        "subject_key": key, "segment": segment, "sector": among("sector") if segment == "sme" else None,
        "size": among("size") if segment == "sme" else None,
        "founded": draw(st.one_of(st.none(), days)), "licensed_since": draw(st.one_of(st.none(), days)),
        "members": draw(st.one_of(st.none(), st.integers(0, 8))),
        "labour_force": draw(st.one_of(st.none(), st.integers(0, 4))),
        "land_mu": draw(st.one_of(st.none(), st.floats(0, 50))),
        "agri_insurance": draw(st.one_of(st.none(), st.booleans())),
        "coop_member": draw(st.one_of(st.none(), st.booleans())),
        "profession": among("profession") if segment == "practitioner" else None,
    }


@st.composite
def population(draw):
    """A segment, three subjects of it with up to 40 records each, and an as-of date."""
    segment = draw(st.sampled_from(SEGMENTS))
    subjects, records = [], []
    for i in range(3):
        key = f"K{i}"
        subjects.append(draw(subject(key, segment)))
        for _ in range(draw(st.integers(0, 40))):
            records.append(draw(record(len(records) + 1, key)))
    draw(st.randoms()).shuffle(records)  # the store's order is not the record_id order
    as_of = pd.Timestamp(draw(st.integers(0, 4400).map(lambda d: DAY0 + dt.timedelta(days=d))))
    return segment, subjects, records, as_of


def arrays_of(records: list[dict]) -> dict[str, np.ndarray]:
    """One subject's records as ``loader.subject_records`` gives them (dates as the database's day numbers)."""
    def read(r, n):
        return (r[n] - dt.date(1970, 1, 1)).days if n in loader.DATES and r[n] is not None else r[n]

    rows = sorted(records, key=lambda r: r["record_id"])
    return loader.arrays(loader.ONE_COLUMNS, [tuple(read(r, n) for n in loader.ONE_COLUMNS) for r in rows])


def assert_same_row(columns: dict, key: str, batch_row: pd.DataFrame) -> None:
    """The per-subject frame equals the batch row, and so does its model input (``online.table``)."""
    online_row = online.frame(columns, key)
    assert list(online_row.columns) == list(batch_row.columns) and list(online_row.index) == list(batch_row.index)
    values, labels = online.table(columns, list(batch_row.columns))
    for j, name in enumerate(batch_row.columns):
        b = batch_row[name]
        if isinstance(b.dtype, pd.CategoricalDtype):
            assert labels[j] == b.cat.categories.tolist(), name
            code = b.cat.codes.iloc[0]
            assert (np.isnan(values[0, j]) and code < 0) or values[0, j] == code, name
        else:
            np.testing.assert_allclose(values[0, j], b.iloc[0], rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=name)
    for name in batch_row.columns:
        a, b = online_row[name], batch_row[name]
        assert a.dtype == b.dtype, name
        if isinstance(b.dtype, pd.CategoricalDtype):
            assert a.astype(object).fillna("<NA>").tolist() == b.astype(object).fillna("<NA>").tolist(), name
        else:
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-9,
                                       equal_nan=True, err_msg=name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(population())
def test_online_equals_batch(case):
    segment, subjects, records, as_of = case
    subj = normalise_subjects(pd.DataFrame(subjects))
    recs = normalise_records(pd.DataFrame(records, columns=[*records[0]] if records else list(loader.DATES)))
    recs = recs[recs["reported_date"] < as_of]  # as the loader reads them
    batch = features_of(subj, recs, segment, as_of)
    open_ids = frozenset(r["record_id"] for r in records if r["disputed"])
    batch_disputed = disputed_of(subj, recs, segment, as_of, open_ids, batch)
    for row, present in zip(subjects, exists_at(subj, segment, as_of)):
        key = row["subject_key"]
        mine = arrays_of([r for r in records if r["subject_key"] == key and r["reported_date"] < as_of.date()])
        columns = online.features(row, mine, segment, as_of)
        assert_same_row(columns, key, batch.loc[[key]])
        assert online.disputed(row, mine, segment, as_of, columns) == batch_disputed.get(key, [])
        assert online.exists(row, segment, as_of) == present


def test_retired_repaired_and_disputed_records_are_exercised():
    """The cases the property test relies on occur: a record past retention, one repaired before the date,
    and a disputed record that counts (so the comparison above is not vacuous)."""
    as_of = pd.Timestamp("2024-06-30")
    rows = [dict(record_id=1, subject_key="K0", kind="tax.arrears", source="tax", start_date=dt.date(2017, 1, 5),
                 end_date=dt.date(2018, 1, 5), reported_date=dt.date(2017, 2, 1), repaired_date=None,
                 severity="serious", account=None, category=None, amount=5e4, value=None, disputed=False),
            dict(record_id=2, subject_key="K0", kind="safety.violation", source="safety",
                 start_date=dt.date(2023, 1, 5), end_date=None, reported_date=dt.date(2023, 2, 1),
                 repaired_date=dt.date(2024, 3, 1), severity="general", account=None, category=None, amount=None,
                 value=None, disputed=False),
            dict(record_id=3, subject_key="K0", kind="tax.arrears", source="tax", start_date=dt.date(2024, 1, 5),
                 end_date=None, reported_date=dt.date(2024, 2, 1), repaired_date=None, severity="general",
                 account=None, category=None, amount=1e4, value=None, disputed=True)]
    recs = normalise_records(pd.DataFrame(rows))
    assert still_counts(recs, as_of).tolist() == [False, False, True]
    subject_row = {"subject_key": "K0", "segment": "sme", "founded": dt.date(2010, 1, 1), "sector": None,
                   "size": None}
    columns = online.features(subject_row, arrays_of(rows), "sme", as_of)
    assert columns["tax_arrears_open"][0] == 1 and columns["tax_arrears_open_amount"][0] == 1e4
    assert columns["safety_violations_12m"][0] == 0
    changed = dict(online.disputed(subject_row, arrays_of(rows), "sme", as_of, columns))
    assert {"tax_arrears_open", "tax_arrears_open_amount", "tax_arrears_12m"} <= set(changed[3])


# ---------------------------------------------------------------- from the store, through the loader

@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    """The committed sample's first 25 subjects of each segment, ingested, with open objections."""
    from pathlib import Path

    from creditgrade.features.ingest import ingest_files
    from creditgrade.features.store import Store

    sample = Path(__file__).parents[1] / "data" / "sample"
    tmp = tmp_path_factory.mktemp("sample")
    subjects = pd.read_parquet(sample / "subjects.parquet")
    subjects = subjects.groupby("segment", group_keys=False).head(25)
    records = pd.read_parquet(sample / "records.parquet")
    records = records[records["subject_id"].isin(subjects["subject_id"])]
    subjects.to_parquet(tmp / "subjects.parquet")
    records.to_parquet(tmp / "records.parquet")
    st_ = Store(f"sqlite:///{tmp / 'cg.db'}")
    ingest_files(st_, [tmp / "subjects.parquet", tmp / "records.parquet"])
    with st_.engine.begin() as conn:
        ids = conn.execute(tables.records.select().with_only_columns(
            tables.records.c.record_id, tables.records.c.subject_key).where(tables.records.c.record_id % 17 == 0))
        conn.execute(insert(tables.objections), [  # filed by the record's subject, as serving files them
            {"record_id": rid, "subject_key": key, "filed_at": dt.datetime(2025, 1, 1),
             "due_date": dt.date(2025, 1, 21), "status": "open", "reason": "wrong"} for rid, key in ids])
    yield st_
    st_.dispose()


@pytest.mark.parametrize("segment", SEGMENTS)
@pytest.mark.parametrize("as_of", ["2022-03-31", "2025-12-31"])
def test_online_from_the_store_equals_batch(sample_store, segment, as_of):
    batch, batch_disputed = build_features(sample_store, segment, as_of, with_disputed=True)
    day = pd.Timestamp(as_of)
    assert len(batch) > 0
    with sample_store.engine.connect() as conn:
        rows = {r.subject_key: r._asdict() for r in loader.subject_rows(conn, batch.index)}
        for key in batch.index:
            mine = loader.subject_records(conn, key, day.date())
            columns = online.features(rows[key], mine, segment, day)
            assert_same_row(columns, key, batch.loc[[key]])
            assert online.disputed(rows[key], mine, segment, day, columns) == batch_disputed.get(key, [])
    assert batch_disputed, "the sample's objections should touch some counting records"


@pytest.mark.parametrize("segment", SEGMENTS)
def test_many_subjects_from_arrays_equal_batch(sample_store, segment, monkeypatch):
    """``online.many`` (the batch grading path: records of many subjects as arrays, loaded in key parts)
    equals the batch builder, disputed records included; subjects not existing yet are left out by ``exist``."""
    day = pd.Timestamp("2025-12-31")
    batch, batch_disputed = build_features(sample_store, segment, day, with_disputed=True)
    monkeypatch.setattr(loader, "KEYS_PER_STATEMENT", 7)
    with sample_store.engine.connect() as conn:
        keys = [r.subject_key for r in conn.execute(loader.subjects_query(segment))]
        rows = [r._asdict() for r in loader.subject_rows(conn, keys)]
        rows = [row for row, there in zip(rows, online.exist(rows, segment, day)) if there]
        recs = loader.many_records(conn, [row["subject_key"] for row in rows], day.date())
    assert [row["subject_key"] for row in rows] == batch.index.tolist()
    columns = online.many(rows, recs, segment, day)
    for i, key in enumerate(batch.index):
        assert_same_row({n: v[i:i + 1] for n, v in columns.items()}, key, batch.loc[[key]])
    assert online.many_disputed(rows, recs, segment, day, columns) == batch_disputed


def test_load_in_key_parts_equals_one_statement(sample_store, monkeypatch):
    """A long list of keys is loaded :data:`loader.KEYS_PER_STATEMENT` at a time: the same subjects, records
    and open objections as in one statement."""
    day = dt.date(2025, 12, 31)
    with sample_store.engine.connect() as conn:
        keys = [r.subject_key for r in conn.execute(loader.subjects_query("sme"))][:40]
        whole = loader.load(conn, "sme", day, keys=keys)
        monkeypatch.setattr(loader, "KEYS_PER_STATEMENT", 7)
        parts = loader.load(conn, "sme", day, keys=keys)
        assert [r.subject_key for r in loader.subject_rows(conn, keys)] == keys
    assert len(whole.subjects) == len(keys) and len(whole.records) > 0
    pd.testing.assert_frame_equal(parts.subjects, whole.subjects)
    pd.testing.assert_frame_equal(parts.records.reset_index(drop=True), whole.records.reset_index(drop=True))
    assert parts.open_ids == whole.open_ids
