"""Scale-out benchmark: features, training and batch grading of SMEs on a Dask LocalCluster with 1 and 2
workers, from an export (``features.export``) of a generated population.

    .venv/bin/python -m bench.scale                    # 200,000 SMEs in partitions of 25,000
    .venv/bin/python -m bench.scale --smes 1000000     # the issue's size (generation alone takes long)

For each worker count: wall time of each phase, peak RSS per worker (the worker process's own peak, VmHWM,
read as each phase ends and printed with it), the speed-up of 2 workers over 1, and a projection to 10 M SMEs from the
measured cost per partition (phase seconds x workers / partitions, times the partitions 10 M would need,
divided by the workers). Population parts are generated once and cached under --workdir (never in git).
The anchor is the same work with 1 worker in the same run.

The population is generated and exported a part at a time, so memory holds one part (100,000 SMEs, about
0.6 GiB per 3,000 generated in a check) whatever --smes; before, all parts were held at once (about 50 GB
at 1 M SMEs).

Check of the batched export end to end, 2026-11-29, LOADED (load 25 on 2 cores; 200,000 would have taken
about 25 min to generate alone), 4,000 SMEs in partitions of 1,000, 64,148 training rows, 1 / 2 workers:
features 13.0 / 10.6 s, training 200.7 / 117.8 s, grading 13.5 / 8.7 s, peak 576 / 450 MiB per worker
(speed-ups 1.23x, 1.70x, 1.56x; partitions this small measure the per-task overhead, not a projection).

Measured 2026-11-29 on a quiet 2-core machine (load 1-2.5), seconds with 1 worker / 2 workers, peak RSS per
worker (the earlier figures of this docstring were measured with an export of in-memory frames that wrote
the records of each batch's first partition only, and are withdrawn):
- 100,000 SMEs, partitions of 25,000, 1,596,357 training rows: features 15.9 / 9.9, training 212.1 / 134.9,
  grading 13.4 / 9.0, 5,643 / 4,172 MiB: speed-ups 1.61x, 1.57x, 1.49x; projected for 10 M SMEs on 2
  workers: features 16 min, training 225 min, grading 15 min.
- 20,000 SMEs, partitions of 5,000, 321,445 training rows: features 3.2 / 2.6, training 43.8 / 32.2,
  grading 4.2 / 2.0, 1,515 / 1,468 MiB: speed-ups 1.21x, 1.36x, 2.10x.
Those figures are from before the training matrix (``training.distributed``): 126 features in float64, held
four times per worker, about 3.7 KB per training row at 100,000 SMEs.

Memory after the training matrix (109 model inputs in float32, each worker's rows held once), LOADED (load
6-13 on 2 cores, others running), 2026-11-29:
- same export (20,000 SMEs, partitions of 5,000, 321,445 rows), 1 worker, the training phase alone
  (``training_set`` + ``fit_lightgbm`` before, ``training_matrix`` + ``fit_lightgbm`` after): peak 1,520 ->
  677 MiB (4.96 -> 2.21 KB per training row; 235 MiB of it is the idle worker); whole bench 1 / 2 workers
  734 / 652 MiB (1,515 / 1,468 quiet before).
- 1,000,000 SMEs, partitions of 25,000 (40), about 15.97 M training rows (the export's 12-month outcomes),
  ``nice -n 5 .venv/bin/python -m bench.scale --smes 1000000``, export cached in
  /tmp/creditgrade-bench/export-sme1000000-s3-p25000 (generated and exported in 2,254 s loaded, 2.1 GB):
  1 worker: features 227.9 s, training 2,634.0 s, grading 174.8 s, peak RSS 10,449 MiB (0.69 KB per
  training row: 1 M SMEs fit 24 GiB with 1 worker; 2 workers hold half the rows each).
- Same export, quiet same-run pair (``.venv/bin/python -m bench.scale --smes 1000000``, 2026-11-29 20:43-21:38,
  load 1.0-2.6, nothing else running), 15,971,786 training rows, 1 / 2 workers: features 142.1 / 71.3 s,
  training 1,885.5 / 1,000.5 s, grading 117.7 / 67.7 s, peak RSS per worker 10,490 / 5,594 MiB: speed-ups
  1.99x, 1.88x, 1.74x. Projected for 10 M SMEs on 2 workers: features 12 min (3.6 s per partition), training
  167 min (50.0 s), grading 11 min (3.4 s). (An earlier 2-worker run alone, load 2.6-6: 84.6, 2,381.9 and
  107.3 s.)
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("CREDITGRADE_ID_KEY", "bench-key")

from creditgrade.features.distributed import map_partitions, partition_features  # noqa: E402
from creditgrade.features.export import export  # noqa: E402
from creditgrade.features.frames import Frames  # noqa: E402
from creditgrade.training.distributed import fit_lightgbm, model_inputs, training_matrix  # noqa: E402

PART = 100_000
TARGET = 10_000_000


def population(workdir: Path, n: int, seed: int, partition: int) -> Path:
    """An export of ``n`` generated SMEs (fewer by any code a later part draws again), made once and cached:
    generated ``PART`` at a time (seeds ``seed``, ``seed + 1``, ...), each part exported as it is made, so
    memory holds one part whatever ``n``."""
    out = workdir / f"export-sme{n}-s{seed}-p{partition}"
    if (out / "sme" / "manifest.json").exists():
        return out
    from creditgrade.data.sample.generator import generate

    def parts():
        first_id, seen = 1, set()
        for i, lo in enumerate(range(0, n, PART)):
            pop = generate(min(PART, n - lo), 1, 1, seed=seed + i)
            pop = {k: v[(v["segment"] == "sme").to_numpy() & ~v["subject_id"].isin(seen).to_numpy()]
                   .rename(columns={"subject_id": "subject_key"}) for k, v in pop.items()}  # a code drawn again
            seen.update(pop["subjects"]["subject_key"])                                   # by a later part: dropped
            records = pop["records"].assign(record_id=np.arange(first_id, first_id + len(pop["records"])))
            first_id += len(records)
            print(f"  generated part {i + 1} of {-(-n // PART)}: {len(records):,} records "
                  f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB)", flush=True)
            yield Frames(pop["subjects"], records, pop["outcomes"])

    export(parts(), "sme", out, partition_subjects=partition)
    return out


def _peak_rss() -> int:
    """The worker's own peak resident memory: VmHWM of its address space (getrusage's maxrss would carry the
    peak of the process it was forked from across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _grade_task(folder, entry, segment, as_of, model):
    features, _ = partition_features(folder, entry, segment, as_of)
    return len(features), model.predict_proba(features[model.feature_name_])[:, 1].mean()


def run(out: Path, workers: int, as_of: pd.Timestamp) -> dict:
    """The three phases on a LocalCluster of ``workers``, each phase's figures printed as it ends (a run
    stopped part way still tells what it got), with the workers' peak RSS so far."""
    from dask.distributed import Client, LocalCluster

    columns, categories = model_inputs("sme")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        figures = {"workers": workers}

        def ended(phase, t0):
            figures[phase] = time.perf_counter() - t0
            figures["peak_rss_mib"] = max(client.run(_peak_rss).values()) / 2**20
            print(f"  {workers} worker(s) {phase}: {figures[phase]:.1f} s, peak RSS per worker so far "
                  f"{figures['peak_rss_mib']:,.0f} MiB, load {os.getloadavg()[0]:.1f}", flush=True)

        t0 = time.perf_counter()
        figures["rows"] = sum(len(f) for f, _ in map_partitions(client, out, "sme", partition_features, as_of))
        ended("features", t0)
        t0 = time.perf_counter()
        X, y = training_matrix(client, out, "sme")
        model = fit_lightgbm(client, X, y, columns, categories)
        figures["training_rows"] = len(y.compute_chunk_sizes())
        ended("training", t0)
        t0 = time.perf_counter()
        shared = client.scatter(model, broadcast=True)
        figures["graded"] = sum(n for n, _ in map_partitions(client, out, "sme", _grade_task, as_of, shared))
        ended("grading", t0)
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smes", type=int, default=200_000)
    ap.add_argument("--partition", type=int, default=25_000, help="subjects per partition")
    ap.add_argument("--as-of", default="2024-06-30")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts, run in this order")
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "creditgrade-bench")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = population(args.workdir, args.smes, args.seed, args.partition)
    print(f"population and export ready in {time.perf_counter() - t0:.0f} s: {out}")
    parts = len(list((out / "sme").glob("part-*")))
    print(f"{parts} partitions")
    results = [run(out, w, pd.Timestamp(args.as_of)) for w in args.workers]
    table = pd.DataFrame(results).set_index("workers")
    print(table.round(1).to_string())
    for phase in ("features", "training", "grading"):
        cost = table[phase] * table.index / parts  # seconds per partition, from each worker count
        speed_up = f"speed-up with 2 workers {table.loc[1, phase] / table.loc[2, phase]:.2f}x; " \
            if {1, 2} <= set(table.index) else ""
        print(f"{phase:9s} {speed_up}projected for {TARGET:,} SMEs on 2 workers "
              f"{cost.iloc[-1] * TARGET / args.partition / 2 / 60:.0f} min ({cost.iloc[-1]:.1f} s per partition "
              f"of {args.partition:,} with {table.index[-1]} worker(s))")
    print(f"machine load (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
