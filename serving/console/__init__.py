"""The web console: evaluators, banks, regulators and subjects sign in with their API key and work through
pages that call the same functions as the API — the same role checks (``serving.auth``) and the same
audit entries (``serving.audit``). Server-rendered (Jinja2), Chinese first with an English switch, print
CSS, charts as inline SVG, and nothing loaded from any other host: ``/`` is its landing page and ``/docs``
an offline Swagger UI (the ``swagger-ui-bundle`` package's files) over ``/docs.json``.

``build(api)`` makes the Starlette app the service mounts at ``/``; ``api`` carries the service's own
functions the pages call (villages, evaluation sheets, warnings).
"""
from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from creditgrade.serving.console import account, bank, evaluator, regulator, subject, warnings_page
from creditgrade.serving.console.web import SECURITY_HEADERS

STATIC = Path(__file__).with_name("static")


class Headers:
    """Adds the console's security headers (CSP: this host only) to every answer, static files included."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                         if k.encode() not in have and k != "cache-control"]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)
        await self.app(scope, receive, send_with_headers)


def build(api) -> Starlette:
    """The console app; ``api`` has ``villages``, ``sheet``, ``warnings``, ``acknowledge``, ``work`` and
    ``max_batch``."""
    routes = [*account.routes(), *evaluator.routes(api), *bank.routes(api), *regulator.routes(api),
              *subject.routes(), *warnings_page.routes(api),
              Mount("/console/static", StaticFiles(directory=STATIC), name="static"),
              Mount("/console/swagger-ui", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")]
    app = Starlette(routes=routes)
    app.add_middleware(Headers)
    return app
