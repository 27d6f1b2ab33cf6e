"""Serving latency: single-subject ``/grade`` on the real server (``bentoml serve``, loopback) at several
concurrencies, beside an anchor measured in the same run — a minimal Starlette app (uvicorn) answering the
same champion's PD **and contributions** for one precomputed feature row (the estimator's ``walk``, as
the grader calls it: LightGBM's one-row TreeSHAP, PD the logistic of their sum; a scorecard's points). Between
them an echo (``bench.echo``): BentoML's ``@bentoml.api`` under the service's own configuration answering one
constant grade, i.e. the HTTP layer's cost alone. Every row gives the CPU time its server's processes spent
per request (the measure that holds on a shared machine) beside latency. Also each server process's RSS at
10 % and 100 % of ``--rss-requests`` requests, and a schemathesis fuzz.

    .venv/bin/python -m bench.serve                         # uses $CREDITGRADE_HOME (trained, ingested)
    .venv/bin/python -m bench.serve --seconds 5 --concurrency 1,8 --fuzz 0
    .venv/bin/python -m bench.serve --rss-requests 100000   # worker RSS at 10,000 and at 100,000 requests
    .venv/bin/python -m bench.serve --fuzz 200              # larger schemathesis budget
    .venv/bin/python -m bench.serve --workers 2             # two worker processes for each server
    .venv/bin/python -m bench.serve --batch 5000            # grade_batch in process beside bare contributions

The server runs with the grade cache off (``CREDITGRADE_GRADE_CACHE=0``; ``--cache`` turns it on) and every
request asks a distinct (subject, as-of date) pair: every subject of the segment, each as of a random day of
the year before its data's watermark, so every request loads, builds features and grades.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

from creditgrade.features import freshness
from creditgrade.features.freshness import default_as_of
from creditgrade.features.profile import exists_at
from creditgrade.serving.launch import BIN, ROOT, free_port, start, stop


def anchor_app(segment: str):
    """A Starlette app answering the champion's PD and contributions for one precomputed feature row, from the
    estimator's :meth:`~creditgrade.models.estimator.Estimator.walk` (LightGBM's one-row TreeSHAP, a scorecard's
    binning): the model's own cost of one grade."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from creditgrade.features.build import build_features
    from creditgrade.features.store import Store
    from creditgrade.models.estimator import read_table
    from creditgrade.models.registry import load_champion

    store = Store()
    model = load_champion(segment).model
    X = build_features(store, segment, default_as_of(freshness.of_store(store, segment), segment)).iloc[[0]]
    X = X[model.features]
    est, table = model.estimator, read_table(X, model.features)  # the row read once, as the grader's table

    async def grade(request):
        await request.body()
        walk = est.walk(None, table)  # the model's one pass, whatever its family
        return JSONResponse({"pd": float(walk.pd[0]), "contributions": walk.contributions[0, :-1].tolist()})

    return Starlette(routes=[Route("/grade", grade, methods=["POST"])])


def serve_anchor(segment: str, port: int, workers: int) -> None:
    """``anchor_app`` on ``port`` from ``workers`` processes sharing it (``SO_REUSEPORT``): this one and
    ``workers - 1`` children. The socket names its protocol: asyncio sets ``TCP_NODELAY`` only on a TCP socket
    that says so, and without it every answer waits ~40 ms for a delayed ACK (as in uvicorn's own workers)."""
    import uvicorn

    for _ in range(workers - 1):
        subprocess.Popen([sys.executable, "-m", "bench.serve", "--segment", segment, "--anchor-port", str(port)],
                         cwd=ROOT)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    uvicorn.Server(uvicorn.Config(anchor_app(segment), log_level="warning")).run(sockets=[sock])


async def load(url: str, bodies, headers: dict, concurrency: int, seconds: float):
    """Requests from ``concurrency`` clients for ``seconds``: (latencies in ms, errors)."""
    latencies, errors = [], 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
        async def worker(w: int):
            nonlocal errors
            i = w
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                try:
                    r = await client.post(url, json=bodies[i % len(bodies)])
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t) * 1000)
                errors += not ok
                i += concurrency
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return np.array(latencies), errors


def row(name: str, lat: np.ndarray, errors: int, seconds: float) -> dict:
    return {"name": name, "rps": len(lat) / seconds, "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)), "n": len(lat), "errors": errors}


def tree(proc: subprocess.Popen) -> list[psutil.Process]:
    """The server's process and every process under it."""
    root = psutil.Process(proc.pid)
    return [p for p in [root, *root.children(recursive=True)] if p.is_running()]


def rss(proc: subprocess.Popen) -> dict[int, float]:
    """RSS (MB) of the server and every process under it."""
    return {p.pid: p.memory_info().rss / 2**20 for p in tree(proc)}


def cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time (user and system) spent so far by the server and every process under it."""
    return sum(sum(p.cpu_times()[:2]) for p in tree(proc))


def measured(name: str, proc: subprocess.Popen, url: str, bodies, headers: dict, concurrency: int,
             seconds: float) -> dict:
    """One row: latency and errors of ``load`` and the CPU milliseconds its server spent per request."""
    before = cpu_seconds(proc)
    lat, errors = asyncio.run(load(url, bodies, headers, concurrency, seconds))
    return {**row(name, lat, errors, seconds), "cpu": 1000 * (cpu_seconds(proc) - before) / max(len(lat), 1)}


def bodies_for(segment: str, n: int) -> list[dict]:
    """``n`` distinct (subject, as-of date) requests: the segment's subjects in turn, each as of a random
    day of the year before the data's default as-of date (the watermark); subjects that existed all that year."""
    from creditgrade.features.loader import frame, subjects_query
    from creditgrade.features.store import Store

    store = Store()
    with store.engine.connect() as conn:
        rows = frame(conn, subjects_query(segment))
    latest = default_as_of(freshness.of_store(store, segment), segment)
    rows = rows[exists_at(rows, segment, pd.Timestamp(latest - dt.timedelta(days=365)))]  # graded, never 422
    rnd = random.Random(0)
    pairs, out = set(), []
    while len(out) < n and len(pairs) < 365 * len(rows):
        sid = rows["display_id"].iloc[len(out) % len(rows)]
        day = latest - dt.timedelta(days=rnd.randrange(0, 365))
        if (sid, day) not in pairs:
            pairs.add((sid, day))
            body = {"subject_id": sid, "segment": segment, "purpose": "benchmark", "as_of": str(day)}
            if segment != "sme":
                body["consent_ref"] = "BENCH"
            out.append(body)
    return out


def run_until(url: str, bodies, headers: dict, concurrency: int, requests: int) -> int:
    """Send ``requests`` requests (cycling over ``bodies``) from ``concurrency`` clients; the errors."""
    async def go():
        errors, sent = 0, 0
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
            async def worker():
                nonlocal errors, sent
                while sent < requests:
                    sent += 1
                    try:
                        errors += (await client.post(url, json=bodies[sent % len(bodies)])).status_code != 200
                    except httpx.HTTPError:
                        errors += 1
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return errors
    return asyncio.run(go())


def batch_bench(segment: str, n: int, repeat: int = 3) -> None:
    """``Grader.grade_batch`` of ``n`` subjects in process (loading, features, grades with reasons, storing
    grades and audit rows), beside the bare contributions of the same feature rows (the estimator's ``walk``:
    for LightGBM one ``Booster.predict(pred_contrib=True)``, as ``bench.explain``), one thread each (the
    grader sets its champions' threads to one); best of ``repeat`` by CPU time and by wall time."""
    from creditgrade.features.build import build_features
    from creditgrade.features.loader import frame, subjects_query
    from creditgrade.features.store import Store
    from creditgrade.models.registry import load_champion
    from creditgrade.serving.auth import Principal
    from creditgrade.serving.grading import Grader
    from creditgrade.serving.schemas import BatchItem

    store = Store()
    loaded = load_champion(segment)
    grader = Grader(store, {segment: loaded})
    day = default_as_of(freshness.of_store(store, segment), segment)
    with store.engine.connect() as conn:
        ids = frame(conn, subjects_query(segment))["display_id"].tolist()[:n]
    consent = {} if segment == "sme" else {"consent_ref": "BENCH"}
    items = [BatchItem(subject_id=sid, segment=segment, as_of=day, purpose="benchmark", key_id=1, **consent)
             for sid in ids]
    principals = {1: Principal(1, "regulator" if segment != "sme" else "bank", "bench")}
    X = build_features(store, segment, day)[loaded.model.features]
    est = loaded.model.estimator
    bare, ours = {"cpu": float("inf"), "wall": float("inf")}, {"cpu": float("inf"), "wall": float("inf")}
    for _ in range(repeat):  # in turns: fair on a shared machine
        with timed(bare):
            est.walk(X)
        with timed(ours):
            results = grader.grade_batch(principals, items)
    failed = sum(r.status != 200 for r in results)
    print(f"grade_batch of {len(items):,} {segment} subjects as of {day} ({failed} failed), best of {repeat}, "
          f"CPU time of this process (wall time in brackets; one thread each):")
    print(f"  bare contributions on {len(X):,} rows: {len(X) / bare['cpu']:10,.0f} subjects/s "
          f"({len(X) / bare['wall']:,.0f})")
    print(f"  Grader.grade_batch (load, features, grade, reasons, store): {len(items) / ours['cpu']:10,.0f} subjects/s "
          f"({len(items) / ours['wall']:,.0f})")
    ratio = {k: len(items) / ours[k] / (len(X) / bare[k]) for k in ours}
    print(f"  ratio {ratio['cpu']:.2f} of the bare contributions by CPU time ({ratio['wall']:.2f} by wall time; "
          f"goal >= 0.5)")


@contextlib.contextmanager
def timed(best: dict):
    """Keep the least CPU time (``process_time``: the work of this process alone, the measure on a shared
    machine) and the least wall time of the block in ``best``."""
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    best["cpu"] = min(best["cpu"], time.process_time() - cpu)
    best["wall"] = min(best["wall"], time.perf_counter() - wall)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segment", default="sme")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", default="1,2,4,8")
    ap.add_argument("--requests", type=int, default=50_000, help="distinct (subject, as-of) requests prepared")
    ap.add_argument("--cache", action="store_true", help="keep the grade cache on")
    ap.add_argument("--rss-requests", type=int, default=0,
                    help="after the latency runs, send this many requests and read each server process's RSS at "
                         "10 %% and 100 %% of them (the goal: 100000, RSS flat from 10,000 to 100,000)")
    ap.add_argument("--fuzz", type=int, default=100, help="schemathesis max examples per operation (0: skip)")
    ap.add_argument("--batch", type=int, default=0, help="only measure grade_batch of this many subjects")
    ap.add_argument("--workers", type=int, help="worker processes of the service, the echo and the anchor alike "
                                               "(default: CREDITGRADE_WORKERS, else the service's 1)")
    ap.add_argument("--anchor-port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.batch:
        batch_bench(args.segment, args.batch)
        return
    if args.anchor_port:
        serve_anchor(args.segment, args.anchor_port, args.workers or 1)
        return

    from creditgrade.features.store import Store
    from creditgrade.serving.keys import create_key
    from creditgrade.serving.tables import open_store

    key = create_key(open_store(), "bank" if args.segment == "sme" else "regulator", f"bench-{time.time_ns()}")
    headers = {"X-API-Key": key}
    levels = [int(c) for c in args.concurrency.split(",")]
    log = Path(tempfile.mkdtemp()) / "server.log"
    port, aport, eport = free_port(), free_port(), free_port()
    workers = args.workers or int(os.environ.get("CREDITGRADE_WORKERS", "1"))
    env = {**os.environ, "CREDITGRADE_WORKERS": str(workers)}
    server = start({**env, "CREDITGRADE_GRADE_CACHE": "1" if args.cache else "0"}, log, port)
    anchor = subprocess.Popen([sys.executable, "-m", "bench.serve", "--segment", args.segment, "--anchor-port", str(aport),
                               "--workers", str(workers)], cwd=ROOT, start_new_session=True)
    echo = None
    try:
        for _ in range(300):
            try:
                httpx.post(f"http://127.0.0.1:{aport}/grade", json={}, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        bodies = bodies_for(args.segment, args.requests)
        grade_url = f"http://127.0.0.1:{port}/grade"
        answer = log.with_name("answer.json")  # the echo's constant: one real answer
        answer.write_bytes(httpx.post(grade_url, json=bodies[-1], headers=headers, timeout=60).raise_for_status().content)
        echo = start({**env, "BENCH_ECHO_ANSWER": str(answer)}, log.with_name("echo.log"), eport,
                     service="bench.echo:Echo")
        before = rss(server)
        asyncio.run(load(grade_url, bodies[::-1], headers, 2, 2.0))  # warm up (imports, first statements)
        servers = {"anchor": (anchor, f"http://127.0.0.1:{aport}/grade"),
                   "echo": (echo, f"http://127.0.0.1:{eport}/grade"), "grade": (server, grade_url)}
        rows = [measured(f"{name:8s} c={c}", proc, url, bodies, headers, c, args.seconds)
                for c in levels for name, (proc, url) in servers.items()]
        after = rss(server)
        cache = "on" if args.cache else "off"
        print(f"segment {args.segment}, grade cache {cache}, {workers} worker process(es) each, {args.seconds:g} s per "
              f"level, {len(bodies)} distinct (subject, as-of) requests; latency in ms")
        print(f"{'run':14s} {'req/s':>8s} {'p50':>7s} {'p99':>7s} {'n':>7s} {'errors':>6s} {'p50/anchor':>10s} "
              f"{'CPU ms/req':>10s}")
        anchors = {r["name"].split()[-1]: r for r in rows if r["name"].startswith("anchor")}
        for r in rows:
            ratio = r["p50"] / anchors[r["name"].split()[-1]]["p50"]
            print(f"{r['name']:14s} {r['rps']:8.0f} {r['p50']:7.2f} {r['p99']:7.2f} {r['n']:7d} {r['errors']:6d} "
                  f"{ratio:10.2f} {r['cpu']:10.2f}")
        graded = [r for r in rows if r["name"].startswith("grade")]
        best = max(graded, key=lambda r: r["rps"])
        worst = max(r["p50"] / anchors[r["name"].split()[-1]]["p50"] for r in graded)
        print(f"goals: p50/anchor at most {worst:.2f} (<= 2); p99 at the best throughput ({best['name'].split()[-1]}) "
              f"{best['p99']:.1f} ms (< 25); errors {sum(r['errors'] for r in graded)} (0)")
        print("server process RSS (MB), before -> after:")
        for pid in sorted(before):
            print(f"  pid {pid}: {before[pid]:.0f} -> {after.get(pid, float('nan')):.0f}")
        if args.rss_requests:
            c = int(best["name"].split("=")[1])
            marks = (args.rss_requests // 10, args.rss_requests)  # RSS at 10 % and at 100 % of the requests
            done, readings = 0, []
            for target in marks:
                errors = run_until(grade_url, bodies, headers, c, target - done)
                done = target
                readings.append(rss(server))
                print(f"RSS after {target:,} requests at c={c} ({errors} errors in this stretch): "
                      + ", ".join(f"pid {p} {m:.0f} MB" for p, m in sorted(readings[-1].items())))
            first, last = readings
            change = {p: 100 * (last.get(p, float("nan")) / first[p] - 1) for p in sorted(first)}
            print(f"goal: RSS flat (within 5 %) from {marks[0]:,} to {marks[1]:,} requests: "
                  + ", ".join(f"pid {p} {v:+.1f} %" for p, v in change.items()))
        if args.fuzz:
            out = subprocess.run([str(BIN / "schemathesis"), "run", f"http://127.0.0.1:{port}/docs.json",
                                  "--max-examples", str(args.fuzz), "-H", f"X-API-Key: {key}",
                                  "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                                              "response_schema_conformance"], cwd=ROOT, capture_output=True,
                                 text=True)
            print("\n".join(out.stdout.splitlines()[-25:]))
    finally:
        os.killpg(anchor.pid, 15)
        anchor.wait()
        if echo is not None:
            stop(echo)
        stop(server)


if __name__ == "__main__":
    main()
