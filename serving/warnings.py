"""Early warnings: scan a segment as of a date, store the grades and the red / orange / yellow warnings
with their evidence, list and acknowledge them; and backtest the same triggers on past as-of snapshots.

The triggers are configuration (``serving/warnings.toml``). :func:`fire` evaluates one trigger over all
subjects at one as-of date from plain frames, so the stored scan and :func:`backtest` run the very same
rules. The backtest lives here rather than in ``training`` because training may not import serving.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import operator
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from features.build import build_features, build_training_set, check_as_of, parse_date
from features.errors import CreditgradeError
from features.frames import Frames, normalise_records
from features.snapshot import still_counts
from features.store import Store, grades, records, subjects, warnings
from models import explain
from models.bundle import GradeModel
from models.registry import Loaded, configure, experiment_id, load_champion

WARNINGS_FILE = Path(__file__).with_name("warnings.toml")
LEVELS = ("red", "orange", "yellow")  # most severe first
TYPES = ("pd_rise", "downgrade", "record", "feature")
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
RECORD_FIELDS = ("record_id", "kind", "severity", "start_date", "end_date", "reported_date", "amount", "value",
                 "doc_ref")
EXPERIMENT = "creditgrade-warnings"


@dataclass(frozen=True)
class Trigger:
    """One configured trigger (see warnings.toml for the meaning of each type's parameters)."""

    name: str
    level: str
    type: str
    en: str
    zh: str
    segments: tuple[str, ...] | None = None
    params: dict = field(default_factory=dict, hash=False)

    def applies(self, segment: str, columns) -> bool:
        if self.segments is not None and segment not in self.segments:
            return False
        return self.type != "feature" or all(f in columns for f, _, _ in self.params["when"])


@cache
def triggers(path: Path = WARNINGS_FILE) -> tuple[Trigger, ...]:
    """The configured triggers, checked: known level and type, unique names that fit the table."""
    with Path(path).open("rb") as fh:
        conf = tomllib.load(fh)
    out = []
    for spec in conf["trigger"]:
        spec = dict(spec)
        base = {k: spec.pop(k) for k in ("name", "level", "type", "en", "zh")}
        segments = spec.pop("segments", None)
        t = Trigger(**base, segments=tuple(segments) if segments else None, params=spec)
        if t.level not in LEVELS or t.type not in TYPES or len(t.name) > 40:
            raise ValueError(f"trigger {t.name!r}: level must be one of {LEVELS}, type one of {TYPES}, "
                             f"name at most 40 characters")
        if t.type == "feature" and any(op not in OPS for _, op, _ in t.params["when"]):
            raise ValueError(f"trigger {t.name!r}: operators must be among {sorted(OPS)}")
        out.append(t)
    if len({t.name for t in out}) != len(out):
        raise ValueError("trigger names must be unique")
    return tuple(out)


# ---------------------------------------------------------------- evaluating triggers

@dataclass
class Moment:
    """All subjects of a segment at one as-of date: ``X`` features, ``now`` and ``before`` (the previous
    grade; NaN where none) with at least ``pd`` and ``grade``, all on ``X.index``; ``records``
    normalised (any extra columns, such as ``doc_ref``, are carried into the evidence)."""

    segment: str
    as_of: pd.Timestamp
    order: list[str]          # grades best to worst
    X: pd.DataFrame
    now: pd.DataFrame
    before: pd.DataFrame
    records: pd.DataFrame


def record_kinds(rules) -> list[str]:
    return sorted({k for t in rules if t.type == "record" for k in t.params["kinds"]})


def recent(t: Trigger, m: Moment) -> pd.DataFrame:
    """Records matching a record trigger at ``m.as_of``."""
    r = m.records
    keep = (r["kind"].isin(t.params["kinds"]).to_numpy()
            & (r["reported_date"] >= m.as_of - pd.Timedelta(days=t.params["within_days"])).to_numpy()
            & still_counts(r, m.as_of))
    if "severities" in t.params:
        keep &= r["severity"].isin(t.params["severities"]).to_numpy()
    if "min_value" in t.params:
        keep &= (r["value"] >= t.params["min_value"]).to_numpy()
    return r[keep]


def _notches(m: Moment, now: pd.Series, before: pd.Series) -> np.ndarray:
    """Grades worse now than before (NaN where there is no previous grade)."""
    rank = {g: float(i) for i, g in enumerate(m.order)}
    return now.map(rank).to_numpy(float) - before.map(rank).to_numpy(float)


def fire(t: Trigger, m: Moment) -> np.ndarray:
    """Whether trigger ``t`` fires for each subject of ``m`` (False where it does not apply)."""
    if not t.applies(m.segment, m.X.columns):
        return np.zeros(len(m.X), dtype=bool)
    if t.type == "pd_rise":
        now, before = m.now["pd"].to_numpy(float), m.before["pd"].to_numpy(float)
        return (now >= t.params["ratio"] * before) & (now >= t.params["min_pd"][m.segment])
    if t.type == "downgrade":
        return _notches(m, m.now["grade"], m.before["grade"]) >= t.params["notches"]
    if t.type == "record":
        return m.X.index.isin(recent(t, m)["subject_key"].astype(str))
    hit = np.ones(len(m.X), dtype=bool)
    for feature, op, value in t.params["when"]:
        hit &= OPS[op](pd.to_numeric(m.X[feature], errors="coerce").to_numpy(float), value)
    return hit


def _plain(value):
    """A JSON value: numpy scalars unwrapped, dates as ISO text, NaN and NaT as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.date().isoformat() if isinstance(value, pd.Timestamp) else value.isoformat()
    return value


def _row(frame: pd.DataFrame, key: str) -> dict | None:
    row = {k: _plain(v) for k, v in frame.loc[key].items()}
    return None if row.get("pd") is None else row


def evidence(t: Trigger, m: Moment, key: str) -> dict:
    """What a warning rests on: the trigger, the current and previous grades, and its values or records."""
    out = {"trigger": t.name, "level": t.level, "en": t.en, "zh": t.zh, "as_of": _plain(m.as_of),
           "current": _row(m.now, key), "previous": _row(m.before, key)}
    if t.type == "pd_rise":
        before = out["previous"]["pd"]
        out["values"] = {"pd_ratio": out["current"]["pd"] / before if before > 0 else None,
                         "ratio": t.params["ratio"], "min_pd": t.params["min_pd"][m.segment]}
    elif t.type == "downgrade":
        notches = _notches(m, m.now.loc[[key], "grade"], m.before.loc[[key], "grade"])[0]
        out["values"] = {"notches": int(notches), "min_notches": t.params["notches"]}
    elif t.type == "record":
        found = recent(t, m)
        found = found[found["subject_key"].astype(str) == key]
        out["records"] = [{f: _plain(v) for f, v in r.items() if f in RECORD_FIELDS}
                          for r in found.to_dict("records")]
    else:
        out["values"] = {f: _plain(m.X.at[key, f]) for f, _, _ in t.params["when"]}
        out["conditions"] = [list(c) for c in t.params["when"]]
    return out


# ---------------------------------------------------------------- the stored scan

@dataclass
class ScanReport:
    segment: str
    as_of: dt.date
    model: str
    subjects: int
    grades_stored: int
    warnings_new: int
    by_level: dict[str, int]          # new warnings per level


def _insert_ignore(conn, table, rows: list[dict]) -> None:
    maker = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(conn.dialect.name)
    if rows:
        conn.execute(maker(table).on_conflict_do_nothing() if maker else insert(table), rows)


def _scan_grades(conn, segment: str, day: pd.Timestamp, loaded: Loaded) -> pd.Series:
    g = grades.c
    q = select(g.subject_key, g.grade_id).where(
        g.segment == segment, g.as_of == day.date(), g.origin == "scan", g.model_name == loaded.name,
        g.model_version == loaded.version).order_by(g.grade_id)
    return pd.Series(dict(conn.execute(q).all()), dtype="Int64")


def _store_grades(conn, segment: str, day: pd.Timestamp, loaded: Loaded, graded: pd.DataFrame,
                  why: list[list[dict]], disputed: dict) -> tuple[pd.Series, int]:
    """Store the scan's grades, one per subject, as-of date and model version; their grade ids by key."""
    have = _scan_grades(conn, segment, day, loaded)
    now = dt.datetime.now(dt.timezone.utc)
    rows = [dict(subject_key=key, segment=segment, as_of=day.date(), graded_at=now, pd=float(r.pd),
                 score=float(r.score), grade=r.grade, model_grade=r.model_grade,
                 override=r.override.feature if r.override is not None else None, model_name=loaded.name,
                 model_version=loaded.version, disputed=key in disputed,
                 reasons=json.dumps([x["feature"] for x in reasons]), origin="scan")
            for key, r, reasons in zip(graded.index, graded.itertuples(index=False), why) if key not in have.index]
    if rows:
        conn.execute(insert(grades), rows)
    return _scan_grades(conn, segment, day, loaded), len(rows)


def latest_grades(conn, segment: str, before, since=None) -> pd.DataFrame:
    """Each subject's latest stored grade with an as-of date before ``before`` (and on or after ``since``),
    any origin; index subject_key."""
    g = grades.c
    rank = func.row_number().over(partition_by=g.subject_key,
                                  order_by=(g.as_of.desc(), g.graded_at.desc(), g.grade_id.desc()))
    where = [g.segment == segment, g.as_of < pd.Timestamp(before).date()]
    if since is not None:
        where.append(g.as_of >= pd.Timestamp(since).date())
    ranked = select(g.subject_key, g.grade_id, g.as_of, g.pd, g.score, g.grade, g.model_version, g.origin,
                    rank.label("n")).where(*where).subquery()
    rows = conn.execute(select(*(c for c in ranked.c if c.name != "n")).where(ranked.c.n == 1)).all()
    return pd.DataFrame(rows, columns=["subject_key", "grade_id", "as_of", "pd", "score", "grade",
                                       "model_version", "origin"]).set_index("subject_key")


def _recent_records(conn, segment: str, day: pd.Timestamp, rules) -> pd.DataFrame:
    days = max((t.params["within_days"] for t in rules if t.type == "record"), default=0)
    r = records.c
    raw = pd.DataFrame(conn.execute(select(records).where(
        r.segment == segment, r.kind.in_(record_kinds(rules)), r.reported_date < day.date(),
        r.reported_date >= (day - pd.Timedelta(days=days)).date())).mappings().all(),
        columns=[c.name for c in records.c])
    out = normalise_records(raw)
    out["doc_ref"] = raw.set_index("record_id")["doc_ref"].reindex(out["record_id"]).to_numpy()
    return out


def scan(store: Store, segment: str, as_of, model: Loaded | None = None) -> ScanReport:
    """Grade every subject of ``segment`` as of ``as_of`` with ``model`` (default: the champion), store the
    grades (origin "scan"; once per subject, date and model version) and the warnings the triggers raise
    against each subject's previous grade and recent records. Re-running adds nothing."""
    day = check_as_of(store, segment, as_of)
    loaded = model or load_champion(segment)
    X, disputed = build_features(store, segment, day, with_disputed=True)
    graded, why = explain.explain(loaded.model, X)
    rules = [t for t in triggers() if t.applies(segment, X.columns)]
    with store.engine.begin() as conn:
        ids, stored = _store_grades(conn, segment, day, loaded, graded, why, disputed)
        now = graded[["pd", "score", "grade"]].assign(grade_id=ids.reindex(X.index).astype("int64").to_numpy(),
                                                      model_version=loaded.version)
        m = Moment(segment, day, loaded.model.scale.order, X, now,
                   latest_grades(conn, segment, day).reindex(X.index), _recent_records(conn, segment, day, rules))
        created = dt.datetime.now(dt.timezone.utc)
        w = warnings.c
        seen = set(conn.execute(select(w.subject_key, w.trigger).where(w.segment == segment,
                                                                       w.as_of == day.date())).all())
        rows = [dict(subject_key=key, segment=segment, as_of=day.date(), level=t.level, trigger=t.name,
                     evidence=json.dumps(evidence(t, m, key), ensure_ascii=False), created_at=created)
                for t in rules for key in X.index[fire(t, m)] if (key, t.name) not in seen]
        _insert_ignore(conn, warnings, rows)
    by_level = {level: sum(r["level"] == level for r in rows) for level in LEVELS}
    return ScanReport(segment, day.date(), f"{loaded.name} v{loaded.version}", len(X), stored, len(rows), by_level)


# ---------------------------------------------------------------- reading and acknowledging

def list_warnings(store: Store, segment: str | None = None, level: str | None = None, since=None,
                  acknowledged: bool | None = None, townships=None, limit: int | None = 1000) -> list[dict]:
    """Stored warnings, newest as-of date and most severe first, each with its subject's display id and
    township and its evidence decoded. ``since`` filters on the as-of date; ``townships`` (an evaluator's)
    keeps subjects in those townships only."""
    w, s = warnings.c, subjects.c
    q = select(warnings, s.display_id, s.township_code, s.village_code).join(
        subjects, s.subject_key == w.subject_key)
    if segment:
        q = q.where(w.segment == segment)
    if level:
        if level not in LEVELS:
            raise CreditgradeError(f"level {level!r} is not one of {', '.join(LEVELS)}")
        q = q.where(w.level == level)
    if since is not None:
        q = q.where(w.as_of >= parse_date(since, "since").date())
    if acknowledged is not None:
        q = q.where(w.acknowledged_at.is_not(None) if acknowledged else w.acknowledged_at.is_(None))
    if townships is not None:
        q = q.where(s.township_code.in_(list(townships)))
    q = q.order_by(w.as_of.desc(), *(w.level != lv for lv in LEVELS), w.warning_id).limit(limit)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["evidence"] = json.loads(r["evidence"])
    return rows


def acknowledge(store: Store, warning_id: int, by: str) -> dict:
    """Mark a warning acknowledged by ``by`` (the first acknowledgement stands); return it."""
    if not by or not str(by).strip():
        raise CreditgradeError("acknowledge: say who acknowledges the warning")
    w = warnings.c
    with store.engine.begin() as conn:
        conn.execute(update(warnings).where(w.warning_id == warning_id, w.acknowledged_at.is_(None))
                     .values(acknowledged_at=dt.datetime.now(dt.timezone.utc), acknowledged_by=str(by).strip()))
        row = conn.execute(select(warnings).where(w.warning_id == warning_id)).mappings().first()
    if row is None:
        raise CreditgradeError(f"no warning {warning_id}")
    return {**row, "evidence": json.loads(row["evidence"])}


# ---------------------------------------------------------------- did the warnings work?

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
