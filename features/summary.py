"""What the store holds: subjects, records per source and outcomes, per segment."""
from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from creditgrade.features.schemas import SEGMENTS, SOURCES
from creditgrade.features.store import Store, outcomes, records, subjects


def summary(store: Store) -> pd.DataFrame:
    """One row per segment: subjects, records per source, outcome rows and their default rate."""
    with store.engine.connect() as conn:
        n_subjects = dict(conn.execute(select(subjects.c.segment, func.count()).group_by(subjects.c.segment)).all())
        by_source = conn.execute(select(records.c.segment, records.c.source, func.count())
                                 .group_by(records.c.segment, records.c.source)).all()
        outs = dict(((s, (n, d)) for s, n, d in conn.execute(
            select(outcomes.c.segment, func.count(), func.sum(outcomes.c.defaulted))
            .group_by(outcomes.c.segment)).all()))
    table = pd.DataFrame(0, index=list(SEGMENTS), columns=["subjects", *SOURCES, "outcomes", "default_rate"])
    for seg, n in n_subjects.items():
        table.loc[seg, "subjects"] = n
    for seg, src, n in by_source:
        table.loc[seg, src] = n
    table["default_rate"] = table["default_rate"].astype(float)
    for seg, (n, d) in outs.items():
        table.loc[seg, "outcomes"] = n
        table.loc[seg, "default_rate"] = round((d or 0) / n, 4) if n else 0.0
    table.index.name = "segment"
    return table
