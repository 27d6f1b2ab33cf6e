"""Request and response models of the HTTP API (pydantic), shared by the service and its tests.

Requests are strict where JSON is ambiguous: dates and times only as ISO strings, booleans only as
``true``/``false``, integers only as integers, ids within the store's 32-bit keys; an optional field is
omitted, never ``null`` (its default is ``None``, which the published schema does not offer). Free texts
are redacted (identity numbers masked) on the way in and, for stored ones, on the way out.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool
from pydantic.json_schema import SkipJsonSchema

from creditgrade.features.ids import redact

Timestamp = Annotated[dt.datetime, AfterValidator(lambda v: v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc))]
"""A time with its offset (the store may return UTC times without one)."""
Segment = Literal["sme", "household", "practitioner"]
Redacted = Annotated[str, AfterValidator(redact)]
"""Free text with anything shaped like an identity number masked."""
Id = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
"""A store key (PostgreSQL's integer; SQLite overflows beyond 2**63)."""
Limit = Annotated[int, Field(ge=1, le=1000, strict=True)]


def _iso(pattern: str, what: str):
    """A before-validator letting through only strings of ``pattern`` (or values already parsed)."""
    def check(value):
        if isinstance(value, str) and re.fullmatch(pattern, value, re.ASCII):
            return value
        if isinstance(value, (dt.date, dt.datetime)) and not isinstance(value, bool):
            return value
        raise ValueError(f"must be {what}")
    return BeforeValidator(check)


IsoDate = Annotated[dt.date, _iso(r"\d{4}-\d{2}-\d{2}", "a date as an ISO string YYYY-MM-DD")]
IsoTime = Annotated[dt.datetime, _iso(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
                                      "a time as an RFC 3339 string with its offset, e.g. 2025-01-31T08:00:00Z")]
SubjectId = Field(min_length=1, max_length=64, description="USCC (SME), household id, or resident "
                  "identity number (practitioner)")
Purpose = Field(min_length=1, max_length=200, description="why the grade is queried (recorded in the audit log)")
ConsentRef = Field(default=None, min_length=1, max_length=100,
                   description="the subject's consent reference; required to grade a natural person")
PurposeOfAction = Field(default=None, min_length=1, max_length=200,
                        description="why (recorded in the audit log; default: the action's own purpose)")


def _no_null_defaults(schema: dict) -> None:
    """An omitted field's ``None`` is no value a caller may send: leave it out of the schema."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class Strict(BaseModel):
    """A request: unknown fields refused; optional fields are omitted, not null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_defaults)


class GradeRequest(Strict):
    subject_id: str = SubjectId
    segment: Segment
    as_of: IsoDate = Field(default=None, description="features as of this date (default today)")
    purpose: Redacted = Purpose
    consent_ref: Redacted = ConsentRef


class BatchItem(GradeRequest):
    key_id: SkipJsonSchema[int | None] = Field(default=None, exclude=True)  # set by the gate, never the caller


class SubjectRequest(Strict):
    subject_id: str = SubjectId
    segment: Segment
    purpose: Redacted = Purpose
    consent_ref: Redacted = ConsentRef


class ObjectionRequest(Strict):
    subject_id: str = SubjectId
    segment: Segment
    record_id: Id
    reason: Redacted = Field(min_length=3, max_length=2000)
    purpose: Redacted = PurposeOfAction


class ObjectionFilter(Strict):
    status: Literal["open", "corrected", "voided", "rejected", "upheld"] = None
    overdue_only: StrictBool = False
    limit: Limit = 100


class Correction(Strict):
    """New values for the disputed record's fields (only those given change); the record they make is
    checked by the ingest rules (``features.schemas.RecordRow``)."""

    severity: Literal["minor", "general", "serious"] = None
    amount: float = Field(default=None, ge=0, allow_inf_nan=False, strict=True)
    value: float = Field(default=None, allow_inf_nan=False, strict=True)
    start_date: IsoDate = None
    end_date: IsoDate = None
    repaired_date: IsoDate = None


class ResolveRequest(Strict):
    objection_id: Id
    status: Literal["corrected", "voided", "rejected", "upheld"]  # voided: the record is wholly wrong
    resolution: Redacted = Field(min_length=3, max_length=2000)
    correction: Correction = None
    purpose: Redacted = PurposeOfAction


class AuditFilter(Strict):
    subject_id: str = Field(default=None, min_length=1, max_length=64)
    segment: Segment = None
    since: IsoTime = None
    limit: Limit = 100
    purpose: Redacted = PurposeOfAction


class WarningFilter(Strict):
    segment: Segment = Field(default=None, description="banks and analysts: sme; evaluators: household")
    level: Literal["red", "orange", "yellow"] = None
    since: IsoDate = Field(default=None, description="warnings as of this date or later")
    acknowledged: StrictBool = Field(default=None, description="only acknowledged (true) or open (false) ones")
    state: Literal["new", "assigned", "under_review", "closed"] = None
    limit: Limit = 100


class AcknowledgeRequest(Strict):
    warning_id: Id
    purpose: Redacted = PurposeOfAction


class WorkRequest(Strict):
    """Work a warning in the register (states, moves and outcomes: models/warnings.toml [register])."""
    warning_id: Id
    state: Literal["new", "assigned", "under_review", "closed"] = None
    outcome: Literal["cured", "restructured", "defaulted", "false_alarm"] = Field(
        default=None, description="required when closing, and only then")
    owner: Redacted = Field(default=None, min_length=1, max_length=100, description="who the warning is assigned to")
    note: Redacted = Field(default=None, min_length=1, max_length=2000)
    purpose: Redacted = PurposeOfAction


TownshipCode = Annotated[str, Field(pattern=r"^\d{9}$", description="a 9-digit township code")]


class VillagesRequest(Strict):
    as_of: IsoDate = Field(default=None, description="ratings as of this date (default today)")
    townships: list[TownshipCode] = Field(
        default=None, min_length=1, max_length=1000,
        description="only these townships (evaluators: among their own; default: all they may see)")


class SheetRequest(Strict):
    subject_id: str = Field(min_length=1, max_length=64, validation_alias=AliasChoices("subject_id", "household_id"),
                            description="the household id (`household_id`, its former name, is still accepted "
                                        "and deprecated)")
    as_of: IsoDate = Field(default=None, description="graded as of this date (default today)")
    consent_ref: Redacted = Field(min_length=1, max_length=100,
                                  description="the household's consent reference (households are natural persons)")
    purpose: Redacted = Field(default=None, min_length=1, max_length=200,
                              description="why the sheet is printed (recorded in the audit log)")

    # read by the audit of a refusal, as for any request naming a subject (``serving.grading.where_of``)
    segment: ClassVar[str] = "household"


class Reason(BaseModel):
    feature: str
    en: str
    zh: str
    value: float | str | None
    reference: float | None
    contribution: float
    unit: str
    override: bool = False
    cap: str | None = None
    policy: str | None = Field(default=None, description="the binding policy rule's action (default or cap)")
    record_id: int | None = Field(default=None, description="the record that binds the policy rule")
    authority: dict[str, str] | None = Field(default=None, description="the authority behind the rule (en, zh)")
    since: dt.date | None = Field(default=None, description="in default since (the binding record's date)")
    disputed_records: list[int] = []


class Model(BaseModel):
    name: str
    version: str


class Grade(BaseModel):
    subject: str = Field(description="the subject's display id (identity numbers masked)")
    segment: Segment
    as_of: dt.date
    grade: str
    model_grade: str
    score: float
    pd: float
    override: str | None
    reasons: list[Reason]
    disputed: bool
    disputed_records: list[int]
    model: Model
    grade_id: int
    graded_at: Timestamp
    data_as_of: dict[str, dt.date] = Field(description="each source's data watermark the grade stands on "
                                                       "(capped at as_of); 各来源数据截至日期")
    stale: bool = Field(description="true when a source's data lag as_of by more than the configured days")
    stale_sources: list[str] = Field(description="the sources whose data lag as_of")


class BatchResult(BaseModel):
    status: int
    error: str | None = None
    field: str | None = None
    result: Grade | None = None


class Contribution(BaseModel):
    feature: str
    value: float | str | None
    reference: float | None
    contribution: float


class Explanation(BaseModel):
    grade: Grade
    unit: str
    bias: float
    contributions: list[Contribution]
    what_would_change: dict


class RecordView(BaseModel):
    record_id: int
    source: str
    kind: str
    start_date: dt.date
    end_date: dt.date | None
    reported_date: dt.date
    severity: str | None
    amount: float | None
    value: float | None
    doc_ref: Redacted
    repaired_date: dt.date | None
    voided_at: Timestamp | None  # void: kept for the history, never used for a grade
    disputed: bool


class GradeHistory(BaseModel):
    grade_id: int
    as_of: dt.date
    graded_at: Timestamp
    grade: str
    score: float
    pd: float
    model: Model
    disputed: bool
    origin: str


class Report(BaseModel):
    current: Grade
    records: list[RecordView]
    history: list[GradeHistory]
    objections: list["Objection"]


class Objection(BaseModel):
    objection_id: int
    record_id: int
    subject: str
    filed_at: Timestamp
    due_date: dt.date
    days_left: int
    overdue: bool
    status: str
    reason: Redacted
    resolution: Redacted | None
    resolved_at: Timestamp | None


class Resolved(BaseModel):
    objection: Objection
    regrade: Grade | None


class GradeMeaning(BaseModel):
    grade: str
    en: str = Field(description="what the grade means")
    zh: str = Field(description="等级含义")
    pd_from: float | None = Field(description="PD bands: the band's lowest PD (inclusive)")
    pd_below: float | None = Field(description="PD bands: the PD the band stops below")
    score_from: float | None = Field(description="score bands: the band's lowest score (inclusive)")
    score_to: float | None = Field(description="score bands: the score the band reaches up to (exclusive "
                                               "except at the scale's maximum)")
    in_default: bool = Field(description="the grade the policy gives a subject in default")
    credit_line_cny: int | None = Field(description="households: the credit line cap the grade earns")
    rate_discount_bp: int | None = Field(description="households: the rate discount in basis points")


class ScaleView(BaseModel):
    segment: Segment
    by: Literal["pd", "score"] = Field(description="whether bands are read from the PD or the score")
    score_min: float
    score_max: float
    grades: list[GradeMeaning] = Field(description="best grade first")


class AuditEntry(BaseModel):
    audit_id: int
    at: Timestamp
    key_id: int | None
    key_name: str | None = Field(description="the name the key was created with")
    role: str | None
    action: str
    subject_key: str | None
    segment: str | None
    purpose: str | None
    consent_ref: str | None
    outcome: str
    detail: str | None


class WarningView(BaseModel):
    warning_id: int
    subject: str = Field(description="the subject's display id (identity numbers masked)")
    segment: Segment
    township_code: str | None
    village_code: str | None
    as_of: dt.date
    level: Literal["red", "orange", "yellow"]
    trigger: str
    evidence: dict = Field(description="the trigger, current and previous grades, and the values or records behind it")
    created_at: Timestamp
    acknowledged: bool
    acknowledged_at: Timestamp | None
    acknowledged_by: str | None
    state: str = "new"
    outcome: str | None = None
    owner: str | None = None
    notes: list[dict] = Field(default_factory=list, description="the register's notes: at, by, text")


class VillageRating(BaseModel):
    village_code: str
    township_code: str
    households: int
    rated: int
    rated_share: float = Field(ge=0, le=1)
    borrowing: int = Field(description="borrowing households")
    borrowing_clean: int = Field(description="borrowing households without arrears")
    clean_share: float | None = Field(ge=0, le=1, description="share of borrowing households without arrears "
                                                               "(none when no household borrows)")
    qualifies: bool = Field(description="a credit village")


class TownshipRating(BaseModel):
    township_code: str
    villages: int
    credit_villages: int
    credit_village_share: float = Field(ge=0, le=1)
    qualifies: bool = Field(description="a credit township")


class Villages(BaseModel):
    as_of: dt.date
    villages: list[VillageRating]
    townships: list[TownshipRating]


class Sheet(BaseModel):
    html: str = Field(description="the printable evaluation sheet (HTML, Chinese with English labels)")


Report.model_rebuild()
