"""The real server (``bentoml serve`` on a free loopback port): roles, a grade, a batch, the audit log,
no identity number in its log, and a bounded schemathesis fuzz of its OpenAPI document."""
from __future__ import annotations

import os
import subprocess
from types import SimpleNamespace

import httpx
import pandas as pd
import pytest

from creditgrade.serving.launch import BIN, ROOT, free_port, start, stop
from tests.helpers import bad_check, database, grade_body, make_keys, point_at

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    url = point_at(trained, mp, database(tmp_path_factory.mktemp("serving"), trained.template))
    keys = make_keys(url, pd.read_parquet(trained.paths["subjects"]))
    log = tmp_path_factory.mktemp("server") / "server.log"
    port = free_port()
    proc = start({**os.environ, "CREDITGRADE_MAX_BATCH": "500"}, log, port)
    base = f"http://127.0.0.1:{port}"

    def call(path, json=None, key=None):
        return httpx.post(base + path, json=json, headers={"X-API-Key": key} if key else {}, timeout=60)

    yield SimpleNamespace(call=call, keys=keys, base=base, log=log, url=url)
    stop(proc)
    mp.undo()


def test_real_server_auth_grade_batch_and_audit(server):
    k = server.keys
    assert httpx.get(server.base + "/livez").status_code == 200
    assert httpx.get(server.base + "/metrics").status_code == 200
    assert server.call("/grade", grade_body(k.smes[0])).status_code == 401
    assert server.call("/grade", grade_body(k.smes[0]), key=k.admin).status_code == 403
    r = server.call("/grade", grade_body(k.smes[0]), key=k.bank)
    assert r.status_code == 200 and r.json()["model"]["version"]
    assert server.call("/grade", grade_body(bad_check(k.smes[0])), key=k.bank).status_code == 422
    person = grade_body(k.practitioners[3], "practitioner")
    assert server.call("/grade", person, key=k.regulator).status_code == 403
    assert server.call("/grade", {**person, "consent_ref": "C-7"}, key=k.regulator).status_code == 200
    assert server.call("/grade", {**person, "subject_id": k.practitioners[4][:-1] + "Z"},
                       key=k.regulator).status_code == 422
    batch = server.call("/grade_batch", [grade_body(s) for s in k.smes[:200]], key=k.bank)
    assert batch.status_code == 200 and [b["status"] for b in batch.json()] == [200] * 200
    assert server.call("/grade_batch", [grade_body(k.smes[0])] * 501, key=k.bank).status_code == 413
    r = httpx.post(server.base + "/grade", content=b"{", headers={"X-API-Key": k.bank,
                                                                  "content-type": "application/json"})
    assert r.status_code == 400 and "Traceback" not in r.text
    entries = server.call("/audit_log", {"limit": 1000}, key=k.regulator).json()
    assert {"200", "400", "401", "403", "413", "422"} <= {e["outcome"] for e in entries}


def test_real_server_log_has_no_identity_number(server):
    k = server.keys
    for ric in k.practitioners[:5]:
        server.call("/grade", grade_body(ric, "practitioner", consent_ref="C-8"), key=k.regulator)
        httpx.post(server.base + "/grade", content=f'{{"subject_id": "{ric}", oops'.encode(),
                   headers={"X-API-Key": k.regulator, "content-type": "application/json"})
    text = server.log.read_text()
    assert "Exception on /grade" in text  # the malformed bodies were logged ...
    for ric in k.practitioners:
        assert ric not in text              # ... with identity numbers masked
    assert "path=/grade" not in text        # no access log line unless CREDITGRADE_ACCESS_LOG=1


def test_schemathesis_fuzz_finds_no_server_error(server, tmp_path):
    report = tmp_path / "junit.xml"
    out = subprocess.run(
        [str(BIN / "schemathesis"), "run", server.base + "/docs.json", "--max-examples", "8",
         "-H", f"X-API-Key: {server.keys.regulator}", "--seed", "1", "--generation-deterministic",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance",
         "--include-path-regex", "^/(grade|explain|report|list_objections|audit_log)$",
         "--report", "junit", "--report-junit-path", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:]
