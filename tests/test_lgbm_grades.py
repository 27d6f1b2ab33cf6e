"""LightGBM PD model (monotone, calibrated, reproducible, additive contributions) and the grade scales."""
import numpy as np
import pandas as pd
import pytest

from creditgrade.models.grades import scales
from creditgrade.models.lgbm import LGBMPD


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n = 6000
    X = pd.DataFrame({
        "arrears": rng.poisson(0.5, n).astype(float),
        "tax_growth": rng.normal(0, 1, n),
        "noise": rng.normal(0, 1, n),
        "sector": pd.Categorical(rng.choice(["a", "b", "c"], n)),
    })
    X.loc[rng.random(n) < 0.1, "tax_growth"] = np.nan
    logit = -3.2 + 0.8 * X.arrears - 0.6 * X.tax_growth.fillna(0) + (X.sector == "c") * 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def model(data):
    X, y = data
    return LGBMPD(monotone={"arrears": 1, "tax_growth": -1}, leaves_grid=(4, 8), max_rounds=200).fit(X, y)


def test_monotone_constraints_hold_after_fitting(model, data):
    X, _ = data
    rows = X.sample(200, random_state=1)
    for feature, sign in (("arrears", 1), ("tax_growth", -1)):
        grid = np.linspace(X[feature].min(), X[feature].max(), 25)
        preds = []
        for v in grid:
            probe = rows.copy()
            probe[feature] = v
            preds.append(model.decision_function(probe))
        steps = np.diff(np.array(preds), axis=0) * sign
        assert (steps >= -1e-12).all(), feature


def test_contributions_add_up_to_log_odds(model, data):
    X, _ = data
    contrib = model.contributions(X)
    np.testing.assert_allclose(contrib.sum(axis=1), model.decision_function(X), atol=1e-6)


def test_reproducible_for_a_seed(data, model):
    X, y = data
    again = LGBMPD(monotone={"arrears": 1, "tax_growth": -1}, leaves_grid=(4, 8), max_rounds=200).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert model.size["trees"] >= 1 and len(model.size_trials_) == 2


def test_calibrated_on_held_out(model, data):
    X, y = data
    pd_ = model.predict_proba(X)[:, 1]
    assert abs(pd_.mean() - y.mean()) < 0.02


def test_advanced_monotone_method_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="advanced"):
        LGBMPD(monotone_method="advanced").fit(X, y)


def test_sme_scale_bands_and_scores():
    sme = scales()["sme"]
    pd_ = np.array([0.0005, 0.002, 0.004, 0.009, 0.015, 0.03, 0.05, 0.1, 0.5])
    assert list(sme.grade(pd_)) == ["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C"]
    assert sme.score(np.array([1 / 51]))[0] == 600          # base odds 50:1 -> base points
    assert sme.score(np.array([1 / 101]))[0] == 620         # odds doubled -> + PDO
    assert sme.order[-1] == "D"


def test_household_and_practitioner_score_bands():
    hh, pr = scales()["household"], scales()["practitioner"]
    assert list(hh.grade(None, np.array([85, 80, 79, 70, 65, 59, 0]))) == ["AAA", "AAA", "AA", "AA", "A", "NR", "NR"]
    assert list(pr.grade(None, np.array([95, 90, 80, 50, 39]))) == ["A", "A", "B", "C", "D"]
    assert hh.label("NR", "zh") == "未评级"
    s = hh.score(np.array([hh.pd_at_score(72.0)]))
    assert s[0] == 72


def test_cap_rule_caps_grade_and_is_reported_with_its_record():
    sme = scales()["sme"]
    feats = _policy_inputs(sme, 3)
    feats.loc[["x", "z"], "list_safety_blacklist"] = 1.0
    feats.loc[["x", "z"], "list_safety_blacklist_record"] = [7.0, 8.0]
    out = sme.apply(np.array([0.0005, 0.0005, 0.5]), feats)
    assert list(out.grade) == ["CCC", "AAA", "C"]
    assert out.loc["x", "override"].feature == "list_safety_blacklist" and out.loc["x", "record"] == 7
    assert out.loc["z", "override"] is None      # already C: the rule does not bind the grade
    assert out.loc["x", "model_grade"] == "AAA"


def test_missing_rule_input_is_an_error_not_a_silent_pass():
    sme = scales()["sme"]
    with pytest.raises(KeyError, match="list_dishonest_debtor.* is not a column of the feature matrix"):
        sme.apply(np.array([0.01]), pd.DataFrame({"list_safety_blacklist": [1.0]}))


def _policy_inputs(scale, n: int) -> pd.DataFrame:
    """Every input the scale's rules read, none of them holding (index x, y, z...)."""
    cols = {c for r in scale.rules for c in (r.feature, r.evidence, r.since) if c}
    return pd.DataFrame({c: np.zeros(n) if c in {r.feature for r in scale.rules} else np.full(n, np.nan)
                         for c in sorted(cols)}, index=list("xyzuvw")[:n])
