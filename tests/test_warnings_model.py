"""The warning model's inputs (changes over the configured lags, the change features as they are, the grade's
PD) and its level thresholds tuned on development snapshots."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgrade.models.warning_model import GRADE, changes, inputs, model_config
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


def test_levels_tuned_on_development_snapshots_meet_their_targets():
    rng = np.random.default_rng(0)
    n = 4000
    risk = rng.uniform(size=n)
    y = pd.Series((rng.uniform(size=n) < 0.5 * risk ** 40).astype(int))
    hazards = pd.DataFrame({"h3": risk ** 40 / 2, "h6": risk ** 30 / 2, "h12": risk ** 20 / 2})
    rules = pd.Series(rng.uniform(size=n) < 0.03)
    target = model_config()["tuning"]
    levels = tune_levels(hazards, rules, y, "sme")
    red = hazards["h3"] >= levels["red"]["min_hazard"]
    assert y[red].mean() >= target["red_precision"] and red.sum() >= target["red_min"]
    assert (hazards["h6"] >= levels["orange"]["min_hazard"]).mean() == pytest.approx(target["orange_share"], abs=0.002)
    warned = rules | red | (hazards["h6"] >= levels["orange"]["min_hazard"]) | (
        hazards["h12"] >= levels["yellow"]["min_hazard"])
    assert warned.mean() == pytest.approx(target["any_share"], abs=0.002)
    assert {lv: rule["horizon"] for lv, rule in levels.items()} == {
        lv: rule["horizon"] for lv, rule in model_config()["levels"]["sme"].items()}
