"""Glass-box booster: InterpretML's Explainable Boosting Machine as a PD model.

The fitted model is kept as plain arrays, one shape function per feature (no interactions by default):
``log-odds = intercept + sum_j score_j(bin_j(x_j))``. Prediction, contributions and JSON use only these
arrays, so each row's contributions plus ``bias`` equal its log-odds exactly and a saved model loads
without InterpretML or pickle. Bins follow InterpretML: index 0 is *missing*, the last is *unseen* (a
category or text never met in training); numeric bins are ``[cut_{i-1}, cut_i)``.

Monotone directions (1 = higher value, higher PD) are imposed after fitting with the library's isotonic
``monotonize`` (its documentation recommends this over constraining the boosting, which lets a correlated
feature take over). EBM minimises log loss on bagged boosting, so its probabilities are used as they
are; ``bench/table_choice.py`` prints the calibration slope and intercept measured out of fold.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

from creditgrade.models.estimator import Additive, Estimator, Table, Walk, is_numeric, table_columns
from creditgrade.models.folds import holdout, inner_splits

FORMAT = "creditgrade.ebm/1"
BAGGED_ROWS = 400_000
BAG_HOLDOUT = 0.15  # of the rows (of the groups, if given) each bag stops early on, as InterpretML's default
ONE_PROCESS_BELOW = 20_000  # rows: below this, starting a second process for the bags costs more than it saves
_MISSING = "missing"
_UNSEEN = "unseen"


def _codes(term: dict, values: pd.Series) -> np.ndarray:
    """Bin index of each value under one term (0 missing, last unseen)."""
    unseen = len(term["scores"]) - 1
    if term["type"] == "continuous":
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        text = values.notna().to_numpy() & np.isnan(x)
        codes = np.searchsorted(np.asarray(term["cuts"], dtype=float), x, side="right") + 1
        return np.where(text, unseen, np.where(np.isnan(x), 0, codes))
    lookup = {c: i + 1 for i, c in enumerate(term["categories"])}
    present = values.notna().to_numpy()
    return np.array([lookup.get(str(v), unseen) if p else 0 for v, p in zip(values.tolist(), present)],
                    dtype=np.intp)


def _table_codes(term: dict, col: np.ndarray, labels: list | None, compiled: tuple) -> np.ndarray:
    """:func:`_codes` of a :data:`Table` column (floats, NaN missing; or codes into ``labels``), without a
    frame where the column is as the term reads it (numbers for a continuous term, labels for a nominal one)."""
    _, cuts, lookup = compiled
    if cuts is not None and labels is None:
        return np.where(np.isnan(col), 0, np.searchsorted(cuts, col, side="right") + 1)
    if lookup is not None and labels is not None:
        unseen = len(term["scores"]) - 1
        by_code = np.array([lookup.get(str(label), unseen) for label in labels] + [0], dtype=np.intp)
        return by_code[np.where(np.isnan(col), -1, col).astype(np.intp)]
    return _codes(term, pd.Series(table_columns((col.reshape(-1, 1), [labels]), ["x"])["x"]))


def _isotonic(scores: np.ndarray, weights: np.ndarray, increasing: bool) -> np.ndarray:
    """One shape function made monotone over its ordered bins as InterpretML's ``monotonize`` makes the
    final model's (isotonic regression weighted by the bins' counts, their weighted mean kept)."""
    inner, w = scores[1:-1], np.asarray(weights)[1:-1]
    fitted = IsotonicRegression(increasing=increasing).fit_transform(np.arange(len(inner)), inner, sample_weight=w)
    return np.r_[scores[0], fitted + np.average(inner, weights=w) - np.average(fitted, weights=w), scores[-1]]


def _bin_labels(term: dict) -> list[str]:
    if term["type"] == "continuous":
        edges = ["-inf", *(f"{c:.6g}" for c in term["cuts"]), "inf"]
        middle = [f"[{lo}, {hi})" for lo, hi in zip(edges[:-1], edges[1:])]
    else:
        middle = list(term["categories"])
    return [_MISSING, *middle, _UNSEEN]


class EBMPD(Additive, ClassifierMixin, BaseEstimator, Estimator):
    """Explainable Boosting Machine PD model (the ``ebm`` family of :class:`~creditgrade.models.estimator.Estimator`).

    ``monotone`` maps feature -> -1/0/1; ``interactions`` is InterpretML's (0: none, so that every reason is
    one feature); ``outer_bags``, ``learning_rate``, ``max_bins``, ``min_samples_leaf`` go to
    ``ExplainableBoostingClassifier``; ``outer_bags="auto"`` bags 8 times up to 50,000 rows and fewer above
    (:data:`BAGGED_ROWS` rows in all, at least 2 bags): averaging matters less as rows grow, the cost does not.
    ``num_threads`` processes fit the bags from :data:`ONE_PROCESS_BELOW` rows (the same model as one
    process: each bag has its own seed). ``fit`` takes an explicit validation set for early stopping (out of
    time, preferably), or with ``inner_folds`` (:func:`~creditgrade.models.folds.inner_splits`) one bag per
    inner fold, trained on the others and stopped early on it, whose log-odds on its fold are kept as
    ``oof_decision_`` (cross-fit bagging: the out-of-fold figures cost no extra fit; made monotone per bag as
    the final shapes are), or lets each bag hold out 15 % of the rows (of the ``groups``, if given: a
    subject's rows at several dates on one side).
    """

    def __init__(self, monotone=None, interactions=0, outer_bags="auto", learning_rate=0.02, max_bins=256,
                 min_samples_leaf=4, seed=0, num_threads=2, inner_folds=None):
        self.inner_folds = inner_folds
        self.monotone = monotone
        self.interactions = interactions
        self.outer_bags = outer_bags
        self.learning_rate = learning_rate
        self.max_bins = max_bins
        self.min_samples_leaf = min_samples_leaf
        self.seed = seed
        self.num_threads = num_threads

    family = "ebm"
    unit = "log-odds"
    document = FORMAT

    @classmethod
    def configured(cls, specs: list, scale=None, seed: int = 0) -> "EBMPD":
        """Monotone shape functions from the features' declared risk directions (the scale plays no part)."""
        return cls(monotone={s.name: s.monotone for s in specs}, seed=seed)

    def _bags(self, rows: int) -> int:
        if self.outer_bags != "auto":
            return int(self.outer_bags)
        return min(8, max(2, BAGGED_ROWS // rows))

    def _classifier(self, types, rows: int, bags: int):
        from interpret.glassbox import ExplainableBoostingClassifier

        return ExplainableBoostingClassifier(
            feature_types=types, interactions=self.interactions, outer_bags=bags,
            learning_rate=self.learning_rate, max_bins=self.max_bins, min_samples_leaf=self.min_samples_leaf,
            random_state=self.seed, n_jobs=1 if rows < ONE_PROCESS_BELOW else self.num_threads)

    def fit(self, X: pd.DataFrame, y, X_val: pd.DataFrame | None = None, y_val=None, groups=None):
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(X, columns=[f"x{i}" for i in range(np.shape(X)[1])])
        y = np.asarray(y).astype(int)
        bags, splits = None, []
        if X_val is not None:
            mask = np.r_[np.ones(len(X)), -np.ones(len(X_val))]
            bags = np.tile(mask[:, None], (1, self._bags(len(X) + len(X_val)))).astype(np.int8)
            X, y = pd.concat([X, X_val[X.columns]]), np.r_[y, np.asarray(y_val).astype(int)]
        elif self.inner_folds:
            splits = inner_splits(y, self.seed, self.inner_folds, groups)
            if len(splits) > 1:  # one bag per inner fold: trained on the others, stopped early on it
                bags = np.zeros((len(y), len(splits)), np.int8)
                for k, (train, valid) in enumerate(splits):
                    bags[train, k], bags[valid, k] = 1, -1
        elif groups is not None:  # each bag stops early on its own share of the groups
            bags = np.zeros((len(y), self._bags(len(y))), np.int8)
            for k in range(bags.shape[1]):
                train, valid = holdout(y, BAG_HOLDOUT, self.seed + k, groups)
                bags[train, k], bags[valid, k] = 1, -1
        types = ["continuous" if is_numeric(X[c]) else "nominal" for c in X.columns]
        frame = X.astype({c: float for c, t in zip(X.columns, types) if t == "continuous"})
        with warnings.catch_warnings():  # "missing values detected": the missing bin is kept and shown
            warnings.filterwarnings("ignore", message="Missing values detected", category=UserWarning)
            # a feature with no value in these rows (numpy's nanmin in InterpretML's binning): its bins stay empty
            warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)
            ebm = self._classifier(types, len(frame), self._bags(len(frame)) if bags is None else bags.shape[1])
            ebm.fit(frame, y, bags=bags)
        mono = self.monotone or {}
        ordered = {j: mono[name] > 0 for j, (name, kind) in enumerate(zip(X.columns, types))
                   if kind == "continuous" and mono.get(name, 0) and ebm.bin_weights_[j][1:-1].sum() > 0}
        cross_fitted = bags is not None and bool(splits)  # one bag per inner fold: its shapes before monotonize
        bagged = [[np.asarray(s[k], dtype=float) for s in ebm.bagged_scores_]
                  for k in range(len(ebm.bagged_intercept_))] if cross_fitted else []
        intercepts = list(np.ravel(ebm.bagged_intercept_))
        for j, increasing in ordered.items():  # a feature never present has no range to order
            ebm.monotonize(j, increasing=increasing)
        self._keep(ebm, list(X.columns), types)
        if cross_fitted:
            self.oof_decision_ = np.full(len(y), np.nan)
            for k, (_, valid) in enumerate(splits):
                scores = [_isotonic(s, ebm.bin_weights_[j], ordered[j]) if j in ordered else s
                          for j, s in enumerate(bagged[k])]
                rows = frame.iloc[valid]
                self.oof_decision_[valid] = intercepts[k] + sum(
                    score[_codes(term, rows[term["feature"]])] for term, score in zip(self.terms_, scores))
        return self

    def _keep(self, ebm, names: list[str], types: list[str]) -> None:
        """The fitted EBM as plain arrays (main effects only: pairs would break per-feature reasons)."""
        if any(len(f) != 1 for f in ebm.term_features_):
            raise ValueError("EBMPD keeps one shape function per feature: use interactions=0")
        self.terms_ = []
        for (j,), scores, weights in zip(ebm.term_features_, ebm.term_scores_, ebm.bin_weights_):
            bins = ebm.bins_[j][0]
            term = {"feature": names[j], "type": types[j], "scores": [float(s) for s in scores],
                    "weights": [float(w) for w in weights]}
            if types[j] == "continuous":
                term["cuts"] = [float(c) for c in bins]
            else:
                term["categories"] = [c for c, _ in sorted(bins.items(), key=lambda kv: kv[1])]
            self.terms_.append(term)
        self.intercept_ = float(np.ravel(ebm.intercept_)[0])
        self._fitted_names(names)

    @property
    def used_features_(self) -> list[str]:
        """Features whose shape function is not flat zero."""
        check_is_fitted(self, "terms_")
        return [t["feature"] for t in self.terms_ if any(s != 0.0 for s in t["scores"])]

    def walk(self, X: pd.DataFrame, table: Table | None = None) -> Walk:
        """Each feature's shape-function score and the intercept as ``bias``; the PD is the logistic of the
        row sum. The bins read ``table`` if given (its matrix directly: one subject's serving path), else ``X``."""
        if table is not None:
            check_is_fitted(self, "terms_")
            values, labels = table
            n, codes = len(values), [_table_codes(t, values[:, j], labels[j], compiled)
                                     for j, (t, compiled) in enumerate(zip(self.terms_, self._compiled()))]
        else:
            X = self._frame(X)
            n, codes = len(X), [_codes(t, X[t["feature"]]) for t in self.terms_]
        out = np.empty((n, len(self.terms_) + 1))
        for j, (c, (scores, _, _)) in enumerate(zip(codes, self._compiled())):
            out[:, j] = scores[c]
        out[:, -1] = self.intercept_
        return Walk(out, 1.0 / (1.0 + np.exp(-out.sum(axis=1))), None)

    def _compiled(self) -> list[tuple[np.ndarray, np.ndarray | None, dict | None]]:
        """Per term its scores and cuts as arrays and its category lookup, made once per fitted model (one
        subject's walk would otherwise rebuild them for every term)."""
        kept = getattr(self, "_kept", None)
        if kept is None or kept[0] is not self.terms_:
            kept = self._kept = (self.terms_, [
                (np.asarray(t["scores"], dtype=float),
                 np.asarray(t["cuts"], dtype=float) if t["type"] == "continuous" else None,
                 None if t["type"] == "continuous" else {c: i + 1 for i, c in enumerate(t["categories"])})
                for t in self.terms_])
        return kept[1]

    def contributions(self, X) -> pd.DataFrame:
        """Per-feature log-odds contributions plus ``bias``; each row sums exactly to the log-odds."""
        X = self._frame(X)
        return pd.DataFrame(self.walk(X).contributions, index=X.index, columns=[*self.feature_names_in_, "bias"])

    def boundaries(self) -> dict[str, list[tuple[float, bool]]]:
        """Each numeric bin edge (below means ``x < edge``)."""
        check_is_fitted(self, "terms_")
        return {t["feature"]: [(c, True) for c in t["cuts"]] for t in self.terms_ if t["type"] == "continuous"}

    def shapes(self) -> list[dict]:
        """Shape functions for a review-pack plot, most important first: per feature its bin labels, log-odds
        scores, training weights, importance (weighted mean absolute score) and declared direction."""
        check_is_fitted(self, "terms_")
        mono = self.monotone or {}
        out = []
        for t in self.terms_:
            scores, weights = np.asarray(t["scores"]), np.asarray(t["weights"])
            importance = float(np.average(np.abs(scores), weights=weights)) if weights.sum() > 0 else 0.0
            out.append({"feature": t["feature"], "type": t["type"], "bins": _bin_labels(t), "scores": t["scores"],
                        "weights": t["weights"], "importance": importance, "monotone": int(mono.get(t["feature"], 0))})
        return sorted(out, key=lambda s: -s["importance"])

    def describe(self) -> dict:
        mono = self.monotone or {}
        bins = sum(len(t["scores"]) for t in self.terms_)
        return {"size": {"terms": len(self.terms_), "bins": bins},
                "summary": f"{len(self.terms_)} shape functions, {bins} bins",
                "monotone": {f: {1: "increasing", -1: "decreasing"}.get(int(mono.get(f, 0)), "free")
                             for f in self.feature_names_in_},
                "contributions": "log-odds (the feature's shape-function score; exact, additive)",
                "details": {"intercept": self.intercept_, "shapes": self.shapes()}}

