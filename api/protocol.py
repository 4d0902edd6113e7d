"""uvicorn's HTTP protocols, answering a request it cannot parse in the API's JSON error shape.

uvicorn writes its own "400 Invalid HTTP request received." as text/plain before any ASGI code runs; the one hook
it offers is the protocol class (``uvicorn.run(..., http=http_protocol())``), so these subclasses replace only that
response. Everything else is uvicorn's.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.h11_impl import H11Protocol


def json_400(msg: str) -> bytes:
    return json.dumps({"error": {"type": "bad_request", "message": msg}}).encode()


class JsonH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        import h11

        body = json_400(msg)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                      h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
except ImportError:  # httptools not installed: uvicorn uses h11
    HttpToolsProtocol = None  # type: ignore[misc,assignment]
else:
    class JsonHttpToolsProtocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            body = json_400(msg)
            content = [STATUS_LINE[400]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([b"content-type: application/json\r\n",
                            b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n",
                            b"\r\n", body])
            self.transport.write(b"".join(content))
            self.transport.close()


def http_protocol() -> type:
    """The JSON-400 protocol class of the implementation uvicorn would pick ('auto': httptools when installed)."""
    return JsonH11Protocol if HttpToolsProtocol is None else JsonHttpToolsProtocol
