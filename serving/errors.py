"""The error a caller can act on: an HTTP status and a message naming the field and the rule."""
from __future__ import annotations

import logging
import uuid

from creditgrade.features.ids import redact

log = logging.getLogger("creditgrade.serving")


RULES = {400: "malformed", 401: "api_key", 403: "not_allowed", 404: "not_found", 409: "conflict",
         413: "too_large", 415: "media_type", 422: "invalid", 500: "internal"}
"""The rule an answer of that status names when the refusal gives none of its own."""


class ApiError(Exception):
    """A refusal with its status (4xx, or 500 for a failure); the message never carries an identity number
    in clear."""

    def __init__(self, status: int, message: str, field: str | None = None, rule: str | None = None):
        super().__init__(redact(message))
        self.status = status
        self.message = redact(message)
        self.field = field
        self.rule = rule or RULES.get(status)

    def body(self) -> dict:
        return {"error": self.message, "field": self.field, "rule": self.rule}


def bad_input(message: str, field: str) -> ApiError:
    return ApiError(422, message, field)


def internal(where: str) -> ApiError:
    """The 500 for the exception being handled: logged with its traceback (identity numbers masked by
    ``serving.logs``) under a reference the caller gets, so the two can be matched."""
    ref = uuid.uuid4().hex[:12]
    log.exception("internal error %s in %s", ref, where)
    return ApiError(500, f"internal error (reference {ref}); the server log has the details")
