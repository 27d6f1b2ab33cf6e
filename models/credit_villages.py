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
    conf = config()["village"]
    return pd.DataFrame({"rated": ~grade.isin(conf["unrated"]).to_numpy(),
                         "borrowing": _any_positive(X, conf["borrowing"]),
                         "arrears": _any_positive(X, conf["arrears"])}, index=X.index)


def _any_positive(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return np.column_stack([X[c].fillna(0).to_numpy(float) > 0 for c in columns]).any(axis=1)


def rate_villages(households: pd.DataFrame) -> pd.DataFrame:
    """Per village: households, rated share, borrowing households and the share without arrears, and
    whether it is a credit village (a village without borrowers passes the arrears test)."""
    conf = config()["village"]
    h = households.assign(clean=households["borrowing"] & ~households["arrears"])
    v = h.groupby("village_code").agg(township_code=("township_code", "first"), households=("rated", "size"),
                                      rated=("rated", "sum"), borrowing=("borrowing", "sum"),
                                      borrowing_clean=("clean", "sum"))
    v["rated_share"] = v["rated"] / v["households"]
    v["clean_share"] = v["borrowing_clean"] / v["borrowing"].where(v["borrowing"] > 0)
    v["credit_village"] = ((v["rated_share"] >= conf["rated_share_min"] - EPS)
                           & ((v["borrowing"] == 0) | (v["clean_share"] >= conf["clean_share_min"] - EPS)))
    return v.reset_index()


def rate_townships(villages: pd.DataFrame) -> pd.DataFrame:
    """Per township: villages, credit villages, their share, and whether it is a credit township."""
    t = villages.groupby("township_code").agg(villages=("village_code", "size"),
                                              credit_villages=("credit_village", "sum"))
    t["credit_village_share"] = t["credit_villages"] / t["villages"]
    t["credit_township"] = t["credit_village_share"] >= config()["township"]["credit_village_share_min"] - EPS
    return t.reset_index()
