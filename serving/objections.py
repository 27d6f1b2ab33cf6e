"""Objections (disputes) against records, and the subject's own report.

Filing marks the record disputed at once (grades flag it) and sets the answer due in 20 days. Resolving
``corrected`` applies the correction to the record, ``voided`` marks a wholly wrong record void (kept and
shown in the subject's report, never used for a grade again: ``features.loader`` skips it); either
re-grades the subject (origin ``regrade``), so the history shows the grade before and after, the objection
says when and why and the audit log who. ``rejected`` and ``upheld`` leave the record as it is. A
correction must make a record the ingest rules accept (``features.schemas.RecordRow``), and the whole
answer — record, objection, re-grade, audit — is one transaction: it happens entirely or not at all.
"""
from __future__ import annotations

import datetime as dt

from pydantic import ValidationError
from sqlalchemy import insert, select, update

from creditgrade.features.schemas import RecordRow
from creditgrade.features.store import objections, records
from creditgrade.serving import audit
from creditgrade.serving.auth import Principal, check_role, check_subject
from creditgrade.serving.errors import ApiError, bad_input
from creditgrade.serving.grading import Grader, Subject
from creditgrade.serving.schemas import (GradeHistory, GradeRequest, Objection, ObjectionFilter, ObjectionRequest,
                             RecordView, Report, Resolved, ResolveRequest, SubjectRequest)
from creditgrade.serving.tables import grades

ANSWER_DAYS = 20


def _view(row, display: str, today: dt.date) -> Objection:
    open_ = row.status == "open"
    return Objection(objection_id=row.objection_id, record_id=row.record_id, subject=display,
                     filed_at=row.filed_at, due_date=row.due_date, days_left=(row.due_date - today).days,
                     overdue=open_ and today > row.due_date, status=row.status, reason=row.reason,
                     resolution=row.resolution, resolved_at=row.resolved_at)


def file(grader: Grader, principal: Principal, req: ObjectionRequest) -> Objection:
    """File an objection against one of the subject's records."""
    now = dt.datetime.now(dt.timezone.utc)
    with grader.store.engine.begin() as conn:
        subject = grader.subject(conn, req.segment, req.subject_id)
        check_subject(principal, "file_objection", subject.segment, subject.key, subject.township, None)
        record = conn.execute(select(records.c.subject_key, records.c.voided_at)
                              .where(records.c.record_id == req.record_id)).first()
        if record is None or record.subject_key != subject.key:
            raise ApiError(404, f"record_id: no record {req.record_id} of this subject", "record_id")
        if record.voided_at is not None:
            raise ApiError(409, f"record_id: record {req.record_id} is void already", "record_id")
        if conn.execute(select(objections.c.objection_id).where(
                objections.c.record_id == req.record_id, objections.c.status == "open")).first():
            raise ApiError(409, f"record_id: record {req.record_id} already has an open objection", "record_id")
        oid = conn.execute(insert(objections).values(
            record_id=req.record_id, subject_key=subject.key, filed_at=now, status="open", reason=req.reason,
            due_date=now.date() + dt.timedelta(days=ANSWER_DAYS))).inserted_primary_key[0]
        audit.write(conn, [audit.entry(principal, "file_objection", 200, subject_key=subject.key,
                                       segment=subject.segment, purpose=req.purpose,
                                       detail=f"objection {oid} on record {req.record_id}")])
        row = conn.execute(select(objections).where(objections.c.objection_id == oid)).one()
    return _view(row, subject.display, now.date())


def listing(grader: Grader, principal: Principal, query: ObjectionFilter) -> list[Objection]:
    """Objections with their deadlines, oldest due first; a subject sees only its own."""
    check_role(principal, "list_objections")
    q = select(objections).order_by(objections.c.due_date, objections.c.objection_id).limit(query.limit)
    if principal.role == "subject":
        q = q.where(objections.c.subject_key == principal.subject_key)
    if query.status:
        q = q.where(objections.c.status == query.status)
    today = dt.date.today()
    if query.overdue_only:
        q = q.where(objections.c.status == "open", objections.c.due_date < today)
    with grader.store.engine.begin() as conn:
        rows = conn.execute(q).all()
        shown = grader.subjects(conn, sorted({r.subject_key for r in rows})) if rows else {}
        audit.write(conn, [audit.entry(principal, "list_objections", 200, detail=f"{len(rows)} objections")])
    return [_view(r, shown[r.subject_key].display if r.subject_key in shown else "", today) for r in rows]


def resolve(grader: Grader, principal: Principal, req: ResolveRequest) -> Resolved:
    """Answer an open objection; a correction changes the record, voiding marks it void, and either
    re-grades the subject."""
    check_role(principal, "resolve_objection")
    changes = req.correction.model_dump(exclude_none=True) if req.correction else {}
    if (req.status == "corrected") != bool(changes):
        raise bad_input("correction: required (with at least one field) exactly when status is 'corrected'",
                        "correction")
    voiding = req.status == "voided"
    now = dt.datetime.now(dt.timezone.utc)
    q = select(objections).where(objections.c.objection_id == req.objection_id)
    with grader.store.engine.begin() as conn:
        row = conn.execute(q).first()
        if row is None:
            raise ApiError(404, f"objection_id: no objection {req.objection_id}", "objection_id")
        subject = grader.subjects(conn, [row.subject_key])[row.subject_key]
        if changes:
            record = conn.execute(select(records).where(records.c.record_id == row.record_id)).one()
            check_correction(record, subject, changes)
            conn.execute(update(records).where(records.c.record_id == row.record_id).values(**changes))
        elif voiding:
            conn.execute(update(records).where(records.c.record_id == row.record_id).values(voided_at=now))
        answered = conn.execute(update(objections).where(objections.c.objection_id == req.objection_id,
                                                         objections.c.status == "open").values(
            status=req.status, resolution=req.resolution, resolved_at=now)).rowcount
        if not answered:  # answered before, or by a concurrent call
            raise ApiError(409, f"objection_id: objection {req.objection_id} is already {row.status}", "objection_id")
        entries = [audit.entry(principal, "resolve_objection", 200, subject_key=subject.key, segment=subject.segment,
                               purpose=req.purpose,
                               detail=f"objection {req.objection_id} {req.status}: "
                                      + (f"record {row.record_id} void" if voiding else f"{sorted(changes)}"))]
        regrade = None
        if changes or voiding:
            subject = grader.subjects(conn, [subject.key])[subject.key]  # its row as changed (a new cache stamp)
            g = grader.evaluate_one(conn, subject, *grader.dated(subject.segment, None, conn))
            regrade = grader.store_grade(conn, subject, g, "regrade")
            entries.append(audit.entry(principal, "regrade", 200, subject_key=subject.key, segment=subject.segment,
                                       detail=f"grade {g.grade} after {'voiding' if voiding else 'correction'}"))
        audit.write(conn, entries)
        row = conn.execute(q).one()
    return Resolved(objection=_view(row, subject.display, now.date()), regrade=regrade)


def check_correction(record, subject: Subject, changes: dict) -> None:
    """Refuse (422, naming ``correction.<field>`` and the rule) a correction that makes a record the ingest
    rules would quarantine: the stored record with the changes must be a valid :class:`RecordRow`."""
    row = {f: getattr(record, f) for f in RecordRow.model_fields if f in record._fields}
    try:
        RecordRow.model_validate({**row, "subject_id": subject.display, **changes})
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        loc, rule = ".".join(map(str, error["loc"])), error["msg"].removeprefix("Value error, ")
        field = loc if loc in changes else next((f for f in changes if f in rule), None)
        name = f"correction.{field}" if field else "correction"
        where = f"{loc}: " if loc and loc != field else ""
        raise bad_input(f"{name}: {where}{rule} (a rule of the records contract)", name) from None


def report(grader: Grader, principal: Principal, req: SubjectRequest) -> Report:
    """The subject's records, grades over time, open and past objections, and its current grade."""
    current, _ = grader.grade(principal, GradeRequest(**req.model_dump(exclude_none=True)), action="report")
    with grader.store.engine.connect() as conn:
        key = grader.subject(conn, req.segment, req.subject_id).key
        disputed = {r.record_id for r in conn.execute(select(objections.c.record_id).where(
            objections.c.subject_key == key, objections.c.status == "open"))}
        recs = conn.execute(select(records).where(records.c.subject_key == key).order_by(records.c.record_id)).all()
        history = conn.execute(select(grades).where(grades.c.subject_key == key)
                               .order_by(grades.c.graded_at, grades.c.grade_id)).all()
        objs = conn.execute(select(objections).where(objections.c.subject_key == key)
                            .order_by(objections.c.filed_at)).all()
    today = dt.date.today()
    return Report(
        current=current,
        records=[RecordView(**{f: getattr(r, f) for f in RecordView.model_fields if f != "disputed"},
                            disputed=r.record_id in disputed) for r in recs],
        history=[GradeHistory(grade_id=h.grade_id, as_of=h.as_of, graded_at=h.graded_at, grade=h.grade,
                              score=h.score, pd=h.pd, model={"name": h.model_name, "version": h.model_version},
                              disputed=h.disputed, origin=h.origin) for h in history],
        objections=[_view(o, current.subject, today) for o in objs])
