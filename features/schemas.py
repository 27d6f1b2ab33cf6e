"""Declared schemas of the three input tables: subjects, records and outcomes.

Each row of an input file is validated against one of these pydantic models; the kinds of record,
their sources, the fields each kind needs and the plausible range of every number and date come from
``features/sources.toml``. These models are the one place of row rules: objection corrections are validated
by building a ``RecordRow`` too. Every text field is at most as wide as its store column (derived from
``features.store``), and identity numbers in free text are masked before anything is stored.
"""
from __future__ import annotations

import datetime as dt
import re
import tomllib
import unicodedata
from enum import Enum
from functools import cache, partial
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Column

from creditgrade.features import ids
from creditgrade.features.store import records, subjects

SOURCES_FILE = Path(__file__).with_name("sources.toml")
EARLIEST = dt.date(1949, 10, 1)  # no record of this platform predates the People's Republic
LATEST = dt.date(2100, 1, 1)
Segment = Literal["sme", "household", "practitioner"]
SEGMENTS: tuple[str, ...] = ("sme", "household", "practitioner")
Source = Literal["tax", "safety", "quality", "labor", "finance", "lists"]
SOURCES: tuple[str, ...] = ("tax", "safety", "quality", "labor", "finance", "lists")


class Severity(str, Enum):
    minor = "minor"
    general = "general"
    serious = "serious"


@cache
def contract() -> dict:
    """The records contract (kinds, severity weights, retention, prohibited fields, plausibility bounds)."""
    with SOURCES_FILE.open("rb") as fh:
        return tomllib.load(fh)


def kinds() -> dict[str, dict]:
    return contract()["kinds"]


def _words(name: str) -> str:
    """A column name as lower-case words between spaces: 'bloodType', 'blood-type', 'BLOOD_TYPE' -> ' blood type '."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return " " + " ".join(w for w in re.split(r"[^0-9a-z]+", spaced.lower()) if w) + " "


def prohibited_category(column) -> str | None:
    """The prohibited field a column name holds, in Chinese or English (``[prohibited]``), or None."""
    name = unicodedata.normalize("NFKC", str(column))
    words = _words(name)
    for category, terms in contract()["prohibited"].items():
        if any(term in name for term in terms["zh"]):
            return category
        for term in terms["en"]:
            phrase = _words(term)
            if phrase in words or f" {phrase.replace(' ', '')} " in words:
                return category
    return None


def prohibited_fields(columns) -> list[str]:
    """The column names that name a prohibited field."""
    return [str(col) for col in columns if prohibited_category(col)]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_text(name: str, width: int, distinct: bool, value: str) -> str:
    control = _CONTROL.search(value)
    if control:
        raise ValueError(f"{name} contains a control character (U+{ord(control.group()):04X})")
    masked = ids.redact_distinct(value) if distinct else ids.redact(value)
    if len(masked) > width:
        raise ValueError(f"{name} is {len(masked)} characters once identity numbers are masked; "
                         f"its column holds {width}")
    return masked


def _text(column: Column, free: bool = True, distinct: bool = False):
    """Text no wider than its store column. Free text (``free``) has identity numbers masked, keeping two
    values that differ only in masked digits distinct when ``distinct`` (references, accounts)."""
    width = column.type.length
    if not free:
        return Annotated[str, Field(min_length=1, max_length=width)]
    return Annotated[str, Field(min_length=1, max_length=width),
                     AfterValidator(partial(_clean_text, column.name, width, distinct))]


PLAUSIBLE = contract()["plausibility"]
Amount = Annotated[float, Field(ge=0, le=PLAUSIBLE["amount_max"], allow_inf_nan=False)]
Day = Annotated[dt.date, Field(ge=EARLIEST, le=LATEST)]
SubjectId = _text(subjects.c.display_id, free=False)  # the widest stored form of a subject id


class _Row(BaseModel):
    """A row as read from a file: blank cells arrive as None (see features.reading)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    @field_validator(*PLAUSIBLE["not_in_future"], check_fields=False)
    @classmethod
    def _not_in_future(cls, day: dt.date | None, info):
        today = dt.date.today()
        if day is not None and day > today:
            raise ValueError(f"{info.field_name} {day} is after today ({today})")
        return day


class SubjectRow(_Row):
    """One subject: an SME, a rural household or a practitioner."""

    segment: Segment
    subject_id: SubjectId
    name: _text(subjects.c.name)
    district: str | None = Field(default=None, pattern=r"^\d{6}$")
    # sme
    sector: _text(subjects.c.sector) | None = None
    size: Literal["micro", "small", "medium"] | None = None
    founded: Day | None = None
    allow_bad_check: bool = False
    # household
    village_code: str | None = Field(default=None, pattern=r"^\d{12}$")
    township_code: str | None = Field(default=None, pattern=r"^\d{9}$")
    village_name: _text(subjects.c.village_name) | None = None
    township_name: _text(subjects.c.township_name) | None = None
    head_id: _text(subjects.c.head_id_masked, free=False) | None = None
    members: int | None = Field(default=None, ge=1, le=30)
    labour_force: int | None = Field(default=None, ge=0, le=30)
    land_mu: float | None = Field(default=None, ge=0, le=100000)
    agri_insurance: bool | None = None
    coop_member: bool | None = None
    # practitioner
    profession: _text(subjects.c.profession) | None = None
    licensed_since: Day | None = None

    @model_validator(mode="after")
    def _segment_rules(self):
        need = {
            "sme": ("sector", "size", "founded", "district"),
            "household": ("village_code", "township_code", "head_id", "members", "labour_force"),
            "practitioner": ("profession", "licensed_since", "district"),
        }[self.segment]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)} required for segment {self.segment}")
        ids.validate_subject_id(self.segment, self.subject_id, allow_bad_check=self.allow_bad_check)
        if self.segment == "household":
            if not self.village_code.startswith(self.township_code):
                raise ValueError("village_code must start with its township_code")
            if not self.subject_id.startswith("H" + self.village_code):
                raise ValueError("household subject_id must be 'H' + village_code + 4-digit serial")
            if self.labour_force > self.members:
                raise ValueError("labour_force cannot exceed members")
            ids.validate_ric(self.head_id, field="head_id")
        return self


class RecordRow(_Row):
    """One record from a source department (see sources.toml for the kinds)."""

    segment: Segment
    subject_id: SubjectId
    source: Source
    kind: _text(records.c.kind, free=False)
    start_date: Day
    end_date: Day | None = None
    reported_date: Day
    severity: Severity | None = None
    amount: Amount | None = None
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    category: _text(records.c.category) | None = None
    account: _text(records.c.account, distinct=True) | None = None
    doc_ref: _text(records.c.doc_ref, distinct=True)
    repaired_date: Day | None = None

    @model_validator(mode="before")
    @classmethod
    def _link_names_a_firm(cls, row):
        """A link's account is the linked firm's code, checked as sent (storage masks an all-digit one)."""
        if isinstance(row, dict) and kinds().get(row.get("kind"), {}).get("link") and row.get("account"):
            try:
                ids.validate_subject_id("sme", row["account"])
            except ValueError:
                raise ValueError(f"account of a {row['kind']} record must be the linked firm's unified social "
                                 f"credit code (valid check character)") from None
        return row

    @model_validator(mode="after")
    def _kind_rules(self):
        spec = kinds().get(self.kind)
        if spec is None:
            raise ValueError(f"kind {self.kind!r} is not a known kind (see features/sources.toml)")
        if spec["source"] != self.source:
            raise ValueError(f"kind {self.kind} belongs to source {spec['source']}, not {self.source}")
        if self.segment not in spec.get("segments", SEGMENTS):
            raise ValueError(f"segment: kind {self.kind} is reported only for {', '.join(spec['segments'])}")
        missing = [f for f in spec.get("needs", []) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)} required for kind {self.kind}")
        if "categories" in spec and self.category not in spec["categories"]:
            what = "issuing authority (category)" if spec.get("list") else "category"
            raise ValueError(f"{what} must be one of {spec['categories']} for kind {self.kind}")
        if spec.get("list"):
            low, high = spec["publication_months"]
            if not low <= self.value <= high:
                raise ValueError(f"value: publication period of {self.value:g} months outside "
                                 f"{low}..{high} for list {self.kind}")
        elif self.value is not None:
            low, high = spec.get("value", PLAUSIBLE["value_default"])
            if not low <= self.value <= high:
                raise ValueError(f"value {self.value:g} outside the plausible {low:g}..{high:g} for kind {self.kind}")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        if self.reported_date < self.start_date:
            raise ValueError("reported_date is before start_date")
        if self.repaired_date is not None:
            if not spec.get("repairable"):
                raise ValueError(f"repaired_date given but kind {self.kind} cannot be repaired")
            months = contract()["retention"]["repair_min_months"][self.severity.value]
            earliest = ids.add_months(self.start_date, months)
            if self.repaired_date < earliest:
                raise ValueError(
                    f"repaired_date {self.repaired_date} is before the minimum publication period "
                    f"of {months} months for a {self.severity.value} penalty (earliest {earliest})"
                )
        return self


class OutcomeRow(_Row):
    """Whether a subject defaulted within the horizon after an as-of date (DESIGN.md)."""

    segment: Segment
    subject_id: SubjectId
    as_of: Day
    horizon_months: int = Field(default=12, ge=1, le=60)
    defaulted: Literal[0, 1]

    @field_validator("defaulted", mode="before")
    @classmethod
    def _bool_to_int(cls, v):
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, float) and v in (0.0, 1.0):
            return int(v)
        if isinstance(v, str) and v.strip() in ("0", "1"):
            return int(v)
        return v


TABLES: dict[str, type[_Row]] = {"subjects": SubjectRow, "records": RecordRow, "outcomes": OutcomeRow}


def required_columns(model: type[_Row]) -> list[str]:
    return [name for name, f in model.model_fields.items() if f.is_required()]


def detect_table(columns) -> str | None:
    """Which input table a file holds, from its header: records have `kind`, outcomes `defaulted`."""
    cols = {str(c).strip().lower() for c in columns}
    if "kind" in cols:
        return "records"
    if "defaulted" in cols:
        return "outcomes"
    if "name" in cols or "segment" in cols:
        return "subjects"
    return None
