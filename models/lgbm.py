"""LightGBM PD model: monotone constraints, size chosen by validation, Platt-calibrated on held-out data.

Calibration is a logistic map of the booster's raw margin, ``logit(PD) = a * margin + b``, so the
TreeSHAP contributions of the margin, scaled by ``a`` (bias plus ``b``), still add up exactly to the
calibrated log-odds (see :meth:`LGBMPD.walk`).
"""
from __future__ import annotations

import ctypes
import json
import threading
import weakref

import lightgbm as lgb
from lightgbm.basic import _LIB, _safe_call  # the single-row C API (no public Python wrapper)
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from creditgrade.models.estimator import Estimator, Table, Walk, read_table
from creditgrade.models.folds import holdout

ONE_THREAD_BELOW = 20_000  # rows: below this, a second thread costs more than it saves (and spins when shared)

FORMAT = "creditgrade.lgbm/1"


class LGBMPD(ClassifierMixin, BaseEstimator, Estimator):
    """Gradient-boosted PD model (the ``lightgbm`` family of :class:`~creditgrade.models.estimator.Estimator`).

    Parameters: ``monotone`` maps feature name -> -1/0/1 (1 = higher value, higher PD);
    ``leaves_grid`` the tree sizes tried; the smallest model (trees x leaves) whose validation AUC is
    within ``auc_tolerance`` of the best is kept. ``fit`` takes an explicit validation set (out of
    time, preferably) or holds out ``validation_share`` of the rows, stratified (of the ``groups``, if
    given: a subject's rows at several dates on one side).
    """

    family = "lightgbm"
    unit = "log-odds"

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

    @classmethod
    def configured(cls, specs: list, scale=None, seed: int = 0) -> LGBMPD:
        """Monotone constraints from the features' declared risk directions (the scale plays no part)."""
        return cls(monotone={s.name: s.monotone for s in specs}, seed=seed)

    def _params(self, leaves: int, columns: list[str], rows: int) -> dict:
        mono = self.monotone or {}
        return dict(
            objective="binary", metric="auc", learning_rate=self.learning_rate, num_leaves=leaves,
            min_child_samples=self.min_child_samples, reg_lambda=self.reg_lambda,
            feature_fraction=self.feature_fraction, bagging_fraction=0.8, bagging_freq=1,
            monotone_constraints=[int(mono.get(c, 0)) for c in columns],
            monotone_constraints_method=self.monotone_method, seed=self.seed, deterministic=True,
            force_row_wise=True, num_threads=1 if rows < ONE_THREAD_BELOW else self.num_threads, verbosity=-1,
            max_bin=255)

    def _check_monotone_method(self) -> None:
        if self.monotone_method == "advanced":
            raise ValueError("monotone_method 'advanced' can break constraints; use 'basic' or 'intermediate'")

    def fit(self, X: pd.DataFrame, y, X_val: pd.DataFrame | None = None, y_val=None, groups=None):
        self._check_monotone_method()
        y = np.asarray(y).astype(int)
        if X_val is None:
            kept, held = holdout(y, self.validation_share, self.seed, groups)
            X, X_val, y, y_val = X.iloc[kept], X.iloc[held], y[kept], y[held]
        y_val = np.asarray(y_val).astype(int)
        self.feature_names_in_ = np.array(list(X.columns), dtype=object)
        columns = list(X.columns)
        trials = []
        for leaves in self.leaves_grid:
            train = lgb.Dataset(X, y, free_raw_data=False)
            valid = lgb.Dataset(X_val, y_val, reference=train)
            booster = lgb.train(self._params(leaves, columns, len(X)), train, num_boost_round=self.max_rounds,
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

    def predict_pd(self, X) -> np.ndarray:
        return self.predict_proba(X)[:, 1]

    def walk(self, X: pd.DataFrame, table: Table | None = None) -> Walk:
        """Platt-scaled TreeSHAP contributions from one ``pred_contrib`` call; the PD is the logistic of
        their sum (equal to :meth:`predict_pd` up to rounding). Rows go to LightGBM as a float matrix,
        which skips its per-call conversion of a frame (costlier than the trees of one row)."""
        values, labels = read_table(X, list(self.feature_names_in_)) if table is None else table
        a, b = self.calibration_
        coded = self._coded(values, labels)
        if len(coded) == 1:
            out = _one_row_contributions(self.booster_, coded)
        else:
            out = self.booster_.predict(coded, pred_contrib=True, num_threads=self._threads(values))
        out *= a
        out[:, -1] += b
        return Walk(out, 1.0 / (1.0 + np.exp(-out.sum(axis=1))), None)

    def _coded(self, values: np.ndarray, labels: list) -> np.ndarray:
        """A table's matrix as LightGBM reads a frame: each categorical column (in order) coded by the categories
        the booster was trained with (``pandas_categorical``), unknown or missing as NaN."""
        coded = [j for j, lab in enumerate(labels) if lab is not None]
        if not coded:
            return values
        values = values.copy()
        for j, trained in zip(coded, _trained_codes(self.booster_)):
            lookup = np.array([trained.get(label, np.nan) for label in labels[j]], dtype=float)
            col = values[:, j]
            known = ~np.isnan(col)
            col[known] = lookup[col[known].astype(np.intp)]
        return values

    @property
    def used_features_(self) -> list[str]:
        """The features some tree splits on."""
        return [f for f, n in zip(self.feature_names_in_, self.booster_.feature_importance("split")) if n > 0]

    def boundaries(self) -> dict[str, list[tuple[float, bool]]]:
        """Each numeric split's threshold (left branch: value <= threshold)."""
        names = list(self.feature_names_in_)
        return {names[j]: [(t, False) for t in ts] for j, ts in _tree_thresholds(self.booster_).items()}

    @property
    def size(self) -> dict:
        """Trees and leaves of the fitted model (what an exact explanation costs)."""
        dump = self.booster_.dump_model()
        leaves = sum(t["num_leaves"] for t in dump["tree_info"])
        return {"trees": self.booster_.num_trees(), "leaves": leaves}

    def describe(self) -> dict:
        mono = self.monotone or {}
        size = self.size
        return {"size": size, "summary": f"{size['trees']} trees, {size['leaves']} leaves",
                "monotone": {f: str(int(mono.get(f, 0))) for f in self.feature_names_in_},
                "contributions": "log-odds (TreeSHAP)", "details": {"size_trials": self.size_trials_}}

    def to_json(self) -> str:
        """Parameters, the booster's own model string, the Platt calibration and the tree sizes tried."""
        params = self.get_params()
        return json.dumps({"format": FORMAT, "params": {**params, "leaves_grid": list(params["leaves_grid"])},
                           "features": list(self.feature_names_in_), "booster": self.booster_.model_to_string(),
                           "calibration": list(self.calibration_), "size_trials": self.size_trials_})

    @classmethod
    def from_json(cls, text: str) -> LGBMPD:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        model = cls(**{**doc["params"], "leaves_grid": tuple(doc["params"]["leaves_grid"])})
        model.booster_ = lgb.Booster(model_str=doc["booster"])
        model.calibration_ = tuple(doc["calibration"])
        model.size_trials_ = doc["size_trials"]
        model.feature_names_in_ = np.array(doc["features"], dtype=object)
        model.n_features_in_ = len(doc["features"])
        model.classes_ = np.array([0, 1])
        return model

    @classmethod
    def from_booster(cls, booster: lgb.Booster, columns: list[str], calibration: tuple[float, float],
                     monotone: dict[str, int], **params) -> LGBMPD:
        """A fitted model from a booster fitted elsewhere (``training.cluster``: on a Dask cluster) on ``columns``
        with ``monotone``'s constraints, and its Platt ``calibration`` (a, b); ``params`` record how it was
        fitted (this class's parameters). It explains, saves and serves as a model :meth:`fit` made."""
        model = cls(monotone=monotone, **params)
        model._check_monotone_method()
        model.booster_ = booster
        model.calibration_ = (float(calibration[0]), float(calibration[1]))
        model.size_trials_ = []  # one size, fitted as given: none tried
        model.feature_names_in_ = np.array(list(columns), dtype=object)
        model.n_features_in_ = len(columns)
        model.classes_ = np.array([0, 1])
        return model


_BOOSTER_CODES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ONE_ROW = threading.local()  # each serving thread's single-row configs, by booster
PREDICT_CONTRIB, FLOAT64 = 3, 1  # LightGBM's C API: C_API_PREDICT_CONTRIB, C_API_DTYPE_FLOAT64


def _one_row_contributions(booster: lgb.Booster, row: np.ndarray) -> np.ndarray:
    """``booster.predict(row, pred_contrib=True)`` of one row (shape (1, features + 1)) through LightGBM's
    single-row C API, set up once per booster and thread (``LGBM_BoosterPredictForMatSingleRowFastInit``, one
    OpenMP thread; a config a thread, since LightGBM locks a config while it walks): the same values without
    the per-call setup, which costs about a tenth of a one-row TreeSHAP walk."""
    configs = getattr(_ONE_ROW, "configs", None)
    if configs is None:
        configs = _ONE_ROW.configs = weakref.WeakKeyDictionary()
    fast = configs.get(booster)
    if fast is None:
        fast = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(PREDICT_CONTRIB), ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(FLOAT64),
            ctypes.c_int32(row.shape[1]), ctypes.c_char_p(b"num_threads=1"), ctypes.byref(fast)))
        weakref.finalize(booster, _LIB.LGBM_FastConfigFree, fast)
        configs[booster] = fast
    row = np.ascontiguousarray(row, dtype=np.float64)
    out, length = np.empty((1, row.shape[1] + 1)), ctypes.c_int64()
    _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFast(fast, row.ctypes.data_as(ctypes.c_void_p),
                                                           ctypes.byref(length),
                                                           out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
    return out


_THRESHOLDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _trained_codes(booster: lgb.Booster) -> list[dict]:
    """Per categorical column, each trained category's code (cached per booster)."""
    if booster not in _BOOSTER_CODES:
        trained = getattr(booster, "pandas_categorical", None) or []  # None: trained without categories
        _BOOSTER_CODES[booster] = [{c: i for i, c in enumerate(cats)} for cats in trained]
    return _BOOSTER_CODES[booster]


def _tree_thresholds(booster: lgb.Booster) -> dict[int, list[float]]:
    """Numeric split thresholds per feature index, sorted (cached per booster)."""
    if booster not in _THRESHOLDS:
        found: dict[int, set] = {}
        stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                if node["decision_type"] == "<=":
                    found.setdefault(node["split_feature"], set()).add(float(node["threshold"]))
                stack += [node["left_child"], node["right_child"]]
        _THRESHOLDS[booster] = {j: sorted(v) for j, v in found.items()}
    return _THRESHOLDS[booster]
