"""The linear family (``models.logistic.LogisticPD``; its contributions on a segment: test_segment_ebm.py): it
survives its JSON and the serving path's table; it recovers a linear risk through outliers, missing values
and categories; it drops a slope that contradicts a declared direction; and the generic mode judges it
beside the other candidates."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from creditgrade.models.estimator import read_table
from creditgrade.models.logistic import LogisticPD
from tests.helpers import practitioner_fit


@pytest.fixture(scope="module")
def fitted():
    return practitioner_fit("logistic")


def test_json_and_the_serving_table_give_the_same_walk(fitted):
    model, test = fitted
    est = model.estimator
    names = list(est.feature_names_in_)
    again = LogisticPD.from_json(est.to_json())
    direct = est.walk(test[names]).contributions
    assert np.array_equal(again.walk(test[names]).contributions, direct)
    assert np.allclose(est.walk(None, read_table(test, names)).contributions, direct, atol=1e-12)
    assert again.describe()["summary"] == est.describe()["summary"]


def _linear_table(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"debt": rng.normal(size=n), "income": rng.normal(size=n), "noise": rng.normal(size=n),
                      "region": pd.Categorical(rng.choice(["north", "south", "east"], size=n))})
    logit = -1.5 + 1.2 * X["debt"] - 0.8 * X["income"] + (X["region"] == "south") * 0.9
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X.loc[rng.random(n) < 0.05, "income"] = np.nan
    X.loc[:4, "debt"] = 1e9  # a few absurd values: clipped, they cannot take the slope
    return X, y.to_numpy()


def test_recovers_a_linear_risk_through_outliers_missing_values_and_categories():
    X, y = _linear_table(6000)
    est = LogisticPD().fit(X, y)
    slopes = est.describe()["details"]["slopes"]
    assert slopes["debt"] == pytest.approx(1.2, rel=0.15)
    assert slopes["income"] == pytest.approx(-0.8, rel=0.15)
    assert abs(slopes["noise"]) < 0.1
    region = next(t for t in est.terms_ if t["feature"] == "region")
    by_category = dict(zip(region["categories"], region["coef"]))
    assert by_category["south"] - by_category["north"] == pytest.approx(0.9, rel=0.25)
    unseen = X.head(3).assign(region=pd.Categorical(["west"] * 3))
    assert np.isfinite(est.predict_pd(unseen)).all()


def test_a_column_of_thousands_of_categories_gets_a_bounded_design():
    X, y = _linear_table(6000, seed=3)
    X["postcode"] = np.random.default_rng(3).integers(0, 3000, len(X)).astype(str)
    X.loc[:999, "postcode"] = "100000"  # one frequent code that raises risk
    y = np.r_[np.random.default_rng(4).random(1000) < 0.6, y[1000:]].astype(int)
    est = LogisticPD().fit(X, y)
    postcode = next(t for t in est.terms_ if t["feature"] == "postcode")
    assert len(postcode["coef"]) <= 31 and postcode["other"]  # at most 30 codes and "other"
    coef = dict(zip(postcode["categories"], postcode["coef"]))
    assert coef["100000"] > postcode["coef"][-1] + 0.5  # the frequent code above the rest
    assert np.isfinite(est.predict_pd(X.head(5).assign(postcode="never-seen"))).all()
    rng = np.random.default_rng(5)  # 40 categorical columns share the indicators: 15 categories each at most
    many = pd.DataFrame({f"c{j}": rng.integers(0, 40, 2000).astype(str) for j in range(40)})
    terms = LogisticPD().fit(many, rng.integers(0, 2, 2000)).terms_
    assert max(len(t["categories"]) for t in terms) == 15


def test_values_near_the_float_limit_keep_their_slope():
    X, y = _linear_table(3000, seed=6)
    est = LogisticPD().fit(X.assign(debt=X["debt"] * 1e300), y)
    assert est.describe()["details"]["slopes"]["debt"] * 1e300 == pytest.approx(1.2, rel=0.2)
    assert np.isfinite(est.predict_pd(X.assign(debt=X["debt"] * 1e300))).all()
    capped = X.assign(debt=np.where(np.arange(len(X)) % 3 == 0, 1e308, X["debt"]))  # fences beyond float64
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert np.isfinite(LogisticPD().fit(capped, y).predict_pd(capped)).all()


def test_a_slope_against_the_declared_direction_is_dropped_and_the_rest_kept():
    X, y = _linear_table(4000, seed=1)
    est = LogisticPD(monotone={"income": 1, "debt": 1}).fit(X, y)  # income truly lowers risk
    slopes = est.describe()["details"]["slopes"]
    assert slopes["income"] == 0 and slopes["debt"] > 0.8
    assert est.describe()["monotone"]["income"].startswith("increasing")
    debt = next(t for t in est.terms_ if t["feature"] == "debt")
    steps = [v for v, _ in est.boundaries()["debt"]]
    assert len(steps) == 9 and debt["lo"] < min(steps) and max(steps) < debt["hi"] < 10  # clipped: not 1e9
    assert "income" not in est.boundaries()


def test_generic_mode_judges_the_linear_family_beside_the_others(tmp_path):
    from creditgrade.training.table import cross_validate

    X, y = _linear_table(1200, seed=2)
    X.assign(bad=y).to_csv(tmp_path / "linear.csv", index=False)
    result = cross_validate(tmp_path / "linear.csv", "bad", folds=3, families=("scorecard", "logistic"))
    assert {"scorecard", "logistic", "blend", "chosen"} <= set(result.auc)
    assert result.mean("logistic") > result.mean("scorecard")  # a straight line: the card's steps lose
    assert result.mean("chosen") >= result.mean("scorecard")
