"""Shared fixtures: a fresh store per test on SQLite, or on PostgreSQL when CREDITGRADE_TEST_DB_URL is set."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("CREDITGRADE_ID_KEY", "test-only-key-not-secret")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty creditgrade home directory, and a database URL for it."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("CREDITGRADE_HOME", str(path))
    url = os.environ.get("CREDITGRADE_TEST_DB_URL") or f"sqlite:///{path / 'creditgrade.db'}"
    monkeypatch.setenv("CREDITGRADE_DB_URL", url)
    return path


@pytest.fixture
def store(home):
    """A store with empty tables (dropped and re-created on PostgreSQL)."""
    from creditgrade.features.store import Store, metadata

    s = Store()
    if s.engine.dialect.name != "sqlite":
        metadata.drop_all(s.engine)
        metadata.create_all(s.engine)
    yield s
    s.dispose()


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A home with a small synthetic population ingested (SQLite) and champions trained for all segments.

    Tests that use it point the environment at it: ``monkeypatch.setenv("CREDITGRADE_HOME", trained.home)``
    and ``CREDITGRADE_DB_URL=trained.db_url``. Built once per session (about a minute).
    """
    from types import SimpleNamespace

    from creditgrade.data.sample.generator import write_population
    from creditgrade.features.frames import Frames
    from creditgrade.features.ingest import ingest_files
    from creditgrade.features.store import Store
    from creditgrade.training.pipeline import train_segment

    home = tmp_path_factory.mktemp("trained-home")
    db_url = f"sqlite:///{home / 'creditgrade.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("CREDITGRADE_HOME", str(home))
    mp.setenv("CREDITGRADE_DB_URL", db_url)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    paths = write_population(home / "population", n_smes=800, n_households=700, n_practitioners=500, seed=11)
    store = Store(db_url)
    ingest_files(store, [paths["subjects"], paths["records"], paths["outcomes"]])
    results = {}
    for segment in ("sme", "household", "practitioner"):
        results[segment] = train_segment(Frames.from_store(store, segment), segment)
    store.dispose()
    mp.undo()
    return SimpleNamespace(home=home, db_url=db_url, paths=paths, results=results)
