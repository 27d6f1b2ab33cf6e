"""Landing page, sign-in and sign-out, the language switch and the offline API documentation."""
from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from creditgrade.serving import audit
from creditgrade.serving.console.config import CONFIG, LANGS
from creditgrade.serving.console.sessions import same_token
from creditgrade.serving.console.web import HOME, Ctx, lang_of, local_path, page, render, service, sessions
from creditgrade.serving.errors import ApiError

SESSION = CONFIG["session"]


def _cookie(response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def _signin_form(ctx: Ctx, status: int = 200, message: str | None = None):
    token = secrets.token_urlsafe(32)
    response = render(ctx, "signin.html", status=status, signin_csrf=token, message=message)
    _cookie(response, ctx.request, SESSION["signin_cookie"], token, 900)
    return response


async def landing(request: Request):
    ctx = Ctx(request, lang_of(request))
    found = await run_in_threadpool(sessions().find, request.cookies.get(SESSION["cookie"]))
    principal = found and service().keys.by_id(found.key_id)
    if principal is not None:
        return RedirectResponse(HOME[principal.role], status_code=303)
    message = "session_ended" if "ended" in request.query_params else "signed_out" if "out" in request.query_params \
        else None
    return _signin_form(ctx, message=message and ctx.t(message))


async def sign_in(request: Request):
    ctx = Ctx(request, lang_of(request))
    form = await request.form()
    if not same_token(request.cookies.get(SESSION["signin_cookie"]), form.get("csrf")):
        return _signin_form(ctx, 403, ctx.t("bad_form"))
    key = str(form.get("key") or "").strip()
    if not key:
        return _signin_form(ctx, 401, ctx.t("no_key"))
    try:
        principal = await run_in_threadpool(service().keys.authenticate, key)
    except ApiError as exc:
        await run_in_threadpool(_audit, None, exc.status, "console sign-in refused: " + exc.message)
        return _signin_form(ctx, 401, ctx.t("wrong_key"))
    token, _ = await run_in_threadpool(sessions().open, principal.key_id)
    await run_in_threadpool(_audit, principal, 200, "console sign-in")
    response = RedirectResponse(HOME[principal.role], status_code=303)
    _cookie(response, request, SESSION["cookie"], token, SESSION["max_hours"] * 3600)
    response.delete_cookie(SESSION["signin_cookie"], path="/")
    return response


def _audit(principal, outcome: int, detail: str) -> None:
    with service().store.engine.begin() as conn:
        audit.write(conn, [audit.entry(principal, "console_sign_in", outcome, detail=detail)])


@page()
def sign_out(ctx: Ctx):
    sessions().close(ctx.request.cookies.get(SESSION["cookie"]))
    response = RedirectResponse("/?out=1", status_code=303)
    response.delete_cookie(SESSION["cookie"], path="/")
    return response


async def language(request: Request):
    to = request.query_params.get("to")
    response = RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
    if to in LANGS:
        response.set_cookie("lang", to, max_age=365 * 86400, path="/", samesite="strict")
    return response


async def docs(request: Request):
    return render(Ctx(request, lang_of(request)), "docs.html")


def routes() -> list[Route]:
    return [Route("/", landing), Route("/docs", docs), Route("/console/sign-in", sign_in, methods=["POST"]),
            Route("/console/sign-out", sign_out, methods=["POST"]), Route("/console/lang", language)]
