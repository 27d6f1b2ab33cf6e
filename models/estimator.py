"""What a model family must offer to be graded, explained, reviewed and registered: :class:`Estimator`.

A family is one class implementing this ABC (``models.lgbm.LGBMPD``, ``models.scorecard.Scorecard``, ...),
listed by name in ``models.families``. Nothing outside ``models/`` asks which family it holds:
``GradeModel``, explanations, what-if, training, the review pack and serving all go through these methods.

* ``family``: the family's name in ``models.families`` (what ``creditgrade train --kind`` takes).
* ``unit``: the unit of :meth:`Estimator.contributions`, one of :data:`UNITS`:
  ``"log-odds"``: each feature's share of the log-odds of default, ``bias`` the expected log-odds; a row
  sums to logit(PD), and the PD is the logistic of that sum. A positive value raises risk.
  ``"points"``: each feature's points relative to the best points it could have scored (``<= 0``, the
  points lost), ``bias`` the best possible score; a row sums to the family's :meth:`Estimator.own_score`.
  A negative value raises risk. :data:`RISK_SIGN` turns either into "higher raises risk".
* :meth:`Estimator.walk` gives contributions, PD and own score from ONE pass over the model (one tree walk,
  one binning); everything else may be built from it. :meth:`Estimator.log_odds_walk` gives the same pass
  in log-odds whatever the unit (a family in points overrides it).
* Features: ``feature_names_in_`` the columns it was fitted on, in order (contribution columns follow it);
  ``used_features_`` those that can contribute (split on, kept by the card); a feature not used
  contributes 0.
* :meth:`Estimator.to_json` / :meth:`Estimator.from_json`: the fitted model in the family's own format,
  loaded without unpickling anything (a registered version must survive renamed modules).
* Families are scikit-learn estimators as well: ``get_params()`` gives the parameters a run logs.

Input ``X``: a DataFrame holding at least ``feature_names_in_`` (extra columns are ignored), categorical
features as pandas categoricals. ``table``: the same columns already read as :func:`read_table` gives them;
given a table, :meth:`Estimator.walk` reads it instead of ``X``, which may then be None (one subject's serving
path builds the table directly, never a frame).
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple, Self

import numpy as np
import pandas as pd

UNITS = ("log-odds", "points")
RISK_SIGN = {"log-odds": 1.0, "points": -1.0}
"""Multiply a contribution by its unit's sign: higher means riskier."""

Table = tuple[np.ndarray, list]
"""Float matrix of features (categorical ones as codes into their labels, missing as NaN) and, per
column, its category labels or None."""


class Walk(NamedTuple):
    """One pass over a model: ``contributions`` (rows x (features + bias), in the family's unit, last column
    the bias), ``pd`` per row, and ``score``: the family's own score per row, or None if it has none."""

    contributions: np.ndarray
    pd: np.ndarray
    score: np.ndarray | None


class Estimator(ABC):
    """A fitted (or to-be-fitted) PD model of one family; see the module docstring for the contract."""

    family: ClassVar[str]
    unit: ClassVar[str]
    dated: ClassVar[bool] = False  # fit also takes ``dates``: each row's as-of date (of X, then of X_val)
    feature_names_in_: np.ndarray

    @classmethod
    @abstractmethod
    def configured(cls, specs: list, scale, seed: int = 0) -> Self:
        """A fresh estimator for these features (``features.catalog.FeatureSpec``: risk directions,
        categories) and grade scale (``models.grades.Scale``: points scaling), seeded with ``seed``."""

    @abstractmethod
    def fit(self, X: pd.DataFrame, y, X_val: pd.DataFrame | None = None, y_val=None, groups=None) -> Self:
        """Fit on ``X, y``; ``X_val, y_val`` are later held-out rows the family uses for early stopping and
        calibration, or learns from as well if it has no use for held-out rows. Without them, a family that
        holds out rows of its own keeps each of ``groups`` (a label per row of ``X``: one subject's rows at
        several dates) on one side (:func:`~creditgrade.models.folds.holdout`)."""

    @abstractmethod
    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        """PD per row, shape (n,)."""

    def own_score(self, X: pd.DataFrame) -> np.ndarray | None:
        """The family's own score per row (a scorecard's total points), or None: the scale scores the PD."""
        return None

    @abstractmethod
    def walk(self, X: pd.DataFrame, table: Table | None = None) -> Walk:
        """Contributions, PD and own score from one pass (see :class:`Walk`), reading ``table`` if given
        (``X`` may then be None)."""

    def log_odds_walk(self, X: pd.DataFrame, table: Table | None = None) -> Walk:
        """:meth:`walk` with contributions in log-odds whatever the family's unit: each row sums to logit(PD)
        (how a blend adds up its members, ``models.blend``). A family in points overrides it."""
        if self.unit != "log-odds":
            raise TypeError(f"{type(self).__name__} reports contributions in {self.unit}: a family in points "
                            f"must override log_odds_walk to be blended")
        return self.walk(X, table)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Contributions per feature plus ``bias`` (in ``unit``), one row per row of ``X``; each row sums to
        the margin (logit(PD), or the score)."""
        return pd.DataFrame(self.walk(X).contributions, index=X.index,
                            columns=[*self.feature_names_in_, "bias"])

    @property
    @abstractmethod
    def used_features_(self) -> list[str]:
        """The features that can contribute, in ``feature_names_in_`` order."""

    @abstractmethod
    def boundaries(self) -> dict[str, list[tuple[float, bool]]]:
        """Per numeric feature, the values where the model's output may change: ``(value, strict)``, where
        below means ``x < value`` if strict, ``x <= value`` otherwise (split thresholds, bin edges)."""

    def boundaries_of(self, X: pd.DataFrame) -> dict[str, list[tuple[float, bool]]]:
        """:meth:`boundaries` for the one subject of ``X``, where they differ between subjects (a family's
        own boundaries are everyone's)."""
        return self.boundaries()

    @abstractmethod
    def describe(self) -> dict:
        """For the model card and the run's parameters: ``size`` (a dict of numbers, e.g. trees and
        leaves), ``summary`` (the size in one English line), ``monotone`` (feature -> how its effect is
        constrained, as text), ``contributions`` (what a contribution measures, in English), and any
        family details (e.g. the tree sizes tried) under ``details``."""

    @abstractmethod
    def to_json(self) -> str:
        """The fitted model as one JSON document in the family's own format (no pickle)."""

    @classmethod
    @abstractmethod
    def from_json(cls, text: str) -> Self:
        """The model :meth:`to_json` wrote, ready to predict."""


class Additive:
    """For a family whose :meth:`Estimator.walk` sums log-odds terms in one pass (the EBM, the logistic
    regression): scikit-learn's classifier methods from that walk, the fitted names of its features, and its
    JSON (``document`` names the format; ``terms_`` and ``intercept_`` are the model, plus what
    :meth:`_extra` adds and :meth:`_restore` reads back)."""

    document: ClassVar[str]

    def to_json(self) -> str:
        from sklearn.utils.validation import check_is_fitted  # here: ingest and serving import this module, 68 MB

        check_is_fitted(self, "terms_")
        return json.dumps({"format": self.document, "params": self.get_params(), "intercept": self.intercept_,
                           "terms": self.terms_, **self._extra()})

    @classmethod
    def from_json(cls, text: str):
        doc = json.loads(text)
        if doc.get("format") != cls.document:
            raise ValueError(f"not a {cls.document} document")
        model = cls(**doc["params"])
        model.terms_, model.intercept_ = doc["terms"], float(doc["intercept"])
        model._restore(doc)
        model._fitted_names([t["feature"] for t in model.terms_])
        return model

    def _extra(self) -> dict:
        return {}

    def _restore(self, doc: dict) -> None:
        """Read back what :meth:`_extra` wrote."""

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of default: the row sums of the contributions."""
        return self.walk(X).contributions.sum(axis=1)

    def predict_pd(self, X) -> np.ndarray:
        return self.walk(X).pd

    def predict_proba(self, X) -> np.ndarray:
        p = self.predict_pd(X)
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_pd(X) >= 0.5).astype(int)

    def _fitted_names(self, names: list[str]) -> None:
        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_features_in_ = len(names)
        self.classes_ = np.array([0, 1])

    def _frame(self, X, table: Table | None = None) -> pd.DataFrame:
        """The rows a walk reads, by feature name: ``X`` (a frame, or an array in the fitted order), or a
        frame made of ``table`` when ``X`` is None."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "terms_")
        if X is None:
            return pd.DataFrame(table_columns(table, list(self.feature_names_in_)))
        return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=list(self.feature_names_in_))


def is_numeric(col: pd.Series) -> bool:
    """Whether a column is read as numbers (booleans too) rather than as categories."""
    return pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def codes(col: pd.Series) -> tuple[np.ndarray, list | None]:
    """A column as floats (categorical as codes, missing as NaN) and its category labels or None."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        out = col.cat.codes.to_numpy(dtype=float)
        out[out < 0] = np.nan
        return out, col.cat.categories.tolist()
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan), None


def read_table(X: pd.DataFrame, names: list[str]) -> Table:
    """Columns ``names`` of ``X`` as a :data:`Table` (the numeric ones read in one block)."""
    dtypes = dict(zip(X.columns, X.dtypes))
    where = {n: j for j, n in enumerate(names)}
    categorical = [n for n in names if isinstance(dtypes[n], pd.CategoricalDtype)]
    numeric = [n for n in names if not isinstance(dtypes[n], pd.CategoricalDtype)]
    out = np.empty((len(X), len(names)))
    out[:, [where[n] for n in numeric]] = X[numeric].to_numpy(dtype=float, na_value=np.nan)
    labels: list = [None] * len(names)
    for n in categorical:
        out[:, where[n]], labels[where[n]] = codes(X[n])
    return out, labels


def table_columns(table: Table, names: list[str]) -> dict:
    """A :data:`Table` over ``names`` as columns by name: numbers as floats (NaN missing), categorical ones as
    object arrays of their labels (None missing)."""
    values, labels = table
    out = {}
    for j, (name, lab) in enumerate(zip(names, labels)):
        col = values[:, j]
        if lab is None:
            out[name] = col
        else:
            out[name] = np.array([*lab, None], dtype=object)[np.where(np.isnan(col), -1, col).astype(np.intp)]
    return out
