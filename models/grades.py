"""Grade scales, score scaling and override rules, read from ``models/grades.toml``.

A PD becomes a score (PDO scaling of the good:bad odds) and a grade (by PD band or by score band);
override rules then cap the grade and say so. Works the same on one subject and on a batch.
"""
from __future__ import annotations

import math
import operator
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

GRADES_FILE = Path(__file__).with_name("grades.toml")
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}


@dataclass(frozen=True)
class Override:
    """Feature `when` value => grade at most `cap`."""

    segment: str
    feature: str
    when: str
    value: float
    cap: str
    en: str
    zh: str

    def binds(self, features: pd.DataFrame) -> np.ndarray:
        if self.feature not in features:
            return np.zeros(len(features), dtype=bool)
        col = pd.to_numeric(features[self.feature], errors="coerce")
        return _OPS[self.when](col, self.value).fillna(False).to_numpy(dtype=bool)


@dataclass(frozen=True)
class Scale:
    """One segment's scale: score from PD, grade from PD or score, best grade first."""

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
    overrides: tuple[Override, ...] = ()

    @property
    def order(self) -> list[str]:
        """Grades best to worst (the default grade last)."""
        return [b["grade"] for b in self.bands] + ([self.default_grade] if self.default_grade else [])

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    def score(self, pd_: np.ndarray) -> np.ndarray:
        """Points from PD: offset + factor * ln(good:bad), clipped to the scale, rounded to integers."""
        p = np.clip(np.asarray(pd_, dtype=float), 1e-9, 1 - 1e-9)
        offset = self.base_points - self.factor * math.log(self.base_odds)
        raw = offset + self.factor * np.log((1 - p) / p)
        return np.clip(np.floor(raw + 0.5), self.min_score, self.max_score)

    def pd_at_score(self, score: float) -> float:
        """The PD whose unclipped score is `score` (inverse of :meth:`score`)."""
        offset = self.base_points - self.factor * math.log(self.base_odds)
        return 1.0 / (1.0 + math.exp((score - offset) / self.factor))

    def grade(self, pd_: np.ndarray, score: np.ndarray | None = None) -> np.ndarray:
        """Grade of each subject from its PD (or score, for score-banded scales)."""
        grades = [b["grade"] for b in self.bands]
        if self.by == "pd":
            bounds = np.array([b["pd_below"] for b in self.bands])
            idx = np.searchsorted(bounds, np.asarray(pd_, dtype=float), side="right")
        else:
            score = self.score(pd_) if score is None else np.asarray(score, dtype=float)
            froms = np.array([b["score_from"] for b in self.bands])  # descending
            idx = np.argmax(score[:, None] >= froms[None, :], axis=1)
        return np.array(grades, dtype=object)[np.minimum(idx, len(grades) - 1)]

    def worse(self, a: np.ndarray, b: str) -> np.ndarray:
        rank = {g: i for i, g in enumerate(self.order)}
        return np.where(np.array([rank[g] for g in a]) >= rank[b], a, b)

    def apply(self, pd_: np.ndarray, features: pd.DataFrame | None = None,
              score: np.ndarray | None = None) -> pd.DataFrame:
        """Score, model grade, final grade and the first binding override per subject.

        ``score`` replaces the PD-derived score (a scorecard's points total), clipped to the scale.
        """
        pd_ = np.asarray(pd_, dtype=float)
        score = self.score(pd_) if score is None else np.clip(np.asarray(score, dtype=float),
                                                               self.min_score, self.max_score)
        model_grade = self.grade(pd_, score)
        final = model_grade.copy()
        override = np.full(len(pd_), None, dtype=object)
        if features is not None:
            for rule in self.overrides:
                hit = rule.binds(features)
                capped = self.worse(final, rule.cap)
                changed = hit & (capped != final)
                override[changed & (override == None)] = rule  # noqa: E711 (elementwise)
                final = np.where(hit, capped, final)
        index = features.index if features is not None else None
        return pd.DataFrame({"pd": pd_, "score": score, "model_grade": model_grade, "grade": final,
                             "override": override}, index=index)

    def label(self, grade: str, lang: str = "en") -> str:
        return self.labels.get(grade, {}).get(lang, grade)


@cache
def scales(path: Path = GRADES_FILE) -> dict[str, Scale]:
    """All segments' scales from the TOML file."""
    with Path(path).open("rb") as fh:
        conf = tomllib.load(fh)
    rules = [Override(**o) for o in conf.pop("overrides", [])]
    out = {}
    for seg, spec in conf.items():
        s = spec["score"]
        out[seg] = Scale(
            segment=seg, by=spec["by"], bands=tuple(spec["bands"]), base_points=s["base_points"],
            base_odds=s["base_odds"], pdo=s["pdo"], min_score=s["min"], max_score=s["max"],
            default_grade=spec.get("default_grade"), labels=spec.get("labels", {}),
            overrides=tuple(r for r in rules if r.segment == seg))
        _check(out[seg])
    return out


def _check(scale: Scale) -> None:
    """Bands must be monotone and override caps must be grades of the scale."""
    if scale.by == "pd":
        bounds = [b["pd_below"] for b in scale.bands]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"{scale.segment}: pd_below bounds must increase from best to worst grade")
    else:
        froms = [b["score_from"] for b in scale.bands]
        if froms != sorted(froms, reverse=True) or froms[-1] > scale.min_score:
            raise ValueError(f"{scale.segment}: score_from must decrease to the scale's minimum")
    for rule in scale.overrides:
        if rule.cap not in scale.order:
            raise ValueError(f"override on {rule.feature}: cap {rule.cap} is not a {scale.segment} grade")
