"""Batch grading and the warnings scan of every subject of a segment on a Dask cluster (`creditgrade grade
--scheduler`, `creditgrade warnings scan --scheduler`): each partition of an export (``features.export``) is
built and graded on a worker with the single-machine code (``features.distributed``, ``models.explain``), the
model sent to the workers once; the grades come back to the caller, which writes them in one transaction:
batch grades to the grades history (origin "batch"), a scan's grades and warnings through the single-machine
scan's own writer (``serving.warnings.store_scan``). Once per subject, date and model version: re-running
adds nothing. A failed partition fails the job before anything is written.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from creditgrade.features.distributed import checked_as_of, features_at, map_partitions, read_partition
from creditgrade.features.export import read_manifest
from creditgrade.features.freshness import Freshness
from creditgrade.features.store import Store
from creditgrade.models import explain
from creditgrade.models.registry import Loaded, load_champion
from creditgrade.models.warnings import triggers
from creditgrade.serving.history import store_grades
from creditgrade.serving.tables import create_tables
from creditgrade.serving.warnings import ScanReport, store_scan

ORIGIN = "batch"


@dataclass
class BatchReport:
    segment: str
    as_of: dt.date
    model: str
    subjects: int
    stored: int
    stale_sources: tuple[str, ...]


def grade_partition(folder, entry: dict, segment: str, as_of: pd.Timestamp, model,
                    keep: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One partition's grades (``models.explain.explain``'s columns, ``reasons`` as lists of reason codes and
    ``disputed``, index subject_key) and its features ``keep`` (those of them it has)."""
    features, disputed = features_at(read_partition(folder, entry), segment, as_of, with_disputed=True)
    graded, why = explain.explain(model, features, disputed=disputed)
    return (graded.assign(reasons=[[r["feature"] for r in w] for w in why],
                          disputed=graded.index.isin(list(disputed))),
            features[[f for f in keep if f in features.columns]])


def _graded(client, out, segment: str, as_of, loaded: Loaded,
            keep: list[str]) -> tuple[pd.Timestamp, Freshness, pd.DataFrame, pd.DataFrame]:
    """The as-of day, what it stands on, every subject's grades and features ``keep``, graded on the cluster."""
    day, fresh = checked_as_of(read_manifest(out, segment), as_of)
    model = client.scatter(loaded.model, broadcast=True)
    parts = map_partitions(client, out, segment, grade_partition, day, model, keep)
    return day, fresh, pd.concat([g for g, _ in parts]), pd.concat([x for _, x in parts])


def grade_all(store: Store, client, out, segment: str, as_of, loaded: Loaded | None = None) -> BatchReport:
    """Grade every subject of the export of ``segment`` under ``out`` as of ``as_of`` and store the grades."""
    loaded = loaded or load_champion(segment)
    day, fresh, graded, _ = _graded(client, out, segment, as_of, loaded, [])
    create_tables(store)
    with store.engine.begin() as conn:
        _, stored = store_grades(conn, segment, day, loaded, graded, graded["reasons"],
                                 set(graded.index[graded["disputed"]]), ORIGIN, fresh)
    return BatchReport(segment, day.date(), f"{loaded.name} v{loaded.version}", len(graded), stored,
                       fresh.stale_sources)


def scan_all(store: Store, client, out, segment: str, as_of, loaded: Loaded | None = None) -> ScanReport:
    """``serving.warnings.scan`` of the export of ``segment`` under ``out``: graded on the cluster, the grades
    and the warnings of the trend triggers (which read only the features they name) stored in one transaction."""
    loaded = loaded or load_champion(segment)
    named = sorted({f for t in triggers() if t.type == "feature" for f, _, _ in t.params["when"]})
    day, _, graded, X = _graded(client, out, segment, as_of, loaded, named)
    create_tables(store)
    with store.engine.begin() as conn:
        return store_scan(conn, segment, day, loaded, X, graded, graded["reasons"],
                          set(graded.index[graded["disputed"]]))
