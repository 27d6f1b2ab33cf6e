"""Monotone WOE binning: a fast, deterministic scikit-learn transformer.

WOE convention: ``woe = ln(share of bads in the bin / share of goods in the bin)``, so a positive WOE
means riskier than average and a logistic regression on WOE should have positive coefficients.

Algorithm per numeric feature: ``n_prebins`` quantile pre-bins (searchsorted + bincount), then
pool-adjacent-violators on the smoothed bad:good log odds, then the IV-maximising grouping of the
monotone blocks that meets ``min_bin_share`` / ``min_bad`` (a dynamic programme on the aggregated
counts), repeated until stable. Categorical features run the same steps on categories sorted by bad
rate. Deterministic and independent of row order.

Bin rules (the same in batch ``transform`` and in the scalar ``bin_index``):

* numeric features: regular bins ``[edge_{i-1}, edge_i)`` with ``-inf`` / ``+inf`` outer edges, so a
  value outside the training range falls into the first / last bin;
* each declared special value gets its own bin (a text value that reads as the same number counts:
  ``'-8'`` is ``-8.0``); NaN / None gets the ``missing`` bin;
* categorical (non-numeric dtype) features: categories are compared as ``str``; categories rarer
  than ``min_bin_share`` are pooled into one group before merging; a category never seen in
  training falls into the ``unseen`` bin, whose WOE is 0 (the population average);
* a missing / special / unseen bin that is empty in training has WOE 0.
"""

import bisect
import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._tags import ClassifierTags
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

MISSING = "missing"
UNSEEN = "unseen"


def binary_target(y):
    """Return y as a float array of 0 (good) / 1 (bad); the larger of the two labels is bad."""
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    y = column_or_1d(y, warn=True)
    if pd.isna(y).any() or (y.dtype.kind == "f" and not np.isfinite(y).all()):
        raise ValueError("Input y contains NaN or infinity")
    kind = type_of_target(y)
    if kind not in ("binary", "multiclass"):
        raise ValueError(f"Unknown label type: {kind}; y must be binary")
    labels = np.unique(y)
    if len(labels) != 2:
        raise ValueError(f"Only binary classification is supported; y has {len(labels)} class(es)")
    return (y == labels[1]).astype(np.float64)


def _log_odds(b, g, a):
    """Smoothed log odds bad:good of a block, the statistic kept monotone."""
    return math.log((b + a) / (g + a))


def _pav(blocks, up, a):
    """Pool adjacent violators on [count, bads, width] blocks until the smoothed log odds are
    strictly increasing (``up``) or strictly decreasing."""
    out = []
    for block in blocks:
        cur = list(block)
        while out:
            prev = _log_odds(out[-1][1], out[-1][0] - out[-1][1], a)
            now = _log_odds(cur[1], cur[0] - cur[1], a)
            if (prev < now) if up else (prev > now):
                break
            cur = [p + c for p, c in zip(out.pop(), cur)]
        out.append(cur)
    return out


def _best_partition(blocks, min_count, min_bad, a):
    """Group adjacent blocks so that every group has >= min_count rows and >= min_bad bads and the
    total IV is largest (dynamic programme over cut points, O(k^2) vectorised)."""
    n = np.array([blk[0] for blk in blocks], float)
    b = np.array([blk[1] for blk in blocks], float)
    rows, bads = np.r_[0, np.cumsum(n)], np.r_[0, np.cumsum(b)]
    tb, tg = bads[-1] + a, rows[-1] - bads[-1] + a
    k = len(blocks)
    best, prev = np.full(k + 1, -np.inf), np.zeros(k + 1, dtype=int)
    best[0] = 0.0
    for j in range(1, k + 1):
        cnt, bad = rows[j] - rows[:j], bads[j] - bads[:j]
        pb, pg = (bad + a) / tb, (cnt - bad + a) / tg
        value = np.where((cnt < min_count) | (bad < min_bad), -np.inf,
                         best[:j] + (pb - pg) * np.log(pb / pg))
        prev[j] = int(np.argmax(value))
        best[j] = value[prev[j]]
    cuts = [k]
    while np.isfinite(best[k]) and cuts[-1] > 0:
        cuts.append(prev[cuts[-1]])
    cuts = sorted(set(cuts) | {0})
    return [[sum(col) for col in zip(*blocks[i:j])] for i, j in zip(cuts[:-1], cuts[1:])]


def _monotone_blocks(blocks, up, min_count, min_bad, a):
    """PAV then the best partition meeting the minimums, repeated until stable."""
    blocks = _pav(blocks, up, a)
    while True:
        merged = _pav(_best_partition(blocks, min_count, min_bad, a), up, a)
        if len(merged) == len(blocks):
            return merged
        blocks = merged


def _woe_table(counts, bads, a):
    """WOE and IV of a feature's bins; empty bins get WOE 0."""
    counts, bads = np.asarray(counts, float), np.asarray(bads, float)
    goods = counts - bads
    k = max(int((counts > 0).sum()), 1)
    pb = (bads + a) / (bads.sum() + a * k)
    pg = (goods + a) / (goods.sum() + a * k)
    woe = np.where(counts > 0, np.log(pb / pg), 0.0)
    iv = float(np.sum(np.where(counts > 0, (pb - pg) * woe, 0.0)))
    return woe, iv


def _fmt(v):
    return f"{v:.6g}"


def _numeric_regular(x, bad, n_prebins, min_count, min_bad, direction, a):
    """Regular bins of a numeric feature: (edges, counts, bads, direction)."""
    finite = x[np.isfinite(x)]
    if len(finite) == 0:
        return [], [len(x)], [float(bad.sum())], "up"
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, n_prebins + 1)[1:-1]))
    idx = np.searchsorted(edges, x, side="right")
    n = np.bincount(idx, minlength=len(edges) + 1)
    b = np.bincount(idx, weights=bad, minlength=len(edges) + 1)
    keep = np.flatnonzero(n)
    edges = edges[keep[1:] - 1]
    blocks = [[int(n[i]), float(b[i]), 1] for i in keep]
    if direction not in (None, "auto", "none", "up", "down"):
        raise ValueError(f"direction must be 'up', 'down', 'auto' or 'none', not {direction!r}")
    fits = {}
    for d in (("up", "down") if direction in (None, "auto", "none") else (direction,)):
        fit = _monotone_blocks(blocks, d == "up", min_count, min_bad, a)
        fits[d] = (_woe_table([f[0] for f in fit], [f[1] for f in fit], a)[1], fit)
    d = max(fits, key=lambda k: fits[k][0])  # dicts keep order: a tie goes to "up"
    fit = fits[d][1]
    cuts = np.cumsum([f[2] for f in fit])[:-1]
    return [float(e) for e in edges[cuts - 1]], [f[0] for f in fit], [f[1] for f in fit], d


def _categorical_regular(values, bad, min_count, min_bad, a):
    """Regular bins of a categorical feature ordered by bad rate: (groups, counts, bads)."""
    cats, inv = np.unique(values, return_inverse=True)
    n = np.bincount(inv, minlength=len(cats))
    b = np.bincount(inv, weights=bad, minlength=len(cats))
    rare = n < min_count
    groups = [([str(c)], int(n[i]), float(b[i])) for i, c in enumerate(cats) if not rare[i]]
    if rare.any():
        groups.append(([str(c) for c in cats[rare]], int(n[rare].sum()), float(b[rare].sum())))
    groups.sort(key=lambda g: (g[2] / g[1], g[0][0]))
    blocks = [[cnt, bd, 1] for _, cnt, bd in groups]
    fit = _monotone_blocks(blocks, True, min_count, min_bad, a)
    out, start = [], 0
    for cnt, bd, width in fit:
        out.append(sorted(c for g in groups[start : start + width] for c in g[0]))
        start += width
    return out, [f[0] for f in fit], [f[1] for f in fit]


def _column_values(spec, column):
    """Column as float64 (numeric) or object array of str with None for missing (categorical)."""
    if spec["type"] == "numeric":
        if isinstance(column, np.ndarray) and column.dtype == float:  # read as floats already (a table)
            return column
        return pd.to_numeric(pd.Series(column), errors="raise").to_numpy(dtype=float, na_value=np.nan)
    col = pd.Series(column, dtype=object)
    return np.where(pd.isna(col), None, col.astype(str)).astype(object)


def _number(value) -> float:
    """A value as a number (NaN when it does not read as one)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _special_masks(spec, values):
    """One mask per special value; a text value matches when it reads as the same number ('-8' is -8.0)."""
    if spec["type"] == "numeric":
        return [values == v for v in spec["specials"]]
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    return [(values == v) | (numbers == _number(v)) for v in spec["specials"]]


def bin_codes(spec, column):
    """Vectorised bin index of every value of one column."""
    values = _column_values(spec, column)
    n_reg = len(spec["bins"]) - len(spec["specials"]) - 1 - (spec["type"] == "categorical")
    if spec["type"] == "numeric":
        codes = np.searchsorted(np.asarray(spec["edges"], float), values, side="right")
        missing = np.isnan(values)
    else:
        lookup = {c: i for i, group in enumerate(spec["categories"]) for c in group}
        missing = np.equal(values, None)
        index = pd.Index(list(lookup)).get_indexer(np.where(missing, "", values))
        codes = np.where(index >= 0, np.asarray(list(lookup.values()), dtype=np.intp)[index], n_reg + len(spec["specials"]) + 1)
    for k, mask in enumerate(_special_masks(spec, values)):
        codes[mask] = n_reg + k
    codes[missing] = n_reg + len(spec["specials"])
    return codes


def bin_index(spec, value):
    """Bin index of one value, with exactly the rules of ``bin_codes``."""
    n_reg = len(spec["bins"]) - len(spec["specials"]) - 1 - (spec["type"] == "categorical")
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return n_reg + len(spec["specials"])
    value = float(value) if spec["type"] == "numeric" else str(value)
    for k, v in enumerate(spec["specials"]):
        if value == v or _number(value) == _number(v):
            return n_reg + k
    if spec["type"] == "numeric":
        return bisect.bisect_right(spec["edges"], value)
    for i, group in enumerate(spec["categories"]):
        if value in group:
            return i
    return n_reg + len(spec["specials"]) + 1


class MonotoneBinner(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Per-feature monotone WOE binning; ``transform`` returns WOE (see module docstring).

    Parameters
    ----------
    directions : dict feature -> "up" (higher value = more risk), "down", or "auto"/"none"
        (try both, keep the one with higher IV; a tie goes to "up"). Unlisted features are "auto".
    special_values : list of values for every feature, or dict feature -> list.
    n_prebins : number of quantile pre-bins per numeric feature.
    min_bin_share : minimum share of all training rows in a regular bin; also the share below which
        categories are pooled.
    min_bad : minimum number of bads in a regular bin.
    smoothing : pseudo-count added to goods and bads in each bin's WOE.

    Fitted attributes: ``bins_`` (feature -> JSON-friendly bin spec), ``iv_`` (feature -> IV),
    ``feature_names_in_`` (DataFrame input) and ``n_features_in_``. ``y`` must be binary; its larger
    label (1 / True) is the bad class. Output is a DataFrame for DataFrame input, else numpy
    (``set_output`` is honoured).
    """

    def __init__(self, directions=None, special_values=None, n_prebins=50, min_bin_share=0.05,
                 min_bad=5, smoothing=0.5):
        self.directions = directions
        self.special_values = special_values
        self.n_prebins = n_prebins
        self.min_bin_share = min_bin_share
        self.min_bad = min_bad
        self.smoothing = smoothing

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = True
        tags.classifier_tags = ClassifierTags(multi_class=False)  # binary y only
        return tags

    def _columns(self, X, reset):
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if len(X) == 0 and reset:
                raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
            return [X.iloc[:, j] for j in range(X.shape[1])]
        X = validate_data(self, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan")
        return list(X.T)

    def _specials(self, name):
        sv = self.special_values
        return list(sv.get(name, []) if isinstance(sv, dict) else (sv or []))

    def fit(self, X, y=None):
        columns = self._columns(X, reset=True)
        bad = binary_target(y)
        if len(bad) != len(columns[0]):
            raise ValueError("X and y have different numbers of rows")
        names = self.get_feature_names_out()
        directions = self.directions or {}
        self.bins_, self.iv_ = {}, {}
        for name, column in zip(names, columns):
            numeric = pd.api.types.is_numeric_dtype(column)
            spec = {"type": "numeric" if numeric else "categorical"}
            spec["specials"] = [float(v) if numeric else str(v) for v in self._specials(name)]
            spec["bins"], spec["edges"], spec["categories"], spec["direction"] = [], [], [], None
            values = _column_values(spec, column)
            self.bins_[name], self.iv_[name] = self._fit_feature(spec, values, bad, directions.get(name))
        return self

    def _fit_feature(self, spec, values, bad, direction):
        a, total = self.smoothing, len(values)
        missing = np.isnan(values) if spec["type"] == "numeric" else np.equal(values, None)
        special = [~missing & mask for mask in _special_masks(spec, values)]
        regular = ~missing & ~np.logical_or.reduce(special + [np.zeros(total, bool)])
        min_count = self.min_bin_share * total
        if spec["type"] == "numeric":
            edges, counts, bads, spec["direction"] = _numeric_regular(
                values[regular], bad[regular], self.n_prebins, min_count, self.min_bad, direction, a)
            spec["edges"] = edges
            bounds = [-math.inf] + edges + [math.inf]
            labels = [f"[{_fmt(lo)}, {_fmt(hi)})" for lo, hi in zip(bounds[:-1], bounds[1:])]
        else:
            spec["categories"], counts, bads = _categorical_regular(
                values[regular].astype(str), bad[regular], min_count, self.min_bad, a)
            labels = [", ".join(group) for group in spec["categories"]]
        labels += [f"special {_fmt(v) if isinstance(v, float) else v}" for v in spec["specials"]]
        labels.append(MISSING)
        for mask in special + [missing]:
            counts, bads = counts + [int(mask.sum())], bads + [float(bad[mask].sum())]
        if spec["type"] == "categorical":
            labels, counts, bads = labels + [UNSEEN], counts + [0], bads + [0.0]
        woe, iv = _woe_table(counts, bads, a)
        spec["bins"] = [
            {"bin": lab, "count": int(n), "goods": int(n - b), "bads": int(b), "share": n / total,
             "bad_rate": b / n if n else None, "woe": float(w)}
            for lab, n, b, w in zip(labels, counts, bads, woe)
        ]
        return spec, iv

    def bin_table(self, feature):
        """DataFrame of one feature's bins: bin, count, goods, bads, share, bad_rate, woe."""
        check_is_fitted(self)
        return pd.DataFrame(self.bins_[feature]["bins"])

    def transform(self, X):
        check_is_fitted(self)
        columns = self._columns(X, reset=False)
        out = np.empty((len(columns[0]) if columns else 0, len(columns)))
        for j, (name, column) in enumerate(zip(self.get_feature_names_out(), columns)):
            spec = self.bins_[name]
            out[:, j] = np.array([b["woe"] for b in spec["bins"]])[bin_codes(spec, column)]
        if isinstance(X, pd.DataFrame):
            return pd.DataFrame(out, columns=self.get_feature_names_out(), index=X.index)
        return out
