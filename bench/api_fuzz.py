"""API fuzz: schemathesis (v4, Python API) against the real server (``bentoml serve``, loopback) with a
regulator key and an admin key, ``--cases`` cases each, spread over every API operation, half generated
from the published schema (positive) and half breaking it (negative). Every answer is checked for a server
error, conformance to the published response schema, status code and content type, and — for a negative
case — that the invalid request was refused. Half the positive cases that name an SME or a household name a
real one of the store (random ids almost never pass a check digit, so few would reach a grade). Prints, per
key, the cases run, the answers by status and the counts of each kind of failure with a few examples; a
positive case answered 400 is counted too (the schema promised more than the API takes). The anchor is the
issue's bar: 0 server errors, 0 schema violations, 0 invalid requests accepted.

    .venv/bin/python -m bench.api_fuzz                 # uses $CREDITGRADE_HOME (trained, ingested)
    .venv/bin/python -m bench.api_fuzz --cases 1000 --seed 7
"""
from __future__ import annotations

import argparse
import math
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

from creditgrade.features.ids import redact
from creditgrade.serving.gate import ACTIONS
from creditgrade.serving.launch import free_port, start, stop

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance,
          negative_data_rejection]
KINDS = {"ServerError": "server errors", "JsonSchemaError": "schema violations", "MalformedJson": "schema violations",
         "UndefinedStatusCode": "schema violations", "UndefinedContentType": "schema violations",
         "AcceptedNegativeData": "invalid requests accepted"}
REPORTED = ("server errors", "schema violations", "invalid requests accepted")


def real_ids() -> dict[str, list[str]]:
    """Ids of stored SMEs and households (practitioners are stored hashed, so none of theirs)."""
    from sqlalchemy import select

    from creditgrade.features.store import Store, subjects

    store = Store()
    rows = store.frame(select(subjects.c.segment, subjects.c.display_id).where(
        subjects.c.segment.in_(["sme", "household"])))
    store.dispose()
    return {seg: group["display_id"].tolist() for seg, group in rows.groupby("segment")}


def make_real(body, known: dict[str, list[str]], rnd: random.Random) -> None:
    """Half the time, put a stored subject's id in place of a generated one (same segment)."""
    if not isinstance(body, dict) or rnd.random() < 0.5:
        return
    if "household_id" in body:
        body["household_id"] = rnd.choice(known["household"])
    elif body.get("segment") in known and "subject_id" in body:
        body["subject_id"] = rnd.choice(known[body["segment"]])


def fuzz(base: str, key: str, cases: int, rng_seed: int) -> tuple[int, Counter, Counter, dict]:
    """Run about ``cases`` cases with ``key``: (cases run, answers by status, failures by kind, a few
    examples per kind)."""
    schema = schemathesis.openapi.from_url(f"{base}/docs.json", timeout=30)
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [op for op in ops if op.path in ACTIONS]
    per = math.ceil(cases / (2 * len(ops)))
    known, rnd = real_ids(), random.Random(rng_seed)
    ran, statuses, found, examples = 0, Counter(), Counter(), defaultdict(list)

    def note(kind: str, example: str) -> None:
        found[kind] += 1
        if len(examples[kind]) < 3:
            examples[kind].append(redact(" ".join(example.split())))
    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @seed(rng_seed)
            @settings(max_examples=per, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(op.as_strategy(generation_mode=mode))
            def one(case):
                nonlocal ran
                ran += 1
                if mode == GenerationMode.POSITIVE:
                    make_real(case.body, known, rnd)
                response = case.call(base_url=base, headers={"X-API-Key": key}, timeout=120)
                statuses[mode.value, response.status_code] += 1
                if mode == GenerationMode.POSITIVE and response.status_code == 400:  # the schema promised more
                    note("valid requests refused as malformed", f"{op.path} {case.body!r:.300} -> {response.text:.300}")
                try:
                    case.validate_response(response, checks=CHECKS, headers={"X-API-Key": key})
                except (Failure, FailureGroup) as exc:
                    for failure in getattr(exc, "exceptions", [exc]):
                        note(KINDS.get(type(failure).__name__, f"other ({type(failure).__name__})"),
                             f"{op.path} [{mode.value}] {response.status_code}: {str(failure):.400}")

            one()
    return ran, statuses, found, examples


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000, help="cases per key (default 10,000)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from creditgrade.serving.keys import create_key
    from creditgrade.serving.tables import open_store

    store = open_store()
    keys = {role: create_key(store, role, f"api-fuzz-{role}-{time.time_ns()}") for role in ("regulator", "admin")}
    store.dispose()
    log = Path(tempfile.mkdtemp()) / "server.log"
    port = free_port()
    server = start(dict(os.environ), log, port)
    base = f"http://127.0.0.1:{port}"
    totals = Counter()
    try:
        for role, key in keys.items():
            t = time.perf_counter()
            ran, statuses, found, examples = fuzz(base, key, args.cases, args.seed)
            totals.update(found)
            print(f"{role}: {ran} cases in {time.perf_counter() - t:.0f} s; "
                  + ", ".join(f"{kind} {found[kind]}" for kind in REPORTED)
                  + "".join(f", {kind} {n}" for kind, n in found.items() if kind not in REPORTED))
            for mode in ("positive", "negative"):
                print(f"  {mode} cases, answers by status: "
                      + ", ".join(f"{s}: {n}" for (m, s), n in sorted(statuses.items()) if m == mode))
            for kind, lines in examples.items():
                for line in lines:
                    print(f"  {kind}: {line}")
    finally:
        stop(server)
    print(f"anchor (issue 19): 0 / 0 / 0; measured: " + " / ".join(str(totals[k]) for k in REPORTED)
          + f" ({', '.join(REPORTED)}); server log {log}")


if __name__ == "__main__":
    main()
