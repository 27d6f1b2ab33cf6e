"""Early-warning rules: the configured triggers (``models/warnings.toml``) and their evaluation.

:func:`fire` evaluates one trigger over all subjects at one as-of date from plain frames, and
:func:`evidence` says why it fired, so the stored scan (``serving.warnings``) and the backtest
(``training.backtest``) run the very same rules.
"""
from __future__ import annotations

import datetime as dt
import math
import operator
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from creditgrade.features import ids
from creditgrade.features.schemas import kinds
from creditgrade.features.snapshot import still_counts

WARNINGS_FILE = Path(__file__).with_name("warnings.toml")
LEVELS = ("red", "orange", "yellow")  # most severe first
TYPES = ("pd_rise", "downgrade", "record", "feature", "contagion")
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
RECORD_FIELDS = ("record_id", "kind", "severity", "start_date", "end_date", "reported_date", "amount", "value",
                 "category", "doc_ref")


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
def warnings_config(path: Path = WARNINGS_FILE) -> dict:
    """The whole of warnings.toml, read once."""
    with Path(path).open("rb") as fh:
        return tomllib.load(fh)


def register_config(path: Path = WARNINGS_FILE) -> dict:
    """The ``[register]`` table: states, allowed moves, outcomes, the purposes that make a borrower, texts."""
    return warnings_config(path)["register"]


def default_events(path: Path = WARNINGS_FILE) -> list[dict]:
    """What records show a default (``[defaults] events``)."""
    return warnings_config(path)["defaults"]["events"]


def default_records(records: pd.DataFrame, path: Path = WARNINGS_FILE) -> pd.DataFrame:
    """The records of ``records`` that show a default (``[defaults] events``)."""
    keep = np.zeros(len(records), dtype=bool)
    for event in default_events(path):
        hit = records["kind"].isin(event["kinds"]).to_numpy()
        if "min_value" in event:
            hit = hit & (records["value"] >= event["min_value"]).to_numpy()
        if "severities" in event:
            hit = hit & records["severity"].isin(event["severities"]).to_numpy()
        keep |= hit
    return records[keep]


def link_kinds() -> list[str]:
    return [k for k, spec in kinds().items() if spec.get("link")]


def firm_codes(keys) -> dict[str, str]:
    """Each firm key (its code) by the forms a link's account may take: as sent, and as stored (an all-digit
    code is masked like an identity number, with a keyed fingerprint: ``features.ids.redact_distinct``)."""
    keys = [str(k) for k in keys]
    return {**{ids.redact_distinct(k): k for k in keys}, **{k: k for k in keys}}


def links_in_force(records: pd.DataFrame, day: pd.Timestamp, firms: dict[str, str]) -> pd.DataFrame:
    """The link records in force at ``day`` (reported by then, begun, not ended), each both ways: column
    ``partner`` the other firm's key (``firms``: ``firm_codes`` of the known firms; links to others dropped)."""
    r = records[records["kind"].isin(link_kinds()).to_numpy()]
    live = ((r["reported_date"] <= day) & (r["start_date"] <= day) & (r["end_date"].isna() | (r["end_date"] > day)))
    r = r[live.to_numpy()]
    one = r.assign(subject_key=r["subject_key"].astype(str), partner=r["account"].astype(str).map(firms))
    one = one[one["partner"].notna().to_numpy()]
    return pd.concat([one, one.assign(subject_key=one["partner"], partner=one["subject_key"])], ignore_index=True)


@cache
def triggers(path: Path = WARNINGS_FILE) -> tuple[Trigger, ...]:
    """The configured triggers, checked: known level and type, unique names that fit the table."""
    conf = warnings_config(path)
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
    tripped: dict = field(default_factory=dict)  # trigger name -> its tripping records, when worked out already
    links: pd.DataFrame | None = None  # contagion: links in force at as_of (``links_in_force``)
    sick: frozenset = frozenset()      # contagion: keys warned at a spreading level or in default lately


def record_kinds(rules) -> list[str]:
    return sorted({k for t in rules if t.type == "record" for k in t.params["kinds"]})


def _ordered(r: pd.DataFrame) -> pd.DataFrame:
    return r.assign(subject_key=r["subject_key"].astype(str)).sort_values(
        ["subject_key", "start_date", "record_id"], kind="stable")


def _changed(change: dict, r: pd.DataFrame) -> np.ndarray:
    """Whether each record of ``r`` (one trigger's kinds, ordered by subject and start date) shows the
    configured change against the subject's earlier records of those kinds (see warnings.toml)."""
    earlier = r.groupby("subject_key", sort=False)
    how = change["compare"]
    if how == "worse":
        rank = r["category"].map({c: i for i, c in enumerate(change["order"])}).astype(float)
        return (rank > earlier["category"].shift().map({c: i for i, c in enumerate(change["order"])})
                .astype(float)).to_numpy()
    if how == "drop":
        before = earlier["value"].transform(lambda v: v.shift().rolling(change["over"], min_periods=1).mean())
        return ((r["value"] <= (1 - change["ratio"]) * before) & (before >= change["min_before"])).to_numpy()
    if how == "first":
        gap = (r["start_date"] - earlier["start_date"].shift()).dt.days
        return (gap.isna() | (gap > change["gap_days"])).to_numpy()
    # "on_top": a new one while at least `min_open` others are still open at its start
    out = np.zeros(len(r), dtype=bool)
    for _, part in earlier:
        start, end = part["start_date"].to_numpy(), part["end_date"].to_numpy()
        ends = np.where(pd.isna(end), np.datetime64("2262-01-01"), end)
        open_at = (start[None, :] < start[:, None]) & (ends[None, :] > start[:, None])
        out[r.index.get_indexer(part.index)] = open_at.sum(axis=1) >= change["min_open"]
    return out


def tripping(t: Trigger, records: pd.DataFrame) -> pd.DataFrame:
    """The records of ``records`` that trip record trigger ``t``: of its kinds (severities, minimum value)
    and, for a trigger with a ``change``, showing it against the subject's earlier records there."""
    r = records[records["kind"].isin(t.params["kinds"]).to_numpy()]
    if "change" in t.params:
        r = _ordered(r).reset_index(drop=True)
    keep = _changed(t.params["change"], r) if "change" in t.params else np.ones(len(r), dtype=bool)
    if "severities" in t.params:
        keep &= r["severity"].isin(t.params["severities"]).to_numpy()
    if "min_value" in t.params:
        keep &= (r["value"] >= t.params["min_value"]).to_numpy()
    return r[keep]


def recent(t: Trigger, m: Moment) -> pd.DataFrame:
    """Records tripping a record trigger reported in its ``within_days`` before ``m.as_of`` and counting."""
    r = m.tripped[t.name] if t.name in m.tripped else tripping(t, m.records)
    keep = ((r["reported_date"] >= m.as_of - pd.Timedelta(days=t.params["within_days"])).to_numpy()
            & still_counts(r, m.as_of))
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
    if t.type == "contagion":
        return m.X.index.isin(contagion(m)["subject_key"])
    hit = np.ones(len(m.X), dtype=bool)
    for feature, op, value in t.params["when"]:
        hit &= OPS[op](pd.to_numeric(m.X[feature], errors="coerce").to_numpy(float), value)
    return hit


def contagion(m: Moment) -> pd.DataFrame:
    """The links in force from a subject of ``m`` to a sick one (``m.sick``)."""
    if m.links is None or not m.sick:
        return pd.DataFrame(columns=["subject_key", "partner"])
    return m.links[m.links["partner"].isin(list(m.sick)).to_numpy()]


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


def record_list(found: pd.DataFrame) -> list[dict]:
    """Records as evidence: their identifying and telling fields, JSON-ready."""
    return [{f: _plain(v) for f, v in r.items() if f in RECORD_FIELDS} for r in found.to_dict("records")]


def arrived(t: Trigger, history: pd.DataFrame, new_ids, now: pd.Timestamp) -> pd.DataFrame:
    """The records just stored (``record_id`` in ``new_ids``) that trip record trigger ``t`` against the
    subjects' ``history`` (which holds them) and were reported in its ``within_days`` up to ``now`` (the
    newest report among them): a back-filled history raises only what is still news."""
    found = tripping(t, history)
    keep = (found["record_id"].isin(list(new_ids)).to_numpy()
            & (found["reported_date"] >= now - pd.Timedelta(days=t.params["within_days"])).to_numpy())
    return found[keep]


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
        out["records"] = record_list(found[found["subject_key"].astype(str) == key])
    elif t.type == "contagion":
        found = contagion(m)
        found = found[found["subject_key"] == key]
        out["linked"] = found["partner"].tolist()
        out["records"] = record_list(found)
    else:
        out["values"] = {f: _plain(m.X.at[key, f]) for f, _, _ in t.params["when"]}
        out["conditions"] = [list(c) for c in t.params["when"]]
    return out
