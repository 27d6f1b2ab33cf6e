"""Monitoring: an injected shift is flagged (PSI > 0.25), an unchanged quarter is not; the report is written."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from features.frames import Frames
from features.store import Store
from models.registry import load_champion
from training.monitor import monitor, monitor_snapshots, snapshots, write_monitor_report

D0, D1, D2 = (pd.Timestamp(d) for d in ("2022-12-31", "2023-03-31", "2023-06-30"))


@pytest.fixture(scope="module")
def household(trained):
    mp = pytest.MonkeyPatch()
    mp.setenv("CREDITGRADE_HOME", str(trained.home))
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
    result = monitor(frames, "household", champion, dates=[pd.Timestamp(champion.model.info["train_to"]), D2])
    assert result["model"] == f"{champion.name} v{champion.version}"
    assert result["quarters"]["auc"].between(0, 1).all()
    assert list(result["default_rate_by_grade"].columns) == [
        g for g in champion.model.scale.order if g in result["default_rate_by_grade"].columns]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    out = write_monitor_report(result, tmp_path / "monitor.html")
    page = out.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "household" in page
