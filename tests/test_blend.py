"""A blend of fitted families (``models.blend``): the weighted mean of their log-odds, contributions that add
up to it feature by feature, the same on the one-subject table path, carried in JSON, and a what-if over the
members' boundaries."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from creditgrade.models.blend import Blend, mixed_pd
from creditgrade.models.estimator import read_table
from creditgrade.models.explain import contributions
from creditgrade.models.families import from_json
from creditgrade.training.pipeline import blend_model
from test_peer_levels import sme_fit


def _logit(p):
    return np.log(p / (1 - p))


@pytest.fixture(scope="module")
def blended():
    (card, split), (trees, _) = sme_fit("scorecard"), sme_fit("lightgbm")
    return blend_model([card, trees]), card, trees, split


def test_the_blend_is_the_mean_of_its_members_log_odds_and_its_contributions_add_up_to_it(blended):
    model, card, trees, split = blended
    rows = split.test[model.features]
    expected = 0.5 * _logit(card.pd(split.test)) + 0.5 * _logit(trees.pd(split.test))
    assert np.allclose(_logit(model.pd(split.test)), expected, atol=1e-9)
    parts = contributions(model, split.test)
    assert list(parts.columns) == [*model.features, "bias"]
    assert np.allclose(parts.sum(axis=1).to_numpy(), expected, atol=1e-9)
    # the scorecard's share is its coef * WOE: a feature the card dropped takes the booster's half only
    card_walk = card.estimator.log_odds_walk(rows)
    tree_walk = trees.estimator.walk(rows)
    assert np.allclose(parts.to_numpy(), 0.5 * card_walk.contributions + 0.5 * tree_walk.contributions)
    assert np.allclose(card_walk.contributions.sum(axis=1), _logit(card.pd(split.test)), atol=1e-9)
    assert set(model.estimator.used_features_) == set(card.estimator.used_features_) | set(trees.estimator.used_features_)


def test_one_subject_s_table_walk_and_the_json_round_trip_grade_alike(blended):
    model, _, _, split = blended
    rows = split.test[model.features]
    back = from_json(model.kind, model.estimator.to_json())
    assert isinstance(back, Blend) and back.weights == [0.5, 0.5]
    assert [m.family for m in back.members] == ["scorecard", "lightgbm"]
    assert np.allclose(back.predict_pd(rows), model.pd(split.test), atol=1e-12)
    one = rows.iloc[[3]]
    walk = back.walk(None, read_table(one, model.features))
    assert np.allclose(walk.contributions, model.estimator.walk(one).contributions, atol=1e-12)
    docs = model.documents()
    assert dataclasses.replace(model, estimator=back).documents() == docs


def test_what_if_reads_every_member_s_boundaries(blended):
    model, card, trees, split = blended
    one = split.test[model.features].iloc[[0]]
    mine = model.estimator.boundaries_of(one)
    for member in (card, trees):
        for feature, bounds in member.estimator.boundaries_of(one).items():
            assert set(bounds) <= set(mine[feature])


def test_a_blend_refuses_mismatched_members_and_bad_weights(blended):
    _, card, trees, _ = blended
    with pytest.raises(ValueError, match="two or more members"):
        Blend([card.estimator], [1.0])
    with pytest.raises(ValueError, match="sum to 1"):
        Blend([card.estimator, trees.estimator], [0.7, 0.7])
    other = from_json("lightgbm", trees.estimator.to_json())
    other.feature_names_in_ = other.feature_names_in_[::-1]
    with pytest.raises(ValueError, match="same inputs"):
        Blend([card.estimator, other], [0.5, 0.5])


def test_mixed_pd_is_the_logistic_of_the_weighted_log_odds():
    p, q = np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.5, 0.2])
    out = mixed_pd([p, q], [0.25, 0.75])
    assert np.allclose(_logit(out), 0.25 * _logit(p) + 0.75 * _logit(q))


def test_the_description_keeps_shared_details_and_each_member_s_own(blended):
    model, card, trees, _ = blended
    described = model.estimator.describe()
    assert described["details"]["peer_levels"] == card.estimator.describe()["details"]["peer_levels"]
    assert "selection" not in described["details"]  # the card's own selection is not the blend's
    members = described["details"]["members"]
    assert [(m["family"], m["weight"]) for m in members] == [("scorecard", 0.5), ("lightgbm", 0.5)]
    assert members[0]["details"]["selection"] == card.estimator.describe()["details"]["selection"]
    assert "0.50 scorecard + 0.50 lightgbm" in described["summary"]


def test_a_blend_grades_explains_and_answers_what_if_as_any_model(blended):
    from creditgrade.models.explain import explain, explain_row
    from creditgrade.models.whatif import what_would_change

    model, _, _, split = blended
    rows = split.test.head(40)
    graded, reasons = explain(model, rows)
    pd.testing.assert_frame_equal(graded, model.grade(rows))
    for why in reasons:  # log-odds: a model's reason raises risk, the strongest first (a binding rule's first)
        model_reasons = [r["contribution"] for r in why if not r.get("override")]
        assert model_reasons == sorted(model_reasons, reverse=True) and all(c > 0 for c in model_reasons)
    assert all(r["unit"] == "log-odds" for why in reasons for r in why)
    key = rows.index[0]
    one, why = explain_row(model, key, {c: [rows.iloc[0][c]] for c in rows.columns}, read_table(rows.head(1), model.features))
    assert one["grade"] == graded["grade"].iloc[0] and [r["feature"] for r in why] == [r["feature"] for r in reasons[0]]
    worst = rows.iloc[[int(np.argmax(model.pd(rows)))]]
    answer = what_would_change(model, worst)
    assert answer["reachable"] and answer["changes"]
    moved = worst.assign(**{c["feature"]: c["to"] for c in answer["changes"]})
    assert model.grade(moved)["grade"].iloc[0] == answer["new_grade"] == answer["target_grade"]


def test_fitting_a_blend_fits_each_member_on_the_same_rows(blended):
    from creditgrade.features.catalog import model_feature_names
    from creditgrade.training.pipeline import make_estimator

    _, _, _, split = blended
    columns = [c for c in model_feature_names("sme") if c != "sector"][:12]
    rows, y = split.train[columns], split.train["defaulted"].to_numpy()
    blend = Blend([make_estimator(k, "sme", columns) for k in ("scorecard", "ebm")], [0.3, 0.7]).fit(rows, y)
    alone = [make_estimator(k, "sme", columns).fit(rows, y) for k in ("scorecard", "ebm")]
    test = split.test[columns]
    expected = mixed_pd([m.predict_pd(test) for m in alone], [0.3, 0.7])
    assert np.allclose(blend.predict_pd(test), expected, atol=1e-12) and blend.weights == [0.3, 0.7]
    assert list(blend.feature_names_in_) == columns
    assert np.allclose(blend.walk(test).pd, expected, atol=1e-9)


def test_a_family_in_points_without_a_log_odds_walk_cannot_be_blended():
    from types import SimpleNamespace

    from creditgrade.models.estimator import Estimator

    with pytest.raises(TypeError, match="must override log_odds_walk"):
        Estimator.log_odds_walk(SimpleNamespace(unit="points"), None)
