"""BatchingEmbedder: concurrent callers share forward passes, each gets its own vectors, failures reach everyone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from api.batching import BatchingEmbedder


class _SlowEmbedder:
    """Vector i of a query is [len(query), i]; every call takes a while, as a forward pass does."""

    model_id = "fake@1"

    def __init__(self, fail_on: str | None = None):
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def embed_queries(self, queries):
        with self.lock:  # like the Embedder's encode lock
            self.calls.append(list(queries))
            time.sleep(0.05)
            if self.fail_on in queries:
                raise RuntimeError("model failure")
            return np.array([[len(q), 0.0] for q in queries], dtype=np.float32)


def test_concurrent_callers_share_batches_and_get_their_own_vectors():
    inner = _SlowEmbedder()
    batching = BatchingEmbedder(inner)
    questions = ["q" * n for n in range(1, 25)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda q: batching.embed_queries([q, q + "!"]), questions))
    for q, vectors in zip(questions, results):
        assert vectors.tolist() == [[len(q), 0.0], [len(q) + 1, 0.0]]
    assert sum(len(c) for c in inner.calls) == 2 * len(questions)
    assert len(inner.calls) < len(questions)  # callers that queued behind a forward pass shared the next one
    assert batching.stats.largest > 1
    assert batching.model_id == "fake@1"  # everything else is the wrapped embedder's


def test_a_lone_caller_is_not_delayed():
    batching = BatchingEmbedder(_SlowEmbedder())
    started = time.perf_counter()
    assert batching.embed_queries(["alone"]).tolist() == [[5.0, 0.0]]
    assert time.perf_counter() - started < 0.5


def test_a_failure_reaches_every_caller_of_the_batch_and_the_next_batch_works():
    inner = _SlowEmbedder(fail_on="boom")
    batching = BatchingEmbedder(inner)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batching.embed_queries, [q]) for q in ("boom", "a", "b", "c")]
        outcomes = []
        for f in futures:
            try:
                outcomes.append(f.result().tolist())
            except RuntimeError as exc:
                outcomes.append(str(exc))
    assert outcomes[0] == "model failure"
    assert batching.embed_queries(["fine"]).tolist() == [[4.0, 0.0]]  # not stuck


def test_real_model_vectors_match_unbatched(shared_embedder):
    batching = BatchingEmbedder(shared_embedder)
    queries = ["401(k) alternative assets", "养老金 加密资产", "fiduciary duties under ERISA"]
    with ThreadPoolExecutor(3) as pool:
        batched = list(pool.map(lambda q: batching.embed_queries([q])[0], queries))
    single = [shared_embedder.embed_queries([q])[0] for q in queries]
    for b, s in zip(batched, single):
        assert float(np.dot(b, s)) == pytest.approx(1.0, abs=1e-4)
