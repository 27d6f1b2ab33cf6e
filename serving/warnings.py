"""Early warnings: raised when a record that trips a trigger is ingested (:func:`raise_on_arrival`, the
ingest hook, in the file's own transaction), and by a scan of a segment as of a date for the trends (PD
rises, downgrades, falling features); stored with their evidence, listed and acknowledged. The rules are
``models.warnings``; their backtest is ``training.backtest``.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Select, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from creditgrade.features import ids, loader
from creditgrade.features.bulk import arrow_schema
from creditgrade.features.build import build_features, check_as_of, parse_date
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import normalise_records
from creditgrade.features.store import Store, records, subjects
from creditgrade.models import explain
from creditgrade.models.registry import Loaded, load_champion
from creditgrade.models.warnings import (LEVELS, Moment, arrived, default_events, default_records, evidence, fire,
                                         firm_codes, link_kinds, links_in_force, record_kinds, record_list,
                                         register_config, triggers)
from creditgrade.serving.history import store_grades
from creditgrade.serving.tables import audit_log, grades, warnings


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
    with store.engine.begin() as conn:
        return store_scan(conn, segment, day, loaded, X, graded, ([x["feature"] for x in w] for w in why), disputed)


def store_scan(conn, segment: str, day: pd.Timestamp, loaded: Loaded, X: pd.DataFrame, graded: pd.DataFrame,
               reasons, disputed) -> ScanReport:
    """:func:`scan`'s writing, within the caller's transaction, of grades already made (``graded`` and
    ``reasons`` as ``models.explain.explain`` gives them for features ``X``, which need hold only the
    trend triggers' columns; ``disputed``: the keys with disputed records); the Dask scan
    (``serving.batch``) grades on the workers and writes through it."""
    rules = [t for t in triggers() if t.type not in ("record", "contagion") and t.applies(segment, X.columns)]
    ids, stored = store_grades(conn, segment, day, loaded, graded, reasons, disputed, "scan")
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


def _frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Records normalised (``features.frames.normalise_records``), keeping their doc_ref."""
    out = normalise_records(raw)
    out["doc_ref"] = raw.set_index("record_id")["doc_ref"].reindex(out["record_id"]).to_numpy()
    return out


def _history(conn, keys: list[str], kinds: list[str]) -> pd.DataFrame:
    """The stored records of these subjects and kinds (the file's own included), as read."""
    return pd.concat([loader.frame(conn, loader.records_query(None, keys=keys[i:i + LOOKUP], kinds=kinds))
                      for i in range(0, len(keys), LOOKUP)])


def _hits(rows: pa.Table, kinds, segments=None, severities=None, min_value=None) -> pa.ChunkedArray:
    """Whether each record is of these kinds (and segments, severities, at least this value), vectorised."""
    hit = pc.is_in(rows["kind"], value_set=pa.array(kinds, pa.string()))
    if segments is not None:
        hit = pc.and_(hit, pc.is_in(rows["segment"], value_set=pa.array(segments, pa.string())))
    if severities is not None:
        hit = pc.and_(hit, pc.is_in(rows["severity"], value_set=pa.array(severities, pa.string())))
    if min_value is not None:
        hit = pc.and_(hit, pc.greater_equal(rows["value"], min_value))
    return pc.fill_null(hit, False)


def _may_trip(rows: pa.Table, rules, now: dt.date) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(may trip a rule, may trip one that compares with the subject's earlier records) per new record:
    its kind, segment, severity and value fit a record trigger, or show a default a contagion rule spreads,
    and it was reported within that rule's window up to ``now``. Only these go on to per-subject work."""
    none = pa.chunked_array([np.zeros(rows.num_rows, bool)])
    may = change = none
    for t in rules:
        if t.type == "record":
            hit = _hits(rows, t.params["kinds"], t.segments, t.params.get("severities"), t.params.get("min_value"))
        else:  # contagion: a default shown among the new records spreads
            hit = none
            for event in default_events():
                hit = pc.or_(hit, _hits(rows, event["kinds"], None, event.get("severities"), event.get("min_value")))
        hit = pc.and_(hit, pc.greater_equal(rows["reported_date"],
                                            pa.scalar(now - dt.timedelta(days=t.params["within_days"]))))
        if "change" in t.params:
            change = pc.or_(change, hit)
        may = pc.or_(may, hit)
    return may, change


def _warning(key: str, segment: str, day: pd.Timestamp, t, created, **evidence) -> dict:
    ev = {"trigger": t.name, "level": t.level, "en": t.en, "zh": t.zh, "as_of": day.date().isoformat(),
          "origin": "arrival", **evidence}
    return dict(subject_key=str(key), segment=str(segment), as_of=day.date(), level=t.level, trigger=t.name,
                evidence=json.dumps(ev, ensure_ascii=False), created_at=created)


def raise_on_arrival(conn, rows: pa.Table | list[dict]) -> int:
    """The ingest hook (``features.ingest.ingest_files(on_records=...)``): within the file's transaction,
    store a warning for each new record (``rows``: as stored, with ``record_id``) that trips a record trigger,
    dated its report, the record as its evidence (a subject's several records of one trigger and day make
    one warning), and spread a contagion warning to the firms linked to one just warned at a spreading level
    or shown in default. Records reported before a trigger's window up to the newest of the chunk
    (back-filled history) raise nothing. The records that may trip a rule are picked out column-wise first;
    only their subjects' earlier records are read, and only for triggers that compare with them. Returns how
    many warnings were stored."""
    if not isinstance(rows, pa.Table):
        rows = pa.Table.from_pylist(rows, schema=arrow_schema(records.columns))
    if not rows.num_rows:
        return 0
    rules = [t for t in triggers() if t.type in ("record", "contagion")]
    now = pc.max(rows["reported_date"]).as_py()
    may, change = _may_trip(rows, rules, now)
    new = rows.filter(may)
    if not new.num_rows:
        return 0
    raw = new.drop_columns([c for c in ("batch_id", "voided_at") if c in new.column_names]).to_pandas()
    keys = pc.unique(rows.filter(change)["subject_key"]).to_pylist()
    if keys:  # the earlier records of the kinds that compare, the file's own included
        history = _history(conn, sorted(keys), record_kinds([t for t in rules if "change" in t.params]))
        raw = pd.concat([history, raw[~raw["record_id"].isin(history["record_id"]).to_numpy()]])
    found = _frame(raw)  # normalised once
    new_ids, now = set(new["record_id"].to_pylist()), pd.Timestamp(now)
    created = dt.datetime.now(dt.timezone.utc)
    out = []
    for t in (t for t in rules if t.type == "record"):
        hit = arrived(t, found, new_ids, now)
        if t.segments is not None:
            hit = hit[hit["segment"].isin(t.segments).to_numpy()]
        for (key, segment, day), part in hit.groupby(["subject_key", "segment", "reported_date"], observed=True):
            out.append(_warning(key, segment, day, t, created, records=record_list(part)))
    for t in (t for t in rules if t.type == "contagion"):
        out += _spread(conn, t, out, found[found["record_id"].isin(list(new_ids)).to_numpy()], now, created)
    _insert_ignore(conn, warnings, out)
    return len(out)


def _spread(conn, t, raised: list[dict], new: pd.DataFrame, now: pd.Timestamp, created) -> list[dict]:
    """Contagion warnings: each firm linked to one warned now at a spreading level or with a default record
    among ``new`` (reported in the trigger's window), the link and the cause as evidence."""
    causes = {w["subject_key"]: (pd.Timestamp(w["as_of"]), f"{w['trigger']} ({w['level']})")
              for w in raised if w["level"] in t.params["spread"]}
    shown = default_records(new)
    shown = shown[(shown["reported_date"] >= now - pd.Timedelta(days=t.params["within_days"])).to_numpy()]
    for r in shown.itertuples():
        causes.setdefault(str(r.subject_key), (r.reported_date, f"default ({r.kind})"))
    if not causes:
        return []
    segment_of = dict(conn.execute(select(subjects.c.subject_key, subjects.c.segment)
                                   .where(subjects.c.segment.in_(t.segments))).all())
    firms = firm_codes(segment_of)
    stored = {form: key for form, key in firms.items() if key in causes}
    link = select(records.c.record_id).where(records.c.kind.in_(link_kinds()), records.c.voided_at.is_(None))
    keys, forms, ids_ = sorted(causes), sorted(stored), set()
    for i in range(0, max(len(keys), len(forms)), LOOKUP):
        ids_ |= set(conn.execute(link.where(or_(records.c.subject_key.in_(keys[i:i + LOOKUP]),
                                                records.c.account.in_(forms[i:i + LOOKUP])))).scalars())
    if not ids_:
        return []
    found = loader.frame(conn, select(records).where(records.c.record_id.in_(sorted(ids_))))
    links = normalise_records(found)
    links["doc_ref"] = found.set_index("record_id")["doc_ref"].reindex(links["record_id"]).to_numpy()
    out = []
    for (key, partner), part in links_in_force(links, now, firms).groupby(["subject_key", "partner"]):
        if partner in causes and key not in causes:
            day, why = causes[partner]
            out.append(_warning(key, segment_of[key], day, t, created, linked=[partner], cause=why,
                                records=record_list(part)))
    return out


# ---------------------------------------------------------------- reading and acknowledging

def borrowers(key_ids) -> Select:
    """The subjects a bank's keys graded with a loan purpose (``[register] loan_purposes``): its borrowers."""
    a = audit_log.c
    words = register_config()["loan_purposes"]
    return select(a.subject_key).where(a.key_id.in_(list(key_ids)), a.action.in_(("grade", "grade_batch")),
                                       a.outcome == "200", or_(*(func.lower(a.purpose).contains(w.lower())
                                                                 for w in words)))


def is_borrower(conn, key_ids, subject_key: str) -> bool:
    """Whether the bank's keys ``key_ids`` graded ``subject_key`` with a loan purpose (:func:`borrowers`)."""
    return conn.execute(borrowers(key_ids).where(audit_log.c.subject_key == subject_key).limit(1)).first() is not None


def list_warnings(store: Store, segment: str | None = None, level: str | None = None, since=None,
                  acknowledged: bool | None = None, townships=None, limit: int | None = 1000, state: str | None = None,
                  borrowers_of=None) -> list[dict]:
    """Stored warnings, newest as-of date and most severe first, each with its subject's display id and
    township and its evidence and notes decoded. ``since`` filters on the as-of date; ``townships`` (an
    evaluator's) keeps subjects in those townships only; ``borrowers_of`` (a bank's key ids) its borrowers."""
    w, s = warnings.c, subjects.c
    q = select(warnings, s.display_id, s.township_code, s.village_code).join(
        subjects, s.subject_key == w.subject_key)
    if state:
        q = q.where(w.state == _checked(state, register_config()["states"], "state"))
    if borrowers_of is not None:
        q = q.where(w.subject_key.in_(borrowers(borrowers_of)))
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
        return [_decoded(r) for r in conn.execute(q).mappings()]


def _decoded(row) -> dict:
    return {**row, "evidence": json.loads(row["evidence"]), "notes": json.loads(row["notes"] or "[]")}


def _checked(value: str, allowed, field: str) -> str:
    if value not in allowed:
        raise CreditgradeError(f"{field}: {value!r} is not one of {', '.join(allowed)} / {field} 取值无效")
    return value


def work(conn, warning_id: int, by: str, *, state: str | None = None, owner: str | None = None,
         note: str | None = None, outcome: str | None = None) -> tuple[dict, dict]:
    """Work a warning in the register within the caller's transaction: move its state (along ``[register]
    moves``; closing needs an outcome, and only closing takes one), assign an owner, add a note by ``by``.
    Returns the warning before and after (for the audit)."""
    if not by or not str(by).strip():
        raise CreditgradeError("by: say who works the warning / 请注明处理人")
    conf, w = register_config(), warnings.c
    row = conn.execute(select(warnings).where(w.warning_id == warning_id)).mappings().first()
    if row is None:
        raise CreditgradeError(f"warning_id: no warning {warning_id} / 预警不存在")
    before, values = _decoded(row), {}
    if state is not None and state != before["state"]:
        _checked(state, conf["moves"][before["state"]], "state")
        values["state"] = state
    if (outcome is not None) != (values.get("state") == "closed"):
        raise CreditgradeError(f"outcome: closing a warning needs an outcome ({', '.join(conf['outcomes'])}), and only "
                               f"closing takes one / 关闭预警须注明结果，且仅关闭时注明")
    if outcome is not None:
        values["outcome"] = _checked(outcome, conf["outcomes"], "outcome")
    if owner is not None:
        values["owner"] = str(owner).strip()[:100]
        values.setdefault("state", "assigned" if before["state"] == "new" else before["state"])
    if note:
        values["notes"] = json.dumps(before["notes"] + [{"at": dt.datetime.now(dt.timezone.utc).isoformat(),
                                                         "by": str(by).strip(), "text": ids.redact(note)[:2000]}],
                                     ensure_ascii=False)
    if values:
        conn.execute(update(warnings).where(w.warning_id == warning_id)
                     .values(**values, updated_at=dt.datetime.now(dt.timezone.utc)))
    return before, _decoded(conn.execute(select(warnings).where(w.warning_id == warning_id)).mappings().one())


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
