"""Rows ingested per second, beside a bare bulk insert of the same rows in the same run (the anchor).

    .venv/bin/python bench/ingest.py [--rows 1000000] [--no-rerun] [--arrival] [--costs] [--memory 5000000]
    CREDITGRADE_DB_URL=postgresql+psycopg://postgres@127.0.0.1:55450/db .venv/bin/python bench/ingest.py

SQLite (always): ``ingest_file`` of a records Parquet file (read, validate, hash, deduplicate, store) against
a bare ``executemany`` of already-typed tuples, with no validation, hashing, deduplication or quarantine, into
two tables: the minimal table (a unique key only), which is the issue's anchor and the one its goal (0.5x) is
set against, and the store's own records table (its columns, two secondary indexes and foreign keys).
``--costs`` adds the bare insert into the store's table with its secondary indexes dropped before and built
after, and also without its foreign keys (SQLite: not enforced, then ``PRAGMA foreign_key_check``;
PostgreSQL: dropped, then added again), which is what a large file's ingest does (``features/bulk.py``).
``--arrival`` also times the ingest with the warnings raised on arrival (the command line's hook, which keeps
the index by subject while the file goes in). ``--memory N`` measures the peak resident memory of
``creditgrade ingest`` (a child process, SQLite) for files of N / 5 and N records.
PostgreSQL (when ``CREDITGRADE_DB_URL`` names one): the same ingest into a database made for the run beside
the one named (dropped at the end), against a bare ``COPY`` (psycopg's ``cursor.copy``) of the same tuples
into the same tables.

Measured 2026-11-29 15:37-16:01 on a quiet machine (load 0.2-1.9), --rows 1000000, after the ingest pipeline:
SQLite, 5 bench runs: 0.44x / 0.52x / 0.48x / 0.54x / 0.52x the minimal table by wall (median 0.52x; the anchor
330,866-355,012 rows/s, the ingest 154,779-191,384), by the writer's CPU 0.47-0.60x; 1.31-1.71x the store's
own table's bare executemany. PostgreSQL 15, 3 runs: 0.39x / 0.63x / 0.62x the bare COPY into the minimal
table (the first run's anchor 230,384 rows/s, the others 199,675 and about the same; ingest 89,049 then
125,546 rows/s), 1.21x / 1.68x / 2.00x the bare COPY into the store's table.

Measured 2026-11-29 15:10-15:15, LOADED (load 3-4 on 2 cores), --rows 1000000 --no-rerun, after the ingest
pipeline (``features/ingest.py``: a worker thread reads, checks and makes the values of the next chunk while
the current one is written) and SQLite's 100-row INSERT statements. "writer" is the CPU of the thread that
writes, the ingest's critical path once a core is free for the worker; wall time tends to it on a quiet
machine, which a load of 3-4 is not (the process's CPU about equalled its wall time: no core to overlap on).
- SQLite, two bench runs: ingest 162,565 / 154,565 rows/s (6.15 / 6.47 s wall, 5.76 / 6.01 s CPU, writer 4.39 /
  4.41 s) against the minimal table's 335,992 / 236,937 rows/s: 0.48x / 0.65x by wall (the anchor's own
  variance again), by the writer's CPU 0.62x / 0.90x; 1.66x the store's own table's bare executemany.
- SQLite, 3 interleaved rounds (each its own process) of the code before this change, the pipeline, and the
  anchor: before 0.39x by wall and CPU; the pipeline 0.41x by wall (one round at 9.2 s, the others 6.2-6.5 s
  against the anchor's 3.0 s), 0.55x by the writer's CPU; the pipeline's process CPU 5.7-5.9 s against 6.3-7.8
  s before (multi-row statements: executemany 2.0-2.2 s of CPU per million rows against 3.5-3.7 s). Two more
  rounds at load 3.4: before 0.42x, the pipeline 0.47x by wall (6.37-6.38 s against 2.96-2.98 s), 0.61x by
  the writer's CPU (4.47-4.59 s).
- PostgreSQL, two bench runs: ingest 92,039 / 109,411 rows/s (10.87 / 9.14 s wall, 2.27 / 1.92 s client CPU,
  writer 1.00 / 0.87 s) against the bare COPY into the minimal table's 143,453 / 170,590 rows/s: 0.64x / 0.64x
  (0.48x quiet before the pipeline); 1.74x / 1.83x the bare COPY into the store's table. Interleaved at load
  7-8 (3 rounds): before 0.53x, the pipeline 0.58x.
- Peak memory (--memory 5000000, ``creditgrade ingest`` with the warnings hook): 447 MB for 1M records, 506
  MB for 5M (389 and 446 MB before, loaded too); the in-process ingest alone, 1M records: 402-418 MB against
  378-381 MB before, in alternate runs: the second chunk in flight (its rows as Python values) costs 25-40 MB.
- cProfile of 200,000 rows, by thread: the writer 0.97 s CPU, of it executemany 0.43 s, the index builds 0.22
  s, the commit 0.14 s, Python 0.18 s (no loop per row: Arrow's and NumPy's calls); the worker 0.47 s
  (values 0.13 s, column checks 0.21 s, the repeat check 0.08 s).

Measured 2026-11-29 13:00 on a quiet machine (load 1-1.5), after the bulk path's changes:
- SQLite, three runs: ingest 131,466 / 140,746 / 117,157 rows/s; the minimal table's bare executemany
  344,034 / 229,779 / 341,379 rows/s (the anchor itself varies by 1.5x between runs): 0.38x / 0.61x / 0.34x,
  typically 0.34-0.38x; 1.09-1.30x the store's own table's bare executemany; with warnings on arrival
  85,884 rows/s (0.25x); re-ingest 61,707-77,042 rows/s.
- PostgreSQL (--costs): ingest 77,047 rows/s (12.98 s wall, 3.06 s client CPU), 0.48x the bare COPY into
  the minimal table (162,158 rows/s), 1.20x the bare COPY into the store's table; the store's table with its
  indexes rebuilt and its keys added after: 131,995 rows/s. Re-ingest 70,735 rows/s (0.44x).

Measured 2026-11-29, --rows 1000000 --arrival --costs, LOADED (load 6-11 on 2 cores; PostgreSQL 15 with its
defaults), with a large file going in without the store's secondary indexes and foreign keys:
- SQLite, 3 interleaved rounds of ingest, bare executemany into the minimal table and into the store's
  table without indexes (rebuilt) and keys: ingest 0.38x the minimal table's by CPU (23.4 s against 8.8 s),
  0.36x by wall; the store's table itself, at its cheapest (indexes rebuilt, keys unchecked), costs 1.6x the
  minimal table (14.0 s CPU), so 0.5x is out of reach with the indexes the store needs. Where the time goes,
  per 1M rows (CPU): the minimal insert 2.8-3.2 s; the store's wider rows with the same keys +0.3-0.7
  s; foreign keys checked per row +0.35-0.8 s (unchecked for a large file now: 9 % less ingest CPU in
  an A/B of 4 rounds); the two secondary indexes 5-6 s kept, 1.4-2.3 s rebuilt; the ingest's Python
  (reading 0.4 s, column checks 1.6 s, Arrow to tuples 1.0 s whichever way (to_pylist, NumPy), subject keys,
  duplicate checks and look-ups about 1.5 s). Rows sorted by (source, doc_ref) first: 0.2 s less of 7.7
  (noise at 1M rows, where the unique index fits the page cache); chunks of 100,000 rows instead of 20,000:
  no faster (9.3 s); pages of 16 KB instead of 4 KB (a new store): 14 % less CPU, 42 % more wall in 2
  rounds, not taken. The single bench run (load 10) had the ingest at 6.95 s CPU against the minimal
  table's 4.44 s (0.64x by CPU, 0.83x by wall), with warnings on arrival 9.93 s, re-ingest 12.75 s: one
  run is noise at this load, the interleaved rounds are the figure.
- Peak memory (--memory 5000000, SQLite): 389 MB for 1M records, 446 MB for 5M (414 and 471 MB before).
- Both secondary indexes are needed: ix_records_subject serves a subject's records (grading, the loader's key
  ranges, the warnings hook) and ix_records_segment_reported a segment's records by date (the extent of a
  segment, the watermarks' rebuild, ``records_query`` of a segment).
- PostgreSQL: ingest 41,158 rows/s, 0.41x the bare COPY into the minimal table (24.3 s against 9.85 s wall),
  1.68x the bare COPY into the store's table with its indexes and keys (40.9 s); re-ingest 50,243 rows/s.
  Per 1M rows: the store's table with indexes and keys 40.9 s, indexes rebuilt 32.8 s, indexes rebuilt and
  keys added after 16.6 s (the foreign keys' per-row triggers were the largest cost). In the ingest (500,000
  rows, statement log): the COPYs 8.3 s per 1M rows (the minimal table's bare COPY's cost), the two index
  builds 2.2 s, the keys' checks 0.55 s, and 2.3 s of client CPU (reading, checks, CSV) that the server waits
  for. Before (the same load): 40.6 s, 0.38x.

Measured 2026-11-29 on a quiet machine (load 1-2), --rows 1000000 --arrival, BEFORE the change above:
- SQLite: ingest 108,656 and 88,612 rows/s in two runs, 0.32x and 0.27x the minimal table's bare executemany
  (1.14x and 0.83x the store's table's); re-ingest 62,959 rows/s (0.19x); with warnings on arrival 77,819
  rows/s (0.23x; 1.40x the plain ingest's time).
- PostgreSQL: ingest 36,559 rows/s, 0.25x the bare COPY into the minimal table, 0.55x into the store's table
  (27.4 s wall on 3.2 s of client CPU: the server's work on the store's table); re-ingest 69,528 rows/s.
  Binary COPY (pgpq) was no faster than CSV COPY into the store's table (9.2 s against 8.6 s for 200,000
  rows, loaded).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.schema import CreateIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CREDITGRADE_ID_KEY", "bench-key")

from creditgrade.features import ids  # noqa: E402
from creditgrade.features.ingest import ingest_file  # noqa: E402
from creditgrade.features.schemas import contract  # noqa: E402
from creditgrade.features.store import Store, records  # noqa: E402

COLUMNS = "subject_key, segment, source, kind, start_date, end_date, reported_date, amount, doc_ref, batch_id"
MINIMAL = ("CREATE TABLE anchor (record_id {serial} PRIMARY KEY, subject_key TEXT, segment TEXT, source TEXT,"
           " kind TEXT, start_date DATE, end_date DATE, reported_date DATE, amount REAL, doc_ref TEXT,"
           " batch_id INTEGER, UNIQUE (source, doc_ref))")


class Clock:
    """Wall and CPU seconds since it was made: this process's (which runs SQLite) and this thread's (the
    ingest's writer, its critical path on a free core: a worker thread prepares the next chunk meanwhile)."""

    def __init__(self):
        self.wall, self.cpu, self.thread = time.perf_counter(), time.process_time(), time.thread_time()

    def stop(self) -> tuple[float, float, float]:
        return (time.perf_counter() - self.wall, time.process_time() - self.cpu,
                time.thread_time() - self.thread)


def make_files(tmp: Path, n_rows: int) -> tuple[Path, Path, pd.DataFrame]:
    n_subjects = max(1, n_rows // 200)
    codes = [ids.make_uscc(f"91350102MA{i:07d}") for i in range(n_subjects)]
    subj = pd.DataFrame(dict(segment="sme", subject_id=codes, name="Firm", district="350102",
                             sector="manufacturing", size="small", founded=dt.date(2015, 1, 1)))
    i = pd.RangeIndex(n_rows)
    start = pd.Timestamp("2019-01-01") + pd.to_timedelta((i % 2000).to_numpy(), unit="D")
    recs = pd.DataFrame(dict(
        segment="sme", subject_id=[codes[k % n_subjects] for k in range(n_rows)], source="tax",
        kind="tax.payment", start_date=start.date, end_date=(start + pd.Timedelta(days=89)).date,
        reported_date=(start + pd.Timedelta(days=100)).date, amount=(i % 997).to_numpy() * 10.0,
        doc_ref=[f"TAXPAY-{k}" for k in range(n_rows)]))
    subj_path, rec_path = tmp / "subjects.parquet", tmp / "records.parquet"
    subj.to_parquet(subj_path)
    recs.to_parquet(rec_path)
    return subj_path, rec_path, recs


def typed_rows(recs: pd.DataFrame, batch_id: int, as_text: bool) -> list[tuple]:
    dates = [recs[c].map(str) if as_text else recs[c] for c in ("start_date", "end_date", "reported_date")]
    return list(zip(recs.subject_id, recs.segment, recs.source, recs.kind, *dates, recs.amount, recs.doc_ref,
                    [batch_id] * len(recs)))


SECONDARY = [ix for ix in records.indexes if not ix.unique]
COSTS = {"": (), ", indexes rebuilt": ("indexes",),  # --costs: without its secondary indexes (built after),
         ", indexes rebuilt, keys after": ("indexes", "keys")}  # and without its foreign keys (checked after)


def sqlite_anchor(db: Path, recs: pd.DataFrame, table: str, batch_id: int, without=()) -> tuple[float, float, float]:
    """Seconds for one bare executemany of the rows into ``table`` (made with MINIMAL when 'anchor'), with
    the page cache ingestion uses; ``without`` 'indexes': the secondary indexes dropped before and built
    after, 'keys': foreign keys off (then checked by ``PRAGMA foreign_key_check``)."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(f"PRAGMA foreign_keys={'OFF' if 'keys' in without else 'ON'}")
    con.execute(f"PRAGMA cache_size = -{contract()['files']['sqlite_cache_mb'] * 1024}")  # the ingest's cache
    if table == "anchor":
        con.execute(MINIMAL.format(serial="INTEGER"))
    rows = typed_rows(recs, batch_id, as_text=True)
    clock = Clock()
    with con:
        for index in SECONDARY if "indexes" in without else ():
            con.execute(f"DROP INDEX {index.name}")
        con.executemany(f"INSERT INTO {table} ({COLUMNS}) VALUES ({', '.join('?' * 10)})", rows)
        for index in SECONDARY if "indexes" in without else ():
            con.execute(str(CreateIndex(index).compile(dialect=sqlite_dialect())))
        assert "keys" not in without or not con.execute(f"PRAGMA foreign_key_check({table})").fetchall()
    elapsed = clock.stop()
    con.close()
    return elapsed


def timed_ingest(store: Store, path: Path, rerun: bool, on_records=None,
                 what: str = "creditgrade ingest") -> dict[str, tuple[float, float, float]]:
    """Seconds to ingest ``path`` and, if ``rerun``, to ingest it again (which adds nothing)."""
    clock = Clock()
    report = ingest_file(store, path, on_records=on_records)
    seconds = {what: clock.stop()}
    assert report.stored == report.read and not report.quarantined, report
    if rerun:
        clock = Clock()
        again = ingest_file(store, path)
        seconds["re-ingest (adds nothing)"] = clock.stop()
        assert again.stored == 0 and again.duplicates == report.read, again
    return seconds


def bench_sqlite(tmp: Path, subj_path: Path, rec_path: Path, recs: pd.DataFrame, rerun: bool,
                 arrival: bool, costs: bool) -> dict[str, tuple[float, float, float]]:
    store = Store(f"sqlite:///{tmp / 'creditgrade.db'}")
    ingest_file(store, subj_path)
    seconds = timed_ingest(store, rec_path, rerun)
    store.dispose()
    if arrival:
        from creditgrade.serving.tables import open_store
        from creditgrade.serving.warnings import raise_on_arrival
        store = open_store(f"sqlite:///{tmp / 'arrival.db'}")
        ingest_file(store, subj_path)
        seconds |= timed_ingest(store, rec_path, False, raise_on_arrival, "ingest, warnings on arrival")
        store.dispose()
    seconds["bare executemany, minimal table"] = sqlite_anchor(tmp / "anchor.db", recs, "anchor", 1)
    for n, (label, without) in enumerate(list(COSTS.items())[:3 if costs else 1]):
        empty = Store(f"sqlite:///{tmp / f'bare{n}.db'}")  # the store's tables, holding the subjects only
        ingest_file(empty, subj_path)
        empty.dispose()
        seconds[f"bare executemany, store's table{label}"] = sqlite_anchor(tmp / f"bare{n}.db", recs, "records", 1,
                                                                           without)
    return seconds


def bare_copy(store: Store, table: str, rows: list[tuple], without=()) -> tuple[float, float, float]:
    """Seconds for one bare COPY of the rows into ``table``; ``without`` 'indexes': the secondary indexes
    dropped before and built after, 'keys': the foreign keys dropped before and added (checked) after."""
    with store.engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()
        keys = cur.execute(f"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                           f"'{table}'::regclass AND contype = 'f'").fetchall() if "keys" in without else []
        indexes = SECONDARY if "indexes" in without else []
        clock = Clock()
        for name, _ in keys:
            cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for index in indexes:
            cur.execute(f"DROP INDEX {index.name}")
        with cur.copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if indexes:
            cur.execute(f"SET LOCAL maintenance_work_mem = "
                        f"'{contract()['files']['postgresql_maintenance_work_mem_mb']}MB'")  # the ingest's
        for index in indexes:
            cur.execute(str(CreateIndex(index).compile(dialect=conn.dialect)))
        for name, definition in keys:
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    return clock.stop()


def bench_postgresql(url: str, subj_path: Path, rec_path: Path, recs: pd.DataFrame,
                     rerun: bool, costs: bool) -> dict[str, tuple[float, float, float]]:
    server = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    variants = list(COSTS.items())[:3 if costs else 1]
    names = [f"creditgrade_bench_{uuid.uuid4().hex[:8]}" for _ in range(1 + len(variants))]
    stores = []
    try:
        for name in names:
            with server.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            stores.append(Store(make_url(url).set(database=name).render_as_string(hide_password=False)))
            ingest_file(stores[-1], subj_path)
        seconds = timed_ingest(stores[0], rec_path, rerun)
        with stores[0].engine.begin() as conn:
            conn.execute(text(MINIMAL.format(serial="SERIAL")))
        rows = typed_rows(recs, None, as_text=False)
        seconds["bare COPY, minimal table"] = bare_copy(stores[0], "anchor", rows)
        for store, (label, without) in zip(stores[1:], variants):  # holding the subjects only
            seconds[f"bare COPY, store's table{label}"] = bare_copy(store, "records", rows, without)
    finally:
        for store in stores:
            store.dispose()
        with server.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
    return seconds


def peak_memory(tmp: Path, n_rows: int) -> int:
    """Peak resident MB of ``creditgrade ingest`` (subjects, then ``n_rows`` records) into a new SQLite store."""
    tmp = tmp / f"memory_{n_rows}"
    tmp.mkdir()
    subj_path, rec_path, _ = make_files(tmp, n_rows)
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
               "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")
    db = tmp / "memory.db"
    out = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "creditgrade.cli", "ingest",
                          str(subj_path), str(rec_path)], capture_output=True, text=True, check=True,
                         env={**os.environ, "CREDITGRADE_DB_URL": f"sqlite:///{db}"})
    code, peak = map(int, out.stdout.split())
    assert code == 0, out.stderr
    shutil.rmtree(tmp)
    return peak


def report(title: str, n: int, seconds: dict[str, tuple[float, float, float]], in_process: bool) -> None:
    """Rows/s and the ratios to the anchors by wall time (the project's rule) and, when the database runs
    in this process (SQLite), by CPU time, which the machine's load does not stretch: the process's (both
    threads of the ingest) and the writing thread's (what wall time tends to with a core free)."""
    print(title)
    for what, (wall, cpu, thread) in seconds.items():
        print(f"  {what:<62}{n / wall:>10,.0f} rows/s  ({wall:.2f} s wall, {cpu:.2f} s CPU, writer {thread:.2f} s)")
    for ours in (w for w in seconds if not w.startswith("bare")):
        for what, (wall, cpu, _) in seconds.items():
            if what.startswith("bare") and "rebuilt" not in what:  # the costs are read beside the anchors
                anchor = " (the issue's anchor)" if "minimal" in what else ""
                by_cpu = (f", by CPU time {cpu / seconds[ours][1]:.2f}x, by the writer's {cpu / seconds[ours][2]:.2f}x"
                          if in_process else "")
                print(f"  {ours} rows/s / {what}{anchor}: {wall / seconds[ours][0]:.2f}x{by_cpu}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--no-rerun", action="store_true", help="skip timing a second ingest of the same file")
    parser.add_argument("--arrival", action="store_true", help="also time the ingest with warnings on arrival")
    parser.add_argument("--memory", type=int, metavar="N", help="peak memory of ingesting N / 5 and N records")
    parser.add_argument("--costs", action="store_true", help="also the bare insert into the store's table "
                        "without its secondary indexes, and without its foreign keys too")
    args = parser.parse_args()
    url = os.environ.get("CREDITGRADE_DB_URL", "")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        subj_path, rec_path, recs = make_files(tmp, args.rows)
        print(f"rows {args.rows:,d}; load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        report("SQLite", args.rows, bench_sqlite(tmp, subj_path, rec_path, recs, not args.no_rerun, args.arrival,
                                                args.costs),
               True)
        if url.startswith("postgresql"):
            report("PostgreSQL", args.rows, bench_postgresql(url, subj_path, rec_path, recs, not args.no_rerun,
                                                    args.costs),
                   False)
        for n in (args.memory // 5, args.memory) if args.memory else ():
            print(f"peak resident memory of `creditgrade ingest`, {n:,d} records (SQLite): {peak_memory(tmp, n)} MB")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
