"""The regulator's review pack: one self-contained HTML file per segment's model, logged to MLflow.

Sections (each an element with an ``id``): model-card, global-importance, shap-summary, dependence,
roc-ks, calibration, default-rate, validation (:mod:`training.validate`), psi, distribution. Plots are
inline base64 PNGs (matplotlib Agg); SHAP plots use the ``shap`` package on the model's exact
contributions (:mod:`models.explain`: TreeSHAP log-odds for LightGBM, points relative to each
characteristic's best bin for a scorecard). Evaluation is on the out-of-time rows of the training split;
stability compares the training period with the latest as-of date.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import shap
from sklearn.metrics import roc_curve

from features.build import build_training_set
from features.catalog import catalog
from features.frames import Frames
from models.bundle import GradeModel
from models.explain import contributions
from models.registry import Loaded, configure, load_champion
from training import evaluate as ev
from training.pipeline import split_by_date
from training.validate import validate_snapshots, validation_html

matplotlib.use("Agg")  # files only, never a display
SHAP_ROWS = 2000
TOP_DEPENDENCE = 4
GROUPS = {"sme": ("district", "sector", "size"), "household": ("district", "township_code"),
          "practitioner": ("district", "profession")}
USE = {
    "sme": "Probability of default over 12 months and master-scale grade (AAA to C) of small and medium "
           "firms from public-credit records (tax, work safety, quality, labour, credit).",
    "household": "Rural household credit rating (score 0-100; AAA, AA, A or not rated) for credit "
                 "villages and township programmes.",
    "practitioner": "Rating (A to D) of licensed professionals from tax, conduct and credit records.",
}
LIMITS = ("Trained on the platform's records only: subjects with few records get grades close to the "
          "segment average. Grades rank risk; PDs are calibrated on the validation period and should be "
          "re-checked when the PSI shows a shift. Not for use on other segments or outside the data "
          "period, and never as the sole basis of an adverse decision without the stated reasons.")
CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ccc;"
       "padding:2px 6px;text-align:right}th{background:#eee}img{max-width:100%}section{margin-bottom:2em}")


def _png(fig=None) -> str:
    """The figure (current one if None) as an inline <img>, then closed."""
    fig = fig or plt.gcf()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)


def _section(sid: str, title: str, *parts: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>{"".join(parts)}</section>'


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _numeric(X: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as their codes (missing as NaN), for plotting."""
    return X.apply(lambda c: c.cat.codes.where(c.cat.codes >= 0).astype(float)
                   if isinstance(c.dtype, pd.CategoricalDtype) else c.astype(float))


def _model_card(model: GradeModel, loaded: Loaded | None, data: pd.DataFrame) -> str:
    est = model.estimator
    used = set(model.features) if model.kind == "lightgbm" else set(est.selection_["kept"])
    rows = [{"feature": s.name, "meaning": s.en, "含义": s.zh, "unit": s.unit, "risk direction": s.direction,
             "monotone constraint": s.monotone if model.kind == "lightgbm" else "monotone WOE",
             "actionable": s.actionable, "used": s.name in used} for s in catalog(model.segment) if s.model]
    size = (f"{est.size['trees']} trees, {est.size['leaves']} leaves" if model.kind == "lightgbm"
            else f"{len(est.characteristics_)} characteristics, base points {est.base_points_}")
    info = model.info
    facts = pd.DataFrame([
        ("segment", model.segment), ("model", loaded.name if loaded else "(not registered)"),
        ("version", loaded.version if loaded else ""), ("MLflow run", loaded.run_id if loaded else ""),
        ("kind", model.kind), ("size", size),
        ("training period (as-of)", f"{info.get('train_from')} to {info.get('train_to')}"),
        ("out-of-time test period", f"{info.get('test_from')} to {info.get('test_to')}"),
        ("training rows", info.get("rows_train")), ("test rows", info.get("rows_test")),
        ("data in this pack", f"{data.as_of.min().date()} to {data.as_of.max().date()}, {len(data)} rows"),
    ], columns=["", "value"])
    return _section("model-card", "Model card", _table(facts), "<h3>Intended use</h3>", _p(USE[model.segment]),
                    "<h3>Limits</h3>", _p(LIMITS), "<h3>Features (from the catalogue)</h3>",
                    _table(pd.DataFrame(rows)))


def _explanations(model: GradeModel, X: pd.DataFrame) -> tuple[str, str, str]:
    values = contributions(model, X).drop(columns="bias")
    unit = "log-odds (TreeSHAP)" if model.kind == "lightgbm" else "points relative to the best bin"
    importance = values.abs().mean().sort_values(ascending=False)
    top = importance[importance > 0].head(15)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1))
    ax.barh(top.index[::-1], top.to_numpy()[::-1])
    ax.set_xlabel(f"mean |contribution| ({unit})")
    table = pd.DataFrame({"feature": top.index, "mean |contribution|": top.to_numpy()})
    glob = _section("global-importance", "Global importance", _png(fig), _table(table))
    shown = list(top.index)
    Xn = _numeric(X[shown])
    plt.figure()
    shap.summary_plot(values[shown].to_numpy(), Xn, show=False, max_display=15)
    summary = _section("shap-summary", "SHAP summary", _p(f"Contributions in {unit}, one dot per subject."),
                       _png())
    plots = []
    for f in shown[:TOP_DEPENDENCE]:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        shap.dependence_plot(f, values[shown].to_numpy(), Xn, interaction_index=None, ax=ax, show=False)
        plots.append(_png(fig))
    return glob, summary, _section("dependence", "Dependence plots (top features)", *plots)


def _roc_ks(y: np.ndarray, pd_: np.ndarray) -> str:
    fpr, tpr, _ = roc_curve(y, pd_)
    auc, ks = ev.auc(y, pd_), ev.ks(y, pd_)
    flagged = (tpr * y.sum() + fpr * (len(y) - y.sum())) / len(y)  # share of subjects at or above the PD
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(fpr, tpr)
    a1.plot([0, 1], [0, 1], ":", color="grey")
    a1.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC (AUC {auc:.3f})")
    i = int(np.argmax(tpr - fpr))
    a2.plot(flagged, tpr, label="defaulted (cumulative share)")
    a2.plot(flagged, fpr, label="not defaulted (cumulative share)")
    a2.vlines(flagged[i], fpr[i], tpr[i], color="k", label=f"KS {ks:.3f}")
    a2.set(xlabel="share of subjects, riskiest first", title="KS")
    a2.legend()
    return _section("roc-ks", "ROC and KS curves (out of time)", _png(fig),
                    _p(f"AUC {auc:.4f}, Gini {2 * auc - 1:.4f}, KS {ks:.4f} on {len(y)} subjects."))


def _by_grade(y: np.ndarray, graded: pd.DataFrame, order: list[str]) -> tuple[str, str]:
    cal = ev.binomial_test_by_grade(y, graded["pd"], graded["model_grade"], order)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(cal))
    ax.bar(x - 0.2, cal["mean_pd"], 0.4, label="mean PD")
    ax.bar(x + 0.2, cal["observed_rate"], 0.4, label="observed default rate")
    ax.set_xticks(x, cal["grade"])
    ax.legend()
    calibration = _section("calibration", "Calibration by grade", _png(fig), _table(cal))
    rates = ev.default_rate_by_grade(y, graded["model_grade"], order)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(rates["grade"], rates["rate"].fillna(0))
    ax.set_ylabel("default rate")
    mono = ev.is_monotone(rates)
    default = _section("default-rate", "Default rate per grade", _png(fig), _table(rates),
                       _p(f"Default rates {'are' if mono else 'are NOT'} monotone across grades."))
    return calibration, default


def _psi(model: GradeModel, train: pd.DataFrame, latest: pd.DataFrame, score_train, score_latest) -> str:
    score = ev.psi(score_train, score_latest)
    table = ev.psi_table(train[model.features], latest[model.features]).sort_values("psi", ascending=False)
    top = table.head(15)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1))
    ax.barh(top["feature"][::-1], top["psi"][::-1])
    ax.axvline(ev.PSI_WATCH, ls=":", color="orange")
    ax.axvline(ev.PSI_SHIFT, ls=":", color="red")
    ax.set_xlabel("PSI, training period vs latest as-of date")
    return _section("psi", "Population stability (PSI)",
                    _p(f"Score PSI {score:.4f} ({ev.psi_status(score)}); latest as-of date "
                       f"{latest.as_of.max().date()}, {len(latest)} subjects."), _png(fig), _table(top))


def _distribution(graded: pd.DataFrame, subjects: pd.DataFrame, order: list[str], groups) -> str:
    parts = []
    for col in groups:
        if col not in subjects or subjects[col].isna().all():
            continue
        by = subjects[col].reindex(graded.index).fillna("(unknown)").astype(str)
        counts = pd.crosstab(by, graded["grade"]).reindex(columns=order, fill_value=0)
        shares = counts.div(counts.sum(axis=1), axis=0)
        fig, ax = plt.subplots(figsize=(8, 0.25 * len(shares) + 1.5))
        shares.plot.barh(stacked=True, ax=ax, colormap="RdYlGn_r", width=0.8)
        ax.set(xlabel="share of subjects", ylabel=col)
        ax.legend(ncol=len(order), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
        parts += [f"<h3>By {html.escape(col)}</h3>", _png(fig),
                  _table(counts.assign(subjects=counts.sum(axis=1)).reset_index())]
    return _section("distribution", "Grade distribution by group (latest as-of date)", *parts)


def write_review_pack(source, segment: str, out_path, model: GradeModel | Loaded | None = None) -> Path:
    """Write the review pack of ``segment``'s model (the champion if None) as one HTML file.

    ``source`` is a ``features.store.Store`` or ``features.frames.Frames`` holding the segment's data.
    """
    loaded = load_champion(segment) if model is None else model if isinstance(model, Loaded) else None
    gm = loaded.model if loaded else model
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    data = build_training_set(frames, segment)
    split = split_by_date(data)
    train = pd.concat([split.train, split.valid])
    test, latest = split.test, data[data.as_of == data.as_of.max()]
    y = test["defaulted"].to_numpy()
    graded = gm.grade(test)
    order = gm.scale.order
    sample = test.sample(min(SHAP_ROWS, len(test)), random_state=0)
    subjects = frames.subjects[frames.subjects["segment"] == segment].set_index("subject_key")
    latest_graded = gm.grade(latest)
    glob, summary, dependence = _explanations(gm, sample)
    calibration, default = _by_grade(y, graded, order)
    body = [
        _model_card(gm, loaded, data), glob, summary, dependence, _roc_ks(y, graded["pd"].to_numpy()),
        calibration, default,
        _section("validation", "Band validation: Jeffreys test per as-of date and grade 等级PD回溯检验",
                 validation_html(validate_snapshots(test, gm, subjects,
                                                  f"{loaded.name} v{loaded.version}" if loaded else ""))),
        _psi(gm, train, latest, gm.grade(train)["score"], latest_graded["score"]),
        _distribution(latest_graded, subjects, order, GROUPS[segment]),
    ]
    title = f"creditgrade review pack: {segment} ({gm.kind})"
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
                   f'</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{"".join(body)}'
                   "</body></html>", encoding="utf-8")
    return out


def log_review_pack(source, segment: str, out_path, loaded: Loaded | None = None) -> Path:
    """Write the review pack of a registered model (the champion if None) and log it to that model's
    MLflow run under ``review/``."""
    configure()
    loaded = loaded or load_champion(segment)
    path = write_review_pack(source, segment, out_path, loaded)
    with mlflow.start_run(run_id=loaded.run_id):
        mlflow.log_artifact(str(path), artifact_path="review")
    return path
