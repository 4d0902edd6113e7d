"""POST /search: the passages that best match a query (English or Chinese), optionally filtered."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AssistantDep, SettingsDep
from api.validation import RequestModel, question_text

router = APIRouter(tags=["search"])


class SearchFilters(RequestModel):
    documents: list[str] | None = Field(None, description="Only passages of these document ids")
    language: str | None = Field(None, description="Only passages in this language (en, zh)",
                                 examples=["en"])


class SearchRequest(RequestModel):
    query: str = Field(..., description="What to look for, in English or Chinese", examples=["401(k) crypto"])
    k: int | None = Field(None, ge=1, le=50, description="Number of passages (default: the server's top_k)")
    filters: SearchFilters | None = None


class SearchResult(BaseModel):
    chunk_id: str
    document: str
    title: str
    page: int | None
    start: int = Field(..., description="Character offset of the passage in the document's cleaned text")
    end: int
    text: str
    score: float
    alternatives: list[str] = Field(default_factory=list, description="Other documents holding the same text")


class SearchResponse(BaseModel):
    results: list[SearchResult]


@router.post("/search", response_model=SearchResponse, summary="Find passages")
async def search(body: SearchRequest, assistant: AssistantDep, settings: SettingsDep) -> SearchResponse:
    query = question_text(body.query, settings, field="query", kind="invalid_query")
    filters = body.filters or SearchFilters()
    hits = await run_in_threadpool(assistant.search, query, k=body.k, documents=filters.documents or None,
                                   language=filters.language or None)
    return SearchResponse(results=[SearchResult(**h.model_dump(include=set(SearchResult.model_fields))) for h in hits])
