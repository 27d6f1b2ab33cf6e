"""Scorecard: monotone WOE binning + selection + logistic regression, points scaled by PDO.

* WOE = ln(bad share / good share); LR coefficients are forced positive (see ``models.selection``).
* The linear predictor is ``lp = intercept + sum_j coef_j * woe_j`` (summed in characteristic
  order); PD = 1 / (1 + exp(-lp)) comes from this UNROUNDED predictor, in batch and in
  ``score_record`` alike.
* Points: ``score = offset - factor * lp`` with ``factor = pdo / ln 2`` and
  ``offset = base_points - factor * ln(base_odds)`` (odds good:bad). Each bin's points are
  ``round(-factor * coef_j * woe)``; the card's base points ``round(offset - factor * intercept)``.
  The total score is ``base_points_ + sum of the bins' points`` (integers; a WOE-0 bin, e.g. an
  unseen category, scores 0).
* ``scale=(lo, hi)``: the raw points are rescaled linearly so that the lowest possible total is
  ``lo`` and the highest ``hi``; the bin with each characteristic's lowest raw points scores 0 and the
  base points are ``lo``. The map ``scaled = lo + slope * (raw - raw_min)`` is saved in the card.
"""

import json
import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data

from creditgrade.models.binning import MISSING, UNSEEN, MonotoneBinner, bin_codes, bin_index, binary_target
from creditgrade.models.estimator import Estimator, Table, Walk, table_columns
from creditgrade.models.selection import enforce_signs, select_features

FORMAT = "creditgrade.scorecard/1"
_FITTED = ("classes_", "input_features_", "characteristics_", "coef_", "intercept_",
           "base_points_", "scaling_", "iv_", "selection_", "n_iter_")


def _linear(intercept, coef, woes):
    """Linear predictor summed in characteristic order (identical for scalars and arrays)."""
    lp = intercept
    for c, w in zip(coef, woes):
        lp = lp + c * w
    return lp


def _pd(lp):
    return 1.0 / (1.0 + np.exp(-np.asarray(lp, dtype=np.float64)))


def _scaled_points(raw, lo, hi):
    """Integer points per bin mapping the total range onto [lo, hi]; (points, slope, raw shift)."""
    mins = [min(r) for r in raw]
    span = sum(max(r) - m for r, m in zip(raw, mins))
    slope = (hi - lo) / span if span > 0 else 0.0
    scaled = [[(v - m) * slope for v in r] for r, m in zip(raw, mins)]
    tops = [max(s) for s in scaled]
    caps = [math.floor(t) for t in tops]
    short = round(hi - lo - sum(caps)) if span > 0 else 0
    for j in sorted(range(len(tops)), key=lambda j: (caps[j] - tops[j], j))[:short]:
        caps[j] += 1  # largest remainders round up, so the top total is exactly hi
    return [[min(round(v), c) for v in s] for s, c in zip(scaled, caps)], slope, sum(mins)


class Scorecard(ClassifierMixin, BaseEstimator, Estimator):
    """Credit scorecard estimator for any table (see the module docstring for the point scale); the
    ``scorecard`` family of :class:`~creditgrade.models.estimator.Estimator` (contributions in points).

    Binning parameters go to ``MonotoneBinner``; ``min_iv``, ``min_gini``, ``max_corr``,
    ``max_vif`` to ``models.selection.select_features``; ``C`` and ``max_iter`` to sklearn's
    ``LogisticRegression(solver="newton-cholesky")``. ``y`` must be binary, larger label = bad.
    DataFrame input is read by column name (extra columns are ignored); arrays by position.
    A regular bin needs ``min_bad`` = 1 bad, not the binner's 5: ``min_bin_share`` bounds its size and the
    smoothing its WOE, and 5 merged a large group with almost no bads into the rest (Wooldridge's mortgage
    file: loans sold on, 45 % of the rows and 3 of the 244 bads; the card's AUC 0.850 -> 0.926).
    """

    family = "scorecard"
    unit = "points"

    def __init__(self, directions=None, special_values=None, n_prebins=50, min_bin_share=0.05,
                 min_bad=1, smoothing=0.5, min_iv=0.02, min_gini=0.05, max_corr=0.7, max_vif=5.0,
                 C=1.0, max_iter=100, base_points=600, base_odds=50, pdo=20, scale=None):
        self.directions = directions
        self.special_values = special_values
        self.n_prebins = n_prebins
        self.min_bin_share = min_bin_share
        self.min_bad = min_bad
        self.smoothing = smoothing
        self.min_iv = min_iv
        self.min_gini = min_gini
        self.max_corr = max_corr
        self.max_vif = max_vif
        self.C = C
        self.max_iter = max_iter
        self.base_points = base_points
        self.base_odds = base_odds
        self.pdo = pdo
        self.scale = scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    @classmethod
    def configured(cls, specs: list, scale, seed: int = 0) -> "Scorecard":
        """Bins monotone in the features' declared risk directions; points scaled as the grade scale says."""
        return cls(directions={s.name: s.direction for s in specs}, base_points=scale.base_points,
                   base_odds=scale.base_odds, pdo=scale.pdo)

    def _lr(self):
        return LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=self.max_iter)

    def fit(self, X, y, X_val=None, y_val=None, groups=None):
        """Fit on ``X, y`` and, if given, the held-out ``X_val, y_val`` as well (a card has no use for them,
        nor for ``groups``: it holds nothing out)."""
        if X_val is not None:
            X, y = pd.concat([X, X_val]), np.concatenate([np.asarray(y), np.asarray(y_val)])
        binner = MonotoneBinner(**{k: getattr(self, k) for k in MonotoneBinner().get_params()})
        woe = binner.set_output(transform="pandas").fit_transform(X, y)
        bad = binary_target(y)
        self.classes_ = np.unique(np.asarray(y))
        self.input_features_ = [str(f) for f in binner.get_feature_names_out()]
        self.n_features_in_ = binner.n_features_in_
        if hasattr(binner, "feature_names_in_"):
            self.feature_names_in_ = binner.feature_names_in_
        kept, dropped = select_features(woe, binner.bins_, binner.iv_, min_iv=self.min_iv,
                                        min_gini=self.min_gini, max_corr=self.max_corr,
                                        max_vif=self.max_vif)
        model, kept, sign_drops = enforce_signs(woe, bad, kept, self._lr)
        rate = bad.mean()
        self.intercept_ = float(model.intercept_[0]) if model else math.log(rate / (1 - rate))
        self.coef_ = model.coef_.ravel().astype(float) if model else np.zeros(0)
        self.n_iter_ = int(model.n_iter_.max()) if model else 0
        self.iv_ = {str(k): float(v) for k, v in binner.iv_.items()}
        self.selection_ = {"kept": list(kept), "dropped": dropped + sign_drops}
        specs = [dict(binner.bins_[f], name=str(f)) for f in kept]
        self._set_points(specs)
        return self

    def _set_points(self, specs):
        factor = self.pdo / math.log(2)
        offset = self.base_points - factor * math.log(self.base_odds)
        raw = [[-factor * float(c) * b["woe"] for b in s["bins"]] for c, s in zip(self.coef_, specs)]
        self.scaling_ = {"base_points": self.base_points, "base_odds": self.base_odds,
                         "pdo": self.pdo, "factor": factor, "offset": offset, "scale": None}
        if self.scale is None:
            points = [[round(v) for v in r] for r in raw]
            self.base_points_ = round(offset - factor * self.intercept_)
        else:
            lo, hi = self.scale
            points, slope, shift = _scaled_points(raw, lo, hi)
            raw_min = offset - factor * self.intercept_ + shift
            self.scaling_["scale"] = {"lo": lo, "hi": hi, "slope": slope, "raw_min": raw_min}
            self.base_points_ = lo
        self.characteristics_ = [
            dict(s, bins=[dict(b, points=p) for b, p in zip(s["bins"], pts)])
            for s, pts in zip(specs, points)
        ]

    def _codes(self, X):
        """Bin index per row and characteristic, shape (n_rows, n_characteristics)."""
        check_is_fitted(self, "characteristics_")
        named = isinstance(X, pd.DataFrame) and hasattr(self, "feature_names_in_")  # else by position, as fitted
        if named or isinstance(X, dict):  # a dict: columns by name (``table_columns``)
            cols = [X[s["name"]] for s in self.characteristics_]
            n = len(X) if isinstance(X, pd.DataFrame) else len(next(iter(X.values())))
        else:
            X = validate_data(self, X, reset=False, dtype=None, ensure_all_finite="allow-nan")
            cols = [X[:, self.input_features_.index(s["name"])] for s in self.characteristics_]
            n = X.shape[0]
        if n == 1:  # one subject: the scalar rules (bin_index) cost far less than a vectorised pass
            return np.array([[bin_index(s, c.iloc[0] if isinstance(c, pd.Series) else c[0])
                              for s, c in zip(self.characteristics_, cols)]], dtype=np.intp)
        codes = [bin_codes(s, c) for s, c in zip(self.characteristics_, cols)]
        return np.column_stack(codes) if codes else np.zeros((n, 0), dtype=np.intp)

    def _lookup(self, codes, key):
        if codes.shape[0] == 1:  # one subject: read the bins directly
            return np.array([[s["bins"][c][key] for s, c in zip(self.characteristics_, codes[0].tolist())]])
        return np.column_stack(
            [np.array([b[key] for b in s["bins"]])[codes[:, j]]
             for j, s in enumerate(self.characteristics_)]
        ) if self.characteristics_ else np.zeros(codes.shape)

    def woe(self, X):
        """WOE of each characteristic, DataFrame (rows of X x characteristics)."""
        return pd.DataFrame(self._lookup(self._codes(X), "woe"), columns=self.selection_["kept"],
                            index=getattr(X, "index", None))

    def _lp(self, codes):
        woe = self._lookup(codes, "woe")
        return np.broadcast_to(_linear(self.intercept_, self.coef_, woe.T), (woe.shape[0],)).copy()

    def decision_function(self, X):
        """Unrounded linear predictor (log odds bad:good)."""
        return self._lp(self._codes(X))

    def predict_proba(self, X):
        pd_ = _pd(self.decision_function(X))
        return np.column_stack([1 - pd_, pd_])

    def predict(self, X):
        lp = self.decision_function(X)
        return self.classes_[(lp > 0).astype(int)]

    def points_by_characteristic(self, X):
        """Integer points of each subject per characteristic (the explanation); the total score is
        ``base_points_`` plus the row sum."""
        pts = self._lookup(self._codes(X), "points").astype(np.int64)
        return pd.DataFrame(pts, columns=self.selection_["kept"], index=getattr(X, "index", None))

    def pd_and_points(self, X):
        """PD (as :meth:`predict_proba`) and each characteristic's integer points (as
        :meth:`points_by_characteristic`, an array) from one binning pass."""
        codes = self._codes(X)
        return _pd(self._lp(codes)), self._lookup(codes, "points").astype(np.int64)

    def points(self, X):
        """Total integer score per row."""
        return self.base_points_ + self.points_by_characteristic(X).to_numpy().sum(axis=1)

    def predict_pd(self, X):
        return self.predict_proba(X)[:, 1]

    def own_score(self, X):
        """The card's total points (:meth:`points`): the score people read."""
        return self.points(X)

    def walk(self, X, table: Table | None = None) -> Walk:
        """Each input feature's points relative to its best bin's (``<= 0``; 0 for a feature the card
        dropped), the best possible total as bias, from one binning pass; the score is the row sum."""
        rows = X if table is None else table_columns(table, self.input_features_)
        pd_, points = self.pd_and_points(rows)
        best = np.array([max(b["points"] for b in c["bins"]) for c in self.characteristics_], dtype=float)
        out = np.zeros((len(pd_), len(self.input_features_) + 1))
        out[:, [self.input_features_.index(c) for c in self.selection_["kept"]]] = points - best
        out[:, -1] = self.base_points_ + best.sum()
        return Walk(out, pd_, self.base_points_ + points.sum(axis=1))

    def log_odds_walk(self, X, table: Table | None = None) -> Walk:
        """Each input feature's ``coef * WOE`` (0 for a feature the card dropped) and the intercept as bias:
        the unrounded linear predictor the PD comes from, split by feature; the score is the card's points."""
        rows = X if table is None else table_columns(table, self.input_features_)
        codes = self._codes(rows)
        woe = self._lookup(codes, "woe")
        out = np.zeros((len(codes), len(self.input_features_) + 1))
        out[:, [self.input_features_.index(c) for c in self.selection_["kept"]]] = woe * np.asarray(self.coef_)
        out[:, -1] = self.intercept_
        points = self._lookup(codes, "points").astype(np.int64)
        return Walk(out, _pd(self._lp(codes)), self.base_points_ + points.sum(axis=1))

    @property
    def used_features_(self):
        kept = set(self.selection_["kept"])
        return [f for f in self.input_features_ if f in kept]

    def boundaries(self):
        """Inner bin edges of the numeric characteristics (a bin is ``[edge_{i-1}, edge_i)``)."""
        out = {}
        for c in self.characteristics_:
            if c["type"] == "numeric":
                out[c["name"]] = [(float(e), True) for e in c["edges"]]
        return out

    def shapes(self) -> list[dict]:
        """Each characteristic's bins as a shape function (the EBM's layout: missing first, unseen last, the
        regular and special bins between), most important first: per bin ``coef * WOE``, its part of the
        log-odds (with the intercept they add up to ``logit(PD)``; the points rescale them)."""
        check_is_fitted(self, "characteristics_")
        out = []
        for coef, c in zip(self.coef_, self.characteristics_):
            by_label = {b["bin"]: b for b in c["bins"]}
            middle = [b for b in c["bins"] if b["bin"] not in (MISSING, UNSEEN)]
            ends = [by_label.get(label, {"bin": label, "woe": 0.0, "count": 0}) for label in (MISSING, UNSEEN)]
            bins = [ends[0], *middle, ends[1]]
            scores = [float(coef * b["woe"]) for b in bins]
            weights = np.array([b["count"] for b in bins], dtype=float)
            importance = float(np.average(np.abs(scores), weights=weights)) if weights.sum() > 0 else 0.0
            out.append({"feature": c["name"], "type": "nominal", "bins": [b["bin"] for b in bins], "scores": scores,
                        "weights": weights.tolist(), "importance": importance,
                        "monotone": {"up": 1, "down": -1}.get(c.get("direction"), 0)})
        return sorted(out, key=lambda s: -s["importance"])

    def describe(self):
        kept = set(self.selection_["kept"])
        return {"size": {"characteristics": len(self.characteristics_), "base_points": self.base_points_},
                "summary": f"{len(self.characteristics_)} characteristics, base points {self.base_points_}",
                "monotone": {f: "monotone WOE" if f in kept else "dropped" for f in self.input_features_},
                "contributions": "points relative to the best bin",
                "details": {"selection": self.selection_, "iv": self.iv_, "intercept": self.intercept_,
                            "shapes": self.shapes()}}

    def score_record(self, record):
        """Score one plain dict feature -> value; returns {"points", "pd", "points_by_characteristic"}.
        Same bins, points and PD as batch scoring; a missing key counts as a missing value."""
        check_is_fitted(self, "characteristics_")
        bins = [s["bins"][bin_index(s, record.get(s["name"]))] for s in self.characteristics_]
        by_char = {s["name"]: b["points"] for s, b in zip(self.characteristics_, bins)}
        lp = _linear(self.intercept_, self.coef_, [b["woe"] for b in bins])
        return {"points": self.base_points_ + sum(by_char.values()), "pd": float(_pd([lp])[0]),
                "points_by_characteristic": by_char}

    def table(self):
        """DataFrame: characteristic, bin, count, share, bad_rate, woe, points."""
        check_is_fitted(self, "characteristics_")
        rows = [{"characteristic": s["name"], **{k: b[k] for k in
                 ("bin", "count", "share", "bad_rate", "woe", "points")}}
                for s in self.characteristics_ for b in s["bins"]]
        return pd.DataFrame(rows, columns=["characteristic", "bin", "count", "share", "bad_rate",
                                           "woe", "points"])

    def to_string(self):
        s = self.scaling_
        head = (f"Scorecard: base points {self.base_points_}; {s['base_points']} points at odds "
                f"{s['base_odds']}:1, {s['pdo']} points to double the odds")
        if s["scale"]:
            head += f"; rescaled to {s['scale']['lo']}..{s['scale']['hi']}"
        return head + "\n" + self.table().to_string(index=False)

    def __str__(self):
        return self.to_string() if hasattr(self, "characteristics_") else repr(self)

    def to_json(self):
        """The whole fitted card as one JSON document."""
        check_is_fitted(self, "characteristics_")
        doc = {"format": FORMAT, "params": self.get_params(),
               "named_input": hasattr(self, "feature_names_in_"),
               **{k.rstrip("_"): getattr(self, k) for k in _FITTED}}
        return json.dumps(doc, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))

    @classmethod
    def from_json(cls, text):
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        params = doc["params"]
        if params["scale"] is not None:
            params["scale"] = tuple(params["scale"])
        card = cls(**params)
        for k in _FITTED:
            setattr(card, k, doc[k.rstrip("_")])
        card.classes_ = np.asarray(card.classes_)
        card.n_features_in_ = len(card.input_features_)
        if doc["named_input"]:
            card.feature_names_in_ = np.asarray(card.input_features_, dtype=object)
        card.coef_ = np.asarray(card.coef_, dtype=float)
        return card
