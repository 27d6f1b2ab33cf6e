"""Levels against peers (``models.peers``): learned from the training rows, carried in the model's JSON, the
same on the one-subject table path, folded into their feature's contribution, and mapped back for what-if."""
from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from creditgrade.features.catalog import peer_levels, spec
from creditgrade.models.bundle import GradeModel
from creditgrade.models.estimator import read_table
from creditgrade.models.explain import contributions
from creditgrade.models.peers import PeerLevels
from tests.helpers import generated


@cache
def sme_fit(kind: str):
    """One family fitted out of time on 300 generated SMEs (cached), and the test rows."""
    from creditgrade.features.build import build_training_set
    from creditgrade.models.grades import Scale, config
    from creditgrade.training.pipeline import fit_grade_model, split_by_date, without_defaulters

    data = build_training_set(generated(300, 0, 0), "sme")
    split = split_by_date(without_defaulters(data, Scale.from_config(config("sme"))))
    return fit_grade_model(kind, "sme", split), split


@pytest.mark.parametrize("kind", ["lightgbm", "scorecard"])
def test_a_segment_model_learns_the_levels_and_folds_them_into_their_feature(kind):
    model, split = sme_fit(kind)
    est = model.estimator
    assert isinstance(est, PeerLevels) and est.family == kind
    seen = pd.concat([split.train, split.valid]).as_of.unique()
    assert len(est.dated_) == len(seen) > 1  # the pipeline gave each row's date: levels against that date's peers
    assert list(est.feature_names_in_) == model.features  # the catalogue's inputs, no level among them
    levels = {lv["name"] for lv in est.levels}
    assert levels == {s.name for s in peer_levels("sme")}
    assert levels <= set(est.estimator.feature_names_in_)
    parts = contributions(model, split.test)
    assert list(parts.columns) == [*model.features, "bias"]
    walk = est.walk(split.test[model.features])
    margin = walk.score if est.unit == "points" else np.log(walk.pd / (1 - walk.pd))
    assert np.abs(parts.sum(axis=1).to_numpy() - margin).max() < 1e-6
    assert np.allclose(walk.pd, model.pd(split.test), atol=1e-9)
    # the level's own contribution sits in its feature's: the inner walk's two columns add up to it
    inner = est.estimator.walk(est.inputs_of(split.test[model.features]))
    names = list(est.estimator.feature_names_in_)
    for lv in est.levels:
        both = inner.contributions[:, names.index(lv["of"])] + inner.contributions[:, names.index(lv["name"])]
        assert np.allclose(parts[lv["of"]].to_numpy(), both)


def test_medians_kept_are_the_latest_training_date_s_with_coarser_groups_for_small_ones():
    model, split = sme_fit("lightgbm")
    est = model.estimator
    seen = pd.concat([split.train, split.valid])
    latest = seen[(seen.as_of == seen.as_of.max()) & (seen.tax_paid_12m > 0)]
    tables = {t["depth"]: t for t in est.medians_["tax_paid_12m_vs_peers"]}
    overall = tables[0]["groups"][0][1]
    assert overall == pytest.approx(float(np.median(np.log1p(latest.tax_paid_12m))))
    counts = latest.groupby(["size", "sector"], observed=True).size()
    kept = {tuple(k) for k, _ in tables[2]["groups"]}
    assert kept == {k for k, n in counts.items() if n >= 30}
    assert len(kept) < len(counts)  # some groups too small: they take the coarser median
    size, sector = next(iter(k for k, n in counts.items() if n < 30))
    row = split.test[model.features].iloc[:1].copy()
    for name, label in (("size", size), ("sector", sector)):
        row[name] = pd.Categorical([label], categories=row[name].cat.categories)
    row["tax_paid_12m"] = 5000.0
    by_size = {k[0]: m for k, m in tables[1]["groups"]}.get(size, overall)
    level = est.inputs_of(row)["tax_paid_12m_vs_peers"].iloc[0]
    assert level == pytest.approx(np.log1p(5000.0) - by_size)
    row["size"] = pd.Categorical([None], categories=row["size"].cat.categories)  # no group: every firm's median
    assert est.inputs_of(row)["tax_paid_12m_vs_peers"].iloc[0] == pytest.approx(np.log1p(5000.0) - overall)
    row["tax_paid_12m"] = 0.0  # no level without a positive value
    assert np.isnan(est.inputs_of(row)["tax_paid_12m_vs_peers"].iloc[0])
    with pytest.raises(ValueError, match="peer-levels"):
        PeerLevels.from_json('{"format": "creditgrade.lgbm/1"}')


def test_each_training_row_is_levelled_against_its_own_date_s_peers():
    from creditgrade.models.logistic import LogisticPD

    fitted = {}

    class Recording(LogisticPD):
        def fit(self, X, y, X_val=None, y_val=None, groups=None):
            fitted["X"], fitted["X_val"] = X, X_val
            return super().fit(X, y, X_val, y_val, groups)

    rng = np.random.default_rng(0)
    n = 400
    size = pd.Categorical(rng.choice(["small", "large"], n), categories=["small", "large"])
    day = np.repeat(np.array(["2022-12-31", "2023-12-31"], dtype="datetime64[ns]"), n // 2)
    scale = np.where(size == "large", 100.0, 10.0) * np.where(day == day[-1], 2.0, 1.0)  # the peers double
    X = pd.DataFrame({"tax": scale * np.exp(rng.normal(0, 0.1, n)), "size": size})
    y = rng.random(n) < 0.3
    est = PeerLevels(Recording(), [{"name": "tax_vs_peers", "of": "tax", "by": ["size"]}], min_rows=30)
    est.fit(X.iloc[:300], y[:300], X.iloc[300:], y[300:], dates=(day[:300], day[300:]))
    levels = pd.concat([fitted["X"], fitted["X_val"]])["tax_vs_peers"]
    assert levels.abs().max() < 0.5  # each row against its own date's peers: no step between the dates
    pooled = PeerLevels(Recording(), est.levels, min_rows=30)
    pooled.fit(X.iloc[:300], y[:300], X.iloc[300:], y[300:])
    assert pd.concat([fitted["X"], fitted["X_val"]])["tax_vs_peers"].abs().max() > 0.3  # against all rows
    latest = {k[0]: m for k, m in {t["depth"]: t for t in est.medians_["tax_vs_peers"]}[1]["groups"]}
    last = X[day == day[-1]]
    assert latest["large"] == pytest.approx(np.median(np.log1p(last.tax[last["size"] == "large"])))
    with pytest.raises(ValueError, match="dates for"):
        est.fit(X, y, dates=(day[:10],))


def test_the_version_carries_the_medians_and_grades_one_subject_the_same(tmp_path):
    model, split = sme_fit("lightgbm")
    loaded = GradeModel.load(model.save(tmp_path))
    assert isinstance(loaded.estimator, PeerLevels)
    assert loaded.estimator.medians_ == model.estimator.medians_
    X = split.test[model.features]
    assert np.array_equal(loaded.pd(split.test), model.pd(split.test))
    one = X.iloc[[7]]
    table_walk = loaded.estimator.walk(None, read_table(one, model.features))
    assert np.allclose(table_walk.contributions, model.estimator.walk(X).contributions[[7]])
    loaded.estimator.num_threads = 1  # serving's one-row setting reaches the family
    assert loaded.estimator.estimator.num_threads == 1


def test_boundaries_of_a_level_are_mapped_back_to_its_feature():
    model, split = sme_fit("lightgbm")
    est = model.estimator
    inner, outer = est.estimator.boundaries(), est.boundaries()
    assert not {lv["name"] for lv in est.levels} & outer.keys()
    used = [lv for lv in est.levels if inner.get(lv["name"])]
    assert used, "the fitted trees split on no level"
    lv = used[0]
    tables = {d["depth"]: d for d in est.medians_[lv["name"]]}
    medians = {m for t in tables.values() for _, m in t["groups"]}
    expected = {round(float(np.expm1(t + m)), 6) for t, _ in inner[lv["name"]] for m in medians} - {0.0}
    assert expected and expected <= {round(v, 6) for v, _ in outer[lv["of"]]}
    # one subject's: its own peers' median only
    row = split.test[model.features].iloc[[0]]
    mine = est._medians(lv, {c: row[c].astype(object).to_numpy() for c in est._read()})[0]
    own = est.boundaries_of(row)[lv["of"]]
    assert {round(np.expm1(t + mine), 6) for t, _ in inner[lv["name"]]} <= {round(v, 6) for v, _ in own}
    assert len(own) < len(outer[lv["of"]])


def test_what_if_moves_a_feature_through_its_level():
    from creditgrade.models.whatif import what_would_change

    model, split = sme_fit("lightgbm")
    graded = model.grade(split.test)
    worse = split.test[graded["grade"].to_numpy() != model.scale.order[0]].iloc[:40]
    answers = [what_would_change(model, worse.iloc[[i]]) for i in range(len(worse))]
    reached = [a for a in answers if a["reachable"]]
    assert {c["feature"] for a in reached for c in a["changes"]} & {lv["of"] for lv in model.estimator.levels}
    order = model.scale.order
    assert all(order.index(a["new_grade"]) < order.index(a["grade"]) for a in reached)  # re-scored by the model


def test_catalogue_keeps_levels_out_of_the_feature_matrix():
    from creditgrade.features.catalog import catalog, feature_names

    names = {s.name for s in peer_levels("sme")}
    assert names and not names & set(feature_names("sme")) and not names & {s.name for s in catalog()}
    assert spec("tax_paid_12m_vs_peers").zh and spec("tax_paid_12m_vs_peers").peer_by == ("size", "sector")
    assert peer_levels("household") == []
