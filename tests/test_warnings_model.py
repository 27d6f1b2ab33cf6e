"""The warning model's inputs (changes over the configured lags, the change features as they are, the grade's
PD) and its level thresholds tuned on development snapshots."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgrade.models.warning_model import GRADE, WarningModel, changes, inputs, model_config
from creditgrade.training.warning_model import tune_levels


def test_inputs_are_changes_against_the_same_subjects_past():
    conf = {**model_config(), "lags": {"q": 1, "y": 4}, "as_is": ["_3m"], "grade": True}
    dates = pd.date_range("2023-03-31", periods=5, freq="QE")
    snaps = pd.DataFrame({"subject_key": ["a"] * 5 + ["b"] * 2, "as_of": [*dates, dates[0], dates[2]],
                          "tax_paid_12m": [10.0, 8, 8, 5, 1, 3, 4], "fin_negatives_3m": [0.0, 0, 1, 2, 0, 0, 1],
                          "pd": [0.01, 0.02, 0.05, 0.1, 0.5, 0.02, 0.03]})
    X = inputs(snaps, ["tax_paid_12m", "fin_negatives_3m"], conf)
    assert changes(["tax_paid_12m", "fin_negatives_3m"], conf) == ["fin_negatives_3m"]
    assert X["tax_paid_12m__q"].iloc[1:5].tolist() == [-2, 0, -3, -4]
    assert np.isnan(X["tax_paid_12m__q"].iloc[0]) and np.isnan(X["tax_paid_12m__q"].iloc[6])  # b skips a quarter
    assert X["tax_paid_12m__y"].iloc[4] == -9 and X["tax_paid_12m__y"].iloc[:4].isna().all()
    assert X["fin_negatives_3m__now"].tolist() == snaps["fin_negatives_3m"].tolist()
    assert X[GRADE].iloc[4] == pytest.approx(0.0)  # log-odds of PD 0.5
    assert X[GRADE].iloc[0] == pytest.approx(np.log(0.01 / 0.99))


def test_red_tuned_on_development_snapshots_meets_its_precision():
    rng = np.random.default_rng(0)
    n = 4000
    risk = rng.uniform(size=n)
    y = pd.Series((rng.uniform(size=n) < 0.5 * risk ** 40).astype(int))
    hazards = pd.DataFrame({"h3": risk ** 40 / 2, "h6": risk ** 30 / 2, "h12": risk ** 20 / 2})
    target = model_config()["tuning"]
    levels = tune_levels(hazards, y, "sme")
    red = hazards["h3"] >= levels["red"]["min_hazard"]
    assert y[red].mean() >= target["red_precision"] and red.sum() >= target["red_min"]
    assert {lv: {k: v for k, v in rule.items() if k != "min_hazard"} for lv, rule in levels.items()} == {
        lv: {k: v for k, v in rule.items() if k != "min_hazard"} for lv, rule in model_config()["levels"]["sme"].items()}


def test_levels_by_share_fill_each_scans_budget():
    rng = np.random.default_rng(1)
    day = np.repeat(pd.to_datetime(["2024-03-31", "2024-06-30"]), [400, 600])
    hazards = pd.DataFrame(rng.uniform(size=(1000, 3)), columns=["h3", "h6", "h12"])
    hazards.loc[day == day[-1]] /= 10  # a calm scan: hazards lower, the shares the same
    rules = rng.uniform(size=1000) < 0.05
    model = WarningModel("sme", [], [], {})
    rule = {"red": {"horizon": 3, "min_hazard": 0.99}, "orange": {"horizon": 6, "top": 0.04},
            "yellow": {"horizon": 12, "fill": 0.15}}
    level = model.levels(hazards, rule, day, rules)
    for when, n in ((day[0], 400), (day[-1], 600)):
        at = day == when
        top = (hazards.loc[at, "h6"].rank(ascending=False) <= int(0.04 * n)).to_numpy()
        assert level[at][top].notna().all() and (level[at] == "orange").sum() == (top & (level[at] != "red")).sum()
        assert (level[at].notna() | rules[at]).sum() == int(0.15 * n)  # rules and levels together: the budget
    assert (level == "red").sum() == (hazards["h3"] >= 0.99).sum()
    yellow = hazards.loc[(level == "yellow").to_numpy(), "h12"]
    passed = hazards.loc[(level.isna() & ~rules).to_numpy() & (day == day[0]), "h12"]
    assert yellow[day[(level == "yellow").to_numpy()] == day[0]].min() >= passed.max()


def test_monotone_directions_follow_the_features_risk():
    model = WarningModel("sme", [], [], {})
    assert model.monotone(["tax_paid_12m__y", "fin_negatives_3m__now", GRADE, "fin_loans_open__q"]) == {
        "tax_paid_12m__y": -1, "fin_negatives_3m__now": 1, GRADE: 1, "fin_loans_open__q": 0}
