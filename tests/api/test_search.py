"""POST /search: ranked passages with offsets into the cleaned text, filters, and input checks."""

from __future__ import annotations

import pytest

from tests.conftest import FACT_SHEET_MD, SEED

FIELDS = {"chunk_id", "document", "title", "page", "start", "end", "text", "score"}


def test_search_returns_passages_with_offsets(client, api_assistant):
    response = client.post("/search", json={"query": "Executive Order alternative assets 401(k) investors", "k": 3})
    assert response.status_code == 200
    results = response.json()["results"]
    assert 1 <= len(results) <= 3
    assert FIELDS <= set(results[0])
    assert results[0]["document"] == FACT_SHEET_MD
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    for r in results:  # offsets point into the document's cleaned text
        document = api_assistant.document(r["document"])
        assert document.text[r["start"]:r["end"]] == r["text"]


def test_search_filters_by_document_and_language(client):
    body = {"query": "401(k)", "k": 5, "filters": {"documents": [SEED]}}
    results = client.post("/search", json=body).json()["results"]
    assert results and {r["document"] for r in results} == {SEED}
    results = client.post("/search", json={"query": "401(k)", "filters": {"language": "en"}}).json()["results"]
    assert results and SEED not in {r["document"] for r in results}


def test_chinese_query(client):
    results = client.post("/search", json={"query": "养老金 加密资产", "k": 3}).json()["results"]
    assert results and results[0]["document"] == SEED


@pytest.mark.parametrize("body, kind", [
    ({"query": "   "}, "invalid_query"),
    ({"query": "x", "k": 0}, "validation_error"),
    ({"query": "x", "k": 1000}, "validation_error"),
    ({}, "validation_error"),
])
def test_bad_search_requests(client, body, kind):
    response = client.post("/search", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["type"] == kind
