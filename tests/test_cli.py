"""Command-line conventions (issue 14, items 1 and 7): --version, segment choices shown, sub-command help,
library telemetry off by default, keys listed and an unknown key's revocation failing, townships listed."""
from __future__ import annotations

import pytest

from creditgrade.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help, --version, bad choices
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys):
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"creditgrade {version('creditgrade')}"


@pytest.mark.parametrize("command", [["features"], ["train"], ["report"], ["monitor"], ["validate"],
                                     ["warnings", "scan"], ["warnings", "backtest"], ["keys", "create"]])
def test_segment_shows_its_choices(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "--segment {sme,household,practitioner}" in " ".join(out.split())


def test_warnings_scan_help_is_its_own(capsys):
    code, out, _ = run(capsys, "warnings", "scan", "--help")
    assert code == 0 and out.startswith("usage: creditgrade warnings scan") and "--as-of" in out


def test_telemetry_off_by_default(capsys, monkeypatch, store):
    for name in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "BENTOML_DO_NOT_TRACK"):
        monkeypatch.delenv(name, raising=False)
    run(capsys, "keys", "list")
    import os

    from mlflow.telemetry.utils import is_telemetry_disabled

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true" and os.environ["BENTOML_DO_NOT_TRACK"] == "true"
    assert is_telemetry_disabled()


def test_telemetry_left_on_when_the_user_says_so(capsys, monkeypatch, store):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    run(capsys, "keys", "list")
    import os

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"


def test_keys_create_list_revoke(capsys, store):
    code, out, _ = run(capsys, "keys", "create", "--role", "bank", "--name", "desk-1")
    assert code == 0 and out.startswith("cg_")
    code, _, err = run(capsys, "keys", "create", "--role", "bank", "--name", "desk-1")
    assert code == 2 and "exists already" in err
    code, out, _ = run(capsys, "keys", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["name", "role", "scope", "created", "last_used", "revoked"]
    assert lines[1].split()[:2] == ["desk-1", "bank"] and len(lines) == 2
    code, _, err = run(capsys, "keys", "revoke", "--name", "nosuch")
    assert code != 0 and "no key named 'nosuch'" in err
    assert run(capsys, "keys", "revoke", "--name", "desk-1")[0] == 0


def test_townships_listed(capsys, store):
    from tests.test_keys import add_households

    assert run(capsys, "townships")[0] == 2  # nothing ingested: a clear error, not an empty table
    add_households(store, [("410122101201", "东村", "城关镇"), ("410122102201", None, None)])
    code, out, _ = run(capsys, "townships")
    rows = [line.split() for line in out.splitlines()[1:]]
    assert code == 0 and rows == [["410122101", "城关镇", "1", "1"], ["410122102", "410122102", "1", "1"]]



def test_make_lab_and_mlflow_ui(tmp_path):
    """`make lab` opens JupyterLab (the `notebook` extra) on the notebooks; `make mlflow-ui` serves the registry
    `train` writes to (issue 14, item 6)."""
    import subprocess
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("jupyterlab") for r in extras["notebook"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CREDITGRADE_HOME": str(tmp_path / "cg")}

    def recipe(target: str) -> str:
        out = subprocess.run(["make", "-n", "-C", str(root), target], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "jupyter lab --notebook-dir=notebooks" in recipe("lab") and "[dev,notebook]" in recipe("lab")
    assert f"sqlite:///{tmp_path / 'cg'}/mlflow.db" in recipe("mlflow-ui")
