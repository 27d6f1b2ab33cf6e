import datetime as dt
import re

import pytest

from creditgrade.features import ids

VALID_RIC = ids.make_ric("11010519791231002")
VALID_USCC = ids.make_uscc("91350100M000100Y4")


def test_make_and_validate_ric_and_uscc():
    assert ids.validate_ric(VALID_RIC) == VALID_RIC
    assert ids.validate_subject_id("sme", VALID_USCC) == VALID_USCC


def test_bad_check_digit_rejected_without_leaking_number():
    bad = VALID_RIC[:-1] + ("0" if VALID_RIC[-1] != "0" else "1")
    with pytest.raises(ValueError) as err:
        ids.validate_ric(bad, field="head_id")
    assert "head_id" in str(err.value)
    assert bad not in str(err.value) and ids.mask_ric(bad) in str(err.value)


def test_pilot_era_uscc_needs_override():
    bad = VALID_USCC[:-1] + ("0" if VALID_USCC[-1] != "0" else "1")
    with pytest.raises(ValueError, match="unified social credit code"):
        ids.validate_subject_id("sme", bad)
    assert ids.validate_subject_id("sme", bad, allow_bad_check=True) == bad


def test_hash_is_keyed_and_masked_form(monkeypatch):
    h1 = ids.hash_ric(VALID_RIC)
    monkeypatch.setenv("CREDITGRADE_ID_KEY", "another-key")
    ids._key.cache_clear()
    try:
        assert ids.hash_ric(VALID_RIC) != h1
    finally:
        ids._key.cache_clear()
    assert re.fullmatch(r"[0-9a-f]{64}", h1)
    assert ids.mask_ric("41010519491231123X") == "4101**********123X"


def test_redact_masks_identity_numbers_in_text():
    text = f"subject {VALID_RIC} failed"
    assert VALID_RIC not in ids.redact(text)


def test_add_months_clamps_to_month_end():
    assert ids.add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert ids.add_months(dt.date(2019, 3, 15), 60) == dt.date(2024, 3, 15)


def test_key_file_is_owner_only(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDITGRADE_HOME", str(tmp_path))
    monkeypatch.delenv("CREDITGRADE_ID_KEY")
    path = ids.ensure_key_file()
    try:
        assert path.stat().st_mode & 0o777 == 0o600
        assert len(path.read_text()) == 64
    finally:
        ids._key.cache_clear()
