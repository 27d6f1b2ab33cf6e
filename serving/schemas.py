"""Request and response models of the HTTP API (pydantic), shared by the service and its tests."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

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


Report.model_rebuild()
