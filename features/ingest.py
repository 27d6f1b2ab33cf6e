"""Validated, transactional, idempotent ingestion of subjects, records and outcomes files.

Each file is one transaction: its valid rows are stored, its bad rows quarantined with file, line, field
and rule, and a batch row counts them (stored + already stored + quarantined = read). Rows are read,
validated and stored a chunk at a time, so memory does not grow with the file; a worker thread reads and
checks the next chunk while the current one is written (``_ahead``: at most two chunks in flight, an error
of the worker raised in the file's transaction like any other). A file that cannot be read,
or whose header names a prohibited field or cannot be told apart, is refused whole: nothing of it is
stored, the refusal is recorded (never a value of the file) and the command exits non-zero. A crash
part-way leaves nothing.

Every stored row has a key: a record its source and document reference (``doc_ref``), a subject its id,
an outcome its subject, date and horizon. A row sent again with the same content adds nothing ("already
stored"). A row whose key is stored with *different* content is quarantined as a conflict, not stored as
a new version: a record is the evidence a department published under that reference, and grades,
warnings and objections point at it; replacing or versioning it on a re-send would change past grades
with no trace. A correction goes through an objection (audited, and it re-grades the subject), or the
department issues the record under a new reference.

Identity numbers: the row schemas mask them in every free-text field; a ``doc_ref`` or ``account`` that
held one keeps a keyed fingerprint of the original (``ids.redact_distinct``), so two references that
differ only in the masked digits stay two references, and re-sending the same one is still idempotent.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

from pydantic import TypeAdapter, ValidationError
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import insert, select, update

from creditgrade.features import bulk, freshness, ids, schemas
from creditgrade.features.reading import Chunk, TableFile, Unreadable, open_table, read_columns
from creditgrade.features.store import Store, ingest_batches, outcomes, quarantine, records, subjects

ORDER = {"subjects": 0, "records": 1, "outcomes": 2}
LOOKUP = 5_000  # keys per subject query (bound parameters stay under SQLite's limit)
KNOWN = 200_000  # subjects whose segment a file's ingest keeps between chunks (about 30 MB)
OnRecords = Callable[[object, pa.Table], None]  # (connection, new record rows) inside the file's transaction


@dataclass
class IngestReport:
    """What happened to one file; ``refused`` holds the rule when the whole file was refused."""

    file: str
    table: str | None
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str = ""
    refused: str | None = None

    @property
    def valid(self) -> int:
        return self.stored + self.duplicates


@dataclass
class _Problem:
    line: int | None
    field: str | None
    rule: str
    raw: dict | None = None


@dataclass
class _Prepared:
    """A chunk made ready for the store without asking it: its valid rows as store rows (None when the file
    lacks a required column), their values for the writer, whether a key repeats among them, their subjects
    (records and outcomes: the distinct keys, and each row's among them), and the chunk's problems so far."""

    chunk: Chunk
    problems: list[_Problem]
    kept: pa.Table | None = None
    values: bulk.Values | None = None
    repeats: bool = False
    subjects: tuple[list[str], pa.Array] | None = None


class _Refused(Exception):
    """The whole file is refused; ``field`` names the column at fault, if one is."""

    def __init__(self, rule: str, field: str | None = None):
        super().__init__(rule)
        self.field = field


def _safe_raw(row: dict | None) -> str | None:
    if row is None:
        return None
    text = json.dumps({k: (str(v) if v is not None else None) for k, v in row.items()}, ensure_ascii=False)
    return ids.redact(text)


def _field_of(loc: tuple, msg: str, columns: list[str]) -> str | None:
    if len(loc) > 1 and isinstance(loc[1], str):
        return loc[1]
    head = msg.removeprefix("Value error, ").split(" ")[0].rstrip(",:")
    return head if head in columns or head in schemas.RecordRow.model_fields else None


@cache
def _adapter(model) -> TypeAdapter:
    return TypeAdapter(list[model])


def _validate(model, rows: list[dict], lines: list[int], columns: list[str]):
    """Validate a chunk's rows at once; return (valid models with their lines, problems)."""
    adapter = _adapter(model)
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


# per table: its store table, how a stored row is made, its key columns and the input field that carries the key
TARGET = {"subjects": subjects, "records": records, "outcomes": outcomes}
WRITTEN = {name: [c for c in table.columns if c.name not in ("record_id", "voided_at")]  # the database's, an
           for name, table in TARGET.items()}                                               # objection's
FAST = {"records": schemas.fast_records, "subjects": schemas.fast_subjects,  # whole-column checks; empty, every
        "outcomes": schemas.fast_outcomes}                                     # row is checked by its row model
ROWS = {"subjects": _subject_row, "records": _record_row, "outcomes": _outcome_row}
KEYS = {"subjects": ("subject_key",), "records": ("source", "doc_ref"),
        "outcomes": ("subject_key", "as_of", "horizon_months")}
LABEL = {"subjects": "subject_id", "records": "doc_ref", "outcomes": "as_of"}
REMEDY = {"records": ": correct a record through an objection, or send it under a new doc_ref"}


def _content(row) -> dict:
    return {k: v for k, v in row.items() if k not in ("batch_id", "record_id")}


def _header_refusal(source: TableFile, table: str | None) -> _Refused | None:
    banned = schemas.prohibited_fields(source.names)
    if banned:
        named = ", ".join(f"{c!r} ({schemas.prohibited_category(c)})" for c in banned)
        return _Refused(f"prohibited field(s) {named}: forbidden by the credit-reporting regulation; the file is "
                        f"refused and none of its values was read or stored; remove the column(s) and send it again"
                        f" / 文件含有禁止采集的字段 {named}，整个文件被拒收，未读取或保存任何值", ",".join(banned))
    if table is None:
        return _Refused("cannot tell which table this file holds: a records file has a `kind` column, an outcomes "
                        "file `defaulted`, a subjects file `name` / 无法识别文件类型")
    return None


class _Batch:
    """One file's rows going into the store inside the caller's transaction, chunk by chunk."""

    def __init__(self, conn, path: Path, sha256: str, source: TableFile, table: str, report: IngestReport,
                 allow_bad_check: bool, on_records: OnRecords | None = None):
        self.conn, self.path, self.source, self.table, self.report = conn, path, source, table, report
        self.allow_bad_check = allow_bad_check
        self.on_records = on_records if table == "records" else None
        self.target = TARGET[table]
        self.schema = bulk.arrow_schema(WRITTEN[table]).append(pa.field("position", pa.int64()))
        self.writer = bulk.Writer(conn, self.target, WRITTEN[table], KEYS[table], source.rows,
                                  frozenset({"subject_key"} if self.on_records else ()),  # it reads a subject's records
                                  want_ids=self.on_records is not None)
        self.attempted = self.stored = self.already = 0
        self.latest: dict[tuple[str, str], dt.date] = {}  # records: last reported_date stored per (segment, source)
        self.known: dict[str, str] = {}  # segment by subject key, of subjects found stored
        self.batch_id = conn.execute(insert(ingest_batches).values(
            file_name=path.name, file_sha256=sha256, table_name=table,
            started_at=dt.datetime.now(dt.timezone.utc))).inserted_primary_key[0]
        declared = set(schemas.TABLES[table].model_fields)
        report.ignored_columns = [n for n, c in zip(source.names, source.columns) if c not in declared]
        missing = [c for c in schemas.required_columns(schemas.TABLES[table]) if c not in source.columns]
        self.missing_rule = (f"required column(s) {', '.join(missing)} missing from the {table} file header"
                             if missing else None)
        if missing:
            self._quarantine([_Problem(None, ",".join(missing), self.missing_rule)])

    def prepare(self, chunk: Chunk) -> _Prepared:
        """A chunk made ready for ``add`` without the database (``_ahead``'s worker runs it while the previous
        chunk is written): its rows checked and made store rows, with their values for the writer."""
        problems = [_Problem(line, None, rule) for line, rule in chunk.bad_lines]
        if self.missing_rule:
            problems += [_Problem(line, None, self.missing_rule, r) for r, line in zip(chunk.rows(), chunk.lines)]
            return _Prepared(chunk, problems)
        kept = self._checked(chunk, problems)
        subjects = None
        if self.table != "subjects":
            coded = kept.column("subject_key").combine_chunks().dictionary_encode()
            subjects = coded.dictionary.to_pylist(), coded.indices
        return _Prepared(chunk, problems, kept, self.writer.values(kept.drop_columns(["position"])),
                         bool(_repeated(kept, KEYS[self.table]).any()), subjects)

    def add(self, prepared: _Prepared, progress: Callable[[str], None] | None) -> None:
        """Store a prepared chunk: its rows of known subjects not stored yet, and its problems in quarantine."""
        chunk, problems, kept, values = prepared.chunk, prepared.problems, prepared.kept, prepared.values
        self.report.read += chunk.table.num_rows + len(chunk.bad_lines)
        if kept is not None:
            known = self._known(chunk, kept, prepared.subjects, problems)
            if not known.all():
                kept, values = kept.filter(pa.array(known)), None if values is None else values[known]
            self._store(chunk, kept, values, prepared.repeats, problems, progress)
        self._quarantine(problems)

    def close(self) -> None:
        self.writer.close()
        report = self.report
        report.stored, report.duplicates = self.stored, self.already
        self.conn.execute(update(ingest_batches).where(ingest_batches.c.batch_id == self.batch_id).values(
            finished_at=dt.datetime.now(dt.timezone.utc), rows_read=report.read, rows_stored=report.stored,
            rows_duplicate=report.duplicates, rows_quarantined=report.quarantined))

    def _checked(self, chunk: Chunk, problems: list[_Problem]) -> pa.Table:
        """Valid rows of the chunk as store rows in line order, with their ``position`` in the chunk. Rows that
        pass the fast column checks are taken whole; the others are validated row by row (and quarantined with
        the row model's message when they fail)."""
        n = chunk.table.num_rows
        fast = FAST.get(self.table)
        passes, typed = fast(chunk.table) if fast else (np.zeros(n, bool), {})
        slow = np.flatnonzero(~passes)
        rows = chunk.rows(slow)
        if self.table == "subjects" and self.allow_bad_check:
            rows = [{**r, "allow_bad_check": True} for r in rows]
        valid, bad = _validate(schemas.TABLES[self.table], rows, slow.tolist(), self.source.columns)
        problems += [_Problem(chunk.lines[p.line], p.field, p.rule, p.raw) for p in bad]
        slow_rows = [{**ROWS[self.table](m, ids.subject_key(m.segment, m.subject_id), self.batch_id), "position": i}
                     for m, i in valid]
        kept = pa.Table.from_pylist(slow_rows, schema=self.schema)
        if passes.any():  # fast rows alone are in line order already
            fast_rows = self._fast_rows(typed, np.flatnonzero(passes))
            kept = pa.concat_tables([fast_rows, kept]).sort_by("position") if kept.num_rows else fast_rows
        return kept

    def _known(self, chunk: Chunk, kept: pa.Table, subjects: tuple[list[str], pa.Array] | None,
               problems: list[_Problem]) -> np.ndarray:
        """Whether each row's subject (``subjects``: the distinct keys, and each row's among them) is stored in
        its segment (always for a subjects file); the others quarantined."""
        if subjects is None:
            return np.ones(kept.num_rows, bool)
        keys, where = subjects
        segment_of = pa.array(self._segments(keys), pa.string()).take(where)
        ok = pc.fill_null(pc.equal(segment_of, kept.column("segment")), False).to_numpy(zero_copy_only=False)
        for i in kept.column("position").filter(pa.array(~ok)).to_pylist():  # validated again for the message
            m = schemas.TABLES[self.table].model_validate(chunk.rows([i])[0])
            problems.append(_Problem(chunk.lines[i], "subject_id", f"unknown {m.segment} subject "
                                     f"{ids.redact(m.subject_id)}: ingest its subjects file first",
                                     m.model_dump(mode="json")))
        return ok

    def _fast_rows(self, typed: dict[str, pa.Array], take: np.ndarray) -> pa.Table:
        """Store rows of the rows that passed the fast checks: their typed columns and subject key (a
        practitioner's identity number hashed), and for subjects the displayed id and the household head's
        number, masked and hashed."""
        columns = {name: col.take(take) for name, col in typed.items()}
        sid = columns.pop("subject_id")
        person = pc.equal(columns["segment"], "practitioner")
        columns["subject_key"] = pc.if_else(person, _hashed(sid.filter(person), sid), pc.utf8_upper(sid))  # ASCII
        if self.table == "subjects":  # the fast checks took valid ids only (upper case, 18 characters a person's)
            head = columns.pop("head_id")
            columns["display_id"] = pc.if_else(person, _masked(sid), sid)
            columns["head_id_hash"] = _hashed(head, head)
            columns["head_id_masked"] = _masked(head)
            columns["bad_check_override"] = pa.array(np.full(len(take), self.allow_bad_check))
        columns["batch_id"] = pa.array(np.full(len(take), self.batch_id))
        columns["position"] = pa.array(take)
        return pa.table(columns).select(self.schema.names).cast(self.schema)

    def _segments(self, keys: list[str]) -> list[str | None]:
        """The stored segment of each of these subjects, None if not stored (looked up once per file, up to
        ``KNOWN``)."""
        missing = sorted(set(keys) - self.known.keys())
        if len(self.known) + len(missing) > KNOWN:
            self.known = {}
            missing = sorted(keys)
        for start in range(0, len(missing), LOOKUP):
            q = select(subjects.c.subject_key, subjects.c.segment).where(
                subjects.c.subject_key.in_(missing[start:start + LOOKUP]))
            self.known.update(self.conn.execute(q).all())
        return list(map(self.known.get, keys))

    def _store(self, chunk: Chunk, kept: pa.Table, values: bulk.Values | None, repeats: bool,
               problems: list[_Problem], progress) -> None:
        """Insert the rows not stored yet (``values``: the writer's, row for row; ``repeats``: whether a key may
        repeat among them). A row sent twice in the file is quarantined; a row whose key is stored already is
        counted as already stored when its content is the same, else quarantined as a conflict."""
        label, key_names = LABEL[self.table], list(KEYS[self.table])
        repeated = _repeated(kept, key_names) if repeats else np.zeros(kept.num_rows, bool)
        first_seen: dict[tuple, tuple[dict, int]] = {}
        for row in kept.filter(pa.array(repeated)).to_pylist():  # rare: rows whose key repeats within the chunk
            key, line = tuple(row[c] for c in key_names), chunk.lines[row.pop("position")]
            if key not in first_seen:
                first_seen[key] = (row, line)
                continue
            first, first_line = first_seen[key]
            same = _content(first) == _content(row)
            problems.append(_Problem(line, None if same else label, f"duplicate row: same as line {first_line}"
                                     if same else f"same {label} as line {first_line} with different content",
                                     _json(row)))
        firsts = {line for _, line in first_seen.values()}
        lines = np.array(chunk.lines)[kept.column("position").to_numpy()] if kept.num_rows else np.zeros(0, int)
        sent = ~repeated | np.isin(lines, list(firsts))
        fresh = kept.filter(pa.array(sent))
        if values is not None and not sent.all():
            values = values[sent]
        if not fresh.num_rows:
            return
        if progress:
            progress(f"inserting rows {self.attempted + 1}..{self.attempted + fresh.num_rows}")
        self.attempted += fresh.num_rows
        positions = fresh.column("position").to_numpy()
        fresh = fresh.drop_columns(["position"])
        inserted, row_ids, stored = self.writer.insert(fresh, values)
        self._added(fresh.filter(pa.array(inserted)), row_ids[inserted] if row_ids is not None else None)
        if inserted.all():
            return
        others = fresh.filter(pa.array(~inserted))
        names = [c for c in others.column_names if c != "batch_id"]
        differs = np.column_stack([~_same(others.column(c), stored.column(c)) for c in names])
        this_file = pc.fill_null(pc.equal(stored.column("batch_id"), self.batch_id), False).to_numpy(
            zero_copy_only=False)
        quiet = ~differs.any(axis=1) & ~this_file  # the same row, stored by an earlier file
        self.already += int(quiet.sum())
        loud = np.flatnonzero(~quiet)  # rare: a conflict, or a key sent twice in this file
        lines = np.array(chunk.lines)[positions[~inserted][loud]]
        for i, line, row, old in zip(loud, lines.tolist(), others.take(loud).to_pylist(),
                                     stored.column("batch_id").take(loud).to_pylist()):
            changed = [names[j] for j in np.flatnonzero(differs[i])]
            if this_file[i]:
                rule = (f"same {label} as an earlier line of this file with different content" if changed
                        else "duplicate row: same as an earlier line of this file")
                problems.append(_Problem(line, label if changed else None, rule, _json(row)))
            else:
                problems.append(_Problem(line, label, self._conflict(old, changed), _json(row)))

    def _added(self, rows: pa.Table, row_ids: np.ndarray | None) -> None:
        """Count newly inserted rows, note the records' latest dates and hand the records to ``on_records``."""
        self.stored += rows.num_rows
        if self.table != "records" or not rows.num_rows:
            return
        latest = rows.group_by(["segment", "source"]).aggregate([("reported_date", "max")]).to_pylist()
        for at in latest:
            key = (at["segment"], at["source"])
            self.latest[key] = max(at["reported_date_max"], self.latest.get(key, dt.date.min))
        if self.on_records:
            self.on_records(self.conn, rows.append_column("record_id", pa.array(row_ids, pa.int64())))

    def _conflict(self, batch_id: int, differs: list[str]) -> str:
        file_name = self.conn.execute(select(ingest_batches.c.file_name)
                                      .where(ingest_batches.c.batch_id == batch_id)).scalar_one_or_none()
        label = LABEL[self.table]
        return (f"conflicts with the row stored under the same {label} (file {file_name}, batch {batch_id}), "
                f"which differs in {', '.join(differs)}; a stored row is never replaced by a re-send"
                f"{REMEDY.get(self.table, '')} / 与已保存的同一{label}内容冲突，已保存的数据不会被覆盖")

    def _quarantine(self, problems: list[_Problem]) -> None:
        if not problems:
            return
        self.conn.execute(insert(quarantine), [
            dict(batch_id=self.batch_id, file_name=self.path.name, line=p.line, field=p.field, rule=p.rule,
                 raw=_safe_raw(p.raw)) for p in problems])
        self.report.quarantined += len({p.line for p in problems if p.line is not None})
        self.report.reasons.update(re.sub(r"\d+", "N", p.rule if not p.field or p.rule.startswith(f"{p.field}:")
                                          else f"{p.field}: {p.rule}") for p in problems)


def _ahead(prepare: Callable[[Chunk], _Prepared], chunks: Iterator[Chunk]) -> Iterator[_Prepared]:
    """``prepare`` of each chunk, the next chunk read and prepared by a worker thread while the caller writes
    this one, so that the database's work (which lets go of the GIL) and the next chunk's overlap; at most two
    chunks are in flight. An error in the worker is raised here, the same exception; the worker is joined on
    every way out (the end, its error, or ``close`` after the caller's)."""
    def step() -> _Prepared | None:
        chunk = next(chunks, None)
        return None if chunk is None else prepare(chunk)

    with ThreadPoolExecutor(1, thread_name_prefix="ingest") as worker:
        pending = worker.submit(step)
        try:
            while (prepared := pending.result()) is not None:
                pending = worker.submit(step)
                yield prepared
        finally:
            pending.cancel()


def _repeated(rows: pa.Table, keys) -> np.ndarray:
    """Whether each row's key is another's too."""
    return rows.select(list(keys)).to_pandas().duplicated(keep=False).to_numpy()


def _hashed(numbers: pa.Array, where: pa.Array) -> pa.Array:
    """The keyed hash of each identity number of ``numbers`` at its place in ``where`` (null elsewhere)."""
    hashes = {n: ids.hash_ric(n) for n in pc.unique(numbers.drop_null()).to_pylist()}
    return pa.array(list(hashes.values()), pa.string()).take(
        pc.index_in(where, value_set=pa.array(list(hashes), pa.string())))


def _masked(numbers: pa.Array) -> pa.Array:
    """``ids.mask_ric`` of 18-character identity numbers, column-wise."""
    return pc.binary_join_element_wise(pc.utf8_slice_codeunits(numbers, 0, 4), "*" * 10,
                                       pc.utf8_slice_codeunits(numbers, 14, 18), "")


def _same(new: pa.ChunkedArray, old: pa.ChunkedArray) -> np.ndarray:
    """Whether each value equals the stored one (two missing values are equal)."""
    both_missing = pc.and_(pc.is_null(new), pc.is_null(old))
    return pc.or_(pc.fill_null(pc.equal(new, old), False), both_missing).to_numpy(zero_copy_only=False)


def _json(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in _content(row).items()}


def _refuse(store: Store, path: Path, sha256: str, report: IngestReport, refusal: _Refused) -> IngestReport:
    """Record a refused file (its batch and one file-level quarantine row, no values) in its own transaction."""
    rule = ids.redact(str(refusal))
    with store.engine.begin() as conn:
        batch_id = conn.execute(insert(ingest_batches).values(
            file_name=path.name, file_sha256=sha256, table_name=report.table or "unknown",
            started_at=dt.datetime.now(dt.timezone.utc), finished_at=dt.datetime.now(dt.timezone.utc),
            rows_read=0)).inserted_primary_key[0]
        conn.execute(insert(quarantine).values(batch_id=batch_id, file_name=path.name, line=None,
                                               field=refusal.field, rule=rule))
    return IngestReport(report.file, report.table, encoding=report.encoding, refused=rule,
                        reasons=Counter({rule: 1}))


def ingest_file(store: Store, path: Path, table: str | None = None, allow_bad_check: bool = False,
                progress: Callable[[str], None] | None = None, on_records: OnRecords | None = None) -> IngestReport:
    """Ingest one file in one transaction and return its report (``refused`` set if it was refused whole).

    ``on_records(conn, rows)``, when given, is called inside the file's transaction after each chunk's new
    record rows are inserted (an Arrow table of the rows as stored, with their ``record_id``), so what it writes
    commits or rolls back with the file."""
    path = Path(path)
    with path.open("rb") as fh:
        sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    report = IngestReport(str(path), table)
    try:
        source = open_table(path)
        report.table = table = table or schemas.detect_table(source.columns)
        report.encoding = source.encoding
        refusal = _header_refusal(source, table)
        if refusal:
            raise refusal
        with store.engine.connect() as conn:
            try:
                with conn.begin():
                    batch = _Batch(conn, path, sha256, source, table, report, allow_bad_check, on_records)
                    with closing(_ahead(batch.prepare, source.chunks)) as prepared:
                        for chunk in prepared:
                            batch.add(chunk, progress)
                            pa.default_memory_pool().release_unused()  # else its mimalloc keeps what chunks freed
                    batch.close()
                    freshness.advance(conn, batch.latest)  # the data watermarks move with the file's records
            finally:
                bulk.settle(conn)
    except Unreadable as exc:
        return _refuse(store, path, sha256, report, _Refused(str(exc)))
    except _Refused as refusal:
        return _refuse(store, path, sha256, report, refusal)
    return report


def ingest_files(store: Store, paths, allow_bad_check: bool = False,
                 progress: Callable[[str], None] | None = None,
                 on_records: OnRecords | None = None) -> list[IngestReport]:
    """Ingest files subjects first, then records, then outcomes (records need their subjects)."""
    def order(p):
        return ORDER.get(schemas.detect_table(read_columns(Path(p))), 3)
    return [ingest_file(store, Path(p), allow_bad_check=allow_bad_check, progress=progress, on_records=on_records)
            for p in sorted(paths, key=order)]
