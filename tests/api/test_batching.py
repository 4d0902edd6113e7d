"""BatchingEmbedder: concurrent callers share forward passes, each gets its own vectors, a failure only its caller."""

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


class _GatedEmbedder(_SlowEmbedder):
    """The first call waits for ``gate``, so the callers that come meanwhile queue into one batch."""

    def __init__(self, fail_on: str):
        super().__init__(fail_on)
        self.gate = threading.Event()
        self.first = True

    def embed_queries(self, queries):
        if self.first:
            self.first = False
            self.gate.wait(10)
        return super().embed_queries(queries)


def test_a_bad_input_fails_only_its_own_caller():
    inner = _GatedEmbedder(fail_on="boom")
    batching = BatchingEmbedder(inner)
    with ThreadPoolExecutor(6) as pool:
        blocker = pool.submit(batching.embed_queries, ["first"])
        while inner.first:  # the blocker is inside the model
            time.sleep(0.01)
        futures = {q: pool.submit(batching.embed_queries, [q]) for q in ("a", "boom", "bb", "ccc", "dddd")}
        while len(batching._queue) < len(futures):
            time.sleep(0.01)
        inner.gate.set()
        assert blocker.result().tolist() == [[5.0, 0.0]]
        with pytest.raises(RuntimeError, match="model failure"):
            futures.pop("boom").result()
        for q, future in futures.items():
            assert future.result().tolist() == [[len(q), 0.0]]
    assert any(len(call) == 5 and "boom" in call for call in inner.calls)  # they really shared one batch
    assert batching.embed_queries(["fine"]).tolist() == [[4.0, 0.0]]  # not stuck


def test_a_lone_failing_caller_gets_its_error():
    batching = BatchingEmbedder(_SlowEmbedder(fail_on="boom"))
    with pytest.raises(RuntimeError, match="model failure"):
        batching.embed_queries(["boom"])
    assert batching.embed_queries(["ok"]).tolist() == [[2.0, 0.0]]


def test_real_model_vectors_match_unbatched(shared_embedder):
    batching = BatchingEmbedder(shared_embedder)
    queries = ["401(k) alternative assets", "养老金 加密资产", "fiduciary duties under ERISA"]
    with ThreadPoolExecutor(3) as pool:
        batched = list(pool.map(lambda q: batching.embed_queries([q])[0], queries))
    single = [shared_embedder.embed_queries([q])[0] for q in queries]
    for b, s in zip(batched, single):
        assert float(np.dot(b, s)) == pytest.approx(1.0, abs=1e-4)


def test_real_model_a_lone_surrogate_fails_only_its_caller(shared_embedder):
    """The attack of issue 12: "\\ud800" makes the tokenizer raise; its batch-mates still get their vectors."""
    inner = _GatedEmbedder(fail_on=None)
    inner.embed_queries = lambda queries, _gate=inner: (_gate.gate.wait(10), shared_embedder.embed_queries(queries))[1]
    batching = BatchingEmbedder(inner)
    good = ["401(k) alternative assets", "养老金 加密资产", "fiduciary duties under ERISA"]
    with ThreadPoolExecutor(5) as pool:
        blocker = pool.submit(batching.embed_queries, ["warm"])
        time.sleep(0.1)
        bad = pool.submit(batching.embed_queries, ["bad \ud800 question"])
        futures = [pool.submit(batching.embed_queries, [q]) for q in good]
        while len(batching._queue) < 4:
            time.sleep(0.01)
        inner.gate.set()
        blocker.result()
        with pytest.raises(TypeError):
            bad.result()
        vectors = [f.result()[0] for f in futures]
    assert batching.stats.largest == 4
    for q, v in zip(good, vectors):
        assert float(np.dot(v, shared_embedder.embed_queries([q])[0])) == pytest.approx(1.0, abs=1e-4)
