"""LightGBM PD model: monotone constraints, size chosen by validation, Platt-calibrated on held-out data.

Calibration is a logistic map of the booster's raw margin, ``logit(PD) = a * margin + b``, so the
TreeSHAP contributions of the margin, scaled by ``a`` (bias plus ``b``), still add up exactly to the
calibrated log-odds (see :meth:`LGBMPD.contributions`).
"""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split


class LGBMPD(ClassifierMixin, BaseEstimator):
    """Gradient-boosted PD model.

    Parameters: ``monotone`` maps feature name -> -1/0/1 (1 = higher value, higher PD);
    ``leaves_grid`` the tree sizes tried; the smallest model (trees x leaves) whose validation AUC is
    within ``auc_tolerance`` of the best is kept. ``fit`` takes an explicit validation set (out of
    time, preferably) or holds out ``validation_share`` of the rows, stratified.
    """

    def __init__(self, monotone=None, leaves_grid=(4, 8, 16, 32), learning_rate=0.05, max_rounds=600,
                 early_stopping=50, min_child_samples=40, reg_lambda=1.0, feature_fraction=0.8,
                 auc_tolerance=0.002, validation_share=0.25, monotone_method="intermediate", seed=0,
                 num_threads=2):
        self.monotone = monotone
        self.leaves_grid = leaves_grid
        self.learning_rate = learning_rate
        self.max_rounds = max_rounds
        self.early_stopping = early_stopping
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.feature_fraction = feature_fraction
        self.auc_tolerance = auc_tolerance
        self.validation_share = validation_share
        self.monotone_method = monotone_method
        self.seed = seed
        self.num_threads = num_threads

    def _params(self, leaves: int, columns: list[str]) -> dict:
        mono = self.monotone or {}
        return dict(
            objective="binary", metric="auc", learning_rate=self.learning_rate, num_leaves=leaves,
            min_child_samples=self.min_child_samples, reg_lambda=self.reg_lambda,
            feature_fraction=self.feature_fraction, bagging_fraction=0.8, bagging_freq=1,
            monotone_constraints=[int(mono.get(c, 0)) for c in columns],
            monotone_constraints_method=self.monotone_method, seed=self.seed, deterministic=True,
            force_row_wise=True, num_threads=self.num_threads, verbosity=-1, max_bin=255)

    def fit(self, X: pd.DataFrame, y, X_val: pd.DataFrame | None = None, y_val=None):
        if self.monotone_method == "advanced":
            raise ValueError("monotone_method 'advanced' can break constraints; use 'basic' or 'intermediate'")
        y = np.asarray(y).astype(int)
        if X_val is None:
            X, X_val, y, y_val = train_test_split(X, y, test_size=self.validation_share, stratify=y,
                                                  random_state=self.seed)
        y_val = np.asarray(y_val).astype(int)
        self.feature_names_in_ = np.array(list(X.columns), dtype=object)
        columns = list(X.columns)
        trials = []
        for leaves in self.leaves_grid:
            train = lgb.Dataset(X, y, free_raw_data=False)
            valid = lgb.Dataset(X_val, y_val, reference=train)
            booster = lgb.train(self._params(leaves, columns), train, num_boost_round=self.max_rounds,
                                valid_sets=[valid], callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)])
            booster.free_dataset()
            margin = booster.predict(X_val, raw_score=True, num_iteration=booster.best_iteration)
            trials.append(dict(leaves=leaves, trees=booster.best_iteration, auc=roc_auc_score(y_val, margin),
                               booster=booster))
        best = max(t["auc"] for t in trials)
        chosen = min((t for t in trials if t["auc"] >= best - self.auc_tolerance),
                     key=lambda t: (t["trees"] * t["leaves"], t["leaves"]))
        self.size_trials_ = [{k: v for k, v in t.items() if k != "booster"} for t in trials]
        booster = chosen["booster"]
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=chosen["trees"]))
        margin = self.booster_.predict(X_val, raw_score=True)
        platt = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), y_val)
        self.calibration_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(columns)
        return self

    def _frame(self, X) -> pd.DataFrame:
        return X[list(self.feature_names_in_)] if isinstance(X, pd.DataFrame) else X

    def _threads(self, X) -> int:
        """One thread for small inputs: starting threads costs more than a few rows' trees."""
        return 1 if len(X) < 2000 else self.num_threads

    def decision_function(self, X) -> np.ndarray:
        """Calibrated log-odds of default."""
        a, b = self.calibration_
        return a * self.booster_.predict(self._frame(X), raw_score=True, num_threads=self._threads(X)) + b

    def predict_proba(self, X) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def contributions(self, X, num_threads: int | None = None) -> pd.DataFrame:
        """Per-feature log-odds contributions (TreeSHAP) plus `bias`; each row sums to the log-odds."""
        a, b = self.calibration_
        raw = self.booster_.predict(self._frame(X), pred_contrib=True,
                                    num_threads=num_threads or self._threads(X))
        out = pd.DataFrame(raw * a, columns=[*self.feature_names_in_, "bias"],
                           index=X.index if isinstance(X, pd.DataFrame) else None)
        out["bias"] += b
        return out

    @property
    def size(self) -> dict:
        """Trees and leaves of the fitted model (what an exact explanation costs)."""
        dump = self.booster_.dump_model()
        leaves = sum(t["num_leaves"] for t in dump["tree_info"])
        return {"trees": self.booster_.num_trees(), "leaves": leaves}
