"""Start and stop the real server (``bentoml serve``) on a loopback port, for tests and benchmarks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(env: dict, log: Path, port: int, timeout: float = 120.0,
          service: str = "creditgrade.serving.service:CreditGrade") -> subprocess.Popen:
    """``bentoml serve <service>`` on ``port`` (default the creditgrade service), returned once /readyz
    answers 200."""
    proc = subprocess.Popen([str(BIN / "bentoml"), "serve", service, "--host", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env={"BENTOML_DO_NOT_TRACK": "true", **env},
                            stdout=Path(log).open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {Path(log).read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"server not ready in {timeout}s: {Path(log).read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate the server's process group (it started it), then kill it if it lingers."""
    os.killpg(proc.pid, 15)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
