"""Feature vectors per subject as of a date, training sets of as-of snapshots, and their Parquet export.

Point-in-time and retention rules are those of ``features.snapshot`` (records reported strictly before
``as_of``; a negative record counts while ``as_of < add_months(end_date or start_date, 60)``; a repaired
record counts while ``as_of < repaired_date``). A subject has a row if it exists at ``as_of``: firms
founded and practitioners licensed strictly before it, households always.

An as-of date is accepted if it is after the segment's earliest reported record (before it nothing is
visible) and not past a required source's watermark by more than the configured days (``features.freshness``).
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from creditgrade.features import finance, freshness, labor, lists, loader, profile, quality, safety, tax
from creditgrade.features.catalog import catalog, check_segment, feature_names
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import Frames, normalise_outcomes
from creditgrade.features.snapshot import Snapshot, positions, still_counts
from creditgrade.features.store import Store

BUILDERS = {"tax": tax.build, "safety": safety.build, "quality": quality.build, "labor": labor.build,
            "finance": finance.build, "lists": lists.build}
CHUNK_SUBJECTS = 20_000  # measured: smaller chunks are no slower and hold far less memory


def parse_date(value, what: str = "as-of date") -> pd.Timestamp:
    try:
        day = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise CreditgradeError(f"{what} {value!r} is not a date (expected YYYY-MM-DD)") from None
    if pd.isna(day):
        raise CreditgradeError(f"{what} is missing")
    return day.normalize()


# ---------------------------------------------------------------- one chunk of subjects

def features_of(subjects: pd.DataFrame, records: pd.DataFrame, segment: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """Features of ``subjects`` (all existing at ``as_of``) from their normalised ``records``."""
    keys = pd.Index(subjects["subject_key"], name="subject_key")
    return pd.DataFrame(columns_of(Snapshot(records, keys, as_of), subjects, segment, as_of), index=keys)


def columns_of(snap: Snapshot, subjects, segment: str, as_of: pd.Timestamp) -> dict:
    """The segment's features in the catalogue's order, one array each, from a snapshot of the subjects'
    records and their rows (a frame, or a mapping of column arrays): the one definition the batch path and
    the per-subject path (``features.online``) share."""
    names, sources, declared = _plan(segment)
    columns: dict = {}
    for source in sources:
        columns.update(BUILDERS[source](snap))
    columns.update(profile.build(subjects, segment, as_of))
    if segment not in _AGREED:  # the builders make the same names whatever the data: checked once
        undeclared = columns.keys() - declared
        missing = set(names) - columns.keys()
        if undeclared or missing:
            raise RuntimeError(f"builders and catalog.toml disagree: undeclared {sorted(undeclared)}, "
                               f"not built {sorted(missing)}")
        _AGREED.add(segment)
    return {n: columns[n] for n in names}


_AGREED: set[str] = set()


@cache
def _plan(segment: str) -> tuple[list[str], list[str], frozenset[str]]:
    """The segment's feature names in catalogue order, its sources that have builders, and every declared
    feature name (as the catalogue, read once)."""
    specs = catalog(segment)
    sources = [source for source in dict.fromkeys(s.source for s in specs) if source in BUILDERS]
    return feature_names(segment), sources, frozenset(s.name for s in catalog())


def disputed_of(subjects: pd.DataFrame, records: pd.DataFrame, segment: str, as_of: pd.Timestamp,
                open_ids: frozenset[int], features: pd.DataFrame) -> dict[str, list[tuple[int, list[str]]]]:
    """For each subject, the records under an open objection that count at ``as_of``, each with the
    features whose value it changes (found by rebuilding the subject without that record)."""
    used = records["record_id"].isin(list(open_ids)).to_numpy() & still_counts(records, as_of)
    used &= records["subject_key"].isin(features.index).to_numpy()
    if not used.any():
        return {}
    records = records.assign(subject_key=records["subject_key"].astype(object))
    disputed = records.loc[used, ["subject_key", "record_id"]].rename(columns={"record_id": "disputed_id"})
    disputed = disputed.sort_values("disputed_id")
    disputed["pseudo_key"] = disputed["subject_key"] + "#" + disputed["disputed_id"].astype(str)
    twins = records.merge(disputed, on="subject_key")
    twins = twins[twins["record_id"] != twins["disputed_id"]]
    twins = twins.assign(subject_key=twins["pseudo_key"])[records.columns]
    twin_subjects = subjects.merge(disputed, on="subject_key").assign(subject_key=lambda d: d["pseudo_key"])
    without = features_of(twin_subjects[subjects.columns], twins, segment, as_of).loc[disputed["pseudo_key"]]
    base = features.loc[disputed["subject_key"]]
    same = (base.to_numpy() == without.to_numpy()) | (base.isna().to_numpy() & without.isna().to_numpy())
    out: dict[str, list[tuple[int, list[str]]]] = {}
    for (key, rid), row_same in zip(disputed[["subject_key", "disputed_id"]].itertuples(index=False), same):
        out.setdefault(key, []).append((int(rid), [c for c, s in zip(features.columns, row_same) if not s]))
    return out


# ---------------------------------------------------------------- sources: in-memory frames or the store

def subjects_and_earliest(source, segment: str) -> tuple[int, pd.Timestamp | None]:
    """Number of subjects and earliest reported_date of the segment's records."""
    if isinstance(source, Frames):
        n = int((source.subjects["segment"] == segment).sum())
        return n, source.records.loc[source.records["segment"] == segment, "reported_date"].min()
    if isinstance(source, Store):
        with source.engine.connect() as conn:
            n, lo = loader.extent(conn, segment)
        return n, lo and pd.Timestamp(lo)
    raise CreditgradeError(f"cannot build features from a {type(source).__name__}: pass a Store or Frames")


def check_as_of(source, segment: str, as_of) -> pd.Timestamp:
    """The as-of date, if the segment has data and the date lies within it: after the earliest reported
    record, and not past a required source's watermark by more than the configured days
    (``features.freshness``)."""
    check_segment(segment)
    day = parse_date(as_of)
    check_within(segment, day, *subjects_and_earliest(source, segment), freshness.watermarks_of(source, segment))
    return day


def check_within(segment: str, day: pd.Timestamp, n: int, earliest, marks: dict) -> freshness.Freshness:
    """:func:`check_as_of` given the segment's number of subjects, earliest reported day and watermarks
    (for a caller that keeps them); returns the date's freshness."""
    if n == 0 or earliest is None or pd.isna(earliest):
        raise CreditgradeError(f"no {segment} subjects and records in the store: ingest them first")
    if day <= pd.Timestamp(earliest):
        raise CreditgradeError(f"as-of date {day.date()} is before the {segment} data: it must be after the "
                               f"earliest reported record ({pd.Timestamp(earliest).date()})")
    return freshness.assess(marks, segment, day.date())


def _frame_chunks(frames: Frames, segment: str, as_of: pd.Timestamp, size: int):
    subjects = frames.subjects[frames.subjects["segment"] == segment]
    subjects = subjects[profile.exists_at(subjects, segment, as_of)].reset_index(drop=True)
    records = frames.records
    chunk = positions(pd.Index(subjects["subject_key"]), records["subject_key"]) // size  # -1: not a subject
    wanted = np.flatnonzero((records["segment"] == segment).to_numpy() & (records["reported_date"] < as_of).to_numpy()
                            & (chunk >= 0))
    order = wanted[np.argsort(chunk[wanted], kind="stable")]
    bounds = np.searchsorted(chunk[order], np.arange(len(subjects) // size + 2))
    for i, lo in enumerate(range(0, max(len(subjects), 1), size)):
        yield subjects.iloc[lo:lo + size], records.iloc[order[bounds[i]:bounds[i + 1]]], frames.open_objection_ids


def _store_chunks(store: Store, segment: str, as_of: pd.Timestamp, size: int):
    for part in loader.chunks(store, segment, as_of.date(), size):
        yield part.subjects[profile.exists_at(part.subjects, segment, as_of)], part.records, part.open_ids


def iter_features(source, segment: str, as_of, *, with_disputed: bool = False,
                  chunk_size: int = CHUNK_SUBJECTS) -> Iterator[tuple[pd.DataFrame, dict]]:
    """Features chunk by chunk of ``chunk_size`` subjects (bounded memory), each with its disputed records."""
    day = check_as_of(source, segment, as_of)
    if isinstance(source, Frames):
        chunks = _frame_chunks(source, segment, day, chunk_size)
    else:
        chunks = _store_chunks(source, segment, day, chunk_size)
    for subjects, records, open_ids in chunks:
        features = features_of(subjects, records, segment, day)
        disputed = disputed_of(subjects, records, segment, day, open_ids, features) if with_disputed else {}
        yield features, disputed


def build_features(source, segment: str, as_of, *, with_disputed: bool = False,
                   chunk_size: int = CHUNK_SUBJECTS):
    """One row per subject existing at ``as_of`` (index ``subject_key``), the catalogue's columns in its
    order: numbers as float64, categorical features as pandas ``category`` with the catalogue's categories.

    With ``with_disputed``, returns ``(features, disputed)`` where ``disputed`` maps a subject_key to
    ``[(record_id, [feature names it changes]), ...]`` for the records under an open objection that count.
    """
    parts, disputed = [], {}
    for features, found in iter_features(source, segment, as_of, with_disputed=with_disputed,
                                         chunk_size=chunk_size):
        parts.append(features)
        disputed.update(found)
    features = pd.concat(parts) if len(parts) > 1 else parts[0]
    return (features, disputed) if with_disputed else features


# ---------------------------------------------------------------- training sets and export

def _outcomes(source, segment: str) -> pd.DataFrame:
    if isinstance(source, Frames):
        return source.outcomes[source.outcomes["segment"] == segment]
    return normalise_outcomes(source.outcomes(segment))


def build_training_set(source, segment: str, as_of_dates=None, horizon: int = 12) -> pd.DataFrame:
    """As-of snapshots of features stacked with their outcomes (columns ``as_of`` and ``defaulted``);
    by default one snapshot per as-of date in the outcomes table. Only subjects with an outcome at
    the date and horizon are kept."""
    check_segment(segment)
    outcomes = _outcomes(source, segment)
    outcomes = outcomes[outcomes["horizon_months"] == horizon]
    if outcomes.empty:
        raise CreditgradeError(f"no {segment} outcomes with a {horizon}-month horizon: ingest outcomes first")
    dates = sorted(outcomes["as_of"].unique()) if as_of_dates is None else [parse_date(d) for d in as_of_dates]
    parts = []
    for day in dates:
        features = build_features(source, segment, day)
        labels = outcomes.loc[outcomes["as_of"] == day].set_index("subject_key")["defaulted"]
        part = features.join(labels.astype("int64"), how="inner")
        part.insert(len(features.columns), "as_of", pd.Timestamp(day))
        parts.append(part)
    return pd.concat(parts)


def out_of_time_split(df: pd.DataFrame, test_from) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a training set by as-of date: train before ``test_from``, test on and after it.

    Outcomes of training snapshots within one horizon of ``test_from`` overlap the test period; pass an
    earlier subset of ``df`` to leave a gap."""
    day = parse_date(test_from, "test_from")
    early = df["as_of"] < day
    if early.all() or not early.any():
        raise CreditgradeError(f"test_from {day.date()} leaves an empty train or test set: as-of dates run "
                               f"from {df['as_of'].min().date()} to {df['as_of'].max().date()}")
    return df[early], df[~early]


def write_features(store, segment: str, as_of, out_path) -> int:
    """Write the features of ``segment`` as of ``as_of`` to Parquet (column ``subject_key`` first),
    chunk by chunk; returns the number of rows written."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer, rows = None, 0
    try:
        for features, _ in iter_features(store, segment, as_of):
            table = pa.Table.from_pandas(features.reset_index(), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(out_path, table.schema)
            writer.write_table(table)
            rows += len(features)
    finally:
        if writer is not None:
            writer.close()
    return rows
