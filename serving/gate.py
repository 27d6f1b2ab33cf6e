"""The ASGI gate in front of the API: authenticates every API call (401), refuses roles without the
right (403), caps batch sizes (413), stamps batch items with the caller's key id, audits every request the
API did not (refused here or as malformed, or failed), gives every error answer the API's shape
``{"error", "field"}`` and serves an OpenAPI document that lists these answers. No exception leaves it:
an unexpected one is logged (identity numbers masked) and answered 500. Probes, metrics and docs need no key."""
from __future__ import annotations

import json
from importlib.metadata import version
from types import SimpleNamespace

from pydantic_core import from_json
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from creditgrade.features.ids import redact
from creditgrade.features.schemas import SEGMENTS
from creditgrade.serving import audit
from creditgrade.serving.auth import Keys, check_role, key_from_headers
from creditgrade.serving.errors import RULES, ApiError, internal
from creditgrade.serving.grading import where_of
from creditgrade.serving.tables import open_store

ACTIONS = {"/grade": "grade", "/grade_batch": "grade_batch", "/explain": "explain", "/report": "report",
           "/file_objection": "file_objection", "/list_objections": "list_objections",
           "/resolve_objection": "resolve_objection", "/audit_log": "audit", "/warnings": "warnings",
           "/acknowledge_warning": "acknowledge_warning", "/work_warning": "work_warning", "/villages": "villages",
           "/evaluation_sheet": "evaluation_sheet"}
ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string"}, "field": {"type": "string", "nullable": True},
    "rule": {"type": "string", "nullable": True}, "detail": {}}}
ERRORS = {400: "malformed request (JSON or schema)", 401: "missing, unknown or revoked API key",
          403: "the key's role or scope does not allow it",
          404: "unknown subject, household, record, objection or warning",
          409: "conflicts with the current state", 413: "batch larger than the configured maximum",
          415: "body not sent as application/json", 422: "a field breaks a rule (check digit, date range...)", 500: "internal error"}
INFO = {"title": "creditgrade", "version": version("creditgrade"), "description": (
    "信用评级服务接口：评级、批量评级、解释、报告、异议、预警、信用村与查询日志；以 API 密钥调用。"
    "\n\nCredit grading API: grades, batches, explanations, reports, objections, early warnings, credit "
    "villages and the audit log; called with an API key (X-API-Key or Authorization: Bearer).")}
PEEK_BYTES = 1 << 20  # a refused request's body is read for its subject only up to this size


class Gate:
    def __init__(self, app, max_batch: int, spec):
        self.app = app
        self.max_batch = max_batch
        self.spec = spec  # () -> the service's OpenAPI document as a dict
        self._keys: Keys | None = None

    @property
    def keys(self) -> Keys:
        if self._keys is None:
            self._keys = Keys(open_store())
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
        request, answer, principal, admitted = Request(scope, receive), Answer(send), None, False
        try:
            principal = self.keys.authenticate(key_from_headers(request.headers))
            check_role(principal, action)
            media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
            if media != "application/json":
                raise ApiError(415, f"Content-Type: send application/json, not {media[:50]!r}", "Content-Type")
            if action == "grade_batch":
                receive = await self._stamp(request, principal.key_id)
            state = scope.setdefault("state", {})
            state["principal"], admitted = principal, True
            await self.app(scope, receive, answer)
            # the API audits what it handles; a batch answered 200 was audited item by item
            if not (state.get("handled") or (action == "grade_batch" and answer.status == 200)):
                status = answer.status or 500
                self._audit(principal, action, status, "failed (internal error)" if status >= 500
                            else "refused before handling (malformed request)")
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer and an audit row
            error = exc if isinstance(exc, ApiError) else internal(f"the gate of {path}")
            where = {} if admitted else asked_about(await _peek(request), path)
            try:
                self._audit(principal, action, error.status, error.message, **where)
            except Exception:  # noqa: BLE001 - the caller is still answered
                internal(f"the audit of {path}")
            if not answer.started:
                await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)

    async def _stamp(self, request: Request, key_id: int):
        """Read the batch body, check its size and set every item's key id; a receive that replays it."""
        body = await request.body()
        try:
            items = from_json(body, allow_inf_nan=False)
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

    def _audit(self, principal, action: str, status: int, detail: str, **where) -> None:
        with self.keys.store.engine.begin() as conn:
            audit.write(conn, [audit.entry(principal, action, status, detail=detail, **where)])


class Answer:
    """The ASGI ``send`` of the app's answer: notes its status and gives an error answer the API's shape
    ``{"error", "field"}`` (BentoML's own 400s and 500s carry no field)."""

    def __init__(self, send):
        self.send, self.status, self.started = send, None, False
        self._start, self._chunks = None, []

    async def __call__(self, message):
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.status < 400:
                self.started = True
                return await self.send(message)
            self._start = message
            return None
        if message["type"] != "http.response.body" or self._start is None:
            return await self.send(message)
        self._chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return None
        body = json.dumps(error_body(b"".join(self._chunks), self.status), ensure_ascii=False).encode()
        headers = [(k, v) for k, v in self._start["headers"] if k.lower() not in (b"content-length", b"content-type")]
        self.started = True
        await self.send({**self._start, "headers": [*headers, (b"content-type", b"application/json"),
                                                    (b"content-length", str(len(body)).encode())]})
        await self.send({"type": "http.response.body", "body": body})


def error_body(raw: bytes, status: int | None = None) -> dict:
    """An error answer as ``{"error", "field", "rule"[, "detail"]}``: a schema error names its first field
    (``body`` for JSON that does not parse) and the rule it breaks (pydantic's error type); ``detail`` lists
    every such error as ``{"field", "rule", "error"}`` — never the input sent, nor links to pydantic's site."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = {"error": raw.decode("utf-8", "replace")[:500]}
    if isinstance(data, list) and len(data) == 1:  # BentoML answers some errors as a one-item list
        data = data[0]
    if not isinstance(data, dict):
        data = {"error": str(data)[:500]}
    errors = data.get("detail")
    if "field" not in data and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        plain = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "root") or "body",
                  "rule": str(e.get("type", "invalid")), "error": redact(str(e.get("msg", "invalid")))}
                 for e in errors if isinstance(e, dict)]
        more = f" (and {len(plain) - 1} more)" if len(plain) > 1 else ""
        data = {"error": f"{plain[0]['field']}: {plain[0]['error']}{more}", "field": plain[0]["field"],
                "rule": plain[0]["rule"], "detail": plain}
    data["error"] = redact(str(data.get("error") or "error"))
    data.setdefault("field", None)
    data.setdefault("rule", RULES.get(status))
    return data


async def _peek(request: Request):
    """The JSON body of a request refused before the API read it (None if absent, too large or not JSON)."""
    try:
        if int(request.headers.get("content-length") or PEEK_BYTES + 1) > PEEK_BYTES:
            return None
        return from_json(await request.body())
    except (ValueError, ClientDisconnect):
        return None


def asked_about(body, path: str) -> dict:
    """Audit fields of the subject a refused request names (``segment`` and ``subject_id``; a sheet's names a
    household, also by its deprecated ``household_id``), keyed as stored when the id is valid; nothing for a
    body that names none."""
    if not isinstance(body, dict):
        return {}
    if path == "/evaluation_sheet":
        body = {**body, "segment": "household", "subject_id": body.get("subject_id", body.get("household_id"))}
    if body.get("segment") not in SEGMENTS:
        return {}

    def text(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) else None

    return where_of(SimpleNamespace(segment=body["segment"], subject_id=text("subject_id") or "",
                                    purpose=text("purpose"), consent_ref=text("consent_ref")))


def documented(spec: dict) -> dict:
    """The service's OpenAPI document with the gate's answers and the API-key scheme added, and each
    request and answer model referred to by its component (BentoML inlines them with ``X | None`` flattened
    to ``X``, so the inlined schema would say a field that can be null never is)."""
    spec = json.loads(json.dumps(spec))
    spec["info"] = INFO  # not BentoML's default text, which links badges on outside hosts
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    spec["components"].setdefault("securitySchemes", {})["apiKey"] = {
        "type": "apiKey", "in": "header", "name": "X-API-Key"}
    components["ApiError"] = ERROR_SCHEMA
    for path, item in spec.get("paths", {}).items():
        if path not in ACTIONS:
            continue
        for op in item.values():
            op["security"] = [{"apiKey": []}]
            for content in (op.get("requestBody", {}).get("content", {}),
                            op.get("responses", {}).get("200", {}).get("content", {})):
                if "application/json" in content:
                    media = content["application/json"]
                    media["schema"] = _by_ref(media["schema"], components)
            if "requestBody" in op:  # an empty body reads as {}: needed exactly when a field is
                op["requestBody"]["required"] = _needs_body(
                    op["requestBody"]["content"]["application/json"]["schema"], components)
            responses = op.setdefault("responses", {})
            for code, text in ERRORS.items():
                responses[str(code)] = {"description": text, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}
                responses.pop(code, None)
    return spec


def _needs_body(schema: dict, components: dict) -> bool:
    """Whether a request body must be sent: an array, or a model with a required field."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema.get("type") == "array" or bool(schema.get("required"))


def _by_ref(schema: dict, components: dict) -> dict:
    """A reference to the component a schema was inlined from (by its title), for arrays to their items'."""
    if schema.get("title") in components:
        return {"$ref": f"#/components/schemas/{schema['title']}"}
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return {**schema, "items": _by_ref(schema["items"], components)}
    return schema
