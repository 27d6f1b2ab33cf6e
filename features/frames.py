"""In-memory input tables (subjects, records, outcomes, open objections) in one normalised form.

Dates are ``datetime64[ns]``; records carry ``record_id`` and ``subject_key`` as in the store.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from creditgrade.features import ids

SUBJECT_DATES = ("founded", "licensed_since")
RECORD_DATES = ("start_date", "end_date", "reported_date", "repaired_date")
CODED = ("subject_key", "segment", "source", "kind", "severity", "category", "account")  # held as category
RECORD_COLUMNS = ("record_id", "subject_key", "segment", "source", "kind", *RECORD_DATES,
                  "severity", "amount", "value", "category", "account")


def to_datetime(df: pd.DataFrame, columns) -> pd.DataFrame:
    """Convert date columns (python dates from the store, strings, datetimes) to datetime64[ns]."""
    for col in columns:
        if col in df.columns:
            df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
    return df


def normalise_records(records: pd.DataFrame) -> pd.DataFrame:
    """Records with the columns the builders read, in record_id order (sums then agree to the last bit
    whatever the source), dates as datetime64, numbers as float and text as pandas ``category``
    (filtering and grouping then work on integer codes)."""
    df = records.reindex(columns=list(RECORD_COLUMNS)).sort_values("record_id", kind="stable")
    to_datetime(df, RECORD_DATES)
    for col in CODED:
        df[col] = df[col].astype("category")
    for col in ("amount", "value"):
        df[col] = pd.to_numeric(df[col]).astype("float64")
    return df


def normalise_subjects(subjects: pd.DataFrame) -> pd.DataFrame:
    return to_datetime(subjects.copy(), SUBJECT_DATES)


def normalise_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    df = to_datetime(outcomes.copy(), ["as_of"])
    if "horizon_months" not in df.columns:
        df["horizon_months"] = 12
    return df


@dataclass
class Frames:
    """The input tables of one or more segments, held in memory."""

    subjects: pd.DataFrame
    records: pd.DataFrame
    outcomes: pd.DataFrame
    open_objection_ids: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self):
        self.subjects = normalise_subjects(self.subjects)
        self.records = normalise_records(self.records)
        self.outcomes = normalise_outcomes(self.outcomes)
        self.open_objection_ids = frozenset(int(i) for i in self.open_objection_ids)

    @classmethod
    def from_store(cls, store, segment: str) -> "Frames":
        """All of one segment's tables from a ``features.store.Store``."""
        return cls(store.subjects(segment), store.records(segment), store.outcomes(segment),
                   frozenset(store.open_objection_record_ids()))

    @classmethod
    def from_population(cls, pop: dict, open_objection_ids=()) -> "Frames":
        """Generator output (``subject_id`` columns) keyed as the store keys it; record ids 1..n."""
        subjects = keyed(pop["subjects"])
        records = keyed(pop["records"])
        if "record_id" not in records.columns:
            records.insert(0, "record_id", range(1, len(records) + 1))
        return cls(subjects, records, keyed(pop["outcomes"]), frozenset(open_objection_ids))


def keyed(df: pd.DataFrame) -> pd.DataFrame:
    """``subject_key`` from ``(segment, subject_id)`` via ``features.ids.subject_key``."""
    if "subject_key" in df.columns:
        return df.copy()
    pairs = pd.MultiIndex.from_frame(df[["segment", "subject_id"]].astype(str)).unique()
    keys = pd.Series([ids.subject_key(seg, sid) for seg, sid in pairs], index=pairs)
    out = df.drop(columns="subject_id")
    out.insert(0, "subject_key", keys.reindex(pd.MultiIndex.from_frame(df[["segment", "subject_id"]].astype(str))).to_numpy())
    return out
