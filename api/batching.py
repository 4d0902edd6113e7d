"""Concurrent questions share one embedding forward pass ("group commit" of query embeddings).

One query through EmbeddingGemma on CPU is mostly per-call Python overhead under the GIL: it keeps about 1.2 of the
machine's 2 cores busy, and the Embedder's encode lock lets only one forward run at a time, so a busy server
cannot use the whole machine. Here a caller that finds a forward running queues its queries; when that forward
ends, one of the queued callers embeds *all* queued queries in a single batch (4 queries cost about twice one, not
four times) and hands each caller its vectors. A lone caller never waits: there is no timer, nothing is delayed.

``BatchingEmbedder`` wraps an embedder and is a ``TextEmbedder`` itself (everything but ``embed_queries`` is the
wrapped one's), so the store, the retriever and the pipeline take it in the model's place. Vectors are identical to unbatched ones up to float rounding.

A failing batch never fails the callers that did nothing wrong: it is re-run one caller at a time, so only the
caller whose input breaks the model gets the error (a bad input costs one extra forward per batch-mate).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from assistant.embed import TextEmbedder
from assistant.schema import Passage

MAX_BATCH = 32  # queries per forward pass


@dataclass
class _Request:
    queries: list[str]
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Stats:
    calls: int = 0
    batches: int = 0
    largest: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class BatchingEmbedder:
    def __init__(self, embedder: TextEmbedder):
        self.inner = embedder
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._busy = False
        self.stats = _Stats()

    # --- the rest of TextEmbedder: the wrapped embedder's ---
    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def batch_size(self) -> int:
        return self.inner.batch_size

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    def passage_input(self, passage: Passage) -> str:
        return self.inner.passage_input(passage)

    def document_input(self, title: str, text: str, context: str = "") -> str:
        return self.inner.document_input(title, text, context)

    def embed_passages(self, passages: list[Passage], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.inner.embed_passages(passages, progress)

    def embed_document_inputs(self, inputs: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.inner.embed_document_inputs(inputs, progress)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_queries(self, queries: list[str]) -> np.ndarray:
        if not queries:
            return self.inner.embed_queries(queries)
        request = _Request(list(queries))
        with self._cond:
            self._queue.append(request)
        while True:
            with self._cond:
                while self._busy and not request.done:
                    self._cond.wait()
                if request.done:
                    return self._result(request)
                # Nothing running: this caller runs the next batch, oldest requests first (its own among them,
                # unless the queue is longer than one batch: then it loops and runs the next one too).
                self._busy = True
                batch: list[_Request] = []
                size = 0
                while self._queue and (not batch or size + len(self._queue[0].queries) <= MAX_BATCH):
                    batch.append(self._queue.pop(0))
                    size += len(batch[-1].queries)
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        try:
            try:
                vectors = self.inner.embed_queries([q for r in batch for q in r.queries])
            except Exception:
                if len(batch) == 1:
                    raise
                for r in batch:  # isolate the culprit: each caller's queries alone
                    try:
                        r.vectors = self.inner.embed_queries(r.queries)
                    except Exception as exc:  # noqa: BLE001 - handed to that caller only
                        r.error = exc
            else:
                start = 0
                for r in batch:
                    r.vectors = vectors[start:start + len(r.queries)]
                    start += len(r.queries)
        except BaseException as exc:  # a lone caller's failure, or an interrupt: nobody may wait forever
            for r in batch:
                if r.vectors is None and r.error is None:
                    r.error = exc
        finally:
            with self._cond:
                for r in batch:
                    r.done = True
                self._busy = False
                self._cond.notify_all()
            with self.stats.lock:
                self.stats.calls += len(batch)
                self.stats.batches += 1
                self.stats.largest = max(self.stats.largest, len(batch))

    @staticmethod
    def _result(request: _Request) -> np.ndarray:
        if request.error is not None:
            raise request.error
        assert request.vectors is not None  # set with the batch's result, or error is
        return request.vectors

    def embed_query(self, text: str) -> list[float]:  # LangChain interface, batched too
        return self.embed_queries([text])[0].tolist()
