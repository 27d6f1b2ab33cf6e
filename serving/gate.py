"""The ASGI gate in front of the API: authenticates every API call (401), refuses roles without the
right (403), caps batch sizes (413), stamps batch items with the caller's key id, audits requests the
API never saw (e.g. rejected as malformed), and serves an OpenAPI document that lists these answers.
Probes, metrics and docs need no key."""
from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse

from features.store import Store
from serving import audit
from serving.auth import Keys, check_role, key_from_headers
from serving.errors import ApiError

ACTIONS = {"/grade": "grade", "/grade_batch": "grade_batch", "/explain": "explain", "/report": "report",
           "/file_objection": "file_objection", "/list_objections": "list_objections",
           "/resolve_objection": "resolve_objection", "/audit_log": "audit", "/warnings": "warnings",
           "/acknowledge_warning": "acknowledge_warning", "/villages": "villages",
           "/evaluation_sheet": "evaluation_sheet"}
ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string"}, "field": {"type": "string", "nullable": True}, "detail": {}}}
ERRORS = {400: "malformed request (JSON or schema)", 401: "missing, unknown or revoked API key",
          403: "the key's role or scope does not allow it",
          404: "unknown subject, household, record, objection or warning",
          409: "conflicts with the current state", 413: "batch larger than the configured maximum",
          415: "body not sent as application/json", 422: "a field breaks a rule (check digit, date range...)", 500: "internal error"}


class Gate:
    def __init__(self, app, max_batch: int, spec):
        self.app = app
        self.max_batch = max_batch
        self.spec = spec  # () -> the service's OpenAPI document as a dict
        self._keys: Keys | None = None

    @property
    def keys(self) -> Keys:
        if self._keys is None:
            self._keys = Keys(Store())
        return self._keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/docs.json":
            return await JSONResponse(documented(self.spec()))(scope, receive, send)
        action = ACTIONS.get(path)
        if action is None:
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        principal = None
        try:
            principal = self.keys.authenticate(key_from_headers(request.headers))
            check_role(principal, action)
            media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
            if media != "application/json":
                raise ApiError(415, f"Content-Type: send application/json, not {media[:50]!r}", "Content-Type")
            if action == "grade_batch":
                receive = await self._stamp(request, principal.key_id)
        except ApiError as exc:
            self._audit(principal, action, exc.status, exc.message)
            return await JSONResponse(exc.body(), status_code=exc.status)(scope, receive, send)
        state = scope.setdefault("state", {})
        state["principal"] = principal
        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if not state.get("handled"):
            self._audit(principal, action, status.get("code", 500), "refused before handling (malformed request)")

    async def _stamp(self, request: Request, key_id: int):
        """Read the batch body, check its size and set every item's key id; a receive that replays it."""
        body = await request.body()
        try:
            items = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, f"body: malformed JSON ({exc})", "body") from None
        if not isinstance(items, list):
            raise ApiError(400, "body: a JSON array of grade requests", "body")
        if len(items) > self.max_batch:
            raise ApiError(413, f"body: at most {self.max_batch} items per batch call, got {len(items)}", "body")
        for item in items:
            if isinstance(item, dict):
                item["key_id"] = key_id
        body = json.dumps(items).encode()
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-length"]
        request.scope["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
        return replay

    def _audit(self, principal, action: str, status: int, detail: str) -> None:
        with self.keys.store.engine.begin() as conn:
            audit.write(conn, [audit.entry(principal, action, status, detail=detail)])


def documented(spec: dict) -> dict:
    """The service's OpenAPI document with the gate's answers and the API-key scheme added."""
    spec = json.loads(json.dumps(spec))
    spec.setdefault("components", {}).setdefault("securitySchemes", {})["apiKey"] = {
        "type": "apiKey", "in": "header", "name": "X-API-Key"}
    spec["components"].setdefault("schemas", {})["ApiError"] = ERROR_SCHEMA
    for path, item in spec.get("paths", {}).items():
        if path not in ACTIONS:
            continue
        for op in item.values():
            op["security"] = [{"apiKey": []}]
            responses = op.setdefault("responses", {})
            for code, text in ERRORS.items():
                responses[str(code)] = {"description": text, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}
                responses.pop(code, None)
    return spec
