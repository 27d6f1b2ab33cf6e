"""Train the warning model (``models.warning_model``) out of time, measure it beside the rules and the naive
anchor with the warnings backtest, and register it in MLflow.

Rows are the segment's quarterly snapshots not in default at their date; the model learns on the dates
before the backtest's development period, which it holds out for early stopping and calibration (as the
grade model does), red's threshold is tuned on the development period (:func:`tune_levels`, targets in
``[model.tuning]``; the other levels are shares of each scan), and the test period is reported.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from creditgrade.features.build import build_training_set
from creditgrade.features.frames import Frames
from creditgrade.features.snapshot import DAYS_PER_MONTH
from creditgrade.models.bundle import GradeModel
from creditgrade.models.registry import configure, experiment_id
from creditgrade.models.warning_model import WarningModel, model_config
from creditgrade.models.warnings import LEVELS
from creditgrade.training.backtest import backtest, periods, with_history

EXPERIMENT = "creditgrade-warning-model"


def warning_model_name(segment: str) -> str:
    return f"creditgrade-warning-{segment}"


def labels(data: pd.DataFrame, horizons) -> dict[int, pd.Series]:
    """Per horizon (months), whether each snapshot defaulted within it; NaN for a horizon under 12 months
    where the default within 12 months has no date (which side of the horizon it fell cannot be told)."""
    months = (data["default_at"] - data["as_of"]).dt.days / DAYS_PER_MONTH
    undated = (data["defaulted"] == 1) & data["default_at"].isna()
    return {h: data["defaulted"].astype(float) if h >= 12 else (months <= h).astype(float).mask(undated)
            for h in horizons}


def fit_warning_model(frames: Frames, segment: str, grade: GradeModel, data: pd.DataFrame | None = None,
                      seed: int = 0) -> tuple[WarningModel, pd.DataFrame]:
    """Fit on the snapshots before the development period, that period held out; return the model and the
    graded snapshots."""
    data = with_history(frames, segment, grade, data)
    dev_from, dev_to = periods(data, grade)["dev"]
    live = grade.scale.not_in_default(data)
    rows = live[live["as_of"] <= dev_to]
    model = WarningModel.fit(segment, rows, labels(rows, model_config()["horizons"]), rows["as_of"] >= dev_from, seed)
    model.info = {"train_from": str(rows["as_of"].min().date()), "dev_from": str(dev_from.date()),
                  "grade_model": f"{grade.kind} {grade.info.get('test_from', '')}"}
    return model, data


def tune_levels(hazards: pd.DataFrame, y: pd.Series, segment: str) -> dict:
    """The segment's level rules with red's minimum hazard tuned on development snapshots (their ``hazards``
    and outcomes ``y``): the lowest whose warnings default at least ``red_precision`` of the time
    (``red_min`` warned at least; 1, no red, where none does). The levels given as shares of a scan
    (orange's ``top``, yellow's ``fill``) need no tuning: a calm year's hazards are lower than a shock's."""
    conf = model_config()
    target, levels = conf["tuning"], {lv: dict(rule) for lv, rule in conf["levels"][segment].items()}
    top = hazards[f"h{levels['red']['horizon']}"].sort_values(ascending=False, kind="stable")
    precision = y.reindex(top.index).cumsum().to_numpy() / np.arange(1, len(top) + 1)
    ok = np.flatnonzero((precision >= target["red_precision"]) & (np.arange(1, len(top) + 1) >= target["red_min"]))
    levels["red"]["min_hazard"] = float(top.iloc[ok[-1]]) if len(ok) else 1.0
    return levels


def signals(model: WarningModel, grade: GradeModel | None = None):
    """The warning model's levels as backtest signals (``training.backtest.backtest(extra=...)``); given the
    ``grade`` model (whose periods they are), thresholds tuned on the development period (:func:`tune_levels`)
    and kept in ``model.info["levels"]``."""
    def extra(data: pd.DataFrame, rules: pd.DataFrame):
        hazards = model.hazards(data)
        thresholds = None
        if grade is not None:
            dev = data["as_of"].between(*periods(data, grade)["dev"]).to_numpy()
            thresholds = tune_levels(hazards[dev], data.loc[dev, "defaulted"], model.segment)
            model.info["levels"] = thresholds
        level = model.levels(hazards, thresholds, data["as_of"], rules.any(axis=1))
        flags = pd.DataFrame({f"model_{lv}": (level == lv).to_numpy() for lv in LEVELS}, index=data.index)
        return flags, {f"model_{lv}": lv for lv in LEVELS}
    return extra


def train_warning_model(frames: Frames, segment: str, grade: GradeModel, data: pd.DataFrame | None = None,
                        register: bool = True, tune: bool = False, oracle: pd.DataFrame | None = None
                        ) -> tuple[WarningModel, dict[str, pd.DataFrame], str | None]:
    """Fit, backtest beside the rules and the anchor (dev and test periods; with ``tune``, red's threshold
    tuned on dev, the levels in ``model.info["levels"]``, instead of ``[model.levels]``; ``oracle``: the true
    PD for the ceiling, see ``training.backtest.backtest``), log and register; return the model, the backtest
    tables and the registered version (None when not registering)."""
    data = build_training_set(frames, segment) if data is None else data
    model, _ = fit_warning_model(frames, segment, grade, data)
    tables = backtest(frames, segment, grade, extra=signals(model, grade if tune else None), data=data, log=register,
                      oracle=oracle)
    return model, tables, _register(model, tables) if register else None


def _register(model: WarningModel, tables: dict[str, pd.DataFrame]) -> str:
    client: MlflowClient = configure()
    name = warning_model_name(model.segment)
    with mlflow.start_run(experiment_id=experiment_id(EXPERIMENT), run_name=f"{model.segment}-warning-model") as run:
        mlflow.log_params({**model.info, "segment": model.segment, "columns": len(model.columns),
                           "horizons": ",".join(map(str, model.estimators))})
        for period, table in tables.items():
            mlflow.log_metrics({f"{period}.{row}.{col}": float(table.at[row, col])
                                for row in ("any", *LEVELS) for col in ("precision", "recall", "warned_share",
                                                                         "lead_median", "recall_gain")
                                if table.at[row, col] == table.at[row, col]})
        mlflow.log_text(model.to_json(), "warning_model/model.json")
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        mv = client.create_model_version(name, source=f"{run.info.artifact_uri}/warning_model", run_id=run.info.run_id,
                                         tags={"segment": model.segment, **{k: str(v) for k, v in model.info.items()}},
                                         description="Hazard of default within 3, 6 and 12 months from the "
                                                     "subject's trajectory; levels in models/warnings.toml [model]")
    return str(mv.version)
