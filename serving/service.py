"""The creditgrade HTTP service (BentoML 1.4): grades, batch grades, explanations, self-reports,
objections, early warnings, credit villages and townships, household evaluation sheets and the audit
log, behind API keys (see ``serving.gate`` and ``serving.auth``).

Run: ``bentoml serve serving.service:CreditGrade``. Champions load when a worker starts, never at import;
a segment without one stops the start with the message naming it. Environment: ``CREDITGRADE_HOME`` /
``CREDITGRADE_DB_URL`` (store), ``MLFLOW_TRACKING_URI`` (registry), ``CREDITGRADE_MAX_BATCH`` (items per
batch call, default 5000), ``CREDITGRADE_WORKERS``, ``CREDITGRADE_THREADS``, ``CREDITGRADE_TRACE_SAMPLE`` and
``CREDITGRADE_ACCESS_LOG``.
"""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import bentoml
from sqlalchemy import select
from starlette.responses import JSONResponse

from creditgrade.features import ids
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.schemas import SEGMENTS
from creditgrade.features.store import Store, subjects
from creditgrade.models.credit_villages import rate_townships, rate_villages
from creditgrade.models.registry import load_champion
from creditgrade.serving import audit, console, logs, objections
from creditgrade.serving.auth import Keys, Principal, check_reach, check_role, check_subject, listing_scope, township_scope
from creditgrade.serving.errors import ApiError, bad_input, internal
from creditgrade.serving.gate import Gate
from creditgrade.serving.grading import Grader, where_of
from creditgrade.serving.schemas import (AcknowledgeRequest, AuditEntry, AuditFilter, BatchItem, BatchResult, Explanation,
                             Grade, GradeRequest, Objection, ObjectionFilter, ObjectionRequest, Report, Resolved,
                             ResolveRequest, Sheet, SheetRequest, SubjectRequest, TownshipRating, VillageRating,
                             Villages, VillagesRequest, WarningFilter, WarningView, WorkRequest)
from creditgrade.serving.scales import ScaleView, scale_views
from creditgrade.serving.tables import open_store, warnings
from creditgrade.serving.villages import households, render_sheet
from creditgrade.serving.warnings import acknowledge, is_borrower, list_warnings, work

MAX_BATCH = int(os.environ.get("CREDITGRADE_MAX_BATCH", "5000"))
TRACE_SAMPLE = float(os.environ.get("CREDITGRADE_TRACE_SAMPLE", "0"))
"""Share of requests traced by OpenTelemetry (BentoML's ``tracing.sample_rate``, whose default is 0 as
well); at 0 every path is excluded, so the tracing middleware passes requests through without building
spans that would never be sampled."""
ACCESS_LOG = os.environ.get("CREDITGRADE_ACCESS_LOG", "0") == "1"
"""BentoML's access log, a line per request (off unless ``1``): every API call is already in the audit log
(who, what, outcome) and its latency in the metrics' histograms; writing the line cost about 0.4 ms CPU a
request, a third of BentoML's own cost over a bare Starlette app (bench/serve.py's echo rows, loaded machine)."""


CONFIG = {"workers": int(os.environ.get("CREDITGRADE_WORKERS", "1")),
          "threads": int(os.environ.get("CREDITGRADE_THREADS", "4")), "traffic": {"timeout": 300},
          "tracing": {"sample_rate": TRACE_SAMPLE, **({} if TRACE_SAMPLE else {"excluded_urls": ".*"})},
          "logging": {"access": {"enabled": ACCESS_LOG}}}
"""The service's BentoML configuration (bench/echo.py serves under the same)."""


@bentoml.service(name="creditgrade", **CONFIG)
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
        self.store = open_store()
        self.keys = Keys(self.store)
        self.grader = Grader(self.store, champions)

    def _run(self, ctx: bentoml.Context, action: str, call, req=None):
        """Run ``call(principal)``; an ApiError or user error becomes its 4xx answer, any other exception a
        500 (logged), each audited with the subject the request names."""
        state = ctx.request.state
        state.handled = True
        principal: Principal = state.principal
        try:
            return call(principal)
        except Exception as exc:  # noqa: BLE001 - every failure is answered and audited
            if isinstance(exc, ApiError):
                error = exc
            elif isinstance(exc, CreditgradeError):
                error = ApiError(422, str(exc))
            else:
                error = internal(action)
            where = where_of(req) if req is not None and hasattr(req, "subject_id") else {}
            with self.store.engine.begin() as conn:
                audit.write(conn, [audit.refusal(principal, action, error, **where)])
            ctx.response.status_code = error.status
            return JSONResponse(error.body(), status_code=error.status)

    @bentoml.api
    def grade(self, req: GradeRequest, /, ctx: bentoml.Context) -> Grade:
        """Grade one subject as of today or ``as_of``: grade, score, PD, reasons, model, disputed flag."""
        return self._run(ctx, "grade", lambda p: self.grader.grade(p, req, role_checked=True)[0], req)  # the gate's

    @bentoml.api(batchable=True, max_batch_size=1000, max_latency_ms=60_000)
    def grade_batch(self, items: list[BatchItem], /) -> list[BatchResult]:
        """Grade a list of subjects (adaptive batching merges concurrent calls); one result per item (a
        failure: 500 for each, logged and audited)."""
        principals = {k: self.keys.by_id(k) for k in {item.key_id for item in items}}
        try:
            return self.grader.grade_batch(principals, items)
        except Exception:  # noqa: BLE001 - every item is answered and audited
            error = internal("grade_batch")
        with self.store.engine.begin() as conn:
            audit.write(conn, [audit.refusal(principals.get(item.key_id), "grade_batch", error, **where_of(item))
                               for item in items])
        return [BatchResult(status=error.status, error=error.message) for _ in items]

    @bentoml.api
    def explain(self, req: GradeRequest, /, ctx: bentoml.Context) -> Explanation:
        """The grade with every feature's contribution and what would lift it by one grade."""
        return self._run(ctx, "explain", lambda p: self.grader.explain(p, req, role_checked=True), req)

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

    @bentoml.api
    def warnings(self, req: WarningFilter, /, ctx: bentoml.Context) -> list[WarningView]:
        """Stored early warnings with their evidence, newest and most severe first, within the key's reach."""
        return self._run(ctx, "warnings", lambda p: warning_list(self.store, p, req))

    @bentoml.api
    def acknowledge_warning(self, req: AcknowledgeRequest, /, ctx: bentoml.Context) -> WarningView:
        """Acknowledge a warning in the key's reach, recorded with the key's name (the first one stands)."""
        return self._run(ctx, "acknowledge_warning", lambda p: warning_acknowledge(self.store, p, req))

    @bentoml.api
    def work_warning(self, req: WorkRequest, /, ctx: bentoml.Context) -> WarningView:
        """Work a warning in the register: move its state, assign an owner, add a note, close it with an outcome."""
        return self._run(ctx, "work_warning", lambda p: warning_work(self.store, p, req))

    @bentoml.api
    def villages(self, req: VillagesRequest, /, ctx: bentoml.Context) -> Villages:
        """Credit villages and credit townships as of a date (evaluators: their own townships)."""
        return self._run(ctx, "villages", lambda p: village_ratings(self.grader, p, req))

    @bentoml.api
    def evaluation_sheet(self, req: SheetRequest, /, ctx: bentoml.Context) -> Sheet:
        """A household's printable evaluation sheet (HTML): grade, score, reasons and preferential terms."""
        return self._run(ctx, "evaluation_sheet", lambda p: household_sheet(self.grader, p, req), req)

    @bentoml.api
    def scales(self) -> list[ScaleView]:
        """What every grade of every scale means, in Chinese and English, with its band and (households)
        its preferential terms. No key needed."""
        return scale_views()


# ---------------------------------------------------------------- early warnings, villages, sheets

WARNING_Q = select(warnings, subjects.c.display_id, subjects.c.township_code, subjects.c.village_code).join(
    subjects, subjects.c.subject_key == warnings.c.subject_key)


def _masked(value):
    """The evidence with anything shaped like an identity number in its texts masked."""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return ids.redact(value) if isinstance(value, str) else value


def _decoded(value, empty):
    """A JSON column as stored (text) or as ``list_warnings`` already gives it (decoded); None is ``empty``."""
    return empty if value is None else json.loads(value) if isinstance(value, str) else value


def _warning_view(row) -> WarningView:
    evidence = _decoded(row["evidence"], {})
    return WarningView(warning_id=row["warning_id"], subject=row["display_id"], segment=row["segment"],
                       township_code=row["township_code"], village_code=row["village_code"], as_of=row["as_of"],
                       level=row["level"], trigger=row["trigger"],
                       evidence=_masked(evidence),
                       created_at=row["created_at"], acknowledged=row["acknowledged_at"] is not None,
                       acknowledged_at=row["acknowledged_at"], acknowledged_by=row["acknowledged_by"],
                       state=row["state"], outcome=row["outcome"], owner=row["owner"],
                       notes=_masked(_decoded(row["notes"], [])))


def warning_list(store: Store, principal: Principal, req: WarningFilter) -> list[WarningView]:
    """Warnings filtered as asked, confined to the principal's segment and townships; the reading is audited."""
    segment, townships = listing_scope(principal, "warnings", req.segment)
    rows = list_warnings(store, segment=segment, level=req.level, since=req.since, acknowledged=req.acknowledged,
                         townships=townships, limit=req.limit, state=req.state,
                         borrowers_of=_borrowers_of(principal))
    found = [_warning_view(r) for r in rows]
    with store.engine.begin() as conn:
        audit.write(conn, [audit.entry(principal, "warnings", 200, segment=segment,
                                       detail=f"{len(found)} warnings read (level {req.level or 'any'})")])
    return found


def warning_acknowledge(store: Store, principal: Principal, req: AcknowledgeRequest) -> WarningView:
    """Acknowledge one warning the principal may list (404 for an unknown id, 403 outside its reach)."""
    check_role(principal, "acknowledge_warning")
    query = WARNING_Q.where(warnings.c.warning_id == req.warning_id)
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        raise ApiError(404, f"warning_id: no warning {req.warning_id}", "warning_id")
    check_reach(principal, "acknowledge_warning", row["segment"], row["township_code"], "warning_id", "warning_id")
    with store.engine.connect() as conn:
        _check_borrower(conn, principal, row)
    acknowledge(store, req.warning_id, principal.name)
    with store.engine.begin() as conn:
        row = conn.execute(query).mappings().one()
        audit.write(conn, [audit.entry(principal, "acknowledge_warning", 200, subject_key=row["subject_key"],
                                       segment=row["segment"], purpose=req.purpose,
                                       detail=f"warning {req.warning_id} ({row['trigger']}) "
                                              f"acknowledged by {row['acknowledged_by']}")])
    return _warning_view(row)


def _borrowers_of(principal: Principal) -> list[int] | None:
    """A bank sees the warnings of its own borrowers only (the SMEs its key graded for a loan)."""
    return [principal.key_id] if principal.role == "bank" else None


def _check_borrower(conn, principal: Principal, row) -> None:
    """A bank acknowledges and works the warnings of its own borrowers only (403 otherwise)."""
    mine = _borrowers_of(principal)
    if mine is not None and not is_borrower(conn, mine, row["subject_key"]):
        raise ApiError(403, "warning_id: not a warning on one of this bank's borrowers", "warning_id")


def warning_work(store: Store, principal: Principal, req: WorkRequest) -> WarningView:
    """Work one warning within the principal's reach (a bank: its borrowers'); the change is audited with
    the state, owner and outcome before and after, in the same transaction."""
    check_role(principal, "work_warning")
    query = WARNING_Q.where(warnings.c.warning_id == req.warning_id)
    with store.engine.begin() as conn:
        row = conn.execute(query).mappings().first()
        if row is None:
            raise ApiError(404, f"warning_id: no warning {req.warning_id}", "warning_id")
        check_reach(principal, "work_warning", row["segment"], row["township_code"], "warning_id", "warning_id")
        _check_borrower(conn, principal, row)
        try:
            before, after = work(conn, req.warning_id, principal.name, state=req.state, owner=req.owner,
                                 note=req.note, outcome=req.outcome)
        except CreditgradeError as exc:
            raise bad_input(str(exc), str(exc).split(":")[0]) from None
        changed = {k: [before[k], after[k]] for k in ("state", "outcome", "owner") if before[k] != after[k]}
        audit.write(conn, [audit.entry(principal, "work_warning", 200, subject_key=row["subject_key"],
                                       segment=row["segment"], purpose=req.purpose,
                                       detail=f"warning {req.warning_id} ({row['trigger']}): "
                                              f"{json.dumps(changed, ensure_ascii=False)}"
                                              f"{'; note added' if req.note else ''}")])
        row = conn.execute(query).mappings().one()
    return _warning_view(row)


def village_ratings(grader: Grader, principal: Principal, req: VillagesRequest) -> Villages:
    """Credit villages and townships as of a date, over the townships the principal may see."""
    townships = township_scope(principal, "villages", req.townships)
    day = grader.as_of("household", req.as_of)
    v = rate_villages(households(grader.store, day, townships, model=grader.champions["household"]))
    t = rate_townships(v)
    with grader.store.engine.begin() as conn:
        audit.write(conn, [audit.entry(principal, "villages", 200, segment="household",
                                       detail=f"{len(v)} villages, {len(t)} townships as of {day.date()}")])
    share = v["clean_share"].astype(object).where(v["clean_share"].notna(), None)
    return Villages(as_of=day.date(), villages=[
        VillageRating(village_code=r.village_code, township_code=r.township_code, households=r.households,
                      rated=r.rated, rated_share=r.rated_share, borrowing=r.borrowing,
                      borrowing_clean=r.borrowing_clean, clean_share=c, qualifies=r.credit_village)
        for r, c in zip(v.itertuples(index=False), share)], townships=[
        TownshipRating(township_code=r.township_code, villages=r.villages, credit_villages=r.credit_villages,
                       credit_village_share=r.credit_village_share, qualifies=r.credit_township)
        for r in t.itertuples(index=False)])


def household_sheet(grader: Grader, principal: Principal, req: SheetRequest) -> Sheet:
    """The evaluation sheet of a household in the principal's reach, with its consent reference."""
    try:
        household_id = ids.validate_subject_id("household", req.subject_id)
    except ValueError as exc:
        raise bad_input(str(exc), "subject_id") from None
    key = ids.subject_key("household", household_id)
    with grader.store.engine.connect() as conn:
        subject = grader.subjects(conn, [key]).get(key)
    if subject is None or subject.segment != "household":
        raise ApiError(404, "subject_id: no household with that id", "subject_id")
    check_subject(principal, "evaluation_sheet", subject.segment, subject.key, subject.township, req.consent_ref)
    day, fresh = grader.dated("household", req.as_of)
    with grader.store.engine.begin() as conn:
        g = grader.evaluate_one(conn, subject, day, fresh=fresh)
        grader.store_grade(conn, subject, g, "sheet")  # every grade given is stored
        audit.write(conn, [audit.entry(principal, "evaluation_sheet", 200, subject_key=subject.key,
                                       segment=subject.segment, purpose=req.purpose, consent_ref=req.consent_ref,
                                       detail=f"evaluation sheet as of {day.date()}")])
    page = render_sheet(subject.row, day, g.grade, g.score, g.pd, g.reasons,
                        grader.champions["household"])
    return Sheet(html=page)


CreditGrade.add_asgi_middleware(Gate, max_batch=MAX_BATCH, spec=lambda: CreditGrade.openapi_spec.asdict())
# the web console at / (and the offline Swagger UI at /docs) in place of BentoML's default page
CreditGrade.mount_asgi_app(console.build(SimpleNamespace(
    villages=village_ratings, sheet=household_sheet, warnings=warning_list, acknowledge=warning_acknowledge,
    work=warning_work,
    max_batch=MAX_BATCH)), path="/")
