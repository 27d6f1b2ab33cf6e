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
    from features.store import Store, metadata

    s = Store()
    if s.engine.dialect.name != "sqlite":
        metadata.drop_all(s.engine)
        metadata.create_all(s.engine)
    yield s
    s.dispose()
