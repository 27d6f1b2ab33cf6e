"""The regulator's review pack: one self-contained HTML file per segment's model, logged to MLflow.

Sections (each an element with an ``id``): summary (one screen: the verdict, every rule the pack states with
its threshold and value from ``training/review.toml``, the data period, the pack's date and code version),
model-card, global-importance, shap-summary, dependence, shapes (the shape functions of a family that describes
them, e.g. the EBM: its exact log-odds per bin, which are its reasons), roc-ks, calibration, default-rate, validation
(:mod:`training.validate`), psi, distribution, features (the catalogue, Chinese and English). Features
are named from the catalogue in Chinese and English, headings are bilingual. Plots are
inline base64 PNGs (matplotlib Agg); SHAP plots use the ``shap`` package on the model's exact
contributions (:mod:`models.explain`: TreeSHAP log-odds for LightGBM, points relative to each
characteristic's best bin for a scorecard). Evaluation is on the out-of-time rows of the training split;
stability compares the training period with the latest as-of date.
"""
from __future__ import annotations

import datetime as dt
import html
import io
import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import shap
from sklearn.metrics import roc_curve

from creditgrade.features.build import build_training_set
from creditgrade.features.catalog import catalog, spec
from creditgrade.features.frames import Frames
from creditgrade.models.bundle import GradeModel
from creditgrade.models.explain import contributions
from creditgrade.models.registry import Loaded, code_version, configure, load_champion, model_name
from creditgrade.training import evaluate as ev
from creditgrade.training import validate
from creditgrade.training.page import page, png_img
from creditgrade.training.pipeline import split_by_date
from creditgrade.training.validate import validate_snapshots, validation_html

matplotlib.use("Agg")  # files only, never a display
SHAP_ROWS = 2000
TOP_DEPENDENCE = 4
TOP_SHAPES = 8
GROUPS = {"sme": ("district", "sector", "size"), "household": ("district", "township_code"),
          "practitioner": ("district", "profession")}
NAMES = {"township_code": "township_name"}
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
RULES_FILE = Path(__file__).with_name("review.toml")


@cache
def rules_config() -> dict:
    with RULES_FILE.open("rb") as fh:
        return tomllib.load(fh)


def names(feature: str) -> str:
    """A feature's code with its Chinese and English names from the catalogue."""
    s = spec(feature)
    return f"{feature} {s.zh} / {s.en}"


def english(feature: str) -> str:
    """A feature's English name (plots: the figures' font has no Chinese)."""
    return spec(feature).en


def _png(fig=None) -> str:
    """The figure (current one if None) as an inline <img>, then closed."""
    fig = fig or plt.gcf()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return png_img(buf.getvalue(), "chart 图")


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


def _features(model: GradeModel) -> str:
    used, monotone = set(model.estimator.used_features_), model.estimator.describe()["monotone"]
    rows = [{"feature 特征": s.name, "含义": s.zh, "meaning": s.en, "unit 单位": s.unit,
             "risk direction 风险方向": s.direction, "monotone constraint 单调约束": monotone.get(s.name, ""),
             "actionable 可改善": s.actionable, "used 使用": s.name in used}
            for s in catalog(model.segment) if s.model]
    return _section("features", "特征目录 Features (from the catalogue)", _table(pd.DataFrame(rows)))


def _model_card(model: GradeModel, loaded: Loaded | None, data: pd.DataFrame) -> str:
    size = model.estimator.describe()["summary"]
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
    return _section("model-card", "模型卡 Model card", _table(facts), "<h3>用途 Intended use</h3>",
                    _p(USE[model.segment]), "<h3>局限 Limits</h3>", _p(LIMITS))


def _explanations(model: GradeModel, X: pd.DataFrame) -> tuple[str, str, str]:
    values = contributions(model, X).drop(columns="bias")
    unit = model.estimator.describe()["contributions"]
    importance = values.abs().mean().sort_values(ascending=False)
    top = importance[importance > 0].head(15)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1))
    ax.barh([english(f) for f in top.index[::-1]], top.to_numpy()[::-1])
    ax.set_xlabel(f"mean |contribution| ({unit})")
    table = pd.DataFrame({"feature 特征": [names(f) for f in top.index], "mean |contribution| 平均贡献": top.to_numpy()})
    glob = _section("global-importance", "全局重要性 Global importance", _png(fig), _table(table))
    shown = list(top.index)
    Xn = _numeric(X[shown]).set_axis([english(f) for f in shown], axis=1)
    plt.figure()
    shap.summary_plot(values[shown].to_numpy(), Xn, show=False, max_display=15)
    summary = _section("shap-summary", "SHAP 概览 SHAP summary",
                       _p(f"Contributions in {unit}, one dot per subject. 每点为一个主体的贡献。"), _png())
    plots = []
    for f in shown[:TOP_DEPENDENCE]:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        shap.dependence_plot(english(f), values[shown].to_numpy(), Xn, interaction_index=None, ax=ax, show=False)
        plots.append(_png(fig))
    return glob, summary, _section("dependence", "依赖图 Dependence plots (top features)",
                                   _p("; ".join(names(f) for f in shown[:TOP_DEPENDENCE])), *plots)


def _shapes(model: GradeModel) -> str:
    """The shape functions the family describes (``describe()["details"]["shapes"]``), most important first:
    log-odds per bin, the missing bin apart, declared direction in the title; for a blend, those of each member
    that describes them, times the member's weight (its part of every contribution); a note if none has any."""
    details = model.estimator.describe().get("details", {})
    if details.get("shapes"):
        return _section("shapes", "形状函数 Shape functions",
                        _p("每个特征各分箱的对数几率贡献，与截距相加恰为主体的对数几率（评分卡的分数为其线性换算）。 Each "
                           "feature's log-odds per bin: with the intercept they add up exactly to a subject's log-odds "
                           "(a scorecard's points rescale them)."), *_shape_plots(details["shapes"]))
    parts = []
    for member in details.get("members", []):
        if shapes := member.get("details", {}).get("shapes"):
            w, family = member["weight"], member["family"]
            weighted = [{**shape, "scores": [w * x for x in shape["scores"]], "importance": w * shape["importance"]}
                        for shape in shapes]
            parts += [_p(f"融合模型的 {family} 成员：各分箱对数几率乘以其权重 {w:.2f}，即它在每个特征贡献中的份额；其他成员的"
                         f"效应见上方依赖图。 The blend's {family} member, each bin's log-odds times its weight {w:.2f}: "
                         f"its part of each feature's contribution; the other members' parts are in the dependence "
                         f"plots above."), *_shape_plots(weighted)]
    if not parts:
        parts = [_p("此模型不提供形状函数，效应见上方依赖图。 This model gives no shape functions: the dependence plots "
                    "above show its effects.")]
    return _section("shapes", "形状函数 Shape functions", *parts)


def _shape_plots(shapes: list[dict]) -> list[str]:
    """The importance table of the first :data:`TOP_SHAPES` shapes, then a plot of each."""
    plots = []
    for s in shapes[:TOP_SHAPES]:
        inner, labels = s["scores"][1:-1], s["bins"][1:-1]
        fig, ax = plt.subplots(figsize=(5, 3))
        if s["type"] == "continuous":
            ax.step(range(len(inner)), inner, where="mid")
            ticks = np.unique(np.linspace(0, len(inner) - 1, min(5, len(inner))).astype(int))
            ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=20, fontsize=7)
        else:
            ax.bar(range(len(inner)), inner)
            ax.set_xticks(range(len(inner)), labels, rotation=20, fontsize=7)
        ax.axhline(s["scores"][0], color="grey", linestyle=":", label="missing")
        ax.legend(fontsize=7)
        direction = {1: "increasing", -1: "decreasing"}.get(s["monotone"], "free")
        ax.set_title(f"{english(s['feature'])} ({direction})", fontsize=9)
        ax.set_ylabel("log-odds")
        plots.append(_png(fig))
    table = pd.DataFrame({"feature 特征": [names(s["feature"]) for s in shapes[:TOP_SHAPES]],
                          "importance 重要性": [s["importance"] for s in shapes[:TOP_SHAPES]]})
    return [_table(table), *plots]


def _peer_levels(model: GradeModel) -> str:
    """The peers each level against peers is measured against (``describe()["details"]["peer_levels"]``): per
    group, the peers' median value at the latest training date; nothing if the model has no such level."""
    levels = model.estimator.describe().get("details", {}).get("peer_levels")
    if not levels:
        return ""
    rows = [{"level 水平": names(name),
             "peers 同类": ", ".join(f"{k}={v}" for k, v in m["group"].items()) or "all 全部",
             "peers' median 同类中位数": round(m["median"], 2)}
            for name, lv in levels.items() for m in lv["medians"]]
    return _section("peer-levels", "同类比较 Levels against peers",
                    _p("每个水平 = log(1+值) − 同类在训练末期的 log(1+值) 中位数；同类不足时用更粗的分组。 Each level is "
                       "log(1 + value) minus its peers' median of that at the latest training date; a group with too "
                       "few rows takes a coarser group's median."), _table(pd.DataFrame(rows)))


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
    return _section("roc-ks", "ROC 与 KS 曲线（跨时间样本）ROC and KS curves (out of time)", _png(fig),
                    _p(f"AUC {auc:.4f}, Gini {2 * auc - 1:.4f}, KS {ks:.4f} on {len(y)} subjects 主体."))


def _by_grade(y: np.ndarray, graded: pd.DataFrame, order: list[str]) -> tuple[str, str]:
    cal = ev.binomial_test_by_grade(y, graded["pd"], graded["model_grade"], order)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(cal))
    ax.bar(x - 0.2, cal["mean_pd"], 0.4, label="mean PD")
    ax.bar(x + 0.2, cal["observed_rate"], 0.4, label="observed default rate")
    ax.set_xticks(x, cal["grade"])
    ax.legend()
    calibration = _section("calibration", "分等级校准 Calibration by grade", _png(fig), _table(cal))
    rates = monotone_rates(y, graded, order)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(rates["grade"], rates["rate"].fillna(0), color=np.where(rates["counted"], "#1f4e79", "#bbbbbb"))
    ax.set_ylabel("default rate (grey: too few subjects to count)")
    default = _section("default-rate", "分等级违约率 Default rate per grade", _png(fig), _table(rates),
                       _p(_rule_text("monotone") + ": " + _monotone_value(rates)))
    return calibration, default


def monotone_rates(y: np.ndarray, graded: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Default rate per model grade, with whether the grade has enough subjects to count in the
    monotonicity rule (``training/validation.toml`` [monotone] min_subjects)."""
    rates = ev.default_rate_by_grade(y, graded["model_grade"], order)
    return rates.assign(counted=rates["n"] >= validate.config()["monotone"]["min_subjects"])


def _monotone_value(rates: pd.DataFrame) -> str:
    least = validate.config()["monotone"]["min_subjects"]
    held = rates[rates["counted"]]
    falls = [f"{a.grade} {a.rate:.2%} > {b.grade} {b.rate:.2%}"
             for a, b in zip(held.itertuples(), held.iloc[1:].itertuples()) if b.rate < a.rate]
    left = [f"{r.grade} {r.defaults}/{r.n}" for r in rates.itertuples() if 0 < r.n < least]
    verdict = "holds 满足" if not falls else f"does NOT hold 不满足 ({'; '.join(falls)})"
    return (f"{verdict}; counted 计入: {', '.join(held['grade']) or 'none 无'}"
            + (f"; not counted, under {least} subjects 主体数不足未计入: {', '.join(left)}" if left else ""))


def _psi(model: GradeModel, train: pd.DataFrame, latest: pd.DataFrame, score: float) -> str:
    table = ev.psi_table(train[model.features], latest[model.features]).sort_values("psi", ascending=False)
    top = table.head(15)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1))
    ax.barh([english(f) for f in top["feature"][::-1]], top["psi"][::-1])
    ax.axvline(ev.PSI_WATCH, ls=":", color="orange")
    ax.axvline(ev.PSI_SHIFT, ls=":", color="red")
    ax.set_xlabel("PSI, training period vs latest as-of date")
    top = top.assign(feature=top["feature"].map(names))
    return _section("psi", "群体稳定性 Population stability (PSI)",
                    _p(f"Score PSI 评分PSI {score:.4f} ({ev.psi_status(score)}); latest as-of date 最新基准日 "
                       f"{latest.as_of.max().date()}, {len(latest)} subjects 主体."), _png(fig), _table(top))


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
        table = counts.assign(subjects=counts.sum(axis=1)).reset_index()
        if col in NAMES and NAMES[col] in subjects:  # the name beside the code (the plot's font has no Chinese)
            names_of = subjects.dropna(subset=[NAMES[col]]).groupby(col)[NAMES[col]].first()
            table.insert(1, "name 名称", table[col].map(names_of))
        parts += [f"<h3>By {html.escape(col)}</h3>", _png(fig), _table(table)]
    return _section("distribution", "分组等级分布（最新基准日）Grade distribution by group (latest as-of date)", *parts)


def _rule_text(name: str, **values) -> str:
    rule = rules_config()["rules"][name]
    values = {"threshold": rule.get("min", rule.get("max")),
              "min_subjects": validate.config()["monotone"]["min_subjects"], **values}
    return f"{rule['zh'].format(**values)} / {rule['en'].format(**values)}"


def verdict(y: np.ndarray, graded: pd.DataFrame, rates: pd.DataFrame, validation: dict,
            score_psi: float) -> pd.DataFrame:
    """Every rule the pack states: rule (with its threshold), value, holds."""
    rules = rules_config()["rules"]
    auc, ks = ev.auc(y, graded["pd"]), ev.ks(y, graded["pd"])
    lights = validation["table"]["light"].value_counts()
    reds = int(lights.get("red", 0))
    light_counts = ", ".join(f"{k} {int(lights.get(k, 0))}" for k in ("red", "amber", "green", "untested"))
    falls = _monotone_value(rates)
    return pd.DataFrame([
        (_rule_text("auc"), f"{auc:.4f}", auc >= rules["auc"]["min"]),
        (_rule_text("ks"), f"{ks:.4f}", ks >= rules["ks"]["min"]),
        (_rule_text("calibration"), f"{reds} red ({light_counts})", reds <= rules["calibration"]["max"]),
        (_rule_text("monotone"), falls, falls.startswith("holds")),
        (_rule_text("stability"), f"{score_psi:.4f}", score_psi < rules["stability"]["max"]),
    ], columns=["rule 规则", "value 结果", "holds 满足"])


def _summary(gm: GradeModel, loaded: Loaded | None, data: pd.DataFrame, checks: pd.DataFrame) -> str:
    ok = bool(checks["holds 满足"].all())
    text = rules_config()["verdict"]["pass" if ok else "fail"]
    info = gm.info
    model_code = "-"
    if loaded is not None:
        model_code = configure().get_model_version(loaded.name, loaded.version).tags.get("code_version", "-")
    facts = pd.DataFrame([
        ("模型 model", f"{loaded.name} v{loaded.version}" if loaded else f"{model_name(gm.segment)} (not registered)"),
        ("类型 kind", gm.kind),
        ("训练期 training period (as-of)", f"{info.get('train_from')} .. {info.get('train_to')}"),
        ("跨时间检验期 out-of-time period", f"{info.get('test_from')} .. {info.get('test_to')}"),
        ("本报告数据 data in this pack", f"{data.as_of.min().date()} .. {data.as_of.max().date()}, {len(data)} rows"),
        ("生成日期 pack date", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("代码版本 code version (git)", f"pack {code_version()}; model trained at {model_code}"),
    ], columns=["", "value"])
    return _section("summary", "摘要 Summary",
                    f'<p class="verdict {"pass" if ok else "fail"}">{html.escape(text["zh"])} / '
                    f'{html.escape(text["en"])}</p>', _table(checks), _table(facts))


def write_review_pack(source, segment: str, out_path, model: GradeModel | Loaded | None = None,
                      progress: Callable[[str], None] | None = None) -> Path:
    """Write the review pack of ``segment``'s model (the champion if None) as one HTML file.

    ``source`` is a ``features.store.Store`` or ``features.frames.Frames`` holding the segment's data;
    ``progress(message)`` hears of each step.
    """
    say = progress or (lambda message: None)
    say(f"{segment}: building features at every as-of date 构建各基准日特征")
    loaded = load_champion(segment) if model is None else model if isinstance(model, Loaded) else None
    gm = loaded.model if loaded else model
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    data = build_training_set(frames, segment)
    split = split_by_date(data)
    window = pd.Timestamp(gm.info["train_from"]), pd.Timestamp(gm.info["train_to"])  # the dates it was fitted on
    train = data[data.as_of.between(*window)]
    test, latest = split.test, data[data.as_of == data.as_of.max()]
    y = test["defaulted"].to_numpy()
    graded = gm.grade(test)
    order = gm.scale.order
    sample = test.sample(min(SHAP_ROWS, len(test)), random_state=0)
    subjects = frames.subjects[frames.subjects["segment"] == segment].set_index("subject_key")
    latest_graded = gm.grade(latest)
    score_psi = ev.psi(gm.grade(train)["score"], latest_graded["score"])
    say(f"{segment}: validating grades and stability 等级检验与稳定性")
    validation = validate_snapshots(test, gm, subjects, f"{loaded.name} v{loaded.version}" if loaded else "")
    checks = verdict(y, graded, monotone_rates(y, graded, order), validation, score_psi)
    say(f"{segment}: explanations (SHAP) and plots 解释与图表")
    glob, summary, dependence = _explanations(gm, sample)
    calibration, default = _by_grade(y, graded, order)
    body = [
        _summary(gm, loaded, data, checks), _model_card(gm, loaded, data), glob, summary, dependence, _shapes(gm),
        _peer_levels(gm),
        _roc_ks(y, graded["pd"].to_numpy()), calibration, default,
        _section("validation", "Band validation: Jeffreys test per as-of date and grade 等级PD回溯检验",
                 validation_html(validation)),
        _psi(gm, train, latest, score_psi),
        _distribution(latest_graded, subjects, order, GROUPS[segment]),
        _features(gm),
    ]
    title = f"模型审查报告 creditgrade review pack: {segment} ({gm.kind})"
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(title, "".join(body)), encoding="utf-8")
    return out


def log_review_pack(source, segment: str, out_path, loaded: Loaded | None = None,
                    progress: Callable[[str], None] | None = None) -> Path:
    """Write the review pack of a registered model (the champion if None) and log it to that model's
    MLflow run under ``review/``."""
    configure()
    loaded = loaded or load_champion(segment)
    path = write_review_pack(source, segment, out_path, loaded, progress)
    with mlflow.start_run(run_id=loaded.run_id):
        mlflow.log_artifact(str(path), artifact_path="review")
    return path
