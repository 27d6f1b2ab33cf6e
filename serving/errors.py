"""The error a caller can act on: an HTTP status and a message naming the field and the rule."""
from __future__ import annotations

from features.ids import redact


class ApiError(Exception):
    """A refusal with its status (4xx); the message never carries an identity number in clear."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(redact(message))
        self.status = status
        self.message = redact(message)
        self.field = field

    def body(self) -> dict:
        return {"error": self.message, "field": self.field}


def bad_input(message: str, field: str) -> ApiError:
    return ApiError(422, message, field)
