"""GET /health: is the model loaded, how big is the index, and which revision of the corpus is answering."""

from __future__ import annotations

import os

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AssistantDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    model_loaded: bool
    model: str
    passages: int
    documents: int
    corpus_revision: str
    pid: int = Field(..., description="Process id of the worker that answered (several workers: each has its own)")


@router.get("/health", response_model=Health, summary="Service status")
def health(assistant: AssistantDep) -> Health:
    embedder = assistant.embedder if assistant.is_loaded("embedder") else None  # never build it: /health stays cheap
    loaded = embedder is not None and embedder.loaded
    store = assistant.store
    records = store.documents()  # committed versions only, so the counts never include a sync's half-written passages
    return Health(
        status="ok",
        model_loaded=loaded,
        model=embedder.model_id if embedder is not None else assistant.settings.embedding_model,
        passages=sum(r.passages for r in records.values()),
        documents=len(records),
        corpus_revision=store.revision(),
        pid=os.getpid(),
    )
