"""Did the warnings work? The early-warning signals (the triggers of ``models.warnings`` and, when given,
the warning model's levels) run on past quarterly as-of snapshots, measured out of time against the defaults
that followed, each beside the naive anchor: the grade model's PD above a cut-off matched on warned share
(and, where the true PD is known, as in the generated sample, the same cut-off on it: the ceiling).
"""
from __future__ import annotations

import math

import mlflow
import pandas as pd
from scipy.stats import binomtest

from creditgrade.features.build import build_training_set, parse_date
from creditgrade.features.frames import Frames
from creditgrade.features.snapshot import DAYS_PER_MONTH
from creditgrade.models.bundle import GradeModel
from creditgrade.models.registry import configure, experiment_id
from creditgrade.models.warnings import (LEVELS, WARNINGS_FILE, Moment, default_records, fire, firm_codes,
                                         link_kinds, links_in_force, record_kinds, tripping, triggers)

EXPERIMENT = "creditgrade-warnings"
SUMMARY = (*LEVELS, "any")
FIGURES = ("warned_share", "warned", "precision", "precision_low", "recall", "lead_median", "lead_q25",
           "lead_q75")


def with_history(frames: Frames, segment: str, model: GradeModel, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every outcome snapshot of the segment (``data``, the training set, built if not given) graded by
    ``model``, with the subject's previous snapshot's PD and grade (as a quarterly scan compares), its default
    episode, the episode's first as-of date (``episode_from``) and its default date."""
    data = build_training_set(frames, segment) if data is None else data
    graded = model.grade(data)
    data = data.assign(pd=graded["pd"].to_numpy(), grade=graded["grade"].to_numpy())
    data = data.reset_index().sort_values(["subject_key", "as_of"], kind="stable").reset_index(drop=True)
    by_subject = data.groupby("subject_key")
    data["previous_pd"] = by_subject["pd"].shift()
    data["previous_grade"] = by_subject["grade"].shift()
    change = data["defaulted"].ne(by_subject["defaulted"].shift()) | data["subject_key"].ne(
        data["subject_key"].shift())
    data["episode"] = change.cumsum()
    data["episode_from"] = data.groupby("episode")["as_of"].transform("min").where(data["defaulted"] == 1)
    data["default_at"] = default_dates(data, frames.records)
    return data


def default_dates(data: pd.DataFrame, records: pd.DataFrame) -> pd.Series:
    """Per snapshot of a default episode, the date of its default: the first default event
    (``[defaults] events`` of warnings.toml) starting after the episode's last as-of date and within
    12 months of its first; NaT elsewhere or when no event shows it."""
    found = default_records(records)
    events = found[["start_date"]].assign(subject_key=found["subject_key"].astype(str))
    bad = data[data["defaulted"] == 1]
    span = bad.groupby("episode").agg(subject_key=("subject_key", "first"), first=("as_of", "min"),
                                      last=("as_of", "max"))
    pairs = span.reset_index().merge(events, on="subject_key")
    inside = (pairs["start_date"] > pairs["last"]) & (pairs["start_date"] <= pairs["first"] + pd.DateOffset(months=12))
    when = pairs[inside].groupby("episode")["start_date"].min()
    return data["episode"].map(when).where(data["defaulted"] == 1)


def trigger_flags(frames: Frames, segment: str, model: GradeModel, data: pd.DataFrame) -> pd.DataFrame:
    """Whether each configured trigger fires at each snapshot of ``data`` (columns: trigger names); contagion
    last, from the snapshot's own warnings at its spreading levels and the defaults reported lately."""
    rules = [t for t in triggers() if t.applies(segment, data.columns)]
    mine = frames.records[(frames.records["segment"] == segment).to_numpy()]
    recs = mine[mine["kind"].isin(record_kinds(rules) + link_kinds()).to_numpy()]
    defaults = default_records(mine)
    tripped = {t.name: tripping(t, recs) for t in rules if t.type == "record"}
    flags = pd.DataFrame(False, index=data.index, columns=[t.name for t in rules])
    spreading = [t for t in rules if t.type == "contagion"]
    firms = firm_codes(data["subject_key"].unique())
    for day, part in data.groupby("as_of"):
        snap = part.set_index("subject_key")
        before = snap[["previous_pd", "previous_grade"]].set_axis(["pd", "grade"], axis=1)
        m = Moment(segment, day, model.scale.order, snap, snap[["pd", "grade"]], before, recs, tripped)
        for t in rules:
            if t.type != "contagion":
                flags.loc[part.index, t.name] = fire(t, m)
        for t in spreading:
            at = flags.loc[part.index, [r.name for r in rules if r.level in t.params["spread"]
                                        and r.type != "contagion"]].any(axis=1).to_numpy()
            lately = defaults["reported_date"].between(day - pd.Timedelta(days=t.params["within_days"]), day)
            m.sick = frozenset(snap.index[at]) | frozenset(defaults.loc[lately.to_numpy(), "subject_key"].astype(str))
            m.links = links_in_force(recs, day, firms)
            flags.loc[part.index, t.name] = fire(t, m)
    return flags


def figures(flag: pd.Series, rows: pd.DataFrame) -> dict:
    """Warned share, precision (and the lower end of its 95 % Wilson interval), recall and lead time (median
    and quartiles, months from an episode's first warning to its default) of one boolean flag over snapshot
    ``rows`` (one period's): recall and lead over the episodes that begin in the period, so that each is
    seen from its first snapshot (one begun before it belongs to the period before)."""
    mine = (rows["defaulted"] == 1) & (rows["episode_from"] >= rows["as_of"].min())
    episodes = rows.loc[mine, "episode"].nunique()
    warned = rows[flag.to_numpy()]
    hit = warned[mine.to_numpy()[flag.to_numpy()]]
    first = hit.groupby("episode").agg(as_of=("as_of", "min"), default_at=("default_at", "first"))
    lead = ((first["default_at"] - first["as_of"]).dt.days / DAYS_PER_MONTH).dropna()
    quart = lead.quantile([0.25, 0.5, 0.75]) if len(lead) else pd.Series(math.nan, index=[0.25, 0.5, 0.75])
    return {"warned_share": float(flag.mean()), "warned": int(flag.sum()),
            "precision": float(warned["defaulted"].mean()) if len(warned) else math.nan,
            "precision_low": (binomtest(int(warned["defaulted"].sum()), len(warned)).proportion_ci(method="wilson").low
                              if len(warned) else math.nan),
            "recall": len(first) / episodes if episodes else math.nan,
            "lead_median": float(quart[0.5]), "lead_q25": float(quart[0.25]), "lead_q75": float(quart[0.75])}


def naive(rows: pd.DataFrame, share: float, column: str = "pd") -> pd.Series:
    """The anchor: PD (``column``) at or above the cut-off that warns ``share`` of ``rows``."""
    if share <= 0:
        return pd.Series(False, index=rows.index)
    return rows[column] >= rows[column].quantile(1 - share)


def measure(flags: pd.DataFrame, levels: dict[str, str], rows: pd.DataFrame) -> pd.DataFrame:
    """Per level, any level and each signal: the figures, the anchor's at the same warned share
    (``naive_*``), ``recall_gain`` (recall minus the anchor's) and, where ``rows`` have the true PD
    (``oracle_pd``), the same cut-off on it (``oracle_*``: the ceiling a PD can reach at that share)."""
    flags = flags.loc[rows.index]
    named = {lv: flags[[n for n in flags if levels[n] == lv]].any(axis=1) for lv in LEVELS}
    named["any"] = flags.any(axis=1)
    named |= {n: flags[n] for n in flags}
    out = {}
    for name, flag in named.items():
        own, anchor = figures(flag, rows), figures(naive(rows, float(flag.mean())), rows)
        out[name] = {**own, **{f"naive_{k}": v for k, v in anchor.items() if k not in ("warned_share", "warned")},
                     "recall_gain": own["recall"] - anchor["recall"]}
        if "oracle_pd" in rows:
            ceiling = figures(naive(rows, float(flag.mean()), "oracle_pd"), rows)
            out[name] |= {f"oracle_{k}": ceiling[k] for k in ("precision", "recall", "lead_median")}
    table = pd.DataFrame(out).T.astype(float)
    table.insert(0, "level", [levels.get(k, k) for k in table.index])
    return table


def weak_triggers(table: pd.DataFrame, levels: dict[str, str], min_fired: int = 20) -> list[str]:
    """The rules (``levels``: trigger name -> level) of a development-period ``table`` that fired at least
    ``min_fired`` times with the lower end of their precision's 95 % interval below the period's default rate:
    the rule that removes a trigger from a segment is decided there, never on the test period."""
    rules = table.loc[[n for n in levels if n in table.index]]
    weak = (rules["warned"] >= min_fired) & (rules["precision_low"] < table.attrs["default_rate"])
    return rules.index[weak].tolist()


def periods(data: pd.DataFrame, model: GradeModel, dev_dates: int = 4) -> dict[str, tuple]:
    """The out-of-time periods: ``test`` from the grade model's first test date on, ``dev`` the
    ``dev_dates`` as-of dates before it (where thresholds are tuned)."""
    test_from = parse_date(model.info["test_from"], "test_from")
    dates = sorted(d for d in data["as_of"].unique() if d < test_from)
    return {"dev": (dates[-dev_dates], dates[-1]), "test": (test_from, data["as_of"].max())}


def backtest(source, segment: str, model: GradeModel, *, periods_wanted=("dev", "test"), extra=None,
             data: pd.DataFrame | None = None, log: bool = True, oracle: pd.DataFrame | None = None
             ) -> dict[str, pd.DataFrame]:
    """Run the triggers (and ``extra`` signals: a function of the snapshots and the triggers' flags returning
    boolean columns and their levels) at every quarterly as-of date of the outcomes table and measure them over
    each of ``periods_wanted`` (``dev``, ``test``, ``all``); earlier snapshots serve only as previous grades.
    ``data``: the segment's training set, if built already; ``oracle``: the true PD where known (columns
    ``subject_key``, ``as_of``, ``true_pd``) for the ceiling (``oracle_*``).

    A *snapshot* is (subject, as-of date) with an outcome; ``defaulted`` means a default within 12 months
    after it. A *default episode* is a run of consecutive defaulted snapshots of a subject; it belongs to
    the period of its first snapshot. A warning is a flag at one scan (snapshot); it does not persist.
    * warned share: share of the period's snapshots warned;
    * precision: share of warned snapshots that default within 12 months;
    * recall: share of the period's episodes warned at one of their snapshots;
    * lead: months from an episode's first warning to its default date (``default_dates``);
    * ``naive_*``: the same for the PD cut-off warning the same share of the period's snapshots.
    Each table is logged to MLflow (experiment "creditgrade-warnings") when ``log``.
    """
    frames = source if isinstance(source, Frames) else Frames.from_store(source, segment)
    data = with_history(frames, segment, model, data)
    if oracle is not None:
        truth = oracle.assign(subject_key=oracle["subject_key"].astype(str), as_of=pd.to_datetime(oracle["as_of"]))
        keys = data[["subject_key", "as_of"]].astype({"subject_key": str})
        data["oracle_pd"] = keys.merge(truth[["subject_key", "as_of", "true_pd"]], how="left")["true_pd"].to_numpy()
    flags = trigger_flags(frames, segment, model, data)
    levels = {t.name: t.level for t in triggers() if t.name in flags}
    if extra is not None:
        more, more_levels = extra(data, flags)
        flags, levels = flags.join(more), levels | more_levels
    spans = periods(data, model) | {"all": (data["as_of"].min(), data["as_of"].max())}
    tables = {}
    for period in periods_wanted:
        rows = data[data["as_of"].between(*spans[period])]
        table = measure(flags, levels, rows)
        table.attrs |= {"segment": segment, "period": period, "snapshots": len(rows),
                        "episodes": int(rows.loc[rows["episode_from"] >= spans[period][0], "episode"].nunique()),
                        "default_rate": float(rows["defaulted"].mean()), "from": str(rows["as_of"].min().date()),
                        "to": str(rows["as_of"].max().date())}
        if log:
            _log(table, model)
        tables[period] = table
    return tables


def _log(table: pd.DataFrame, model: GradeModel) -> None:
    configure()
    meta = table.attrs
    with mlflow.start_run(experiment_id=experiment_id(EXPERIMENT),
                          run_name=f"{meta['segment']}-backtest-{meta['period']}"):
        mlflow.log_params({**meta, "model_kind": model.kind, **{f"model.{k}": v for k, v in model.info.items()}})
        mlflow.log_metrics({f"{row}.{col}": float(v) for row, vals in table.drop(columns="level").iterrows()
                            for col, v in vals.items() if v == v})
        mlflow.log_text(table.to_csv(), "backtest.csv")
        mlflow.log_text(WARNINGS_FILE.read_text(encoding="utf-8"), "warnings.toml")


def display(table: pd.DataFrame) -> str:
    """A backtest table as text: its period and base rate, then the levels, any level, and each signal
    with the anchor beside it (leads in months)."""
    a = table.attrs
    head = (f"{a['segment']} {a['period']} {a['from']}..{a['to']}: {a['snapshots']} snapshots, {a['episodes']} default "
            f"episodes, default rate {a['default_rate']:.3f} / {a['segment']} {a['period']}: 快照 {a['snapshots']}，"
            f"违约事件 {a['episodes']}，违约率 {a['default_rate']:.3f}")
    cols = ["level", "warned", "warned_share", "precision", "precision_low", "recall", "lead_q25", "lead_median",
            "lead_q75", "naive_precision", "naive_recall", "naive_lead_median", "recall_gain"]
    cols += [c for c in ("oracle_recall", "oracle_lead_median") if c in table]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        body = table[cols].to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")
    return f"{head}\n{body}"
