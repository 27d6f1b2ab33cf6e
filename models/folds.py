"""Inner folds of a table's training rows: the one set of folds every candidate model is judged on.

Every family fitted inside an outer fold (``training.candidates``) takes ``inner_folds`` and cuts the same
folds from the same labels and seed, so that their out-of-fold log-odds are comparable and can be blended.
With ``groups`` (one subject's rows at several as-of dates share a label) a group's rows are never split:
rows of the same subject on both sides flatter a large model, whose early stopping then stops late.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

HOLDOUT_ABOVE = 50_000  # rows: above this, the first inner fold alone validates (a third of many rows)


def inner_splits(y, seed: int, folds: int = 3, groups=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified inner folds of the training rows (of their ``groups``, if given); when there are many rows,
    one holdout of a third (of a half with ``folds=2``)."""
    y = np.asarray(y)
    many = len(y) > HOLDOUT_ABOVE
    splits = list(stratified_folds(min(3, folds) if many else folds, seed, groups).split(np.zeros(len(y)), y, groups))
    return splits[:1] if many else splits


def least_class(y, groups=None) -> int:
    """Rows of the rarer class (of a binary ``y``); with ``groups``, the groups it has rows in (copies of a row
    count once: they stay on one side of every split)."""
    y = np.asarray(y).astype(int)
    if groups is None:
        return int(np.bincount(y, minlength=2).min())
    return min(len(np.unique(np.asarray(groups)[y == c])) for c in (0, 1))


def nested_minimum(outer: int, inner: int = 2) -> int:
    """Fewest rows of each class that ``outer`` stratified folds can split so that every test fold holds one
    and every training part ``inner`` (one for each of ``inner`` folds: a fold without both classes has no
    AUC), ``n >= outer`` and ``n - ceil(n / outer) >= inner``."""
    if outer < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, not {outer}")
    n = outer
    while n - -(-n // outer) < inner:
        n += 1
    return n


def holdout(y, share: float, seed: int, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (kept, held out): a stratified ``share`` of the rows, or with ``groups`` about that share of
    the groups (stratified by their outcomes, every row of a group on one side)."""
    y = np.asarray(y)
    if groups is None:
        return tuple(train_test_split(np.arange(len(y)), test_size=share, stratify=y, random_state=seed))
    return next(stratified_folds(max(2, round(1 / share)), seed, groups).split(np.zeros(len(y)), y, groups))


def stratified_folds(k: int, seed: int, groups=None):
    """``k`` shuffled stratified folds (of ``groups``, if given: a group's rows on one side)."""
    return (StratifiedKFold if groups is None else StratifiedGroupKFold)(k, shuffle=True, random_state=seed)


def covered_auc(y, decision) -> float:
    """AUC over the rows that have an out-of-fold value: the Mann-Whitney statistic of the ranks (ties at
    their mean rank, as ``roc_auc_score``, which costs 3 to 30 times as much: the searches call this often)."""
    decision = np.asarray(decision, dtype=float)
    seen = ~np.isnan(decision)
    bad = np.asarray(y)[seen] == 1
    n_bad, n_good = int(bad.sum()), int((~bad).sum())
    if not n_bad or not n_good:
        raise ValueError("an AUC needs rows of both classes")
    return float((rankdata(decision[seen])[bad].sum() - n_bad * (n_bad + 1) / 2) / (n_bad * n_good))
