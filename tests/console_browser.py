"""The real server and Debian's Chromium (through Playwright, no browser download) for the console's
browser tests: one server and one browser per test module, a fresh browser context per test that records
every request it makes, and screenshots under ``test-output/console``.

Chromium missing fails the tests (CI installs it with apt); a developer without it may set
``CREDITGRADE_SKIP_BROWSER=1`` to skip them with that message."""
from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pandas as pd
import pytest

from creditgrade.serving.launch import ROOT, free_port, start, stop

OUT = ROOT / "test-output" / "console"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CREDITGRADE_SKIP_BROWSER") == "1":
        pytest.skip("chromium is not installed (CREDITGRADE_SKIP_BROWSER=1): apt-get install -y chromium")
    pytest.fail("chromium is not installed: apt-get install -y chromium (or set CREDITGRADE_SKIP_BROWSER=1 "
                "to skip the browser tests on a developer machine)", pytrace=False)


def prepare_store(url: str, keys: SimpleNamespace, subjects: pd.DataFrame) -> None:
    """Warnings from a household scan, a household subject's key, and an overdue objection on an SME."""
    from sqlalchemy import insert, select

    from creditgrade.features import freshness
    from creditgrade.features.store import Store, objections, records
    from creditgrade.serving.keys import create_key
    from creditgrade.serving.warnings import scan

    households = subjects[subjects["segment"] == "household"].set_index("subject_id")
    keys.household_village = households.loc[keys.household, "village_code"]
    keys.household_township = households.loc[keys.household, "township_code"]
    keys.other_village = households.loc[keys.other_household, "village_code"]
    store = Store(url)
    day = freshness.default_as_of(freshness.of_store(store, "household"), "household")
    scan(store, "household", day)
    keys.household_subject = create_key(store, "subject", "test-household-subject", subject_id=keys.household,
                                        segment="household")
    with store.engine.begin() as conn:
        rid = conn.execute(select(records.c.record_id).where(records.c.subject_key == keys.smes[1])
                           .order_by(records.c.record_id)).scalar()
        filed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)
        conn.execute(insert(objections).values(record_id=rid, subject_key=keys.smes[1], filed_at=filed, status="open",
                                               reason="overdue test objection", due_date=(filed + dt.timedelta(days=20)).date()))
    keys.overdue_record = rid
    store.dispose()


@pytest.fixture(scope="module")
def console(trained, tmp_path_factory):
    """The real server over a private copy of the trained store, with keys for every role."""
    from tests.helpers import database, make_keys, point_at

    mp = pytest.MonkeyPatch()
    url = point_at(trained, mp, database(tmp_path_factory.mktemp("serving"), trained.template))
    subjects = pd.read_parquet(trained.paths["subjects"])
    keys = make_keys(url, subjects)
    prepare_store(url, keys, subjects)
    port = free_port()
    log = tmp_path_factory.mktemp("console-server") / "server.log"
    proc = start(dict(os.environ), log, port)
    yield SimpleNamespace(base=f"http://127.0.0.1:{port}", host=f"127.0.0.1:{port}", keys=keys, url=url, log=log,
                          subjects=subjects)
    stop(proc)
    mp.undo()


@pytest.fixture(scope="module")
def browser(console):
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, console):
    """A page in a fresh context (no cookies); ``page.hosts`` are the hosts of every request it made."""
    context = browser.new_context(base_url=console.base, locale="zh-CN", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    hosts: list[str] = []
    context.on("request", lambda r: hosts.append(urlsplit(r.url).netloc or r.url.split(":", 1)[0]))
    tab = context.new_page()
    tab.hosts = hosts
    yield tab
    context.close()
    outside = sorted(set(h for h in hosts if h not in (console.host, "data")))
    assert not outside, f"requests to outside hosts: {outside}"


def shot(page, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def follow(page, selector: str) -> None:
    """Click what loads another page (a link, a form) and wait until it has loaded: ``count()`` reads the
    page as it is, so a count right after a bare click may read the page being left (it did once, under load)."""
    with page.expect_navigation():
        page.click(selector)


def sign_in(page, key: str) -> None:
    page.goto("/")
    page.fill("#key", key)
    page.click("form[action='/console/sign-in'] button")
    page.wait_for_load_state()
