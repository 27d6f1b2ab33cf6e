"""Who may do what: the caller's key becomes a :class:`Principal`; rights per role and per subject.

Rights: banks grade SMEs, and (as rural credit cooperatives) households and practitioners; evaluators grade
households of their own townships; analysts grade SMEs;
regulators read everything (grades, explanations, reports, objections, warnings, village ratings, evaluation
sheets, the audit log); subjects see and object only for themselves; admins answer objections and read
reports, warnings and village ratings. Early warnings are listed and acknowledged within the same reach as
grading (banks and analysts: SMEs; evaluators: households of their townships); regulators only read them.
Every computation on a natural person (household, practitioner) — a grade, a batch item, an explanation,
a report, an evaluation sheet — needs a consent reference, whatever the role, unless they ask about themselves.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from creditgrade.features.store import Store
from creditgrade.serving.errors import ApiError
from creditgrade.serving.keys import hash_key, record_use
from creditgrade.serving.tables import api_keys

PERSONS = ("household", "practitioner")
CACHE_SECONDS = 1.0  # a revoked key stops working within this long (a lookup a second per key costs nothing)
USE_SECONDS = 60.0  # a key's "last used" is written at most this often

RIGHTS: dict[str, frozenset[str]] = {
    "grade": frozenset({"bank", "evaluator", "analyst", "regulator", "subject"}),
    "grade_batch": frozenset({"bank", "evaluator", "analyst", "regulator"}),
    "explain": frozenset({"bank", "evaluator", "analyst", "regulator", "subject"}),
    "report": frozenset({"regulator", "subject", "admin"}),
    "file_objection": frozenset({"subject"}),
    "list_objections": frozenset({"regulator", "subject", "admin"}),
    "resolve_objection": frozenset({"admin"}),
    "audit": frozenset({"regulator"}),
    "warnings": frozenset({"bank", "evaluator", "analyst", "regulator", "admin"}),
    "acknowledge_warning": frozenset({"bank", "evaluator", "analyst", "admin"}),
    "work_warning": frozenset({"bank", "evaluator", "analyst", "admin"}),
    "villages": frozenset({"evaluator", "regulator", "admin"}),
    "evaluation_sheet": frozenset({"evaluator", "regulator"}),
}
SEGMENTS: dict[str, tuple[str, ...]] = {"bank": ("sme",), "analyst": ("sme",), "evaluator": ("household",)}
"""The segments a role may query and list (a role not named: every segment)."""
GRADING = frozenset({"grade", "grade_batch", "explain"})
GRADING_SEGMENTS: dict[str, tuple[str, ...]] = {"bank": ("sme", "household", "practitioner")}
"""A wider reach when grading: rural credit cooperatives grade households and practitioners (with consent)."""
NEEDS_CONSENT = frozenset({"grade", "grade_batch", "explain", "report", "evaluation_sheet"})
"""The actions that compute a grade."""


@dataclass(frozen=True)
class Principal:
    key_id: int
    role: str
    name: str
    townships: frozenset[str] = frozenset()
    subject_key: str | None = None


class Keys:
    """Looks keys up by hash, caching live ones for :data:`CACHE_SECONDS`."""

    def __init__(self, store: Store):
        self.store = store
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._by_id: dict[int, Principal] = {}
        self._used: dict[int, float] = {}

    def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                           "Authorization")
        digest = hash_key(key.strip())
        hit = self._cache.get(digest)
        if hit and hit[0] > time.monotonic():
            return self._record_use(hit[1])
        with self.store.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == digest,
                                                      api_keys.c.revoked_at.is_(None))).first()
        if row is None:
            self._cache.pop(digest, None)
            raise ApiError(401, "unknown or revoked API key", "Authorization")
        principal = _principal(row)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + CACHE_SECONDS, principal)
        self._by_id[principal.key_id] = principal
        return self._record_use(principal)

    def _record_use(self, principal: Principal) -> Principal:
        now = time.monotonic()
        if now - self._used.get(principal.key_id, -USE_SECONDS) >= USE_SECONDS:
            self._used[principal.key_id] = now
            record_use(self.store, principal.key_id)
        return principal

    def by_id(self, key_id: int | None) -> Principal | None:
        """The principal of a live key by its id (batch items carry the id the gate authenticated)."""
        if key_id is None:
            return None
        if key_id not in self._by_id:
            with self.store.engine.connect() as conn:
                row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id,
                                                          api_keys.c.revoked_at.is_(None))).first()
            if row is None:
                return None
            self._by_id[key_id] = _principal(row)
        return self._by_id[key_id]


def _principal(row) -> Principal:
    return Principal(row.key_id, row.role, row.name, frozenset((row.townships or "").split(",")) - {""},
                     row.subject_key)


def key_from_headers(headers) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key``."""
    auth = headers.get("authorization") or ""
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("x-api-key")


def check_role(principal: Principal, action: str) -> None:
    if principal.role not in RIGHTS[action]:
        raise ApiError(403, f"role {principal.role!r} may not {action.replace('_', ' ')}")


def check_subject(principal: Principal, action: str, segment: str, subject_key: str,
                  township: str | None, consent_ref: str | None, id_field: str = "subject_id",
                  role_checked: bool = False) -> None:
    """Refuse (403) a role that may not ``action`` (unless ``role_checked``: the caller, the API's gate, did),
    a subject outside the principal's reach, or a person queried without consent; ``id_field`` is the
    request field naming the subject."""
    if not role_checked:
        check_role(principal, action)
    if principal.role == "subject":
        if subject_key != principal.subject_key:
            raise ApiError(403, "a subject key may only see its own subject", id_field)
        return
    check_reach(principal, action, segment, township, "segment", id_field)
    if action in NEEDS_CONSENT and segment in PERSONS and not consent_ref:
        raise ApiError(403, f"consent_ref is required to query a natural person ({segment})", "consent_ref")


def segments_of(role: str, action: str) -> tuple[str, ...] | None:
    """The segments ``role`` may ``action`` (None: every segment)."""
    if action in GRADING and role in GRADING_SEGMENTS:
        return GRADING_SEGMENTS[role]
    return SEGMENTS.get(role)


def check_reach(principal: Principal, action: str, segment: str, township: str | None,
                segment_field: str = "segment", id_field: str = "subject_id") -> None:
    """Refuse (403) a subject of a segment the role may not ``action``, or, for an evaluator, a household
    outside its townships; the fields named are those of the request that led there."""
    allowed = segments_of(principal.role, action)
    if allowed and segment not in allowed:
        raise ApiError(403, f"role {principal.role!r} may only query segment {', '.join(allowed)}", segment_field)
    if principal.role == "evaluator" and township not in principal.townships:
        raise ApiError(403, "the household is outside the evaluator's townships", id_field)


def listing_scope(principal: Principal, action: str, segment: str | None) -> tuple[str | None, frozenset | None]:
    """The segment and townships a listing by ``principal`` is confined to: banks and analysts see SMEs,
    evaluators households of their townships (a segment asked for outside the role's is refused, 403);
    others see what they ask for (None: every segment, every township)."""
    check_role(principal, action)
    allowed = SEGMENTS.get(principal.role)
    if allowed:
        if segment is not None and segment not in allowed:
            raise ApiError(403, f"role {principal.role!r} may only query segment {', '.join(allowed)}", "segment")
        if segment is None:
            if len(allowed) != 1:
                raise ApiError(422, f"segment: required for role {principal.role!r} (one of {', '.join(allowed)})",
                               "segment")
            segment = allowed[0]
    return segment, (principal.townships if principal.role == "evaluator" else None)


def township_scope(principal: Principal, action: str, asked: list[str] | None) -> frozenset | None:
    """The townships a rating query by ``principal`` covers: an evaluator's own (those asked must be among
    them, else 403); for others those asked, or None for all."""
    check_role(principal, action)
    if principal.role != "evaluator":
        return frozenset(asked) if asked is not None else None
    outside = sorted(set(asked or ()) - principal.townships)
    if outside:
        raise ApiError(403, f"townships: {', '.join(outside[:5])} outside the evaluator's townships", "townships")
    return frozenset(asked) if asked else principal.townships
