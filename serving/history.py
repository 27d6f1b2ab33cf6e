"""The grades history written in bulk: one row per subject, as-of date, model version and origin (a
re-run adds nothing). The warnings scan ("scan") and Dask batch grading ("batch") store through it."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable

import pandas as pd
from sqlalchemy import insert, select

from creditgrade.features.freshness import Freshness
from creditgrade.models.registry import Loaded
from creditgrade.serving.tables import grades


def stored_grade_ids(conn, segment: str, day: pd.Timestamp, loaded: Loaded, origin: str) -> pd.Series:
    """Grade ids by subject key of the grades already stored for that date, model version and origin."""
    g = grades.c
    q = select(g.subject_key, g.grade_id).where(
        g.segment == segment, g.as_of == day.date(), g.origin == origin, g.model_name == loaded.name,
        g.model_version == loaded.version).order_by(g.grade_id)
    return pd.Series(dict(conn.execute(q).all()), dtype="Int64")


def store_grades(conn, segment: str, day: pd.Timestamp, loaded: Loaded, graded: pd.DataFrame,
                 reasons: Iterable[list[str]], disputed: Collection[str], origin: str,
                 freshness: Freshness | None = None) -> tuple[pd.Series, int]:
    """Store ``graded`` (``models.explain.explain``'s frame, index subject_key) with each row's reason codes,
    the subjects with disputed records and, if given, what the date's grades stand on; skip the subjects
    stored already. Returns the grade ids by key after the insert and the number of rows inserted."""
    have = stored_grade_ids(conn, segment, day, loaded, origin)
    now = dt.datetime.now(dt.timezone.utc)
    fresh = {} if freshness is None else {
        "stale": freshness.stale, "data_as_of": json.dumps({s: d.isoformat() for s, d in freshness.data_as_of.items()})}
    rows = [dict(subject_key=key, segment=segment, as_of=day.date(), graded_at=now, pd=float(r.pd),
                 score=float(r.score), grade=r.grade, model_grade=r.model_grade,
                 override=r.override.feature if r.override is not None else None, model_name=loaded.name,
                 model_version=loaded.version, disputed=key in disputed, reasons=json.dumps(codes), origin=origin,
                 **fresh)
            for key, r, codes in zip(graded.index, graded.itertuples(index=False), reasons) if key not in have.index]
    if rows:
        conn.execute(insert(grades), rows)
    return stored_grade_ids(conn, segment, day, loaded, origin), len(rows)
