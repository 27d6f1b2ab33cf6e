"""Held-out rows keep a subject's rows together, by labels that do not depend on subject keys."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from creditgrade.models.folds import holdout, inner_splits
from creditgrade.models.lgbm import LGBMPD
from creditgrade.training.pipeline import subject_groups


def panel(subjects: int, dates: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Subjects seen at several dates: a trait of their own (constant over dates) decides their outcome at
    every date, with a weak signal in a second feature; the group label is the subject."""
    rng = np.random.default_rng(seed)
    trait = rng.normal(size=subjects)
    bad = rng.random(subjects) < 1 / (1 + np.exp(3 - rng.normal(size=subjects)))
    subject = np.repeat(np.arange(subjects), dates)
    X = pd.DataFrame({"trait": trait[subject], "signal": bad[subject] * 0.3 + rng.normal(size=len(subject))})
    return X, bad[subject].astype(int), subject


def test_a_group_is_held_out_whole_stratified_and_the_same_every_time():
    X, y, groups = panel(400, 5, seed=1)
    kept, held = holdout(y, 0.25, seed=0, groups=groups)
    assert set(groups[kept]).isdisjoint(groups[held])
    assert len(kept) + len(held) == len(y) and 0.2 < len(set(groups[held])) / 400 < 0.3
    assert 0.15 < y[held].mean() / y.mean() * len(held) / len(y) < 0.35  # about a quarter of the bad rows
    np.testing.assert_array_equal(held, holdout(y, 0.25, seed=0, groups=groups)[1])
    for train, valid in inner_splits(y, seed=0, folds=3, groups=groups):
        assert set(groups[train]).isdisjoint(groups[valid])


def test_without_groups_rows_are_held_out_as_before():
    y = np.r_[np.zeros(90), np.ones(10)].astype(int)
    kept, held = holdout(y, 0.25, seed=3)
    assert len(held) == 25 and y[held].sum() in (2, 3) and not set(kept) & set(held)


def test_rows_of_held_out_subjects_measure_what_new_subjects_see():
    """Holding out rows of subjects the booster trains on rewards memorising them (the trait here): its
    held-out AUC overstates the AUC on new subjects; holding out whole subjects does not."""
    X, y, groups = panel(600, 6, seed=2)
    X_new, y_new, _ = panel(600, 1, seed=3)
    rows = LGBMPD(leaves_grid=(16,), min_child_samples=5, num_threads=1).fit(X, y)
    subjects = LGBMPD(leaves_grid=(16,), min_child_samples=5, num_threads=1).fit(X, y, groups=groups)
    new = {name: roc_auc_score(y_new, m.predict_pd(X_new)) for name, m in (("rows", rows), ("subjects", subjects))}
    assert rows.size_trials_[0]["auc"] > new["rows"] + 0.15
    assert abs(subjects.size_trials_[0]["auc"] - new["subjects"]) < 0.1
    assert subjects.size_trials_[0]["trees"] < rows.size_trials_[0]["trees"]


def test_subject_groups_share_a_label_per_subject_and_ignore_its_key():
    X, y, subject = panel(50, 3, seed=4)
    rows = X.assign(defaulted=y).set_axis(pd.Index([f"key-{s}" for s in subject], name="subject_key"))
    labels = subject_groups(rows, ["trait", "signal"])
    assert len(set(labels)) == 50 and all(len(set(labels[subject == s])) == 1 for s in range(50))
    rekeyed = rows.set_axis(pd.Index([f"other-{s * 7}" for s in subject], name="subject_key"))
    np.testing.assert_array_equal(subject_groups(rekeyed, ["trait", "signal"]), labels)
