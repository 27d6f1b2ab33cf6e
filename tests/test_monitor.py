"""Monitoring: an injected shift is flagged (PSI > 0.25), an unchanged quarter is not; levels are relative to
the model's training reference and alerts fire on a rise, not every quarter; AUC only on unseen quarters;
--fail-on gives the scheduler an exit code; the table fits a terminal; the page is styled and bilingual."""
from __future__ import annotations

import dataclasses
import unicodedata

import pandas as pd
import pytest

from creditgrade.features.frames import Frames
from creditgrade.features.store import Store
from creditgrade.models.registry import load_champion
from creditgrade.training.monitor import display_table, monitor, monitor_snapshots, snapshots, worst_level, write_monitor_report
from tests.helpers import point_at

D0, D1, D2, D3, D4 = (pd.Timestamp(d) for d in ("2022-12-31", "2023-03-31", "2023-06-30", "2023-09-30",
                                                "2023-12-31"))


@pytest.fixture(scope="module")
def household(trained):
    mp = pytest.MonkeyPatch()
    point_at(trained, mp)
    store = Store(trained.db_url)
    yield Frames.from_store(store, "household"), load_champion("household")
    store.dispose()
    mp.undo()


def test_injected_shift_is_flagged_and_an_unchanged_quarter_is_not(household):
    frames, champion = household
    base = snapshots(frames, "household", [D0])
    risky = base.iloc[champion.model.pd(base).argsort()[-len(base) // 5:]]  # the riskiest fifth, resampled
    shifted = risky.sample(len(base), replace=True, random_state=0).assign(as_of=D2, fin_dpd_current=89.0)
    model = dataclasses.replace(champion.model, info={"train_from": str(D0.date()), "train_to": str(D0.date())})
    result = monitor_snapshots(pd.concat([base, base.assign(as_of=D1), shifted]), model)
    q = result["quarters"].set_index("as_of")
    assert q["period"].tolist() == ["train", "after", "after"]
    assert q.loc[D1, "psi_score"] < 0.01 and q.loc[D1, "flag"] == "" and q.loc[D1, "features_act"] == ""
    assert q.loc[D2, "psi_score"] > 0.25 and q.loc[D2, "flag"] == "act"
    assert "fin_dpd_current" in q.loc[D2, "features_act"].split(", ")
    assert result["feature_psi"].loc[D2, "fin_dpd_current"] > 0.25
    assert [a for a in result["alerts"] if a.startswith(str(D1.date()))] == []
    assert any(a.startswith(str(D2.date())) for a in result["alerts"])


def test_monitor_report(household, tmp_path, monkeypatch):
    frames, champion = household
    last_trained = pd.Timestamp(champion.model.info["train_to"])
    unseen = pd.Timestamp(champion.model.info["test_to"])
    result = monitor(frames, "household", champion, dates=[last_trained, unseen])
    assert result["model"] == f"{champion.name} v{champion.version}"
    auc = result["quarters"].set_index("as_of")["auc"]
    assert pd.isna(auc[last_trained]) and 0.5 < auc[unseen] < 1  # in-sample AUC is not decay
    assert list(result["default_rate_by_grade"].columns) == [
        g for g in champion.model.scale.order if g in result["default_rate_by_grade"].columns]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    out = write_monitor_report(result, tmp_path / "monitor.html")
    page = out.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "household" in page
    assert "<style>" in page and "模型监测" in page and "Model monitoring" in page and "训练窗口" in page
    assert "http" not in page.replace("data:image/png;base64,", "")  # offline: nothing fetched


def columns(line: str) -> int:
    """Terminal columns a line takes (wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def drift_scenario(frames, champion):
    """Trained on D0..D1 while a feature already drifted (D1: a third of households 30 days past due); after
    training D2 repeats D1, D3 and D4 shift it much further (every household 89 days past due)."""
    base = snapshots(frames, "household", [D0])
    part = base.sample(frac=1 / 3, random_state=1).index
    drifted = base.assign(as_of=D1)
    drifted.loc[part, "fin_dpd_current"] = 30.0
    far = base.assign(fin_dpd_current=89.0)
    model = dataclasses.replace(champion.model, info={"train_from": str(D0.date()), "train_to": str(D1.date())})
    snaps = pd.concat([base, drifted, drifted.assign(as_of=D2), far.assign(as_of=D3), far.assign(as_of=D4)])
    return monitor_snapshots(snaps, model)


def test_levels_are_relative_to_training_and_alerts_fire_on_a_rise(household):
    result = drift_scenario(*household)
    q = result["quarters"].set_index("as_of")
    reference = result["reference"]["fin_dpd_current"]
    assert reference > 0.25  # the drift the model was trained through: absolute PSI would say "act"
    assert q.loc[D2, "features_act"] == "" and q.loc[D2, "alerts"] == 0  # as in training: no alarm
    assert "fin_dpd_current" in q.loc[D3, "features_act"].split(", ")
    assert "fin_dpd_current" in q.loc[D4, "features_act"].split(", ")  # still at act ...
    alerts = result["alert_table"]
    dpd = alerts[alerts["column"] == "fin_dpd_current"]
    assert dpd["as_of"].tolist() == [D3] and dpd["level"].tolist() == ["act"]  # ... but alerted once
    assert q.loc[D4, "alerts"] == 0
    assert result["state"]["fin_dpd_current"] == "act" and worst_level(result) == "act"
    assert any(a.startswith("2023-09-30: fin_dpd_current") and "-> act" in a for a in result["alerts"])


def test_fail_on_act_gives_an_exit_code_and_the_table_fits_a_terminal(household, monkeypatch, tmp_path, capsys):
    from creditgrade import cli
    from creditgrade.training import monitor as monitoring

    result = drift_scenario(*household)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setattr(monitoring, "monitor", lambda store, segment, progress=None: result)
    monkeypatch.setattr("creditgrade.features.store.Store", lambda: None)
    argv = ["monitor", "--segment", "household", "--out", str(tmp_path / "m.html")]
    assert cli.main(argv) == 0
    assert cli.main([*argv, "--fail-on", "act"]) == 1
    assert cli.main([*argv, "--fail-on", "watch"]) == 1
    calm = {**result, "state": {}}
    monkeypatch.setattr(monitoring, "monitor", lambda store, segment, progress=None: calm)
    assert cli.main([*argv, "--fail-on", "act"]) == 0
    table = display_table(result).to_string(index=False)
    assert max(map(columns, table.splitlines())) <= 100  # a terminal's width, Chinese counted double
    out = capsys.readouterr().out
    assert "ALERT 2023-09-30: fin_dpd_current" in out
