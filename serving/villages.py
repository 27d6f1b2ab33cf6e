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
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, func, select

from creditgrade.features import loader
from creditgrade.features.build import check_as_of, features_of
from creditgrade.features.store import Store, objections, records, subjects
from creditgrade.models.credit_villages import config, rated, usage_flags
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

_DATA_STAMP = select(select(func.max(records.c.record_id)).scalar_subquery(),  # what the modelled figures stand on
                     select(func.max(objections.c.objection_id)).scalar_subquery(),
                     select(func.max(objections.c.resolved_at)).scalar_subquery())
_GRADES_STAMP = select(func.max(grades.c.grade_id)).where(grades.c.subject_key.in_(  # the latest grade stored
    select(subjects.c.subject_key).where(subjects.c.township_code.in_(bindparam("townships", expanding=True)))))
_TOWNSHIPS = select(subjects.c.township_code).where(subjects.c.segment == SEGMENT).distinct()
_MEMO: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
_MEMO_LOCK = threading.Lock()
MEMO_ENTRIES = 256  # frames of a few hundred rows: per township as modelled, per request as figured


def households(store: Store, as_of, townships=None, model: Loaded | None = None) -> pd.DataFrame:
    """Every household at ``as_of`` (of ``townships``, if given; index subject_key, in key order):
    village_code, township_code, grade, score, pd, graded ("stored" | "computed"), graded_as_of, rated,
    borrowing, arrears.

    Only the townships asked for are loaded. What the champion makes of a township's households (features,
    borrowing and arrears, grades) is remembered per township, date, model and data stamp (the latest
    record, objection and resolution); the figures with the stored grades that take precedence, per
    townships asked, until a grade is stored for one of their households. A page re-read while nothing
    changed costs two small queries."""
    day = check_as_of(store, SEGMENT, as_of)
    loaded = model or load_champion(SEGMENT)
    with store.engine.connect() as conn:
        wanted = sorted(set(townships) if townships is not None else conn.execute(_TOWNSHIPS).scalars())
        base = (store.url, day, loaded.run_id, tuple(conn.execute(_DATA_STAMP).one()))
        figured = ("figured", *base, tuple(wanted), conn.execute(_GRADES_STAMP, {"townships": wanted}).scalar())
        found = _recall(figured)
        if found is not None:
            return found.copy()
        parts = {t: _recall(("modelled", *base, t)) for t in wanted}
        missing = [t for t, part in parts.items() if part is None]
        if missing:
            for t, part in _modelled(conn, day, missing, loaded).items():
                parts[t] = _keep(("modelled", *base, t), part)
        oldest = day - pd.DateOffset(months=config()["village"]["grade_max_age_months"])
        stored = latest_grades(conn, SEGMENT, day + pd.Timedelta(days=1), since=oldest, townships=wanted)
    found = [parts[t] for t in wanted if len(parts[t])]
    modelled = pd.concat(found).sort_index() if found else _empty()
    return _keep(figured, _with_stored(modelled, stored, day)).copy()


def _recall(key: tuple) -> pd.DataFrame | None:
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
    return None


def _keep(key: tuple, frame: pd.DataFrame) -> pd.DataFrame:
    with _MEMO_LOCK:
        _MEMO[key] = frame
        if len(_MEMO) > MEMO_ENTRIES:
            _MEMO.popitem(last=False)
    return frame


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"village_code": [], "township_code": [], "grade": [], "score": [], "pd": [],
                         "borrowing": [], "arrears": []}, index=pd.Index([], name="subject_key"))


def _modelled(conn, day: pd.Timestamp, townships: list[str], loaded: Loaded) -> dict[str, pd.DataFrame]:
    """The households of some townships as the champion sees them at ``day``: one load, one batch feature
    build and one model call for them all; per township."""
    inputs = loader.load(conn, SEGMENT, day.date(), townships=townships)
    if inputs.subjects.empty:
        return {t: _empty() for t in townships}
    X = features_of(inputs.subjects, inputs.records, SEGMENT, day)
    out = (inputs.subjects.set_index("subject_key")[["village_code", "township_code"]].reindex(X.index)
           .join(loaded.model.grade(X)[["grade", "score", "pd"]]).join(usage_flags(X)))
    return {t: out[out["township_code"] == t] for t in townships}


def _with_stored(modelled: pd.DataFrame, stored: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """The modelled households with each one's stored grade, where it has one, in place of the model's
    (with numpy: pandas' alignment of a few hundred rows costs tens of milliseconds)."""
    at = stored.index.get_indexer(modelled.index) if len(stored) else np.full(len(modelled), -1)
    has = at >= 0

    def pick(column: str, own) -> np.ndarray:
        return np.where(has, stored[column].to_numpy(dtype=object)[at], own) if has.any() else np.asarray(own)

    grade = pick("grade", modelled["grade"].to_numpy(dtype=object))
    out = {"village_code": modelled["village_code"].to_numpy(), "township_code": modelled["township_code"].to_numpy(),
           "grade": pd.array(grade, dtype="str"), "score": pick("score", modelled["score"].to_numpy()).astype(float),
           "pd": pick("pd", modelled["pd"].to_numpy()).astype(float),
           "graded": pd.array(np.where(has, "stored", "computed"), dtype="str"),
           "graded_as_of": pick("as_of", np.full(len(modelled), day.date(), dtype=object)),
           "rated": rated(grade), "borrowing": modelled["borrowing"].to_numpy(dtype=bool),
           "arrears": modelled["arrears"].to_numpy(dtype=bool)}
    return pd.DataFrame(out, index=modelled.index)


# ---------------------------------------------------------------- the evaluation sheet

def _number(value, fmt: str = "{:,.2f}") -> str:
    if value is None or value != value:
        return "—"
    return value if isinstance(value, str) else fmt.format(value)


def render_sheet(subject: Mapping, day: pd.Timestamp, grade: str, score: float, pd_: float, reasons: list[dict],
                 loaded: Loaded) -> str:
    """The sheet (Chinese with English labels) of a household's grade, score, reasons and terms; ``subject``
    is its stored row (display_id, name, head_id_masked, village and township codes). The head's identity
    number appears only masked."""
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
