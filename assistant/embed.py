"""Step 4, embed: passages and queries become vectors with a sentence-transformers model, using its own prompts.

The embedder is also a LangChain ``Embeddings``, so it plugs into any LangChain vector store or retriever.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.model_fetch import resolve_model
from assistant.schema import Passage
from assistant.settings import Settings


def _model_fingerprint(source: Path | str) -> str:
    if isinstance(source, Path):
        digest = hashlib.sha1()
        for name in ("config.json", "modules.json", "config_sentence_transformers.json"):
            if (source / name).is_file():
                digest.update((source / name).read_bytes())
        return digest.hexdigest()[:10]
    return "hub"


class Embedder(Embeddings):
    """Loads the model once; encodes documents and queries with the model's ``document``/``query`` prompts."""

    def __init__(self, settings: Settings):
        name, source = resolve_model(settings)
        self.settings = settings
        self.source = source
        label = Path(name).name if isinstance(source, Path) else name
        # Known without loading the weights, so a sync with nothing to embed never pays for the model.
        self.model_id = f"{label}@{_model_fingerprint(source)}"
        self.batch_size = settings.batch_size
        self._model = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()  # torch inference from several threads at once only thrashes the cores
        self.calls = 0  # number of texts encoded: tests and benchmarks check that unchanged work is skipped

    @property
    def model(self):
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        import torch
        from sentence_transformers import SentenceTransformer

        dtype = getattr(torch, self.settings.embedding_dtype)
        model = SentenceTransformer(str(self.source), device=self.settings.device,
                                    model_kwargs={"torch_dtype": dtype},
                                    local_files_only=not self.settings.allow_hub_download)
        prompts = model.prompts or {}
        self.query_prompt = prompts.get("query", "")
        # EmbeddingGemma's document prompt names the title ("title: none | text: "); we fill in the real one.
        document_prompt = prompts.get("document", "")
        self.document_template = ("title: {title} | text: {text}" if document_prompt.startswith("title:")
                                  else document_prompt.replace("{", "{{").replace("}", "}}") + "{text}")
        return model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def passage_input(self, passage: Passage) -> str:
        self.model  # the templates come from the model's prompts
        body = f"{passage.context}\n{passage.text}" if passage.context else passage.text
        return self.document_template.format(title=passage.title or "none", text=body)

    def _encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        model = self.model
        step = self.batch_size * 4 if progress else max(len(texts), 1)
        parts = []
        for i in range(0, len(texts), step):
            with self._encode_lock:
                parts.append(model.encode(texts[i:i + step], batch_size=self.batch_size, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False))
            self.calls += len(texts[i:i + step])
            if progress:
                progress(len(texts[i:i + step]))
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, self.dimension), np.float32)

    def embed_passages(self, passages: list[Passage], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode([self.passage_input(p) for p in passages], progress)

    def embed_queries(self, queries: list[str]) -> np.ndarray:
        self.model
        return self._encode([self.query_prompt + q for q in queries])

    # --- LangChain Embeddings interface ---
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.model
        return self._encode([self.document_template.format(title="none", text=t) for t in texts]).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0].tolist()
