"""FastAPI dependencies: the process's one Assistant, its Settings, and the API-key check for corpus changes.

Tests replace them with ``app.dependency_overrides[get_assistant] = ...``.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from assistant.pipeline import Assistant
from assistant.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer KEY` (when the server sets ASSISTANT_API_KEY)")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: KEY` (same key as the bearer)")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_assistant(request: Request) -> Assistant:
    assistant = getattr(request.app.state, "assistant", None)
    if assistant is None:  # only without the lifespan (an app used without starting it)
        raise ApiError(503, "unavailable", "the assistant is not loaded yet")
    return assistant


def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header)],
) -> None:
    """When ``settings.api_key`` is set, require it as a bearer token or an X-API-Key header."""
    expected = settings.api_key
    if not expected:
        return
    offered = [header_key] if header_key else []
    if bearer is not None and bearer.scheme.lower() == "bearer":
        offered.append(bearer.credentials)
    if not any(hmac.compare_digest(key.encode(), expected.encode()) for key in offered):
        raise ApiError(401, "unauthorized",
                       "this endpoint changes the corpus and needs the API key: send 'Authorization: Bearer KEY' "
                       "or 'X-API-Key: KEY'" if not offered else "invalid API key",
                       headers={"WWW-Authenticate": "Bearer"})


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
