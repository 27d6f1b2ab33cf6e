"""Regulator pages: the audit log (filtered by institution or key name, role, action, subject, dates and
outcome; exported as CSV), the models per segment with their review material, the objections register
(overdue first) and any subject's explanation. The audit log and the models are for regulators only (the
right to read the audit log); objections and explanations follow their API rights."""
from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from creditgrade.features import ids
from creditgrade.serving import audit, objections
from creditgrade.serving.auth import RIGHTS, check_role
from creditgrade.serving.console import models_page
from creditgrade.serving.console.bank import explanation
from creditgrade.serving.console.config import CONFIG
from creditgrade.serving.console.web import SECURITY_HEADERS, Ctx, download, page, render, request_model, service
from creditgrade.serving.errors import ApiError, bad_input
from creditgrade.serving.schemas import GradeRequest, ObjectionFilter
from creditgrade.serving.tables import api_keys, audit_log

FILTERS = ("name", "role", "action", "segment", "subject_id", "since", "until", "outcome")
ACTIONS = sorted({*RIGHTS, "console_sign_in", "regrade"})
COLUMNS = ["audit_id", "at", "key_id", "name", "role", "action", "subject_key", "segment", "purpose", "consent_ref",
           "outcome", "detail"]


def _day(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise bad_input(f"{name}: a date as YYYY-MM-DD", name) from None


def audit_query(given: dict, limit: int):
    """The audit entries matching the filters (each with its key's name), newest first, and the subject
    key asked about."""
    a, k = audit_log.c, api_keys.c
    q = select(audit_log, k.name).outerjoin(api_keys, k.key_id == a.key_id).order_by(a.audit_id.desc()).limit(limit)
    subject_key = None
    if given.get("subject_id"):
        if not given.get("segment"):
            raise bad_input("segment is required with subject_id (the id is read by its segment's rule)", "segment")
        try:
            subject_key = ids.subject_key(given["segment"], ids.validate_subject_id(given["segment"], given["subject_id"]))
        except ValueError as exc:
            raise bad_input(str(exc), "subject_id") from None
        q = q.where(a.subject_key == subject_key)
    if given.get("name"):
        q = q.where(k.name.contains(given["name"], autoescape=True))
    for column in ("role", "action", "segment", "outcome"):
        if given.get(column):
            q = q.where(a[column] == given[column])
    if given.get("since"):
        q = q.where(a.at >= dt.datetime.combine(_day(given["since"], "since"), dt.time(), dt.timezone.utc))
    if given.get("until"):
        q = q.where(a.at < dt.datetime.combine(_day(given["until"], "until") + dt.timedelta(days=1), dt.time(),
                                               dt.timezone.utc))
    return q, subject_key


def routes(api) -> list[Route]:
    @page("audit")
    def audit_page(ctx: Ctx):
        check_role(ctx.principal, "audit")
        given = {f: str(ctx.form.get(f, "")).strip() for f in FILTERS}
        export = ctx.form.get("export") == "csv"
        q, subject_key = audit_query(given, CONFIG["pages"]["audit_export_rows" if export else "audit_rows"])
        ctx.where = {"subject_key": subject_key, "segment": given["segment"] or None}
        asked = ", ".join(f"{f}={v}" for f, v in given.items() if v and f != "subject_id") or "no filter"
        with service().store.engine.begin() as conn:
            rows = conn.execute(q).all()
            audit.write(conn, [audit.entry(ctx.principal, "audit", 200, subject_key=subject_key,
                                           segment=given["segment"] or None,
                                           detail=f"{len(rows)} entries read in the console ({asked})"
                                                  + (", exported as CSV" if export else ""))])
        if export:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            writer.writerows([getattr(r, c) for c in COLUMNS] for r in rows)
            return download(out.getvalue(), "audit_log.csv")
        return render(ctx, "audit.html", rows=rows, given=given, actions=ACTIONS, roles=sorted(
            {r for rs in RIGHTS.values() for r in rs} | {"admin"}))

    @page()
    def models(ctx: Ctx):
        check_role(ctx.principal, "audit")
        return render(ctx, "models.html", segments=models_page.segments(service().store))

    @page()
    def artifact(ctx: Ctx):
        check_role(ctx.principal, "audit")
        run_id, path = ctx.request.path_params["run_id"], ctx.request.path_params["path"]
        if not run_id.isalnum():
            raise bad_input("run_id: letters and digits", "run_id")
        body = models_page.artifact(run_id, path)
        if body is None:
            raise ApiError(404, f"no file {path!r} logged for run {run_id}", "path")
        media = {".html": "text/html; charset=utf-8", ".csv": "text/csv; charset=utf-8", ".png": "image/png",
                 ".json": "application/json", ".md": "text/plain; charset=utf-8"}[path[path.rfind("."):]]
        return Response(body, media_type=media, headers=SECURITY_HEADERS)

    @page("list_objections")
    def register(ctx: Ctx):
        found = objections.listing(service().grader, ctx.principal,
                                   ObjectionFilter(limit=CONFIG["pages"]["objections"]))
        found.sort(key=lambda o: (not o.overdue, o.status != "open", o.due_date))
        return render(ctx, "objections.html", objections=found)

    @page("explain")
    def explain(ctx: Ctx):
        shown = {}
        if ctx.request.method == "POST":
            req = request_model(GradeRequest, subject_id=str(ctx.form.get("subject_id", "")).strip(),
                                segment=ctx.form.get("segment"), purpose=ctx.form.get("purpose"),
                                consent_ref=ctx.form.get("consent_ref"))
            shown = explanation(ctx, req)
        return render(ctx, "explain.html", form=ctx.form, **shown)

    return [Route("/console/audit", audit_page, methods=["GET", "POST"]), Route("/console/models", models),
            Route("/console/artifacts/{run_id}/{path:path}", artifact),
            Route("/console/objections", register), Route("/console/explain", explain, methods=["GET", "POST"])]
