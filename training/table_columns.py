"""Which columns of an analyst's table are features: the target coded 0/1, protected attributes and
identifiers left out with the reason for each (words and texts in ``table.toml``).
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from creditgrade.features.errors import CreditgradeError

CONFIG_FILE = Path(__file__).with_name("table.toml")


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


@dataclass
class Columns:
    """The feature columns and, for every column left out, why."""

    features: list[str]
    excluded: dict[str, str] = field(default_factory=dict)


def choose_columns(df: pd.DataFrame, target: str, exclude=(), protected=(),
                   dictionary: dict[str, str] | None = None) -> Columns:
    """Features of ``df``: every column but the target, those named by ``exclude`` / ``protected``,
    protected attributes by name or by the dictionary's meaning, and identifiers."""
    reasons = config()["reasons"]
    for option, names in (("--exclude", exclude), ("--protected", protected)):
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise CreditgradeError(f"{option}: column(s) {', '.join(missing)} not in the table")
    excluded = {c: reasons["exclude"] for c in exclude}
    excluded.update({c: reasons["option"] for c in protected})
    words = protected_words()
    for c in df.columns:
        if c == target or c in excluded:
            continue
        meaning = (dictionary or {}).get(c, "")
        if word := _hit(c, words):
            excluded[c] = reasons["name"].format(word=word)
        elif word := _hit(meaning, words):
            excluded[c] = reasons["dictionary"].format(meaning=meaning, word=word)
        elif why := _identifier(df[c]):
            excluded[c] = reasons["identifier"].format(why=why)
    excluded.pop(target, None)
    features = [c for c in df.columns if c != target and c not in excluded]
    if not features:
        raise CreditgradeError("no feature columns left after removing the target, protected attributes and "
                               "identifiers")
    return Columns(features, excluded)


def binary_target(df: pd.DataFrame, target: str, bad=None) -> np.ndarray:
    """The target as 0/1 (1 = bad); codings other than 0/1 (as numbers, text or booleans) need ``bad``."""
    if target not in df.columns:
        raise CreditgradeError(f"target column {target!r} not in the table (columns: {', '.join(df.columns)}); "
                               "a file without a header line needs --no-header (columns A1, A2, ...)")
    y = df[target]
    if y.isna().any():
        raise CreditgradeError(f"target column {target!r} has {int(y.isna().sum())} missing values")
    values = set(y.unique().tolist())
    if len(values) < 2:
        raise CreditgradeError(f"target column {target!r} has a single class ({values.pop()!r}): "
                               "a model needs both good and bad rows")
    if len(values) > 2:
        raise CreditgradeError(f"target column {target!r} is not binary: {len(values)} distinct values")
    text = y.astype(str)
    if bad is not None:
        if str(bad) not in set(text):
            raise CreditgradeError(f"--bad {bad!r} is not a value of {target!r} ({sorted(set(text))})")
        return (text == str(bad)).to_numpy(dtype=int)
    if set(text) <= {"0", "1", "0.0", "1.0", "True", "False"}:
        return text.isin(["1", "1.0", "True"]).to_numpy(dtype=int)
    raise CreditgradeError(f"target column {target!r} has values {sorted(set(text))}, not 0/1: "
                           "say which is bad with --bad VALUE")


def feature_frame(df: pd.DataFrame, columns: Columns, special=()) -> pd.DataFrame:
    """Model inputs: text as categories, booleans as numbers; a column with no values, or with nothing but
    special codes, is an error naming it."""
    X = df[columns.features].copy()
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
