"""Per-subject contributions and reason codes for a :class:`~models.bundle.GradeModel`.

Contributions add up to the model's output for each subject:

* LightGBM: TreeSHAP values of the calibrated log-odds (LightGBM's native ``pred_contrib``, scaled by the
  Platt map), ``bias`` the expected log-odds; a row sums to ``logit(PD)``.
* Scorecard: points of each characteristic **relative to that characteristic's maximum points** (the
  adverse-action reference: a value is ``<= 0``, the points lost against the best bin); ``bias`` is the
  base points plus the sum of the maxima (the best possible score); a row sums to the card's total
  points. Features the card dropped contribute 0.

Reasons are the top factors that raised risk (positive log-odds, or points lost), with catalogue texts,
the subject's value and the segment median. A binding policy rule (``models.grades``: in default, or a cap
that moved the grade) is always the first reason, its sentence naming the record that shows it, the
authority behind it and, for a default, the day it began; for a subject in default the grade is policy and
the factors that follow explain only the model's grade.
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd

from creditgrade.features.catalog import spec
from creditgrade.models.bundle import GradeModel
from creditgrade.models.grades import iso_day


def contributions(model: GradeModel, X: pd.DataFrame) -> pd.DataFrame:
    """Contributions per feature plus ``bias`` (columns ``model.features + ["bias"]``, index of ``X``)."""
    return pd.DataFrame(_matrix(model, X), index=X.index, columns=[*model.features, "bias"])


def _matrix(model: GradeModel, X: pd.DataFrame) -> np.ndarray:
    """:func:`contributions` as a float array, without copying ``X`` when its columns are the model's."""
    return _walk(model, X)[0]


def _walk(model: GradeModel, X: pd.DataFrame,
          table: tuple[np.ndarray, list] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Contributions (:func:`_matrix`), PD, and the score of a scorecard graded by score (else None: the
    scale scores the PD), from one pass over the model: LightGBM's trees walked once (the PD is the
    logistic of the contributions' sum, equal to ``model.pd`` up to rounding), the card's bins found once.
    ``table``: :func:`_table` of ``X`` over ``model.features``, if the caller has it."""
    est = model.estimator
    if model.kind == "lightgbm":  # LGBMPD.contributions without its copies: Platt-scaled TreeSHAP
        a, b = est.calibration_
        out = est.booster_.predict(_booster_rows(est.booster_, *(table or _table(X, model.features))),
                                   pred_contrib=True, num_threads=est.num_threads)
        out *= a
        out[:, -1] += b
        return out, 1.0 / (1.0 + np.exp(-out.sum(axis=1))), None
    pd_, points = est.pd_and_points(X if list(X.columns) == model.features else X[model.features])
    best = np.array([max(b["points"] for b in c["bins"]) for c in est.characteristics_], dtype=float)
    out = np.zeros((len(X), len(model.features) + 1))
    out[:, [model.features.index(c) for c in est.selection_["kept"]]] = points - best
    out[:, -1] = est.base_points_ + best.sum()
    score = est.base_points_ + points.sum(axis=1) if model.scale.by == "score" else None
    return out, pd_, score


def _booster_rows(booster, values: np.ndarray, labels: list) -> np.ndarray:
    """:func:`_table`'s matrix as LightGBM reads a frame: each categorical column (in order) coded by the
    categories the booster was trained with (``pandas_categorical``), unknown or missing as NaN. A float
    matrix skips LightGBM's per-call conversion of a frame, which costs more than the trees of one row."""
    coded = [j for j, lab in enumerate(labels) if lab is not None]
    if not coded:
        return values
    values = values.copy()
    for j, trained in zip(coded, _trained_codes(booster)):
        table = np.array([trained.get(label, np.nan) for label in labels[j]], dtype=float)
        col = values[:, j]
        known = ~np.isnan(col)
        col[known] = table[col[known].astype(np.intp)]
    return values


_BOOSTER_CODES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _trained_codes(booster) -> list[dict]:
    """Per categorical column, each trained category's code (cached per booster)."""
    if booster not in _BOOSTER_CODES:
        trained = getattr(booster, "pandas_categorical", None) or []  # None: trained without categories
        _BOOSTER_CODES[booster] = [{c: i for i, c in enumerate(cats)} for cats in trained]
    return _BOOSTER_CODES[booster]


def _unit(model: GradeModel) -> str:
    return "log-odds" if model.kind == "lightgbm" else "points"


def _per_model(build):
    """Cache ``build(model)`` per estimator (a fitted model's trees and card never change)."""
    memo: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def cached(model: GradeModel):
        if model.estimator not in memo:
            memo[model.estimator] = build(model)
        return memo[model.estimator]
    return cached


@_per_model
def _used(model: GradeModel) -> np.ndarray:
    """Positions of the features that can contribute (split on by the trees, or kept by the card)."""
    if model.kind == "lightgbm":
        return np.flatnonzero(model.estimator.booster_.feature_importance("split") > 0)
    kept = set(model.estimator.selection_["kept"])
    return np.array([j for j, f in enumerate(model.features) if f in kept], dtype=np.intp)


def _codes(col: pd.Series) -> tuple[np.ndarray, list | None]:
    """A column as floats (categorical as codes, missing as NaN) and its category labels or None."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy(dtype=float)
        codes[codes < 0] = np.nan
        return codes, col.cat.categories.tolist()
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan), None


def _table(X: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, list]:
    """Columns ``names`` of ``X`` as one float matrix (as :func:`_codes`: the numeric ones in one block)
    and each column's category labels or None."""
    dtypes = dict(zip(X.columns, X.dtypes))
    where = {n: j for j, n in enumerate(names)}
    categorical = [n for n in names if isinstance(dtypes[n], pd.CategoricalDtype)]
    numeric = [n for n in names if not isinstance(dtypes[n], pd.CategoricalDtype)]
    out = np.empty((len(X), len(names)))
    out[:, [where[n] for n in numeric]] = X[numeric].to_numpy(dtype=float, na_value=np.nan)
    labels: list = [None] * len(names)
    for n in categorical:
        out[:, where[n]], labels[where[n]] = _codes(X[n])
    return out, labels


def _column(X: pd.DataFrame, feature: str) -> list:
    """A feature's values as shown in a reason (labels, floats, None if missing or absent)."""
    if feature not in X:
        return [None] * len(X)
    codes, labels = _codes(X[feature])
    return _shown(codes[:, None], np.zeros((len(X), 1), dtype=np.intp), [labels])[:, 0].tolist()


@_per_model
def _static(model: GradeModel) -> list[dict]:
    """The fixed part of each feature's reason: name, catalogue texts, segment median, unit."""
    unit = _unit(model)
    out = []
    for f in model.features:
        s, ref = spec(f), model.reference.get(f)
        out.append({"feature": f, "en": s.en, "zh": s.zh, "reference": None if ref is None else float(ref),
                    "unit": unit})
    return out


def _top(risk: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the ``k`` largest values per row, largest first, and those values."""
    k = min(k, risk.shape[1])
    if k < risk.shape[1]:
        part = np.argpartition(-risk, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(k), risk.shape)
    vals = np.take_along_axis(risk, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def explain(model: GradeModel, X: pd.DataFrame, k: int = 4, disputed: dict | None = None,
            table: tuple[np.ndarray, list] | None = None) -> tuple[pd.DataFrame, list[list[dict]]]:
    """Grades (as ``model.grade``) and reasons of every row of ``X`` from one pass over the model (:func:`_walk`).
    ``table``: ``X``'s ``model.features`` as :func:`_table` gives them, if the caller has them (one subject's
    per-subject path builds them without the frame: ``features.online.table``)."""
    table = _table(X, model.features) if table is None else table
    contrib, pd_, score = _walk(model, X, table)
    graded = model.scale.apply(pd_, X, score=score)
    return graded, _reasons(model, X, contrib, graded, k, disputed, table)


def reasons(model: GradeModel, X: pd.DataFrame, graded: pd.DataFrame | None = None, k: int = 4,
            disputed: dict | None = None) -> list[list[dict]]:
    """Up to ``k`` reasons per row of ``X`` (in order): the factors that raised risk most.

    Each reason: ``feature, en, zh, value`` (category label for categorical features, None if missing),
    ``reference`` (segment median, None for categorical), ``contribution`` (log-odds > 0, or points lost
    < 0), ``unit`` ("log-odds" | "points") and ``disputed_records`` (ids of records under open objection
    that change this feature, from ``build_features(..., with_disputed=True)``). A binding rule
    (``graded["override"]``; graded as :func:`explain` does if not given) comes first, with the rule's
    texts (record, authority and start filled in) and more keys: ``override: True``, ``cap`` (the grade it
    sets), ``policy`` ("default" | "cap"), ``record_id``, ``authority`` ({en, zh}) and ``since`` (ISO date
    or None); it counts towards ``k`` and its feature is not repeated.
    """
    if graded is None:
        return explain(model, X, k, disputed)[1]
    return _reasons(model, X, _matrix(model, X), graded, k, disputed)


def _reasons(model: GradeModel, X: pd.DataFrame, contrib: np.ndarray, graded: pd.DataFrame, k: int,
             disputed: dict | None, table: tuple[np.ndarray, list] | None = None) -> list[list[dict]]:
    """The reasons of :func:`reasons`, vectorised: only the dicts themselves are built in Python
    (``table``: :func:`_table` of ``X`` over ``model.features``, if the caller has it)."""
    used = _used(model)
    n = len(X)
    if k <= 0 or not len(used):
        return [[] for _ in range(n)]
    sign = 1.0 if model.kind == "lightgbm" else -1.0
    risk = sign * contrib[:, used]
    rules = graded["override"].to_numpy()
    bound = np.flatnonzero(pd.notna(rules))
    where = {model.features[u]: i for i, u in enumerate(used)}
    for r in bound:  # the override's feature is told once, as the override
        if rules[r].feature in where:
            risk[r, where[rules[r].feature]] = -np.inf
    idx, top = _top(risk, k)
    limit = np.full(n, k)
    limit[bound] -= 1
    keep = (top > 0) & (np.arange(idx.shape[1]) < limit[:, None])
    values, labels = _table(X, model.features) if table is None else table
    shown = _shown(np.take_along_axis(values[:, used], idx, axis=1), idx, [labels[u] for u in used])
    every = _static(model)
    base = [every[u] for u in used]
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    enabled = gc.isenabled()
    gc.disable()  # hundreds of thousands of small dicts: generational GC passes would dominate
    try:
        flat = [{**base[j], "value": v, "contribution": c, "disputed_records": []}
                for j, v, c in zip(idx[keep].tolist(), shown[keep].tolist(), (sign * top[keep]).tolist())]
        out = [flat[a:b] for a, b in zip([0, *ends[:-1]], ends)]
    finally:
        if enabled:
            gc.enable()
    unit, values = _unit(model), {}
    record, since = graded["record"].to_numpy(dtype=float), graded["since"].to_numpy(dtype=float)
    for r in bound.tolist():
        rule = rules[r]
        if rule.feature not in values:
            values[rule.feature] = _column(X, rule.feature)
        j = model.features.index(rule.feature) if rule.feature in model.features else None
        ref = model.reference.get(rule.feature)
        out[r].insert(0, {"feature": rule.feature, "en": rule.text("en", record[r], since[r]),
                          "zh": rule.text("zh", record[r], since[r]), "value": values[rule.feature][r],
                          "reference": None if ref is None else float(ref),
                          "contribution": 0.0 if j is None else float(contrib[r, j]), "unit": unit,
                          "override": True, "cap": rule.cap, "policy": rule.action,
                          "record_id": None if np.isnan(record[r]) else int(record[r]),
                          "authority": dict(rule.authority), "since": iso_day(since[r]), "disputed_records": []})
    if disputed:
        for r in np.flatnonzero(X.index.isin(list(disputed))).tolist():
            records = disputed[X.index[r]]
            for reason in out[r]:
                reason["disputed_records"] = [rid for rid, feats in records if reason["feature"] in feats]
    return out


def _shown(values: np.ndarray, idx: np.ndarray, labels: list) -> np.ndarray:
    """Values as shown in reasons: floats, category labels, None for missing (an object array)."""
    out = values.astype(object)
    for j, lab in enumerate(labels):
        if lab is not None:
            at = (idx == j) & ~np.isnan(values)
            out[at] = np.asarray(lab, dtype=object)[values[at].astype(int)]
    out[np.isnan(values)] = None
    return out
