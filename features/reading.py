"""Reading input files (CSV or Parquet) into rows of text, keeping line numbers and unreadable lines.

CSV files are decoded as UTF-8, else GB18030 (the usual encoding of government exports) when the whole
file decodes so; otherwise line by line, and a line that is neither is reported, not guessed at.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


@dataclass
class RawTable:
    """A file's rows as text, each with its line number, plus the lines that could not be read."""

    columns: list[str]
    rows: list[dict]
    lines: list[int]
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    encoding: str = "utf-8"
    sha256: str = ""


def _decode(data: bytes) -> tuple[list[str | None], str]:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc).splitlines(), enc
        except UnicodeDecodeError:
            continue
    out = []
    for raw in data.split(b"\n"):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            out.append(None)
    return out, "mixed"


def _norm(name: str) -> str:
    return str(name).strip().lower()


def read_csv(path: Path) -> RawTable:
    data = path.read_bytes()
    text_lines, encoding = _decode(data)
    header_at = next((i for i, t in enumerate(text_lines) if t is not None and t.strip()), None)
    if header_at is None:
        return RawTable([], [], [], [], encoding, hashlib.sha256(data).hexdigest())
    columns = [_norm(c) for c in next(csv.reader([text_lines[header_at]]))]
    rows, lines, bad = [], [], []
    for i in range(header_at + 1, len(text_lines)):
        text, line = text_lines[i], i + 1
        if text is None:
            bad.append((line, "line is not valid UTF-8 or GB18030 text; re-export the file as UTF-8"))
            continue
        if not text.strip():
            continue
        values = next(csv.reader(io.StringIO(text)))
        if len(values) != len(columns):
            bad.append((line, f"line has {len(values)} fields but the header has {len(columns)}"))
            continue
        rows.append({c: (v if v.strip() else None) for c, v in zip(columns, values)})
        lines.append(line)
    return RawTable(columns, rows, lines, bad, encoding, hashlib.sha256(data).hexdigest())


def read_parquet(path: Path) -> RawTable:
    """Parquet rows; 'line' is the 1-based row number."""
    data = path.read_bytes()
    table = pq.read_table(io.BytesIO(data))
    columns = []
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if pa.types.is_timestamp(col.type):
            try:  # midnight timestamps are dates; a real time of day is left for validation to refuse
                table = table.set_column(i, name, pc.cast(col, pa.date32()))
            except pa.ArrowInvalid:
                pass
        elif pa.types.is_floating(col.type):  # NaN is how pandas writes a missing number
            table = table.set_column(i, name, pc.if_else(pc.is_nan(col), None, col))
        columns.append(_norm(name))
    table = table.rename_columns(columns)
    rows = table.to_pylist()
    return RawTable(columns, rows, list(range(1, len(rows) + 1)), [], "parquet", hashlib.sha256(data).hexdigest())


def read_columns(path: Path) -> list[str]:
    """A file's column names, reading only its header (or Parquet schema)."""
    if path.suffix.lower() == ".parquet":
        return [_norm(c) for c in pq.read_schema(path).names]
    with path.open("rb") as fh:
        first = fh.readline()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return [_norm(c) for c in next(csv.reader([first.decode(enc)]), [])]
        except UnicodeDecodeError:
            continue
    return []


def read_table(path: Path) -> RawTable:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path)
    return read_csv(path)
