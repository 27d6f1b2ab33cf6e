"""Model monitoring: population stability of the score and of every feature between the model's training
window and each quarter, default rate per grade over time, and AUC per as-of date where outcomes have
matured; flagged "watch" from PSI 0.10 and "act" from 0.25. Written to an HTML report with a chart per
segment and logged to MLflow (experiment "creditgrade-monitor").
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.build import build_features
from features.frames import Frames
from models.bundle import GradeModel
from models.registry import Loaded, configure, experiment_id, load_champion
from training.evaluate import PSI_SHIFT, PSI_WATCH, auc, psi

EXPERIMENT = "creditgrade-monitor"


def flag(value: float) -> str:
    """"act" from PSI 0.25, "watch" from 0.10, else "" (NaN: "")."""
    return "act" if value >= PSI_SHIFT else "watch" if value >= PSI_WATCH else ""


def quarter_ends(frames: Frames, segment: str, start) -> list[pd.Timestamp]:
    """Quarter ends from ``start`` to the last one on or before the segment's latest record start date
    (the end of its history: later snapshots would miss records not yet happened, not a real shift)."""
    recs = frames.records[frames.records["segment"] == segment]
    end = recs["start_date"].max()
    return list(pd.date_range(pd.Timestamp(start), end, freq="QE"))


def snapshots(frames: Frames, segment: str, dates) -> pd.DataFrame:
    """Features at each date stacked, with ``as_of`` and ``defaulted`` (NaN where no matured outcome)."""
    outcomes = frames.outcomes[(frames.outcomes["segment"] == segment) & (frames.outcomes["horizon_months"] == 12)]
    labels = outcomes.set_index(["subject_key", "as_of"])["defaulted"]
    parts = []
    for day in dates:
        X = build_features(frames, segment, day)
        key = pd.MultiIndex.from_arrays([X.index, np.full(len(X), pd.Timestamp(day))])
        parts.append(X.assign(as_of=pd.Timestamp(day), defaulted=labels.reindex(key).to_numpy(float)))
    return pd.concat(parts)


def monitor_snapshots(snaps: pd.DataFrame, model: GradeModel, label: str = "") -> dict:
    """Monitoring figures of stacked snapshots (see :func:`snapshots`) against the model's training window
    ``model.info["train_from"]..["train_to"]``."""
    graded = model.grade(snaps)
    snaps = snaps.assign(score=graded["score"].to_numpy(), grade=graded["model_grade"].to_numpy(),
                         pd=graded["pd"].to_numpy())
    lo, hi = pd.Timestamp(model.info["train_from"]), pd.Timestamp(model.info["train_to"])
    base = snaps[(snaps["as_of"] >= lo) & (snaps["as_of"] <= hi)]
    if base.empty:
        raise ValueError(f"no snapshots in the training window {lo.date()}..{hi.date()}")
    rows, feature_psi, rates = [], {}, {}
    for day, part in snaps.groupby("as_of"):
        feature_psi[day] = {f: psi(base[f], part[f]) for f in model.features}
        matured = part[part["defaulted"].notna()]
        y = matured["defaulted"]
        rates[day] = matured.groupby("grade")["defaulted"].mean()
        s = psi(base["score"], part["score"])
        worst = sorted(feature_psi[day].items(), key=lambda kv: -kv[1])
        rows.append({"as_of": day, "period": "train" if lo <= day <= hi else "after" if day > hi else "before",
                     "n": len(part), "psi_score": s, "flag": flag(s),
                     "features_watch": sum(PSI_WATCH <= v < PSI_SHIFT for _, v in worst),
                     "features_act": ", ".join(f for f, v in worst if v >= PSI_SHIFT),
                     "max_feature_psi": worst[0][1], "max_feature": worst[0][0], "mean_pd": part["pd"].mean(),
                     "default_rate": y.mean() if len(y) else np.nan,
                     "auc": auc(y, matured["pd"]) if y.nunique() == 2 else np.nan})
    quarters = pd.DataFrame(rows)
    order = [g for g in model.scale.order if g in set(snaps["grade"])]
    after = quarters[quarters["period"] == "after"]
    alerts = [f"{r.as_of.date()}: score PSI {r.psi_score:.3f} ({r.flag})" for r in after.itertuples() if r.flag]
    alerts += [f"{r.as_of.date()}: features to act on: {r.features_act}" for r in after.itertuples() if r.features_act]
    return {"segment": model.segment, "model": label or model.kind, "train_from": str(lo.date()),
            "train_to": str(hi.date()), "quarters": quarters,
            "feature_psi": pd.DataFrame(feature_psi).T.rename_axis("as_of"),
            "default_rate_by_grade": pd.DataFrame(rates).T.reindex(columns=order).rename_axis("as_of"),
            "alerts": alerts}


def monitor(source, segment: str, model: GradeModel | Loaded | None = None, dates=None) -> dict:
    """Monitor a segment's model (default: the champion) over a Store or Frames, at quarter ends from the
    start of its training window (or at ``dates``). Returns ``segment, model, train_from, train_to``,
    ``quarters`` (one row per as-of date: period, n, psi_score, flag, features_watch, features_act,
    max_feature_psi, mean_pd, default_rate, auc), ``feature_psi`` (as-of x feature),
    ``default_rate_by_grade`` (as-of x grade) and ``alerts`` (after the training window)."""
    loaded = model if model is not None else load_champion(segment)
    label = f"{loaded.name} v{loaded.version}" if isinstance(loaded, Loaded) else ""
    model = loaded.model if isinstance(loaded, Loaded) else loaded
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    dates = quarter_ends(frames, segment, model.info["train_from"]) if dates is None else dates
    return monitor_snapshots(snapshots(frames, segment, dates), model, label)


# ---------------------------------------------------------------- report

def chart(result: dict) -> Figure:
    """Score PSI per quarter with the watch / act lines, AUC, default rate per grade, top features' PSI."""
    q = result["quarters"]
    fig = Figure(figsize=(13, 8))
    ax = fig.subplots(2, 2)
    colours = q["flag"].map({"act": "#c0392b", "watch": "#e67e22", "": "#2e86c1"})
    ax[0, 0].bar(q["as_of"], q["psi_score"], width=60, color=colours)
    for level, style in ((PSI_WATCH, "--"), (PSI_SHIFT, "-")):
        ax[0, 0].axhline(level, color="grey", linestyle=style, linewidth=1)
    train = q[q["period"] == "train"]["as_of"]
    for a in ax.flat[:3]:
        if len(train):
            a.axvspan(train.min(), train.max(), color="#eeeeee", zorder=0)
    ax[0, 0].set_title("score PSI vs training window (watch 0.10, act 0.25)")
    ax[0, 1].plot(q["as_of"], q["auc"], marker="o")
    ax[0, 1].set_title("AUC per as-of date (matured outcomes)")
    rates = result["default_rate_by_grade"]
    for grade in rates.columns:
        ax[1, 0].plot(rates.index, rates[grade], marker=".", label=grade)
    ax[1, 0].set_title("12-month default rate per grade")
    ax[1, 0].legend(fontsize=7, ncol=3)
    fpsi = result["feature_psi"]
    top = fpsi.max().sort_values(ascending=False).index[:12]
    im = ax[1, 1].imshow(fpsi[top].T.to_numpy(float), aspect="auto", cmap="OrRd", vmin=0, vmax=0.5)
    ax[1, 1].set_yticks(range(len(top)), top, fontsize=7)
    ax[1, 1].set_xticks(range(len(fpsi)), [d.strftime("%y-%m") for d in fpsi.index], fontsize=6, rotation=90)
    ax[1, 1].set_title("feature PSI (top 12)")
    fig.colorbar(im, ax=ax[1, 1])
    fig.suptitle(f"{result['segment']} — {result['model']} (trained {result['train_from']}..{result['train_to']})")
    fig.tight_layout()
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _section(result: dict, png: bytes) -> str:
    q = result["quarters"].assign(as_of=lambda d: d["as_of"].dt.date)
    alerts = "".join(f"<li>{html.escape(a)}</li>" for a in result["alerts"]) or "<li>none</li>"
    return (f"<h2>{html.escape(result['segment'])} — {html.escape(result['model'])}</h2>"
            f"<p>Training window {result['train_from']} .. {result['train_to']}.</p><h3>Alerts</h3><ul>{alerts}</ul>"
            f"<img src=\"data:image/png;base64,{base64.b64encode(png).decode()}\" alt=\"monitoring chart\">"
            f"{q.to_html(index=False, float_format=lambda v: f'{v:.3f}', na_rep='')}")


def write_monitor_report(results, out_html, log: bool = True) -> Path:
    """Write one HTML report (a section and chart per segment) and, with ``log``, one MLflow run per
    segment in experiment "creditgrade-monitor" (metrics per quarter as steps, report and tables)."""
    results = [results] if isinstance(results, dict) else list(results)
    figs = [chart(r) for r in results]
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(_section(r, _png(f)) for r, f in zip(results, figs))
    out.write_text(f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>creditgrade monitoring</title>"
                   f"</head><body><h1>Model monitoring</h1>{body}</body></html>", encoding="utf-8")
    if log:
        configure()
        for r, fig in zip(results, figs):
            _log(r, fig, out)
    return out


def _log(result: dict, fig: Figure, report: Path) -> None:
    with mlflow.start_run(experiment_id=experiment_id(EXPERIMENT), run_name=f"{result['segment']}-monitor"):
        mlflow.log_params({k: result[k] for k in ("segment", "model", "train_from", "train_to")})
        for step, r in enumerate(result["quarters"].itertuples()):
            mlflow.log_metrics({k: float(getattr(r, k)) for k in ("psi_score", "max_feature_psi", "auc",
                                                                  "default_rate") if getattr(r, k) == getattr(r, k)},
                               step=step)
        mlflow.log_metric("alerts", len(result["alerts"]))
        mlflow.log_figure(fig, f"{result['segment']}_monitor.png")
        mlflow.log_text(result["quarters"].to_csv(index=False), "quarters.csv")
        mlflow.log_text(result["feature_psi"].to_csv(), "feature_psi.csv")
        mlflow.log_artifact(str(report))
