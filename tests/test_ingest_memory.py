"""Issue 19, item 12: ingesting a 1,000,000-row records file stays under a stated memory bound.

The bound, ``PEAK_MB``, is the peak resident memory of the whole ``creditgrade ingest`` process (Python,
pandas, pyarrow, SQLAlchemy and, through the warnings hook, MLflow loaded: 221 MB of it; SQLite's page
cache 96 MB more; 417 MB in all, measured 2026-11-30) for one file of a million records in one transaction.
A module-level scikit-learn import in ``models/estimator.py`` once added 68 MB to every ingest (529 MB).
Rows are read, validated and stored a chunk at a time, so the peak does not grow with the file;
materialising every row as a dict, as ingestion did before, took about 3.5 GB for a million records.
The file is narrow (the columns a tax payment needs) to keep the test's run time down.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from creditgrade.features import ids

ROWS = 1_000_000
PEAK_MB = 500

# runs the command as its only child and prints that child's peak resident memory in MB
MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")


@pytest.mark.slow
def test_a_million_row_file_is_ingested_in_bounded_memory(home, tmp_path):
    """On SQLite whatever the suite's database: the bound is the reader's and validator's (PostgreSQL's bulk
    path is tested on smaller files); a million rows into the CI's PostgreSQL would only cost minutes."""
    codes = [ids.make_uscc(f"91350102MA{i:07d}") for i in range(500)]
    subjects = tmp_path / "subjects.csv"
    pd.DataFrame(dict(segment="sme", subject_id=codes, name="Firm", district="350102", sector="manufacturing",
                      size="small", founded="2015-01-01")).to_csv(subjects, index=False)
    i = np.arange(ROWS)
    start = pd.Timestamp("2019-01-01") + pd.to_timedelta(i % 2000, unit="D")
    records = tmp_path / "records.parquet"
    pd.DataFrame(dict(segment="sme", subject_id=np.array(codes)[i % 500], source="tax", kind="tax.payment",
                      start_date=start.date, reported_date=(start + pd.Timedelta(days=100)).date,
                      amount=(i % 997) * 10.0, doc_ref=[f"T{k}" for k in range(ROWS)])).to_parquet(records)
    cli = [sys.executable, "-m", "creditgrade.cli", "ingest", str(subjects), str(records)]
    env = {**os.environ, "CREDITGRADE_DB_URL": f"sqlite:///{tmp_path / 'memory.db'}"}
    out = subprocess.run([sys.executable, "-c", MEASURE, *cli], capture_output=True, text=True, env=env)
    code, peak_mb = map(int, out.stdout.split()[-2:])
    assert code == 0, out.stderr
    assert f"read={ROWS} stored={ROWS}" in out.stdout
    assert peak_mb < PEAK_MB, f"peak resident memory {peak_mb} MB for {ROWS:,} rows, bound {PEAK_MB} MB"
