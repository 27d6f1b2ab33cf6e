"""Generic mode: the same two model families on any table with a binary target, 5-fold stratified CV.

Columns named like protected attributes (sex, gender, age, marital status, ethnicity...) are never used as
features; they are listed in the result so the analyst can use them for fairness checks instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from creditgrade.features.errors import CreditgradeError
from creditgrade.models.lgbm import LGBMPD
from creditgrade.models.scorecard import Scorecard
from creditgrade.training.evaluate import auc

PROTECTED = re.compile(r"(^|[^a-z])(sex|gender|age|marri\w*|marital\w*|personal_status\w*|ethnic\w*|race|"
                       r"religion|nationality)([^a-z]|$)", re.IGNORECASE)


@dataclass
class TableResult:
    rows: int
    bad_rate: float
    features: list[str]
    excluded: list[str]
    auc: dict[str, list[float]] = field(default_factory=dict)

    def mean(self, kind: str) -> float:
        return float(np.mean(self.auc[kind]))


def read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise CreditgradeError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise CreditgradeError(f"{path} is empty")
    try:
        df = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise CreditgradeError(f"{path} cannot be read as a table: {exc}") from None
    if df.empty:
        raise CreditgradeError(f"{path} has a header but no rows")
    return df


def binary_target(df: pd.DataFrame, target: str, bad=None) -> np.ndarray:
    """The target as 0/1 (1 = bad); other codings need ``bad`` to say which value is bad."""
    if target not in df.columns:
        raise CreditgradeError(f"target column {target!r} not in the table (columns: {', '.join(map(str, df.columns))})")
    y = df[target]
    if y.isna().any():
        raise CreditgradeError(f"target column {target!r} has {int(y.isna().sum())} missing values")
    values = set(y.unique().tolist())
    if len(values) < 2:
        raise CreditgradeError(f"target column {target!r} has a single class ({values.pop()!r}): "
                               "a model needs both good and bad rows")
    if len(values) > 2:
        raise CreditgradeError(f"target column {target!r} is not binary: {len(values)} distinct values")
    if bad is not None:
        if str(bad) not in {str(v) for v in values}:
            raise CreditgradeError(f"--bad {bad!r} is not a value of {target!r} ({sorted(map(str, values))})")
        return (y.astype(str) == str(bad)).to_numpy(dtype=int)
    if values <= {0, 1} or values <= {True, False}:
        return y.astype(int).to_numpy()
    raise CreditgradeError(f"target column {target!r} has values {sorted(map(str, values))}, not 0/1: "
                           "say which is bad with --bad VALUE")


def feature_frame(df: pd.DataFrame, target: str, exclude=()) -> tuple[pd.DataFrame, list[str]]:
    """Model inputs: protected and excluded columns dropped, text as categories; all-missing is an error."""
    drop = [c for c in df.columns if c != target and (PROTECTED.search(str(c)) or c in exclude)]
    X = df.drop(columns=[target, *drop])
    empty = [c for c in X.columns if X[c].isna().all()]
    if empty:
        raise CreditgradeError(f"column(s) {', '.join(map(str, empty))} have no values at all: drop them or fill them")
    if X.shape[1] == 0:
        raise CreditgradeError("no feature columns left after removing the target and protected attributes")
    for c in X.columns:
        if not pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]):
            X[c] = X[c].astype("category")
    return X, drop


def cross_validate(path: Path, target: str, bad=None, exclude=(), folds: int = 5, seed: int = 0,
                   kinds=("scorecard", "lightgbm")) -> TableResult:
    df = read_table(path)
    y = binary_target(df, target, bad)
    X, excluded = feature_frame(df, target, exclude)
    if min(np.bincount(y)) < folds:
        raise CreditgradeError(f"{folds}-fold CV needs at least {folds} rows of each class")
    result = TableResult(len(df), float(y.mean()), list(X.columns), excluded, {k: [] for k in kinds})
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        for kind in kinds:
            est = LGBMPD(seed=seed) if kind == "lightgbm" else Scorecard()
            est.fit(X.iloc[train], y[train])
            result.auc[kind].append(auc(y[test], est.predict_proba(X.iloc[test])[:, 1]))
    return result
