"""Early warnings: raised when a record that trips a trigger is ingested (:func:`raise_on_arrival`, the
ingest hook, in the file's own transaction), and by a scan of a segment as of a date for the trends (PD
rises, downgrades, falling features); stored with their evidence, listed and acknowledged. The rules are
``models.warnings``; their backtest is ``training.backtest``.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from creditgrade.features import loader
from creditgrade.features.build import build_features, check_as_of, parse_date
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import normalise_records
from creditgrade.features.store import Store, subjects
from creditgrade.models import explain
from creditgrade.models.registry import Loaded, load_champion
from creditgrade.models.warnings import LEVELS, Moment, arrived, evidence, fire, record_list, triggers
from creditgrade.serving.tables import grades, warnings


# ---------------------------------------------------------------- the stored scan

@dataclass
class ScanReport:
    segment: str
    as_of: dt.date
    model: str
    subjects: int
    grades_stored: int
    warnings_new: int
    by_level: dict[str, int]          # new warnings per level


def _insert_ignore(conn, table, rows: list[dict]) -> None:
    maker = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(conn.dialect.name)
    if rows:
        conn.execute(maker(table).on_conflict_do_nothing() if maker else insert(table), rows)


def _scan_grades(conn, segment: str, day: pd.Timestamp, loaded: Loaded) -> pd.Series:
    g = grades.c
    q = select(g.subject_key, g.grade_id).where(
        g.segment == segment, g.as_of == day.date(), g.origin == "scan", g.model_name == loaded.name,
        g.model_version == loaded.version).order_by(g.grade_id)
    return pd.Series(dict(conn.execute(q).all()), dtype="Int64")


def _store_grades(conn, segment: str, day: pd.Timestamp, loaded: Loaded, graded: pd.DataFrame,
                  why: list[list[dict]], disputed: dict) -> tuple[pd.Series, int]:
    """Store the scan's grades, one per subject, as-of date and model version; their grade ids by key."""
    have = _scan_grades(conn, segment, day, loaded)
    now = dt.datetime.now(dt.timezone.utc)
    rows = [dict(subject_key=key, segment=segment, as_of=day.date(), graded_at=now, pd=float(r.pd),
                 score=float(r.score), grade=r.grade, model_grade=r.model_grade,
                 override=r.override.feature if r.override is not None else None, model_name=loaded.name,
                 model_version=loaded.version, disputed=key in disputed,
                 reasons=json.dumps([x["feature"] for x in reasons]), origin="scan")
            for key, r, reasons in zip(graded.index, graded.itertuples(index=False), why) if key not in have.index]
    if rows:
        conn.execute(insert(grades), rows)
    return _scan_grades(conn, segment, day, loaded), len(rows)


def latest_grades(conn, segment: str, before, since=None, townships=None) -> pd.DataFrame:
    """Each subject's latest stored grade with an as-of date before ``before`` (and on or after ``since``),
    any origin, of the subjects of ``townships`` if given (through the subject index); index subject_key."""
    g = grades.c
    rank = func.row_number().over(partition_by=g.subject_key,
                                  order_by=(g.as_of.desc(), g.graded_at.desc(), g.grade_id.desc()))
    where = [g.segment == segment, g.as_of < pd.Timestamp(before).date()]
    if since is not None:
        where.append(g.as_of >= pd.Timestamp(since).date())
    if townships is not None:
        where.append(g.subject_key.in_(select(subjects.c.subject_key).where(subjects.c.township_code.in_(townships))))
    ranked = select(g.subject_key, g.grade_id, g.as_of, g.pd, g.score, g.grade, g.model_version, g.origin,
                    rank.label("n")).where(*where).subquery()
    rows = conn.execute(select(*(c for c in ranked.c if c.name != "n")).where(ranked.c.n == 1)).all()
    return pd.DataFrame(rows, columns=["subject_key", "grade_id", "as_of", "pd", "score", "grade",
                                       "model_version", "origin"]).set_index("subject_key")


def scan(store: Store, segment: str, as_of, model: Loaded | None = None) -> ScanReport:
    """Grade every subject of ``segment`` as of ``as_of`` with ``model`` (default: the champion), store the
    grades (origin "scan"; once per subject, date and model version) and the warnings the trend triggers
    raise against each subject's previous grade and features (record triggers are raised on arrival).
    Re-running adds nothing."""
    day = check_as_of(store, segment, as_of)
    loaded = model or load_champion(segment)
    X, disputed = build_features(store, segment, day, with_disputed=True)
    graded, why = explain.explain(loaded.model, X)
    rules = [t for t in triggers() if t.type != "record" and t.applies(segment, X.columns)]
    with store.engine.begin() as conn:
        ids, stored = _store_grades(conn, segment, day, loaded, graded, why, disputed)
        now = graded[["pd", "score", "grade"]].assign(grade_id=ids.reindex(X.index).astype("int64").to_numpy(),
                                                      model_version=loaded.version)
        m = Moment(segment, day, loaded.model.scale.order, X, now,
                   latest_grades(conn, segment, day).reindex(X.index), pd.DataFrame())
        created = dt.datetime.now(dt.timezone.utc)
        w = warnings.c
        seen = set(conn.execute(select(w.subject_key, w.trigger).where(w.segment == segment,
                                                                       w.as_of == day.date())).all())
        rows = [dict(subject_key=key, segment=segment, as_of=day.date(), level=t.level, trigger=t.name,
                     evidence=json.dumps(evidence(t, m, key), ensure_ascii=False), created_at=created)
                for t in rules for key in X.index[fire(t, m)] if (key, t.name) not in seen]
        _insert_ignore(conn, warnings, rows)
    by_level = {level: sum(r["level"] == level for r in rows) for level in LEVELS}
    return ScanReport(segment, day.date(), f"{loaded.name} v{loaded.version}", len(X), stored, len(rows), by_level)


# ---------------------------------------------------------------- raised on arrival

LOOKUP = 5_000  # subjects per history query (bound parameters stay under SQLite's limit)

def raise_on_arrival(conn, rows: list[dict]) -> int:
    """The ingest hook (``features.ingest.ingest_files(on_records=...)``): within the file's transaction,
    store a warning for each new record that trips a record trigger, dated its report, the record as its
    evidence; a subject's several records of one trigger and day make one warning. Returns how many."""
    rules = [t for t in triggers() if t.type == "record"]
    wanted = {k for t in rules for k in t.params["kinds"]}
    now = max((r["reported_date"] for r in rows), default=None)
    since = now - dt.timedelta(days=max(t.params["within_days"] for t in rules)) if now else None
    new = [r for r in rows if r["kind"] in wanted and r["reported_date"] >= since]
    if not new:
        return 0
    keys = sorted({r["subject_key"] for r in new})
    raw = pd.concat([loader.frame(conn, loader.records_query(None, keys=keys[i:i + LOOKUP], kinds=sorted(wanted)))
                     for i in range(0, len(keys), LOOKUP)])
    history = normalise_records(raw)
    history["doc_ref"] = raw.set_index("record_id")["doc_ref"].reindex(history["record_id"]).to_numpy()
    new_ids = {r["record_id"] for r in new}
    now = pd.Timestamp(now)
    created = dt.datetime.now(dt.timezone.utc)
    out = []
    for t in rules:
        found = arrived(t, history, new_ids, now)
        if t.segments is not None:
            found = found[found["segment"].isin(t.segments).to_numpy()]
        for (key, segment, day), part in found.groupby(["subject_key", "segment", "reported_date"], observed=True):
            ev = {"trigger": t.name, "level": t.level, "en": t.en, "zh": t.zh, "as_of": day.date().isoformat(),
                  "origin": "arrival", "records": record_list(part)}
            out.append(dict(subject_key=str(key), segment=str(segment), as_of=day.date(), level=t.level,
                            trigger=t.name, evidence=json.dumps(ev, ensure_ascii=False), created_at=created))
    _insert_ignore(conn, warnings, out)
    return len(out)


# ---------------------------------------------------------------- reading and acknowledging

def list_warnings(store: Store, segment: str | None = None, level: str | None = None, since=None,
                  acknowledged: bool | None = None, townships=None, limit: int | None = 1000) -> list[dict]:
    """Stored warnings, newest as-of date and most severe first, each with its subject's display id and
    township and its evidence decoded. ``since`` filters on the as-of date; ``townships`` (an evaluator's)
    keeps subjects in those townships only."""
    w, s = warnings.c, subjects.c
    q = select(warnings, s.display_id, s.township_code, s.village_code).join(
        subjects, s.subject_key == w.subject_key)
    if segment:
        q = q.where(w.segment == segment)
    if level:
        if level not in LEVELS:
            raise CreditgradeError(f"level {level!r} is not one of {', '.join(LEVELS)}")
        q = q.where(w.level == level)
    if since is not None:
        q = q.where(w.as_of >= parse_date(since, "since").date())
    if acknowledged is not None:
        q = q.where(w.acknowledged_at.is_not(None) if acknowledged else w.acknowledged_at.is_(None))
    if townships is not None:
        q = q.where(s.township_code.in_(list(townships)))
    q = q.order_by(w.as_of.desc(), *(w.level != lv for lv in LEVELS), w.warning_id).limit(limit)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["evidence"] = json.loads(r["evidence"])
    return rows


def acknowledge(store: Store, warning_id: int, by: str) -> dict:
    """Mark a warning acknowledged by ``by`` (the first acknowledgement stands); return it."""
    if not by or not str(by).strip():
        raise CreditgradeError("acknowledge: say who acknowledges the warning")
    w = warnings.c
    with store.engine.begin() as conn:
        conn.execute(update(warnings).where(w.warning_id == warning_id, w.acknowledged_at.is_(None))
                     .values(acknowledged_at=dt.datetime.now(dt.timezone.utc), acknowledged_by=str(by).strip()))
        row = conn.execute(select(warnings).where(w.warning_id == warning_id)).mappings().first()
    if row is None:
        raise CreditgradeError(f"no warning {warning_id}")
    return {**row, "evidence": json.loads(row["evidence"])}
