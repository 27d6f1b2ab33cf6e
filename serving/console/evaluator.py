"""Evaluator pages: my townships (named, rated as credit townships) → a township's villages against the
credit-village thresholds → a village's households → one household: its grade with a consent reference,
its reasons, its printable evaluation sheet and its warnings to acknowledge."""
from __future__ import annotations

from sqlalchemy import select
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

from creditgrade.features import ids
from creditgrade.features.store import subjects
from creditgrade.models.credit_villages import config as village_config
from creditgrade.serving import audit
from creditgrade.serving.auth import check_reach, township_scope
from creditgrade.serving.console.places import names, village_households
from creditgrade.serving.console.web import Ctx, local_path, page, render, request_model, service
from creditgrade.serving.errors import ApiError, bad_input
from creditgrade.serving.schemas import AcknowledgeRequest, GradeRequest, SheetRequest, VillagesRequest, WarningFilter


def _thresholds() -> dict:
    conf = village_config()
    return dict(rated=conf["village"]["rated_share_min"], clean=conf["village"]["clean_share_min"],
                share=conf["township"]["credit_village_share_min"])


def routes(api) -> list[Route]:
    @page("villages")
    def townships(ctx: Ctx):
        rated = api.villages(service().grader, ctx.principal, VillagesRequest())
        town_names, _ = names(service().store, {t.township_code for t in rated.townships})
        return render(ctx, "townships.html", rated=rated, town_names=town_names, limits=_thresholds())

    @page("villages")
    def township(ctx: Ctx):
        code = ctx.request.path_params["code"]
        rated = api.villages(service().grader, ctx.principal, request_model(VillagesRequest, townships=[code]))
        town_names, village_names = names(service().store, {code})
        return render(ctx, "township.html", code=code, rated=rated, town_names=town_names,
                      village_names=village_names, limits=_thresholds())

    @page("villages")
    def village(ctx: Ctx):
        code = ctx.request.path_params["code"]
        if not code.isdigit() or len(code) != 12:
            raise bad_input("village_code: a 12-digit village code", "village_code")
        township_scope(ctx.principal, "villages", [code[:9]])
        grader = service().grader
        day = grader.as_of("household", None)
        frame = village_households(grader, code, day)
        if frame.empty:
            raise ApiError(404, f"village_code: no households in village {code}", "village_code")
        with grader.store.engine.begin() as conn:
            audit.write(conn, [audit.entry(ctx.principal, "villages", 200, segment="household",
                                           detail=f"{len(frame)} households of village {code} as of {day.date()}")])
        town_names, village_names = names(grader.store, {code[:9]})
        return render(ctx, "village.html", code=code, frame=frame, day=day.date(), town_names=town_names,
                      village_names=village_names)

    def _household(ctx: Ctx):
        """The stored household of the path's id, within the evaluator's reach (as grading it would be)."""
        hid = ctx.request.path_params["household_id"]
        try:
            key = ids.subject_key("household", ids.validate_subject_id("household", hid))
        except ValueError as exc:
            raise bad_input(str(exc).replace("subject_id", "household_id"), "household_id") from None
        ctx.where = {"segment": "household", "subject_key": key}
        with service().store.engine.connect() as conn:
            row = conn.execute(select(subjects).where(subjects.c.subject_key == key,
                                                      subjects.c.segment == "household")).first()
        if row is None:
            raise ApiError(404, "household_id: no household with that id", "household_id")
        check_reach(ctx.principal, "grade", "household", row.township_code, id_field="household_id")
        return hid, row

    def _warnings(ctx: Ctx, hid: str):
        found = api.warnings(service().store, ctx.principal, WarningFilter(segment="household", limit=1000)) \
            if ctx.may("warnings") else []
        return [w for w in found if w.subject == hid]

    @page("grade")
    def household(ctx: Ctx):
        hid, row = _household(ctx)
        graded = None
        if ctx.request.method == "POST":
            req = request_model(GradeRequest, subject_id=hid, segment="household", purpose=ctx.form.get("purpose"),
                                consent_ref=ctx.form.get("consent_ref"))
            ctx.where.update(purpose=req.purpose, consent_ref=req.consent_ref)
            graded, _ = service().grader.grade(ctx.principal, req)
        scale = service().grader.champions["household"].model.scale
        return render(ctx, "household.html", hid=hid, row=row, graded=graded, scale=scale,
                      warnings=_warnings(ctx, hid), form=ctx.form)

    @page("evaluation_sheet")
    def sheet(ctx: Ctx):
        hid, _ = _household(ctx)
        req = request_model(SheetRequest, household_id=hid, consent_ref=ctx.form.get("consent_ref"),
                            purpose=ctx.form.get("purpose"))
        ctx.where.update(purpose=req.purpose, consent_ref=req.consent_ref)
        return HTMLResponse(api.sheet(service().grader, ctx.principal, req).html)

    @page("acknowledge_warning")
    def acknowledge(ctx: Ctx):
        req = request_model(AcknowledgeRequest, warning_id=int(ctx.request.path_params["warning_id"]))
        api.acknowledge(service().store, ctx.principal, req)
        return RedirectResponse(local_path(ctx.form.get("next"), "/console/townships"), status_code=303)

    return [Route("/console/townships", townships), Route("/console/townships/{code}", township),
            Route("/console/villages/{code}", village),
            Route("/console/households/{household_id}", household, methods=["GET", "POST"]),
            Route("/console/households/{household_id}/sheet", sheet, methods=["POST"]),
            Route("/console/warnings/{warning_id:int}/acknowledge", acknowledge, methods=["POST"])]
