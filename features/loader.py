"""The one reader of grading inputs from the store: subjects, their records reported before a date, and
which of those records are under an open objection. Training, the feature CLI, serving, the warnings scan
and the village figures all load through it; no other module writes this SQL.

A record's objection status comes in the same statement as the record (column ``disputed``), so one
subject's inputs are one statement (:func:`subject_and_records`: its row, then its records, as arrays for
``features.online``; run on the driver's cursor by ``features.store.Prepared``), or two when a cached grade
may spare the records (:func:`subject_rows` with the cache stamp of :data:`STAMP_COLUMNS`, then
:func:`subject_records`); many subjects' records come with one more statement for their open objections
(:func:`many_records`). Arrays are read column-wise from the driver's own rows (no row objects), dates as
day numbers computed by the database (:class:`EpochDay`).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import (Float, String, and_, bindparam, exists, func, literal_column, null, nulls_first, select,
                        type_coerce, union_all)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Select
from sqlalchemy.sql.functions import FunctionElement

from creditgrade.features.frames import RECORD_COLUMNS as NORMALISED
from creditgrade.features.frames import normalise_records, normalise_subjects
from creditgrade.features.store import Prepared, Store, objections, records, subjects

r, s, o = records.c, subjects.c, objections.c
DISPUTED = exists().where(o.record_id == r.record_id, o.status == "open").label("disputed")
DATES = ("start_date", "end_date", "reported_date", "repaired_date")
NUMBERS = ("amount", "value")


def _raw_date(column):
    """A date column as the database returns it, without SQLAlchemy's conversion to ``datetime.date``:
    SQLite's ISO text, which numpy and pandas parse many times faster than date objects (PostgreSQL's
    driver returns dates either way)."""
    return type_coerce(column, String).label(column.name)


class EpochDay(FunctionElement):
    """A date column as days since 1970-01-01 (NULL stays NULL), computed by the database: numbers make
    arrays without parsing a text or a date object per value."""

    type = Float()
    inherit_cache = True


@compiles(EpochDay)
def _epoch_day(element, compiler, **kw):  # PostgreSQL: date - date is a number of days
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


@compiles(EpochDay, "sqlite")
def _epoch_day_sqlite(element, compiler, **kw):  # SQLite's ISO text; Julian day 2440587.5 is 1970-01-01
    return f"(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5)"


class JsonArray(FunctionElement):
    """Columns as one JSON array (dates as ISO text): a whole row in one column, so that a statement
    returning it beside narrower rows does not widen them all. Read on the driver's cursor only (text on
    SQLite, a list on PostgreSQL: :func:`_json_row`)."""

    type = String()
    inherit_cache = True


@compiles(JsonArray)
def _json_array(element, compiler, **kw):  # PostgreSQL
    return f"json_build_array({compiler.process(element.clauses, **kw)})"


@compiles(JsonArray, "sqlite")
def _json_array_sqlite(element, compiler, **kw):
    return f"json_array({compiler.process(element.clauses, **kw)})"


RECORD_COLUMNS = [_raw_date(c) if c.name in DATES else c for c in records.c]
BUILT_FROM = [c for c in RECORD_COLUMNS if c.name in NORMALISED]  # what ``normalise_records`` keeps
KEYS_PER_STATEMENT = 500  # SQLAlchemy names an IN list's parameters in a time growing with its length squared
_KEY, _DAY = bindparam("key"), bindparam("day")
ONE_SELECTED = (r.record_id, *(EpochDay(r[c]).label(c) for c in DATES), *(r[c] for c in NUMBERS), DISPUTED,
                r.kind, r.severity, r.category, r.account)  # a subject's records as features.online reads them:
# the numbers first, read into floats as one block (:func:`arrays`)
ONE_RECORDS_Q = (select(*ONE_SELECTED).where(r.subject_key == _KEY, r.reported_date < _DAY, r.voided_at.is_(None))
                 .order_by(r.record_id))
ONE_COLUMNS = tuple(ONE_RECORDS_Q.selected_columns.keys())
SUBJECT_AND_RECORDS_Q = union_all(  # a subject's row as one JSON column (its record columns NULL), then its
    select(*(null().label(c) for c in ONE_COLUMNS), JsonArray(*subjects.c).label("subject"))  # records
    .where(s.subject_key == _KEY),                                                       # (subject NULL)
    ONE_RECORDS_Q.with_only_columns(*ONE_SELECTED, null().label("subject")).order_by(None),
).order_by(nulls_first(literal_column("record_id")))
MANY_RECORDS_Q = (select(*(c for c in ONE_SELECTED if c is not DISPUTED), r.subject_key)  # sorted, and their
                  .where(r.subject_key.in_(bindparam("keys", expanding=True)), r.reported_date < _DAY,  # objections
                         r.voided_at.is_(None)))                     # read once for all its subjects (many_records)
MANY_COLUMNS = tuple(MANY_RECORDS_Q.selected_columns.keys())
OPEN_RECORDS_Q = select(o.record_id).where(o.subject_key.in_(bindparam("keys", expanding=True)), o.status == "open")
STAMP_COLUMNS = (  # what a cached grade of one subject stands on: its records and the state of its objections
    select(func.count()).select_from(records).where(r.subject_key == s.subject_key),
    select(func.max(r.record_id)).where(r.subject_key == s.subject_key),
    select(func.count()).select_from(objections).where(o.subject_key == s.subject_key),
    select(func.max(o.resolved_at)).where(o.subject_key == s.subject_key),
)


@dataclass
class Inputs:
    """Normalised subjects and records (``features.frames``) and the ids of the records under open objection."""

    subjects: pd.DataFrame
    records: pd.DataFrame
    open_ids: frozenset[int]


# ---------------------------------------------------------------- queries

def subjects_query(segment: str | None = None, keys: Iterable[str] | None = None,
                   townships: Iterable[str] | None = None, stamp: bool = False) -> Select:
    """Subject rows in key order, optionally of a segment, some keys or some townships; with ``stamp``,
    each row also carries the cache stamp columns ``stamp_0..3``."""
    extra = [q.scalar_subquery().label(f"stamp_{i}") for i, q in enumerate(STAMP_COLUMNS)] if stamp else []
    q = select(subjects, *extra).order_by(s.subject_key)
    if segment is not None:
        q = q.where(s.segment == segment)
    if keys is not None:
        q = q.where(s.subject_key.in_(list(keys)))
    if townships is not None:
        q = q.where(s.township_code.in_(list(townships)))
    return q


def records_query(before: dt.date | None, segment: str | None = None, *, keys: Iterable[str] | None = None,
                  key_range: tuple[str, str] | None = None, townships: Iterable[str] | None = None,
                  kinds: Iterable[str] | None = None, since: dt.date | None = None,
                  disputed: bool = False, built_from: bool = False) -> Select:
    """Records reported strictly before ``before`` (and on or after ``since``), in record_id order; of a
    segment, some keys, a key range (inclusive), some townships' subjects or some kinds; with ``disputed``,
    a boolean column saying whether the record is under an open objection; with ``built_from``, only the
    columns features are built from. Dates come as the database returns them (:func:`_raw_date`;
    ``features.frames.normalise_records`` makes them datetime64)."""
    columns = BUILT_FROM if built_from else RECORD_COLUMNS
    q = select(*columns, DISPUTED) if disputed else select(*columns)
    where = [r.voided_at.is_(None)]  # a void record is kept for the subject's history, never used
    if before is not None:
        where.append(r.reported_date < before)
    if since is not None:
        where.append(r.reported_date >= since)
    if segment is not None and keys is None and townships is None:  # subjects named: their index is the way in
        where.append(r.segment == segment)                          # (a record's segment is its subject's)
    if keys is not None:
        where.append(r.subject_key.in_(list(keys)))
    if key_range is not None:
        where += [r.subject_key >= key_range[0], r.subject_key <= key_range[1]]
    if townships is not None:
        where.append(r.subject_key.in_(select(s.subject_key).where(s.township_code.in_(list(townships)))))
    if kinds is not None:
        where.append(r.kind.in_(list(kinds)))
    return q.where(and_(*where)).order_by(r.record_id)


# ---------------------------------------------------------------- frames

def frame(conn, query) -> pd.DataFrame:
    """The rows of ``query`` as a frame, built column by column (from row objects pandas is twice as slow)."""
    result = conn.execute(query)
    columns = list(result.keys())
    rows = result.fetchall()
    return pd.DataFrame(dict(zip(columns, zip(*rows))) if rows else {c: [] for c in columns}, columns=columns)


def _inputs(subject_rows: pd.DataFrame, record_rows: pd.DataFrame) -> Inputs:
    open_ids = frozenset(record_rows.loc[record_rows["disputed"].astype(bool), "record_id"].tolist())
    return Inputs(normalise_subjects(subject_rows), normalise_records(record_rows), open_ids)


def load(conn, segment: str, before: dt.date, *, keys: Iterable[str] | None = None,
         townships: Iterable[str] | None = None) -> Inputs:
    """The subjects of ``segment`` (all, or some keys, or some townships), their records reported before
    ``before`` and which of those are under open objection: two statements (per :data:`KEYS_PER_STATEMENT`
    keys)."""
    parts = [None] if keys is None else _parts(list(keys))
    subject_rows = pd.concat([frame(conn, subjects_query(segment, part, townships)) for part in parts],
                             ignore_index=True)
    record_rows = pd.concat([frame(conn, records_query(before, segment, keys=part, townships=townships, disputed=True,
                                                       built_from=True)) for part in parts], ignore_index=True)
    return _inputs(subject_rows, record_rows)


def _parts(keys: list[str]) -> list[list[str]]:
    return [keys[lo:lo + KEYS_PER_STATEMENT] for lo in range(0, len(keys), KEYS_PER_STATEMENT)] or [[]]


def chunks(store: Store, segment: str, before: dt.date, size: int) -> Iterator[Inputs]:
    """All subjects of ``segment`` in key order, ``size`` at a time, each chunk with its records reported
    before ``before`` (one statement per chunk, bounded memory)."""
    with store.engine.connect() as conn:
        every = frame(conn, subjects_query(segment))
        for lo in range(0, len(every), size):
            part = every.iloc[lo:lo + size]
            span = (part["subject_key"].iloc[0], part["subject_key"].iloc[-1])
            yield _inputs(part, frame(conn, records_query(before, segment, key_range=span, disputed=True,
                                                          built_from=True)))


def extent(conn, segment: str) -> tuple[int, dt.date | None]:
    """Number of subjects of ``segment`` and the earliest reported_date of its records."""
    n = conn.execute(select(func.count()).select_from(subjects).where(s.segment == segment)).scalar_one()
    return n, conn.execute(select(func.min(r.reported_date)).where(r.segment == segment)).scalar()


# ---------------------------------------------------------------- one subject, as arrays

_SUBJECT_ROWS_Q = {stamp: subjects_query(stamp=stamp).where(s.subject_key.in_(bindparam("keys", expanding=True)))
                   for stamp in (False, True)}  # built once: the hot path only binds its keys


def subject_rows(conn, keys: Iterable[str], stamp: bool = False) -> list:
    """The stored rows of some subjects (with the cache stamp columns if ``stamp``)."""
    return [row for part in _parts(list(keys)) for row in conn.execute(_SUBJECT_ROWS_Q[stamp], {"keys": part})]


def subject_records(conn, key: str, before: dt.date) -> dict[str, np.ndarray]:
    """One subject's records reported before ``before``, in record_id order, as :func:`arrays`."""
    return arrays(ONE_COLUMNS, _tuples(conn, ONE_RECORDS_Q, {"key": key, "day": before})[0])


def subject_and_records(conn, key: str, before: dt.date) -> tuple[dict | None, dict[str, np.ndarray]]:
    """One subject's stored row (as :func:`subject_rows` gives it, as a dict; None if there is no such subject)
    and its records as :func:`subject_records` gives them, from one statement (:data:`SUBJECT_AND_RECORDS_Q`
    on the driver's cursor: ``features.store.Prepared``)."""
    cursor = SUBJECT_AND_RECORDS.run(conn, {"key": key, "day": before})
    rows = cursor.fetchall()
    cursor.close()
    if not rows or rows[0][-1] is None:
        return None, arrays(ONE_COLUMNS, [])
    return _json_row(rows[0][-1]), arrays(ONE_COLUMNS, rows[1:])


def _json_row(found) -> dict:
    """A subject's row from :class:`JsonArray` (text, or a list if the driver parsed it) with the values
    SQLAlchemy gives: dates, booleans, numbers of their column's type."""
    values = json.loads(found) if isinstance(found, str) else found
    return {name: v if v is None or to is None else to(v) for (name, to), v in zip(_SUBJECT_TYPES, values)}


_FROM_JSON = {dt.date: dt.date.fromisoformat, dt.datetime: dt.datetime.fromisoformat, bool: bool, float: float,
              int: int}  # a JSON value as the column's Python type (text stays text)
_SUBJECT_TYPES = [(c.name, _FROM_JSON.get(c.type.python_type)) for c in subjects.c]


SUBJECT_AND_RECORDS = Prepared(SUBJECT_AND_RECORDS_Q)


def _tuples(conn, statement, params: dict) -> tuple[list[tuple], list]:
    """The rows of ``statement`` as the driver gives them (plain tuples, no result processing: the columns
    read this way are numbers, text, or converted by the caller) and the driver's description of their
    columns; the statement compiled once (SQLAlchemy's cache)."""
    result = conn.execute(statement, params)
    try:
        return result.cursor.fetchall(), result.cursor.description
    finally:
        result.close()


def many_records(conn, keys: Iterable[str], before: dt.date) -> dict[str, np.ndarray]:
    """Some subjects' records reported before ``before`` as :func:`arrays` (with ``subject_key``), in
    record_id order: per :data:`KEYS_PER_STATEMENT` keys, one statement for their records (read column-wise,
    sorted here) and one for those of their records under open objection (cheaper than asking it of each
    record)."""
    parts = _parts(list(keys))
    rows = [row for part in parts for row in _tuples(conn, MANY_RECORDS_Q, {"keys": part, "day": before})[0]]
    out = arrays(MANY_COLUMNS, rows)
    order = np.argsort(out["record_id"], kind="stable")
    out = {name: values[order] for name, values in out.items()}
    disputed = [rid for part in parts for rid in conn.execute(OPEN_RECORDS_Q, {"keys": part}).scalars()]
    out["disputed"] = np.isin(out["record_id"], np.array(disputed, dtype=np.int64))
    return out


NS_PER_DAY = 86_400 * 10**9
NUMERIC = ("record_id", *DATES, *NUMBERS, "disputed")  # the columns :func:`arrays` reads as numbers


def arrays(names: tuple[str, ...], rows: list) -> dict[str, np.ndarray]:
    """Rows of records (their first ``len(names)`` columns) as one array per column: dates (given as days
    since 1970-01-01, :class:`EpochDay`) datetime64[ns] (NaT if missing), amounts and values float (NaN),
    ``record_id`` int64, ``disputed`` (under an open objection) bool, text as object arrays. The numbers are
    read as one float block, the dates made from it at once."""
    columns = list(zip(*rows)) or [()] * len(names)
    numeric = [n for n in names if n in NUMERIC]
    block = np.array([columns[names.index(n)] for n in numeric], dtype=float).reshape(len(numeric), len(rows))
    at = {n: i for i, n in enumerate(numeric)}
    days = block[[at[n] for n in DATES]]
    missing = np.isnan(days)
    ns = np.where(missing, 0.0, days).astype(np.int64) * NS_PER_DAY
    ns[missing] = np.iinfo(np.int64).min  # NaT
    out = {n: np.array(columns[j], dtype=object) for j, n in enumerate(names) if n not in at}
    out |= dict(zip(DATES, ns.view("datetime64[ns]")))
    out |= {n: block[at[n]] for n in NUMBERS}
    out["record_id"] = block[at["record_id"]].astype(np.int64)
    if "disputed" in at:
        out["disputed"] = block[at["disputed"]] != 0
    return {n: out[n] for n in names}
