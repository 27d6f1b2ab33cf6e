"""Segment profiles from the subjects table: firm age, sector and size (SMEs); household size, labour,
land, insurance and co-operative membership (households); profession and years licensed (practitioners).

``subjects`` is a frame or a mapping of column arrays (one subject's row as 1-element arrays: the per-subject
path of ``features.online``). Categorical features are pandas ``category`` columns with the catalogue's fixed
categories.
Gender, ethnicity and every prohibited field are never read.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from creditgrade.features.catalog import spec

DAYS_PER_YEAR = 365.25


def _dates(values) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[ns]")


def _years_since(dates, as_of: pd.Timestamp) -> np.ndarray:
    return (np.datetime64(as_of, "ns") - _dates(dates)) / np.timedelta64(1, "D") / DAYS_PER_YEAR


@cache
def _categories(name: str) -> tuple[dict, pd.CategoricalDtype]:
    categories = list(spec(name).categories)
    return {c: i for i, c in enumerate(categories)}, pd.CategoricalDtype(categories)


def _categorical(values, name: str) -> pd.Categorical:
    """Values as the catalogue's categories; a value outside them is missing."""
    code, dtype = _categories(name)
    return pd.Categorical.from_codes([code.get(v, -1) for v in values], dtype=dtype)


def _number(values) -> np.ndarray:
    """Numbers and booleans (as stored: the ingest schemas typed them) as floats; missing as NaN."""
    return np.asarray(values, dtype=float)


def build(subjects, segment: str, as_of: pd.Timestamp) -> dict:
    if segment == "sme":
        return {
            "firm_age_years": _years_since(subjects["founded"], as_of),
            "sector": _categorical(subjects["sector"], "sector"),
            "size": _categorical(subjects["size"], "size"),
        }
    if segment == "household":
        members, labour = _number(subjects["members"]), _number(subjects["labour_force"])
        return {
            "household_members": members,
            "labour_force": labour,
            "labour_share": np.divide(labour, members, out=np.full(len(members), np.nan), where=members > 0),
            "land_mu": _number(subjects["land_mu"]),
            "agri_insurance": _number(subjects["agri_insurance"]),
            "coop_member": _number(subjects["coop_member"]),
        }
    return {
        "profession": _categorical(subjects["profession"], "profession"),
        "years_licensed": _years_since(subjects["licensed_since"], as_of),
    }


def exists_at(subjects, segment: str, as_of: pd.Timestamp) -> np.ndarray:
    """Subjects that exist at ``as_of``: firms founded and practitioners licensed before it; households always."""
    column = {"sme": "founded", "practitioner": "licensed_since"}.get(segment)
    if column is None:  # by a column's length: a mapping's own length counts its columns
        return np.ones(len(subjects["subject_key"]), dtype=bool)
    return _dates(subjects[column]) < np.datetime64(as_of, "ns")  # NaT compares False
