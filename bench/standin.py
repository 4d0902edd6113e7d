"""An instant, deterministic stand-in for the embedding model, to measure (and test) the pipeline around the model.

A hashed bag of words (English words, Chinese character bigrams), normalised: texts that share words get similar
vectors, so search still finds the text a query names, and each text costs microseconds. It replaces only the model:
load, clean, split, Chroma, the registry and the retriever are the real ones. Its model id is its own, so an index
built with it is never read with a model.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

import numpy as np

from assistant.schema import Passage

_WORD = re.compile(r"[^\W_]+", re.U)
_HAN = re.compile(r"[\u3400-\u9fff]")


def _grams(word: str) -> list[str]:
    if not _HAN.search(word):
        return [word]
    return [word] if len(word) < 2 else [word[i:i + 2] for i in range(len(word) - 1)]


class InstantEmbedder:
    """Same interface as ``assistant.embed.Embedder`` (passage_input, document_input, embed_passages,
    embed_document_inputs, embed_queries, model_id)."""

    def __init__(self, dimension: int = 64, batch_size: int = 256):
        self.dimension = dimension
        self.batch_size = batch_size
        self.model_id = f"instant-standin-{dimension}@2"
        self.calls = 0

    def passage_input(self, passage: Passage) -> str:
        return f"{passage.context}\n{passage.text}" if passage.context else passage.text

    def document_input(self, title: str, text: str, context: str = "") -> str:
        return f"{context}\n{text}" if context else text

    def embed_document_inputs(self, inputs: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode(list(inputs))

    def _encode(self, texts: list[str]) -> np.ndarray:
        rows, cols = [], []
        for row, text in enumerate(texts):
            slots = [zlib.crc32(g.encode()) % self.dimension for w in _WORD.findall(text.lower()) for g in _grams(w)]
            rows += [row] * len(slots)
            cols += slots
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        np.add.at(vectors, (np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)), 1.0)
        vectors[:, 0] += 1e-3  # never the zero vector
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

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0].tolist()
