"""The Origin/Host guard: a page on another site cannot change the corpus (CSRF), a rebound name is refused."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from api.origin import host_name, refusal

LOOPBACK = ["localhost", "127.0.0.1", "::1"]


@pytest.mark.parametrize("authority, name", [("localhost:8000", "localhost"), ("[::1]:8000", "::1"),
                                             ("Example.COM", "example.com"), ("127.0.0.1", "127.0.0.1")])
def test_host_name(authority, name):
    assert host_name(authority) == name


@pytest.mark.parametrize("headers, refused", [
    ({"host": "127.0.0.1:8000"}, False),  # curl, SDKs: no Origin
    ({"host": "localhost:8000", "origin": "http://localhost:8000"}, False),  # the bundled page
    ({"host": "[::1]:8000", "origin": "http://[::1]:8000"}, False),
    ({"host": "127.0.0.1:8000", "origin": "https://evil.example"}, True),  # CSRF form post
    ({"host": "evil.example:8000", "origin": "http://evil.example:8000"}, True),  # DNS rebinding
    ({"host": "evil.example"}, True),
    ({"host": "127.0.0.1:8000", "origin": "null"}, True),
    ({"host": "127.0.0.1:8000", "sec-fetch-site": "cross-site"}, True),
])
def test_refusal(headers, refused):
    assert (refusal("POST", Headers(headers), LOOPBACK) is not None) is refused
    assert refusal("GET", Headers(headers), LOOPBACK) is None  # reading is not guarded here


def test_a_star_allows_any_host():
    assert refusal("POST", Headers({"host": "evil.example", "origin": "http://x.example"}), ["*"]) is None


def test_a_cross_site_upload_is_refused_and_nothing_is_added(make_client, fresh_assistant):
    client = make_client(fresh_assistant)
    before = client.get("/documents").json()["revision"]
    attack = client.post("/documents", files={"file": ("csrf.txt", b"Planted by another site.")},
                         headers={"Origin": "https://evil.example"})
    assert attack.status_code == 403 and attack.json()["error"]["type"] == "forbidden_origin"
    rebound = client.post("/documents/sync", headers={"Host": "evil.example"})
    assert rebound.status_code == 403 and "ASSISTANT_ALLOWED_HOSTS" in rebound.json()["error"]["message"]
    assert client.post("/chat", json={"message": "hi there, what is a 401(k)?"},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/documents").json()["revision"] == before
    assert not (fresh_assistant.settings.corpus_dir / "csrf.txt").exists()
    allowed = make_client(fresh_assistant, allowed_hosts=["localhost", "docs.example"])
    assert allowed.post("/documents/sync", headers={"Origin": "https://docs.example"}).status_code == 200
