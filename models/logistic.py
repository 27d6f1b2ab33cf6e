"""Regularised logistic regression as a PD model: the linear family, for risks a straight line in each
feature carries (where a scorecard's steps and a booster's splits only approximate it).

Each numeric feature is clipped to Tukey's fences of its training values, ``fence`` interquartile ranges
beyond the quartiles (a few extreme values cannot take the slope; a feature of one common value, with no
interquartile range, is not clipped), its missing values filled with the clipped median and flagged by an
indicator of their own (special codes the caller masks as missing get that indicator too), and
standardised; each categorical feature is one indicator per frequent training category (at most
``MAX_CATEGORIES``, fewer when many categorical features share ``MAX_INDICATORS``), one for the others (rare,
or unseen in training), one for missing. The L2 strength is the one of least cross-validated log
loss (folds of ``groups`` when given: a subject's rows on one side). A feature whose declared risk
direction (``monotone``) its slope contradicts loses the slope (its missing indicator stays) and the rest is
refitted at the chosen strength.

The fitted model is plain arrays. A feature's contribution is ``sum coef * (z - mean z over the training
rows)`` of its columns, ``bias`` the intercept plus ``sum coef * mean z``: a row's contributions add up to
its log-odds exactly, and a contribution is 0 for a value at the training mean.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.utils.validation import check_is_fitted

from creditgrade.models.estimator import Additive, Estimator, Table, Walk, codes, is_numeric
from creditgrade.models.folds import stratified_folds

FORMAT = "creditgrade.logistic/1"
CV_FOLDS = 3  # for the L2 strength: the candidates' own inner folds judge the family as a whole
GRID = 9  # what-if's steps along a slope: the training deciles (a linear model changes everywhere)
MAX_CATEGORIES = 30  # indicators per categorical feature, the most frequent first (a dense design must fit)
MAX_INDICATORS = 600  # of all categorical features together: fewer per feature when there are many
MIN_CATEGORY_ROWS = 10  # fewer rows cannot estimate a category's own coefficient: it joins "other"


def _numeric_term(name: str, x: np.ndarray, fence: float) -> dict:
    seen = x[np.isfinite(x)]
    if not len(seen):
        return {"feature": name, "type": "numeric", "lo": 0.0, "hi": 0.0, "fill": 0.0, "mean": 0.0, "scale": 0.0,
                "missing": False, "grid": []}
    q1, q3 = np.quantile(seen, [0.25, 0.75])
    with np.errstate(over="ignore"):  # fences beyond float64 (values near 1e308) fall back on the extremes
        lo, hi = (float(q1 - fence * (q3 - q1)), float(q3 + fence * (q3 - q1))) if q3 > q1 else (seen.min(), seen.max())
    lo, hi = max(lo, float(seen.min())), min(hi, float(seen.max()))
    clipped = np.clip(seen, lo, hi)
    fill = float(np.median(clipped))
    filled = np.where(np.isnan(x), fill, np.clip(x, lo, hi))
    grid = np.unique(np.quantile(clipped, np.linspace(0, 1, GRID + 2)[1:-1])).tolist()
    span = float(np.abs(filled).max()) or 1.0  # moments of values near float64's limit would overflow
    return {"feature": name, "type": "numeric", "lo": lo, "hi": hi, "fill": fill,
            "mean": span * float((filled / span).mean()), "scale": span * float((filled / span).std()),
            "missing": bool(np.isnan(x).any()), "grid": grid}


def _nominal_term(name: str, series: pd.Series, most: int) -> dict:
    counts = series.dropna().astype(str).value_counts()
    kept = counts[counts >= MIN_CATEGORY_ROWS].index[:most]
    return {"feature": name, "type": "nominal", "categories": sorted(kept.tolist()),
            "other": len(kept) < len(counts), "missing": bool(series.isna().any())}


def _design(term: dict, series: pd.Series) -> np.ndarray:
    """The columns one term gives a feature's values: (value, missing) or one indicator per category
    (then missing); a flat value column where the feature has no spread."""
    if term["type"] == "numeric":
        x = codes(series)[0]
        z = np.where(np.isnan(x), term["fill"], np.clip(x, term["lo"], term["hi"])) - term["mean"]
        z = z / term["scale"] if term["scale"] > 0 else np.zeros_like(z)
        columns = [z]
    else:
        text = series.astype(object).where(series.notna(), None).map(lambda v: None if v is None else str(v))
        columns = [(text == c).to_numpy(dtype=float) for c in term["categories"]]
        if term.get("other"):  # a rare category, or one never met in training
            columns.append((series.notna() & ~text.isin(term["categories"])).to_numpy(dtype=float))
    if term["missing"]:
        columns.append(series.isna().to_numpy(dtype=float))
    return np.column_stack(columns) if columns else np.empty((len(series), 0))


class LogisticPD(Additive, ClassifierMixin, BaseEstimator, Estimator):
    """Regularised logistic regression PD model (the ``logistic`` family of
    :class:`~creditgrade.models.estimator.Estimator`); see the module docstring.

    ``monotone`` maps feature -> -1/0/1 (1: a higher value raises the PD); ``fence`` the interquartile ranges
    beyond the quartiles each numeric feature is clipped at; ``Cs`` the inverse L2 strengths tried; ``seed``
    the folds' seed.
    """

    family = "logistic"
    unit = "log-odds"
    document = FORMAT

    def __init__(self, monotone=None, fence=3.0, Cs=(0.001, 0.01, 0.1, 1.0, 10.0), seed=0):
        self.monotone = monotone
        self.fence = fence
        self.Cs = Cs
        self.seed = seed

    @classmethod
    def configured(cls, specs: list, scale=None, seed: int = 0) -> "LogisticPD":
        """Slopes signed by the features' declared risk directions (the scale plays no part)."""
        return cls(monotone={s.name: s.monotone for s in specs}, seed=seed)

    def _splits(self, y: np.ndarray, groups) -> list:
        folds = int(min(CV_FOLDS, np.bincount(y, minlength=2).min()))
        if folds < 2:
            return []
        if groups is not None and len(set(groups)) >= folds:
            splits = list(stratified_folds(folds, self.seed, groups).split(y, y, groups))
            if all(len(set(y[part])) == 2 for split in splits for part in split):
                return splits
        return list(stratified_folds(folds, self.seed).split(y, y))

    def fit(self, X: pd.DataFrame, y, X_val: pd.DataFrame | None = None, y_val=None, groups=None):
        """Fit on ``X, y`` and the held-out ``X_val, y_val`` too (the family has no use for held-out rows)."""
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X, columns=[f"x{i}" for i in range(np.shape(X)[1])])
        y = np.asarray(y).astype(int)
        if X_val is not None:  # later rows: their subjects' groups are not given, so the folds ignore groups
            X, y, groups = pd.concat([X, X_val[X.columns]]), np.r_[y, np.asarray(y_val).astype(int)], None
        nominal = [c for c in X.columns if not is_numeric(X[c])]
        most = max(1, min(MAX_CATEGORIES, MAX_INDICATORS // max(len(nominal), 1)))
        self.terms_ = [_nominal_term(c, X[c], most) if c in nominal else _numeric_term(c, codes(X[c])[0], self.fence)
                       for c in X.columns]
        design = [_design(t, X[t["feature"]]) for t in self.terms_]
        Z = np.hstack(design)
        width = np.cumsum([0, *(d.shape[1] for d in design)])
        splits = self._splits(y, groups)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            self.C_ = self._strength(Z, y, splits)
            kept = np.ones(Z.shape[1], dtype=bool)
            while True:
                model = LogisticRegression(C=self.C_, max_iter=2000).fit(Z[:, kept], y)
                coef = np.zeros(Z.shape[1])
                coef[kept] = model.coef_[0]
                wrong = [width[j] for j, t in enumerate(self.terms_) if self._contradicts(t, coef[width[j]])]
                if not wrong:
                    break
                kept[wrong] = False
        means = Z.mean(axis=0)
        for j, term in enumerate(self.terms_):
            term["coef"] = coef[width[j]:width[j + 1]].tolist()
            term["means"] = means[width[j]:width[j + 1]].tolist()
        self.intercept_ = float(model.intercept_[0])
        self._fitted_names(list(X.columns))
        return self

    def _strength(self, Z: np.ndarray, y: np.ndarray, splits: list) -> float:
        """The C of ``Cs`` with the least log loss summed over ``splits`` (the largest without splits).
        A plain loop: scikit-learn's grid search spends 3x the fits' own time on cloning and scoring."""
        if not splits:
            return float(max(self.Cs))
        loss = np.zeros(len(self.Cs))
        for train, valid in splits:
            for i, C in enumerate(self.Cs):
                fitted = LogisticRegression(C=C, max_iter=2000).fit(Z[train], y[train])
                loss[i] += log_loss(y[valid], fitted.predict_proba(Z[valid])[:, 1], labels=[0, 1])
        return float(self.Cs[int(np.argmin(loss))])

    def _contradicts(self, term: dict, slope: float) -> bool:
        direction = (self.monotone or {}).get(term["feature"], 0)
        return term["type"] == "numeric" and bool(direction) and slope * direction < 0

    @property
    def used_features_(self) -> list[str]:
        """Features with a nonzero coefficient."""
        check_is_fitted(self, "terms_")
        return [t["feature"] for t in self.terms_ if any(c != 0.0 for c in t["coef"])]

    def walk(self, X: pd.DataFrame, table: Table | None = None) -> Walk:
        """Each feature's ``coef * (z - mean z)`` summed over its columns, and ``bias``; the PD is the
        logistic of the row sum (``X``, or a frame made of ``table`` when ``X`` is None)."""
        X = self._frame(X, table)
        out = np.empty((len(X), len(self.terms_) + 1))
        bias = self.intercept_
        for j, t in enumerate(self.terms_):
            coef, means = np.asarray(t["coef"]), np.asarray(t["means"])
            out[:, j] = (_design(t, X[t["feature"]]) - means) @ coef if len(coef) else 0.0
            bias += float(coef @ means) if len(coef) else 0.0
        out[:, -1] = bias
        return Walk(out, 1.0 / (1.0 + np.exp(-out.sum(axis=1))), None)

    def boundaries(self) -> dict[str, list[tuple[float, bool]]]:
        """Per numeric feature with a slope, its training deciles: a linear model's output changes all along
        the clipped range, so what-if steps through it (beyond the clip bounds nothing changes)."""
        check_is_fitted(self, "terms_")
        return {t["feature"]: [(g, True) for g in t["grid"]] for t in self.terms_
                if t["type"] == "numeric" and t["coef"] and t["coef"][0] != 0.0}

    def describe(self) -> dict:
        mono = self.monotone or {}
        slopes = sum(c != 0.0 for t in self.terms_ for c in t["coef"])
        return {"size": {"coefficients": slopes, "features": len(self.used_features_)},
                "summary": f"{slopes} coefficients on {len(self.used_features_)} features (L2, C={self.C_:g})",
                "monotone": {f: {1: "increasing (slope sign fixed)", -1: "decreasing (slope sign fixed)"}.get(
                    int(mono.get(f, 0)), "free") for f in self.feature_names_in_},
                "contributions": "log-odds (coefficient x (standardised value - its training mean); exact, additive)",
                "details": {"C": self.C_, "intercept": self.intercept_,
                            "slopes": {t["feature"]: t["coef"][0] / t["scale"] for t in self.terms_
                                       if t["type"] == "numeric" and t["coef"] and t["scale"] > 0}}}

    def _extra(self) -> dict:
        return {"C": self.C_}

    def _restore(self, doc: dict) -> None:
        self.C_ = float(doc["C"])
