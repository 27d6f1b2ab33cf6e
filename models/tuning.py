"""LightGBM tuned by Optuna inside the training rows, refitted on all of them, calibrated by cross-fitting.

The search (TPE, seeded) tries leaves, depth, minimum child size, learning rate, L2 regularisation and the
row and feature fractions; the rounds come from early stopping on the mean AUC of the inner folds. The
first trial is the untuned :class:`LGBMPD`'s setting, so the search never ends below it. The chosen setting
is refitted once on every row with the chosen rounds, and calibrated (``logit PD = a * margin + b``) on the
inner folds' out-of-fold margins, which are kept as ``oof_decision_`` for a caller choosing between models
on the same :func:`inner_splits`.

LightGBM refuses some characters in feature names (``: , [ ] { } "``): it sees ``f0, f1, ...`` and the
model keeps the table's own names for prediction and contributions.

Reproducible for a seed while the search runs all its ``trials``; when ``seconds`` stops it first, how
many trials ran depends on the machine (``search_`` says how many).
"""
from __future__ import annotations

import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from creditgrade.models.estimator import Estimator
from creditgrade.models.families import family
from creditgrade.models.lgbm import LGBMPD

HOLDOUT_ABOVE = 50_000  # rows: above this, the first inner fold alone validates (a third of many rows)
ONE_THREAD_BELOW = 20_000  # rows: below this, a second thread costs more than it saves


def inner_splits(y, seed: int, folds: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified inner folds of the training rows; only the first when there are many rows."""
    y = np.asarray(y)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return splits[:1] if len(y) > HOLDOUT_ABOVE else splits


def covered_auc(y, decision) -> float:
    """AUC over the rows that have an out-of-fold value."""
    seen = ~np.isnan(decision)
    return float(roc_auc_score(np.asarray(y)[seen], decision[seen]))


def _space(trial) -> dict:
    return dict(
        num_leaves=trial.suggest_int("num_leaves", 4, 128, log=True),
        max_depth=trial.suggest_int("max_depth", 2, 12),
        min_child_samples=trial.suggest_int("min_child_samples", 5, 300, log=True),
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 50.0, log=True),
        feature_fraction=trial.suggest_float("feature_fraction", 0.4, 1.0),
        bagging_fraction=trial.suggest_float("bagging_fraction", 0.5, 1.0),
    )


def _untuned() -> dict:
    """LGBMPD's defaults in the search's terms (its middle tree size)."""
    base = LGBMPD()
    return dict(num_leaves=16, max_depth=12, min_child_samples=base.min_child_samples,
                learning_rate=base.learning_rate, reg_lambda=base.reg_lambda,
                feature_fraction=base.feature_fraction, bagging_fraction=0.8)


class TunedLGBMPD(LGBMPD):
    """LightGBM PD model whose setting and size are chosen by an Optuna search on inner folds.

    ``monotone`` maps feature -> -1/0/1; ``trials`` and ``seconds`` bound the search (whichever comes
    first; at least one trial runs); ``inner_folds`` as :func:`inner_splits`.
    """

    def __init__(self, monotone=None, trials=30, seconds=120.0, inner_folds=3, max_rounds=2000,
                 early_stopping=50, monotone_method="intermediate", seed=0, num_threads=2):
        self.monotone = monotone
        self.trials = trials
        self.seconds = seconds
        self.inner_folds = inner_folds
        self.max_rounds = max_rounds
        self.early_stopping = early_stopping
        self.monotone_method = monotone_method
        self.seed = seed
        self.num_threads = num_threads

    def _full_params(self, setting: dict, columns: list[str], rows: int) -> dict:
        mono = self.monotone or {}
        return dict(setting, objective="binary", metric="auc", bagging_freq=1,
                    monotone_constraints=[int(mono.get(c, 0)) for c in columns],
                    monotone_constraints_method=self.monotone_method, seed=self.seed, deterministic=True,
                    force_row_wise=True, num_threads=1 if rows < ONE_THREAD_BELOW else self.num_threads,
                    verbosity=-1, max_bin=255)

    def fit(self, X: pd.DataFrame, y, X_val=None, y_val=None):
        import optuna

        if X_val is not None:
            raise ValueError("TunedLGBMPD validates on its own inner folds: give no X_val")
        y = np.asarray(y).astype(int)
        columns = list(X.columns)
        inner = X.set_axis([f"f{i}" for i in range(len(columns))], axis=1)
        data = lgb.Dataset(inner, y, params={"feature_pre_filter": False, "max_bin": 255}, free_raw_data=False)
        splits = inner_splits(y, self.seed, self.inner_folds)
        best = {"auc": -np.inf}

        def objective(trial):
            setting = _space(trial)
            result = lgb.cv(self._full_params(setting, columns, len(y)), data, num_boost_round=self.max_rounds,
                            folds=splits, return_cvbooster=True,
                            callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)])
            rounds = len(result["valid auc-mean"])
            oof = np.full(len(y), np.nan)
            for booster, (_, valid) in zip(result["cvbooster"].boosters, splits):
                oof[valid] = booster.predict(inner.iloc[valid], raw_score=True, num_iteration=rounds)
            score = covered_auc(y, oof)
            if score > best["auc"]:
                best.update(auc=score, setting=setting, rounds=rounds, oof=oof)
            return score

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.seed))
        study.enqueue_trial(_untuned())
        start = time.perf_counter()
        study.optimize(objective, n_trials=1)
        left = self.seconds - (time.perf_counter() - start)
        if self.trials > 1 and left > 0:
            study.optimize(objective, n_trials=self.trials - 1, timeout=left)
        self.booster_ = lgb.train(self._full_params(best["setting"], columns, len(y)), data, num_boost_round=best["rounds"])
        self.booster_.free_dataset()
        seen = ~np.isnan(best["oof"])
        platt = LogisticRegression(C=1e6).fit(best["oof"][seen].reshape(-1, 1), y[seen])
        a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        self.calibration_ = (a, b)
        self.oof_decision_ = a * best["oof"] + b
        self.search_ = {"trials": len(study.trials), "seconds": round(time.perf_counter() - start, 1),
                        "inner_auc": best["auc"], "rounds": best["rounds"], **best["setting"]}
        self.size_trials_ = [dict(self.search_, leaves=best["setting"]["num_leaves"], trees=best["rounds"])]
        self.feature_names_in_ = np.array(columns, dtype=object)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(columns)
        return self

    def plain(self) -> LGBMPD:
        """The fitted model as a plain :class:`LGBMPD` (the search is how it was fitted, not a format)."""
        s = self.search_
        model = LGBMPD(monotone=self.monotone, leaves_grid=(s["num_leaves"],), learning_rate=s["learning_rate"],
                       max_rounds=s["rounds"], min_child_samples=s["min_child_samples"], reg_lambda=s["reg_lambda"],
                       feature_fraction=s["feature_fraction"], monotone_method=self.monotone_method, seed=self.seed,
                       num_threads=self.num_threads)
        for name in ("booster_", "calibration_", "size_trials_", "feature_names_in_", "classes_", "n_features_in_"):
            setattr(model, name, getattr(self, name))
        return model

    def to_json(self) -> str:
        """An :class:`LGBMPD` document: it loads with the ``lightgbm`` family's ``from_json``."""
        return self.plain().to_json()

    @classmethod
    def from_json(cls, text: str) -> LGBMPD:
        return LGBMPD.from_json(text)


SEARCHED = {"lightgbm": TunedLGBMPD}
"""Families with a search: the class that fits them by searching (``seconds`` bounds it)."""


def candidate(name: str, specs: list, scale, seed: int = 0, seconds: float = 60.0, trials: int | None = None
              ) -> Estimator:
    """The family ``name`` configured for these features, searched within ``seconds`` (and ``trials``, if
    given) where it has a search."""
    if name in SEARCHED:
        est = SEARCHED[name].configured(specs, scale, seed).set_params(seconds=seconds)
        return est if trials is None else est.set_params(trials=trials)
    return family(name).configured(specs, scale, seed)
