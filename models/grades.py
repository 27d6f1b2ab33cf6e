"""Grade scales, score scaling and policy rules, read from ``models/grades.toml``.

A PD becomes a score (PDO scaling of the good:bad odds) and a model grade (by PD band or by score band);
the policy rules then make the final grade (DESIGN.md: policy comes first). A default rule that holds puts
the subject at the scale's ``default_grade`` whatever the model says; a cap rule makes the grade no better
than its cap. Rules read the feature matrix the builders make: their conditions may use any feature, and
their evidence (the record that shows it, the date it began) comes from policy inputs, the catalogue's
``model = false`` features. The binding rule (a default rule, else the tightest cap that moved the grade)
is reported per subject with its record id and date, for the first reason. Works the same on one subject
and on a batch.

A :class:`Scale` is built from a plain ``dict`` (:func:`config`: the segment's section of the TOML with its
rules and the authorities they name), so a trained model can keep that dict and grade with it forever.
"""
from __future__ import annotations

import bisect
import copy
import datetime as dt
import math
import operator
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from creditgrade.features.catalog import catalog
from creditgrade.features.schemas import contract

GRADES_FILE = Path(__file__).with_name("grades.toml")
ACTIONS = ("default", "cap")
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Rule:
    """When ``feature`` ``when`` ``value`` holds: in default (``action = "default"``, ``cap`` = the default
    grade) or graded no better than ``cap``; ``evidence`` and ``since`` name the policy inputs holding the
    record that shows it and the day it began (days since 1970-01-01)."""

    segment: str
    action: str
    feature: str
    when: str
    value: float
    cap: str
    evidence: str
    authority: dict
    en: str
    zh: str
    since: str | None = None
    since_plus_value_days: bool = False

    def binds(self, features: pd.DataFrame) -> np.ndarray:
        return _OPS[self.when](_numbers(features, self.feature), self.value)  # NaN never binds

    def holds(self, inputs: Mapping[str, float]) -> bool:
        """:meth:`binds` of one subject, its inputs plain floats (NaN never binds)."""
        return _OPS[self.when](inputs[self.feature], self.value)

    def begun(self, inputs: Mapping[str, float]) -> float:
        """:meth:`start` of one subject, its inputs plain floats."""
        if self.since is None:
            return math.nan
        return inputs[self.since] + self.value if self.since_plus_value_days else inputs[self.since]

    def record(self, features: pd.DataFrame) -> np.ndarray:
        return _numbers(features, self.evidence)

    def start(self, features: pd.DataFrame) -> np.ndarray:
        """Day the condition began (days since 1970-01-01), NaN where unknown or for rules without ``since``."""
        if self.since is None:
            return np.full(len(_numbers(features, self.feature)), np.nan)
        day = _numbers(features, self.since)
        return day + self.value if self.since_plus_value_days else day

    def text(self, lang: str, record: float, since: float) -> str:
        """The rule's sentence in ``en`` or ``zh`` with its record, authority, start date, value and cap."""
        return getattr(self, lang).format(
            record="?" if math.isnan(record) else int(record), authority=self.authority[lang],
            since=iso_day(since) or "?",
            value=f"{self.value:g}", cap=self.cap)


def iso_day(days: float) -> str | None:
    """Days since 1970-01-01 (the catalogue's ``date`` unit) as an ISO date; None if NaN."""
    return None if math.isnan(days) else (EPOCH + dt.timedelta(days=int(days))).isoformat()


def _column(features: pd.DataFrame, name: str) -> pd.Series:
    if name not in features:
        raise KeyError(f"policy rule input {name!r} is not a column of the feature matrix: build it with "
                       f"features.build (it is declared in features/catalog.toml)")
    return features[name]


def _numbers(features, name: str) -> np.ndarray:
    """A rule input as floats (NaN where missing or not a number), from a frame or :func:`_inputs`."""
    column = _column(features, name)
    if isinstance(column, np.ndarray) and column.dtype == float:  # read by _inputs already
        return column
    return np.asarray(pd.to_numeric(column, errors="coerce"), dtype=float)


def _inputs(features: pd.DataFrame, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The rules' inputs ``names`` read from ``features`` once, as :func:`_numbers` (inputs are numbers), taken
    by position: on a frame of one row, selecting columns by name costs more than grading it."""
    position = dict(zip(features.columns.tolist(), range(features.shape[1])))  # cheaper than get_indexer
    for name in names:
        if name not in position:
            _column(features, name)  # raises, naming it
    taken = features.take([position[n] for n in names], axis=1)
    return dict(zip(names, taken.to_numpy(dtype=float, na_value=np.nan).T))


@dataclass(frozen=True)
class Scale:
    """One segment's scale: score from PD, grade from PD or score, best grade first; and its policy rules."""

    segment: str
    by: str
    bands: tuple[dict, ...]
    base_points: float
    base_odds: float
    pdo: float
    min_score: float
    max_score: float
    default_grade: str | None = None
    labels: dict = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    @classmethod
    def from_config(cls, conf: dict) -> Scale:
        """The scale of one :func:`config` dict."""
        s = conf["score"]
        rules = tuple(Rule(**{**r, "authority": conf["authorities"][r["authority"]],
                              "cap": r.get("cap", conf.get("default_grade"))}) for r in conf["rules"])
        scale = cls(segment=conf["segment"], by=conf["by"], bands=tuple(conf["bands"]), base_points=s["base_points"],
                    base_odds=s["base_odds"], pdo=s["pdo"], min_score=s["min"], max_score=s["max"],
                    default_grade=conf.get("default_grade"), labels=conf.get("labels", {}), rules=rules)
        _check(scale)
        return scale

    @cached_property
    def order(self) -> list[str]:
        """Grades best to worst (the default grade last)."""
        grades = [b["grade"] for b in self.bands]
        return grades + ([self.default_grade] if self.default_grade and self.default_grade not in grades else [])

    @cached_property
    def defaults(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.action == "default")

    @cached_property
    def caps(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.action == "cap")

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    def score(self, pd_: np.ndarray) -> np.ndarray:
        """Points from PD: offset + factor * ln(good:bad), clipped to the scale, rounded to integers."""
        p = np.clip(np.asarray(pd_, dtype=float), 1e-9, 1 - 1e-9)
        raw = self.offset + self.factor * np.log((1 - p) / p)
        return np.clip(np.floor(raw + 0.5), self.min_score, self.max_score)

    @cached_property
    def offset(self) -> float:
        """The score at even odds (good:bad 1:1) before rounding and clipping."""
        return self.base_points - self.factor * math.log(self.base_odds)

    def pd_at_score(self, score: float) -> float:
        """The PD whose unclipped score is `score` (inverse of :meth:`score`)."""
        return 1.0 / (1.0 + math.exp((score - self.offset) / self.factor))

    def grade(self, pd_: np.ndarray, score: np.ndarray | None = None) -> np.ndarray:
        """Grade of each subject from its PD (or score, for score-banded scales)."""
        return np.array([b["grade"] for b in self.bands], dtype=object)[self._band(pd_, score)]

    def _band(self, pd_: np.ndarray, score: np.ndarray | None = None) -> np.ndarray:
        """Position of each subject's band, best first."""
        if self.by == "pd":
            bounds = np.array([b["pd_below"] for b in self.bands])
            idx = np.searchsorted(bounds, np.asarray(pd_, dtype=float), side="right")
        else:
            score = self.score(pd_) if score is None else np.asarray(score, dtype=float)
            froms = np.array([b["score_from"] for b in self.bands])  # descending
            idx = np.argmax(score[:, None] >= froms[None, :], axis=1)
        return np.minimum(idx, len(self.bands) - 1)

    def in_default(self, features: pd.DataFrame) -> np.ndarray:
        """Rows in default as of their snapshot: some default rule holds."""
        hit = np.zeros(len(features), dtype=bool)
        for rule in self.defaults:
            hit |= rule.binds(features)
        return hit

    def not_in_default(self, features: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``features`` that no default rule holds for: the rows a PD is learnt and judged on."""
        return features[~self.in_default(features)]

    def apply(self, pd_: np.ndarray, features: pd.DataFrame | None = None,
              score: np.ndarray | None = None) -> pd.DataFrame:
        """Score, model grade, final grade and the binding rule per subject (``override``: the :class:`Rule`
        or None), with the rule's evidence record id (``record``) and start day (``since``, days since
        1970-01-01). ``score`` replaces the PD-derived score (a scorecard's points total), clipped to the
        scale. Without ``features`` no rule is applied."""
        inputs = _inputs(features, self.inputs) if features is not None else None
        out = self.outcome(pd_, inputs, score)
        index = pd.RangeIndex(len(out["pd"])) if features is None else features.index
        return pd.DataFrame({k: pd.Series(v, index=index, dtype=object, copy=False) if v.dtype == object else v
                             for k, v in out.items()}, index=index)  # texts as object columns: pandas' str costs more

    def outcome(self, pd_: np.ndarray, inputs=None, score: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """:meth:`apply` as arrays (same keys), the rules reading ``inputs``: a mapping of the rules' inputs
        (feature name -> values; float arrays are read as they are), e.g. one subject's features."""
        pd_ = np.asarray(pd_, dtype=float)
        score = self.score(pd_) if score is None else np.clip(np.asarray(score, dtype=float),
                                                               self.min_score, self.max_score)
        rank = self._band(pd_, score)  # a band's rank in ``order``: the bands come first, best first
        order = self.order
        model_grade = np.array(order, dtype=object)[rank]
        binding = np.full(len(pd_), None, dtype=object)
        record, since = np.full(len(pd_), np.nan), np.full(len(pd_), np.nan)
        if inputs is not None:
            for rule in self.caps:
                tighter = rule.binds(inputs) & (order.index(rule.cap) > rank)
                if tighter.any():  # most subjects: no rule holds, nothing to set
                    rank[tighter] = order.index(rule.cap)
                    binding[tighter] = rule
                    record[tighter] = rule.record(inputs)[tighter]
            in_default = np.zeros(len(pd_), dtype=bool)
            for rule in self.defaults:  # the first default rule that holds is told; it beats every cap
                hit = rule.binds(inputs) & ~in_default
                if hit.any():
                    in_default |= hit
                    rank[hit] = order.index(self.default_grade)
                    binding[hit] = rule
                    record[hit] = rule.record(inputs)[hit]
                    since[hit] = rule.start(inputs)[hit]
        return {"pd": pd_, "score": score, "model_grade": model_grade, "grade": np.array(order, dtype=object)[rank],
                "override": binding, "record": record, "since": since}

    def outcome_one(self, pd_: float, inputs: Mapping[str, float], score: float | None = None) -> dict:
        """:meth:`outcome` of one subject on plain values (the same values; the rules' ``inputs`` plain floats,
        NaN if missing): no arrays, for the one-subject path."""
        p = min(max(pd_, 1e-9), 1 - 1e-9)
        if score is None:  # numpy's log, as :meth:`score` takes it
            score = float(math.floor(self.offset + self.factor * float(np.log((1 - p) / p)) + 0.5))
        score = min(max(float(score), self.min_score), self.max_score)
        if self.by == "pd":
            rank = bisect.bisect_right(self._bounds, pd_)
        else:
            rank = next((i for i, lowest in enumerate(self._bounds) if score >= lowest), 0)
        rank = min(rank, len(self.bands) - 1)
        order = self.order
        model_grade, binding, record, since = order[rank], None, math.nan, math.nan
        for rule in self.caps:
            if order.index(rule.cap) > rank and rule.holds(inputs):
                rank, binding, record = order.index(rule.cap), rule, inputs[rule.evidence]
        for rule in self.defaults:  # the first that holds is told; it beats every cap
            if rule.holds(inputs):
                rank, binding = order.index(self.default_grade), rule
                record, since = inputs[rule.evidence], rule.begun(inputs)
                break
        return {"pd": pd_, "score": score, "model_grade": model_grade, "grade": order[rank], "override": binding,
                "record": record, "since": since}

    @cached_property
    def _bounds(self) -> list[float]:
        """The bands' PD bounds (``by = "pd"``) or lowest scores, best first."""
        return [b["pd_below"] if self.by == "pd" else b["score_from"] for b in self.bands]

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """The features the rules read (condition, evidence, start day), the caps' first."""
        return tuple(dict.fromkeys(n for r in (*self.caps, *self.defaults) for n in (r.feature, r.evidence, r.since)
                                   if n))

    def label(self, grade: str, lang: str = "en") -> str:
        return self.labels.get(grade, {}).get(lang, grade)


@cache
def _file(path: Path) -> dict:
    with Path(path).open("rb") as fh:
        return tomllib.load(fh)


def config(segment: str, path: Path | None = None) -> dict:
    """A deep copy of one segment's section of the grades file (``GRADES_FILE`` unless ``path``), with its
    ``rules`` and every authority (``features/sources.toml``'s and the grades file's): all a :class:`Scale`
    is built from."""
    path = Path(path or GRADES_FILE)
    conf = _file(path)
    if segment not in conf or segment in ("rules", "authorities"):
        raise KeyError(f"no scale for segment {segment!r} in {path.name}")
    authorities = {**contract()["authorities"], **conf.get("authorities", {})}
    return copy.deepcopy({**conf[segment], "segment": segment, "authorities": authorities,
                          "rules": [r for r in conf.get("rules", []) if r["segment"] == segment]})


def scales(path: Path | None = None) -> dict[str, Scale]:
    """All segments' scales from the TOML file as it is now (a trained model keeps its own: models.bundle)."""
    names = [k for k in _file(Path(path or GRADES_FILE)) if k not in ("rules", "authorities")]
    return {seg: Scale.from_config(config(seg, path)) for seg in names}


def _check(scale: Scale) -> None:
    """Bands monotone; rules well-formed, on features of the segment, capping at grades of the scale."""
    if scale.by == "pd":
        bounds = [b["pd_below"] for b in scale.bands]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"{scale.segment}: pd_below bounds must increase from best to worst grade")
    else:
        froms = [b["score_from"] for b in scale.bands]
        if froms != sorted(froms, reverse=True) or froms[-1] > scale.min_score:
            raise ValueError(f"{scale.segment}: score_from must decrease to the scale's minimum")
    declared = {s.name for s in catalog(scale.segment)}
    for rule in scale.rules:
        where = f"{scale.segment} rule on {rule.feature}"
        if rule.action not in ACTIONS or rule.when not in _OPS:
            raise ValueError(f"{where}: action must be one of {ACTIONS} and when one of {sorted(_OPS)}")
        if rule.cap not in scale.order:
            raise ValueError(f"{where}: cap {rule.cap} is not a {scale.segment} grade (a default rule needs "
                             f"the scale's default_grade)")
        unknown = [c for c in (rule.feature, rule.evidence, rule.since) if c is not None and c not in declared]
        if unknown:
            raise ValueError(f"{where}: {', '.join(unknown)} not {scale.segment} features in features/catalog.toml")
        if rule.action == "default" and rule.since is None:
            raise ValueError(f"{where}: a default rule needs `since` (the feature holding the day it began)")
