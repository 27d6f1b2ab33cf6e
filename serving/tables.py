"""Serving's own tables: grades, early warnings, API keys and their uses, the audit log and console sessions.

They sit in the records store's database beside the tables of ``features.store`` (grades and warnings
refer to its subjects) but are serving's to define and create: :func:`open_store` opens the records store
and creates whichever of these tables or their columns a store lacks (``features.store.add_missing_columns``).
Nothing in ``features`` reads them.
"""
from __future__ import annotations

from sqlalchemy import (
    Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
    UniqueConstraint,
)

from creditgrade.features.store import Store, add_missing_columns, subjects

metadata = MetaData()

grades = Table(
    "grades", metadata,
    Column("grade_id", Integer, primary_key=True, autoincrement=True),
    Column("subject_key", String(64), ForeignKey(subjects.c.subject_key), nullable=False),
    Column("segment", String(16), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("graded_at", DateTime(timezone=True), nullable=False),
    Column("pd", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("grade", String(8), nullable=False),
    Column("model_grade", String(8), nullable=False),
    Column("override", String(100)),           # the feature of the binding override rule, if any
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(20), nullable=False),
    Column("disputed", Boolean, nullable=False, default=False),
    Column("reasons", Text),                    # JSON list of reason codes
    Column("origin", String(12), nullable=False),  # api | batch | scan | regrade | sheet
    Column("stale", Boolean),                   # whether any source's data lagged the as-of date
    Column("data_as_of", Text),                 # JSON: each source's watermark used, capped at the as-of date
    Index("ix_grades_subject", "subject_key", "as_of", "graded_at"),
)

warnings = Table(
    "warnings", metadata,
    Column("warning_id", Integer, primary_key=True, autoincrement=True),
    Column("subject_key", String(64), ForeignKey(subjects.c.subject_key), nullable=False),
    Column("segment", String(16), nullable=False, index=True),
    Column("as_of", Date, nullable=False, index=True),
    Column("level", String(8), nullable=False),     # red | orange | yellow
    Column("trigger", String(40), nullable=False),
    Column("evidence", Text, nullable=False),       # JSON: values, records and grades behind it
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", String(100)),
    # the register (serving.warnings.work; states and outcomes in models/warnings.toml [register]); a store
    # made before these columns gains them (create_tables), its warnings reading as new
    Column("state", String(16), nullable=False, server_default="new"),
    Column("outcome", String(16)),                  # when closed: cured | restructured | defaulted | false_alarm
    Column("owner", String(100)),
    Column("notes", Text),                          # JSON list of {at, by, text}
    Column("updated_at", DateTime(timezone=True)),
    UniqueConstraint("subject_key", "as_of", "trigger", name="uq_warnings_subject_date_trigger"),
)

api_keys = Table(
    "api_keys", metadata,
    Column("key_id", Integer, primary_key=True, autoincrement=True),
    Column("key_hash", String(64), nullable=False, unique=True),   # SHA-256 of the key; the key itself is shown once
    Column("name", String(100), nullable=False),
    Column("role", String(12), nullable=False),     # bank | evaluator | analyst | regulator | subject | admin
    Column("townships", Text),                       # evaluator: comma-separated township codes
    Column("subject_key", String(64)),               # subject: the only subject it may see
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    UniqueConstraint("name", name="uq_api_keys_name"),
)

api_key_uses = Table(
    "api_key_uses", metadata,
    Column("key_id", Integer, ForeignKey("api_keys.key_id"), primary_key=True),
    Column("last_used_at", DateTime(timezone=True), nullable=False),  # recorded at most once a minute
)

audit_log = Table(
    "audit_log", metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("key_id", Integer),
    Column("role", String(12)),
    Column("action", String(40), nullable=False),
    Column("subject_key", String(64), index=True),   # hashed for persons, as stored
    Column("segment", String(16)),
    Column("purpose", String(200)),
    Column("consent_ref", String(100)),
    Column("outcome", String(20), nullable=False),   # e.g. 200, 403, 422
    Column("detail", Text),                           # never an identity number in clear
)

console_sessions = Table(
    "console_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),   # SHA-256 of the cookie's token
    Column("key_id", Integer, nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


def create_tables(store: Store) -> Store:
    """Create serving's tables, and the columns added since, that ``store`` lacks; returns the store."""
    metadata.create_all(store.engine)
    add_missing_columns(store.engine, metadata)
    return store


def open_store(url: str | None = None) -> Store:
    """The records store (``features.store.Store``) with serving's tables."""
    return create_tables(Store(url))
