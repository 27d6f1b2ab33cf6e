"""The creditgrade HTTP service (BentoML 1.4): grades, batch grades, explanations, self-reports,
objections and the audit log, behind API keys (see ``serving.gate`` and ``serving.auth``).

Run: ``bentoml serve serving.service:CreditGrade``. Champions load when a worker starts, never at import;
a segment without one stops the start with the message naming it. Environment: ``CREDITGRADE_HOME`` /
``CREDITGRADE_DB_URL`` (store), ``MLFLOW_TRACKING_URI`` (registry), ``CREDITGRADE_MAX_BATCH`` (items per
batch call, default 5000), ``CREDITGRADE_WORKERS`` and ``CREDITGRADE_THREADS``.
"""
from __future__ import annotations

import os

import bentoml
from starlette.responses import JSONResponse

from features.errors import CreditgradeError
from features.schemas import SEGMENTS
from features.store import Store
from models.registry import load_champion
from serving import audit, logs, objections
from serving.auth import Keys, Principal
from serving.errors import ApiError
from serving.gate import Gate
from serving.grading import Grader, where_of
from serving.schemas import (AuditEntry, AuditFilter, BatchItem, BatchResult, Explanation, Grade, GradeRequest,
                             Objection, ObjectionFilter, ObjectionRequest, Report, Resolved, ResolveRequest,
                             SubjectRequest)

MAX_BATCH = int(os.environ.get("CREDITGRADE_MAX_BATCH", "5000"))


@bentoml.service(name="creditgrade", workers=int(os.environ.get("CREDITGRADE_WORKERS", "1")),
                 threads=int(os.environ.get("CREDITGRADE_THREADS", "4")), traffic={"timeout": 300})
class CreditGrade:
    """Credit grades of SMEs, rural households and practitioners, with reasons, objections and audit."""

    def __init__(self):
        logs.install()
        champions, missing = {}, []
        for segment in SEGMENTS:
            try:
                champions[segment] = load_champion(segment)
            except CreditgradeError as exc:
                missing.append(str(exc))
        if missing:
            raise RuntimeError("creditgrade cannot start: " + "; ".join(missing))
        self.store = Store()
        self.keys = Keys(self.store)
        self.grader = Grader(self.store, champions)

    def _run(self, ctx: bentoml.Context, action: str, call, req=None):
        """Run ``call(principal)``; an ApiError or user error becomes its 4xx answer, audited."""
        state = ctx.request.state
        state.handled = True
        principal: Principal = state.principal
        try:
            return call(principal)
        except (ApiError, CreditgradeError) as exc:
            error = exc if isinstance(exc, ApiError) else ApiError(422, str(exc))
            where = where_of(req) if req is not None and hasattr(req, "subject_id") else {}
            with self.store.engine.begin() as conn:
                audit.write(conn, [audit.refusal(principal, action, error, **where)])
            ctx.response.status_code = error.status
            return JSONResponse(error.body(), status_code=error.status)

    @bentoml.api
    def grade(self, req: GradeRequest, /, ctx: bentoml.Context) -> Grade:
        """Grade one subject as of today or ``as_of``: grade, score, PD, reasons, model, disputed flag."""
        return self._run(ctx, "grade", lambda p: self.grader.grade(p, req)[0], req)

    @bentoml.api(batchable=True, max_batch_size=1000, max_latency_ms=60_000)
    def grade_batch(self, items: list[BatchItem], /) -> list[BatchResult]:
        """Grade a list of subjects (adaptive batching merges concurrent calls); one result per item."""
        principals = {k: self.keys.by_id(k) for k in {item.key_id for item in items}}
        return self.grader.grade_batch(principals, items)

    @bentoml.api
    def explain(self, req: GradeRequest, /, ctx: bentoml.Context) -> Explanation:
        """The grade with every feature's contribution and what would lift it by one grade."""
        return self._run(ctx, "explain", lambda p: self.grader.explain(p, req), req)

    @bentoml.api
    def report(self, req: SubjectRequest, /, ctx: bentoml.Context) -> Report:
        """The subject's own report: current grade with reasons, records, grades over time, objections."""
        return self._run(ctx, "report", lambda p: objections.report(self.grader, p, req), req)

    @bentoml.api
    def file_objection(self, req: ObjectionRequest, /, ctx: bentoml.Context) -> Objection:
        """Object to one of the subject's records: disputed at once, answer due in 20 days."""
        return self._run(ctx, "file_objection", lambda p: objections.file(self.grader, p, req), req)

    @bentoml.api
    def list_objections(self, req: ObjectionFilter, /, ctx: bentoml.Context) -> list[Objection]:
        """Objections with due dates, days left and an overdue flag."""
        return self._run(ctx, "list_objections", lambda p: objections.listing(self.grader, p, req))

    @bentoml.api
    def resolve_objection(self, req: ResolveRequest, /, ctx: bentoml.Context) -> Resolved:
        """Answer an objection; ``corrected`` changes the record and re-grades the subject."""
        return self._run(ctx, "resolve_objection", lambda p: objections.resolve(self.grader, p, req))

    @bentoml.api
    def audit_log(self, req: AuditFilter, /, ctx: bentoml.Context) -> list[AuditEntry]:
        """The audit log, newest first (regulators)."""
        return self._run(ctx, "audit", lambda p: audit.read(self.store, p, req))


CreditGrade.add_asgi_middleware(Gate, max_batch=MAX_BATCH, spec=lambda: CreditGrade.openapi_spec.asdict())
