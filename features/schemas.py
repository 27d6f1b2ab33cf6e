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
from typing import Annotated, Literal, get_args

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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


SEGMENT_NEEDS = {  # a subject's fields its segment requires
    "sme": ("sector", "size", "founded", "district"),
    "household": ("village_code", "township_code", "head_id", "members", "labour_force"),
    "practitioner": ("profession", "licensed_since", "district"),
}


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
        need = SEGMENT_NEEDS[self.segment]
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


# --- fast column checks: whole columns of a records chunk at once (Arrow), for bulk ingestion ---
# A row passes only when every check below holds, and each check is a strict subset of what RecordRow accepts,
# with the same typed result; every other row is left to RecordRow (its messages are the rules' one source).

_DAY_TEXT = r"^\d{4}-\d{2}-\d{2}$"
_NUMBER_TEXT = r"^-?\d{1,15}(\.\d{1,15})?$"
_RIC_LIKE = r"\d{17}[\dXx]"  # wider than ids.RIC_IN_TEXT (no look-arounds in RE2): a row that may hold one


def _text_column(col: pa.Array, width: int, free: bool) -> tuple[pa.Array, pa.Array]:
    """Text no wider than ``width``, without surrounding spaces, control characters or (free text) anything
    shaped like an identity number; returns (text, passes)."""
    if pa.types.is_null(col.type):
        return col.cast(pa.string()), pa.array(np.ones(len(col), bool))
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return pa.nulls(len(col), pa.string()), pa.array(np.zeros(len(col), bool))
    col = col.cast(pa.string())
    length = pc.utf8_length(col)
    ok = pc.and_(pc.and_(pc.greater_equal(length, 1), pc.less_equal(length, width)),
                 pc.equal(pc.utf8_trim_whitespace(col), col))
    if free:
        ok = pc.and_(ok, pc.invert(pc.match_substring_regex(col, _CONTROL.pattern)))
        ok = pc.and_(ok, pc.invert(pc.match_substring_regex(col, _RIC_LIKE)))
    return col, pc.or_kleene(pc.is_null(col), ok)


def _day_column(col: pa.Array) -> tuple[pa.Array, pa.Array]:
    if pa.types.is_null(col.type) or pa.types.is_date32(col.type):
        days = col.cast(pa.date32())
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = col.cast(pa.string())
        parsed = pc.cast(pc.strptime(col, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())
        strict = pc.and_(pc.match_substring_regex(col, _DAY_TEXT), pc.equal(parsed.cast(pa.string()), col))
        days = pc.if_else(strict, parsed, pa.scalar(None, pa.date32()))
    else:
        return pa.nulls(len(col), pa.date32()), pa.array(np.zeros(len(col), bool))
    inside = pc.and_(pc.greater_equal(days, pa.scalar(EARLIEST)), pc.less_equal(days, pa.scalar(LATEST)))
    return days, pc.if_else(pc.is_null(col), True, pc.fill_null(inside, False))


def _number_column(col: pa.Array) -> tuple[pa.Array, pa.Array]:
    if pa.types.is_null(col.type) or pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        numbers = col.cast(pa.float64(), safe=False)
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = col.cast(pa.string())
        plain = pc.match_substring_regex(col, _NUMBER_TEXT)
        numbers = pc.if_else(plain, col, pa.scalar(None, pa.string())).cast(pa.float64())
    else:
        return pa.nulls(len(col), pa.float64()), pa.array(np.zeros(len(col), bool))
    return numbers, pc.if_else(pc.is_null(col), True, pc.fill_null(pc.is_finite(numbers), False))


def _per_kind(index: pa.Array, value, type_) -> pa.Array:
    """``value(spec)`` of each row's kind, given the kinds' ``index`` in ``kinds()`` (null for an unknown kind)."""
    return pa.array([value(spec) for spec in kinds().values()], type_).take(index)


def _allowed(kind: pa.Array, other: pa.Array, allowed) -> pa.Array:
    """Whether each row's ``other`` value is one ``allowed(spec)`` lists for its kind (any, when it lists none)."""
    pairs = [f"{name}\x00{v}" for name, spec in kinds().items() for v in (allowed(spec) or [])]
    free = pc.is_in(kind, value_set=pa.array([n for n, spec in kinds().items() if allowed(spec) is None], pa.string()))
    listed = pc.is_in(pc.binary_join_element_wise(kind, other, "\x00"), value_set=pa.array(pairs, pa.string()))
    return pc.or_kleene(free, listed)


def _all(*checks) -> pa.Array:
    """Element-wise and of boolean arrays, a null counting as false."""
    out = pc.fill_null(checks[0], False)
    for check in checks[1:]:
        out = pc.and_(out, pc.fill_null(check, False))
    return out


def fast_records(table: pa.Table) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """A records chunk checked column-wise: (rows that RecordRow would accept as they are, typed columns)."""
    n = table.num_rows

    def column(name):
        return table.column(name).combine_chunks() if name in table.column_names else pa.nulls(n)

    typed, checks = {}, []
    for name, (cast, *args) in {
        "segment": (_text_column, 16, False), "subject_id": (_text_column, subjects.c.display_id.type.length, False),
        "source": (_text_column, 10, False), "kind": (_text_column, records.c.kind.type.length, False),
        "severity": (_text_column, 10, False), "category": (_text_column, records.c.category.type.length, True),
        "account": (_text_column, records.c.account.type.length, True),
        "doc_ref": (_text_column, records.c.doc_ref.type.length, True),
        "start_date": (_day_column,), "end_date": (_day_column,), "reported_date": (_day_column,),
        "repaired_date": (_day_column,), "amount": (_number_column,), "value": (_number_column,),
    }.items():
        typed[name], ok = cast(column(name), *args)
        checks.append(ok)
    kind, value, start = typed["kind"], typed["value"], typed["start_date"]
    index = pc.index_in(kind, value_set=pa.array(list(kinds()), pa.string()))
    today = pa.scalar(dt.date.today())
    low = _per_kind(index, lambda s: (s["publication_months"] if s.get("list") else
                                     s.get("value", PLAUSIBLE["value_default"]))[0], pa.float64())
    high = _per_kind(index, lambda s: (s["publication_months"] if s.get("list") else
                                      s.get("value", PLAUSIBLE["value_default"]))[1], pa.float64())
    is_list = pc.fill_null(_per_kind(index, lambda s: bool(s.get("list")), pa.bool_()), False)
    checks += [
        pc.is_in(typed["segment"], value_set=pa.array(SEGMENTS)),
        pc.is_in(typed["source"], value_set=pa.array(SOURCES)),
        pc.is_valid(typed["subject_id"]), pc.is_valid(typed["doc_ref"]), pc.is_valid(start),
        pc.is_valid(typed["reported_date"]), pc.string_is_ascii(typed["subject_id"]),
        pc.or_kleene(pc.is_null(typed["severity"]),
                     pc.is_in(typed["severity"], value_set=pa.array([s.value for s in Severity]))),
        pc.is_null(typed["repaired_date"]),  # a repair's rules are RecordRow's
        pc.equal(_per_kind(index, lambda s: s["source"], pa.string()), typed["source"]),
        _allowed(kind, typed["segment"], lambda spec: spec.get("segments")),
        _allowed(kind, typed["category"], lambda spec: spec.get("categories")),
        pc.or_kleene(pc.is_null(typed["amount"]), pc.and_(pc.greater_equal(typed["amount"], 0),
                                                     pc.less_equal(typed["amount"], PLAUSIBLE["amount_max"]))),
        pc.or_kleene(pc.is_null(typed["end_date"]), pc.greater_equal(typed["end_date"], start)),
        pc.greater_equal(typed["reported_date"], start),
        pc.or_kleene(pc.and_(pc.is_null(value), pc.invert(is_list)),
                     pc.and_(pc.greater_equal(value, low), pc.less_equal(value, high))),
    ]
    checks += [pc.or_kleene(pc.is_null(typed[f]), pc.less_equal(typed[f], today))
               for f in PLAUSIBLE["not_in_future"] if f in typed]
    for name in {need for spec in kinds().values() for need in spec.get("needs", [])}:
        needed = pc.fill_null(_per_kind(index, lambda s: name in s.get("needs", []), pa.bool_()), False)
        checks.append(pc.invert(pc.and_(needed, pc.is_null(typed[name]))))
    checks.append(pc.invert(pc.fill_null(_per_kind(index, lambda s: bool(s.get("link")), pa.bool_()), False)))  # RecordRow's
    return _all(*checks).to_numpy(zero_copy_only=False), typed


def _int_column(col: pa.Array, low: int, high: int) -> tuple[pa.Array, pa.Array]:
    """Whole numbers from ``low`` to ``high`` (integers, integral floats or plain digits)."""
    if pa.types.is_null(col.type) or pa.types.is_integer(col.type):
        numbers = col.cast(pa.int64())
    elif pa.types.is_floating(col.type):
        whole = pc.and_(pc.is_finite(col), pc.equal(pc.floor(col), col))
        numbers = pc.if_else(whole, pc.if_else(whole, col, 0).cast(pa.int64()), pa.scalar(None, pa.int64()))
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = col.cast(pa.string())
        plain = pc.match_substring_regex(col, r"^\d{1,9}$")
        numbers = pc.if_else(plain, col, pa.scalar(None, pa.string())).cast(pa.int64())
    else:
        return pa.nulls(len(col), pa.int64()), pa.array(np.zeros(len(col), bool))
    inside = pc.and_(pc.greater_equal(numbers, low), pc.less_equal(numbers, high))
    return numbers, pc.if_else(pc.is_null(col), True, pc.fill_null(inside, False))


def _bool_column(col: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Booleans (or the text true/false/1/0 in any case)."""
    if pa.types.is_null(col.type) or pa.types.is_boolean(col.type):
        return col.cast(pa.bool_()), pa.array(np.ones(len(col), bool))
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return pa.nulls(len(col), pa.bool_()), pa.array(np.zeros(len(col), bool))
    word = pc.utf8_lower(col.cast(pa.string()))
    known = pc.is_in(word, value_set=pa.array(["true", "false", "1", "0"]))
    flags = pc.if_else(known, pc.is_in(word, value_set=pa.array(["true", "1"])), pa.scalar(None, pa.bool_()))
    return flags, pc.if_else(pc.is_null(col), True, known)


def _range(name: str, model: type[BaseModel] | None = None) -> tuple:
    """The bounds (``ge``, ``le``) a row model (SubjectRow unless given) declares for a field."""
    meta = (model or SubjectRow).model_fields[name].metadata
    return next(m.ge for m in meta if hasattr(m, "ge")), next(m.le for m in meta if hasattr(m, "le"))


def _field_pattern(name: str) -> str:
    """The pattern SubjectRow declares for a text field."""
    return next(m.pattern for m in SubjectRow.model_fields[name].metadata if getattr(m, "pattern", None))


def _choices(name: str) -> list[str]:
    """The values of a SubjectRow field declared as ``Literal[...] | None``."""
    return [v for arg in get_args(SubjectRow.model_fields[name].annotation) for v in get_args(arg)]


def _pattern(col: pa.Array, pattern: str) -> pa.Array:
    return pc.or_kleene(pc.is_null(col), pc.match_substring_regex(col, pattern))


def _valid_ids(check, *columns: pa.Array) -> pa.Array:
    """Whether ``check(*values)`` returns the first value unchanged, without ValueError (a missing one passes),
    row by row: the identity number checks are stdnum's, per value (a few microseconds each)."""
    def ok(values) -> bool:
        try:
            return values[0] is None or check(*values) == values[0]
        except ValueError:
            return False
    return pa.array([ok(v) for v in zip(*(c.to_pylist() for c in columns))], pa.bool_())


def _typed(table: pa.Table, casts: dict) -> tuple[dict[str, pa.Array], list[pa.Array]]:
    """Each named column cast and checked (a column the file lacks is all missing)."""
    typed, checks = {}, []
    for name, (cast, *args) in casts.items():
        col = table.column(name).combine_chunks() if name in table.column_names else pa.nulls(table.num_rows)
        typed[name], ok = cast(col, *args)
        checks.append(ok)
    return typed, checks


def _not_in_future(typed: dict[str, pa.Array]) -> list[pa.Array]:
    today = pa.scalar(dt.date.today())
    return [pc.or_kleene(pc.is_null(typed[f]), pc.less_equal(typed[f], today))
            for f in PLAUSIBLE["not_in_future"] if f in typed]


def fast_subjects(table: pa.Table) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """A subjects chunk checked column-wise: (rows that SubjectRow would accept as they are, typed columns).
    Identity numbers (the subject's, a household head's) are checked by ``ids`` value by value; a bad check
    character, even one a file may override, is left to SubjectRow."""
    if "allow_bad_check" in table.column_names:
        return np.zeros(table.num_rows, bool), {}
    width = {c.name: c.type.length for c in subjects.columns if hasattr(c.type, "length")}
    typed, checks = _typed(table, {
        "segment": (_text_column, 16, False), "subject_id": (_text_column, width["display_id"], False),
        "name": (_text_column, width["name"], True), "district": (_text_column, 6, False),
        "sector": (_text_column, width["sector"], True), "size": (_text_column, 10, False),
        "founded": (_day_column,), "village_code": (_text_column, 12, False),
        "township_code": (_text_column, 9, False), "village_name": (_text_column, width["village_name"], True),
        "township_name": (_text_column, width["township_name"], True),
        "head_id": (_text_column, width["head_id_masked"], False), "members": (_int_column, *_range("members")),
        "labour_force": (_int_column, *_range("labour_force")), "land_mu": (_number_column,),
        "agri_insurance": (_bool_column,),
        "coop_member": (_bool_column,), "profession": (_text_column, width["profession"], True),
        "licensed_since": (_day_column,)})
    segment, sid = typed["segment"], typed["subject_id"]
    household = pc.equal(segment, "household")
    land_low, land_high = _range("land_mu")
    checks += [
        pc.is_in(segment, value_set=pa.array(SEGMENTS)), pc.is_valid(sid), pc.is_valid(typed["name"]),
        pc.or_kleene(pc.is_null(typed["size"]), pc.is_in(typed["size"], value_set=pa.array(_choices("size")))),
        *(_pattern(typed[f], _field_pattern(f)) for f in ("district", "village_code", "township_code")),
        pc.or_kleene(pc.is_null(typed["land_mu"]), pc.and_(pc.greater_equal(typed["land_mu"], land_low),
                                                           pc.less_equal(typed["land_mu"], land_high))),
        *(pc.invert(pc.and_(pc.equal(segment, seg), pc.is_null(typed[f]))) for seg, fields in SEGMENT_NEEDS.items()
          for f in fields),
        pc.invert(pc.and_kleene(household, pc.invert(pc.and_(
            pc.and_(pc.match_substring_regex(sid, r"^H\d{16}$"),
                    pc.equal(pc.utf8_slice_codeunits(sid, 0, 13),
                             pc.binary_join_element_wise("H", typed["village_code"], ""))),
            pc.and_(pc.equal(pc.utf8_slice_codeunits(typed["village_code"], 0, 9), typed["township_code"]),
                    pc.less_equal(typed["labour_force"], typed["members"])))))),
        _valid_ids(lambda s, seg: ids.validate_subject_id(seg, s), sid, segment),
        _valid_ids(lambda h: ids.validate_ric(h, "head_id"), typed["head_id"]),  # SubjectRow: households' only
    ]
    return _all(*checks, *_not_in_future(typed)).to_numpy(zero_copy_only=False), typed


def fast_outcomes(table: pa.Table) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """An outcomes chunk checked column-wise: (rows that OutcomeRow would accept as they are, typed columns)."""
    typed, checks = _typed(table, {
        "segment": (_text_column, 16, False), "subject_id": (_text_column, subjects.c.display_id.type.length, False),
        "as_of": (_day_column,), "horizon_months": (_int_column, *_range("horizon_months", OutcomeRow)),
        "defaulted": (_int_column, 0, 1)})
    sent = table.column("defaulted") if "defaulted" in table.column_names else None
    if sent is not None and (pa.types.is_string(sent.type) or pa.types.is_large_string(sent.type)):  # as text, OutcomeRow takes 0 and 1 alone
        checks.append(pc.or_kleene(pc.is_null(sent), pc.is_in(sent, value_set=pa.array(["0", "1"]))))
    if "horizon_months" not in table.column_names:
        typed["horizon_months"] = pa.array(np.full(table.num_rows, OutcomeRow.model_fields["horizon_months"].default))
    checks += [pc.is_in(typed["segment"], value_set=pa.array(SEGMENTS)), pc.is_valid(typed["subject_id"]),
               pc.string_is_ascii(typed["subject_id"]), pc.is_valid(typed["as_of"]),
               pc.is_valid(typed["horizon_months"]), pc.is_valid(typed["defaulted"])]
    return _all(*checks, *_not_in_future(typed)).to_numpy(zero_copy_only=False), typed
