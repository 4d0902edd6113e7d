"""The base of the assistant's own errors: a message for the user, an HTTP status and a kind, mapped once by the API.

A domain module raises ``SomethingWrong("what happened and what to do")``; api/errors.py turns every
``AssistantError`` into ``{"error": {"type": kind, "message": message, **extra}}`` with ``status`` (and ``headers``,
e.g. Retry-After), and the CLI prints the message. Messages never name the server's file system.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from assistant.settings import Settings


class AssistantError(Exception):
    status: ClassVar[int] = 500
    kind: ClassVar[str] = "internal"
    exit_code: ClassVar[int] = 1  # the CLI's exit status (documented in `assistant --help`)
    # False: the message may name the server's folders or hosts; the API answers its generic internal message
    expose: ClassVar[bool] = True

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


class InvalidSettings(AssistantError):
    """An ASSISTANT_* setting is out of its bounds or of the wrong type: nothing starts."""

    kind, exit_code = "invalid_settings", 3


# Messages and reports that leave the server name folders by role (corpus/…, index/…), never by their path.

def _roots(settings: Settings) -> list[tuple[str, str]]:
    """(absolute folder, public name) pairs, longest first, for the folders a job's text may mention."""
    named = {settings.corpus_dir: "corpus", settings.index_dir: "index", settings.model_cache: "models",
             settings.corpus_manifest.parent: "corpus", Path.home(): "~"}
    pairs = []
    for folder, name in named.items():
        for form in {str(folder), str(Path(folder).resolve())}:
            if form not in ("/", ""):
                pairs.append((form.rstrip("/"), name))
    return sorted(pairs, key=lambda p: -len(p[0]))


def public_text(text: str, settings: Settings) -> str:
    for folder, name in _roots(settings):
        text = text.replace(folder, name)
    return text


def public(value: Any, settings: Settings) -> Any:
    """``value`` (JSON-like) with server paths replaced: corpus/…, index/…, models/…, or a bare file name."""
    if isinstance(value, dict):
        return {k: public(v, settings) for k, v in value.items()}
    if isinstance(value, list):
        return [public(v, settings) for v in value]
    if isinstance(value, str) and value.startswith(os.sep):
        replaced = public_text(value, settings)
        return replaced if replaced != value else Path(value).name
    if isinstance(value, str):
        return public_text(value, settings)
    return value
