"""Reading input files (CSV or Parquet): a header, then the rows in chunks of text, each with its line.

CSV is parsed by the csv module over the whole text, so a quoted field may hold newlines; a record's line
is its first physical line. Text is decoded as UTF-8; as GB18030 (the usual encoding of government
exports) only when the whole file decodes so *and* reads as Chinese: most of its non-ASCII characters are
common (GB2312) characters, which Latin-1 or other 8-bit text read as GB18030 is not ("Müller" would become
"M黮ler"). Otherwise each line is decoded as UTF-8 and a record on a line that is not UTF-8 is reported with
the rule to re-export the file, never guessed at. Rows are produced ``CHUNK_ROWS`` at a time so that memory
does not grow with the file. A file that cannot be read at all raises ``Unreadable`` naming the rule.
"""
from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from creditgrade.features.schemas import contract

CHUNK_ROWS = 20_000
BLOCK = 1 << 20
NOT_UTF8 = "line is not valid UTF-8 text (nor a Chinese GB18030 file); re-export the file as UTF-8"


class Unreadable(Exception):
    """A file that cannot be read at all; the message names the rule (and the line, when there is one)."""


@dataclass
class Chunk:
    """Rows as columns (text for CSV, the file's types for Parquet), each row with its line, and the lines
    that could not be read as rows."""

    table: pa.Table
    lines: list[int]
    bad_lines: list[tuple[int, str]]

    def rows(self, positions=None) -> list[dict]:
        """The rows (or those at ``positions``) as dicts keyed by column."""
        return (self.table if positions is None else self.table.take(positions)).to_pylist()


@dataclass
class TableFile:
    """A file's header and, consumed once, its rows in chunks."""

    names: list[str]          # the column names as written
    columns: list[str]        # the same, normalised (what rows are keyed by)
    encoding: str
    chunks: Iterator[Chunk]
    rows: int                 # how many rows it holds (Parquet: exactly; CSV: estimated from its first block)


def _norm(name) -> str:
    return unicodedata.normalize("NFKC", str(name)).strip().lstrip("\ufeff").strip().lower()


def _columns(names: list[str]) -> list[str]:
    """Normalised column names; two names that normalise alike refuse the header."""
    seen: dict[str, str] = {}
    for name in names:
        col = _norm(name)
        if col in seen:
            raise Unreadable(f"columns {seen[col]!r} and {name!r} are the same column once case and spaces are "
                             f"ignored; the header is refused, rename or drop one / 列名重复：{seen[col]!r} 与 {name!r}")
        seen[col] = name
    return list(seen)


def _encoding(path: Path) -> str:
    """'utf-8', 'gb18030' (whole file, plausibly Chinese) or 'mixed' (decode line by line)."""
    utf8, gb = codecs.getincrementaldecoder("utf-8")(), codecs.getincrementaldecoder("gb18030")()
    utf8_ok = gb_ok = True
    non_ascii = common = 0
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            last = len(block) < BLOCK
            if utf8_ok:
                try:
                    utf8.decode(block, last)
                except UnicodeDecodeError:
                    utf8_ok = False
            if gb_ok:
                try:
                    text = re.sub(r"[\x00-\x7f]+", "", gb.decode(block, last))
                except UnicodeDecodeError:
                    gb_ok = False
                else:
                    non_ascii += len(text)
                    common += len(text.encode("gb2312", errors="ignore")) // 2
            if not (utf8_ok or gb_ok):
                break
    if utf8_ok:
        return "utf-8"
    if gb_ok and common >= contract()["files"]["gb18030_common_share"] * non_ascii:
        return "gb18030"
    return "mixed"


def _lines(path: Path, encoding: str, bad: set[int]) -> Iterator[str]:
    """The file's physical lines as text (CR, LF or CRLF ends); undecodable line numbers go into ``bad``."""
    codec = "utf-8" if encoding == "mixed" else encoding
    number = 0
    with path.open("rb") as fh:
        for raw in fh:
            for piece in raw.splitlines(keepends=True):
                number += 1
                try:
                    text = piece.decode(codec)
                except UnicodeDecodeError:
                    bad.add(number)
                    text = piece.decode(codec, errors="replace")
                yield text.lstrip("\ufeff") if number == 1 else text


def _csv_records(path: Path, encoding: str) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(first line, values, rule) per record; values None with a rule when the record cannot be read."""
    csv.field_size_limit(contract()["files"]["max_field_chars"])
    bad: set[int] = set()
    reader = csv.reader(_lines(path, encoding, bad))
    first = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise Unreadable(f"line {first}: {exc} (a field longer than the CSV limit of "
                             f"{contract()['files']['max_field_chars']:,} characters, or a broken quote); the file "
                             "is refused / 字段过长或引号不匹配，整个文件被拒收") from None
        spans_bad = any(n in bad for n in range(first, reader.line_num + 1))
        if spans_bad:
            yield first, None, NOT_UTF8
        elif any(v.strip() for v in values):
            yield first, values, None
        first = reader.line_num + 1


def _read_csv(path: Path) -> TableFile:
    if path.stat().st_size == 0:
        raise Unreadable("the file is empty / 文件为空")
    encoding = _encoding(path)
    records = _csv_records(path, encoding)
    _, names, rule = next(records, (None, None, "the file has no header line / 文件没有表头"))
    if names is None:
        raise Unreadable(f"header: {rule}")
    columns = _columns(names)

    def chunk(rows: list[list[str]], lines: list[int], bad_lines: list[tuple[int, str]]) -> Chunk:
        cells = zip(*rows) if rows else [()] * len(columns)
        arrays = [pa.array([v.strip() or None for v in cell], pa.string()) for cell in cells]
        return Chunk(pa.Table.from_arrays(arrays, names=columns), lines, bad_lines)

    def chunks() -> Iterator[Chunk]:
        rows, lines, bad_lines = [], [], []
        for line, values, rule in records:
            if values is None:
                bad_lines.append((line, rule))
            elif len(values) != len(columns):
                bad_lines.append((line, f"line has {len(values)} fields but the header has {len(columns)}"))
            else:
                rows.append(values)
                lines.append(line)
            if len(rows) + len(bad_lines) >= CHUNK_ROWS:
                yield chunk(rows, lines, bad_lines)
                rows, lines, bad_lines = [], [], []
        yield chunk(rows, lines, bad_lines)

    return TableFile(names, columns, encoding, chunks(), _estimated_rows(path))


def _estimated_rows(path: Path) -> int:
    """A CSV file's rows estimated from the lines of its first block (quoted newlines aside)."""
    with path.open("rb") as fh:
        block = fh.read(BLOCK)
    return max(0, round(path.stat().st_size * block.count(b"\n") / max(len(block), 1)) - 1)


def _arrow_table(batch: pa.RecordBatch, columns: list[str]) -> pa.Table:
    """A batch as a table: timestamps all at midnight become dates, NaN (pandas' missing number) None."""
    arrays = []
    for col in batch.columns:
        if pa.types.is_timestamp(col.type) and pc.all(pc.equal(pc.floor_temporal(col, unit="day"), col)).as_py() \
                is not False:  # a real time of day is left for validation to refuse, never cut off
            col = pc.cast(col, pa.date32())
        elif pa.types.is_floating(col.type):
            col = pc.if_else(pc.is_nan(col), None, col)
        arrays.append(col)
    return pa.Table.from_arrays(arrays, names=columns)


def _read_parquet(path: Path) -> TableFile:
    """Parquet rows; a row's 'line' is its 1-based row number."""
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise Unreadable(f"not a readable Parquet file ({exc}); the file is refused / 不是可读的 Parquet 文件") from None
    columns = _columns(names)

    def chunks() -> Iterator[Chunk]:
        done = 0
        try:
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
                yield Chunk(_arrow_table(batch, columns), list(range(done + 1, done + batch.num_rows + 1)), [])
                done += batch.num_rows
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise Unreadable(f"row {done + 1}: the Parquet data cannot be read ({exc}); the file is refused / "
                             "Parquet 数据损坏，整个文件被拒收") from None

    return TableFile(names, columns, "parquet", chunks(), parquet.metadata.num_rows)


def open_table(path: Path) -> TableFile:
    """A file's header, and its rows to be read in chunks; ``Unreadable`` if even the header cannot be."""
    path = Path(path)
    return _read_parquet(path) if path.suffix.lower() == ".parquet" else _read_csv(path)


def read_columns(path: Path) -> list[str]:
    """A file's normalised column names from its first line (or Parquet schema); [] if unreadable."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            return [_norm(c) for c in pq.read_schema(path).names]
        with path.open("rb") as fh:
            first = fh.readline()
    except (pa.ArrowException, OSError):
        return []
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return [_norm(c) for c in next(csv.reader([first.decode(enc)]), [])]
        except (UnicodeDecodeError, csv.Error):
            continue
    return []
