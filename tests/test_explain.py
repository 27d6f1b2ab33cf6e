"""Contributions add up, reasons are the risk-raising factors (binding rule first, disputed records marked),
and what-if answers are verified by re-scoring and touch only actionable features."""
import numpy as np
import pandas as pd
import pytest

from creditgrade.features.catalog import spec
from creditgrade.models.estimator import read_table
from creditgrade.models.explain import contributions, explain, explain_row, reasons
from creditgrade.models.peers import PeerLevels
from creditgrade.models.registry import load_version
from creditgrade.models.whatif import what_would_change
from tests.helpers import point_at

SEGMENTS = ("sme", "household", "practitioner")


@pytest.fixture(scope="module")
def models(trained):
    """Both registered kinds of every segment, with the out-of-time rows they were tested on."""
    from creditgrade.features.build import build_training_set
    from creditgrade.features.frames import Frames
    from creditgrade.features.store import Store
    from creditgrade.training.pipeline import split_by_date

    mp = pytest.MonkeyPatch()
    point_at(trained, mp)
    store = Store(trained.db_url)
    out = {}
    for segment in SEGMENTS:
        test = split_by_date(build_training_set(Frames.from_store(store, segment), segment)).test
        for r in trained.results[segment]:
            out[segment, r.kind] = (load_version(segment, r.version).model, test)
    store.dispose()
    mp.undo()
    return out


@pytest.mark.parametrize("segment", SEGMENTS)
@pytest.mark.parametrize("kind", ["lightgbm", "scorecard"])
def test_contributions_add_up_on_every_subject(models, segment, kind):
    model, X = models[segment, kind]
    c = contributions(model, X)
    assert list(c.columns) == [*model.features, "bias"] and c.index.equals(X.index)
    est, inputs = model.estimator, X[model.features]
    if isinstance(est, PeerLevels):  # the family's own total reads the levels as well
        est, inputs = est.estimator, est.inputs_of(inputs)
    if kind == "lightgbm":
        total = est.decision_function(inputs)
        np.testing.assert_allclose(1 / (1 + np.exp(-c.sum(axis=1))), model.pd(X), atol=1e-9)
    else:
        total = est.points(inputs)
        assert (c.drop(columns="bias").to_numpy() <= 0).all()  # points lost against each best bin
        dropped = [f for f in model.features if f not in model.estimator.used_features_]
        assert dropped and (c[dropped].to_numpy() == 0).all()
    np.testing.assert_allclose(c.sum(axis=1).to_numpy(), total, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["lightgbm", "scorecard"])
def test_reasons_are_the_top_risk_raising_factors(models, kind):
    model, X = models["sme", kind]
    X = X.iloc[:400]
    graded = model.grade(X)
    c = contributions(model, X)
    for k in (1, 4):
        out = reasons(model, X, graded, k=k)
        assert len(out) == len(X)
        for (key, row), rs in zip(c.iterrows(), out):
            assert len(rs) <= k
            plain = [r for r in rs if not r.get("override")]
            risk = row.drop("bias") * (1 if kind == "lightgbm" else -1)
            for r in plain:
                assert r["contribution"] == pytest.approx(row[r["feature"]])
                assert risk[r["feature"]] > 0
                s = spec(r["feature"])
                assert (r["en"], r["zh"]) == (s.en, s.zh)
                assert r["unit"] == ("log-odds" if kind == "lightgbm" else "points")
            told = [r["feature"] for r in plain]
            if len(rs) < k:  # every risk-raising factor was told
                assert set(told) | {r["feature"] for r in rs} >= set(risk.index[risk > 0])
            elif told:  # none left out is worse than the last one told
                rest = risk.drop([r["feature"] for r in rs], errors="ignore")
                assert rest.max() <= risk[told[-1]] + 1e-12


def test_binding_rule_is_the_first_reason_with_its_record(models):
    model, X = models["sme", "scorecard"]
    X = X.copy()
    X.iloc[:5, X.columns.get_loc("list_safety_blacklist")] = 1.0
    X.iloc[:5, X.columns.get_loc("list_safety_blacklist_record")] = 990001.0
    graded = model.grade(X)
    got = explain(model, X, k=3)[1]
    bound = graded["override"].notna().to_numpy()
    assert bound[:5].any()
    for rs, rule, record, since in zip(got, graded["override"], graded["record"], graded["since"]):
        if rule is None:
            assert not any(r.get("override") for r in rs)
            continue
        first = rs[0]
        assert first["override"] is True and first["cap"] == rule.cap and first["feature"] == rule.feature
        assert (first["en"], first["zh"]) == (rule.text("en", record, since), rule.text("zh", record, since))
        assert first["record_id"] == int(record) and f"record {int(record)}" in first["en"]
        assert len(rs) <= 3 and rule.feature not in [r["feature"] for r in rs[1:]]
    listed = graded["override"].map(lambda r: r is not None and r.feature == "list_safety_blacklist").to_numpy()
    assert listed[:5].any() and (graded["record"].to_numpy()[listed[:5].nonzero()[0]] == 990001).all()


def test_explain_grades_as_the_model_does(models):
    for segment in SEGMENTS:
        for kind in ("lightgbm", "scorecard"):
            model, X = models[segment, kind]
            graded, rs = explain(model, X)
            expected = model.grade(X)
            assert (graded["grade"] == expected["grade"]).all()
            np.testing.assert_allclose(graded["pd"], expected["pd"], rtol=1e-12)
            assert len(rs) == len(X)


def test_categorical_values_are_labels_and_disputed_records_are_marked(models):
    model, X = models["sme", "scorecard"]
    out = reasons(model, X, k=4)
    sector = [r for rs in out for r in rs if r["feature"] == "sector"]
    assert sector and all(r["value"] in spec("sector").categories for r in sector)
    i = next(i for i, rs in enumerate(out) if rs)
    key, feature = X.index[i], out[i][0]["feature"]
    disputed = {key: [(901, [feature]), (902, ["some_other_feature"])]}
    marked = reasons(model, X.iloc[[i]], k=4, disputed=disputed)[0]
    assert marked[0]["disputed_records"] == [901]
    assert all(r["disputed_records"] == [] for r in marked[1:])


@pytest.mark.parametrize("segment,kind", [("sme", "scorecard"), ("household", "lightgbm"),
                                          ("practitioner", "scorecard")])
def test_what_would_change_is_verified_and_actionable(models, segment, kind):
    model, X = models[segment, kind]
    graded = model.grade(X)
    order = model.scale.order
    rows = [i for i in range(len(X)) if graded["grade"].iloc[i] != order[0]][:200]
    found = 0
    for i in rows:
        if found == 5:  # enough verified lifts; most subjects of a conduct-driven card cannot be lifted in 3 steps
            break
        x = X.iloc[[i]]
        out = what_would_change(model, x)
        assert out["grade"] == graded["grade"].iloc[i]
        assert out["target_grade"] == order[order.index(out["grade"]) - 1]
        if not out["reachable"]:
            assert out["changes"] == []
            continue
        found += 1
        assert 1 <= len(out["changes"]) <= 3
        changed = x.copy()
        for ch in out["changes"]:
            assert spec(ch["feature"]).actionable
            assert ch["from"] == pytest.approx(float(x[ch["feature"]].iloc[0]))
            changed[ch["feature"]] = ch["to"]
        again = model.grade(changed).iloc[0]  # re-scored independently
        assert again["grade"] == out["new_grade"] and again["pd"] == pytest.approx(out["new_pd"])
        assert order.index(again["grade"]) <= order.index(out["target_grade"])
    assert found, "no subject could be lifted"


def test_what_would_change_says_when_already_best(models):
    best = [(model, X.iloc[[i]]) for model, X in models.values()
            for i in np.flatnonzero((model.grade(X)["grade"] == model.scale.order[0]).to_numpy())[:1]]
    assert best  # some model grades some tested subject at the scale's best grade
    for model, row in best:
        out = what_would_change(model, row)
        assert out["best"] and not out["reachable"] and out["target_grade"] is None and out["changes"] == []


def test_what_if_candidates_are_actionable_directed_features_only(models):
    from creditgrade.models.whatif import _candidates

    for (segment, kind), (model, X) in models.items():
        for i in range(0, len(X), max(1, len(X) // 20)):
            for f in _candidates(model, X.iloc[[i]]):
                s = spec(f)
                assert s.actionable and not s.categorical and s.direction in ("up", "down"), (segment, kind, f)


@pytest.mark.parametrize("segment", SEGMENTS)
def test_one_row_without_a_frame_equals_the_frame_path(models, segment):
    """``explain_row`` (serving's one-subject path: a table and the features by name, no frame) gives every
    registered kind's grade and reasons exactly as ``explain`` does on a frame, binding rules included."""
    for kind in ("lightgbm", "scorecard"):
        model, X = models[segment, kind]
        graded, why = explain(model, X)
        bound = np.flatnonzero(graded["override"].notna().to_numpy())
        assert len(bound), "some subject should be bound by a policy rule"
        for i in [*range(30), *bound[:10].tolist()]:
            row = X.iloc[[i]]
            columns = {n: row[n].array if isinstance(row[n].dtype, pd.CategoricalDtype) else row[n].to_numpy(float)
                       for n in row.columns if n != "as_of"}
            out, reasons_ = explain_row(model, X.index[i], columns, read_table(row, model.features))
            expected = graded.iloc[i]
            assert out["pd"] == pytest.approx(expected["pd"], abs=1e-12), kind
            assert [out[c] for c in ("score", "model_grade", "grade")] == [expected[c] for c in
                                                                           ("score", "model_grade", "grade")]
            assert out["override"] is expected["override"] and reasons_ == why[i], kind


def test_a_boundary_at_lightgbm_s_zero_threshold_proposes_zero():
    """LightGBM splits zero from the rest at 1e-35: the value to propose below it is 0, not 1e-35."""
    from creditgrade.models.whatif import _nice

    assert _nice(1e-35, False, True, False) == 0.0
    assert _nice(1e-35, False, False, False) == 0.001
    assert _nice(2512.3, False, True, False) == 2510.0  # other boundaries as before
