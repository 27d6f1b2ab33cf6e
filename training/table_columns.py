"""Which columns of an analyst's table are features: the target coded 0/1; text columns read as numbers
where (almost) all their values are numbers written as text ("13.5%", "12,345", "$1,200", "(1,200)", "1,5" in
a file of decimal commas, "?" for missing) and a float loses none of them; protected attributes, identifiers,
dates, lists, records and bytes, empty and constant columns left out with the reason for each (words, markers,
formats and texts in ``table.toml``). Each column is judged on its own values, never on the target's, but for
one check (:func:`leaks`): a column that alone all but separates the target is a copy or a consequence of it.
"""
from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from creditgrade.features.errors import CreditgradeError
from creditgrade.models.folds import covered_auc

CONFIG_FILE = Path(__file__).with_name("table.toml")
SAMPLE, LOOSE = 1000, 5  # a column's first values, tried first: a column of words is rejected on them alone
SEPARATORS = ",. \u00a0\u202f"  # thousands separators (in groups of three; ',' or '.': not the decimal mark)
EXACT_DIGITS = 15  # significant digits a float64 always keeps (beyond, identity numbers: 18 digits, may not)
NESTED = (list, tuple, dict, set, np.ndarray)  # values that are lists or records (Parquet lists and structs)


@cache
def config() -> dict:
    with CONFIG_FILE.open("rb") as fh:
        return tomllib.load(fh)


def _words(text: str) -> str:
    """Lower-case words separated by single spaces (camelCase and snake_case split)."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(text))
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def _hit(text: str, words: list[str]) -> str | None:
    """The first configured word found whole in ``text`` (Chinese words: anywhere), or None."""
    plain = f" {_words(text)} "
    for word in words:
        if (f" {_words(word)} " in plain) if word.isascii() else (word in str(text)):
            return word
    return None


def protected_words() -> list[str]:
    conf = config()["protected"]
    return [*conf["words"], *conf["words_zh"]]


def _identifier(col: pd.Series) -> str | None:
    """Why a column is an identifier (distinct in every row, and text, id-like named or row numbers)."""
    values = col.dropna()
    if len(values) < len(col) or values.nunique() < len(col) or len(col) < 3:
        return None
    word = _hit(col.name, config()["identifier"]["names"])
    if word:
        return f"named like an identifier: {word}"
    if not pd.api.types.is_numeric_dtype(values):
        return "text"
    ordered = np.sort(values.to_numpy(dtype=float))
    if np.all(ordered == np.round(ordered)) and np.all(np.diff(ordered) == 1):
        return "consecutive whole numbers"
    return None


@cache
def _number_pattern(mark: str) -> re.Pattern:
    """A number written as text with ``mark`` as its decimal mark: sign, currency, thousands separators
    (the other mark or a space, in groups of three), exponent and percent sign allowed; in accounting
    parentheses "(1,200)" it is negative (and in "(-1,200)", as some spreadsheets' formats write it); a unit
    after it (``units``: "3.5万") multiplies it."""
    signs = "|".join(re.escape(s) for s in sorted(config()["reading"]["currency"], key=len, reverse=True))
    sep = f"[{re.escape(SEPARATORS.replace(mark, ''))}]"
    units = "|".join(re.escape(u) for u in config()["reading"]["units"])
    number = rf"(?P<whole>\d{{1,3}}(?:{sep}\d{{3}})+|\d*)(?:{re.escape(mark)}(?P<part>\d*))?(?P<exp>[eE][+-]?\d+)?"
    return re.compile(rf"(?P<open>\()?\s*(?P<sign>[+-]?)\s*(?P<pre>{signs})?\s*(?P<sign2>[+-]?)\s*{number}\s*"
                      rf"(?P<unit>{units})?\s*(?P<post>{signs})?\s*(?P<pct>%)?\s*(?(open)\)|)")


def _numbers(texts: pd.Index, mark: str) -> tuple[np.ndarray, tuple[set[str], set[str], int]]:
    """Each text as a number (NaN where it is not one); the marks removed to read them, the units multiplied
    out, and how many numbers the float changes (of more than ``EXACT_DIGITS`` significant digits, not
    written back the same)."""
    pattern, out, marks, units, changed = _number_pattern(mark), np.full(len(texts), np.nan), set(), set(), 0
    factor = {unit: float(value) for unit, value in config()["reading"]["units"].items()}
    drop = str.maketrans("", "", SEPARATORS)
    for i, text in enumerate(texts.to_numpy(dtype=object)):
        m = pattern.fullmatch(text)
        signs = m and m["sign"] + m["sign2"]
        if m is None or not (m["whole"] or m["part"]) or (m["open"] and "+" in signs):
            continue
        whole = m["whole"].translate(drop)
        number = f"{whole or 0}.{m['part'] or 0}{m['exp'] or ''}"
        out[i] = float(number) * (-1 if "-" in signs or m["open"] else 1) * factor.get(m["unit"], 1)
        if len(f"{whole}{m['part'] or ''}".strip("0")) > EXACT_DIGITS:
            changed += Decimal(repr(float(number))) != Decimal(number)
        marks.update(x for x in (m["pre"], m["post"], m["pct"]) if x)
        if m["unit"]:
            units.add(m["unit"])
        if m["open"]:
            marks.add("()")
        if len(whole) < len(m["whole"]):
            marks.update(set(m["whole"]).difference(whole))
    return out, (marks, units, changed)


def _read_all(text: pd.Series, parse) -> tuple | None:
    """``text``'s distinct values with their counts, and ``parse`` of them (values, NaN or NaT where a text
    does not read; and what else it tells), when (almost) all of ``text`` reads; else None. The first
    ``SAMPLE`` values are tried first: more than ``LOOSE`` times the share allowed unread there rejects it."""
    lost = 1 - config()["reading"]["share"]
    for counts, allowed in ((text.iloc[:SAMPLE].value_counts(), LOOSE * lost), (text.value_counts(), lost)):
        values, told = parse(counts.index)
        if counts[pd.isna(values)].sum() > allowed * counts.sum():
            return None
    return counts, values, told


def _plain(text: str) -> str:
    """Compatibility characters as their plain forms (NFKC: "１２％" -> "12%"), and the minus sign U+2212."""
    return unicodedata.normalize("NFKC", text).replace("\u2212", "-")


def read_numbers(col: pd.Series, decimal: str = ".") -> tuple[pd.Series, str] | None:
    """A text column as numbers, with a note of what was removed and what became missing, when (almost) all
    its values other than the missing markers are numbers with ``decimal`` (or else the other mark) as their
    decimal mark and read without losing anything (every number written back the same, as many distinct
    numbers as distinct texts); None otherwise (and for columns that are not text)."""
    if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
        return None
    conf, words = config()["reading"], config()["read"]
    present = col.notna().to_numpy()
    written = col[present].astype(str).str.strip()
    text = written.map({w: _plain(w) for w in written.unique()})  # full-width digits, a typographic minus...
    markers = text.isin(conf["missing"])
    for mark in dict.fromkeys((decimal, "," if decimal == "." else ".")):
        if (read := _read_all(text[~markers], lambda texts: _numbers(texts, mark))) is None:
            continue
        counts, values, (marks, units, changed) = read
        readable = ~np.isnan(values)
        if changed or len(np.unique(values[readable])) < readable.sum():
            return None
        numbers = np.full(len(col), np.nan)
        numbers[present] = text.map(dict(zip(counts.index, values))).to_numpy(dtype=float)
        note = []
        if "()" in marks:
            note.append(words["parentheses"])
        if units:
            note.append(words["units"].format(units=" ".join(f"'{u}'" for u in sorted(units))))
        if (text != written).any():
            note.append(words["plain"])
        if marks := marks - {"()"}:
            note.append(words["removed"].format(marks=" ".join(f"'{x}'" for x in sorted(marks))))
        if mark == ",":
            note.append(words["decimal_comma"])
        if markers.any():
            found = text[markers].value_counts()
            note.append(words["missing"].format(markers=", ".join(f"'{k}' {v}" for k, v in found.items())))
        if unreadable := int(counts[np.isnan(values)].sum()):
            note.append(words["unreadable"].format(count=unreadable))
        return pd.Series(numbers, index=col.index, name=col.name), "; ".join(note or [words["numbers"]])
    return None


def _date(col: pd.Series) -> str | None:
    """The format in which (almost) all of a column's values are dates, or None."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return str(col.dtype)
    if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
        return None
    text = col.dropna().astype(str).str.strip()
    for fmt in config()["reading"]["date_formats"]:
        if _read_all(text, lambda texts: (pd.to_datetime(texts, format=fmt, errors="coerce"), fmt)):
            return fmt
    return None


def _not_values(col: pd.Series) -> str | None:
    """Why a column holds no values to judge: lists or records (Parquet lists and structs), or bytes."""
    if not pd.api.types.is_object_dtype(col) or pd.api.types.infer_dtype(col, skipna=True) == "string":
        return None
    kinds = {type(v) for v in col.dropna()}
    if any(issubclass(k, NESTED) for k in kinds):
        return config()["reasons"]["nested"]
    if any(issubclass(k, bytes) for k in kinds):
        return config()["reasons"]["binary"]
    return None


def _left_out(col: pd.Series) -> str | None:
    """Why a column (as read) is not a feature: no values, one value in every row, dates, an identifier."""
    reasons = config()["reasons"]
    if col.isna().all():
        return reasons["empty"]
    if col.notna().all() and col.nunique() == 1:
        return reasons["constant"]
    if fmt := _date(col):
        return reasons["date"].format(format=fmt)
    if why := _identifier(col):
        return reasons["identifier"].format(why=why)
    return None


def _meant(name: str, columns) -> str:
    """A hint at the column meant by ``name`` (not in the table): the one column matching it but for case and
    spaces, else difflib's close names; never taken silently."""
    key = "".join(name.split()).casefold()
    same = [c for c in columns if "".join(c.split()).casefold() == key]
    close = same if len(same) == 1 else difflib.get_close_matches(name, list(columns), n=3)
    if not close:
        return ""
    return f" (did you mean {' or '.join(map(repr, close))}? / 是否指 {' 或 '.join(map(repr, close))}？)"


def _check_named(option: str, names, columns, where: str) -> None:
    """Every column an option names is among ``columns``, else an error suggesting the column meant."""
    missing = [c for c in names if c not in columns]
    if missing:
        named = ", ".join(c + _meant(c, columns) for c in missing)
        raise CreditgradeError(f"{option}: column(s) {named} {where}")


@dataclass
class Columns:
    """The feature columns and, for every column left out, why; for every text column read as numbers,
    its numbers (``values``) and a note of how they were read (``read``)."""

    features: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    read: dict[str, str] = field(default_factory=dict)
    values: dict[str, pd.Series] = field(default_factory=dict)


def choose_columns(df: pd.DataFrame, target: str, exclude=(), protected=(),
                   dictionary: dict[str, str] | None = None) -> Columns:
    """Features of ``df``: every column but the target, those named by ``exclude`` / ``protected``,
    protected attributes by name or by the dictionary's meaning, and those :func:`_left_out` says, each
    judged as read (text as numbers where it is, by ``df.attrs["decimal"]``: ``table_read``'s mark)."""
    reasons = config()["reasons"]
    for option, names in (("--exclude", exclude), ("--protected", protected)):
        _check_named(option, names, df.columns, "not in the table / 表中没有这些列")
    _check_named("--dictionary", dictionary or {}, df.columns, "not in the table: a data dictionary describes this "
                 "table's columns, and a name that matches none protects nothing / 表中没有这些列：数据字典须描述本表的列")
    if target in protected:
        raise CreditgradeError(f"--protected names the target column {target!r}: a protected attribute is never the "
                               f"outcome a model learns / --protected 指定了目标列：受保护属性不能作为模型学习的结果")
    excluded = {c: reasons["exclude"] for c in exclude}
    excluded.update({c: reasons["option"] for c in protected})
    words, read, values = protected_words(), {}, {}
    for c in df.columns:
        if c == target or c in excluded:
            continue
        meaning = (dictionary or {}).get(c, "")
        if word := _hit(c, words):
            excluded[c] = reasons["name"].format(word=word)
        elif word := _hit(meaning, words):
            excluded[c] = reasons["dictionary"].format(meaning=meaning, word=word)
        elif why := _not_values(df[c]):
            excluded[c] = why
        else:
            numbers = read_numbers(df[c], df.attrs.get("decimal", "."))
            if why := _left_out(df[c] if numbers is None else numbers[0]):
                excluded[c] = why
            elif numbers is not None:
                values[c], read[c] = numbers
    excluded.pop(target, None)
    features = [c for c in df.columns if c != target and c not in excluded]
    if not features:
        raise no_features_left(excluded)
    return Columns(features, excluded, read, values)


def no_features_left(excluded: dict[str, str]) -> CreditgradeError:
    """The error for a table whose every column was left out, naming each and why."""
    why = "; ".join(f"{c}: {reason}" for c, reason in excluded.items())
    return CreditgradeError(f"no feature columns left / 没有可用的特征列: {why}")


def _alone_auc(x: pd.Series, y: np.ndarray) -> float | None:
    """Direction-free AUC of one column alone (missing values as one more value; a categorical column by its
    categories' bad rates), or None for a categorical column with too few rows per category to judge."""
    if isinstance(x.dtype, pd.CategoricalDtype):
        codes = x.cat.codes.to_numpy()
        if len(np.unique(codes)) * config()["leak"]["rows_per_category"] > len(y):
            return None
        score = pd.Series(y).groupby(codes).transform("mean").to_numpy()
    else:
        # ranks (infinite values at the ends), missing values below them all
        score = pd.to_numeric(x, errors="coerce").astype(float).rank(method="dense").fillna(0).to_numpy()
    auc = covered_auc(y, score)
    return max(auc, 1 - auc)


def leaks(X: pd.DataFrame, y: np.ndarray, keep=()) -> dict[str, str]:
    """The columns (not in ``keep``) whose AUC alone reaches ``leak.auc`` in table.toml, each with its reason:
    no credit record ranks defaults that well by itself, a copy or a consequence of the outcome does. None
    when a class has fewer than ``leak.least_class`` rows."""
    _check_named("--keep", keep, X.columns, "not among the feature columns / 这些列不在特征列中")
    limit, found = config()["leak"]["auc"], {}
    if np.bincount(np.asarray(y, dtype=int), minlength=2).min() < config()["leak"]["least_class"]:
        return found  # so few rows of a class that some column separates them by chance
    for c in X.columns:
        if c not in keep and (auc := _alone_auc(X[c], y)) is not None and auc >= limit:
            found[c] = config()["reasons"]["leak"].format(auc=auc)
    return found


def _shown(y: pd.Series, most: int = 5, longest: int = 30) -> str:
    """The most common values of a column with their counts, for an error: text cut at ``longest`` characters,
    and a value with a run of six digits or more (an identity or card number) never shown in clear."""
    counts = y.astype(str).value_counts()

    def shown(value: str) -> str:
        if re.search(r"\d{6}", value):
            return "<hidden: long number / 长数字不显示>"
        return repr(value if len(value) <= longest else value[:longest] + "...")

    return " (" + ", ".join(f"{shown(v)} x{n}" for v, n in counts.iloc[:most].items()) + (
        ", ..." if len(counts) > most else "") + ")"


def _second_header(y: pd.Series) -> str:
    """A hint when the first row's value occurs nowhere else (a second header line, as UCI's Excel files have)."""
    first = y.iloc[0]
    if (y == first).sum() == 1:
        return (f"; the first row's value {_shown(y.iloc[:1]).strip()} occurs nowhere else: a second header line? "
                "Delete it / 第一行的取值只出现这一次：是否多了一行表头？请删除")
    return ""


def binary_target(df: pd.DataFrame, target: str, bad=None) -> np.ndarray:
    """The target as 0/1 (1 = bad); codings other than 0/1 (as numbers, text or booleans) need ``bad``."""
    if target not in df.columns:
        raise CreditgradeError(f"target column {target!r}{_meant(target, df.columns)} not in the table (columns: "
                               f"{', '.join(df.columns)}); a file without a header line needs --no-header (columns "
                               "A1, A2, ...) / 表中没有目标列；没有表头行的文件请加 --no-header")
    y = df[target]
    if y.isna().any():
        raise CreditgradeError(f"target column {target!r} has {int(y.isna().sum())} missing values: drop those rows "
                               f"or fill them / 目标列有缺失值：请删除这些行或补全")
    values = set(y.unique().tolist())
    if len(values) < 2:
        raise CreditgradeError(f"target column {target!r} has a single class ({values.pop()!r}): "
                               "a model needs both good and bad rows / 目标列只有一个类别：模型需要好、坏两类样本")
    if len(values) > 2:
        raise CreditgradeError(f"target column {target!r} is not binary: {len(values)} distinct values"
                               f"{_shown(y)}{_second_header(y)} / 目标列不是二分类")
    text = y.astype(str)
    if bad is not None:
        if str(bad) not in set(text):
            raise CreditgradeError(f"--bad {bad!r} is not a value of {target!r}{_meant(str(bad), sorted(set(text)))}"
                                   f"{_shown(y)} / --bad 不是目标列的取值")
        return (text == str(bad)).to_numpy(dtype=int)
    if set(text) <= {"0", "1", "0.0", "1.0", "True", "False"}:
        return text.isin(["1", "1.0", "True"]).to_numpy(dtype=int)
    raise CreditgradeError(f"target column {target!r} has values other than 0/1{_shown(y)}: say which is bad with "
                           "--bad VALUE / 目标列取值不是 0/1：请用 --bad 指明哪个值表示违约")


def feature_frame(df: pd.DataFrame, columns: Columns, special=()) -> pd.DataFrame:
    """Model inputs: text read as numbers where ``columns`` says, other text as categories, booleans as
    numbers; a column with no values, or with nothing but special codes, is an error naming it."""
    X = df[columns.features].copy()
    for c, numbers in columns.values.items():
        X[c] = numbers
    codes = set(special)
    empty = [c for c in X.columns if X[c].isna().all() or X[c].dropna().isin(codes).all()]
    if empty:
        raise CreditgradeError(f"column(s) {', '.join(empty)} have no values at all (or only special codes): "
                               "drop them with --exclude or fill them")
    for c in X.columns:
        if pd.api.types.is_bool_dtype(X[c]):
            X[c] = X[c].astype(float)
        elif not pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].astype(str).where(X[c].notna()).astype("category")
    return X
