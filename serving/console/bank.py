"""Bank (and analyst) pages: look an SME up by its code — grade, PD, reasons, a waterfall of the
contributions, what would change the grade, its grade history — and grade a CSV of codes into a CSV of
grades. The regulator's "explain any subject" page shows the same explanation."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select
from starlette.routing import Route

from creditgrade.features import ids
from creditgrade.features.catalog import spec
from creditgrade.features.errors import CreditgradeError
from creditgrade.serving.auth import check_role
from creditgrade.serving.console import charts
from creditgrade.serving.console.web import Ctx, download, page, render, request_model, service
from creditgrade.serving.errors import bad_input
from creditgrade.serving.grading import where_of
from creditgrade.serving.schemas import BatchItem, Explanation, GradeRequest
from creditgrade.serving.tables import grades

HISTORY_ROWS = 50
BATCH_COLUMNS = ["subject_id", "status", "grade", "model_grade", "score", "pd", "as_of", "model_version",
                 "stale", "disputed", "error"]


def feature_label(name: str, lang: str) -> str:
    try:
        return getattr(spec(name), lang)
    except CreditgradeError:  # a policy-only or undeclared column: its name
        return name


def history(segment: str, subject_id: str) -> list:
    """A subject's stored grades, newest first (read after the explanation passed the caller's checks)."""
    key = ids.subject_key(segment, ids.validate_subject_id(segment, subject_id))
    g = grades.c
    with service().store.engine.connect() as conn:
        return conn.execute(select(g.grade_id, g.as_of, g.graded_at, g.grade, g.score, g.pd, g.model_version, g.origin)
                            .where(g.subject_key == key).order_by(g.graded_at.desc(), g.grade_id.desc())
                            .limit(HISTORY_ROWS)).all()


def explanation(ctx: Ctx, req: GradeRequest) -> dict:
    """The explanation of one subject for the caller (audited as the API's ``explain``), with its waterfall,
    score line and history: the values an explanation page shows."""
    ctx.where = where_of(req)
    found: Explanation = service().grader.explain(ctx.principal, req)
    t = ctx.t
    wf = charts.waterfall(found.bias, [(feature_label(c.feature, ctx.lang), c.contribution)
                                       for c in found.contributions if c.contribution],
                          found.unit, t("waterfall"), t("base_value"), t("model_output"), t("other_factors"))
    past = history(req.segment, req.subject_id)
    line = charts.scores([(str(h.as_of), h.score, h.grade) for h in reversed(past)], t("grades_over_time"))
    scale = service().grader.champions[req.segment].model.scale
    return dict(found=found, grade=found.grade, waterfall=wf, line=line, history=past, scale=scale,
                change=found.what_would_change, label=lambda f: feature_label(f, ctx.lang))


def routes(api) -> list[Route]:
    @page("explain")
    def sme(ctx: Ctx):
        shown = {}
        if ctx.request.method == "POST":
            req = request_model(GradeRequest, subject_id=str(ctx.form.get("subject_id", "")).strip(), segment="sme",
                                purpose=ctx.form.get("purpose"))
            shown = explanation(ctx, req)
        return render(ctx, "sme.html", form=ctx.form, **shown)

    @page("grade_batch")
    def batch(ctx: Ctx):
        if ctx.request.method == "GET":
            return render(ctx, "batch.html", cap=api.max_batch)
        check_role(ctx.principal, "grade_batch")
        upload = ctx.form.get("file")
        if upload is None or not hasattr(upload, "file"):
            raise bad_input("file: choose a CSV file of codes", "file")
        codes = read_codes(upload.file.read(), api.max_batch)
        purpose = ctx.form.get("purpose") or ctx.t("purpose_default")
        items = [BatchItem(subject_id=c, segment="sme", purpose=purpose, key_id=ctx.principal.key_id) for c in codes]
        results = service().grader.grade_batch({ctx.principal.key_id: ctx.principal}, items)
        out = io.StringIO()
        writer = csv.DictWriter(out, BATCH_COLUMNS)
        writer.writeheader()
        for code, r in zip(codes, results):
            g = r.result
            writer.writerow(dict(subject_id=code, status=r.status, error=r.error or "", **(dict(
                grade=g.grade, model_grade=g.model_grade, score=f"{g.score:.1f}", pd=f"{g.pd:.6f}", as_of=g.as_of,
                model_version=g.model.version, stale=g.stale, disputed=g.disputed) if g else {})))
        return download(out.getvalue(), "grades.csv")

    return [Route("/console/sme", sme, methods=["GET", "POST"]),
            Route("/console/batch", batch, methods=["GET", "POST"])]


def read_codes(raw: bytes, cap: int) -> list[str]:
    """The codes of an uploaded CSV: its ``subject_id`` column (or its only column), blank lines skipped;
    a file that is not UTF-8 text, has no such column, no codes or more than ``cap`` is refused (422)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad_input("file: not UTF-8 text (save the CSV as UTF-8)", "file") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise bad_input("file: no codes in the file", "file")
    head = [c.strip().lower() for c in rows[0]]
    if "subject_id" in head:
        col, rows = head.index("subject_id"), rows[1:]
    elif len(head) == 1:
        col = 0
    else:
        raise bad_input("file: a subject_id column is required when the file has several columns", "file")
    codes = [r[col].strip() for r in rows if len(r) > col and r[col].strip()]
    if not codes:
        raise bad_input("file: no codes in the file", "file")
    if len(codes) > cap:
        raise bad_input(f"file: at most {cap} codes per upload, got {len(codes)}", "file")
    return codes
