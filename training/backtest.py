"""Did the warnings work? The configured early-warning triggers (``models.warnings``) run on past as-of
snapshots and measured against the defaults that followed, beside a naive PD cut-off as the anchor.
"""
from __future__ import annotations

import math

import mlflow
import pandas as pd

from creditgrade.features.build import build_training_set, parse_date
from creditgrade.features.frames import Frames
from creditgrade.models.bundle import GradeModel
from creditgrade.models.registry import configure, experiment_id
from creditgrade.models.warnings import LEVELS, WARNINGS_FILE, Moment, fire, record_kinds, triggers

EXPERIMENT = "creditgrade-warnings"


def _months(a: pd.Series, b: pd.Series) -> pd.Series:
    return (b.dt.year - a.dt.year) * 12 + (b.dt.month - a.dt.month)


def _figures(flag: pd.Series, rows: pd.DataFrame, episodes: pd.Series) -> dict:
    """Warned share, precision, recall and median lead time of one boolean flag over snapshot ``rows``."""
    warned = rows[flag.to_numpy()]
    hit = warned[warned["defaulted"] == 1]
    first = hit.groupby("episode")["as_of"].min()
    lead = _months(first, episodes.loc[first.index])
    return {"warned_share": float(flag.mean()), "warned": int(flag.sum()),
            "precision": float(warned["defaulted"].mean()) if len(warned) else math.nan,
            "recall": len(first) / len(episodes) if len(episodes) else math.nan,
            "median_lead_months": float(lead.median()) if len(lead) else math.nan}


def backtest(source, segment: str, model: GradeModel, *, start=None, naive_quantile: float = 0.9,
             log: bool = True) -> pd.DataFrame:
    """Run the triggers at every as-of date of the outcomes table (quarterly) and measure them.

    Each snapshot is compared with the subject's previous snapshot, as a quarterly scan would be. Units:
    a *snapshot* is (subject, as-of date) with an outcome; ``defaulted`` means a default within 12 months
    after it. A *default episode* is a run of consecutive defaulted snapshots of a subject; its last as-of
    date ``T`` is the last quarter end before the default (which falls in the 3 months after ``T``).

    * recall: share of episodes with a warning at one of their snapshots (at most 12 months before);
    * median lead time: over warned episodes, months from the first such warning to ``T`` (a lower bound:
      the default comes 0-3 months after ``T``);
    * precision: share of warned snapshots that default within 12 months.

    Rows: each level, ``any`` level, each trigger, and two anchors: ``naive_p90`` (PD >= its
    ``naive_quantile`` over all snapshots) and ``naive_matched`` (PD cut-off flagging as many snapshots as
    ``any``). Snapshots before ``start`` serve only as previous grades. Logged to MLflow (experiment
    "creditgrade-warnings") when ``log``.
    """
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    data = build_training_set(frames, segment).sort_values("as_of", kind="stable")
    graded = model.grade(data)
    data = data.assign(pd=graded["pd"].to_numpy(), grade=graded["grade"].to_numpy())
    data = data.reset_index().sort_values(["subject_key", "as_of"], kind="stable").reset_index(drop=True)
    data["previous_pd"] = data.groupby("subject_key")["pd"].shift()
    data["previous_grade"] = data.groupby("subject_key")["grade"].shift()
    rules = [t for t in triggers() if t.applies(segment, data.columns)]
    recs = frames.records[(frames.records["segment"] == segment).to_numpy()
                          & frames.records["kind"].isin(record_kinds(rules)).to_numpy()]
    flags = pd.DataFrame(False, index=data.index, columns=[t.name for t in rules])
    for day, part in data.groupby("as_of"):
        snap = part.set_index("subject_key")
        before = snap[["previous_pd", "previous_grade"]].set_axis(["pd", "grade"], axis=1)
        m = Moment(segment, day, model.scale.order, snap, snap[["pd", "grade"]], before, recs)
        for t in rules:
            flags.loc[part.index, t.name] = fire(t, m)
    change = data["defaulted"].ne(data.groupby("subject_key")["defaulted"].shift()) | data["subject_key"].ne(
        data["subject_key"].shift())
    data["episode"] = change.cumsum()
    rows = data if start is None else data[data["as_of"] >= parse_date(start, "start")]
    flags = flags.loc[rows.index]
    episodes = rows[rows["defaulted"] == 1].groupby("episode")["as_of"].max()
    level_of = {t.name: t.level for t in rules}
    named = {lv: flags[[n for n in flags if level_of[n] == lv]].any(axis=1) for lv in LEVELS}
    named["any"] = flags.any(axis=1)
    cut = float(data["pd"].quantile(naive_quantile))
    matched = float(rows["pd"].quantile(1 - named["any"].mean())) if named["any"].any() else math.inf
    named |= {t: flags[t] for t in flags}
    named |= {"naive_p90": rows["pd"] >= cut, "naive_matched": rows["pd"] >= matched}
    table = pd.DataFrame({k: _figures(v, rows, episodes) for k, v in named.items()}).T.astype(float)
    table.insert(0, "level", [level_of.get(k, k if k in LEVELS else "") for k in table.index])
    table.attrs |= {"segment": segment, "snapshots": len(rows), "episodes": len(episodes),
                    "default_rate": float(rows["defaulted"].mean()), "naive_p90_cut": cut,
                    "naive_matched_cut": matched, "from": str(rows["as_of"].min().date()),
                    "to": str(rows["as_of"].max().date())}
    if log:
        _log(table, model)
    return table


def _log(table: pd.DataFrame, model: GradeModel) -> None:
    configure()
    meta = table.attrs
    with mlflow.start_run(experiment_id=experiment_id(EXPERIMENT), run_name=f"{meta['segment']}-backtest"):
        mlflow.log_params({**meta, "model_kind": model.kind, **{f"model.{k}": v for k, v in model.info.items()}})
        mlflow.log_metrics({f"{row}.{col}": float(v) for row, vals in table.drop(columns="level").iterrows()
                            for col, v in vals.items() if v == v})
        mlflow.log_text(table.to_csv(), "backtest.csv")
        mlflow.log_text(WARNINGS_FILE.read_text(encoding="utf-8"), "warnings.toml")
