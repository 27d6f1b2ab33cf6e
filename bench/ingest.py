"""Rows ingested per second into SQLite, beside a bare `executemany` of the same rows (the anchor).

    .venv/bin/python bench/ingest.py [--rows 200000]

The anchor inserts already-typed tuples with sqlite3 into the same table shape, with no validation,
hashing, deduplication or quarantine: the floor of what storing those rows costs.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CREDITGRADE_ID_KEY", "bench-key")

from creditgrade.features import ids  # noqa: E402
from creditgrade.features.ingest import ingest_file  # noqa: E402
from creditgrade.features.store import Store  # noqa: E402


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


def anchor(tmp: Path, recs: pd.DataFrame) -> float:
    con = sqlite3.connect(tmp / "anchor.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE records (record_id INTEGER PRIMARY KEY, subject_key TEXT, segment TEXT, source TEXT,"
                " kind TEXT, start_date DATE, end_date DATE, reported_date DATE, amount REAL, doc_ref TEXT,"
                " UNIQUE (source, doc_ref))")
    rows = list(zip(recs.subject_id, recs.segment, recs.source, recs.kind, map(str, recs.start_date),
                    map(str, recs.end_date), map(str, recs.reported_date), recs.amount, recs.doc_ref))
    t0 = time.perf_counter()
    with con:
        con.executemany("INSERT INTO records (subject_key, segment, source, kind, start_date, end_date,"
                        " reported_date, amount, doc_ref) VALUES (?,?,?,?,?,?,?,?,?)", rows)
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        subj_path, rec_path, recs = make_files(tmp, args.rows)
        store = Store(f"sqlite:///{tmp / 'creditgrade.db'}")
        ingest_file(store, subj_path)
        t0 = time.perf_counter()
        report = ingest_file(store, rec_path)
        ours = time.perf_counter() - t0
        assert report.stored == args.rows, report
        t0 = time.perf_counter()
        again = ingest_file(store, rec_path)
        rerun = time.perf_counter() - t0
        assert again.stored == 0
        base = anchor(tmp, recs)
    print(f"rows                      {args.rows:>12,d}")
    print(f"creditgrade ingest        {args.rows / ours:>12,.0f} rows/s  ({ours:.2f} s, read+validate+store)")
    print(f"re-ingest (adds nothing)  {args.rows / rerun:>12,.0f} rows/s  ({rerun:.2f} s)")
    print(f"anchor: bare executemany  {args.rows / base:>12,.0f} rows/s  ({base:.2f} s)")
    print(f"ratio ingest/anchor time  {ours / base:>12.1f}x")


if __name__ == "__main__":
    main()
