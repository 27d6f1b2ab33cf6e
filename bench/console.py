"""Console page latency: every page of the web console at concurrency 1 on the real server (``bentoml
serve``, loopback) over a trained, ingested store, beside an anchor measured in the same run — the same
server's ``/livez`` (BentoML's own probe: the floor of any answer from that server).

    .venv/bin/python -m bench.console                 # uses $CREDITGRADE_HOME (trained, ingested: make demo)
    .venv/bin/python -m bench.console --repeat 30

Each page is signed in as the role that uses it (keys created for the run, named ``bench-console-*``); a
page that grades (household, SME lookup, explanation, report) asks the same subject each time, so after
the first answer its grade comes from the grade cache, as a user's repeated look would. The first answer
of each page is reported apart (cold) from the median and 95th percentile of the rest.
"""
from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import select

from creditgrade.features.store import Store, subjects
from creditgrade.serving.keys import create_key
from creditgrade.serving.tables import open_store
from creditgrade.serving.launch import free_port, start, stop

BUDGET_MS = 300


def keys(store: Store) -> dict:
    """A key per role for this run, and the subjects its pages ask about."""
    with store.engine.connect() as conn:
        household = conn.execute(select(subjects.c.display_id, subjects.c.village_code, subjects.c.township_code)
                                 .where(subjects.c.segment == "household").order_by(subjects.c.subject_key)).first()
        sme = conn.execute(select(subjects.c.display_id).where(subjects.c.segment == "sme")
                           .order_by(subjects.c.subject_key)).scalar()
    run = str(int(time.time()))
    return dict(
        evaluator=create_key(store, "evaluator", f"bench-console-evaluator-{run}", townships=[household.township_code]),
        bank=create_key(store, "bank", f"bench-console-bank-{run}"),
        regulator=create_key(store, "regulator", f"bench-console-regulator-{run}"),
        subject=create_key(store, "subject", f"bench-console-subject-{run}", subject_id=household.display_id,
                           segment="household"),
        household=household.display_id, village=household.village_code, township=household.township_code, sme=sme)


def signed_in(base: str, key: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=True)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)
    page = client.post("/console/sign-in", data={"key": key, "csrf": token})
    return client, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def pages(k: dict) -> list[tuple[str, str, str, str, dict | None]]:
    """(name, role, method, path, form) of every console page."""
    return [
        ("landing", "", "GET", "/", None), ("docs", "", "GET", "/docs", None),
        ("townships", "evaluator", "GET", "/console/townships", None),
        ("township", "evaluator", "GET", f"/console/townships/{k['township']}", None),
        ("village", "evaluator", "GET", f"/console/villages/{k['village']}", None),
        ("household", "evaluator", "GET", f"/console/households/{k['household']}", None),
        ("household graded", "evaluator", "POST", f"/console/households/{k['household']}",
         {"consent_ref": "BENCH-1", "purpose": "bench"}),
        ("evaluation sheet", "evaluator", "POST", f"/console/households/{k['household']}/sheet",
         {"consent_ref": "BENCH-1", "purpose": "bench"}),
        ("sme form", "bank", "GET", "/console/sme", None),
        ("sme lookup", "bank", "POST", "/console/sme", {"subject_id": k["sme"], "purpose": "bench"}),
        ("batch form", "bank", "GET", "/console/batch", None),
        ("audit log", "regulator", "GET", "/console/audit", None),
        ("audit filtered", "regulator", "POST", "/console/audit", {"name": "bench-console-bank"}),
        ("models", "regulator", "GET", "/console/models", None),
        ("objections", "regulator", "GET", "/console/objections", None),
        ("explain", "regulator", "POST", "/console/explain", {"segment": "sme", "subject_id": k["sme"],
                                                              "purpose": "bench"}),
        ("my report", "subject", "GET", "/console/me", None)]


def measure(client: httpx.Client, method: str, path: str, form: dict | None, csrf: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        answer = client.request(method, path, data={**form, "csrf": csrf} if form is not None else None)
        times.append((time.perf_counter() - t) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    store = open_store()
    k = keys(store)
    store.dispose()
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-console-")) / "server.log"
    proc = start(dict(os.environ), log, port)
    base = f"http://127.0.0.1:{port}"
    try:
        sessions = {role: signed_in(base, k[role]) for role in ("evaluator", "bank", "regulator", "subject")}
        sessions[""] = (httpx.Client(base_url=base, timeout=60), "")
        anchor = measure(sessions[""][0], "GET", "/livez", None, "", args.repeat + 1)[1:]
        rows = []
        for name, role, method, path, form in pages(k):
            client, csrf = sessions[role]
            lat = measure(client, method, path, form, csrf, args.repeat + 1)
            rows.append(dict(page=name, cold_ms=lat[0], p50_ms=np.median(lat[1:]), p95_ms=np.percentile(lat[1:], 95)))
        table = pd.DataFrame(rows)
        table["x_anchor"] = table["p50_ms"] / np.median(anchor)
        table["under_budget"] = table["p95_ms"] < BUDGET_MS
        print(f"anchor /livez (same server, same run): p50 {np.median(anchor):.1f} ms, "
              f"p95 {np.percentile(anchor, 95):.1f} ms over {len(anchor)} requests")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
        print(f"pages with p95 under {BUDGET_MS} ms: {int(table['under_budget'].sum())} of {len(table)}")
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
