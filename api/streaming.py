"""Run the assistant's blocking generators off the event loop, and write Server-Sent Events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi.sse import EventSourceResponse, format_sse_event
from starlette.concurrency import run_in_threadpool

from api.errors import describe, error_body

log = logging.getLogger("api")

_END = object()
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _next(iterator: Iterator) -> Any:
    try:
        return next(iterator)
    except StopIteration:
        return _END


async def primed(events: Iterator) -> AsyncIterator:
    """Pull the first item in a worker thread *now*, so a bad request fails as an HTTP error before the stream
    starts; the returned async iterator yields it and then the rest, each ``next`` in the threadpool."""
    first = await run_in_threadpool(_next, events)

    async def rest() -> AsyncIterator:
        try:
            item = first
            while item is not _END:
                yield item
                item = await run_in_threadpool(_next, events)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                try:
                    close()
                except ValueError:  # still running in a worker thread (client went away): it ends on its own
                    pass

    return rest()


def event(name: str | None, data: Any) -> bytes:
    return format_sse_event(event=name, data_str=json.dumps(data, ensure_ascii=False))


def stream_error(exc: Exception) -> dict:
    """The error body for a failure after the stream started (the status line was already sent)."""
    status, type_, message = describe(exc)
    if status >= 500:
        log.error("error while streaming", exc_info=exc)
    return error_body(type_, message)


def sse_response(body: AsyncIterator[bytes]) -> EventSourceResponse:
    return EventSourceResponse(body, headers=SSE_HEADERS)


SSE_OPENAPI = {"content": {"text/event-stream": {"schema": {"type": "string"}}},
               "description": "With `stream: true`: a stream of Server-Sent Events"}
