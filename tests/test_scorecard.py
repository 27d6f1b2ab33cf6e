"""Scorecard: selection with reasons, sign check, PDO points, JSON round trip, single = batch."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_binning import SPECIAL, make_table

from creditgrade.models.scorecard import Scorecard
from creditgrade.models.selection import enforce_signs, select_features


@pytest.fixture(scope="module")
def data():
    X, y = make_table()
    X["debt_copy"] = np.where(X["debt"] == SPECIAL, SPECIAL, X["debt"] * 1.5 + 2)
    return X, y


@pytest.fixture(scope="module")
def card(data):
    X, y = data
    return Scorecard(special_values={"debt": [SPECIAL], "debt_copy": [SPECIAL]}).fit(X, y)


@pytest.fixture(scope="module")
def rural(data):
    X, y = data
    return Scorecard(special_values=[SPECIAL], scale=(0, 100)).fit(X, y)


def test_selection_drops_duplicate_and_noise_with_reasons(card):
    dropped = {d["feature"]: d for d in card.selection_["dropped"]}
    assert dropped["noise"]["rule"] == "iv" and dropped["noise"]["value"] < 0.02
    assert dropped["debt_copy"]["rule"] == "correlation"
    assert dropped["debt_copy"]["other"] == "debt" and dropped["debt_copy"]["value"] > 0.99
    assert set(card.selection_["kept"]) == {"debt", "income", "tenure", "region"}
    assert np.all(card.coef_ > 0)


def test_sign_check_drops_a_negative_coefficient(card, data):
    X, y = data
    woe = card.woe(X)
    woe["flipped"] = -woe["income"] - 0.1 * woe["debt"]
    model, kept, dropped = enforce_signs(woe, y, list(woe.columns), card._lr)
    assert [d["rule"] for d in dropped] == ["sign"] and dropped[0]["value"] < 0
    assert "flipped" not in kept or "income" not in kept
    assert np.all(model.coef_ > 0)


def test_vif_rule_drops_a_linear_combination(card, data):
    X, y = data
    woe = card.woe(X)
    woe["combo"] = woe["debt"] + woe["income"] + woe["tenure"]
    iv = dict(card.iv_, combo=10.0)
    bins = {f: [{"woe": 1.0, "bads": 1, "goods": 0}, {"woe": 0.0, "bads": 0, "goods": 1}]
            for f in woe.columns}
    kept, dropped = select_features(woe, {f: {"bins": b} for f, b in bins.items()}, iv,
                                    max_corr=0.99, max_vif=5.0)
    assert [d["rule"] for d in dropped] == ["vif"] and len(kept) == len(woe.columns) - 1


def test_points_follow_the_pdo_scale(card, data):
    X, _ = data
    lp = card.decision_function(X)
    raw = 600 - 20 / math.log(2) * (math.log(50) + lp)  # 600 at 50:1, 20 points per doubling
    points = card.points(X)
    assert np.max(np.abs(points - raw)) <= 0.5 * (len(card.coef_) + 1)
    by_char = card.points_by_characteristic(X)
    np.testing.assert_array_equal(points, card.base_points_ + by_char.sum(axis=1).to_numpy())
    assert roc_auc_score(card.predict_proba(X)[:, 1] > 0.5, -points) > 0.9


def test_card_ranks_held_out_rows(card):
    X, y = make_table(5000, seed=7)
    X["debt_copy"] = X["debt"]
    assert roc_auc_score(y, card.predict_proba(X)[:, 1]) > 0.7


def test_json_round_trip_gives_identical_scores(card, rural, data):
    X, _ = data
    for fitted in (card, rural):
        loaded = Scorecard.from_json(fitted.to_json())
        np.testing.assert_array_equal(loaded.points(X), fitted.points(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
        pd.testing.assert_frame_equal(loaded.table(), fitted.table())
        assert loaded.to_json() == fitted.to_json()


def test_single_record_equals_batch(card, rural, data):
    X, _ = data
    rows = X.iloc[:4000].copy()
    rows.loc[rows.index[:10], "region"] = "atlantis"
    for fitted in (card, rural):
        points, pd_ = fitted.points(rows), fitted.predict_proba(rows)[:, 1]
        by_char = fitted.points_by_characteristic(rows).to_dict("records")
        for i, record in enumerate(rows.to_dict("records")):
            single = fitted.score_record(record)
            assert single["points"] == points[i] and single["pd"] == pd_[i]
            assert single["points_by_characteristic"] == by_char[i]


def test_unseen_category_scores_zero_points(card, data):
    X, _ = data
    record = X.iloc[0].to_dict()
    record["region"] = "atlantis"
    assert card.score_record(record)["points_by_characteristic"]["region"] == 0
    del record["income"]  # an absent key is a missing value
    income = card.table().query("characteristic == 'income' and bin == 'missing'")
    assert card.score_record(record)["points_by_characteristic"]["income"] == income["points"].item()


def test_rural_scale_spans_0_to_100(rural, data):
    X, _ = data
    table = rural.table()
    per_char = table.groupby("characteristic")["points"]
    assert rural.base_points_ == 0
    assert per_char.min().sum() == 0 and per_char.max().sum() == 100
    points = rural.points(X)
    assert points.min() >= 0 and points.max() <= 100
    assert roc_auc_score(rural.predict_proba(X)[:, 1] > 0.5, -points) > 0.9


def test_table_and_printing(card):
    table = card.table()
    assert list(table.columns) == ["characteristic", "bin", "count", "share", "bad_rate", "woe",
                                   "points"]
    assert set(table["characteristic"]) == set(card.selection_["kept"])
    assert "600 points at odds 50:1" in str(card) and "special -999" in card.to_string()


def test_sklearn_compatible(card, data):
    X, y = data
    copy = clone(card)
    assert copy.get_params() == card.get_params()
    numeric = X[["debt", "income", "tenure"]].to_numpy()
    fitted = copy.fit(numeric, y)
    assert fitted.predict(numeric).shape == (len(X),) and set(fitted.classes_) == {0, 1}
    assert Scorecard.from_json(fitted.to_json()).points(numeric).tolist() == fitted.points(
        numeric).tolist()


@parametrize_with_checks([Scorecard()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_a_large_group_with_almost_no_bads_gets_its_own_bin():
    """Near half the rows with 2 bads in 460 (the rest 22 % bad) is a bin of its own, not merged away."""
    rng = np.random.default_rng(3)
    sold = np.r_[np.ones(460), np.zeros(540)]
    y = np.where(sold == 1, np.isin(np.arange(1000), [7, 300]), rng.random(1000) < 0.22).astype(int)
    X = pd.DataFrame({"sold": sold, "noise": rng.normal(size=1000)})
    card = Scorecard().fit(X, y)
    bins = card.table().query("characteristic == 'sold' and count > 0")
    assert "sold" in card.selection_["kept"] and len(bins) == 2
    assert bins["bad_rate"].min() < 0.01 < 0.2 < bins["bad_rate"].max()
    assert roc_auc_score(y, card.predict_pd(X)) > 0.7


def test_shapes_add_up_to_the_log_odds(card, data):
    """Each row's bins' ``coef * WOE`` (missing first, unseen last) plus the intercept is the logit of its PD."""
    X, _ = data
    rows = X.iloc[:300]
    shapes = {s["feature"]: s for s in card.describe()["details"]["shapes"]}
    assert set(shapes) == set(card.selection_["kept"])
    assert all(s["bins"][0] == "missing" and s["bins"][-1] == "unseen" for s in shapes.values())
    codes, total = card._codes(rows), np.full(len(rows), card.intercept_)
    for j, c in enumerate(card.characteristics_):
        shape = shapes[c["name"]]
        total += [shape["scores"][shape["bins"].index(c["bins"][k]["bin"])] for k in codes[:, j]]
    pd_ = card.predict_pd(rows)
    assert np.allclose(total, np.log(pd_ / (1 - pd_)), atol=1e-9) and np.ptp(total) > 1
