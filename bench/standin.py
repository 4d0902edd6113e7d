"""An instant, deterministic stand-in for the embedding model, to measure (and test) the pipeline around the model.

A hashed bag of words, normalised: passages that share words get similar vectors, so search still finds the text a
query names, and each text costs microseconds. It replaces only the model: load, clean, split, Chroma, the registry
and the retriever are the real ones. Its model id is its own, so an index built with it is never read with a model.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

import numpy as np

from assistant.schema import Passage

_WORD = re.compile(r"\w+", re.U)


class InstantEmbedder:
    """Same interface as ``assistant.embed.Embedder`` (passage_input, document_input, embed_passages,
    embed_document_inputs, embed_queries, model_id)."""

    def __init__(self, dimension: int = 64, batch_size: int = 256):
        self.dimension = dimension
        self.batch_size = batch_size
        self.model_id = f"instant-standin-{dimension}@1"
        self.calls = 0

    def passage_input(self, passage: Passage) -> str:
        return f"{passage.context}\n{passage.text}" if passage.context else passage.text

    def document_input(self, title: str, text: str, context: str = "") -> str:
        return f"{context}\n{text}" if context else text

    def embed_document_inputs(self, inputs: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode(list(inputs))

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                vectors[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
            vectors[row, 0] += 1e-3  # never the zero vector
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        self.calls += len(texts)
        return vectors

    def embed_passages(self, passages: list[Passage], progress: Callable[[int], None] | None = None) -> np.ndarray:
        vectors = self._encode([self.passage_input(p) for p in passages])
        if progress:
            progress(len(passages))
        return vectors

    def embed_queries(self, queries: list[str]) -> np.ndarray:
        return self._encode(list(queries))
