"""Validated, transactional, idempotent ingestion of subjects, records and outcomes files.

Each file is one transaction: its valid rows are stored, its bad rows quarantined with file, line,
field and rule, and a batch row counts both. A crash part-way leaves nothing; re-ingesting a file adds
nothing (records are unique by source and document reference, subjects by key, outcomes by key and
date). Identity numbers are hashed before storage and masked in every message.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from features import freshness, ids, schemas
from features.reading import RawTable, read_columns, read_table
from features.store import Store, ingest_batches, outcomes, quarantine, records, subjects

ORDER = {"subjects": 0, "records": 1, "outcomes": 2}
CHUNK = 20_000


@dataclass
class IngestReport:
    """What happened to one file."""

    file: str
    table: str | None
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str = ""

    @property
    def valid(self) -> int:
        return self.stored + self.duplicates


@dataclass
class _Problem:
    line: int | None
    field: str | None
    rule: str
    raw: dict | None = None


def _safe_raw(row: dict | None) -> str | None:
    if row is None:
        return None
    text = json.dumps({k: (str(v) if v is not None else None) for k, v in row.items()}, ensure_ascii=False)
    return ids.redact(text)


def _field_of(loc: tuple, msg: str, columns: list[str]) -> str | None:
    if len(loc) > 1 and isinstance(loc[1], str):
        return loc[1]
    head = msg.removeprefix("Value error, ").split(" ")[0].rstrip(",")
    return head if head in columns or head in schemas.RecordRow.model_fields else None


def _validate(model, rows: list[dict], lines: list[int], columns: list[str]):
    """Validate all rows at once; return (valid models with their lines, problems)."""
    adapter = TypeAdapter(list[model])
    problems: list[_Problem] = []
    try:
        return list(zip(adapter.validate_python(rows), lines)), problems
    except ValidationError as exc:
        bad: set[int] = set()
        for err in exc.errors(include_input=False, include_url=False):
            idx = err["loc"][0]
            bad.add(idx)
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(_Problem(lines[idx], _field_of(err["loc"], err["msg"], columns), ids.redact(msg),
                                     rows[idx]))
    keep = [i for i in range(len(rows)) if i not in bad]
    good = adapter.validate_python([rows[i] for i in keep]) if keep else []
    return list(zip(good, [lines[i] for i in keep])), problems


def _subject_row(m: schemas.SubjectRow, key: str, batch_id: int) -> dict:
    sid = ids.validate_subject_id(m.segment, m.subject_id, m.allow_bad_check)
    row = m.model_dump(exclude={"subject_id", "head_id", "allow_bad_check"})
    row.update(
        subject_key=key,
        display_id=ids.mask_ric(sid) if m.segment == "practitioner" else sid,
        head_id_hash=ids.hash_ric(m.head_id) if m.head_id else None,
        head_id_masked=ids.mask_ric(m.head_id) if m.head_id else None,
        bad_check_override=bool(m.allow_bad_check),
        batch_id=batch_id,
    )
    return row


def _record_row(m: schemas.RecordRow, key: str, batch_id: int) -> dict:
    row = m.model_dump(exclude={"subject_id"})
    row.update(subject_key=key, severity=m.severity.value if m.severity else None, batch_id=batch_id)
    return row


def _outcome_row(m: schemas.OutcomeRow, key: str, batch_id: int) -> dict:
    return dict(subject_key=key, as_of=m.as_of, horizon_months=m.horizon_months, segment=m.segment,
                defaulted=m.defaulted, batch_id=batch_id)


# per table: how a stored row is made, and what makes two rows of a file the same row (with the field named)
ROWS = {"subjects": _subject_row, "records": _record_row, "outcomes": _outcome_row}
UNIQUE = {"subjects": (lambda m, key: key, "subject_id"),
          "records": (lambda m, key: (m.source, m.doc_ref), "doc_ref"),
          "outcomes": (lambda m, key: (key, m.as_of, m.horizon_months), "as_of")}


def _known_subjects(conn, segments) -> dict[str, str]:
    q = select(subjects.c.subject_key, subjects.c.segment).where(subjects.c.segment.in_(sorted(segments)))
    return dict(conn.execute(q).all())


def _dedupe(keyed, table: str):
    """Drop in-file duplicates; the second occurrence is quarantined naming the line of the first."""
    key_of, label = UNIQUE[table]
    seen: dict = {}
    kept, problems = [], []
    for model, line, key in keyed:
        unique = key_of(model, key)
        if unique in seen:
            first_model, first_line = seen[unique]
            same = first_model == model
            rule = (f"duplicate row: same as line {first_line}" if same
                    else f"{label}: same {label} as line {first_line} with different content")
            problems.append(_Problem(line, None if same else label, rule, model.model_dump(mode="json")))
            continue
        seen[unique] = (model, line)
        kept.append((model, line, key))
    return kept, problems


def _insert_ignoring_conflicts(conn, table, rows: list[dict], progress) -> None:
    """Insert rows; rows whose unique key is already stored are skipped (idempotent re-ingest)."""
    dialect = conn.dialect.name
    maker = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
    stmt = maker(table).on_conflict_do_nothing() if maker else insert(table)
    for start in range(0, len(rows), CHUNK):
        if progress:
            progress(f"inserting rows {start + 1}..{min(start + CHUNK, len(rows))} of {len(rows)}")
        conn.execute(stmt, rows[start:start + CHUNK])


def _prepare(raw: RawTable, table: str, allow_bad_check: bool, conn, batch_id: int):
    """Validate, key and deduplicate the rows of one table; return (rows to insert, problems)."""
    rows = raw.rows
    if table == "subjects" and allow_bad_check:
        rows = [{**r, "allow_bad_check": True} for r in rows]
    valid, problems = _validate(schemas.TABLES[table], rows, raw.lines, raw.columns)
    keyed = [(m, line, ids.subject_key(m.segment, m.subject_id)) for m, line in valid]
    if table != "subjects":  # records and outcomes need their subject stored first
        known = _known_subjects(conn, {m.segment for m, _, _ in keyed})
        problems += [_Problem(line, "subject_id", f"unknown {m.segment} subject {ids.redact(m.subject_id)}: "
                                                  "ingest its subjects file first", m.model_dump(mode="json"))
                     for m, line, key in keyed if known.get(key) != m.segment]
        keyed = [(m, line, key) for m, line, key in keyed if known.get(key) == m.segment]
    unique, duplicates = _dedupe(keyed, table)
    return [ROWS[table](m, key, batch_id) for m, _, key in unique], problems + duplicates


def _latest_reported(rows: list[dict]) -> dict[tuple[str, str], dt.date]:
    """The latest reported day per (segment, source) among record rows (the data watermarks they reach)."""
    latest: dict[tuple[str, str], dt.date] = {}
    for row in rows:
        key = (row["segment"], row["source"])
        latest[key] = max(latest.get(key, row["reported_date"]), row["reported_date"])
    return latest


def _header_problems(raw: RawTable, table: str | None) -> tuple[list[_Problem], bool]:
    """Problems with the header; the flag says whether the rows can be read at all."""
    problems = [_Problem(None, col, f"prohibited field {col!r} refused by law (credit-reporting regulation); "
                                 "its values were not stored") for col in schemas.prohibited_fields(raw.columns)]
    if table is None:
        problems.append(_Problem(None, None, "cannot tell which table this file holds: a records file has a "
                                          "`kind` column, an outcomes file `defaulted`, a subjects file `name`"))
        return problems, False
    missing = [c for c in schemas.required_columns(schemas.TABLES[table]) if c not in raw.columns]
    if missing:
        problems.append(_Problem(None, ",".join(missing), f"required column(s) {', '.join(missing)} missing "
                                                       f"from the {table} file header"))
        return problems, False
    return problems, True


def ingest_file(store: Store, path: Path, table: str | None = None, allow_bad_check: bool = False,
                progress: Callable[[str], None] | None = None) -> IngestReport:
    """Ingest one file in one transaction and return its report."""
    path = Path(path)
    raw = read_table(path)
    table = table or schemas.detect_table(raw.columns)
    report = IngestReport(str(path), table, read=len(raw.rows) + len(raw.bad_lines), encoding=raw.encoding)
    header_problems, readable = _header_problems(raw, table)
    banned = set(schemas.prohibited_fields(raw.columns))
    raw.rows = [{k: v for k, v in r.items() if k not in banned} for r in raw.rows]
    if table:
        declared = set(schemas.TABLES[table].model_fields)
        report.ignored_columns = [c for c in raw.columns if c not in declared and c not in banned]
    with store.engine.begin() as conn:
        batch_id = conn.execute(insert(ingest_batches).values(
            file_name=path.name, file_sha256=raw.sha256, table_name=table or "unknown",
            started_at=dt.datetime.now(dt.timezone.utc), rows_read=report.read)).inserted_primary_key[0]
        problems = header_problems + [_Problem(line, None, rule) for line, rule in raw.bad_lines]
        rows: list[dict] = []
        if readable:
            rows, row_problems = _prepare(raw, table, allow_bad_check, conn, batch_id)
            problems += row_problems
        else:
            rule = problems[-1].rule
            problems += [_Problem(line, None, rule, r) for r, line in zip(raw.rows, raw.lines)]
        target = {"subjects": subjects, "records": records, "outcomes": outcomes}.get(table)
        if rows:
            _insert_ignoring_conflicts(conn, target, rows, progress)
            if table == "records":
                freshness.advance(conn, _latest_reported(rows))
            report.stored = conn.execute(select(func.count()).select_from(target)
                                         .where(target.c.batch_id == batch_id)).scalar_one()
        report.duplicates = len(rows) - report.stored
        if problems:
            conn.execute(insert(quarantine), [
                dict(batch_id=batch_id, file_name=path.name, line=p.line, field=p.field, rule=p.rule,
                     raw=_safe_raw(p.raw)) for p in problems])
        report.quarantined = len({p.line for p in problems if p.line is not None})
        report.reasons = Counter(re.sub(r"\d+", "N", f"{p.field}: {p.rule}" if p.field else p.rule)
                                 for p in problems)
        conn.execute(update(ingest_batches).where(ingest_batches.c.batch_id == batch_id).values(
            finished_at=dt.datetime.now(dt.timezone.utc), rows_stored=report.stored,
            rows_duplicate=report.duplicates, rows_quarantined=report.quarantined))
    return report


def ingest_files(store: Store, paths, allow_bad_check: bool = False,
                 progress: Callable[[str], None] | None = None) -> list[IngestReport]:
    """Ingest files subjects first, then records, then outcomes (records need their subjects)."""
    def order(p):
        return ORDER.get(schemas.detect_table(read_columns(Path(p))), 3)
    return [ingest_file(store, Path(p), allow_bad_check=allow_bad_check, progress=progress)
            for p in sorted(paths, key=order)]
