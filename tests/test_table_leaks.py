"""Generic mode's honest figures: a column that alone all but separates the target is left out as a leak (a
copy or a consequence of the outcome) unless --keep names it; copies of a row stay on one side of every
split; and sex and race columns named by a value (HMDA's "male", "black", "hispan") are protected."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgrade.features.errors import CreditgradeError
from creditgrade.models.folds import inner_splits, stratified_folds
from creditgrade.training.table import copy_groups, cross_validate
from creditgrade.training.table_columns import choose_columns, leaks


def _table(n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    strong = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(3 * strong - 1)))).astype(int)
    decided = np.where(rng.random(n) < 0.005, 1 - y, y)  # the decision itself, a few rows recoded
    X = pd.DataFrame({"strong": strong, "noise": rng.normal(size=n), "decision": decided.astype(float),
                      "spend_after": np.where(y == 1, 0.0, rng.gamma(2.0, 50.0, n)),
                      "branch": pd.Categorical(rng.integers(0, n // 3, n).astype(str))})
    return X, y


def test_a_copy_or_a_consequence_of_the_target_is_left_out_and_a_strong_column_is_not():
    X, y = _table()
    found = leaks(X, y)
    assert set(found) == {"decision", "spend_after"}  # strong alone ~0.9: kept
    assert "AUC 0.99" in found["decision"] or "AUC 1.000" in found["decision"]
    assert "--keep" in found["decision"]
    assert "branch" not in found  # 400 categories on 1,200 rows: their bad rates separate anything, not judged
    assert set(leaks(X, y, keep=["spend_after"])) == {"decision"}
    infinite = X.assign(decision=np.where(y == 1, np.inf, -np.inf), noise=X["noise"].where(X["noise"] < 2, np.inf))
    assert set(leaks(infinite, y)) == {"decision", "spend_after"}  # infinite values rank at the ends
    with pytest.raises(CreditgradeError, match="did you mean 'decision'"):
        leaks(X, y, keep=["decison"])
    few = np.r_[np.ones(10, dtype=int), np.zeros(500, dtype=int)]  # 10 bad rows: chance separates them
    assert leaks(pd.DataFrame({"x": np.r_[np.arange(10) + 1000.0, np.arange(500.0)]}), few) == {}


def test_generic_mode_reports_the_leak_and_refuses_a_table_of_nothing_else(tmp_path):
    X, y = _table(600)
    path = tmp_path / "t.csv"
    X[["strong", "decision"]].assign(bad=y).to_csv(path, index=False)
    result = cross_validate(path, "bad", folds=3, families=("scorecard",))
    assert result.features == ["strong"] and "separates the target" in result.excluded["decision"]
    assert result.mean("chosen") < 0.97  # the honest figure, not the leak's
    kept = cross_validate(path, "bad", folds=3, families=("scorecard",), keep=["decision"])
    assert kept.features == ["strong", "decision"] and "decision" not in kept.excluded
    X[["decision"]].assign(bad=y).to_csv(path, index=False)
    with pytest.raises(CreditgradeError, match="no feature columns left.*decision: alone it all but separates"):
        cross_validate(path, "bad", folds=3, families=("scorecard",))
    X[["decision"]].assign(bad=y, gender=y).to_csv(path, index=False)
    with pytest.raises(CreditgradeError, match="--keep overrides the leak check only; gender is left out as its name"):
        cross_validate(path, "bad", folds=3, families=("scorecard",), keep=["gender"])


def test_sex_and_race_columns_named_by_a_value_are_protected():
    df = pd.DataFrame({"loanamt": [10.5, 20.0, 35.5, 20.0], "male": [1, 0, 1, 0], "black": [0, 1, 0, 0],
                       "hispan": [0, 0, 1, 0], "White": [1, 0, 0, 1], "whitelisted": [0, 1, 1, 0], "afam": [1, 0, 0, 1],
                       "bad": [0, 1, 0, 1]})
    columns = choose_columns(df, "bad")
    assert columns.features == ["loanamt", "whitelisted"]  # whole words only
    assert all("protected" in columns.excluded[c] for c in ("male", "black", "hispan", "White", "afam"))


def test_copies_of_a_row_stay_on_one_side_of_every_split(tmp_path):
    X, y = _table(300)
    X = X[["strong", "noise"]]
    assert copy_groups(X, y) == (None, 0)
    tripled, y3 = pd.concat([X] * 3, ignore_index=True), np.tile(y, 3)
    groups, copies = copy_groups(tripled, y3)
    assert copies == 600 and len(set(groups)) == 300
    for train, test in stratified_folds(5, 0, groups).split(tripled, y3, groups):
        assert not set(groups[train]) & set(groups[test])
        inner = inner_splits(y3[train], 0, 4, groups[train])
        assert all(not set(groups[train][a]) & set(groups[train][b]) for a, b in inner)
    tripled.assign(bad=y3).to_csv(tmp_path / "t.csv", index=False)
    assert cross_validate(tmp_path / "t.csv", "bad", folds=3, families=("scorecard",)).copies == 600


def test_features_of_few_values_repeat_by_nature_and_are_split_as_any_rows(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, 300)  # two values: four distinct rows in all, two of each class at most
    y = (rng.random(300) < np.where(x == 1, 0.4, 0.15)).astype(int)
    pd.DataFrame({"owner": x, "bad": y}).to_csv(tmp_path / "t.csv", index=False)
    result = cross_validate(tmp_path / "t.csv", "bad", folds=3, families=("scorecard",))
    assert result.copies == 296 and result.distinct == 2 and result.folds == 3  # measured, no traceback
    X, y = _table(300)
    pd.concat([X[["strong"]]] * 2, ignore_index=True).assign(bad=np.tile(y, 2)).to_csv(tmp_path / "twice.csv",
                                                                                        index=False)
    kept = cross_validate(tmp_path / "twice.csv", "bad", folds=3, families=("scorecard",))
    assert kept.copies == 300 and kept.distinct is None  # enough distinct rows: copies stay together
