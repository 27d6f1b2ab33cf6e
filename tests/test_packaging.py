"""Packaging: the project installs one top-level package, ``creditgrade``, whose stages are subpackages;
the wheel holds nothing else, with its data files; `bentoml build` makes a bento from ``bentofile.yaml``."""
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["features", "models", "training", "serving", "data"]


def test_stages_import_only_under_the_creditgrade_namespace(tmp_path):
    """Outside the repository the bare names are not installed; the namespaced ones are, from the folders."""
    probe = ("import importlib, importlib.util as u, json; "
             f"print(json.dumps({{n: [u.find_spec(n) is None, importlib.import_module('creditgrade.' + n).__file__] "
             f"for n in {STAGES!r}}}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    found = __import__("json").loads(out.stdout)
    for stage in STAGES:
        absent, path = found[stage]
        assert absent, f"a top-level package {stage!r} is installed"
        assert Path(path).parent == ROOT / stage


def test_no_module_imports_a_stage_by_its_bare_name():
    bare = [f"{p.relative_to(ROOT)}:{i}" for folder in ["creditgrade", *STAGES, "tests", "bench"]
            for p in (ROOT / folder).rglob("*.py")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if line.lstrip().startswith(tuple(f"{kw} {s}" + end for s in STAGES
                                              for kw in ("from", "import") for end in (".", " ")))]
    assert bare == []


def test_packages_declared_are_the_namespaced_stages():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p == "creditgrade" or p.startswith("creditgrade.") for p in config["packages"])
    assert {config["package-dir"][f"creditgrade.{s}"] for s in STAGES} == set(STAGES)


@pytest.mark.slow
def test_wheel_and_bento_build(tmp_path):
    """The wheel's top level is ``creditgrade`` (with its TOML, templates and static files); the bento
    builds from bentofile.yaml with that wheel and names the namespaced service."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist),
                    str(ROOT)], check=True, capture_output=True)
    wheel, = dist.glob("creditgrade-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"creditgrade", wheel.name.split("-py3")[0] + ".dist-info"}
    for data in ["features/sources.toml", "models/grades.toml", "serving/console/templates/base.html",
                 "serving/console/static/console.css"]:
        assert f"creditgrade/{data}" in names

    context = tmp_path / "context"
    (context / "dist").mkdir(parents=True)
    (context / "bentofile.yaml").write_text((ROOT / "bentofile.yaml").read_text())
    bentofile_wheel = context / "dist" / wheel.name
    bentofile_wheel.write_bytes(wheel.read_bytes())
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    (tmp_path / "prom").mkdir()
    subprocess.run([str(Path(sys.executable).with_name("bentoml")), "build", "--output", "tag"], cwd=context,
                   env=env, check=True, capture_output=True, text=True)
    bento_yaml, = (tmp_path / "bentoml" / "bentos" / "creditgrade").glob("*/bento.yaml")
    assert "service: creditgrade.serving.service:CreditGrade" in bento_yaml.read_text()
    assert (bento_yaml.parent / "env" / "python" / "wheels" / wheel.name).exists()
