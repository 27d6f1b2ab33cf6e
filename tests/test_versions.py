"""Registered versions are self-contained (issue 15 item 2): they grade with the scale and rules they were
trained with whatever the grades file says now, and load from their JSON artifacts after the module that
trained them is renamed, unpickling nothing. Both families keep the estimator protocol (item 1), and two
installations with different identity keys train the same model (item 5)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creditgrade.data.sample.generator import generate
from creditgrade.features.frames import Frames
from tests.helpers import point_at

SEGMENT = "household"  # graded by score, with default and cap rules


@pytest.fixture(scope="module")
def graded(trained):
    """The segment's registered versions (one per family) and the features of its last test date."""
    from creditgrade.features.build import build_features
    from creditgrade.features.store import Store

    mp = pytest.MonkeyPatch()
    point_at(trained, mp)
    versions = [r.version for r in trained.results[SEGMENT]]
    store = Store(trained.db_url)
    from creditgrade.models.registry import load_version

    as_of = load_version(SEGMENT, versions[0]).model.info["test_to"]
    X = build_features(Frames.from_store(store, SEGMENT), SEGMENT, as_of)
    store.dispose()
    yield versions, X
    mp.undo()


def _grades(model, X) -> pd.DataFrame:
    return model.grade(X).drop(columns="override")


def test_editing_the_grades_file_regrades_no_registered_version(graded, trained_env, tmp_path, monkeypatch):
    from creditgrade.models import grades
    from creditgrade.models.bundle import GradeModel
    from creditgrade.models.registry import load_version

    versions, X = graded
    before = {v: _grades(load_version(SEGMENT, v).model, X) for v in versions}
    edited = grades.GRADES_FILE.read_text(encoding="utf-8")
    for old, new in (("score_from = 80", "score_from = 95"), ("score_from = 70", "score_from = 90"),
                     ("score_from = 60 }", "score_from = 85 }")):
        assert old in edited
        edited = edited.replace(old, new)
    path = tmp_path / "grades.toml"
    path.write_text(edited, encoding="utf-8")
    monkeypatch.setattr(grades, "GRADES_FILE", path)
    for v in versions:
        model = load_version(SEGMENT, v).model
        pd.testing.assert_frame_equal(_grades(model, X), before[v])
        fresh = GradeModel(SEGMENT, model.kind, model.estimator, model.features)  # made after the edit
        moved = (_grades(fresh, X)["grade"] != before[v]["grade"]).mean()
        assert moved > 0.2, f"version {v}: the edit moved {moved:.0%} of the grades"  # the edit is real


def test_a_version_carries_its_documents_and_their_hashes(graded, trained_env):
    import mlflow

    from creditgrade.models.registry import configure, model_name

    versions, _ = graded
    client = configure()
    for v in versions:
        tags = client.get_model_version(model_name(SEGMENT), v).tags
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{model_name(SEGMENT)}/{v}"))
        assert not list(local.rglob("*.pkl")) and not (local / "code").exists()  # no pickle, no code copy
        for name in ("estimator", "model", "policy", "texts"):
            (doc,) = local.rglob(f"{name}.json")
            assert tags[f"{name}_sha256"] == hashlib.sha256(doc.read_bytes()).hexdigest()


RENAMED = """
import importlib.util, pickle, sys, types
import cloudpickle
import pandas as pd


def refuse(*args, **kwargs):
    raise AssertionError("a pickle was loaded")


pickle.load = pickle.loads = cloudpickle.load = cloudpickle.loads = refuse
for old, new in (("lgbm", "gbm_renamed"), ("scorecard", "card_renamed")):
    origin = importlib.util.find_spec(f"creditgrade.models.{old}").origin
    module = types.ModuleType(f"creditgrade.models.{new}")
    sys.modules[module.__name__] = module
    exec(compile(open(origin).read(), origin, "exec"), module.__dict__)
    sys.modules[f"creditgrade.models.{old}"] = None  # importing the old name fails from here on
from creditgrade.models import families

families.FAMILIES.update(lightgbm="creditgrade.models.gbm_renamed:LGBMPD",
                         scorecard="creditgrade.models.card_renamed:Scorecard")
from creditgrade.models.registry import load_version

X, out, segment, versions = pd.read_parquet(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
graded = [load_version(segment, v).model for v in versions]
leaves = [e for m in graded for e in getattr(m.estimator, "members", [m.estimator])]  # a blend's members too
assert {type(e).__module__ for e in leaves} == {"creditgrade.models.gbm_renamed", "creditgrade.models.card_renamed"}
pd.concat([m.grade(X).drop(columns="override").assign(version=v) for m, v in zip(graded, versions)]).to_parquet(out)
"""


def test_a_version_loads_after_its_family_module_is_renamed_without_unpickling(graded, trained_env, tmp_path):
    from creditgrade.models.registry import load_version

    versions, X = graded
    X.to_parquet(tmp_path / "X.parquet")
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    run = subprocess.run([sys.executable, "-c", RENAMED, str(tmp_path / "X.parquet"), str(tmp_path / "out.parquet"),
                          SEGMENT, *versions], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    there = pd.read_parquet(tmp_path / "out.parquet")
    here = pd.concat([_grades(load_version(SEGMENT, v).model, X).assign(version=v) for v in versions])
    pd.testing.assert_frame_equal(there, here, check_dtype=False)


@pytest.fixture(scope="module")
def families_fitted():
    """Each family fitted on one small generated segment, and its test rows."""
    from creditgrade.features.build import build_training_set
    from creditgrade.training.pipeline import KINDS, fit_grade_model, split_by_date

    frames = Frames.from_population(generate(n_smes=900, n_households=10, n_practitioners=10, seed=8))
    split = split_by_date(build_training_set(frames, "sme"))
    return {kind: fit_grade_model(kind, "sme", split) for kind in KINDS}, split.test


def test_each_family_keeps_the_protocol(families_fitted):
    from creditgrade.models.estimator import RISK_SIGN, UNITS
    from creditgrade.models.families import from_json

    models, X = families_fitted
    for kind, model in models.items():
        est = model.estimator
        walk = est.walk(X)
        assert est.unit in UNITS and est.family == kind and set(est.used_features_) <= set(model.features)
        np.testing.assert_allclose(walk.pd, model.pd(X), rtol=1e-9, atol=1e-12)
        margin = walk.contributions.sum(axis=1)
        if est.unit == "log-odds":
            np.testing.assert_allclose(margin, np.log(walk.pd / (1 - walk.pd)), atol=1e-9)
        else:
            np.testing.assert_array_equal(margin, walk.score)
            np.testing.assert_array_equal(walk.score, est.own_score(X))
        unused = [j for j, f in enumerate(model.features) if f not in est.used_features_]
        assert not walk.contributions[:, unused].any()
        assert (RISK_SIGN[est.unit] * walk.contributions[:, :-1]).max() > 0  # some feature raises some risk
        again = from_json(kind, est.to_json())  # the family's own document, or its levels against peers around it
        np.testing.assert_array_equal(again.walk(X).contributions, walk.contributions)
        assert again.to_json() == est.to_json() and again.describe()["summary"] == est.describe()["summary"]


def test_two_identity_keys_train_the_same_model(monkeypatch):
    from creditgrade.features import ids
    from creditgrade.features.build import build_training_set
    from creditgrade.training.pipeline import KINDS, Split, fit_grade_model, key_free_order, split_by_date

    pop = generate(n_smes=10, n_households=10, n_practitioners=700, seed=4)
    installs = []
    try:
        for key in ("installation-a-key", "installation-b-key"):
            monkeypatch.setenv("CREDITGRADE_ID_KEY", key)
            ids._key.cache_clear()
            frames = Frames.from_population(pop)
            stored = replace(frames, subjects=frames.subjects.sort_values("subject_key"))  # as features.loader reads
            dated = split_by_date(build_training_set(stored, "practitioner"))
            split = Split(pd.concat([dated.train, dated.valid]), dated.valid.iloc[:0], dated.test)  # own holdout
            installs.append((split, {kind: fit_grade_model(kind, "practitioner", split) for kind in KINDS}))
    finally:
        monkeypatch.undo()
        ids._key.cache_clear()
    (split_a, a), (split_b, b) = installs
    assert set(split_a.train.index).isdisjoint(split_b.train.index)  # the subjects' keys differ
    for kind in KINDS:
        assert a[kind].estimator.to_json() == b[kind].estimator.to_json(), kind
        test_a, test_b = (key_free_order(s.test, a[kind].features) for s in (split_a, split_b))
        np.testing.assert_array_equal(a[kind].pd(test_a), b[kind].pd(test_b))
