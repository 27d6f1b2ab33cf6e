"""API keys (issue 14, item 1): unique names, revoking an unknown name is an error, keys listed with their
last use (written at most once a minute), the audit log naming the key, townships listed with their names."""
from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from creditgrade.features.errors import CreditgradeError
from creditgrade.features.store import subjects
from creditgrade.serving.tables import api_key_uses
from creditgrade.serving import audit, auth
from creditgrade.serving.auth import Keys
from creditgrade.serving.keys import create_key, list_keys, revoke_key, townships
from creditgrade.serving.schemas import AuditFilter


def add_households(store, rows):
    """Household subject rows: (village code, village name or None, township name or None)."""
    with store.engine.begin() as conn:
        conn.execute(insert(subjects), [
            dict(subject_key=f"H{village}{i:03d}", segment="household", display_id=f"H{village}{i:03d}",
                 name=f"household {i}", village_code=village, township_code=village[:9], village_name=vname,
                 township_name=tname) for i, (village, vname, tname) in enumerate(rows)])


def test_names_are_unique(store):
    create_key(store, "bank", "icbc-credit-desk")
    with pytest.raises(CreditgradeError, match="name: a key named 'icbc-credit-desk' exists already"):
        create_key(store, "analyst", "icbc-credit-desk")
    assert list_keys(store)["name"].tolist() == ["icbc-credit-desk"]


def test_revoking_an_unknown_or_revoked_name_is_an_error(store):
    create_key(store, "bank", "desk")
    with pytest.raises(CreditgradeError, match="no key named 'nosuch'"):
        revoke_key(store, "nosuch")
    assert revoke_key(store, "desk") == 1
    with pytest.raises(CreditgradeError, match="revoked already"):
        revoke_key(store, "desk")
    assert list_keys(store)["revoked"].notna().all()


def test_list_shows_scope_and_last_use_written_at_most_once_a_minute(store, monkeypatch):
    add_households(store, [("410122101201", None, None)])
    bank = create_key(store, "bank", "bank-desk")
    create_key(store, "evaluator", "evaluator-1", townships=["410122101"])
    listed = list_keys(store).set_index("name")
    assert listed.loc["evaluator-1", "scope"] == "townships 410122101"
    assert listed["last_used"].isna().all()
    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    keys = Keys(store)
    keys.authenticate(bank)
    first = list_keys(store).set_index("name").loc["bank-desk", "last_used"]
    assert first is not None and first == first
    writes = []
    monkeypatch.setattr(auth, "record_use", lambda s, key_id: writes.append(key_id))
    clock[0] += 59
    keys.authenticate(bank)
    assert writes == []  # within the minute: no write
    clock[0] += 2
    keys.authenticate(bank)
    assert len(writes) == 1
    with store.engine.connect() as conn:
        assert len(conn.execute(select(api_key_uses)).all()) == 1


def test_audit_log_names_the_key(store):
    bank = create_key(store, "bank", "bank-of-zhengzhou")
    regulator = create_key(store, "regulator", "pboc-branch")
    keys = Keys(store)
    with store.engine.begin() as conn:
        audit.write(conn, [audit.entry(keys.authenticate(bank), "grade", 200, segment="sme")])
    entries = audit.read(store, keys.authenticate(regulator), AuditFilter(limit=10))
    assert [(e.action, e.key_name) for e in entries] == [("grade", "bank-of-zhengzhou")]
    assert audit.read(store, keys.authenticate(regulator), AuditFilter(limit=1))[0].key_name == "pboc-branch"


def test_townships_with_names_village_counts_and_code_fallback(store):
    add_households(store, [("410122101201", "东村", "城关镇"), ("410122101201", "东村", "城关镇"),
                           ("410122101202", "西村", "城关镇"), ("410122102201", None, None)])
    table = townships(store)
    assert table.to_dict("records") == [
        {"township_code": "410122101", "township_name": "城关镇", "villages": 2, "households": 3},
        {"township_code": "410122102", "township_name": "410122102", "villages": 1, "households": 1}]
