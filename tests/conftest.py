"""Shared fixtures: a fresh store per test, the trained home of the session and the in-process service, on
SQLite or, when CREDITGRADE_TEST_DB_URL is set, on that PostgreSQL server (shared data and helpers:
``tests/helpers.py``)."""
from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.helpers import database, drop_databases, forget_http_metrics, make_keys, point_at

os.environ.setdefault("CREDITGRADE_ID_KEY", "test-only-key-not-secret")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "cg-prom"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


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
    """A store with empty tables, serving's too (dropped and re-created on PostgreSQL)."""
    from creditgrade.features.store import metadata
    from creditgrade.serving import tables

    s = tables.open_store()
    if s.engine.dialect.name != "sqlite":
        tables.metadata.drop_all(s.engine)   # first: its tables refer to the subjects
        metadata.drop_all(s.engine)
        metadata.create_all(s.engine)
        tables.create_tables(s)
    yield s
    s.dispose()


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A home with a small synthetic population ingested and champions trained for all segments.

    ``template`` is the store as built, never opened again (private copies are made from it:
    ``helpers.database(folder, trained.template)``); ``db_url`` is a copy the tests share. Point the
    environment at it with the ``trained_env`` fixture or ``helpers.point_at``. Built once per session
    (about a minute), with the scorecard and LightGBM: the EBM fits ten times slower here and has its own
    tests (``test_segment_ebm``, ``test_versions``).
    """
    from creditgrade.data.sample.generator import write_population
    from creditgrade.features.frames import Frames
    from creditgrade.features.ingest import ingest_files
    from creditgrade.serving.tables import open_store
    from creditgrade.training.pipeline import train_segment

    home = tmp_path_factory.mktemp("trained-home")
    template = database(home / "template")
    mp = pytest.MonkeyPatch()
    point_at(SimpleNamespace(home=home, db_url=template), mp)
    paths = write_population(home / "population", n_smes=800, n_households=700, n_practitioners=500, seed=11)
    store = open_store(template)
    ingest_files(store, [paths["subjects"], paths["records"], paths["outcomes"]])
    results = {}
    for segment in ("sme", "household", "practitioner"):
        results[segment] = train_segment(Frames.from_store(store, segment), segment, kinds=("scorecard", "lightgbm"))
    store.dispose()
    mp.undo()
    yield SimpleNamespace(home=home, db_url=database(home, template), template=template, paths=paths,
                          results=results)
    drop_databases()


@pytest.fixture
def trained_env(trained, monkeypatch):
    """The environment pointing at the trained home and its shared store; the trained namespace."""
    point_at(trained, monkeypatch)
    return trained


@pytest.fixture(scope="module")
def api(trained, tmp_path_factory):
    """The service in process (BentoML's ASGI app with its middleware, through httpx) over a private copy of
    the trained store: ``api.call(path, json, key) -> httpx.Response``, ``api.keys``, ``api.url``."""
    import httpx

    mp = pytest.MonkeyPatch()
    url = point_at(trained, mp, database(tmp_path_factory.mktemp("serving"), trained.template))
    keys = make_keys(url, pd.read_parquet(trained.paths["subjects"]))
    from creditgrade.serving.service import CreditGrade

    forget_http_metrics()
    app = CreditGrade.to_asgi()
    loop = asyncio.new_event_loop()
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")

    def call(path, json=None, key=None, method="POST", headers=None, **kw):
        headers = {**({"X-API-Key": key} if key else {}), **(headers or {})}
        return loop.run_until_complete(client.request(method, path, json=json, headers=headers, **kw))

    async def close():  # inside the loop, so that gathering no leftover task is fine too
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)

    yield SimpleNamespace(call=call, keys=keys, url=url)
    loop.run_until_complete(close())
    loop.close()
    forget_http_metrics()
    mp.undo()
