"""Subject pages: my report (current grade with reasons, grades over time, records, objections) and an
objection against one of my records. A practitioner's identity number is asked for each time (only its
keyed hash and masked form are stored, so the console cannot fill it in); other subjects' ids are their
display ids."""
from __future__ import annotations

from sqlalchemy import select
from starlette.routing import Route

from creditgrade.features.store import subjects
from creditgrade.serving import objections
from creditgrade.serving.console import charts
from creditgrade.serving.console.bank import feature_label
from creditgrade.serving.console.web import Ctx, page, render, request_model, service
from creditgrade.serving.errors import ApiError
from creditgrade.serving.grading import where_of
from creditgrade.serving.schemas import ObjectionRequest, SubjectRequest


def _own(ctx: Ctx):
    """The caller's own subject row (403 for a key that is not a subject's)."""
    if ctx.principal.subject_key is None:
        raise ApiError(403, f"role {ctx.principal.role!r} has no report of its own")
    with service().store.engine.connect() as conn:
        return conn.execute(select(subjects.c.segment, subjects.c.display_id).where(
            subjects.c.subject_key == ctx.principal.subject_key)).one()


def _report(ctx: Ctx, segment: str, subject_id: str, message: str | None = None):
    req = request_model(SubjectRequest, subject_id=subject_id, segment=segment, purpose=ctx.t("nav_me"))
    ctx.where = where_of(req)
    found = objections.report(service().grader, ctx.principal, req)
    line = charts.scores([(str(h.as_of), h.score, h.grade) for h in found.history], ctx.t("grades_over_time"))
    return render(ctx, "me.html", report=found, line=line, segment=segment, message=message,
                  asks_id=segment == "practitioner", subject_id=subject_id if segment != "practitioner" else "",
                  scale=service().grader.champions[segment].model.scale, label=lambda f: feature_label(f, ctx.lang))


def routes() -> list[Route]:
    @page("report")
    def me(ctx: Ctx):
        own = _own(ctx)
        given = str(ctx.form.get("subject_id", "")).strip()
        if own.segment == "practitioner" and not given:
            return render(ctx, "me.html", report=None, asks_id=True, segment=own.segment)
        return _report(ctx, own.segment, given or own.display_id)

    @page("file_objection")
    def file_objection(ctx: Ctx):
        own = _own(ctx)
        subject_id = str(ctx.form.get("subject_id", "")).strip() or own.display_id
        req = request_model(ObjectionRequest, subject_id=subject_id, segment=own.segment,
                            record_id=int(ctx.form["record_id"]) if str(ctx.form.get("record_id", "")).isdigit()
                            else ctx.form.get("record_id"), reason=ctx.form.get("reason"))
        ctx.where = where_of(req)
        filed = objections.file(service().grader, ctx.principal, req)
        return _report(ctx, own.segment, subject_id, f"{ctx.t('objection_filed')} {filed.due_date}")

    return [Route("/console/me", me, methods=["GET", "POST"]),
            Route("/console/me/objections", file_objection, methods=["POST"])]
