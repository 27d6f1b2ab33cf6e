"""Model monitoring: population stability of the score and of every feature between the model's training
window and each quarter, default rate per grade over time, and AUC on the quarters the model never saw.

Levels are relative to the model's own training reference: the PSI a column already reached across the
quarters of the training window (the drift the model was trained through) is its tolerance, and a quarter
after training is "watch" from 0.10 above it and "act" from 0.25 above it. An alert fires when a column's
level rises (ok to watch, watch to act, ok to act), not again while it stays there; ``state`` is each
column's level in the latest quarter, which ``creditgrade monitor --fail-on act`` turns into an exit code.
Written to a styled, bilingual HTML report with a chart per segment and logged to MLflow (experiment
"creditgrade-monitor").
"""
from __future__ import annotations

import html
import io
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from creditgrade.features.build import build_features
from creditgrade.features.catalog import spec
from creditgrade.features.frames import Frames
from creditgrade.models.bundle import GradeModel
from creditgrade.models.registry import Loaded, configure, experiment_id, load_champion
from creditgrade.training.evaluate import PSI_SHIFT, PSI_WATCH, auc, psi
from creditgrade.training.page import page, png_img

EXPERIMENT = "creditgrade-monitor"


SCORE = "score"
LEVELS = ("", "watch", "act")
LEVEL_ZH = {"": "正常", "watch": "关注", "act": "需处置"}


def flag(value: float) -> str:
    """"act" from 0.25, "watch" from 0.10, else "" (NaN: "")."""
    return "act" if value >= PSI_SHIFT else "watch" if value >= PSI_WATCH else ""


def _name(column: str) -> str:
    return "score 评分" if column == SCORE else f"{column} {spec(column).zh}"


def quarter_ends(frames: Frames, segment: str, start) -> list[pd.Timestamp]:
    """Quarter ends from ``start`` to the last one on or before the segment's latest record start date
    (the end of its history: later snapshots would miss records not yet happened, not a real shift)."""
    recs = frames.records[frames.records["segment"] == segment]
    end = recs["start_date"].max()
    return list(pd.date_range(pd.Timestamp(start), end, freq="QE"))


def snapshots(frames: Frames, segment: str, dates, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Features at each date stacked, with ``as_of`` and ``defaulted`` (NaN where no matured outcome);
    ``progress(message)`` hears of each date."""
    outcomes = frames.outcomes[(frames.outcomes["segment"] == segment) & (frames.outcomes["horizon_months"] == 12)]
    labels = outcomes.set_index(["subject_key", "as_of"])["defaulted"]
    parts = []
    for i, day in enumerate(dates, 1):
        if progress:
            progress(f"{segment}: features as of {pd.Timestamp(day).date()} ({i}/{len(dates)}) 构建特征")
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
    columns = [SCORE, *model.features]
    psis = pd.DataFrame({day: {c: psi(base[c], part[c]) for c in columns} for day, part in snaps.groupby("as_of")}).T
    period = pd.Series(np.where(psis.index < lo, "before", np.where(psis.index <= hi, "train", "after")),
                       index=psis.index)
    reference = psis[period == "train"].max()  # the drift the model was trained through
    levels = (psis - reference).map(flag).where(period == "after", "")
    rows, rates = [], {}
    for day, part in snaps.groupby("as_of"):
        matured = part[part["defaulted"].notna()]
        y = matured["defaulted"]
        rates[day] = matured.groupby("grade")["defaulted"].mean()
        level, features = levels.loc[day], psis.loc[day, model.features]
        unseen = period[day] == "after"  # AUC only where the model never saw the data
        rows.append({"as_of": day, "period": period[day], "n": len(part), "psi_score": psis.loc[day, SCORE],
                     "flag": level[SCORE], "features_watch": int((level[model.features] == "watch").sum()),
                     "features_act": ", ".join(f for f in model.features if level[f] == "act"),
                     "max_feature_psi": features.max(), "max_feature": features.idxmax(),
                     "mean_pd": part["pd"].mean(), "default_rate": y.mean() if len(y) else np.nan,
                     "auc": auc(y, matured["pd"]) if unseen and y.nunique() == 2 else np.nan})
    quarters = pd.DataFrame(rows)
    alerts = _alerts(psis, reference, levels[period == "after"])
    quarters["alerts"] = quarters["as_of"].map(alerts.groupby("as_of").size()).fillna(0).astype(int)
    order = [g for g in model.scale.order if g in set(snaps["grade"])]
    last = levels.iloc[-1]
    return {"segment": model.segment, "model": label or model.kind, "train_from": str(lo.date()),
            "train_to": str(hi.date()), "quarters": quarters,
            "feature_psi": psis[model.features].rename_axis("as_of"), "reference": reference,
            "default_rate_by_grade": pd.DataFrame(rates).T.reindex(columns=order).rename_axis("as_of"),
            "alert_table": alerts, "alerts": [_alert_text(a) for a in alerts.itertuples()],
            "state": last[last != ""].to_dict()}


def _alerts(psis: pd.DataFrame, reference: pd.Series, levels: pd.DataFrame) -> pd.DataFrame:
    """One row per rise of a column's level after training: as_of, column, psi, reference, was, level."""
    rank = levels.map(LEVELS.index)
    rose = rank.gt(rank.shift(fill_value=0))
    rows = [{"as_of": day, "column": col, "psi": psis.loc[day, col], "reference": reference[col],
             "was": levels.shift(fill_value="").loc[day, col], "level": levels.loc[day, col]}
            for day, col in rose.stack().loc[lambda x: x].index]
    return pd.DataFrame(rows, columns=["as_of", "column", "psi", "reference", "was", "level"])


def _alert_text(a) -> str:
    return (f"{a.as_of.date()}: {_name(a.column)} PSI {a.psi:.3f} (training reference {a.reference:.3f} 训练期基准) "
            f"{a.was or 'ok'} -> {a.level} ({LEVEL_ZH[a.was]} -> {LEVEL_ZH[a.level]})")


def worst_level(result: dict) -> str:
    """The highest level any column has in the latest quarter ("" if none)."""
    return max(result["state"].values(), key=LEVELS.index, default="")


LEGEND = ("as_of 基准日 · period 期间 (train 训练期, after 训练后) · n 主体数 · score_psi 评分PSI · flag 评分级别 · "
          "watch/act 关注/需处置特征数 · mean_pd 平均PD · default_rate 违约率 · auc_unseen 样本外AUC · alerts 新警报")


def display_table(result: dict) -> pd.DataFrame:
    """The quarters as printed: one short line each, under :data:`LEGEND` (feature names are in the alerts)."""
    q = result["quarters"]
    return pd.DataFrame({
        "as_of": q["as_of"].dt.date, "period": q["period"], "n": q["n"], "score_psi": q["psi_score"].round(3),
        "flag": q["flag"].replace("", "-"), "watch": q["features_watch"],
        "act": q["features_act"].map(lambda s: len(s.split(", ")) if s else 0), "mean_pd": q["mean_pd"].round(4),
        "default_rate": q["default_rate"].round(4), "auc_unseen": q["auc"].round(3), "alerts": q["alerts"]})


def monitor(source, segment: str, model: GradeModel | Loaded | None = None, dates=None,
            progress: Callable[[str], None] | None = None) -> dict:
    """Monitor a segment's model (default: the champion) over a Store or Frames, at quarter ends from the
    start of its training window (or at ``dates``). Returns ``segment, model, train_from, train_to``,
    ``quarters`` (one row per as-of date: period, n, psi_score, flag, features_watch, features_act,
    max_feature_psi, max_feature, mean_pd, default_rate, auc (after training only), alerts),
    ``feature_psi`` (as-of x feature), ``reference`` (each column's largest PSI in training),
    ``default_rate_by_grade`` (as-of x grade), ``alert_table`` and ``alerts`` (rises of a level after
    training) and ``state`` (column -> level in the latest quarter, "watch" or "act"). ``progress(message)``
    hears of each step."""
    loaded = model if model is not None else load_champion(segment)
    label = f"{loaded.name} v{loaded.version}" if isinstance(loaded, Loaded) else ""
    model = loaded.model if isinstance(loaded, Loaded) else loaded
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    dates = quarter_ends(frames, segment, model.info["train_from"]) if dates is None else dates
    return monitor_snapshots(snapshots(frames, segment, dates, progress), model, label)


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
    ax[0, 0].set_title("score PSI vs training window (colour: level above the training reference)")
    ax[0, 1].plot(q["as_of"], q["auc"], marker="o")
    ax[0, 1].set_title("AUC out of time (quarters the model never saw, matured outcomes)")
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


def _styled(table: pd.DataFrame) -> str:
    """The quarters table, each row coloured by its score level, each flag cell by its own."""
    colours = {"act": "background-color:#f8d7da", "watch": "background-color:#fff3cd"}

    def row(r):
        return [colours.get(r["flag"], "")] * len(r)
    return (table.style.apply(row, axis=1).format(precision=4, na_rep="").hide(axis="index")
            .set_table_attributes('class="quarters"').to_html())


def _section(result: dict, png: bytes) -> str:
    alerts = result["alert_table"]
    items = "".join(f'<li class="{html.escape(a.level)}">{html.escape(t)}</li>'
                    for a, t in zip(alerts.itertuples(), result["alerts"])) or "<li class=\"ok\">无 none</li>"
    state = result["state"]
    now = ", ".join(f"{_name(c)}: {lvl} {LEVEL_ZH[lvl]}" for c, lvl in state.items()) or "正常 all within reference"
    return (f"<section><h2>{html.escape(result['segment'])} — {html.escape(result['model'])}</h2>"
            f"<p>训练窗口 Training window {result['train_from']} .. {result['train_to']}。"
            f"级别相对于模型自身训练期的PSI基准：高出0.10为关注，高出0.25为需处置；AUC只计模型未见过的季度。"
            f"<br>Levels are relative to the model's own training reference (the PSI each column reached during "
            f"training): 0.10 above it is watch, 0.25 above it is act; AUC counts only quarters the model never "
            f"saw.</p><h3>最新季度 Latest quarter</h3><p>{html.escape(now)}</p>"
            f"<h3>警报（级别上升时触发）Alerts (when a level rises)</h3><ul class=\"alerts\">{items}</ul>"
            f"{png_img(png, 'monitoring chart 监测图')}<h3>各季度 Quarters</h3><p>{html.escape(LEGEND)}</p>"
            f"{_styled(display_table(result))}"
            "</section>")


def write_monitor_report(results, out_html, log: bool = True) -> Path:
    """Write one HTML report (a section and chart per segment) and, with ``log``, one MLflow run per
    segment in experiment "creditgrade-monitor" (metrics per quarter as steps, report and tables)."""
    results = [results] if isinstance(results, dict) else list(results)
    figs = [chart(r) for r in results]
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(_section(r, _png(f)) for r, f in zip(results, figs))
    out.write_text(page("模型监测 Model monitoring", body), encoding="utf-8")
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
