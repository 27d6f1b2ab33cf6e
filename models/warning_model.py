"""The warning model beside the rules: the hazard of default within 3, 6 and 12 months from a subject's
trajectory (how its features changed over the last quarter, half-year and year, the features that are changes
themselves: recent negatives, drops against its own history, and the grade's PD it moves from), one estimator
per horizon, and levels from the hazards by the rules of ``models/warnings.toml`` (``[model]``): a minimum
hazard, or a share of each scan.

:func:`inputs` turns quarterly snapshots (rows of subject and as-of date) into the model's inputs; a
:class:`WarningModel` scores them, names the level each row reaches and says why (the inputs that pushed
its hazard up most, from the estimator's contributions).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from creditgrade.features.catalog import catalog
from creditgrade.models.estimator import RISK_SIGN, Estimator
from creditgrade.models.families import family
from creditgrade.models.warnings import LEVELS, WARNINGS_FILE, warnings_config

GRADE = "grade__pd"  # the input carrying the grade's PD (log-odds)


def model_config(path=WARNINGS_FILE) -> dict:
    """The ``[model]`` table: horizons (months), lags (quarters), level thresholds and texts."""
    return warnings_config(path)["model"]


def base_features(segment: str) -> list[str]:
    """The numeric model inputs of the catalogue whose change is followed."""
    return [s.name for s in catalog(segment) if s.model and s.direction in ("up", "down")]


def trajectory(snapshots: pd.DataFrame, features: list[str], lags: dict[str, int]) -> pd.DataFrame:
    """Per snapshot (columns ``subject_key``, ``as_of`` and ``features``), each feature's change since the
    same subject's snapshot ``lag`` quarters before (``{feature}__{name}``; NaN where there is none)."""
    now = snapshots[["subject_key", "as_of", *features]]
    out = {}
    for name, quarters in lags.items():
        then = now.assign(as_of=now["as_of"] + pd.offsets.QuarterEnd(quarters))
        past = now[["subject_key", "as_of"]].merge(then, on=["subject_key", "as_of"], how="left")
        for f in features:
            out[f"{f}__{name}"] = now[f].to_numpy(float) - past[f].to_numpy(float)
    return pd.DataFrame(out, index=snapshots.index)


def changes(features: list[str], conf: dict) -> list[str]:
    """The features that are changes themselves (a name with one of ``[model] as_is`` markers: a recent
    window, a comparison with the subject's own past), taken as they are."""
    return [f for f in features if any(mark in f for mark in conf["as_is"])]


def inputs(snapshots: pd.DataFrame, features: list[str], conf: dict) -> pd.DataFrame:
    """The model's inputs per snapshot: :func:`trajectory` over ``[model] lags``, the :func:`changes` as they
    are (``{feature}__now``) and, with ``[model] grade``, the log-odds of the grade's PD (column ``grade__pd``)."""
    now = snapshots[changes(features, conf)].astype(float).add_suffix("__now")
    out = pd.concat([trajectory(snapshots, features, conf["lags"]), now], axis=1)
    if conf["grade"]:
        p = snapshots["pd"].to_numpy(float).clip(1e-6, 1 - 1e-6)
        out[GRADE] = np.log(p / (1 - p))
    return out


@dataclass
class WarningModel:
    """Fitted estimators per horizon (months) on the :func:`inputs` ``columns``, from ``features``."""

    segment: str
    features: list[str]
    columns: list[str]
    estimators: dict[int, Estimator]
    info: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, segment: str, snapshots: pd.DataFrame, labels: dict[int, pd.Series], valid: pd.Series,
            seed: int = 0) -> WarningModel:
        """Fit one estimator per horizon on the inputs of ``snapshots`` (with the grade's ``pd`` when
        ``[model] grade``); ``labels[h]`` says (1/0, NaN where unknown) whether each defaulted within ``h``
        months; ``valid`` marks the held-out rows."""
        conf = model_config()
        features = base_features(segment)
        X = inputs(snapshots, features, conf)
        model = cls(segment, features, list(X.columns), {})
        params = conf["params"] | ({"monotone": model.monotone(model.columns)} if conf["monotone"] else {})
        for h in conf["horizons"]:
            y = labels[h]
            known = y.notna().to_numpy()
            tr, va = known & ~valid.to_numpy(), known & valid.to_numpy()
            est = family(conf["family"])(seed=seed, **params)
            model.estimators[h] = est.fit(X[tr], y[tr].astype(int).to_numpy(), X[va], y[va].astype(int).to_numpy())
        return model

    def monotone(self, columns: list[str]) -> dict[str, int]:
        """Each input's risk direction (1: higher, riskier), its feature's: a change or a value as it is of a
        feature whose higher values mean more risk raises the hazard; the grade's PD does."""
        sign = {s.name: s.monotone for s in catalog(self.segment)} | {GRADE.split("__")[0]: 1}
        return {c: int(sign.get(c.split("__")[0], 0)) for c in columns}

    def hazards(self, snapshots: pd.DataFrame) -> pd.DataFrame:
        """Hazard of default within each horizon (columns ``h3``, ``h6``, ``h12``) per snapshot."""
        X = inputs(snapshots, self.features, model_config())[self.columns]
        return pd.DataFrame({f"h{h}": est.predict_pd(X) for h, est in self.estimators.items()}, index=X.index)

    def levels(self, hazards: pd.DataFrame, thresholds: dict | None = None, as_of=None, warned=None) -> pd.Series:
        """The most severe level each row reaches; None where none. Each level (``thresholds``, by default the
        segment's ``[model.levels]``) reads its horizon's hazard and warns the rows at ``min_hazard`` or
        above, or the highest of each scan (the rows of one ``as_of`` date): its ``top`` share, or, with
        ``fill``, those not warned yet (by the rules, ``warned``, or a more severe level) until the scan's
        warned share reaches ``fill``."""
        thresholds = thresholds or model_config()["levels"][self.segment]
        scan = pd.Series(0 if as_of is None else np.asarray(as_of), index=hazards.index)
        taken = np.zeros(len(hazards), dtype=bool) if warned is None else np.asarray(warned, dtype=bool).copy()
        out = pd.Series(None, index=hazards.index, dtype=object)
        for level in LEVELS:  # most severe first
            rule = thresholds[level]
            hit = _warned_by(rule, hazards[f"h{rule['horizon']}"], taken, scan)
            out[hit & out.isna().to_numpy()] = level
            taken |= hit
        return out

    def reasons(self, snapshots: pd.DataFrame, horizon: int, top: int = 3) -> list[list[dict]]:
        """Per snapshot, the ``top`` inputs that raised its ``horizon``-month hazard most, each with its
        value, contribution and texts."""
        conf = model_config()
        X = inputs(snapshots, self.features, conf)[self.columns]
        est = self.estimators[horizon]
        contrib = est.walk(X).contributions[:, :-1] * RISK_SIGN[est.unit]
        names = list(est.feature_names_in_)
        specs = {s.name: s for s in catalog(self.segment)}
        out = []
        for i, row in enumerate(contrib):
            order = [j for j in np.argsort(-row)[:top] if row[j] > 0]
            out.append([_reason(names[j], X.iat[i, X.columns.get_loc(names[j])], row[j], specs, conf)
                        for j in order])
        return out

    def to_json(self) -> str:
        return json.dumps({"segment": self.segment, "features": self.features, "columns": self.columns,
                           "info": self.info, "family": model_config()["family"],
                           "estimators": {str(h): est.to_json() for h, est in self.estimators.items()}})

    @classmethod
    def from_json(cls, text: str) -> WarningModel:
        doc = json.loads(text)
        kind = family(doc["family"])
        return cls(doc["segment"], doc["features"], doc["columns"],
                   {int(h): kind.from_json(e) for h, e in doc["estimators"].items()}, doc["info"])


def _warned_by(rule: dict, h: pd.Series, taken: np.ndarray, scan: pd.Series) -> np.ndarray:
    """The rows one level warns: a hazard at ``min_hazard`` or above; else, in each scan, the highest
    hazards up to its ``top`` share, or (``fill``) the highest not ``taken`` yet until the scan's warned
    share reaches ``fill``."""
    if "min_hazard" in rule:
        return (h >= rule["min_hazard"]).to_numpy()
    size = scan.map(scan.value_counts()).to_numpy()
    if "top" in rule:
        pool, room = h, np.floor(rule["top"] * size)
    else:
        warned_so_far = pd.Series(taken).groupby(scan.to_numpy()).transform("sum").to_numpy()
        pool, room = h.where(~taken), np.floor(rule["fill"] * size) - warned_so_far
    return pool.groupby(scan).rank(method="first", ascending=False).to_numpy() <= room


def _reason(column: str, value: float, contribution: float, specs: dict, conf: dict) -> dict:
    feature, lag = column.split("__")
    if column == GRADE:
        text = conf["grade_text"]
    elif lag == "now":
        text = {"en": specs[feature].en, "zh": specs[feature].zh}
    else:
        over = conf["lag_texts"][lag]
        text = {"en": f"Change in {specs[feature].en} {over['en']}", "zh": f"{specs[feature].zh}{over['zh']}的变化"}
    return {"feature": column, "value": None if value != value else float(value), "contribution": float(contribution),
            "en": text["en"], "zh": text["zh"]}
