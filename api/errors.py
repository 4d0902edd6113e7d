"""One error shape for the whole API: ``{"error": {"type": ..., "message": ...}}`` with a 4xx/5xx status.

Known failures of the assistant map to client errors here (empty question → 422, unknown conversation → 404, busy
sync → 503); anything unexpected becomes a 500 whose body never carries a stack trace (the trace goes to the log).
The request-size limit is an ASGI middleware: it refuses a too-large Content-Length up front and also counts the
bytes of a streamed (chunked) body as they arrive.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import AssistantError
from assistant.sync import SyncBusy

log = logging.getLogger("api")

INTERNAL_MESSAGE = "internal error, see server log"

_STATUS_TYPES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "too_many_requests", 500: "internal", 503: "unavailable",
}


class ApiError(Exception):
    """Raise anywhere in a route to answer ``status`` with ``{"error": {"type", "message", **extra}}``."""

    def __init__(self, status: int, type: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers = headers
        self.extra = extra


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (an HTTPException, so FastAPI re-raises it)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes")


def error_body(type: str, message: str, **extra: Any) -> dict:
    return {"error": {"type": type, "message": message, **extra}}


def error_response(status: int, type: str, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(type, message, **extra), status_code=status, headers=headers)


# The lock holder's pid, the index path and a CLI flag mean nothing to an API client (and name the server's files).
BUSY_MESSAGE = "another change of the corpus is running; retry in a few seconds"
BUSY_RETRY_AFTER = 5


def describe(exc: BaseException) -> tuple[int, str, str]:
    """(status, type, message) for an exception raised while answering; unknown ones are internal errors."""
    if isinstance(exc, ApiError):
        return exc.status, exc.type, exc.message
    if isinstance(exc, SyncBusy):  # its message names the lock holder's pid and the index: not for clients
        return 503, "busy", BUSY_MESSAGE
    if isinstance(exc, AssistantError):
        if not exc.expose:
            log.error("%s: %s", type(exc).__name__, exc.message)
            return 500, "internal", INTERNAL_MESSAGE
        return exc.status, exc.kind, exc.message
    return 500, "internal", INTERNAL_MESSAGE


def _validation_message(errors: list[dict]) -> tuple[str, list[dict]]:
    details, parts = [], []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)] or ["body"]
        where = ".".join(loc)
        msg = err.get("msg", "invalid value")
        details.append({"field": where, "message": msg})
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) or "invalid request", details


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.type, exc.message, exc.headers, **exc.extra)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, ensure_ascii=False)
    return error_response(exc.status_code, _STATUS_TYPES.get(exc.status_code, "error"), message,
                          getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    message, details = _validation_message(list(exc.errors()))
    return error_response(422, "validation_error", message, details=details)


async def _known_error(request: Request, exc: Exception) -> JSONResponse:
    status, type_, message = describe(exc)
    headers = {"Retry-After": str(BUSY_RETRY_AFTER)} if isinstance(exc, SyncBusy) else None
    return error_response(status, type_, message, headers)


async def _assistant_error(request: Request, exc: AssistantError) -> JSONResponse:
    if not exc.expose:
        return await _known_error(request, exc)
    return error_response(exc.status, exc.kind, exc.message, exc.headers, **exc.extra)


def install(app: FastAPI) -> None:
    # Starlette types a handler as taking any Exception; each of these takes the class it is registered for
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(AssistantError, _assistant_error)  # type: ignore[arg-type]
    app.add_exception_handler(SyncBusy, _known_error)
    from api.origin import OriginGuard

    app.add_middleware(OriginGuard, settings=lambda: app.state.settings)
    app.add_middleware(BodySizeLimit, limit=lambda path: request_limit(app.state.settings, path))
    # Outermost of the user middleware, so it also catches what the size limit raises; see CatchAll.
    app.add_middleware(CatchAll)


CHAT_PATHS = ("/chat", "/v1/chat/completions")


def request_limit(settings, path: str) -> int:
    """Body limit of a request: chat bodies are questions and a bounded history, not files."""
    if path.rstrip("/") in CHAT_PATHS:
        return min(settings.max_chat_request_bytes, settings.max_request_bytes)
    return settings.max_request_bytes


class CatchAll:
    """Unexpected exceptions → 500 JSON without a trace in the body; the trace is logged once, here."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if isinstance(exc, BodyTooLarge):
                status, type_, message = 413, "payload_too_large", exc.detail
            else:
                status, type_, message = describe(exc)
                if type_ == "internal":
                    log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
                else:
                    log.warning("%s on %s %s: %s", type_, scope.get("method"), scope.get("path"), message)
            if started:  # the status line is gone: nothing sensible left to send
                raise
            response = error_response(status, type_, message)
            await response(scope, receive, send)


class BodySizeLimit:
    """Refuse bodies over ``limit()`` bytes: by Content-Length at once, and by counting streamed chunks."""

    def __init__(self, app: ASGIApp, limit):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = int(self.limit(scope.get("path", "")))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await error_response(400, "bad_request", "invalid Content-Length header")(scope, receive, send)
                return
            if too_big:
                response = error_response(413, "payload_too_large",
                                          f"request body of {int(declared)} bytes is larger than the limit of "
                                          f"{limit} bytes", headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)
