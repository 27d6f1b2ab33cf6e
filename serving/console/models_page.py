"""What the registry holds for the regulator's models page: each segment's registered versions (kind,
out-of-time AUC, the champion), the champion history read from the grades given, and the review packs,
monitoring reports and band-validation tables logged to MLflow by training."""
from __future__ import annotations

import datetime as dt
import io
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from mlflow.artifacts import load_text
from sqlalchemy import func, select

from creditgrade.features.schemas import SEGMENTS
from creditgrade.models.registry import CHAMPION, configure, model_name, tracking_uri
from creditgrade.serving.console.config import CONFIG
from creditgrade.serving.tables import grades


@dataclass
class Segment:
    segment: str
    versions: list[dict] = field(default_factory=list)
    champion: str | None = None
    history: list = field(default_factory=list)
    monitor: list[tuple[str, str]] = field(default_factory=list)     # (run id, artifact path)
    validation: tuple[str, str] | None = None
    validation_table: pd.DataFrame | None = None


def _files(client, run_id: str, under: str | None = None) -> list[str]:
    """The artifact paths of a run (directories walked) with a suffix the console serves."""
    found = []
    for item in client.list_artifacts(run_id, under):
        if item.is_dir:
            found += _files(client, run_id, item.path)
        elif Path(item.path).suffix in CONFIG["models"]["artifact_suffixes"]:
            found.append(item.path)
    return found


def _latest_run(client, experiment: str, segment: str):
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], f"params.segment = '{segment}'", max_results=1,
                              order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


_cache: dict[str, tuple[float, list[Segment]]] = {}


def segments(store) -> list[Segment]:
    """Every segment's models, newest version first, each with the grades given by each version. What the
    registry holds is re-read at most every ``[models] registry_seconds`` (it changes when a model is
    trained, promoted or reviewed); the grades are read each time."""
    until, found = _cache.get(tracking_uri(), (0.0, []))
    if until < time.monotonic():
        found = [_registry(segment) for segment in SEGMENTS]
        _cache[tracking_uri()] = (time.monotonic() + CONFIG["models"]["registry_seconds"], found)
    g = grades.c
    with store.engine.connect() as conn:
        used = conn.execute(select(g.segment, g.model_name, g.model_version, func.min(g.graded_at).label("first"),
                                   func.max(g.graded_at).label("last"), func.count().label("n"))
                            .group_by(g.segment, g.model_name, g.model_version).order_by(func.min(g.graded_at))).all()
    return [replace(seg, history=[u for u in used if u.segment == seg.segment]) for seg in found]


def _registry(segment: str) -> Segment:
    client = configure()
    seg = Segment(segment)
    name = model_name(segment)
    versions = client.search_model_versions(f"name = '{name}'")
    if versions:
        seg.champion = client.get_registered_model(name).aliases.get(CHAMPION)
    for v in sorted(versions, key=lambda v: -int(v.version)):
        seg.versions.append(dict(
            version=v.version, kind=v.tags.get("kind", ""), run_id=v.run_id,
            oot_auc=float(v.tags["oot_auc"]) if "oot_auc" in v.tags else None,
            registered=dt.datetime.fromtimestamp(v.creation_timestamp / 1000, dt.timezone.utc),
            review=_files(client, v.run_id, "review")))
    monitor = _latest_run(client, CONFIG["models"]["monitor_experiment"], segment)
    if monitor is not None:
        seg.monitor = [(monitor.info.run_id, p) for p in _files(client, monitor.info.run_id) if p.endswith(".html")]
    validation = _latest_run(client, CONFIG["models"]["validation_experiment"], segment)
    if validation is not None:
        paths = _files(client, validation.info.run_id)
        html = [p for p in paths if p.endswith(".html")]
        seg.validation = (validation.info.run_id, html[0]) if html else None
        if "validation.csv" in paths:
            seg.validation_table = pd.read_csv(io.StringIO(load_text(f"{validation.info.artifact_uri}/validation.csv")))
    return seg


def artifact(run_id: str, path: str) -> bytes | None:
    """One logged file of a run, if its suffix is one the console serves and it exists."""
    if Path(path).suffix not in CONFIG["models"]["artifact_suffixes"] or ".." in Path(path).parts:
        return None
    client = configure()
    if path not in _files(client, run_id, str(Path(path).parent) if Path(path).parent != Path(".") else None):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, path, tmp)).read_bytes()
