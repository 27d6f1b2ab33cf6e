"""Console sessions, kept server-side: a random token in an HttpOnly, SameSite=Strict cookie; the store
keeps only its SHA-256, the key it signed in with, a CSRF token, and when it ends (idle and absolute
limits from ``console.toml``). A session whose key is revoked ends with it."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, select, update

from creditgrade.features.store import Store
from creditgrade.serving.console.config import CONFIG
from creditgrade.serving.tables import api_keys, console_sessions


@dataclass(frozen=True)
class Session:
    key_id: int
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)  # SQLite returns naive UTC


class Sessions:
    """Open, find (sliding the idle limit), and close console sessions in the store."""

    def __init__(self, store: Store):
        self.store = store
        self.idle = dt.timedelta(minutes=CONFIG["session"]["idle_minutes"])
        self.longest = dt.timedelta(hours=CONFIG["session"]["max_hours"])

    def open(self, key_id: int) -> tuple[str, Session]:
        """A new session for a key: its cookie token (shown once, never stored) and the session."""
        token, now = secrets.token_urlsafe(32), _now()
        session = Session(key_id, secrets.token_urlsafe(32))
        with self.store.engine.begin() as conn:
            conn.execute(delete(console_sessions).where(console_sessions.c.expires_at < now))
            conn.execute(insert(console_sessions).values(token_hash=_digest(token), key_id=key_id, csrf=session.csrf,
                                                         created_at=now, expires_at=now + self.idle))
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session of a cookie token (its key not revoked), its idle limit moved on; else None."""
        if not token:
            return None
        s, now = console_sessions.c, _now()
        q = select(s.key_id, s.csrf, s.created_at, s.expires_at).join(
            api_keys, and_(api_keys.c.key_id == s.key_id, api_keys.c.revoked_at.is_(None))).where(
            s.token_hash == _digest(token))
        with self.store.engine.begin() as conn:
            row = conn.execute(q).first()
            if row is None or _aware(row.expires_at) <= now:
                return None
            ends = min(now + self.idle, _aware(row.created_at) + self.longest)
            if ends - _aware(row.expires_at) > dt.timedelta(minutes=1):  # write at most once a minute
                conn.execute(update(console_sessions).where(s.token_hash == _digest(token)).values(expires_at=ends))
        return Session(row.key_id, row.csrf)

    def close(self, token: str | None) -> None:
        if token:
            with self.store.engine.begin() as conn:
                conn.execute(delete(console_sessions).where(console_sessions.c.token_hash == _digest(token)))


def same_token(expected: str | None, given: str | None) -> bool:
    """Whether a form's CSRF token is the expected one (constant time)."""
    return bool(expected and given) and hmac.compare_digest(expected, given)
