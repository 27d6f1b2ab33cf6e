"""Choosing a model inside the training rows of one outer fold: every family of ``models.families``, tuned
where the family has a search (``models.tuning``), and a blend of them (weights chosen by Caruana's greedy
selection), judged by the AUC of their out-of-fold log-odds on inner folds (three; the tuned LightGBM's are
its own eight, whose fold models it keeps); the outer rows are only scored.

A family that takes ``special_values`` (the scorecard) bins the special codes itself; any other sees them
as missing values, which LightGBM and the EBM keep apart as a bin of their own.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from creditgrade.models.families import FAMILIES
from creditgrade.models.tuning import candidate, covered_auc, ensemble_selection, inner_splits

BLEND = "blend"
BLEND_ROUNDS = 10  # the blend's weights go in tenths


def logit(pd_: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(pd_, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def _inputs(est, X: pd.DataFrame, special: tuple) -> pd.DataFrame:
    """X as the family reads it: special codes binned by a family that takes them, otherwise missing."""
    if not special:
        return X
    if "special_values" in est.get_params():
        est.set_params(special_values=list(special))
        return X
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    return X.assign(**{c: X[c].mask(X[c].isin(special)) for c in numeric})


def cross_fit(est, X: pd.DataFrame, y: np.ndarray, splits) -> np.ndarray:
    """Out-of-fold log-odds of ``est`` on the inner folds (NaN on rows no fold validates)."""
    oof = np.full(len(y), np.nan)
    for train, valid in splits:
        model = clone(est).fit(X.iloc[train], y[train])
        oof[valid] = logit(model.predict_pd(X.iloc[valid]))
    return oof


@dataclass
class Blend:
    """A weighted mean of candidates' log-odds, recalibrated: ``a * sum(w * decision) + b``."""

    weights: dict[str, float]
    calibration: tuple[float, float] = (1.0, 0.0)

    def mix(self, decisions: dict[str, np.ndarray]) -> np.ndarray:
        a, b = self.calibration
        return a * sum(w * decisions[name] for name, w in self.weights.items()) + b

    def __str__(self) -> str:
        return " + ".join(f"{w:.1f} {name}" for name, w in sorted(self.weights.items(), key=lambda kv: -kv[1]))

    @classmethod
    def best(cls, y: np.ndarray, oof: dict[str, np.ndarray]) -> "Blend":
        """The weights (a tenth at a time, greedily) that maximise the out-of-fold AUC of the mean."""
        names = list(oof)
        chosen = ensemble_selection(y, [oof[n] for n in names], rounds=BLEND_ROUNDS, pool=len(names))
        blend = cls({names[i]: w for i, w in chosen.items()})
        mixed = blend.mix(oof)
        seen = ~np.isnan(mixed)
        platt = LogisticRegression(C=1e6).fit(mixed[seen].reshape(-1, 1), y[seen])
        blend.calibration = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        return blend


@dataclass
class Choice:
    """One outer fold: each candidate's inner AUC and log-odds on the outer rows, the one chosen."""

    inner_auc: dict[str, float] = field(default_factory=dict)
    outer: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    chosen: str = ""
    fixed_seconds: float = 0.0  # what no budget cuts: every family's fit but the searches beyond their first trial


def choose(X: pd.DataFrame, y: np.ndarray, X_test: pd.DataFrame, specs: list, scale, seed: int = 0,
           seconds: float = 60.0, special: tuple = (), families=None, trials: int | None = None) -> Choice:
    """Fit every candidate on ``X, y``, judge it on inner folds, score ``X_test``; searches share what is
    left of ``seconds`` once the other families are fitted (and run at most ``trials`` each, if given)."""
    deadline = time.perf_counter() + seconds
    splits = inner_splits(y, seed)
    estimators = {name: candidate(name, specs, scale, seed, seconds, trials) for name in (families or FAMILIES)}
    searched = [n for n, e in estimators.items() if "seconds" in e.get_params()]
    oof, choice = {}, Choice()
    for name in sorted(estimators, key=lambda n: n in searched):
        start = time.perf_counter()
        est = estimators[name]
        if name in searched:
            est.set_params(seconds=max(deadline - start, 0.0) / (len(searched) - searched.index(name)))
        train, test = _inputs(est, X, special), _inputs(est, X_test, special)
        model = clone(est).fit(train, y)
        found = getattr(model, "oof_decision_", None)
        oof[name] = cross_fit(est, train, y, splits) if found is None else found
        choice.outer[name] = logit(model.predict_pd(test))
        choice.inner_auc[name] = covered_auc(y, oof[name])
        choice.seconds[name] = time.perf_counter() - start
        search = getattr(model, "search_", None)
        choice.fixed_seconds += search["fixed_seconds"] if search else choice.seconds[name]
        if search:
            trials, members = search["trials"], search["members"]
            choice.notes[name] = (f"{trials} trials, {members} settings in the ensemble / "
                                  f"{trials} 次试验，集成 {members} 组参数")
    if len(oof) >= 2:
        blend = Blend.best(y, oof)
        choice.inner_auc[BLEND] = covered_auc(y, blend.mix(oof))
        choice.outer[BLEND] = blend.mix(choice.outer)
        choice.notes[BLEND] = f"weights 权重 {blend}"
    single = max((n for n in oof), key=lambda n: choice.inner_auc[n])
    better = choice.inner_auc.get(BLEND, -np.inf) > choice.inner_auc[single]
    choice.chosen = BLEND if better else single
    return choice
