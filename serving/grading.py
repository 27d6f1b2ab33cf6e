"""Grading subjects from the store with the segments' champions: one subject on the hot path, many at once
in a batch; every grade given is stored in the ``grades`` history with its model version.

Inputs come through ``features.loader``: one subject is one statement on the request's connection (its
row and its records with their open-objection flags), and its features are built by the per-subject path
``features.online``; a batch loads all its subjects of a segment and date at once (``features.online.many``).
A subject's grade as of a date is cached, keyed by a stamp of its records and objections read with its
row, so a repeated query re-reads only that row (and its records on a miss: two statements);
``CREDITGRADE_GRADE_CACHE=0`` switches the cache off.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from sqlalchemy import insert

from creditgrade.features import freshness, ids, loader, online
from creditgrade.features.build import check_within
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.store import Prepared, Store
from creditgrade.memory import gc_paused
from creditgrade.models import explain, whatif
from creditgrade.models.registry import Loaded
from creditgrade.serving import audit
from creditgrade.serving.auth import Principal, check_subject
from creditgrade.serving.errors import ApiError, bad_input
from creditgrade.serving.schemas import BatchItem, BatchResult, Contribution, Explanation, Grade, GradeRequest
from creditgrade.serving.tables import grades

EARLIEST_AS_OF = dt.date(2000, 1, 1)
INSERT_GRADE = Prepared(insert(grades).returning(grades.c.grade_id),
                        keys=[c.name for c in grades.c if c.name != "grade_id"])  # compiled once
INSERT_GRADES = insert(grades).returning(grades.c.grade_id, grades.c.subject_key)  # a batch's, with their ids:
# by subject, in no order (asking for their order makes SQLite insert one row per statement)
CACHE_ENTRIES = 20_000
RANGE_SECONDS = 60.0



def cache_enabled() -> bool:
    """Whether grades are cached (``CREDITGRADE_GRADE_CACHE``, on unless ``0``)."""
    return os.environ.get("CREDITGRADE_GRADE_CACHE", "1") != "0"


@dataclass(frozen=True)
class Subject:
    key: str
    segment: str
    display: str
    township: str | None
    row: dict = field(default_factory=dict, compare=False, repr=False)  # as stored (profile, cache stamp)


@dataclass
class Graded:
    """A subject's grade as of a date, before it is stored."""

    key: str
    as_of: dt.date
    pd: float
    score: float
    model_grade: str
    grade: str
    override: str | None
    reasons: list[dict]
    disputed_records: list[int]
    freshness: freshness.Freshness
    features: Callable[[], pd.DataFrame] = field(repr=False, compare=False)  # its one-row frame, when asked

    @cached_property
    def X(self) -> pd.DataFrame:
        """The subject's features (one row), built when asked (only explanations need a frame)."""
        return self.features()


def where_of(req) -> dict:
    """Audit fields of a request, the subject keyed as stored when its id is valid."""
    where = dict(segment=req.segment, purpose=getattr(req, "purpose", None),
                 consent_ref=getattr(req, "consent_ref", None))
    try:
        where["subject_key"] = _key(req.segment, req.subject_id)
    except ApiError:
        pass
    return where


class Grader:
    """The champions of all segments over one store."""

    def __init__(self, store: Store, champions: dict[str, Loaded]):
        self.store = store
        self.champions = champions
        for loaded in champions.values():
            if hasattr(loaded.model.estimator, "num_threads"):
                loaded.model.estimator.num_threads = 1  # one row: threads cost more than they save
        self._cache: OrderedDict[tuple, Graded] = OrderedDict()
        self._extents: dict[str, tuple[float, tuple]] = {}
        self._marks: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()
        self.caching = cache_enabled()

    # ------------------------------------------------------------ inputs

    def subject(self, conn, segment: str, subject_id: str) -> Subject:
        """The stored subject of a valid id (422 for a malformed id, 404 for an unknown one)."""
        key = _key(segment, subject_id)
        return _found(segment, self.subjects(conn, [key]).get(key))

    def subject_and_records(self, conn, segment: str, subject_id: str,
                            day: pd.Timestamp) -> tuple[Subject, dict[str, np.ndarray]]:
        """:meth:`subject` and its records reported before ``day`` (``features.loader.subject_and_records``),
        in one statement."""
        row, recs = loader.subject_and_records(conn, _key(segment, subject_id), day.date())
        return _found(segment, row and _subject(row)), recs

    def subjects(self, conn, keys: list[str], stamp: bool | None = None) -> dict[str, Subject]:
        """Stored subjects by key, with their cache stamp if caching (or ``stamp``)."""
        rows = loader.subject_rows(conn, keys, stamp=self.caching if stamp is None else stamp)
        return {r.subject_key: _subject(r._asdict()) for r in rows}

    def watermarks(self, segment: str) -> dict[str, dt.date]:
        """The segment's data watermarks by source, re-read at most every :data:`RANGE_SECONDS`."""
        until, marks = self._marks.get(segment, (0.0, {}))
        if until < time.monotonic():
            marks = freshness.of_store(self.store, segment)
            self._marks[segment] = (time.monotonic() + RANGE_SECONDS, marks)
        return marks

    def extent(self, conn, segment: str) -> tuple[int, dt.date | None]:
        """The segment's number of subjects and earliest reported day, re-read at most every
        :data:`RANGE_SECONDS` (on the caller's connection)."""
        until, found = self._extents.get(segment, (0.0, None))
        if until < time.monotonic():
            found = loader.extent(conn, segment)
            self._extents[segment] = (time.monotonic() + RANGE_SECONDS, found)
        return found

    def as_of(self, segment: str, value: dt.date | None, conn=None) -> pd.Timestamp:
        """The as-of date of :meth:`dated`."""
        return self.dated(segment, value, conn)[0]

    def dated(self, segment: str, value: dt.date | None, conn=None) -> tuple[pd.Timestamp, freshness.Freshness]:
        """The as-of date and what grades as of it stand on (:meth:`fresh`, assessed once here): by default
        the segment's data watermark (``features.freshness``), never today on data that end earlier; a date
        given must not be in the future, before 2000, or past the data (checked on ``conn`` if given, else on
        a connection of its own)."""
        today = dt.date.today()
        try:
            day = value or freshness.default_as_of(self.watermarks(segment), segment)
        except CreditgradeError as exc:
            raise bad_input(str(exc), "as_of") from None
        if day > today:
            raise bad_input(f"as_of {day} is in the future (today is {today})", "as_of")
        if day < EARLIEST_AS_OF:
            raise bad_input(f"as_of {day} is before {EARLIEST_AS_OF}", "as_of")
        try:
            if conn is None:
                with self.store.engine.connect() as own:
                    extent = self.extent(own, segment)
            else:
                extent = self.extent(conn, segment)
            fresh = check_within(segment, pd.Timestamp(day), *extent, self.watermarks(segment))
        except CreditgradeError as exc:
            raise bad_input(str(exc), "as_of") from None
        return pd.Timestamp(day), fresh

    # ------------------------------------------------------------ evaluation

    def evaluate(self, conn, segment: str, subjects: list[Subject], day: pd.Timestamp,
                 fresh: freshness.Freshness | None = None) -> dict[str, Graded]:
        """Grades of the ``subjects`` (rows as looked up) that existed on ``day``, by key: their records in one
        load, their features from arrays (``features.online.many``), one walk for all; ``fresh``: the day's
        :meth:`fresh` if the caller has it (:meth:`dated`)."""
        rows = [s.row for s in subjects]
        rows = [row for row, there in zip(rows, online.exist(rows, segment, day)) if there]
        if not rows:
            return {}
        recs = loader.many_records(conn, [row["subject_key"] for row in rows], day.date())
        columns = online.many(rows, recs, segment, day)
        disputed = online.many_disputed(rows, recs, segment, day, columns) if recs["disputed"].any() else {}
        X = pd.DataFrame(columns, index=pd.Index([row["subject_key"] for row in rows], name="subject_key"))
        return self._graded(segment, X, disputed, day, fresh or self.fresh(segment, day))

    def evaluate_subject(self, conn, subject: Subject, day: pd.Timestamp, recs: dict[str, np.ndarray] | None = None,
                         fresh: freshness.Freshness | None = None) -> Graded | None:
        """One subject's grade as of ``day`` by the per-subject path, without a frame (None if it did not
        exist yet); ``recs``: its records before ``day`` if the caller loaded them with its row; ``fresh`` as
        :meth:`evaluate` takes it."""
        if not online.exists(subject.row, subject.segment, day):
            return None
        if recs is None:
            recs = loader.subject_records(conn, subject.key, day.date())
        columns = online.features(subject.row, recs, subject.segment, day)
        disputed = online.disputed(subject.row, recs, subject.segment, day, columns) if recs["disputed"].any() else []
        model = self.champions[subject.segment].model
        out, why = explain.explain_row(model, subject.key, columns, online.table(columns, model.features),
                                       disputed=disputed)  # one walk
        return Graded(subject.key, day.date(), out["pd"], out["score"], out["model_grade"], out["grade"],
                      _feature(out["override"]), why, [r for r, _ in disputed],
                      fresh or self.fresh(subject.segment, day), lambda: online.frame(columns, subject.key))

    def fresh(self, segment: str, day: pd.Timestamp) -> freshness.Freshness:
        """What grades of ``segment`` as of ``day`` stand on (``features.freshness.assess``)."""
        return freshness.assess(self.watermarks(segment), segment, day.date())

    def _graded(self, segment: str, X: pd.DataFrame, disputed: dict, day: pd.Timestamp,
                fresh: freshness.Freshness) -> dict[str, Graded]:
        out, why = explain.explain(self.champions[segment].model, X, disputed=disputed)  # one walk
        pd_, score, model_grade, grade, rule = (out[c].tolist() for c in ("pd", "score", "model_grade", "grade",
                                                                           "override"))
        return {key: Graded(key, day.date(), pd_[i], score[i], model_grade[i], grade[i], _feature(rule[i]), why[i],
                            [r for r, _ in disputed.get(key, ())], fresh, lambda i=i: X.iloc[[i]])
                for i, key in enumerate(X.index.tolist())}

    def evaluate_one(self, conn, subject: Subject, day: pd.Timestamp, recs: dict[str, np.ndarray] | None = None,
                     fresh: freshness.Freshness | None = None) -> Graded:
        """One subject's grade as of ``day``, from the cache when its stamp (read with its row) is unchanged;
        ``recs`` and ``fresh`` as :meth:`evaluate_subject` takes them."""
        if not self.caching:
            return self._evaluate_existing(conn, subject, day, recs, fresh)
        if "stamp_0" not in subject.row:
            subject = self.subjects(conn, [subject.key], stamp=True)[subject.key]
        stamp = tuple(subject.row[f"stamp_{i}"] for i in range(len(loader.STAMP_COLUMNS)))
        cache_key = (subject.key, day, stamp, tuple(self.watermarks(subject.segment).items()))
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit is not None:
                self._cache.move_to_end(cache_key)
                return hit
        graded = self._evaluate_existing(conn, subject, day, fresh=fresh)
        with self._lock:
            self._cache[cache_key] = graded
            if len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return graded

    def _evaluate_existing(self, conn, subject: Subject, day: pd.Timestamp,
                           recs: dict[str, np.ndarray] | None = None,
                           fresh: freshness.Freshness | None = None) -> Graded:
        graded = self.evaluate_subject(conn, subject, day, recs, fresh)
        if graded is None:
            raise bad_input(f"as_of: the subject did not exist yet on {day.date()}", "as_of")
        return graded

    # ------------------------------------------------------------ storing and answering

    def _row(self, subject: Subject, g: Graded, origin: str, now: dt.datetime | None = None) -> dict:
        loaded = self.champions[subject.segment]
        return dict(subject_key=subject.key, segment=subject.segment, as_of=g.as_of,
                    graded_at=now or dt.datetime.now(dt.timezone.utc), pd=g.pd, score=g.score, grade=g.grade,
                    model_grade=g.model_grade, override=g.override, model_name=loaded.name,
                    model_version=loaded.version, disputed=bool(g.disputed_records),
                    reasons=json.dumps([r["feature"] for r in g.reasons]), origin=origin, stale=g.freshness.stale,
                    data_as_of=json.dumps({s: d.isoformat() for s, d in g.freshness.data_as_of.items()}))

    def answer(self, subject: Subject, g: Graded, row: dict, grade_id: int) -> Grade:
        return Grade(subject=subject.display, segment=subject.segment, as_of=g.as_of, grade=g.grade,
                     model_grade=g.model_grade, score=g.score, pd=g.pd, override=g.override, reasons=g.reasons,
                     disputed=row["disputed"], disputed_records=g.disputed_records,
                     model={"name": row["model_name"], "version": row["model_version"]}, grade_id=grade_id,
                     graded_at=row["graded_at"], data_as_of=g.freshness.data_as_of, stale=g.freshness.stale,
                     stale_sources=list(g.freshness.stale_sources))

    def store_grade(self, conn, subject: Subject, g: Graded, origin: str) -> Grade:
        row = self._row(subject, g, origin)
        cursor = INSERT_GRADE.run(conn, row)
        grade_id = cursor.fetchone()[0]
        cursor.close()
        return self.answer(subject, g, row, grade_id)

    def grade(self, principal: Principal, req: GradeRequest, action: str = "grade", origin: str = "api",
              role_checked: bool = False) -> tuple[Grade, Graded]:
        """Grade one subject for ``principal``: check, evaluate, store the grade and its audit entry, on one
        connection. Uncached, the subject and its records are one statement. ``role_checked``: the caller
        (the API's gate) already checked that the role may ``action``. Refusals keep their order: a malformed
        id (422), an unknown subject (404), a subject out of reach (403), then a bad as-of date (422)."""
        with self.store.engine.begin() as conn:
            try:
                (day, fresh), late = self.dated(req.segment, req.as_of, conn), None
            except ApiError as exc:
                day, fresh, late = None, None, exc
            if self.caching or late:
                subject, recs = self.subject(conn, req.segment, req.subject_id), None
            else:
                subject, recs = self.subject_and_records(conn, req.segment, req.subject_id, day)
            check_subject(principal, action, subject.segment, subject.key, subject.township, req.consent_ref,
                          role_checked=role_checked)
            if late:
                raise late
            g = self.evaluate_one(conn, subject, day, recs, fresh)
            answer = self.store_grade(conn, subject, g, origin)
            audit.write(conn, [audit.entry(principal, action, 200, subject_key=subject.key, segment=subject.segment,
                                           purpose=req.purpose, consent_ref=req.consent_ref,
                                           detail=f"grade {g.grade} as of {g.as_of} by {answer.model.name} "
                                                  f"v{answer.model.version}")])
        return answer, g

    def grade_batch(self, principals: dict, items: list[BatchItem]) -> list[BatchResult]:
        """Grade many subjects, each item checked for its own caller (``principals`` by key id; an item
        without one is refused); one result per item, in order."""
        results: list[BatchResult | None] = [None] * len(items)
        todo: dict[tuple[str, pd.Timestamp], list[tuple[int, Subject]]] = {}
        days: dict[tuple[str, dt.date | None], tuple[pd.Timestamp, freshness.Freshness]] = {}
        entries = []
        now = dt.datetime.now(dt.timezone.utc)
        with gc_paused(), self.store.engine.begin() as conn:  # rows, records, grades, reasons: kept to the end
            valid = {}
            for i, item in enumerate(items):
                if principals.get(item.key_id) is None:
                    results[i] = BatchResult(status=401, error="batch item without an authenticated key",
                                             field="Authorization")
                    continue
                try:
                    valid[i] = _key(item.segment, item.subject_id)
                except ApiError as exc:
                    results[i] = self._refuse(principals[item.key_id], item, exc, entries)
            known = self.subjects(conn, sorted(set(valid.values())), stamp=False) if valid else {}
            for i, key in valid.items():
                item = items[i]
                try:
                    subject = known.get(key)
                    if subject is None or subject.segment != item.segment:
                        raise ApiError(404, f"subject_id: no {item.segment} subject with that id", "subject_id")
                    check_subject(principals[item.key_id], "grade_batch", subject.segment, subject.key,
                                  subject.township, item.consent_ref)
                    if (item.segment, item.as_of) not in days:  # checked once per segment and date asked
                        days[item.segment, item.as_of] = self.dated(item.segment, item.as_of, conn)
                    todo.setdefault((item.segment, days[item.segment, item.as_of][0]), []).append((i, subject))
                except ApiError as exc:
                    results[i] = self._refuse(principals[item.key_id], item, exc, entries)
            fresh = {(segment, day): f for (segment, _), (day, f) in days.items()}
            for (segment, day), members in todo.items():  # one load per segment and date
                graded = self.evaluate(conn, segment, list({s.key: s for _, s in members}.values()), day,
                                       fresh[segment, day])
                done = []
                for i, subject in members:
                    g = graded.get(subject.key)
                    if g is None:
                        results[i] = self._refuse(principals[items[i].key_id], items[i], bad_input(
                            f"as_of: the subject did not exist yet on {day.date()}", "as_of"), entries)
                        continue
                    done.append((i, subject, g, self._row(subject, g, "batch", now)))
                grade_ids: dict[str, list[int]] = {}  # a subject asked twice has two equal rows: either id fits
                for grade_id, key in conn.execute(INSERT_GRADES, [row for *_, row in done]) if done else ():
                    grade_ids.setdefault(key, []).append(grade_id)
                for i, subject, g, row in done:
                    results[i] = BatchResult(status=200,
                                             result=self.answer(subject, g, row, grade_ids[subject.key].pop()))
                    entries.append(audit.entry(principals[items[i].key_id], "grade_batch", 200,
                                               subject_key=subject.key, segment=segment, purpose=items[i].purpose,
                                               consent_ref=items[i].consent_ref, detail=f"grade {g.grade}"))
            audit.write(conn, entries)
        return results

    def explain(self, principal: Principal, req: GradeRequest, role_checked: bool = False) -> Explanation:
        """The grade with every feature's contribution and what would change the grade (``role_checked`` as
        :meth:`grade` takes it)."""
        answer, g = self.grade(principal, req, action="explain", role_checked=role_checked)
        model = self.champions[req.segment].model
        contrib = explain.contributions(model, g.X).iloc[0]
        rows = [Contribution(feature=f, value=_value(g.X, f), reference=model.reference.get(f),
                             contribution=float(contrib[f])) for f in model.features]
        return Explanation(grade=answer, unit=model.unit,
                           bias=float(contrib["bias"]), contributions=rows,
                           what_would_change=jsonable(whatif.what_would_change(model, g.X, max_changes=3)))

    @staticmethod
    def _refuse(principal: Principal, item: BatchItem, error: ApiError, entries: list) -> BatchResult:
        entries.append(audit.refusal(principal, "grade_batch", error, **where_of(item)))
        return BatchResult(status=error.status, error=error.message, field=error.field)


def _key(segment: str, subject_id: str) -> str:
    """The stored key of a subject id (422 for a malformed one)."""
    try:
        return ids.subject_key(segment, ids.validate_subject_id(segment, subject_id))
    except ValueError as exc:
        raise bad_input(str(exc), "subject_id") from None


def _subject(row: dict) -> Subject:
    return Subject(row["subject_key"], row["segment"], row["display_id"], row["township_code"], row)


def _found(segment: str, subject: Subject | None) -> Subject:
    """The subject looked up for ``segment`` (404 if none, 422 if of another segment)."""
    if subject is None:
        raise ApiError(404, f"subject_id: no {segment} subject with that id", "subject_id")
    if subject.segment != segment:
        raise bad_input(f"segment: the subject is a {subject.segment}, not a {segment}", "segment")
    return subject


def _feature(rule) -> str | None:
    """The feature of a binding policy rule (None if none binds)."""
    return None if rule is None else rule.feature


def _value(X: pd.DataFrame, feature: str):
    v = X[feature].iloc[0]
    return None if pd.isna(v) else (str(v) if isinstance(X[feature].dtype, pd.CategoricalDtype) else float(v))


def jsonable(value):
    """Numbers and containers from numpy/pandas as plain JSON values (NaN as None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.isoformat()
    return value
