"""Out-of-time evaluation on simulated data with known PDs."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from creditgrade.training import evaluate as ev

ORDER = ["A", "B", "C", "D", "E"]


@pytest.fixture(scope="module")
def sample():
    """20 000 subjects whose PDs are the true default probabilities, with PD-banded grades."""
    rng = np.random.default_rng(7)
    pds = 1 / (1 + np.exp(-(rng.normal(size=20_000) * 1.2 - 3)))
    y = (rng.random(pds.size) < pds).astype(int)
    grade = np.array(ORDER)[np.searchsorted([0.02, 0.04, 0.08, 0.16], pds)]
    return y, pds, grade


def test_discrimination_matches_sklearn(sample):
    y, pds, _ = sample
    assert ev.auc(y, pds) == pytest.approx(roc_auc_score(y, pds))
    assert ev.gini(y, pds) == pytest.approx(2 * roc_auc_score(y, pds) - 1)
    fpr, tpr, _ = roc_curve(y, pds)
    assert ev.ks(y, pds) == pytest.approx(np.max(tpr - fpr))
    assert 0 <= ev.ks(y, pds) <= 1
    assert ev.brier(y, pds) < ev.brier(y, np.full(pds.size, y.mean()))
    assert ev.log_loss(y, pds) < ev.log_loss(y, np.full(pds.size, y.mean()))


@pytest.mark.parametrize("y, pds, message", [
    ([0, 0, 0], [0.1, 0.2, 0.3], "both defaulted and non-defaulted"),
    ([0, 1, 0], [0.1, np.nan, 0.3], "NaN"),
    ([0, 1], [0.1, 0.2, 0.3], "y has 2 values but the predictions have 3"),
    ([0, 2, 1], [0.1, 0.2, 0.3], "only 0"),
])
def test_bad_input_is_rejected(y, pds, message):
    with pytest.raises(ValueError, match=message):
        ev.evaluate(y, pds)


def test_psi_same_and_shifted():
    rng = np.random.default_rng(1)
    base = rng.normal(size=10_000)
    assert ev.psi(base, rng.normal(size=10_000)) < 0.01
    assert ev.psi(base, rng.normal(1.0, size=10_000)) > 0.25
    assert ev.psi(np.zeros(100), np.zeros(50)) == pytest.approx(0)
    assert ev.psi(np.zeros(100), np.ones(50)) > 0.25
    with_nan = np.where(base > 0.5, np.nan, base)
    assert ev.psi(base, with_nan) > 0.25


def test_psi_table_numeric_and_categorical():
    rng = np.random.default_rng(2)
    n = 5_000

    def frame(shift, p_north):
        return pd.DataFrame({
            "income": rng.lognormal(shift, 1, n),
            "ties": rng.integers(0, 3, n).astype(float),
            "region": pd.Series(rng.choice(["north", "south"], n, p=[p_north, 1 - p_north])),
            "sector": pd.Categorical(rng.choice(["farm", "shop", None], n)),
        })

    table = ev.psi_table(frame(0, 0.5), frame(1, 0.1)).set_index("feature")
    assert table.loc["income", "psi"] > 0.25 and table.loc["income", "status"] == "shift"
    assert table.loc["region", "psi"] > 0.25 and table.loc["region", "kind"] == "categorical"
    assert table.loc["ties", "psi"] < 0.01 and table.loc["sector", "psi"] < 0.01
    assert table.loc["ties", "kind"] == "numeric" and table.loc["sector", "kind"] == "categorical"
    with pytest.raises(ValueError, match="income"):
        ev.psi_table(frame(0, 0.5), frame(0, 0.5).drop(columns="income"))


def test_hosmer_lemeshow(sample):
    y, pds, _ = sample
    calibrated = ev.hosmer_lemeshow(y, pds)
    assert calibrated.dof == 10 and calibrated.p_value > 0.05
    assert ev.hosmer_lemeshow(y, pds / 2).p_value < 1e-6
    assert ev.hosmer_lemeshow(y, pds, fitted=True).dof == 8


def test_binomial_flags_miscalibrated_grade(sample):
    y, pds, grade = sample
    assert ev.binomial_test_by_grade(y, pds, grade, ORDER)["calibrated"].all()
    halved = np.where(grade == "C", pds / 2, pds)
    table = ev.binomial_test_by_grade(y, halved, grade, ORDER).set_index("grade")
    assert list(table.index) == ORDER
    assert not table.loc["C", "calibrated"] and table.loc["C", "p_value"] < 1e-6
    assert table.drop(index="C")["calibrated"].all()
    assert table.loc["C", "n"] == (grade == "C").sum()


def test_default_rate_by_grade_monotone(sample):
    y, _, grade = sample
    table = ev.default_rate_by_grade(y, grade, ORDER)
    assert list(table["grade"]) == ORDER and table["n"].sum() == y.size
    assert ev.is_monotone(table)
    shuffled = np.random.default_rng(3).permutation(grade)
    assert not ev.is_monotone(ev.default_rate_by_grade(y, shuffled, ORDER))


def test_default_rate_ignores_small_and_empty_grades():
    table = ev.default_rate_by_grade([0, 1, 0, 0], ["A", "A", "B", "B"], ["AA", "A", "B"])
    assert table.loc[0, "n"] == 0 and np.isnan(table.loc[0, "rate"])
    assert not ev.is_monotone(table, min_n=1)
    assert ev.is_monotone(table, min_n=3)
    with pytest.raises(ValueError, match="not in the given order"):
        ev.default_rate_by_grade([0, 1], ["A", "Z"], ["A", "B"])


def test_lift_gains(sample):
    y, pds, _ = sample
    table = ev.lift_gains_table(y, pds)
    assert len(table) == 10 and table["n"].sum() == y.size
    assert table["gains"].iloc[-1] == pytest.approx(1.0)
    assert table["gains"].is_monotonic_increasing
    assert table["lift"].iloc[0] > 2 and table["mean_pd"].is_monotonic_decreasing
    assert table["cumulative_lift"].iloc[-1] == pytest.approx(1.0)


def test_evaluate_is_json_and_renders(sample):
    y, pds, grade = sample
    features = pd.DataFrame({"x": pds, "g": pd.Series(grade, dtype="str")})
    result = ev.evaluate(y, pds, grade, ORDER, features_train=features, features_test=features,
                         score_train=pds, score_test=pds * 1.5)
    decoded = json.loads(json.dumps(result, allow_nan=False))
    assert decoded["auc"] == pytest.approx(roc_auc_score(y, pds))
    assert decoded["default_rate_monotone"] is True
    assert decoded["psi_score"] > 0.1 and decoded["psi_score_status"] != "stable"
    assert {r["feature"] for r in decoded["psi_features"]} == {"x", "g"}
    assert decoded["default_rate_by_grade"][0]["grade"] == "A"
    report = ev.report_markdown(decoded)
    assert "# Out-of-time evaluation" in report and f"| E | {(grade == 'E').sum()} |" in report
    bare = ev.evaluate(y, pds)
    assert bare["psi_features"] is None and bare["calibration_by_grade"] is None
    assert "Stability" not in ev.report_markdown(bare)
