"""Segment profiles from the subjects table: firm age, sector and size (SMEs); household size, labour,
land, insurance and co-operative membership (households); profession and years licensed (practitioners).

Categorical features are pandas ``category`` columns with the catalogue's fixed categories.
Gender, ethnicity and every prohibited field are never read.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import spec

DAYS_PER_YEAR = 365.25


def _years_since(dates: pd.Series, as_of: pd.Timestamp) -> np.ndarray:
    return ((as_of - dates).dt.days / DAYS_PER_YEAR).to_numpy(dtype=float)


def _categorical(values: pd.Series, name: str) -> pd.Categorical:
    """Values as the catalogue's categories; a value outside them is missing."""
    categories = list(spec(name).categories)
    return pd.Categorical(values.astype(object).where(values.isin(categories)), categories=categories)


def _number(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values.astype(object), errors="coerce").to_numpy(dtype=float)


def build(subjects: pd.DataFrame, segment: str, as_of: pd.Timestamp) -> dict:
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


def exists_at(subjects: pd.DataFrame, segment: str, as_of: pd.Timestamp) -> np.ndarray:
    """Subjects that exist at ``as_of``: firms founded and practitioners licensed before it; households always."""
    column = {"sme": "founded", "practitioner": "licensed_since"}.get(segment)
    if column is None:
        return np.ones(len(subjects), dtype=bool)
    return (subjects[column] < as_of).to_numpy(dtype=bool)
