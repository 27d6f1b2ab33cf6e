"""The console's request plumbing: the signed-in caller of a request, CSRF-checked forms, pages rendered
from Jinja2 templates in the caller's language, and failures answered as pages and audited as the API
audits them (``serving.audit.refusal``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from urllib.parse import quote

import bentoml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from creditgrade.features.errors import CreditgradeError
from creditgrade.serving import audit
from creditgrade.serving.auth import RIGHTS, Principal
from creditgrade.serving.console.config import CONFIG, LANGS, text
from creditgrade.serving.console.sessions import Session, Sessions, same_token
from creditgrade.serving.errors import ApiError, bad_input, internal

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                        autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def _num(value) -> str:
    """A number for a table: integers as they are, other floats to three significant decimals."""
    if value is None or value != value:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


TEMPLATES.filters["num"] = _num
NAV = {  # the pages each role finds in the menu (the pages check rights themselves)
    "evaluator": ("townships", "warnings"), "bank": ("sme", "batch", "warnings"),
    "analyst": ("sme", "batch", "warnings"), "regulator": ("audit", "models", "objections", "explain", "warnings"),
    "admin": ("objections", "warnings"), "subject": ("me",)}
HOME = {"evaluator": "/console/townships", "bank": "/console/sme", "analyst": "/console/sme",
        "regulator": "/console/audit", "admin": "/console/objections", "subject": "/console/me"}
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY",
    "cache-control": "no-store"}
_sessions: Sessions | None = None


def service():
    """The running CreditGrade instance (its store, keys and grader)."""
    return bentoml.get_current_service()


def sessions() -> Sessions:
    global _sessions
    if _sessions is None or _sessions.store is not service().store:
        _sessions = Sessions(service().store)
    return _sessions


def lang_of(request: Request) -> str:
    lang = request.cookies.get("lang", "zh")
    return lang if lang in LANGS else "zh"


@dataclass
class Ctx:
    """One console request: who asks, in which language, its form, and the audit fields of its subject."""

    request: Request
    lang: str
    principal: Principal | None = None
    session: Session | None = None
    form: dict = field(default_factory=dict)
    where: dict = field(default_factory=dict)

    def t(self, key: str, **values) -> str:
        s = text(key, self.lang)
        return s.format(**values) if values else s

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""

    def may(self, action: str) -> bool:
        return self.principal is not None and self.principal.role in RIGHTS[action]


def render(ctx: Ctx, template: str, status: int = 200, **values) -> HTMLResponse:
    page = TEMPLATES.get_template(template).render(
        t=ctx.t, lang=ctx.lang, csrf=ctx.csrf, principal=ctx.principal, may=ctx.may, path=ctx.request.url.path,
        nav=NAV.get(ctx.principal.role, ()) if ctx.principal else (), **values)
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def download(body: str, filename: str, media: str = "text/csv; charset=utf-8") -> Response:
    """A file to save (UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese)."""
    return Response("\ufeff" + body, media_type=media, headers={
        **SECURITY_HEADERS, "content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


def error_page(ctx: Ctx, error: ApiError) -> HTMLResponse:
    return render(ctx, "error.html", status=error.status, error=error)


def request_model(model: type[BaseModel], **values) -> BaseModel:
    """An API request model from form values (blank ones omitted); a value breaking a rule is a 422
    naming the field, as the API answers it."""
    try:
        return model(**{k: v for k, v in values.items() if v not in (None, "")})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        name = ".".join(str(p) for p in first["loc"]) or "form"
        raise bad_input(f"{name}: {first['msg']}", name) from None


def page(action: str | None = None):
    """A console page for a signed-in caller: POSTs need the session's CSRF token; the handler runs in a
    worker thread; an error it raises becomes an error page and, for an ``action``, an audited refusal."""
    def wrap(handler):
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            ctx = Ctx(request, lang_of(request))
            found = await run_in_threadpool(sessions().find, request.cookies.get(CONFIG["session"]["cookie"]))
            principal = found and service().keys.by_id(found.key_id)
            if principal is None:
                return RedirectResponse("/?ended=1", status_code=303)
            ctx.session, ctx.principal = found, principal
            if request.method == "POST":
                form = await request.form(max_part_size=CONFIG["pages"]["upload_bytes"])
                if not same_token(found.csrf, form.get("csrf")):
                    return error_page(ctx, ApiError(403, ctx.t("bad_form"), "csrf"))
                ctx.form = form
            return await run_in_threadpool(_run, handler, ctx, action)
        return endpoint
    return wrap


def _run(handler, ctx: Ctx, action: str | None) -> Response:
    try:
        return handler(ctx)
    except Exception as exc:  # noqa: BLE001 - every failure is a page (and audited as the API audits it)
        if isinstance(exc, ApiError):
            error = exc
        elif isinstance(exc, CreditgradeError):
            error = ApiError(422, str(exc))
        else:
            error = internal(f"console {ctx.request.url.path}")
        if action:
            with service().store.engine.begin() as conn:
                audit.write(conn, [audit.refusal(ctx.principal, action, error, **ctx.where)])
        return error_page(ctx, error)


def local_path(value: str | None, default: str = "/") -> str:
    """A redirect target inside this site only."""
    return value if value and value.startswith("/") and not value.startswith("//") and "\\" not in value else default
