"""API keys: random, shown once, stored as their SHA-256 with a role and its scope."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import insert, select, update

from features import ids
from features.errors import CreditgradeError
from features.store import Store, api_keys, subjects

ROLES = ("bank", "evaluator", "analyst", "regulator", "subject", "admin")
TOWNSHIP = re.compile(r"\d{9}")
PREFIX = "cg_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(store: Store, role: str, name: str, townships=None, subject_id: str | None = None,
               segment: str | None = None) -> str:
    """A new key for ``role`` (evaluators: their township codes; subjects: their own id and segment).

    Returns the key; only its hash is stored, so it cannot be shown again.
    """
    if role not in ROLES:
        raise CreditgradeError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not name or len(name) > 100:
        raise CreditgradeError("name: 1 to 100 characters")
    codes = [t.strip() for t in (townships.split(",") if isinstance(townships, str) else townships or [])]
    if role == "evaluator" and not codes:
        raise CreditgradeError("townships: an evaluator key needs at least one township code")
    if any(not TOWNSHIP.fullmatch(c) for c in codes):
        raise CreditgradeError("townships: each must be a 9-digit township code")
    key_of_subject = None
    if role == "subject":
        if not subject_id or not segment:
            raise CreditgradeError("subject_id and segment: a subject key names the subject it belongs to")
        try:
            key_of_subject = ids.subject_key(segment, ids.validate_subject_id(segment, subject_id))
        except ValueError as exc:
            raise CreditgradeError(str(exc)) from None
        with store.engine.connect() as conn:
            if conn.execute(select(subjects.c.subject_key).where(
                    subjects.c.subject_key == key_of_subject, subjects.c.segment == segment)).first() is None:
                raise CreditgradeError(f"subject_id: no {segment} subject with that id in the store")
    key = PREFIX + secrets.token_urlsafe(32)
    with store.engine.begin() as conn:
        conn.execute(insert(api_keys).values(
            key_hash=hash_key(key), name=name, role=role, townships=",".join(codes) or None,
            subject_key=key_of_subject, created_at=dt.datetime.now(dt.timezone.utc)))
    return key


def revoke_key(store: Store, name: str) -> int:
    """Revoke every live key of that name; returns how many."""
    with store.engine.begin() as conn:
        return conn.execute(update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                            .values(revoked_at=dt.datetime.now(dt.timezone.utc))).rowcount
