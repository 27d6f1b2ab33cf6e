"""Serving latency: single-subject ``/grade`` on the real server (``bentoml serve``, loopback) at several
concurrencies, beside an anchor measured in the same run — a minimal Starlette app (uvicorn) returning the
same champion's bare predict (LightGBM ``Booster.predict`` or the scorecard's ``predict_proba``) for one
precomputed feature row. Also each server process's RSS before and after, and a schemathesis fuzz.

    .venv/bin/python -m bench.serve                         # uses $CREDITGRADE_HOME (trained, ingested)
    .venv/bin/python -m bench.serve --seconds 5 --concurrency 1,8 --fuzz 0
    .venv/bin/python -m bench.serve --fuzz 200              # larger schemathesis budget

``warm`` cycles over a few hundred subjects as of today (grades cached per subject and data stamp);
``cold`` asks each subject as of a random day of the last year (nearly every request builds features).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from serving.launch import BIN, ROOT, free_port, start, stop


def anchor_app(segment: str):
    """A Starlette app answering the champion's bare PD for one precomputed feature row."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from features.build import build_features
    from features.store import Store
    from models.registry import load_champion

    model = load_champion(segment).model
    X = build_features(Store(), segment, dt.date.today()).iloc[[0]][model.features]
    est = model.estimator
    if model.kind == "lightgbm":
        def predict():
            return float(est.booster_.predict(X, raw_score=True, num_threads=1)[0])
    else:
        def predict():
            return float(est.predict_proba(X)[0, 1])

    async def grade(request):
        await request.body()
        return JSONResponse({"pd": predict()})

    return Starlette(routes=[Route("/grade", grade, methods=["POST"])])


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


def rss(proc: subprocess.Popen) -> dict[int, float]:
    """RSS (MB) of the server and every process under it."""
    root = psutil.Process(proc.pid)
    return {p.pid: p.memory_info().rss / 2**20 for p in [root, *root.children(recursive=True)] if p.is_running()}


def bodies_for(segment: str, n: int, cold: bool) -> list[dict]:
    from sqlalchemy import select

    from features.store import Store, subjects

    keys = Store().frame(select(subjects.c.display_id).where(subjects.c.segment == segment).limit(n))["display_id"]
    today = dt.date.today()
    rnd = random.Random(0)
    out = []
    for sid in keys:
        body = {"subject_id": sid, "segment": segment, "purpose": "benchmark"}
        if cold:
            body["as_of"] = str(today - dt.timedelta(days=rnd.randrange(1, 365)))
        out.append(body)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segment", default="sme")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", default="1,4,16,32")
    ap.add_argument("--subjects", type=int, default=300)
    ap.add_argument("--fuzz", type=int, default=100, help="schemathesis max examples per operation (0: skip)")
    ap.add_argument("--anchor-port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.anchor_port:
        import uvicorn

        uvicorn.run(anchor_app(args.segment), host="127.0.0.1", port=args.anchor_port, log_level="warning")
        return

    from features.store import Store
    from serving.keys import create_key

    key = create_key(Store(), "bank" if args.segment == "sme" else "regulator", "bench")
    headers = {"X-API-Key": key}
    levels = [int(c) for c in args.concurrency.split(",")]
    log = Path(tempfile.mkdtemp()) / "server.log"
    port, aport = free_port(), free_port()
    server = start(dict(os.environ), log, port)
    anchor = subprocess.Popen([sys.executable, "-m", "bench.serve", "--segment", args.segment, "--anchor-port", str(aport)],
                              cwd=ROOT, start_new_session=True)
    try:
        for _ in range(300):
            try:
                httpx.post(f"http://127.0.0.1:{aport}/grade", json={}, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        warm = bodies_for(args.segment, args.subjects, cold=False)
        cold = bodies_for(args.segment, args.subjects, cold=True)
        if args.segment != "sme":
            for b in warm + cold:
                b["consent_ref"] = "BENCH"
        before = rss(server)
        asyncio.run(load(f"http://127.0.0.1:{port}/grade", warm, headers, 4, 2.0))  # warm up
        rows = []
        for c in levels:
            rows.append(row(f"anchor   c={c}", *asyncio.run(load(f"http://127.0.0.1:{aport}/grade", warm, {}, c,
                                                                   args.seconds)), args.seconds))
            rows.append(row(f"warm     c={c}", *asyncio.run(load(f"http://127.0.0.1:{port}/grade", warm, headers, c,
                                                                   args.seconds)), args.seconds))
            rows.append(row(f"cold     c={c}", *asyncio.run(load(f"http://127.0.0.1:{port}/grade", cold, headers, c,
                                                                   args.seconds)), args.seconds))
        after = rss(server)
        print(f"segment {args.segment}, {args.seconds:g} s per level, {len(warm)} subjects; latency in ms")
        print(f"{'run':14s} {'req/s':>8s} {'p50':>7s} {'p99':>7s} {'n':>7s} {'errors':>6s} {'p50/anchor':>10s}")
        anchors = {r["name"].split()[-1]: r for r in rows if r["name"].startswith("anchor")}
        for r in rows:
            ratio = r["p50"] / anchors[r["name"].split()[-1]]["p50"]
            print(f"{r['name']:14s} {r['rps']:8.0f} {r['p50']:7.2f} {r['p99']:7.2f} {r['n']:7d} {r['errors']:6d} "
                  f"{ratio:10.2f}")
        print("server process RSS (MB), before -> after:")
        for pid in sorted(before):
            print(f"  pid {pid}: {before[pid]:.0f} -> {after.get(pid, float('nan')):.0f}")
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
        stop(server)


if __name__ == "__main__":
    main()
