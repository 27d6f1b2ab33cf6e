"""Benchmark of the synthetic population generator: records generated per second and per minute.

    python bench/generate.py [--smes 20000 --households 10000 --practitioners 5000 --seed 0] [--write DIR]

Anchor: the goal of 5,000,000 records per minute (issue #2), printed beside the measured figure.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from creditgrade.data.sample.generator import generate_tables, write_population  # noqa: E402

GOAL_PER_MINUTE = 5_000_000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smes", type=int, default=20000)
    ap.add_argument("--households", type=int, default=10000)
    ap.add_argument("--practitioners", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="also time writing Parquet to a temporary directory")
    args = ap.parse_args(argv)
    sizes = dict(n_smes=args.smes, n_households=args.households, n_practitioners=args.practitioners, seed=args.seed)
    t0 = time.perf_counter()
    tables = generate_tables(**sizes)
    seconds = time.perf_counter() - t0
    n = tables["records"].num_rows
    per_minute = n / seconds * 60
    print(f"subjects {tables['subjects'].num_rows:,}  records {n:,}  outcome rows {tables['outcomes'].num_rows:,}")
    print(f"generate: {seconds:.1f} s  {n / seconds:,.0f} records/s  {per_minute:,.0f} records/min  "
          f"(goal {GOAL_PER_MINUTE:,}/min, ratio {per_minute / GOAL_PER_MINUTE:.2f}x)")
    if args.write:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_population(tmp, **sizes)
            seconds = time.perf_counter() - t0
        print(f"generate + write Parquet: {seconds:.1f} s  {n / seconds * 60:,.0f} records/min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
