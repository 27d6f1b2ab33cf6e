"""Progress on long commands (issue 14, item 3): shown on a terminal, silent in a pipe or with --quiet; the
long library calls report their steps; MLflow's own notices stay out of the command's output."""
from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

GENERATE = [sys.executable, "-m", "creditgrade.cli", "generate", "--smes", "20", "--households", "20",
            "--practitioners", "20", "--seed", "1"]


def run_with_stderr_on(tty: bool, argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (tty) or a pipe; returns code, stdout, stderr."""
    if not tty:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        return out.returncode, out.stdout, out.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout = proc.stdout.read()
    code = proc.wait(timeout=300)
    os.close(leader)
    return code, stdout, b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("tty, quiet, shown", [(True, False, True), (True, True, False), (False, False, False)])
def test_generate_shows_progress_only_on_a_terminal(tmp_path, tty, quiet, shown):
    argv = GENERATE + ["--out", str(tmp_path / "pop")] + (["--quiet"] if quiet else [])
    code, stdout, stderr = run_with_stderr_on(tty, argv)
    assert code == 0 and "subjects" in stdout  # the report itself, on stdout either way
    assert ("生成样本" in stderr) == shown, stderr


def test_steps_report_what_the_library_says(monkeypatch):
    import io

    from creditgrade.progress import steps

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with steps("first step", quiet=False) as say:
        say("second step")
    assert say is not None
    with steps("hidden", quiet=True) as nothing:
        assert nothing is None
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe
    with steps("hidden", quiet=False) as nothing:
        assert nothing is None


def test_monitor_snapshots_report_each_date(tmp_path):
    import pandas as pd

    from creditgrade.data.sample.generator import generate
    from creditgrade.features.frames import Frames
    from creditgrade.training.monitor import snapshots

    frames = Frames.from_population(generate(n_smes=60, n_households=10, n_practitioners=10, seed=2))
    heard = []
    snapshots(frames, "sme", [pd.Timestamp("2023-12-31"), pd.Timestamp("2024-12-31")], heard.append)
    assert heard == ["sme: features as of 2023-12-31 (1/2) 构建特征", "sme: features as of 2024-12-31 (2/2) 构建特征"]
