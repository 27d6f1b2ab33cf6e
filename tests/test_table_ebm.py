"""The EBM family: exact additive reasons, monotone shapes where declared, JSON without pickle, shapes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from creditgrade.models.ebm import EBMPD, _codes
from creditgrade.models.estimator import Estimator
from creditgrade.models.families import family


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 1500
    X = pd.DataFrame({"debt ratio [%]": rng.uniform(0, 100, n), "Unnamed: 0": rng.normal(size=n),
                      "region": pd.Categorical(rng.choice(["north", "south", "west"], n))})
    X.loc[rng.random(n) < 0.05, "debt ratio [%]"] = np.nan
    logit = -1.5 + 0.03 * (X["debt ratio [%]"].fillna(50) - 50) + 0.4 * np.sin(3 * X["Unnamed: 0"]) \
        + np.where(X["region"] == "west", 0.6, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def model(data):
    X, y = data
    return EBMPD(monotone={"debt ratio [%]": 1, "Unnamed: 0": -1}, outer_bags=2, learning_rate=0.05).fit(X, y)


def test_ebm_is_a_registered_family(model):
    assert family("ebm") is EBMPD and isinstance(model, Estimator) and model.unit == "log-odds"


def test_contributions_add_up_exactly_to_the_log_odds_on_random_rows(model, data):
    X, _ = data
    rng = np.random.default_rng(7)
    rows = pd.DataFrame({"debt ratio [%]": rng.uniform(-50, 200, 300), "Unnamed: 0": rng.normal(0, 3, 300),
                         "region": pd.Categorical(rng.choice(["north", "south", "west", "east"], 300))})
    rows.loc[::17, "debt ratio [%]"] = np.nan
    contrib = model.contributions(rows)
    assert list(contrib.columns) == [*X.columns, "bias"]
    logit_pd = np.log(model.predict_pd(rows) / (1 - model.predict_pd(rows)))
    assert np.abs(contrib.sum(axis=1).to_numpy() - logit_pd).max() < 1e-9
    assert np.abs(contrib.sum(axis=1).to_numpy() - model.decision_function(rows)).max() < 1e-9


def test_the_arrays_predict_as_interpret_does(data):
    from interpret.glassbox import ExplainableBoostingClassifier

    X, y = data
    types = ["continuous", "continuous", "nominal"]
    ebm = ExplainableBoostingClassifier(feature_types=types, interactions=0, outer_bags=2, learning_rate=0.05,
                                        n_jobs=1, random_state=0).fit(X, y)
    ours = EBMPD()
    ours._keep(ebm, list(X.columns), types)
    assert np.abs(ours.decision_function(X) - ebm.decision_function(X)).max() < 1e-9


def test_declared_directions_give_monotone_shapes(model):
    shapes = {s["feature"]: s for s in model.describe()["details"]["shapes"]}
    up = np.asarray(shapes["debt ratio [%]"]["scores"][1:-1])  # regular bins, missing and unseen apart
    down = np.asarray(shapes["Unnamed: 0"]["scores"][1:-1])
    assert np.all(np.diff(up) >= -1e-12) and np.all(np.diff(down) <= 1e-12)
    assert up[-1] - up[0] > 1.0  # the effect is there, not flattened away
    assert shapes["region"]["bins"] == ["missing", "north", "south", "west", "unseen"]


def test_json_round_trip_without_pickle(model, data):
    X, _ = data
    text = model.to_json()
    assert json.loads(text)["format"] == "creditgrade.ebm/1"
    back = EBMPD.from_json(text)
    assert np.array_equal(back.predict_pd(X), model.predict_pd(X))
    assert back.used_features_ == model.used_features_ == list(X.columns)
    with pytest.raises(ValueError, match="not a creditgrade.ebm/1"):
        EBMPD.from_json(json.dumps({"format": "other"}))


def test_boundaries_are_the_bin_edges(model):
    edges = model.boundaries()
    assert set(edges) == {"debt ratio [%]", "Unnamed: 0"}
    value, strict = edges["debt ratio [%]"][3]
    codes = _codes(model.terms_[0], pd.Series([np.nextafter(value, -np.inf), value]))
    assert strict and codes[1] == codes[0] + 1


def test_an_explicit_validation_set_is_used_for_early_stopping(data):
    X, y = data
    model = EBMPD(outer_bags=2, learning_rate=0.05).fit(X.iloc[:1000], y[:1000], X.iloc[1000:], y[1000:])
    assert model.predict_pd(X).shape == (len(X),)


def test_a_feature_without_any_value_fits_without_numpy_s_warning(data):
    import warnings

    X, y = data
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model = EBMPD(outer_bags=2, learning_rate=0.05).fit(X.assign(empty=np.nan), y)
    assert not [w for w in seen if "All-NaN" in str(w.message)]  # the demo's training printed 14 of these
    assert np.isfinite(model.predict_pd(X.assign(empty=np.nan))).all()
