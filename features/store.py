"""The records store: SQLAlchemy Core tables on SQLite (default, WAL mode) or PostgreSQL by URL.

``CREDITGRADE_DB_URL`` selects the database; without it the store is the SQLite file
``$CREDITGRADE_HOME/creditgrade.db``. Identity numbers are never stored in clear: persons are keyed by
the HMAC of their number (see ``features.ids``), with a masked form for display. These are the records'
tables; serving's own (grades, warnings, keys, audit log) are defined and created by ``serving.tables``.
Statements run per request (one subject's read, a grade's and an audit entry's insert) go through
:class:`Prepared`: compiled once, run on the driver's cursor.
"""
from __future__ import annotations

import os

import pandas as pd
from sqlalchemy import (
    Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
    UniqueConstraint, create_engine, event, inspect, select, text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn

from creditgrade.features.ids import home

metadata = MetaData()

subjects = Table(
    "subjects", metadata,
    Column("subject_key", String(64), primary_key=True),
    Column("segment", String(16), nullable=False, index=True),
    Column("display_id", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("district", String(6)),
    Column("sector", String(40)),
    Column("size", String(10)),
    Column("founded", Date),
    Column("village_code", String(12), index=True),
    Column("township_code", String(9), index=True),
    Column("village_name", String(60)),
    Column("township_name", String(60)),
    Column("head_id_hash", String(64)),
    Column("head_id_masked", String(18)),
    Column("members", Integer),
    Column("labour_force", Integer),
    Column("land_mu", Float),
    Column("agri_insurance", Boolean),
    Column("coop_member", Boolean),
    Column("profession", String(40)),
    Column("licensed_since", Date),
    Column("bad_check_override", Boolean, nullable=False, default=False),
    Column("batch_id", Integer, ForeignKey("ingest_batches.batch_id")),
)

records = Table(
    "records", metadata,
    Column("record_id", Integer, primary_key=True, autoincrement=True),
    Column("subject_key", String(64), ForeignKey("subjects.subject_key"), nullable=False),
    Column("segment", String(16), nullable=False),
    Column("source", String(10), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("reported_date", Date, nullable=False),
    Column("severity", String(10)),
    Column("amount", Float),
    Column("value", Float),
    Column("category", String(40)),
    Column("account", String(64)),
    Column("doc_ref", String(200), nullable=False),
    Column("repaired_date", Date),
    Column("batch_id", Integer, ForeignKey("ingest_batches.batch_id")),
    Column("voided_at", DateTime(timezone=True)),  # a wholly wrong record: kept, never used (its objection says why)
    UniqueConstraint("source", "doc_ref", name="uq_records_source_doc"),
    Index("ix_records_subject", "subject_key", "reported_date"),
    Index("ix_records_segment_reported", "segment", "reported_date"),
)

outcomes = Table(
    "outcomes", metadata,
    Column("subject_key", String(64), ForeignKey("subjects.subject_key"), primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("horizon_months", Integer, primary_key=True),
    Column("segment", String(16), nullable=False, index=True),
    Column("defaulted", Integer, nullable=False),
    Column("batch_id", Integer, ForeignKey("ingest_batches.batch_id")),
)

ingest_batches = Table(
    "ingest_batches", metadata,
    Column("batch_id", Integer, primary_key=True, autoincrement=True),
    Column("file_name", String(500), nullable=False),
    Column("file_sha256", String(64), nullable=False, index=True),
    Column("table_name", String(20), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("rows_stored", Integer, nullable=False, default=0),
    Column("rows_duplicate", Integer, nullable=False, default=0),
    Column("rows_quarantined", Integer, nullable=False, default=0),
)

watermarks = Table(
    "watermarks", metadata,  # per segment and source, the last day of the last month with data (features.freshness)
    Column("segment", String(16), primary_key=True),
    Column("source", String(10), primary_key=True),
    Column("through", Date, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

quarantine = Table(
    "quarantine", metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("ingest_batches.batch_id"), nullable=False, index=True),
    Column("file_name", String(500), nullable=False),
    Column("line", Integer),
    Column("field", String(100)),
    Column("rule", Text, nullable=False),
    Column("raw", Text),
)

objections = Table(
    "objections", metadata,
    Column("objection_id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", Integer, ForeignKey("records.record_id"), nullable=False, index=True),
    Column("subject_key", String(64), nullable=False, index=True),
    Column("filed_at", DateTime(timezone=True), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("status", String(12), nullable=False, default="open"),  # open | upheld | corrected | voided | rejected
    Column("reason", Text, nullable=False),
    Column("resolution", Text),
    Column("resolved_at", DateTime(timezone=True)),
)

def database_url() -> str:
    return os.environ.get("CREDITGRADE_DB_URL") or f"sqlite:///{home() / 'creditgrade.db'}"


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt; avoids an fsync per grade
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def add_missing_columns(engine: Engine, tables: MetaData) -> None:
    """Add to the existing tables of ``tables`` the columns they lack (a store made before the column was):
    the migration of a store, for columns that are nullable or have a server default."""
    found = inspect(engine)
    for table in tables.sorted_tables:
        have = {c["name"] for c in found.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            ddl = f"ALTER TABLE {engine.dialect.identifier_preparer.format_table(table)} ADD COLUMN " \
                  f"{CreateColumn(column).compile(dialect=engine.dialect)}"
            try:
                with engine.begin() as conn:
                    conn.execute(text(ddl))
            except DBAPIError:  # added by another process meanwhile, or a real failure
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


class Prepared:
    """A statement compiled once per dialect and run on the driver's cursor of the caller's connection, within
    its transaction: SQLAlchemy writes the SQL and converts the parameters as it would (its bind processors),
    the driver alone runs it (SQLAlchemy's execution costs more than a one-subject statement). Rows come as
    the driver gives them. ``keys``: an INSERT's columns, in any order its rows give them."""

    def __init__(self, statement, keys: list[str] | None = None):
        self.statement, self.keys = statement, keys
        self._compiled: dict[str, tuple] = {}

    def _for(self, dialect) -> tuple:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect, column_keys=self.keys)
            binds = compiled.binds
            convert = {n: b.type.dialect_impl(dialect).bind_processor(dialect) for n, b in binds.items()}
            fixed = {n: b.effective_value for n, b in binds.items() if not b.required}
            order = list(compiled.positiontup) if compiled.positional else None
            found = self._compiled[dialect.name] = (compiled.string, order, convert, fixed)
        return found

    def _bound(self, compiled: tuple, params: dict):
        _, order, convert, fixed = compiled
        values = dict(fixed)
        for name, value in params.items():
            to = convert[name]
            values[name] = value if to is None or value is None else to(value)
        return values if order is None else [values[n] for n in order]

    def run(self, conn, params: dict):
        """The driver's cursor after executing with ``params`` (the caller fetches and closes it)."""
        compiled = self._for(conn.dialect)
        cursor = conn.connection.cursor()
        cursor.execute(compiled[0], self._bound(compiled, params))
        return cursor

    def run_many(self, conn, rows: list[dict]) -> None:
        """Execute once per row of ``rows`` (the driver's ``executemany``)."""
        compiled = self._for(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(compiled[0], [self._bound(compiled, row) for row in rows])
        finally:
            cursor.close()


class Store:
    """A connection to the records store; creates its tables on first use."""

    def __init__(self, url: str | None = None):
        self.url = url or database_url()
        self.engine: Engine = create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        add_missing_columns(self.engine, metadata)

    def dispose(self) -> None:
        self.engine.dispose()

    def frame(self, query) -> pd.DataFrame:
        """Run a SQLAlchemy select and return a DataFrame (dates as datetime64)."""
        with self.engine.connect() as conn:
            result = conn.execute(query)
            df = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        return df

    def subjects(self, segment: str | None = None) -> pd.DataFrame:
        q = select(subjects)
        if segment:
            q = q.where(subjects.c.segment == segment)
        return self.frame(q.order_by(subjects.c.subject_key))

    def records(self, segment: str | None = None, reported_before=None) -> pd.DataFrame:
        """Live (not void) records, optionally of one segment and reported strictly before a date."""
        q = select(records).where(records.c.voided_at.is_(None))
        if segment:
            q = q.where(records.c.segment == segment)
        if reported_before is not None:
            q = q.where(records.c.reported_date < reported_before)
        return self.frame(q.order_by(records.c.record_id))

    def outcomes(self, segment: str | None = None) -> pd.DataFrame:
        q = select(outcomes)
        if segment:
            q = q.where(outcomes.c.segment == segment)
        return self.frame(q.order_by(outcomes.c.as_of, outcomes.c.subject_key))

    def open_objection_record_ids(self) -> set[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(objections.c.record_id).where(objections.c.status == "open"))
            return {r[0] for r in rows}
