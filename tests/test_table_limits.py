"""Generic mode on awkward shapes: few rows of a class (the nested design's minimum, fewer inner folds, no
blend), wide tables (columns screened inside the training part), and the scorecard's VIF at width."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold

from creditgrade.features.errors import CreditgradeError
from creditgrade.models import folds as folds_module
from creditgrade.models.folds import nested_minimum
from creditgrade.models.grades import scales
from creditgrade.models.selection import vif
from creditgrade.training.candidates import BLEND, FOLDS, SCREEN, choose, screen
from creditgrade.training.table import POINTS_SCALE, cross_validate, table_specs
from creditgrade.training.table_columns import config


def rare_table(n: int, bads: int, columns: int = 2, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, columns)), columns=[f"c{j}" for j in range(columns)])
    df["y"] = 0
    df.loc[rng.choice(n, bads, replace=False), "y"] = 1
    df["c0"] += df["y"]  # some signal
    return df


def test_nested_minimum_is_the_fewest_rows_stratified_folds_need():
    """Every outer test fold gets a row of the class and every training part two; one row fewer fails."""
    for outer in range(2, 11):
        need = nested_minimum(outer)
        for n in (need - 1, need):
            y = np.r_[np.ones(n), np.zeros(10 * outer)].astype(int)
            splits = list(StratifiedKFold(outer).split(y, y)) if n >= outer else []
            works = bool(splits) and all(y[test].sum() >= 1 and y[train].sum() >= 2 for train, test in splits)
            assert works == (n == need), (outer, n)


def test_too_few_rows_of_a_class_is_a_clear_error_naming_fewer_folds(tmp_path):
    path = tmp_path / "rare.csv"
    rare_table(60, 4).to_csv(path, index=False)
    with pytest.raises(CreditgradeError, match=r"at least 5 rows of each class.*use --folds 4 / 请改用 --folds 4"):
        cross_validate(path, "y", folds=5, families=("scorecard",))
    rare_table(60, 3).to_csv(path, index=False)  # two folds need four rows, three folds three
    with pytest.raises(CreditgradeError, match="has 3: use --folds 3 / 请改用 --folds 3"):
        cross_validate(path, "y", folds=2, families=("scorecard",))
    rare_table(60, 2).to_csv(path, index=False)
    with pytest.raises(CreditgradeError, match="no cross-validation is possible: at least 3"):
        cross_validate(path, "y", folds=2, families=("scorecard",))


@pytest.mark.parametrize("bads, outer", [(4, 2), (5, 2), (7, 3), (6, 5)])
def test_few_bad_rows_get_fewer_inner_folds_with_a_note(tmp_path, bads, outer):
    path = tmp_path / "rare.csv"
    rare_table(80, bads).to_csv(path, index=False)
    result = cross_validate(path, "y", folds=outer, families=("scorecard", "lightgbm"), budget=600, trials=1)
    assert result.folds == outer and set(result.auc) == {"scorecard", "lightgbm", BLEND, "chosen"}
    assert all(FOLDS in notes for notes in result.notes)


def test_any_training_part_with_two_rows_of_each_class_chooses_among_all_candidates():
    """Property over the rows of the rarer class (2 to 12 of 40): every candidate and the blend are judged,
    on one inner fold per such row while there are fewer than the folds asked."""
    X = pd.DataFrame({"c0": np.random.default_rng(0).normal(size=40)})
    asked = config()["candidates"]["inner_folds"]
    for bads in range(2, 13):
        y = np.r_[np.ones(bads), np.zeros(40 - bads)].astype(int)
        choice = choose(X, y, X.iloc[:5], table_specs(X), scales()[POINTS_SCALE], families=("scorecard", "lightgbm"),
                        trials=1)
        assert set(choice.inner_auc) == {"scorecard", "lightgbm", BLEND}, bads
        note = choice.notes.get(FOLDS, "")
        assert note.startswith(f"{bads} inner folds") if bads < asked else not note, bads


def test_a_blend_with_too_few_validated_rows_is_skipped_with_a_note(monkeypatch):
    """Above ``HOLDOUT_ABOVE`` rows one holdout validates: with two bad rows it holds one, too few to weigh a
    blend on two folds."""
    monkeypatch.setattr(folds_module, "HOLDOUT_ABOVE", 40)
    df = rare_table(60, 2)
    X, y = df.drop(columns="y"), df["y"].to_numpy()
    choice = choose(X, y, X, table_specs(X), scales()[POINTS_SCALE], families=("scorecard", "ebm"))
    assert BLEND not in choice.outer and "not tried" in choice.notes[BLEND] and FOLDS in choice.notes


def test_a_wide_training_part_keeps_its_most_informative_columns_beyond_chance(monkeypatch):
    """Twelve columns of decreasing signal and three of noise, at most ten kept: the strongest first, no noise;
    of noise alone, only the best column (none beats chance)."""
    monkeypatch.setitem(config()["limits"], "screen_above", most := 10)
    df = rare_table(300, 90, columns=15)
    for j in range(1, 12):
        df[f"c{j}"] += (1.0 - j / 20) * df["y"]
    X, y = df.drop(columns="y"), df["y"].to_numpy()
    kept = screen(X, y, table_specs(X), ())
    assert len(kept) == most and kept[0] == "c0" and set(kept) <= {f"c{j}" for j in range(12)}
    assert screen(X.iloc[:, :most], y, table_specs(X.iloc[:, :most]), ()) == list(X.columns[:most])
    noise = rare_table(300, 90, columns=15, seed=1).drop(columns="y")  # another table's labels: noise here
    assert len(screen(noise, y, table_specs(noise), ())) == 1
    choice = choose(X.iloc[:240], y[:240], X.iloc[240:], table_specs(X), scales()[POINTS_SCALE],
                    families=("scorecard",))
    assert " of 15 kept" in choice.notes[SCREEN] and len(choice.outer["scorecard"]) == 60


def test_vif_is_the_regression_on_the_other_columns_and_the_cap_for_a_dependency():
    rng = np.random.default_rng(3)
    woe = rng.normal(size=(200, 6))
    woe[:, 5] += woe[:, 0]
    corr = np.corrcoef(woe, rowvar=False)
    for j in range(6):
        others = np.delete(np.arange(6), j)
        r2 = corr[others, j] @ np.linalg.solve(corr[np.ix_(others, others)], corr[others, j])
        assert vif(woe)[j] == pytest.approx(1 / (1 - r2), rel=1e-9)
    dependent = np.c_[woe, woe[:, 1] + woe[:, 2]]
    factors = vif(dependent)
    assert (factors[[1, 2, 6]] == 1e12).all() and (factors[[0, 3, 4, 5]] < 10).all()


def test_fewer_than_two_folds_is_a_clear_error_not_a_hang(tmp_path):
    from creditgrade.training.table import cross_validate
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.random.default_rng(0).normal(size=40), "y": [0, 1] * 20}).to_csv(path, index=False)
    for folds in (1, 0):
        with pytest.raises(CreditgradeError, match="at least 2 folds"):
            cross_validate(path, "y", folds=folds)


@pytest.mark.parametrize("args, message", [
    (["--folds", "1"], "argument --folds: 1 is not between 2 and 100"),
    (["--seed", "-1"], "argument --seed: -1 is not between 0 and 4294967295"),
    (["--budget", "0"], "argument --budget: 0 is not a number of seconds above 0"),
    (["--budget", "nan"], "argument --budget: nan is not a number of seconds above 0"),
    (["--special", "-7", "abc"], "argument --special: 'abc' is not a number / 不是数值"),
    (["--special", "inf"], "argument --special: inf is not a finite number"),
])
def test_cli_rejects_out_of_range_numbers_naming_the_option(args, message, capsys):
    from creditgrade.cli import main
    with pytest.raises(SystemExit) as stop:
        main(["train", "--table", "t.csv", "--target", "y", *args])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_a_training_part_whose_rarer_class_is_one_set_of_copies_splits_them_as_any_rows():
    df = rare_table(120, 6)
    X, y = df.drop(columns="y"), df["y"].to_numpy()
    groups = np.arange(len(y))
    groups[y == 1] = -1  # the six bad rows one set of copies: no inner split could hold both classes
    choice = choose(X, y, X.iloc[:5], table_specs(X), scales()[POINTS_SCALE], families=("scorecard",), groups=groups)
    assert set(choice.inner_auc) == {"scorecard"} and "counted once" not in choice.notes.get(FOLDS, "")
