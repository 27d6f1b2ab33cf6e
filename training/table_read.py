"""Reading an analyst's table: delimited text (delimiter sniffed, header optional), ARFF, Excel, Parquet.

Columns keep their names as written (``Unnamed: 0``, ``a,b [x]``...); a file without a header line gets
``A1, A2, ...`` (UCI's way of naming attributes). Every failure is a :class:`CreditgradeError` naming the
file and the rule.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from creditgrade.features.errors import CreditgradeError

DELIMITERS = ",;\t| "
SNIFF_BYTES = 64_000


def _delimiter(path: Path) -> str:
    """The delimiter of a text table, sniffed from its first lines (comma if the sniffer cannot tell)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        sample = fh.read(SNIFF_BYTES)
    lines = sample.splitlines()[:-1] or sample.splitlines()
    try:
        return csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _read_text(path: Path, header: bool) -> pd.DataFrame:
    sep = _delimiter(path)
    return pd.read_csv(path, sep=r"\s+" if sep == " " else sep, header=0 if header else None,
                       engine="python" if sep == " " else "c")


def _read_arff(path: Path, header: bool) -> pd.DataFrame:
    import arff

    with path.open(encoding="utf-8", errors="replace") as fh:
        doc = arff.load(fh)
    return pd.DataFrame(doc["data"], columns=[name for name, _ in doc["attributes"]])


def _read_excel(path: Path, header: bool) -> pd.DataFrame:
    return pd.read_excel(path, header=0 if header else None)


def _read_parquet(path: Path, header: bool) -> pd.DataFrame:
    return pd.read_parquet(path)


READERS = {".parquet": _read_parquet, ".pq": _read_parquet, ".arff": _read_arff, ".xlsx": _read_excel,
           ".xlsm": _read_excel, ".xls": _read_excel}


def read_table(path: Path, header: bool = True) -> pd.DataFrame:
    """The table in ``path`` by its suffix (anything else is delimited text); ``header=False`` names the
    columns ``A1..An``."""
    path = Path(path)
    if not path.is_file():
        raise CreditgradeError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise CreditgradeError(f"{path} is empty")
    reader = READERS.get(path.suffix.lower(), _read_text)
    try:
        df = reader(path, header)
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
                               "every column needs its own name")
    return df


def read_dictionary(path: Path) -> dict[str, str]:
    """A data dictionary: column -> meaning, from the first two columns of a table with a header line."""
    df = read_table(path)
    if df.shape[1] < 2:
        raise CreditgradeError(f"data dictionary {path} needs two columns: column, meaning")
    names, meanings = df.iloc[:, 0], df.iloc[:, 1]
    return {str(n): "" if pd.isna(m) else str(m) for n, m in zip(names, meanings) if pd.notna(n)}
