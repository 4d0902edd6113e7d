"""Every error is JSON {"error": {"type", "message"}}; unexpected ones are a 500 without a stack trace."""

from __future__ import annotations

import logging

import pytest

from api.deps import get_assistant


def _error(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == kind and body["error"]["message"]
    return body["error"]


def test_validation_errors_are_readable(client):
    error = _error(client.post("/chat", json={"message": 42, "stream": "maybe"}), 422, "validation_error")
    assert "message" in error["message"] and "stream" in error["message"]
    _error(client.post("/chat", content=b"{not json", headers={"Content-Type": "application/json"}), 422,
           "validation_error")


def test_question_checks(client, api_assistant):
    _error(client.post("/chat", json={"message": ""}), 422, "invalid_question")
    long = "why " * (api_assistant.settings.max_question_chars // 4 + 1)
    assert "longer than" in _error(client.post("/chat", json={"message": long}), 422, "invalid_question")["message"]


def test_unknown_conversation_is_404(client):
    _error(client.post("/chat", json={"message": "hello there", "conversation_id": "0" * 32}), 404,
           "unknown_conversation")


def test_unknown_route_and_method(client):
    _error(client.get("/nowhere"), 404, "not_found")
    _error(client.get("/chat"), 405, "method_not_allowed")


def test_body_too_large_by_content_length(make_client):
    small = make_client(max_request_bytes=1000)
    error = _error(small.post("/chat", json={"message": "x" * 5000}), 413, "payload_too_large")
    assert "1000" in error["message"]


def test_body_too_large_when_streamed_without_length(make_client):
    small = make_client(max_request_bytes=1000)

    def chunks():
        for _ in range(10):
            yield b'{"message": "' + b"x" * 300

    response = small.post("/chat", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    _error(response, 413, "payload_too_large")
    small_upload = small.post("/documents", files={"file": ("a.txt", b"pension " * 500)})
    _error(small_upload, 413, "payload_too_large")


def test_unexpected_error_is_500_without_trace(make_client, caplog):
    client = make_client()

    class Exploding:
        settings = client.app.state.settings

        def search(self, *args, **kwargs):
            raise RuntimeError("secret internals /etc/passwd")

    client.app.dependency_overrides[get_assistant] = lambda: Exploding()
    try:
        with caplog.at_level(logging.ERROR, logger="api"):
            response = client.post("/search", json={"query": "anything"})
    finally:
        client.app.dependency_overrides.clear()
    assert response.status_code == 500
    assert response.json() == {"error": {"type": "internal", "message": "internal error, see server log"}}
    assert "secret" not in response.text and "Traceback" not in response.text
    assert any("secret internals" in (r.exc_text or "") or r.exc_info for r in caplog.records)


@pytest.mark.parametrize("path", ["/documents", "/documents/sync"])
def test_api_key_errors_are_json(make_client, path):
    keyed = make_client(api_key="k")
    error = _error(keyed.post(path), 401, "unauthorized")
    assert "Authorization: Bearer" in error["message"]
    assert keyed.post(path, headers={"X-API-Key": "wrong"}).json()["error"]["message"] == "invalid API key"


@pytest.mark.parametrize("protocol", ["JsonH11Protocol", "JsonHttpToolsProtocol"])
def test_unparsable_requests_get_the_json_error_shape(api_assistant, protocol):
    """uvicorn answers a request it cannot parse before the app runs; the protocol class keeps it JSON."""
    import json
    import socket

    from api import protocol as protocols
    from api.app import create_app
    from tests.api.conftest import serve_in_thread

    with serve_in_thread(create_app(api_assistant.settings, assistant=api_assistant),
                         http=getattr(protocols, protocol)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GARBAGE \x00\x01 nonsense\r\n\r\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head.lower()
    assert json.loads(body)["error"]["type"] == "bad_request"


def test_an_unreachable_llm_is_503_with_its_message(make_client):
    from assistant.llm import LLMUnavailable

    class Offline:
        settings = None

        def ask(self, *args, **kwargs):
            raise LLMUnavailable("The language model server at http://127.0.0.1:11434 cannot be reached: start it.")

    client = make_client()
    client.app.dependency_overrides[get_assistant] = lambda: Offline()
    try:
        response = client.post("/chat", json={"message": "What is a 401(k)?", "history": []})
    finally:
        client.app.dependency_overrides.clear()
    assert response.status_code == 503 and response.json()["error"]["type"] == "llm_unavailable"
    assert "cannot be reached" in response.json()["error"]["message"]
