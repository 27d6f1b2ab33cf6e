"""Where models live: the MLflow tracking store and registry, one registered model per segment.

The tracking and registry store is SQLite under the home directory unless ``MLFLOW_TRACKING_URI`` says
otherwise; artifacts go to ``$CREDITGRADE_HOME/mlartifacts``. The serving champion of a segment is the
version carrying the ``champion`` alias. A version is logged as code (``models/mlflow_model.py``, which
needs the creditgrade package installed) with its model as JSON artifacts (``GradeModel.save``: estimator,
provenance, scale and rules, reason texts, each file's SHA-256 returned for the run's tags), a signature, an
input example and its dependencies pinned as installed, a description and tags; loading it unpickles
nothing. A fitted model identical to a registered one (same fingerprint) is not registered again. MLflow's
usage reporting is off unless the environment turns it on.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.metadata import requires, version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.telemetry.client import set_telemetry_client
from mlflow.types.schema import AnyType, ColSpec, Schema
from packaging.requirements import Requirement

import creditgrade.models as models

from creditgrade.features.errors import CreditgradeError
from creditgrade.features.ids import home
from creditgrade.models.bundle import GradeModel, GradePyfunc

CHAMPION = "champion"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def configure() -> MlflowClient:
    """Point MLflow at the creditgrade store (usage reporting and artifact progress bars off unless asked
    for); return a client for it."""
    if "MLFLOW_DISABLE_TELEMETRY" not in os.environ:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        set_telemetry_client()  # MLflow decided at import time; decide again
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a version's artifacts are copied
    uri = tracking_uri()
    asked = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if asked is None:  # MLflow wrote it to the environment: take it back, so a later CREDITGRADE_HOME counts
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(name: str) -> str:
    """The experiment of that name, created with its artifacts under the home directory."""
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return mlflow.create_experiment(name, artifact_location=(home() / "mlartifacts" / name).as_uri())


def model_name(segment: str) -> str:
    return f"creditgrade-{segment}"


@dataclass
class Loaded:
    model: GradeModel
    name: str
    version: str
    run_id: str


def load_version(segment: str, version: str | None = None, alias: str = CHAMPION) -> Loaded:
    """A registered version (by number, or by alias) of a segment's model."""
    client = configure()
    name = model_name(segment)
    try:
        mv = client.get_model_version(name, version) if version else client.get_model_version_by_alias(name, alias)
    except MlflowException:
        what = f"version {version}" if version else f"a {alias!r} alias"
        raise CreditgradeError(f"no {segment} model with {what} in the registry at {tracking_uri()}: "
                               f"run `creditgrade train --segment {segment}` first") from None
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    return Loaded(pyfunc.unwrap_python_model().model, name, str(mv.version), mv.run_id)


def load_champion(segment: str) -> Loaded:
    return load_version(segment, alias=CHAMPION)


MODEL_CODE = Path(models.__file__).with_name("mlflow_model.py")
"""What MLflow logs as the model's code: a pyfunc that reads the version's JSON artifacts."""


def pip_requirements() -> list[str]:
    """The creditgrade package (the logged code imports it) and its run-time dependencies, pinned to the
    versions installed here."""
    pinned = [f"creditgrade=={version('creditgrade')}"]
    for spec in requires("creditgrade") or []:
        req = Requirement(spec)
        if req.marker is None:
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            pinned.append(f"{req.name}{extras}=={version(req.name)}")
    return pinned


def input_columns(model: GradeModel) -> list[str]:
    """The columns a model grades from: its features, then the policy rules' inputs."""
    rules = [c for r in model.scale.rules for c in (r.feature, r.evidence, r.since) if c is not None]
    return list(dict.fromkeys(model.features + rules))


def example_and_signature(model: GradeModel, rows: pd.DataFrame) -> tuple[pd.DataFrame, ModelSignature]:
    """Five rows of ``rows`` as the input example (categories as text, as a JSON caller sends them) and the
    signature of the pyfunc's input and output; a categorical column accepts text or pandas categories."""
    example = rows[input_columns(model)].head(5)
    example = example.astype({c: object for c in example.select_dtypes("category")})
    signature = infer_signature(example, GradePyfunc(model).predict(None, example))
    categorical = set(rows[example.columns].select_dtypes("category"))
    signature.inputs = Schema([ColSpec(AnyType(), c.name, required=c.required) if c.name in categorical else c
                               for c in signature.inputs.inputs])
    return example, signature


def fingerprint(model: GradeModel, rows: pd.DataFrame) -> str:
    """SHA-256 of what makes a fitted model grade as it does: its documents (the fitted estimator in its own
    format, segment, features, reference values, data period, policy, texts) and the PDs it gives ``rows``.
    Equal models give equal fingerprints in any process."""
    declared = json.dumps(model.documents(), sort_keys=True)
    return hashlib.sha256(declared.encode() + np.round(model.pd(rows), 12).tobytes()).hexdigest()


def log_grade_model(model: GradeModel, rows: pd.DataFrame) -> tuple[ModelInfo, dict[str, str]]:
    """Log ``model`` as the active run's MLflow model (see the module docstring), with its signature and
    input example from ``rows``; return what MLflow answers and each document's SHA-256."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = model.save(Path(tmp))
        digests = {name: hashlib.sha256(Path(path).read_bytes()).hexdigest() for name, path in paths.items()}
        inputs, signature = example_and_signature(model, rows)
        logged = mlflow.pyfunc.log_model(name="model", python_model=str(MODEL_CODE), artifacts=paths,
                                         signature=signature, input_example=inputs,
                                         pip_requirements=pip_requirements())
    return logged, digests


def registered_as(segment: str, digest: str) -> ModelVersion | None:
    """The registered version of the segment's model with that fingerprint, if any."""
    found = configure().search_model_versions(f"name = '{model_name(segment)}' and tags.fingerprint = '{digest}'")
    return min(found, key=lambda mv: int(mv.version)) if found else None


def register_version(segment: str, logged, run_id: str, tags: dict[str, str], description: str) -> str:
    """Register a logged model (``mlflow.pyfunc.log_model``'s answer) as a new version of the segment's model,
    with its description and tags; returns the version. Through the client, which prints nothing (MLflow's
    fluent registration writes its notices to stderr past any logging level)."""
    client = configure()
    name = model_name(segment)
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    mv = client.create_model_version(name, source=logged.model_uri, run_id=run_id, tags=tags,
                                     description=description, model_id=logged.model_id)
    return str(mv.version)


def code_version() -> str:
    """The git commit of the project's code (``-dirty`` with uncommitted changes), else the package version."""
    root = Path(models.__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    return f"creditgrade {version('creditgrade')} (not a git checkout)"
