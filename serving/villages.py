"""Credit villages and townships from household grades, preferential terms per grade, and the printable
evaluation sheet of one household. Thresholds and terms are configuration (``models/villages.toml``); the
village and township rules are :mod:`models.credit_villages`.

A household's grade as of a date is its latest stored grade no older than ``grade_max_age_months``, else
a fresh grade from the champion (not stored). Borrowing and arrears come from its features at the date.
"""
from __future__ import annotations

import html
import string
import threading
from collections import OrderedDict
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from creditgrade.features import ids, loader
from creditgrade.features.build import check_as_of, features_of
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import normalise_subjects
from creditgrade.features.store import Store, objections, records
from creditgrade.models import explain
from creditgrade.models.credit_villages import config, household_flags, rate_townships, rate_villages
from creditgrade.models.registry import Loaded, load_champion
from creditgrade.serving.tables import grades
from creditgrade.serving.warnings import latest_grades

SEGMENT = "household"
SHEET_FILE = Path(__file__).with_name("sheet.html")


def household_terms(grade: str) -> dict:
    """The preferential terms a household grade earns (none for a grade without terms, e.g. NR)."""
    terms = config()["terms"].get(grade)
    return {"grade": grade, "eligible": terms is not None,
            "credit_line_cny": terms["credit_line_cny"] if terms else 0,
            "rate_discount_bp": terms["rate_discount_bp"] if terms else 0}


# ---------------------------------------------------------------- households, villages, townships

_LATEST = (select(func.max(records.c.record_id)).scalar_subquery(),
           select(func.max(objections.c.objection_id)).scalar_subquery(),
           select(func.max(objections.c.resolved_at)).scalar_subquery(),
           select(func.max(grades.c.grade_id)).scalar_subquery())
_MEMO: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_MEMO_LOCK = threading.Lock()
MEMO_ENTRIES = 64


def households(store: Store, as_of, townships=None, model: Loaded | None = None) -> pd.DataFrame:
    """Every household at ``as_of`` (index subject_key): village_code, township_code, grade, score, pd,
    graded ("stored" | "computed"), graded_as_of, rated, borrowing, arrears.

    Remembered per date, townships, model and data stamp (the latest record, objection, resolution and
    grade): a village page re-read while nothing was ingested, objected, resolved or graded costs one query."""
    day = check_as_of(store, SEGMENT, as_of)
    loaded = model or load_champion(SEGMENT)
    with store.engine.connect() as conn:
        stamp = tuple(conn.execute(select(*_LATEST)).one())
    key = (store.url, day, frozenset(townships) if townships is not None else None, loaded.run_id, stamp)
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key].copy()
    out = _households(store, day, townships, loaded)
    with _MEMO_LOCK:
        _MEMO[key] = out
        if len(_MEMO) > MEMO_ENTRIES:
            _MEMO.popitem(last=False)
    return out.copy()


def _households(store: Store, day: pd.Timestamp, townships, loaded: Loaded) -> pd.DataFrame:
    conf = config()["village"]
    oldest = day - pd.DateOffset(months=conf["grade_max_age_months"])
    with store.engine.connect() as conn:  # only the townships asked for (households always exist)
        inputs = loader.load(conn, SEGMENT, day.date(), townships=townships)
        stored = latest_grades(conn, SEGMENT, day + pd.Timedelta(days=1), since=oldest)
    X = features_of(inputs.subjects, inputs.records, SEGMENT, day)
    out = inputs.subjects.set_index("subject_key")[["village_code", "township_code"]].reindex(X.index)
    stored = stored[stored.index.isin(out.index)].assign(graded="stored")
    fresh = X.index.difference(stored.index)
    if len(fresh):
        new = loaded.model.grade(X.loc[fresh])[["pd", "score", "grade"]].assign(as_of=day.date(), graded="computed")
        stored = pd.concat([stored, new]) if len(stored) else new
    out = out.join(stored[["grade", "score", "pd", "graded"]]).assign(graded_as_of=stored["as_of"])
    return out.join(household_flags(out["grade"], X.loc[out.index]))


def village_ratings(store: Store, as_of, townships=None, model: Loaded | None = None) -> pd.DataFrame:
    """Credit-village evaluation of every village (of ``townships``, if given) as of a date."""
    return rate_villages(households(store, as_of, townships, model))


def township_ratings(store: Store, as_of, townships=None, model: Loaded | None = None) -> pd.DataFrame:
    """Credit-township evaluation of every township (or of ``townships``) as of a date."""
    return rate_townships(village_ratings(store, as_of, townships, model))


# ---------------------------------------------------------------- the evaluation sheet

def household_frame(store: Store, key: str) -> pd.DataFrame:
    """The stored subject row of one household, by its key, as a one-row normalised frame."""
    with store.engine.connect() as conn:
        subject = loader.frame(conn, loader.subjects_query(SEGMENT, keys=[key]))
    if subject.empty:
        raise CreditgradeError(f"no household {key}")
    return normalise_subjects(subject)


def _household(store: Store, household_id: str, day: pd.Timestamp):
    """The subject row and the features of one household as of ``day``."""
    try:
        key = ids.subject_key(SEGMENT, ids.validate_subject_id(SEGMENT, household_id))
    except ValueError as exc:
        raise CreditgradeError(str(exc)) from None
    with store.engine.connect() as conn:
        inputs = loader.load(conn, SEGMENT, day.date(), keys=[key])
    if inputs.subjects.empty:
        raise CreditgradeError(f"no household {key}")
    return inputs.subjects.iloc[0], features_of(inputs.subjects, inputs.records, SEGMENT, day)


def _number(value, fmt: str = "{:,.2f}") -> str:
    if value is None or value != value:
        return "—"
    return value if isinstance(value, str) else fmt.format(value)


def evaluation_sheet(store: Store, household_id: str, as_of, model: Loaded | None = None) -> str:
    """A printable HTML evaluation sheet of one household graded as of ``as_of`` (see :func:`render_sheet`)."""
    day = check_as_of(store, SEGMENT, as_of)
    subject, X = _household(store, household_id, day)
    loaded = model or load_champion(SEGMENT)
    graded = loaded.model.grade(X)
    g = graded.iloc[0]
    return render_sheet(subject, day, g["grade"], g["score"], g["pd"],
                        explain.reasons(loaded.model, X, graded, k=4)[0], loaded)


def render_sheet(subject: pd.Series, day: pd.Timestamp, grade: str, score: float, pd_: float, reasons: list[dict],
                 loaded: Loaded) -> str:
    """The sheet (Chinese with English labels) of a household's grade, score, reasons and terms. The head's
    identity number appears only masked."""
    label = loaded.model.scale.label(grade, "zh")
    terms = household_terms(grade)
    e = html.escape
    rows = "\n".join(
        f"  <tr><td>{e(r['zh'])}<br><small>{e(r['en'])}</small></td><td>{e(_number(r['value']))}</td>"
        f"<td>{e(_number(r['reference']))}</td></tr>" for r in reasons) or \
        '  <tr><td colspan="3">无不利因素 <small>No factor raised the risk</small></td></tr>'
    fields = {
        "household_id": subject["display_id"], "name": subject["name"],
        "head_id_masked": subject["head_id_masked"] or "—", "village_code": subject["village_code"],
        "township_code": subject["township_code"], "as_of": day.date().isoformat(),
        "grade": grade if label == grade else f"{grade}（{label}）",
        "score": f"{score:.0f}", "pd": f"{pd_:.2%}", "model": f"{loaded.name} v{loaded.version}",
        "credit_line": f"{terms['credit_line_cny']:,} 元 CNY" if terms["eligible"] else "不适用 not eligible",
        "rate_discount": f"{terms['rate_discount_bp']} bp" if terms["eligible"] else "不适用 not eligible",
    }
    page = string.Template(SHEET_FILE.read_text(encoding="utf-8"))
    return page.substitute({k: e(str(v)) for k, v in fields.items()}, reasons=rows)
