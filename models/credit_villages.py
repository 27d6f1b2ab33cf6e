"""Credit villages and credit townships from household grades: the rules of ``models/villages.toml``.

Pure computations over a frame of households, shared by serving (village ratings, evaluation sheets) and
training (band validation prints how many households and villages qualify, so a lax threshold shows).
"""
from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

VILLAGES_FILE = Path(__file__).with_name("villages.toml")
EPS = 1e-12  # shares are compared inclusively, safe from rounding


@cache
def config(path: Path = VILLAGES_FILE) -> dict:
    with Path(path).open("rb") as fh:
        return tomllib.load(fh)


def household_flags(grade: pd.Series, X: pd.DataFrame) -> pd.DataFrame:
    """Per household (aligned with ``X``): rated (a grade other than the unrated ones), borrowing and
    arrears (any of the configured features positive)."""
    return usage_flags(X).assign(rated=rated(grade))[["rated", "borrowing", "arrears"]]


def rated(grade) -> np.ndarray:
    """Whether each grade counts as rated (a grade other than the configured unrated ones)."""
    return np.isin(np.asarray(grade, dtype=object), config()["village"]["unrated"], invert=True)


def usage_flags(X: pd.DataFrame) -> pd.DataFrame:
    """Per household (aligned with ``X``): borrowing and arrears (any of the configured features positive)."""
    conf = config()["village"]
    return pd.DataFrame({"borrowing": _any_positive(X, conf["borrowing"]),
                         "arrears": _any_positive(X, conf["arrears"])}, index=X.index)


def _any_positive(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return np.column_stack([X[c].fillna(0).to_numpy(float) > 0 for c in columns]).any(axis=1)


def _groups(codes: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct codes, the position of each one's first row, and each row's group number (numpy:
    a pandas groupby of a few hundred rows costs tens of milliseconds, this well under one)."""
    return np.unique(codes.to_numpy(dtype=object), return_index=True, return_inverse=True)


def _count(group: np.ndarray, flags: pd.Series, n: int) -> np.ndarray:
    return np.bincount(group, weights=flags.to_numpy(dtype=bool), minlength=n).astype(np.int64)


def rate_villages(households: pd.DataFrame) -> pd.DataFrame:
    """Per village (in code order): households, rated share, borrowing households and the share without
    arrears, and whether it is a credit village (a village without borrowers passes the arrears test)."""
    conf = config()["village"]
    codes, first, group = _groups(households["village_code"])
    n = len(codes)
    size = np.bincount(group, minlength=n).astype(np.int64)
    rated_n, borrowing = _count(group, households["rated"], n), _count(group, households["borrowing"], n)
    clean = _count(group, households["borrowing"] & ~households["arrears"], n)
    rated_share = rated_n / np.maximum(size, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        clean_share = np.where(borrowing > 0, clean / borrowing, np.nan)
    qualifies = (rated_share >= conf["rated_share_min"] - EPS) & (
        (borrowing == 0) | (clean_share >= conf["clean_share_min"] - EPS))
    return pd.DataFrame({"village_code": codes.astype(str),
                         "township_code": households["township_code"].to_numpy(dtype=object)[first].astype(str),
                         "households": size, "rated": rated_n, "borrowing": borrowing, "borrowing_clean": clean,
                         "rated_share": rated_share, "clean_share": clean_share, "credit_village": qualifies})


def rate_townships(villages: pd.DataFrame) -> pd.DataFrame:
    """Per township (in code order): villages, credit villages, their share, and whether it is a credit township."""
    codes, _, group = _groups(villages["township_code"])
    size = np.bincount(group, minlength=len(codes)).astype(np.int64)
    credit = _count(group, villages["credit_village"], len(codes))
    share = credit / np.maximum(size, 1)
    return pd.DataFrame({"township_code": codes.astype(str), "villages": size, "credit_villages": credit,
                         "credit_village_share": share,
                         "credit_township": share >= config()["township"]["credit_village_share_min"] - EPS})
