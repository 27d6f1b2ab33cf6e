"""Shared test data and helpers, no tests: populations for the feature builders, databases on the suite's
back end (SQLite, or PostgreSQL when ``CREDITGRADE_TEST_DB_URL`` is set), the environment pointing at the
trained home, and keys and request bodies for the service."""
from __future__ import annotations

import os
import sqlite3
import uuid
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from creditgrade.features.frames import Frames, keyed, to_datetime
from creditgrade.features.schemas import kinds

if __name__ != "tests.helpers":  # a second copy of this module would make databases its session never drops
    raise ImportError(f"import tests.helpers, not {__name__}: one copy per session owns the test databases")

# ---------------------------------------------------------------- populations

SEVERITIES = np.array(["minor", "general", "serious"])
DAY0 = np.datetime64("2016-01-01")


def random_population(n_per_segment: int = 60, records_per_subject: int = 40, seed: int = 0) -> Frames:
    """A rich random population covering every kind of record, for point-in-time tests of the builders.

    Deliberately cruder than data/sample/generator.py: it exists to exercise every branch of every builder
    (every kind, open and closed records, repairs, late reports), not to carry signal.
    """
    rng = np.random.default_rng(seed)
    spec = kinds()
    subjects = []
    for seg in ("sme", "household", "practitioner"):
        n = n_per_segment
        subjects.append(pd.DataFrame({
            "subject_key": [f"{seg[:2].upper()}{i:06d}" for i in range(n)],
            "segment": seg,
            "sector": rng.choice(["manufacturing", "catering", "transport", "unknown_sector"], n),
            "size": rng.choice(["micro", "small", "medium"], n),
            "founded": DAY0 + rng.integers(-3000, 2500, n).astype("timedelta64[D]"),
            "members": rng.integers(1, 7, n),
            "labour_force": rng.integers(0, 3, n),
            "land_mu": rng.gamma(2.0, 2.0, n),
            "agri_insurance": rng.random(n) < 0.5,
            "coop_member": rng.random(n) < 0.3,
            "profession": rng.choice(["lawyer", "doctor", "agent"], n),
            "licensed_since": DAY0 + rng.integers(-3000, 2500, n).astype("timedelta64[D]"),
        }))
    subjects = pd.concat(subjects, ignore_index=True)
    n_rec = len(subjects) * records_per_subject
    kind = rng.choice(list(spec), n_rec)
    who = rng.integers(0, len(subjects), n_rec)
    start = DAY0 + rng.integers(0, 3000, n_rec).astype("timedelta64[D]")
    has_end = rng.random(n_rec) < 0.6
    end = np.where(has_end, start + rng.integers(0, 900, n_rec).astype("timedelta64[D]"), np.datetime64("NaT"))
    reported = start + rng.integers(0, 120, n_rec).astype("timedelta64[D]")
    repairable = np.array([spec[k].get("repairable", False) for k in kind])
    repaired = np.where(repairable & (rng.random(n_rec) < 0.5),
                        start + rng.integers(400, 1500, n_rec).astype("timedelta64[D]"), np.datetime64("NaT"))
    category = np.array([rng.choice(spec[k]["categories"]) if "categories" in spec[k] else None for k in kind],
                        dtype=object)
    records = pd.DataFrame({
        "record_id": np.arange(1, n_rec + 1),
        "subject_key": subjects["subject_key"].to_numpy()[who],
        "segment": subjects["segment"].to_numpy()[who],
        "source": [spec[k]["source"] for k in kind],
        "kind": kind,
        "start_date": start, "end_date": end, "reported_date": reported,
        "severity": rng.choice(SEVERITIES, n_rec),
        "amount": rng.lognormal(8, 2, n_rec),
        "value": rng.integers(0, 120, n_rec).astype(float),
        "category": category,
        "account": rng.choice(["L1", "L2", "L3"], n_rec),
        "repaired_date": repaired,
    })
    outcomes = pd.DataFrame(columns=["subject_key", "segment", "as_of", "horizon_months", "defaulted"])
    return Frames(subjects, records, outcomes)


@cache
def _generated(n_smes: int, n_households: int, n_practitioners: int, seed: int) -> tuple[Frames, pd.DataFrame]:
    from creditgrade.data.sample.generator import generate  # a broken generator fails the tests, never skips them

    pop = generate(n_smes, n_households, n_practitioners, seed)
    return Frames.from_population(pop), to_datetime(keyed(pop["oracle"]), ["as_of"])


def generated(n_smes: int, n_households: int, n_practitioners: int, seed: int = 11) -> Frames:
    """A population from data/sample/generator.py, cached."""
    return _generated(n_smes, n_households, n_practitioners, seed)[0]


def generated_oracle(n_smes: int, n_households: int, n_practitioners: int, seed: int = 11) -> pd.DataFrame:
    """The oracle (``subject_key``, ``as_of``, ``true_pd``) of the same generated population."""
    return _generated(n_smes, n_households, n_practitioners, seed)[1]


@cache
def practitioner_fit(kind: str):
    """One family fitted out of time on 300 generated practitioners (cached), and the test rows."""
    from creditgrade.features.build import build_training_set
    from creditgrade.models.grades import Scale, config
    from creditgrade.training.pipeline import fit_grade_model, split_by_date, without_defaulters

    data = build_training_set(generated(0, 0, 300), "practitioner")
    split = split_by_date(without_defaulters(data, Scale.from_config(config("practitioner"))))
    return fit_grade_model(kind, "practitioner", split), split.test


# ---------------------------------------------------------------- databases and the environment

def _on_server(statement: str, url: str | None = None) -> list:
    """Run one statement outside a transaction on the PostgreSQL server of ``url`` (by default
    :data:`TEST_DB_URL`)."""
    engine = create_engine(url or TEST_DB_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(text(statement))
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def _worker_url(url: str | None) -> str | None:
    """Under pytest-xdist on PostgreSQL, a fresh database of this worker's own beside ``url``, which the
    environment then names (the ``store`` fixture drops and re-creates tables: workers must not share them)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    mine = make_url(url).set(database=f"{make_url(url).database}_{worker}")
    _on_server(f'DROP DATABASE IF EXISTS "{mine.database}" WITH (FORCE)', url)
    _on_server(f'CREATE DATABASE "{mine.database}"', url)
    os.environ["CREDITGRADE_TEST_DB_URL"] = mine.render_as_string(hide_password=False)
    return os.environ["CREDITGRADE_TEST_DB_URL"]


TEST_DB_URL = _worker_url(os.environ.get("CREDITGRADE_TEST_DB_URL"))


def _prefix() -> str:
    return f"{make_url(TEST_DB_URL).database}_{os.getpid()}_"


def database(folder: Path, template: str | None = None) -> str:
    """The URL of a new database, a copy of ``template`` (a URL this function returned) if given: on
    PostgreSQL a database beside the test database (``CREATE DATABASE ... TEMPLATE``), else the SQLite
    file ``folder/creditgrade.db``."""
    if TEST_DB_URL is None:
        path = Path(folder) / "creditgrade.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        if template:
            src, dst = sqlite3.connect(template.removeprefix("sqlite:///")), sqlite3.connect(path)
            src.backup(dst)
            src.close(), dst.close()
        return f"sqlite:///{path}"
    name = _prefix() + uuid.uuid4().hex[:8]
    _on_server(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{make_url(template).database}"' if template else ""))
    return make_url(TEST_DB_URL).set(database=name).render_as_string(hide_password=False)


def drop_databases() -> None:
    """Drop the PostgreSQL databases this session made with :func:`database` (SQLite files go with pytest's
    temporary folders)."""
    if TEST_DB_URL is None:
        return
    for (name,) in _on_server("SELECT datname FROM pg_database"):
        if name.startswith(_prefix()):
            _on_server(f'DROP DATABASE "{name}" WITH (FORCE)')


def point_at(trained, mp: pytest.MonkeyPatch, db_url: str | None = None) -> str:
    """Point the environment at the trained home (its champions) and a store, by default its shared one
    (tests that change records take a private copy: ``database(folder, trained.template)``)."""
    db_url = db_url or trained.db_url
    mp.setenv("CREDITGRADE_HOME", str(trained.home))
    mp.setenv("CREDITGRADE_DB_URL", db_url)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    return db_url


# ---------------------------------------------------------------- the service

def make_keys(url: str, subjects: pd.DataFrame) -> SimpleNamespace:
    """One key per role, and the ids they may (or may not) see."""
    from creditgrade.serving.keys import create_key
    from creditgrade.serving.tables import open_store

    store = open_store(url)
    smes = subjects[subjects["segment"] == "sme"]["subject_id"].tolist()
    households = subjects[subjects["segment"] == "household"]
    practitioners = subjects[subjects["segment"] == "practitioner"]["subject_id"].tolist()
    township = households["village_code"].iloc[0][:9]
    mine = households[households["village_code"].str[:9] == township]["subject_id"].tolist()
    other = households[households["village_code"].str[:9] != township]["subject_id"].tolist()
    keys = SimpleNamespace(
        bank=create_key(store, "bank", "test-bank"),
        evaluator=create_key(store, "evaluator", "test-evaluator", townships=[township]),
        analyst=create_key(store, "analyst", "test-analyst"),
        regulator=create_key(store, "regulator", "test-regulator"),
        admin=create_key(store, "admin", "test-admin"),
        subject=create_key(store, "subject", "test-subject", subject_id=practitioners[0], segment="practitioner"),
        smes=smes, household=mine[0], other_household=other[0], practitioners=practitioners)
    store.dispose()
    return keys


def grade_body(subject_id, segment="sme", **extra):
    return {"subject_id": subject_id, "segment": segment, "purpose": "credit application", **extra}


def bad_check(uscc: str) -> str:
    """The code with a wrong check character."""
    return uscc[:-1] + ("0" if uscc[-1] != "0" else "1")


def forget_http_metrics() -> None:
    """Drop BentoML's HTTP metrics from Prometheus' global registry: every in-process app registers them
    once, so another module's app of the same session would clash with this one."""
    import prometheus_client

    registry = prometheus_client.REGISTRY
    held = {c for name, c in list(registry._names_to_collectors.items()) if name.startswith("bentoml_")}
    for collector in held:
        registry.unregister(collector)
