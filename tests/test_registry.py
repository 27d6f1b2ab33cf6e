"""Registered versions (issue 14, item 6): a signature, an input example that grades through the pyfunc,
dependencies pinned to resolvable versions, a description and tags; an unchanged re-run registers nothing.
Training reports its steps, and `creditgrade train` prints its own report without MLflow's notices (item 3)."""
from __future__ import annotations

import json

import pytest
from packaging.requirements import Requirement

from creditgrade.data.sample.generator import generate
from creditgrade.features.frames import Frames


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    from creditgrade.training.pipeline import train_segment

    mp = pytest.MonkeyPatch()
    mp.setenv("CREDITGRADE_HOME", str(tmp_path_factory.mktemp("home")))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    frames = Frames.from_population(generate(n_smes=1200, n_households=10, n_practitioners=10, seed=5))
    heard = []
    yield frames, train_segment(frames, "sme", kinds=("scorecard",), progress=heard.append)[0], heard
    mp.undo()


def test_training_reports_its_steps(registered):
    *_, heard = registered
    assert heard[:2] == ["sme: loading records 读取记录", "sme: building features at every as-of date 构建各基准日特征"]
    assert "sme: fitting scorecard 训练模型" in heard and heard[-1] == "sme: logging scorecard to MLflow 登记模型"


TRAIN = """
import sys
from creditgrade.data.sample.generator import generate
from creditgrade.features.frames import Frames
frames = Frames.from_population(generate(n_smes=1200, n_households=10, n_practitioners=10, seed=6))
Frames.from_store = classmethod(lambda cls, store, segment: frames)  # no store to ingest: the frames at once
from creditgrade.cli import main
sys.exit(main(["train", "--segment", "sme", "--model", "scorecard"]))
"""


def test_train_command_prints_its_report_without_mlflow_notices(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(CREDITGRADE_HOME=str(tmp_path), CREDITGRADE_DB_URL=f"sqlite:///{tmp_path / 'creditgrade.db'}")
    out = subprocess.run([sys.executable, "-c", TRAIN], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sme          scorecard version 1: ") and out.stdout.count("\n") == 1
    assert "out-of-time AUC" in out.stdout and "training window " in out.stdout
    assert out.stderr == ""  # no "Created version", no "Successfully registered model", no INFO lines


def test_registry_follows_the_home_directory(tmp_path, monkeypatch):
    from creditgrade.models.registry import configure, tracking_uri

    monkeypatch.setenv("CREDITGRADE_HOME", str(tmp_path / "a"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configure()  # MLflow writes the URI it is given into the environment; configure takes it back
    monkeypatch.setenv("CREDITGRADE_HOME", str(tmp_path / "b"))
    assert tracking_uri() == f"sqlite:///{tmp_path / 'b'}/mlflow.db"


def test_version_has_signature_example_requirements_description_and_tags(registered):
    import mlflow

    from creditgrade.models.registry import configure, model_name

    _, result, _ = registered
    configure()  # this module's registry (another test may have pointed MLflow elsewhere)
    uri = f"models:/{model_name('sme')}/{result.version}"
    info = mlflow.models.get_model_info(uri)
    inputs = {c["name"]: c["type"] for c in json.loads(info.signature.to_dict()["inputs"])}
    assert inputs["tax_paid_12m"] == "double" and "sector" in inputs
    assert {"pd", "score", "grade"} <= {c["name"] for c in json.loads(info.signature.to_dict()["outputs"])}
    example = mlflow.models.Model.load(uri).load_input_example()
    pyfunc = mlflow.pyfunc.load_model(uri)
    graded = pyfunc.predict(example)  # text categories, as a JSON caller sends them
    assert len(graded) == len(example) == 5 and graded["pd"].between(0, 1).all()
    frames, _, _ = registered
    from creditgrade.features.build import build_features

    matrix = build_features(frames, "sme", "2024-12-31").head(5)  # categories, as features.build makes them
    assert pyfunc.predict(matrix)["pd"].round(12).tolist() == pyfunc.predict(
        matrix.astype({c: object for c in matrix.select_dtypes("category")}))["pd"].round(12).tolist()
    local = mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/model/requirements.txt")
    reqs = [Requirement(line) for line in open(local).read().splitlines() if line and not line.startswith("#")]
    names = {r.name for r in reqs}
    assert {"creditgrade", "lightgbm", "pandas", "scikit-learn", "mlflow"} <= names  # the logged code imports creditgrade
    assert all(str(r.specifier).startswith("==") for r in reqs if r.name != "mlflow")
    version = configure().get_model_version(model_name("sme"), result.version)
    assert version.tags["segment"] == "sme" and version.tags["kind"] == "scorecard"
    assert float(version.tags["oot_auc"]) == pytest.approx(result.metrics["auc"], abs=1e-6)
    assert version.tags["data_period"].count("..") == 1
    assert f"AUC {result.metrics['auc']:.4f}" in version.description and "跨时间检验期" in version.description


def test_unchanged_rerun_registers_nothing(registered):
    from creditgrade.models.registry import configure, model_name
    from creditgrade.training.pipeline import train_segment

    frames, first, _ = registered
    count = len(configure().search_model_versions(f"name='{model_name('sme')}'"))
    again = train_segment(frames, "sme", kinds=("scorecard",))[0]
    assert (again.version, again.run_id, again.new) == (first.version, first.run_id, False)
    assert len(configure().search_model_versions(f"name='{model_name('sme')}'")) == count
