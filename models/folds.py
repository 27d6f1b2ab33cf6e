"""Inner folds of a table's training rows: the one set of folds every candidate model is judged on.

Every family fitted inside an outer fold (``training.candidates``) takes ``inner_folds`` and cuts the same
folds from the same labels and seed, so that their out-of-fold log-odds are comparable and can be blended.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.model_selection import StratifiedKFold

HOLDOUT_ABOVE = 50_000  # rows: above this, the first inner fold alone validates (a third of many rows)


def inner_splits(y, seed: int, folds: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified inner folds of the training rows; when there are many rows, one holdout of a third."""
    y = np.asarray(y)
    many = len(y) > HOLDOUT_ABOVE
    splits = list(StratifiedKFold(3 if many else folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return splits[:1] if many else splits


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
