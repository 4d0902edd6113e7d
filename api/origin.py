"""Refuse state-changing requests that a browser sends on behalf of another site (CSRF) or to a rebound name.

Without an API key, any web page the user opens could POST a form to http://127.0.0.1:8000/documents (a "simple"
cross-origin request needs no CORS preflight), and a page on a name that DNS-rebinds to 127.0.0.1 talks to the
server as same-origin. Both are refused here for POST/PUT/PATCH/DELETE:

- the ``Host`` header must name an allowed host (``settings.allowed_hosts``, loopback by default), which defeats
  DNS rebinding (the browser sends the attacker's name);
- an ``Origin`` header (browsers send it on cross-origin and on all POSTs) must be the server's own origin or an
  allowed host; ``Origin: null`` (sandboxed frames, file:// pages) is refused; without Origin, a
  ``Sec-Fetch-Site: cross-site`` is refused too.

Clients that are not browsers (curl, SDKs) send no Origin and pass. The API key, when set, stays the real protection.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


def host_name(authority: str) -> str:
    """'Example.COM:8000' → 'example.com'; '[::1]:8000' → '::1'."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    if authority.count(":") > 1:  # a bare IPv6 address
        return authority
    return authority.rpartition(":")[0] if ":" in authority else authority


def refusal(method: str, headers: Headers, allowed: list[str]) -> str | None:
    """Why this request must be refused, or None."""
    if method.upper() in SAFE_METHODS or "*" in allowed:
        return None
    allow = {a.lower().strip("[]") for a in allowed}
    host = headers.get("host", "")
    if host_name(host) not in allow:
        return (f"requests addressed to host {host_name(host)!r} are refused: add it to ASSISTANT_ALLOWED_HOSTS "
                "if this server is meant to be reached under that name")
    origin = headers.get("origin")
    if origin is not None:
        if origin.strip().lower() == "null":
            return "requests from an opaque origin (Origin: null) may not change anything"
        parts = urlsplit(origin.strip())
        if host_name(parts.netloc) not in allow and parts.netloc.lower() != host.lower():
            return (f"cross-site request from origin {origin!r} refused: add its host to ASSISTANT_ALLOWED_HOSTS "
                    "to allow it")
    elif headers.get("sec-fetch-site", "").lower() == "cross-site":
        return "cross-site request refused"
    return None


class OriginGuard:
    def __init__(self, app: ASGIApp, settings: Callable):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reason = refusal(scope["method"], Headers(scope=scope), list(self.settings().allowed_hosts))
            if reason is not None:
                from api.errors import error_response

                await error_response(403, "forbidden_origin", reason)(scope, receive, send)
                return
        await self.app(scope, receive, send)
