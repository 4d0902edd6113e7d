"""The base of the assistant's own errors: a message for the user, an HTTP status and a kind, mapped once by the API.

A domain module raises ``SomethingWrong("what happened and what to do")``; api/errors.py turns every
``AssistantError`` into ``{"error": {"type": kind, "message": message, **extra}}`` with ``status`` (and ``headers``,
e.g. Retry-After), and the CLI prints the message. Messages never name the server's file system.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AssistantError(Exception):
    status: ClassVar[int] = 500
    kind: ClassVar[str] = "internal"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.message = message
        self.headers = headers
        self.extra = extra

    def __str__(self) -> str:
        return self.message


class InvalidInput(AssistantError):
    status, kind = 422, "invalid_request"


class NotFound(AssistantError):
    status, kind = 404, "not_found"


class Conflict(AssistantError):
    status, kind = 409, "conflict"


class TooLarge(AssistantError):
    status, kind = 413, "payload_too_large"


class Busy(AssistantError):
    """Someone else holds what this request needs; ``retry_after`` seconds is a fair guess of when to retry."""

    status, kind = 503, "busy"

    def __init__(self, message: str, retry_after: int = 5, **extra: Any):
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **extra)
        self.retry_after = retry_after


class TooManyRequests(Busy):
    status, kind = 429, "too_many_requests"
