"""Per-subject contributions and reason codes for a :class:`~models.bundle.GradeModel`.

Contributions are the estimator's (``Estimator.walk``, in its ``unit``) and add up to the model's output
for each subject: in log-odds (LightGBM's TreeSHAP) a row sums to ``logit(PD)``; in points (a scorecard's,
each relative to the characteristic's best bin, the adverse-action reference) a row sums to the score.
Features the model does not use contribute 0.

Reasons are the top factors that raised risk (positive log-odds, or points lost), with the model's texts
(the catalogue's when it was trained), the subject's value and the segment median. A binding policy rule (``models.grades``: in default, or a cap
that moved the grade) is always the first reason, its sentence naming the record that shows it, the
authority behind it and, for a default, the day it began; for a subject in default the grade is policy and
the factors that follow explain only the model's grade.
"""
from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from creditgrade.memory import gc_paused
from creditgrade.models.bundle import GradeModel
from creditgrade.models.estimator import RISK_SIGN, Table, codes, read_table
from creditgrade.models.grades import iso_day


def contributions(model: GradeModel, X: pd.DataFrame) -> pd.DataFrame:
    """Contributions per feature plus ``bias`` (columns ``model.features + ["bias"]``, index of ``X``)."""
    return pd.DataFrame(model.estimator.walk(X).contributions, index=X.index, columns=[*model.features, "bias"])


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
    """Positions of the features that can contribute (``Estimator.used_features_``)."""
    used = set(model.estimator.used_features_)
    return np.array([j for j, f in enumerate(model.features) if f in used], dtype=np.intp)


@_per_model
def _position(model: GradeModel) -> dict[str, int]:
    """Each feature's position in ``model.features``."""
    return {f: j for j, f in enumerate(model.features)}


@_per_model
def _where(model: GradeModel) -> dict[str, int]:
    """Each feature that can contribute by its position among those (``_used``)."""
    return {model.features[u]: i for i, u in enumerate(_used(model))}


def _column(X: pd.DataFrame, feature: str) -> list:
    """A feature's values as shown in a reason (labels, floats, None if missing or absent)."""
    if feature not in X:
        return [None] * len(X)
    values, labels = codes(X[feature])
    return _shown(values[:, None], np.zeros((len(X), 1), dtype=np.intp), [labels])[:, 0].tolist()


@_per_model
def _static(model: GradeModel) -> list[dict]:
    """The fixed part of each feature's reason: name, the model's texts, segment median, unit."""
    out = []
    for f in model.features:
        ref = model.reference.get(f)
        out.append({"feature": f, **model.texts[f], "reference": None if ref is None else float(ref),
                    "unit": model.unit})
    return out


def _top(risk: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the ``k`` largest values per row (or of one row, 1-d), largest first, and those
    values."""
    k = min(k, risk.shape[-1])
    if risk.ndim == 1:  # one row: the same steps, indexed directly (take_along_axis costs more than they do)
        part = np.argpartition(-risk, k - 1)[:k] if k < len(risk) else np.arange(k)
        order = np.argsort(-risk[part], kind="stable")
        return part[order], risk[part[order]]
    if k < risk.shape[1]:
        part = np.argpartition(-risk, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(k), risk.shape)
    vals = np.take_along_axis(risk, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def explain(model: GradeModel, X: pd.DataFrame, k: int = 4, disputed: dict | None = None,
            table: Table | None = None) -> tuple[pd.DataFrame, list[list[dict]]]:
    """Grades (as ``model.grade``) and reasons of every row of ``X`` from one pass over the model
    (``Estimator.walk``: LightGBM's trees walked once, the PD the logistic of the contributions' sum; a card's
    bins found once). ``table``: ``X``'s ``model.features`` as ``models.estimator.read_table`` gives them, if
    the caller has them."""
    table = read_table(X, model.features) if table is None else table
    walk = model.estimator.walk(X, table)
    graded = model.grade_walk(X, walk)
    return graded, _reasons(model, X.index.tolist(), walk.contributions, graded, k, disputed, table,
                            lambda feature: _column(X, feature))


def explain_row(model: GradeModel, key: str, columns: Mapping, table: Table, k: int = 4,
                disputed: list | None = None) -> tuple[dict, list[dict]]:
    """One subject's grade and reasons as :func:`explain` gives them, without a frame: ``columns`` its
    features by name (one value each; the policy rules read them), ``table`` its ``model.features`` as
    ``read_table`` gives them (one row), ``disputed`` its ``[(record_id, [features]), ...]``. The grade is
    a dict of plain values (``pd, score, model_grade, grade, override, record, since``)."""
    walk = model.estimator.walk(None, table)
    out = model.outcome_one({n: _number(columns[n][0]) for n in model.scale.inputs}, walk)
    contrib, used, why = walk.contributions[0], _used(model), []
    if k > 0 and len(used):  # as _reasons does for a batch, on plain values
        sign, rule, (values, labels), every = RISK_SIGN[model.unit], out["override"], table, _static(model)
        risk = sign * contrib[used]
        if rule is not None and rule.feature in _where(model):  # told once, as the override
            risk[_where(model)[rule.feature]] = -np.inf
        idx, top = _top(risk, k)
        for j, t in zip(idx.tolist()[:k - (rule is not None)], top.tolist()):
            if t <= 0:
                break
            v, shown = values[0, used[j]], labels[used[j]]
            why.append({**every[used[j]], "value": None if np.isnan(v) else float(v) if shown is None else
                        shown[int(v)], "contribution": sign * t, "disputed_records": []})
        if rule is not None:
            value = _plain(columns[rule.feature][0]) if rule.feature in columns else None
            why.insert(0, _rule_reason(model, rule, out["record"], out["since"], value, contrib))
    for reason in why if disputed else ():
        reason["disputed_records"] = [rid for rid, feats in disputed if reason["feature"] in feats]
    return out, why


def _number(value) -> float:
    """A rule's input as the rules read it: a float, NaN if missing."""
    return math.nan if pd.isna(value) else float(value)


def _plain(value):
    """A rule's number as a reason shows it (rules read numbers): a float, None if missing."""
    return None if pd.isna(value) else float(value)


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
    table = read_table(X, model.features)
    return _reasons(model, X.index.tolist(), model.estimator.walk(X, table).contributions, graded, k, disputed,
                    table, lambda feature: _column(X, feature))


def _reasons(model: GradeModel, keys: list, contrib: np.ndarray, graded, k: int, disputed: dict | None,
             table: Table, rule_values: Callable[[str], list]) -> list[list[dict]]:
    """The reasons of :func:`reasons`, vectorised: only the dicts themselves are built in Python. ``keys``
    the rows' subject keys, ``graded`` their grades (a frame, or ``Scale.outcome``'s arrays), ``table``
    ``read_table`` of their ``model.features``, ``rule_values(feature)`` a rule's feature as shown, per row."""
    used = _used(model)
    n = len(keys)
    if k <= 0 or not len(used):
        return [[] for _ in range(n)]
    sign = RISK_SIGN[model.unit]
    risk = sign * contrib[:, used]
    rules = np.asarray(graded["override"], dtype=object)
    bound = np.flatnonzero(np.not_equal(rules, None))
    where = _where(model)
    for r in bound:  # the override's feature is told once, as the override
        if rules[r].feature in where:
            risk[r, where[rules[r].feature]] = -np.inf
    idx, top = _top(risk, k)
    limit = np.full(n, k)
    limit[bound] -= 1
    keep = (top > 0) & (np.arange(idx.shape[1]) < limit[:, None])
    values, labels = table
    shown = _shown(np.take_along_axis(values[:, used], idx, axis=1), idx, [labels[u] for u in used])
    every = _static(model)
    base = [every[u] for u in used]
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    with gc_paused():  # hundreds of thousands of small dicts: generational GC passes would dominate
        flat = [{**base[j], "value": v, "contribution": c, "disputed_records": []}
                for j, v, c in zip(idx[keep].tolist(), shown[keep].tolist(), (sign * top[keep]).tolist())]
        out = [flat[a:b] for a, b in zip([0, *ends[:-1]], ends)]
    shown_rule = {}
    record, since = np.asarray(graded["record"], dtype=float), np.asarray(graded["since"], dtype=float)
    for r in bound.tolist():
        rule = rules[r]
        if rule.feature not in shown_rule:
            shown_rule[rule.feature] = rule_values(rule.feature)
        out[r].insert(0, _rule_reason(model, rule, float(record[r]), float(since[r]), shown_rule[rule.feature][r],
                                      contrib[r]))
    if disputed:
        for r, key in enumerate(keys):
            if key in disputed:
                for reason in out[r]:
                    reason["disputed_records"] = [rid for rid, feats in disputed[key] if reason["feature"] in feats]
    return out


def _rule_reason(model: GradeModel, rule, record: float, since: float, value, contrib: np.ndarray) -> dict:
    """The reason of a binding policy rule: its texts with the record and start day filled in, the
    subject's value of its feature as shown and the feature's contribution (``contrib``: the row's)."""
    j = _position(model).get(rule.feature)
    ref = model.reference.get(rule.feature)
    return {"feature": rule.feature, "en": rule.text("en", record, since), "zh": rule.text("zh", record, since),
            "value": value, "reference": None if ref is None else float(ref),
            "contribution": 0.0 if j is None else float(contrib[j]), "unit": model.unit, "override": True,
            "cap": rule.cap, "policy": rule.action, "record_id": None if math.isnan(record) else int(record),
            "authority": dict(rule.authority), "since": iso_day(since), "disputed_records": []}


def _shown(values: np.ndarray, idx: np.ndarray, labels: list) -> np.ndarray:
    """Values as shown in reasons: floats, category labels, None for missing (an object array)."""
    out = values.astype(object)
    for j, lab in enumerate(labels):
        if lab is not None:
            at = (idx == j) & ~np.isnan(values)
            out[at] = np.asarray(lab, dtype=object)[values[at].astype(int)]
    out[np.isnan(values)] = None
    return out
