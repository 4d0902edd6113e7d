"""Text at the boundary: every string of a request body is valid Unicode, questions have visible text, and a chat
history is bounded before the assistant reads it.

JSON may carry a lone UTF-16 surrogate ("\\ud800"), which Python decodes into a str that no tokenizer, database or
encoder accepts; it is refused here with a 422 naming the field, so it never reaches the model (where it used to
fail the questions batched with it). Zero-width and control characters alone do not make a question.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, model_validator

from api.errors import ApiError
from assistant.schema import ChatTurn
from assistant.settings import Settings


def _surrogate_at(value: Any, where: str) -> str | None:
    if isinstance(value, str):
        # json.loads joins a valid \\ud83d\\ude00 pair into one code point: any surrogate left is unpaired.
        return where if any("\ud800" <= c <= "\udfff" for c in value) else None
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and _surrogate_at(key, where):
            return where
        found = _surrogate_at(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


class RequestModel(BaseModel):
    """A request body whose strings are all valid Unicode (no unpaired surrogates), at any depth."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = _surrogate_at(data, "")
        if where is not None:
            raise ValueError(f"{where or 'body'} contains an unpaired UTF-16 surrogate (invalid Unicode text)")
        return data


def visible(text: str) -> str:
    """``text`` in NFC, trimmed; empty when it holds only spaces, zero-width or control characters."""
    text = unicodedata.normalize("NFC", text).strip()
    if not any(unicodedata.category(c)[0] not in "CZ" for c in text):
        return ""
    return text


def question_text(text: str, settings: Settings, field: str = "message", kind: str = "invalid_question") -> str:
    """The question as the assistant should see it, or a 422 that says what is wrong with it."""
    if _surrogate_at(text, field):
        raise ApiError(422, kind, f"{field} contains an unpaired UTF-16 surrogate (invalid Unicode text)")
    question = visible(text)
    if not question:
        raise ApiError(422, kind, f"{field} is empty (no visible text)")
    if len(question) > settings.max_question_chars:
        raise ApiError(422, kind, f"{field} is longer than {settings.max_question_chars} characters")
    return question


def bounded_history(turns: list[ChatTurn] | None, settings: Settings, field: str = "history") -> list[ChatTurn] | None:
    """The turns the assistant will use (the last ``history_turns * 2``), after checking the request's bounds.

    The count is checked on the whole list (cheap); the size only on the turns kept, which are the only ones read.
    """
    if turns is None:
        return None
    if len(turns) > settings.max_history_turns:
        raise ApiError(422, "history_too_long",
                       f"{field} has {len(turns)} turns; at most {settings.max_history_turns} are accepted "
                       f"(only the last {settings.history_turns * 2} are used)")
    used = turns[-settings.history_turns * 2:] if settings.history_turns > 0 else []
    for offset, turn in enumerate(used, start=len(turns) - len(used)):
        if len(turn.content) > settings.max_turn_chars:
            raise ApiError(422, "turn_too_long",
                           f"{field}[{offset}] is {len(turn.content)} characters long; at most "
                           f"{settings.max_turn_chars} per turn are accepted")
    return used
