"""Scorecard feature selection on WOE columns (WOE = ln(bad share / good share)).

Rules, applied in this order: IV, univariate Gini, pairwise correlation (the lower-IV feature of a
pair goes), VIF (iteratively, highest first), and finally the sign of the logistic-regression
coefficients: with this WOE convention every coefficient must be positive. Every drop is recorded
as ``{"feature", "rule", "value", "threshold", "other"}`` (``other`` names the partner of a
correlated pair, else None).
"""

import numpy as np


def _drop(feature, rule, value, threshold, other=None):
    return {"feature": feature, "rule": rule, "value": float(value), "threshold": threshold,
            "other": other}


def gini_from_bins(bins):
    """Training Gini (2 AUC - 1) of a feature's WOE, computed from its bin counts."""
    woe = np.array([b["woe"] for b in bins])
    bads = np.array([b["bads"] for b in bins], float)
    goods = np.array([b["goods"] for b in bins], float)
    values, inv = np.unique(woe, return_inverse=True)
    b = np.bincount(inv, weights=bads, minlength=len(values))
    g = np.bincount(inv, weights=goods, minlength=len(values))
    if b.sum() == 0 or g.sum() == 0:
        return 0.0
    below = np.cumsum(g) - g
    auc = float(np.sum(b * (below + 0.5 * g)) / (b.sum() * g.sum()))
    return 2 * auc - 1


def vif(woe):
    """Variance inflation factors of the columns of a 2-d array (capped at 1e12 when collinear): the diagonal
    of the inverse correlation matrix, ``1 / (1 - R^2)``, when it is well conditioned (one inversion instead
    of a regression per column: wide tables); otherwise each column not in an exact linear dependency
    regressed on the others, and the cap for those that are."""
    p = woe.shape[1]
    if p < 2:
        return np.ones(p)
    corr = np.nan_to_num(np.corrcoef(woe, rowvar=False))
    values, vectors = np.linalg.eigh(corr)
    null = values <= 1e-10 * max(values.max(), 1.0)
    if not null.any():
        return np.minimum(np.diag(np.linalg.inv(corr)), 1e12)
    out = np.full(p, 1e12)
    for j in np.flatnonzero(~(np.abs(vectors[:, null]) > 1e-6).any(axis=1)):
        others = np.delete(np.arange(p), j)
        r = corr[others, j]
        r2 = float(r @ np.linalg.lstsq(corr[np.ix_(others, others)], r, rcond=None)[0])
        out[j] = 1 / (1 - min(r2, 1 - 1e-12))
    return out


def select_features(woe, bins, iv, *, min_iv=0.02, min_gini=0.05, max_corr=0.7, max_vif=5.0):
    """Apply the IV, Gini, correlation and VIF rules; return (kept features, dropped records).

    ``woe`` is a DataFrame of WOE columns, ``bins`` and ``iv`` the binner's ``bins_`` and ``iv_``.
    """
    dropped, kept = [], []
    for f in sorted(woe.columns, key=lambda c: (-iv[c], str(c))):
        gini = gini_from_bins(bins[f]["bins"])
        if iv[f] < min_iv:
            dropped.append(_drop(f, "iv", iv[f], min_iv))
        elif gini < min_gini:
            dropped.append(_drop(f, "gini", gini, min_gini))
        else:
            kept.append(f)
    if not kept:
        return kept, dropped
    corr = np.abs(np.atleast_2d(np.nan_to_num(np.corrcoef(woe[kept].to_numpy(), rowvar=False))))
    survivors = []
    for i, f in enumerate(kept):  # kept is sorted by IV: an earlier partner has the higher IV
        partner = max(survivors, key=lambda j: (corr[i, j], -j), default=None)
        if partner is not None and corr[i, partner] > max_corr:
            dropped.append(_drop(f, "correlation", corr[i, partner], max_corr, kept[partner]))
        else:
            survivors.append(i)
    survivors = [kept[i] for i in survivors]
    while len(survivors) > 1:
        factors = vif(woe[survivors].to_numpy())
        worst = int(np.argmax(factors))
        if factors[worst] <= max_vif:
            break
        dropped.append(_drop(survivors.pop(worst), "vif", factors[worst], max_vif))
    return survivors, dropped


def enforce_signs(woe, y, features, make_model):
    """Fit ``make_model()`` on the WOE columns, dropping the most negative coefficient until every
    coefficient is positive; return (fitted model or None, kept features, dropped records)."""
    features, dropped = list(features), []
    while features:
        model = make_model().fit(woe[features].to_numpy(), y)
        coef = model.coef_.ravel()
        worst = int(np.argmin(coef))
        if coef[worst] > 0:
            return model, features, dropped
        dropped.append(_drop(features.pop(worst), "sign", coef[worst], 0.0))
    return None, features, dropped
