"""Request and response models of the HTTP API (pydantic), shared by the service and its tests."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

Timestamp = Annotated[dt.datetime, AfterValidator(lambda v: v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc))]
"""A time with its offset (the store may return UTC times without one)."""
Segment = Literal["sme", "household", "practitioner"]
SubjectId = Field(min_length=1, max_length=64, description="USCC (SME), household id, or resident "
                  "identity number (practitioner)")
Purpose = Field(min_length=1, max_length=200, description="why the grade is queried (recorded in the audit log)")
ConsentRef = Field(default=None, min_length=1, max_length=100,
                   description="the subject's consent reference; required to grade a natural person")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GradeRequest(Strict):
    subject_id: str = SubjectId
    segment: Segment
    as_of: dt.date | None = Field(default=None, description="features as of this date (default today)")
    purpose: str = Purpose
    consent_ref: str | None = ConsentRef


class BatchItem(GradeRequest):
    key_id: SkipJsonSchema[int | None] = Field(default=None, exclude=True)  # set by the gate, never the caller


class SubjectRequest(Strict):
    subject_id: str = SubjectId
    segment: Segment
    purpose: str = Purpose
    consent_ref: str | None = ConsentRef


class ObjectionRequest(Strict):
    subject_id: str = SubjectId
    segment: Segment
    record_id: int = Field(ge=1)
    reason: str = Field(min_length=3, max_length=2000)


class ObjectionFilter(Strict):
    status: Literal["open", "corrected", "rejected", "upheld"] | None = None
    overdue_only: bool = False
    limit: int = Field(default=100, ge=1, le=1000)


class Correction(Strict):
    """New values for the disputed record's fields (only those given change)."""

    severity: Literal["minor", "general", "serious"] | None = None
    amount: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    value: float | None = Field(default=None, allow_inf_nan=False)
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    repaired_date: dt.date | None = None


class ResolveRequest(Strict):
    objection_id: int = Field(ge=1)
    status: Literal["corrected", "rejected", "upheld"]
    resolution: str = Field(min_length=3, max_length=2000)
    correction: Correction | None = None


class AuditFilter(Strict):
    subject_id: str | None = Field(default=None, min_length=1, max_length=64)
    segment: Segment | None = None
    since: dt.datetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class WarningFilter(Strict):
    segment: Segment | None = Field(default=None, description="banks and analysts: sme; evaluators: household")
    level: Literal["red", "orange", "yellow"] | None = None
    since: dt.date | None = Field(default=None, description="warnings as of this date or later")
    acknowledged: bool | None = Field(default=None, description="only acknowledged (true) or open (false) ones")
    limit: int = Field(default=100, ge=1, le=1000)


class AcknowledgeRequest(Strict):
    warning_id: int = Field(ge=1, le=2**31 - 1)  # the store's integer key (PostgreSQL refuses larger ones)


TownshipCode = Annotated[str, Field(pattern=r"^\d{9}$", description="a 9-digit township code")]


class VillagesRequest(Strict):
    as_of: dt.date | None = Field(default=None, description="ratings as of this date (default today)")
    townships: list[TownshipCode] | None = Field(
        default=None, min_length=1, max_length=1000,
        description="only these townships (evaluators: among their own; default: all they may see)")


class SheetRequest(Strict):
    household_id: str = Field(min_length=1, max_length=64, description="the household id")
    as_of: dt.date | None = Field(default=None, description="graded as of this date (default today)")
    consent_ref: str = Field(min_length=1, max_length=100,
                             description="the household's consent reference (households are natural persons)")
    purpose: str | None = Field(default=None, min_length=1, max_length=200,
                                description="why the sheet is printed (recorded in the audit log)")

    # read by the audit of a refusal, as for any request naming a subject (``serving.grading.where_of``)
    segment: ClassVar[str] = "household"

    @property
    def subject_id(self) -> str:
        return self.household_id


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
    doc_ref: str
    repaired_date: dt.date | None
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
    reason: str
    resolution: str | None
    resolved_at: Timestamp | None


class Resolved(BaseModel):
    objection: Objection
    regrade: Grade | None


class AuditEntry(BaseModel):
    audit_id: int
    at: Timestamp
    key_id: int | None
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
