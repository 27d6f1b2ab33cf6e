"""Reading an analyst's table: delimited text (encoding tried, delimiter sniffed, header optional), ARFF,
Excel, Parquet; text and ARFF also compressed (``.gz``, ``.bz2``, ``.xz``, or a ``.zip`` of one file).

Columns keep their names as written (``Unnamed: 0``, ``a,b [x]``...); a file without a header line gets
``A1, A2, ...`` (UCI's way of naming attributes). Text is UTF-8 (with or without a BOM), else GB18030 (a
superset of GBK and GB2312, as most Chinese exports are written) unless most of its non-ASCII characters fall
outside GB2312 (then Western text in cp1252 that happens to decode: "Zürich" would be "Z黵ich"), else cp1252.
A header line naming a column twice is refused (pandas would rename the second ``x.1`` without a word).
A ``;``-delimited file whose numbers are not already read with a decimal point is marked as writing decimal
commas (``DataFrame.attrs["decimal"]``): ``table_columns`` reads its text columns as numbers by that mark.
Every failure is a :class:`CreditgradeError` naming the file and the rule.
"""
from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import gzip
import io
import lzma
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import pandas as pd

from creditgrade.features.errors import CreditgradeError
from creditgrade.training.table_columns import config

DELIMITERS = ",;\t| "
SNIFF_BYTES = 64_000
CHUNK_BYTES = 1 << 20
COUNT_CHARS = 100_000  # non-ASCII characters counted to judge an encoding
NON_ASCII = re.compile(r"[^\x00-\x7f]")


COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


@contextlib.contextmanager
def _bytes(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed if its suffix names a compression (a zip must hold one file)."""
    suffix = path.suffix.lower()
    if suffix != ".zip":
        with COMPRESSED.get(suffix, open)(path, "rb") as fh:
            yield fh
        return
    with zipfile.ZipFile(path) as archive:
        files = [i for i in archive.infolist() if not i.is_dir()]
        if len(files) != 1:
            raise CreditgradeError(f"{path} holds {len(files)} files: a table is read from a zip of exactly one / "
                                   f"压缩包内有 {len(files)} 个文件：仅能读取只含一个文件的 zip")
        with archive.open(files[0]) as fh:
            yield fh


def _inner_suffix(path: Path) -> str:
    """The suffix that names the table's format: ``.csv`` for ``x.csv.gz``."""
    compressed = path.suffix.lower() in (*COMPRESSED, ".zip")
    return (Path(path.stem).suffix if compressed else path.suffix).lower()


def _non_ascii(path: Path, encoding: str) -> Counter | None:
    """The first ``COUNT_CHARS`` non-ASCII characters of ``path`` read in ``encoding``, counted; None unless
    the whole file decodes."""
    decoder, found = codecs.getincrementaldecoder(encoding)(), Counter()
    try:
        with _bytes(path) as fh:
            while chunk := fh.read(CHUNK_BYTES):
                text = decoder.decode(chunk)
                if found.total() < COUNT_CHARS:
                    found.update(NON_ASCII.findall(text))
            found.update(NON_ASCII.findall(decoder.decode(b"", final=True)))
    except UnicodeDecodeError:
        return None
    return found


def _common(found: Counter, subset: str) -> float:
    """The share of the characters counted in ``found`` that the (common) ``subset`` encoding writes."""
    def written(ch: str) -> bool:
        try:
            ch.encode(subset)
        except UnicodeEncodeError:
            return False
        return True

    return sum(n for ch, n in found.items() if written(ch)) / found.total() if found else 1.0


def _encoding(path: Path) -> str:
    """The first of the configured encodings in which the whole file decodes and which is not doubted (most
    of its non-ASCII characters outside the encoding's common subset); a doubted one only if no other
    decodes."""
    conf = config()["reading"]
    tried, doubted = conf["encodings"], []
    for encoding in tried:
        if (found := _non_ascii(path, encoding)) is None:
            continue
        subset = conf["common"].get(encoding)
        if subset and _common(found, subset) < conf["common_share"]:
            doubted.append(encoding)
            continue
        return encoding
    if doubted:
        return doubted[0]
    raise CreditgradeError(f"{path} is not text in any of the encodings tried ({', '.join(tried)}): save it as "
                           f"UTF-8 / 文件不是所尝试的编码（{', '.join(tried)}）之一的文本：请另存为 UTF-8")


def _delimiter(path: Path, encoding: str) -> str:
    """The delimiter of a text table, sniffed from its first lines (comma if the sniffer cannot tell)."""
    with _bytes(path) as raw, io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="") as fh:
        sample = fh.read(SNIFF_BYTES)
    lines = sample.splitlines()[:-1] or sample.splitlines()
    try:
        return csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _read_text(path: Path, header: bool) -> pd.DataFrame:
    encoding = _encoding(path)
    sep = _delimiter(path, encoding)
    options = dict(sep=r"\s+" if sep == " " else sep, encoding=encoding, engine="python" if sep == " " else "c")
    with _bytes(path) as fh:
        df = pd.read_csv(fh, header=0 if header else None, **options)
    if header:  # the names as written: pandas renames a repeated one
        with _bytes(path) as fh:
            written = pd.read_csv(fh, header=None, nrows=1, dtype=str, **options).iloc[0].tolist()
        if len(written) == df.shape[1]:
            df.columns = [given if pd.isna(name) else name for name, given in zip(written, df.columns)]
    df.attrs["decimal"] = "," if sep == ";" and not any(_fractions(df[c]) for c in df.columns) else "."
    df.attrs["encoding"] = encoding
    return df


def _fractions(col: pd.Series) -> bool:
    """Whether a column was read as numbers with a fractional part (so the file writes decimal points)."""
    if not pd.api.types.is_float_dtype(col):
        return False
    values = col.to_numpy()
    values = values[np.isfinite(values)]
    return bool(np.any(values != np.round(values)))


def _read_arff(path: Path, header: bool) -> pd.DataFrame:
    import arff

    encoding = _encoding(path)
    with _bytes(path) as raw, io.TextIOWrapper(raw, encoding=encoding) as fh:
        doc = arff.load(fh)
    df = pd.DataFrame(doc["data"], columns=[name for name, _ in doc["attributes"]])
    df.attrs["encoding"] = encoding
    return df


def _read_excel(path: Path, header: bool) -> pd.DataFrame:
    """The workbook's sheet of the most cells (a table beside notes or a readme), named in ``attrs["sheet"]``
    when there are several."""
    sheets = pd.read_excel(path, header=0 if header else None, sheet_name=None)
    name = max(sheets, key=lambda n: sheets[n].size)
    df = sheets[name]
    if len(sheets) > 1:
        df.attrs["sheet"] = f"{name} (the largest of {', '.join(map(str, sheets))} / 最大的工作表)"
    return df


def _read_parquet(path: Path, header: bool) -> pd.DataFrame:
    return pd.read_parquet(path)


READERS = {".parquet": _read_parquet, ".pq": _read_parquet, ".arff": _read_arff, ".xlsx": _read_excel,
           ".xlsm": _read_excel, ".xls": _read_excel}


def read_table(path: Path, header: bool = True) -> pd.DataFrame:
    """The table in ``path`` by its suffix (anything else is delimited text); ``header=False`` names the
    columns ``A1..An``."""
    path = Path(path)
    if not path.is_file():
        raise CreditgradeError(f"{path} is a folder, not a table file / 这是文件夹，不是数据表文件" if path.is_dir()
                               else f"no such file: {path} / 文件不存在")
    if path.stat().st_size == 0:
        raise CreditgradeError(f"{path} is empty")
    reader = READERS.get(_inner_suffix(path), _read_text)
    if reader not in (_read_text, _read_arff) and _inner_suffix(path) != path.suffix.lower():
        raise CreditgradeError(f"{path}: only text and ARFF tables are read compressed: decompress it first / "
                               "仅文本和 ARFF 表可压缩读取：请先解压")
    try:
        df = reader(path, header)
    except CreditgradeError:
        raise
    except Exception as exc:  # each library has its own errors; all mean the same thing here
        kind = reader.__name__.removeprefix("_read_")
        raise CreditgradeError(f"{path} cannot be read as {kind}: {type(exc).__name__}: {exc}") from None
    if df.empty:
        raise CreditgradeError(f"{path} has a header but no rows")
    if not header:
        df.columns = [f"A{i + 1}" for i in range(df.shape[1])]
    df.columns = [str(c) for c in df.columns]
    duplicated = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if duplicated:
        raise CreditgradeError(f"{path}: column name(s) {', '.join(duplicated)} appear more than once: "
                               "every column needs its own name / 列名重复：每列须有自己的名称")
    return df


def read_dictionary(path: Path) -> dict[str, str]:
    """A data dictionary: column -> meaning, from the first two columns of a table with a header line."""
    df = read_table(path)
    if df.shape[1] < 2:
        raise CreditgradeError(f"data dictionary {path} needs two columns: column, meaning")
    names, meanings = df.iloc[:, 0], df.iloc[:, 1]
    out: dict[str, str] = {}
    for name, meaning in zip(names, meanings):
        if pd.isna(name):
            continue
        meaning = "" if pd.isna(meaning) else str(meaning)
        if out.get(str(name), meaning) != meaning:  # the last meaning would win, perhaps not the protected one
            raise CreditgradeError(f"data dictionary {path} gives column {str(name)!r} two meanings "
                                   f"({out[str(name)]!r}, {meaning!r}): one per column / 数据字典中同一列有两种含义")
        out[str(name)] = meaning
    return out
