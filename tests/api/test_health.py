"""GET /health, the offline /docs page, the static files and the chat page at /."""

from __future__ import annotations

from tests.api.conftest import API_DOCS


def test_health_reports_model_and_index(client, api_assistant):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model_loaded"] is True
    assert body["model"] == api_assistant.embedder.model_id
    assert body["documents"] == len(API_DOCS)
    assert body["passages"] == sum(r.passages for r in api_assistant.store.documents().values()) > 0
    assert body["corpus_revision"] == api_assistant.store.revision()


def test_docs_work_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/static/swagger/swagger-ui-bundle.js" in page.text and "/static/swagger/swagger-ui.css" in page.text
    assert "cdn.jsdelivr.net" not in page.text and "fastapi.tiangolo.com" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        response = client.get(f"/static/swagger/{asset}")
        assert response.status_code == 200 and len(response.content) > 500, asset
    assert client.get("/redoc").status_code == 404  # ReDoc would need a CDN: not offered


def test_openapi_lists_every_area(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/chat", "/search", "/documents", "/documents/{doc_id}", "/documents/sync",
                 "/v1/chat/completions", "/v1/models", "/health"):
        assert path in paths, path
    assert "text/event-stream" in paths["/chat"]["post"]["responses"]["200"]["content"]


def test_root_serves_the_chat_page(client):
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()


def test_placeholder_when_the_page_is_missing(client, monkeypatch, tmp_path):
    import api.app

    monkeypatch.setattr(api.app, "STATIC_DIR", tmp_path)
    page = client.get("/")
    assert page.status_code == 200 and "/docs" in page.text
