"""Where models live: the MLflow tracking store and registry, one registered model per segment.

The tracking and registry store is SQLite under the home directory unless ``MLFLOW_TRACKING_URI`` says
otherwise; artifacts go to ``$CREDITGRADE_HOME/mlartifacts``. The serving champion of a segment is the
version carrying the ``champion`` alias.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.errors import CreditgradeError
from features.ids import home
from models.bundle import GradeModel

CHAMPION = "champion"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def configure() -> MlflowClient:
    """Point MLflow at the creditgrade store; return a client for it."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
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
