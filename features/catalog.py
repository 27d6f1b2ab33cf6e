"""The declared feature catalogue (``features/catalog.toml``): names, meanings, directions of risk.

Monotone constraints, reason texts and the model card come from here; nothing restates it. A feature
declared ``model = false`` is a policy input (the evidence record and start date behind a default or cap
rule of ``models/grades.toml``): it is built into every feature matrix, so the grade rules see it wherever
grades are made, but no model is trained on it (:func:`model_feature_names`). A feature of source ``peers``
(:func:`peer_levels`) is a level against peers: no builder makes it and no feature matrix holds it; a
segment's model learns it from its training rows (``models.peers``), so :func:`catalog` leaves it out.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from creditgrade.features.errors import CreditgradeError
from creditgrade.features.schemas import SEGMENTS

CATALOG_FILE = Path(__file__).with_name("catalog.toml")
SOURCES = ("tax", "safety", "quality", "labor", "finance", "lists", "profile", "peers")
DIRECTIONS = {"up": 1, "down": -1, "none": 0}


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    source: str
    segments: tuple[str, ...]
    en: str
    zh: str
    unit: str
    direction: str
    actionable: bool
    categories: tuple[str, ...] | None = None
    model: bool = True
    peer_of: str | None = None       # a level against peers: of this feature ...
    peer_by: tuple[str, ...] = ()    # ... within the groups of these categorical features, coarsest first

    @property
    def categorical(self) -> bool:
        return self.categories is not None

    @property
    def monotone(self) -> int:
        """LightGBM's monotone constraint: 1 if a higher value raises risk, -1 if it lowers it."""
        return 0 if self.categorical else DIRECTIONS[self.direction]


@cache
def _raw() -> dict:
    """``catalog.toml`` as read, once."""
    with CATALOG_FILE.open("rb") as fh:
        return tomllib.load(fh)


@cache
def _specs() -> tuple[FeatureSpec, ...]:
    raw = _raw()
    specs, seen = [], set()
    for entry in raw["feature"]:
        entry = dict(entry)
        name = entry["name"]
        if name in seen:
            raise ValueError(f"feature {name} is declared twice in {CATALOG_FILE.name}")
        seen.add(name)
        if entry["source"] not in SOURCES or entry["direction"] not in DIRECTIONS:
            raise ValueError(f"feature {name}: bad source or direction in {CATALOG_FILE.name}")
        entry.setdefault("segments", raw["sources"][entry["source"]]["segments"])
        entry["segments"] = tuple(entry["segments"])
        if "categories" in entry:
            entry["categories"] = tuple(entry["categories"])
        if (entry["source"] == "peers") != ("peer_of" in entry and bool(entry.get("peer_by"))):
            raise ValueError(f"feature {name}: a peer level has source peers, peer_of and peer_by, and only it")
        entry["peer_by"] = tuple(entry.get("peer_by", ()))
        specs.append(FeatureSpec(**entry))
    _check_peers(specs)
    return tuple(specs)


def _check_peers(specs: list[FeatureSpec]) -> None:
    """Each peer level's feature is a number and its groups are categories, in every segment it serves."""
    by_name = {s.name: s for s in specs}
    for level in (s for s in specs if s.peer_of):
        of, by = by_name.get(level.peer_of), [by_name.get(b) for b in level.peer_by]
        if (of is None or of.categorical or of.source == "peers" or not set(level.segments) <= set(of.segments)
                or any(b is None or not b.categorical or not set(level.segments) <= set(b.segments) for b in by)):
            raise ValueError(f"feature {level.name}: peer_of must be a numeric feature and peer_by categorical "
                             f"features of its segments in {CATALOG_FILE.name}")


def peer_min_rows() -> int:
    """Rows with a positive value a group needs for its own median (``[peers] min_rows``)."""
    return int(_raw()["peers"]["min_rows"])


def check_segment(segment: str) -> str:
    if segment not in SEGMENTS:
        raise CreditgradeError(f"unknown segment {segment!r}: expected one of {', '.join(SEGMENTS)}")
    return segment


def catalog(segment: str | None = None) -> list[FeatureSpec]:
    """The features the builders make for a segment (for all segments if None), in catalogue order."""
    built = [s for s in _specs() if s.peer_of is None]
    if segment is None:
        return built
    check_segment(segment)
    return [s for s in built if segment in s.segments]


def peer_levels(segment: str) -> list[FeatureSpec]:
    """The segment's levels against peers (source ``peers``), in catalogue order."""
    check_segment(segment)
    return [s for s in _specs() if s.peer_of and segment in s.segments]


def spec(name: str) -> FeatureSpec:
    for s in _specs():
        if s.name == name:
            return s
    raise CreditgradeError(f"unknown feature {name!r}: not declared in {CATALOG_FILE.name}")


def feature_names(segment: str) -> list[str]:
    """Every column of the segment's feature matrix: model inputs and policy inputs."""
    return [s.name for s in catalog(segment)]


def model_feature_names(segment: str) -> list[str]:
    """The segment's model inputs (the catalogue's features without ``model = false``)."""
    return [s.name for s in catalog(segment) if s.model]


def monotone_constraints(segment: str, columns) -> list[int]:
    """LightGBM ``monotone_constraints`` for ``columns`` (1 up, -1 down, 0 none or categorical)."""
    declared = {s.name: s for s in catalog(segment)}
    unknown = [c for c in columns if c not in declared]
    if unknown:
        raise CreditgradeError(f"columns not in the {segment} catalogue: {', '.join(map(str, unknown))}")
    return [declared[c].monotone for c in columns]


def reason_text(name: str, lang: str = "en") -> str:
    """The feature's meaning as a reason sentence, in ``en`` or ``zh``."""
    if lang not in ("en", "zh"):
        raise CreditgradeError(f"unknown language {lang!r}: expected en or zh")
    return getattr(spec(name), lang)
