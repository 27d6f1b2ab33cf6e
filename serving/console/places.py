"""Township and village names from the household subjects (the generator provides them), falling back
to the code where a name is missing; and the households of one village with their flags."""
from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from creditgrade.features import freshness
from creditgrade.features.store import objections, subjects
from creditgrade.serving.grading import Grader
from creditgrade.serving.tables import warnings
from creditgrade.serving.villages import households


def names(store, townships) -> tuple[dict[str, str], dict[str, str]]:
    """Names of townships and of their villages, by code (the subjects found through the township index; the
    segment is checked here, since filtering on it in SQL leads SQLite to read every household)."""
    s = subjects.c
    q = select(s.segment, s.township_code, s.township_name, s.village_code, s.village_name).where(
        s.township_code.in_(sorted(townships))).distinct()
    with store.engine.connect() as conn:
        rows = [r for r in conn.execute(q).all() if r.segment == "household"]
    return ({r.township_code: r.township_name or r.township_code for r in rows},
            {r.village_code: r.village_name or r.village_code for r in rows})


def village_households(grader: Grader, village_code: str, day: pd.Timestamp) -> pd.DataFrame:
    """Every household of a village as of ``day`` (its grade, score, PD as ``serving.villages`` rates
    them), with display id, name, whether the data behind its grade are stale, whether a record is under
    an open objection, and its open warnings; ordered by household id."""
    frame = households(grader.store, day, {village_code[:9]}, model=grader.champions["household"])
    frame = frame[frame["village_code"] == village_code]
    keys = frame.index.tolist()
    with grader.store.engine.connect() as conn:
        people = {r.subject_key: r for r in conn.execute(select(
            subjects.c.subject_key, subjects.c.display_id, subjects.c.name).where(subjects.c.subject_key.in_(keys)))}
        disputed = {k for (k,) in conn.execute(select(objections.c.subject_key).where(
            objections.c.subject_key.in_(keys), objections.c.status == "open"))}
        open_warnings = dict(conn.execute(select(warnings.c.subject_key, func.count()).where(
            warnings.c.subject_key.in_(keys), warnings.c.acknowledged_at.is_(None)).group_by(warnings.c.subject_key)).all())
    marks = grader.watermarks("household")
    stale = {d: freshness.assess(marks, "household", pd.Timestamp(d).date()).stale
             for d in frame["graded_as_of"].dropna().unique()}
    out = frame.assign(household_id=[people[k].display_id for k in keys], name=[people[k].name for k in keys],
                       stale=frame["graded_as_of"].map(stale).fillna(False).astype(bool),
                       disputed=[k in disputed for k in keys],
                       open_warnings=[int(open_warnings.get(k, 0)) for k in keys])
    return out.sort_values("household_id")
