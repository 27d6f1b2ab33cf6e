"""Data freshness: per segment and source, the last month the store holds data for (its watermark).

A source's watermark is the last day of the month of its latest ``reported_date``; ingestion advances it
in the file's own transaction (:func:`advance`), and a store ingested before watermarks existed has them
rebuilt from its records on first read. A grade as of a date says which data it used (``data_as_of``, the
watermark of each source, never past the date) and whether any of it is stale; a date past a required
source's watermark by more than the configured days is refused, never graded silently
(``[freshness]`` in ``features/sources.toml``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import case, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from creditgrade.features.errors import CreditgradeError
from creditgrade.features.frames import Frames
from creditgrade.features.schemas import SEGMENTS, contract
from creditgrade.features.store import Store, records, watermarks


def config() -> dict:
    return contract()["freshness"]


def month_end(day: dt.date) -> dt.date:
    following = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return following - dt.timedelta(days=1)


def advance(conn, latest: dict[tuple[str, str], dt.date]) -> None:
    """Move the watermarks of ``(segment, source)`` forward to the month of ``latest`` reported days
    (never back), within the caller's transaction."""
    if not latest:
        return
    now = dt.datetime.now(dt.timezone.utc)
    rows = [dict(segment=seg, source=src, through=month_end(day), updated_at=now)
            for (seg, src), day in sorted(latest.items())]
    maker = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[conn.dialect.name]
    stmt = maker(watermarks)
    later = stmt.excluded.through > watermarks.c.through
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["segment", "source"],
        set_={"through": case((later, stmt.excluded.through), else_=watermarks.c.through),
              "updated_at": case((later, stmt.excluded.updated_at), else_=watermarks.c.updated_at)}), rows)


def _latest_reported(conn, segment: str) -> dict[tuple[str, str], dt.date]:
    query = select(records.c.source, func.max(records.c.reported_date)).where(
        records.c.segment == segment).group_by(records.c.source)
    return {(segment, src): day for src, day in conn.execute(query)}


def of_store(store: Store, segment: str) -> dict[str, dt.date]:
    """The segment's watermarks by source (rebuilt from the records if the store has none yet)."""
    query = select(watermarks.c.source, watermarks.c.through).where(watermarks.c.segment == segment)
    with store.engine.connect() as conn:
        found = dict(conn.execute(query).all())
    if not found:  # a store ingested before watermarks existed
        with store.engine.begin() as conn:
            advance(conn, _latest_reported(conn, segment))
            found = dict(conn.execute(query).all())
    return dict(sorted(found.items()))


def of_frames(frames: Frames, segment: str) -> dict[str, dt.date]:
    recs = frames.records[frames.records["segment"] == segment]
    latest = recs.groupby("source", observed=True)["reported_date"].max()
    return {str(src): month_end(pd.Timestamp(day).date()) for src, day in sorted(latest.items())}


def watermarks_of(source, segment: str) -> dict[str, dt.date]:
    """Watermarks of a :class:`Store` or in-memory :class:`Frames`."""
    return of_frames(source, segment) if isinstance(source, Frames) else of_store(source, segment)


def table(store: Store) -> pd.DataFrame:
    """Every segment's watermarks: one row per segment, one column per source (for ``summary``)."""
    for segment in SEGMENTS:
        of_store(store, segment)  # rebuilds them for a store ingested before watermarks existed
    with store.engine.connect() as conn:
        rows = conn.execute(select(watermarks.c.segment, watermarks.c.source, watermarks.c.through)).all()
    frame = pd.DataFrame(rows, columns=["segment", "source", "through"])
    return frame.pivot(index="segment", columns="source", values="through") if len(frame) else frame


@dataclass(frozen=True)
class Freshness:
    """What a grade as of ``as_of`` stands on: each source's watermark (capped at the date) and staleness."""

    as_of: dt.date
    data_as_of: dict[str, dt.date]
    stale_sources: tuple[str, ...]

    @property
    def stale(self) -> bool:
        return bool(self.stale_sources)


def default_as_of(marks: dict[str, dt.date], segment: str) -> dt.date:
    """The date a grade without ``as_of`` is given at: the earliest watermark among the segment's
    required sources (every required source reaches it); the latest watermark if none is required."""
    required = [marks[s] for s in config()["required"].get(segment, []) if s in marks]
    if required:
        return min(required)
    if not marks:
        raise CreditgradeError(f"no {segment} records in the store: ingest them first")
    return max(marks.values())


def assess(marks: dict[str, dt.date], segment: str, as_of: dt.date) -> Freshness:
    """The freshness of a grade as of ``as_of``; a date past a required source's watermark by more than
    ``refuse_after_days`` raises :class:`CreditgradeError` naming the source and its watermark. A required
    source the store holds nothing of makes the grade stale (a thin file is graded, never refused)."""
    conf = config()
    required = conf["required"].get(segment, [])
    for source, through in marks.items():
        if source in required and (as_of - through).days > conf["refuse_after_days"]:
            raise CreditgradeError(
                f"as_of {as_of} is past the {source} data's watermark {through} by more than "
                f"{conf['refuse_after_days']} days: grade as of {through} or ingest newer {source} records / "
                f"基准日超出 {source} 数据截至日 {through} 逾 {conf['refuse_after_days']} 天")
    stale = tuple(s for s, through in marks.items() if (as_of - through).days > conf["stale_after_days"])
    stale += tuple(s for s in required if s not in marks)  # a required source with no data at all
    return Freshness(as_of, {s: min(through, as_of) for s, through in marks.items()}, stale)
