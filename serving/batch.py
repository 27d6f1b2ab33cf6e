"""Batch grading of every subject of a segment on a Dask cluster (`creditgrade grade --scheduler`): each
partition of an export (``features.export``) is built and graded on a worker with the single-machine code
(``features.distributed``, ``models.explain``), the model sent to the workers once; the grades come back to
the caller and are written to the grades history in one transaction (origin "batch", once per subject, date
and model version: re-running adds nothing). A failed partition fails the job before anything is written.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from creditgrade.features.distributed import checked_as_of, features_at, map_partitions, read_partition
from creditgrade.features.export import read_manifest
from creditgrade.features.store import Store
from creditgrade.models import explain
from creditgrade.models.registry import Loaded, load_champion
from creditgrade.serving.history import store_grades
from creditgrade.serving.tables import create_tables

ORIGIN = "batch"


@dataclass
class BatchReport:
    segment: str
    as_of: dt.date
    model: str
    subjects: int
    stored: int
    stale_sources: tuple[str, ...]


def grade_partition(folder, entry: dict, segment: str, as_of: pd.Timestamp, model) -> pd.DataFrame:
    """One partition's grades (``models.explain.explain``'s columns, ``reasons`` as lists of reason codes and
    ``disputed``), index subject_key."""
    features, disputed = features_at(read_partition(folder, entry), segment, as_of, with_disputed=True)
    graded, why = explain.explain(model, features, disputed=disputed)
    return graded.assign(reasons=[[r["feature"] for r in w] for w in why],
                         disputed=graded.index.isin(list(disputed)))


def grade_all(store: Store, client, out, segment: str, as_of, loaded: Loaded | None = None) -> BatchReport:
    """Grade every subject of the export of ``segment`` under ``out`` as of ``as_of`` and store the grades."""
    day, fresh = checked_as_of(read_manifest(out, segment), as_of)
    loaded = loaded or load_champion(segment)
    model = client.scatter(loaded.model, broadcast=True)
    graded = pd.concat(map_partitions(client, out, segment, grade_partition, day, model))
    create_tables(store)
    with store.engine.begin() as conn:
        _, stored = store_grades(conn, segment, day, loaded, graded, graded["reasons"],
                                 set(graded.index[graded["disputed"]]), ORIGIN, fresh)
    return BatchReport(segment, day.date(), f"{loaded.name} v{loaded.version}", len(graded), stored,
                       fresh.stale_sources)
