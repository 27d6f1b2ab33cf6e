"""API keys: random, shown once, stored as their SHA-256 with a role, its scope and a unique name; listed
with when each was created, last used and revoked."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from creditgrade.features import ids
from creditgrade.features.errors import CreditgradeError
from creditgrade.features.store import Store, subjects
from creditgrade.serving.tables import api_key_uses, api_keys

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
        raise CreditgradeError("townships: each must be a 9-digit township code (`creditgrade townships` lists them)")
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
    taken = CreditgradeError(f"name: a key named {name!r} exists already (names are unique; "
                             "`creditgrade keys list` shows them)")
    with store.engine.begin() as conn:
        if conn.execute(select(api_keys.c.key_id).where(api_keys.c.name == name)).first() is not None:
            raise taken
        try:
            conn.execute(insert(api_keys).values(
                key_hash=hash_key(key), name=name, role=role, townships=",".join(codes) or None,
                subject_key=key_of_subject, created_at=dt.datetime.now(dt.timezone.utc)))
        except IntegrityError:  # created by another process since the check
            raise taken from None
    return key


def revoke_key(store: Store, name: str) -> int:
    """Revoke the live key of that name (stores from before names were unique: every one); returns how
    many. An unknown name, or one whose key is revoked already, is an error."""
    with store.engine.begin() as conn:
        n = conn.execute(update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                         .values(revoked_at=dt.datetime.now(dt.timezone.utc))).rowcount
        if n == 0:
            known = conn.execute(select(api_keys.c.key_id).where(api_keys.c.name == name)).first() is not None
            raise CreditgradeError(f"name: the key named {name!r} is revoked already" if known else
                                   f"name: no key named {name!r} (`creditgrade keys list` shows them)")
    return n


def record_use(store: Store, key_id: int) -> None:
    """Stamp a key as used now."""
    now = dt.datetime.now(dt.timezone.utc)
    with store.engine.begin() as conn:
        if conn.execute(update(api_key_uses).where(api_key_uses.c.key_id == key_id)
                        .values(last_used_at=now)).rowcount == 0:
            conn.execute(insert(api_key_uses).values(key_id=key_id, last_used_at=now))


def list_keys(store: Store) -> pd.DataFrame:
    """Every key, oldest first: name, role, scope (townships or subject), created, last used, revoked."""
    k = api_keys.c
    q = (select(k.name, k.role, k.townships, k.subject_key, k.created_at, api_key_uses.c.last_used_at, k.revoked_at)
         .select_from(api_keys.outerjoin(api_key_uses, api_key_uses.c.key_id == k.key_id)).order_by(k.key_id))
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
        shown = dict(conn.execute(select(subjects.c.subject_key, subjects.c.display_id).where(
            subjects.c.subject_key.in_({r.subject_key for r in rows if r.subject_key}))).all())
    return pd.DataFrame([{"name": r.name, "role": r.role, "scope": _scope(r, shown), "created": r.created_at,
                          "last_used": r.last_used_at, "revoked": r.revoked_at} for r in rows],
                        columns=["name", "role", "scope", "created", "last_used", "revoked"])


def _scope(row, shown: dict) -> str:
    if row.townships:
        return "townships " + row.townships
    if row.subject_key:
        return "subject " + ids.redact(shown.get(row.subject_key, "?"))
    return "-"  # the role's reach


def townships(store: Store) -> pd.DataFrame:
    """The townships of the stored households, with their names (the code where none is stored) and how
    many villages and households each has."""
    s = subjects.c
    q = (select(s.township_code, func.max(s.township_name).label("township_name"),
                func.count(func.distinct(s.village_code)).label("villages"), func.count().label("households"))
         .where(s.segment == "household", s.township_code.is_not(None))
         .group_by(s.township_code).order_by(s.township_code))
    out = store.frame(q)
    out["township_name"] = out["township_name"].fillna(out["township_code"])
    return out
