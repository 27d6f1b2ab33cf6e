"""The early-warnings register page: the warnings a key may see (a bank its borrowers', a regulator all),
filtered by state and level, each with why it was raised, and, for the roles that work warnings, a form to
assign an owner, move its state, close it with an outcome and add a note, through the same function as
``POST /work_warning`` (same checks, same audit)."""
from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Route

from creditgrade.models.warnings import LEVELS, register_config
from creditgrade.serving.console.web import Ctx, local_path, page, render, request_model, service
from creditgrade.serving.schemas import WarningFilter, WorkRequest


def routes(api) -> list[Route]:
    """``api`` has ``warnings`` and ``work`` (the service's functions)."""

    @page("warnings")
    def register(ctx: Ctx):
        asked = {k: ctx.request.query_params.get(k) or None for k in ("state", "level")}
        segment = "household" if ctx.principal.role == "evaluator" else None
        found = api.warnings(service().store, ctx.principal, request_model(WarningFilter, segment=segment, limit=500,
                                                                             **asked))
        conf = register_config()
        return render(ctx, "warnings.html", warnings=found, asked=asked, states=conf["states"], levels=LEVELS,
                      outcomes=conf["outcomes"], moves=conf["moves"], names=conf["texts"])

    @page("work_warning")
    def work(ctx: Ctx):
        req = request_model(WorkRequest, warning_id=int(ctx.request.path_params["warning_id"]),
                            **{k: ctx.form.get(k) for k in ("state", "outcome", "owner", "note")})
        api.work(service().store, ctx.principal, req)
        return RedirectResponse(local_path(ctx.form.get("next"), "/console/warnings"), status_code=303)

    return [Route("/console/warnings", register),
            Route("/console/warnings/{warning_id:int}/work", work, methods=["POST"])]
