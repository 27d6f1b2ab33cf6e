"""The audit log: every query and change, and every refusal, with who, when, subject, purpose, consent
and outcome. Entries carry subject keys as stored (hashes for persons) and redacted details only."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from creditgrade.features import ids
from creditgrade.features.store import Prepared, Store
from creditgrade.serving.auth import Principal
from creditgrade.serving.errors import ApiError, bad_input
from creditgrade.serving.schemas import AuditEntry, AuditFilter
from creditgrade.serving.tables import api_keys, audit_log


PURPOSES = {"file_objection": "异议申请 a subject's objection to a record",
            "resolve_objection": "异议处理 answering an objection", "regrade": "更正后重评 re-grade after a correction",
            "acknowledge_warning": "预警处置 working an early warning", "work_warning": "预警处置 working an early warning",
            "audit": "监管审查 regulatory review"}
"""The purpose recorded for an action that has one by its nature, when the caller names none."""
INSERT = Prepared(insert(audit_log), keys=[c.name for c in audit_log.c if c.name != "audit_id"])
"""Compiled once: every request appends an :func:`entry` (every column but the id) through it."""


def entry(principal: Principal | None, action: str, outcome: int | str, *, subject_key: str | None = None,
          segment: str | None = None, purpose: str | None = None, consent_ref: str | None = None,
          detail: str | None = None) -> dict:
    """One audit row (not yet written)."""
    purpose = purpose or PURPOSES.get(action)
    return dict(at=dt.datetime.now(dt.timezone.utc), key_id=principal and principal.key_id,
                role=principal and principal.role, action=action, subject_key=subject_key, segment=segment,
                purpose=purpose and ids.redact(purpose)[:200],
                consent_ref=consent_ref and ids.redact(consent_ref)[:100],
                outcome=str(outcome), detail=detail and ids.redact(detail)[:2000])


def write(conn, rows: list[dict]) -> None:
    """Append rows (as :func:`entry` makes them) within the caller's transaction."""
    if rows:
        INSERT.run_many(conn, rows)


def refusal(principal: Principal | None, action: str, error: ApiError, **where) -> dict:
    return entry(principal, action, error.status, detail=error.message, **where)


def read(store: Store, principal: Principal, query: AuditFilter) -> list[AuditEntry]:
    """Newest entries first, each with its key's name, optionally for one subject (by its id) and since a
    time; the reading is itself logged."""
    a = audit_log.c
    q = (select(audit_log, api_keys.c.name.label("key_name"))
         .select_from(audit_log.outerjoin(api_keys, api_keys.c.key_id == a.key_id))
         .order_by(a.audit_id.desc()).limit(query.limit))
    subject_key = None
    if query.subject_id is not None:
        if query.segment is None:
            raise bad_input("segment is required with subject_id (the id is read by its segment's rule)",
                            "segment")
        try:
            sid = ids.validate_subject_id(query.segment, query.subject_id)
        except ValueError as exc:
            raise bad_input(str(exc), "subject_id") from None
        subject_key = ids.subject_key(query.segment, sid)
        q = q.where(a.subject_key == subject_key)
    if query.segment is not None:
        q = q.where(a.segment == query.segment)
    if query.since is not None:
        q = q.where(a.at >= query.since)
    with store.engine.begin() as conn:
        found = [AuditEntry(**row._mapping) for row in conn.execute(q)]
        write(conn, [entry(principal, "audit", 200, subject_key=subject_key, segment=query.segment,
                           purpose=query.purpose, detail=f"{len(found)} entries read")])
    return found
