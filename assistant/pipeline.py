"""The assembled assistant: one object that owns the model, the index and the retriever, built lazily and shared.

The CLI, the API and the evaluator all go through it, so the flow load → clean → split → embed → store → retrieve →
answer → cite is wired in exactly one place.
"""

from __future__ import annotations

import threading
from functools import cached_property

from assistant.embed import Embedder
from assistant.retrieve import Retriever
from assistant.schema import SearchHit, SyncReport
from assistant.settings import Settings, get_settings
from assistant.store import IndexStore
from assistant.sync import sync


class Assistant:
    def __init__(self, settings: Settings | None = None, rebuild: bool = False):
        self.settings = settings or get_settings()
        self._rebuild = rebuild
        self._build_lock = threading.Lock()

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings)

    @cached_property
    def store(self) -> IndexStore:
        with self._build_lock:
            return IndexStore(self.settings, self.embedder.model_id, rebuild=self._rebuild)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings, self.embedder, self.store)

    def sync(self, wait: float = 0.0, show_progress: bool = True) -> SyncReport:
        return sync(self.settings, self.embedder, self.store, wait=wait, show_progress=show_progress)

    def search(self, query: str, k: int | None = None, documents: list[str] | None = None,
               language: str | None = None) -> list[SearchHit]:
        return self.retriever.search(query, k=k, documents=documents, language=language)
