"""MonotoneBinner: monotone WOE, minimums, missing / special / unseen rules, sklearn conformance."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from creditgrade.models.binning import MonotoneBinner, bin_codes, bin_index

SPECIAL = -999.0


def make_table(n=20_000, seed=0):
    """Synthetic credit table: risk rises with `debt`, falls with `income`, follows `region`;
    `tenure` is informative with no declared direction; `noise` is pure noise."""
    rng = np.random.default_rng(seed)
    debt = rng.gamma(2.0, 1.0, n)
    income = rng.normal(50, 15, n)
    tenure = rng.integers(0, 30, n).astype(float)
    noise = rng.normal(size=n)
    regions = np.array(["north", "south", "east", "west", "isle", "fjord"])
    region = regions[rng.choice(6, n, p=[0.35, 0.25, 0.2, 0.16, 0.025, 0.015])]
    region_risk = dict(north=0.0, south=0.4, east=-0.4, west=0.8, isle=0.2, fjord=0.2)
    lp = -2.2 + 0.5 * debt - 0.04 * (income - 50) - 0.05 * tenure
    lp += np.array([region_risk[r] for r in region])
    y = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    income[rng.random(n) < 0.05] = np.nan
    debt[rng.random(n) < 0.03] = SPECIAL
    X = pd.DataFrame({"debt": debt, "income": income, "tenure": tenure, "noise": noise,
                      "region": pd.Series(region, dtype="str")})
    return X, y


@pytest.fixture(scope="module")
def data():
    return make_table()


@pytest.fixture(scope="module")
def binner(data):
    X, y = data
    return MonotoneBinner(directions={"debt": "up", "income": "down"},
                          special_values={"debt": [SPECIAL]}).fit(X, y)


def regular_woe(binner, feature):
    spec = binner.bins_[feature]
    return np.array([b["woe"] for b in spec["bins"] if b["bin"].startswith("[")])


def test_woe_is_monotone_in_the_declared_or_chosen_direction(binner):
    assert len(regular_woe(binner, "debt")) >= 4
    assert np.all(np.diff(regular_woe(binner, "debt")) > 0)
    assert np.all(np.diff(regular_woe(binner, "income")) < 0)
    assert binner.bins_["tenure"]["direction"] == "down"  # chosen automatically
    assert np.all(np.diff(regular_woe(binner, "tenure")) < 0)
    assert binner.iv_["debt"] > 0.1 and binner.iv_["noise"] < 0.02


def test_missing_and_special_values_get_their_own_bins(data, binner):
    X, y = data
    debt = binner.bin_table("debt").set_index("bin")
    special = X["debt"] == SPECIAL
    assert debt.loc["special -999", "count"] == special.sum()
    assert debt.loc["special -999", "bads"] == y[special].sum()
    assert debt.loc["missing", "count"] == 0 and debt.loc["missing", "woe"] == 0
    income = binner.bin_table("income").set_index("bin")
    assert income.loc["missing", "count"] == X["income"].isna().sum()
    woe = binner.transform(X)
    assert np.all(woe.loc[X["income"].isna(), "income"] == income.loc["missing", "woe"])
    assert np.all(woe.loc[special, "debt"] == debt.loc["special -999", "woe"])


def test_out_of_range_values_go_to_the_edge_bins(data, binner):
    X, _ = data
    edge = X.iloc[:2].copy()
    edge["income"] = [-1e9, 1e9]
    woe = binner.transform(edge)["income"].to_numpy()
    assert woe.tolist() == [regular_woe(binner, "income")[0], regular_woe(binner, "income")[-1]]


def test_categories_ordered_by_bad_rate_rare_pooled_unseen_neutral(data, binner):
    X, _ = data
    table = binner.bin_table("region")
    regular = table[~table["bin"].isin(["missing", "unseen"])]
    assert regular["bad_rate"].is_monotonic_increasing
    assert any({"fjord", "isle"} <= set(b.split(", ")) for b in regular["bin"])
    new = X.iloc[:3].copy()
    new["region"] = ["atlantis", None, "west"]
    woe = binner.transform(new)["region"].tolist()
    assert woe[:2] == [0.0, 0.0]  # unseen and (never seen) missing are neutral
    assert woe[2] == table.loc[table["bin"].str.contains("west"), "woe"].item()


def test_minimum_share_and_bads_per_bin(data):
    X, y = data
    b = MonotoneBinner(min_bin_share=0.12, min_bad=400, special_values=[SPECIAL]).fit(X, y)
    for feature, spec in b.bins_.items():
        n_special = len(spec["specials"])
        regular = spec["bins"][: len(spec["bins"]) - n_special - 1 - (feature == "region")]
        for row in regular:
            assert row["count"] >= 0.12 * len(X) and row["bads"] >= 400, (feature, row)


def test_fit_is_deterministic_and_row_order_free(data, binner):
    X, y = data
    again = MonotoneBinner(**binner.get_params()).fit(X, y)
    order = np.random.default_rng(1).permutation(len(X))
    shuffled = MonotoneBinner(**binner.get_params()).fit(X.iloc[order], y[order])
    assert again.bins_ == binner.bins_ == shuffled.bins_


def test_scalar_bin_index_matches_vectorised_codes(data, binner):
    X, _ = data
    rows = X.iloc[:3000].copy()
    rows.loc[rows.index[:5], "region"] = "atlantis"
    for feature, spec in binner.bins_.items():
        codes = bin_codes(spec, rows[feature])
        assert codes.tolist() == [bin_index(spec, v) for v in rows[feature].tolist()]


def test_numpy_in_numpy_out_and_set_output(data):
    X, y = data
    numeric = X[["debt", "income"]]
    b = MonotoneBinner().fit(numeric.to_numpy(), y)
    out = b.transform(numeric.to_numpy())
    assert isinstance(out, np.ndarray) and out.shape == (len(X), 2)
    framed = MonotoneBinner().set_output(transform="pandas").fit(numeric, y).transform(numeric)
    assert list(framed.columns) == ["debt", "income"]
    np.testing.assert_array_equal(framed.to_numpy(), out)


def test_non_binary_target_is_rejected(data):
    X, _ = data
    with pytest.raises(ValueError, match="binary"):
        MonotoneBinner().fit(X, np.arange(len(X)) % 3)


@parametrize_with_checks([MonotoneBinner()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
