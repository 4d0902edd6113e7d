"""Step 6, retrieve: dense search in Chroma fused with BM25 over jieba tokens, near-duplicates folded together.

Dense retrieval (EmbeddingGemma) carries cross-language questions; BM25 only helps where query and passage share
words (same language, or numbers and names). Equal-weight rank fusion lets BM25's misses outvote dense hits, so we
fuse scores instead: ``dense cosine + lexical_weight × BM25 normalised to the best candidate``, with the weight tuned
on the eval set's dev split (see README). BM25 lives in memory in each process and is rebuilt whenever the index's
revision changes, so every worker sees every update.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

import jieba
import numpy as np
from rank_bm25 import BM25Okapi

from assistant.embed import Embedder
from assistant.schema import Passage, SearchHit
from assistant.settings import Settings
from assistant.store import IndexStore, hit_from

jieba.setLogLevel(logging.WARNING)

_TOKEN = re.compile(r"[\w\u3400-\u9fff]+(?:[.,]\d+)*%?", re.U)  # words, and numbers such as 1.2% or 35%
_STOP = set(
    "a an and are as at be by for from has have how in is it its of on or that the this to was were what when which "
    "who why with did does do i you he she they we our their his her can could would should will shall may about into "
    "than then there these those such any all also not no 的 了 是 在 和 与 及 或 对 等 为 也 就 都 而 有 被 把 吗 呢 "
    "什么 哪些 哪个 如何 怎么 怎样 多少 是否 请问".split()
)
_NORMALISE = re.compile(r"[\W_]+", re.U)


def tokenize(text: str) -> list[str]:
    tokens = []
    for word in jieba.cut_for_search(text.lower()):
        word = word.strip()
        if word and _TOKEN.fullmatch(word) and word not in _STOP:
            tokens.append(word)
    return tokens


def _shingles(text: str, n: int = 5) -> set[str]:
    flat = _NORMALISE.sub("", text.lower())
    return {flat[i:i + n] for i in range(max(1, len(flat) - n + 1))}


def near_duplicate(a: str, b: str, threshold: float = 0.6) -> bool:
    sa, sb = _shingles(a), _shingles(b)
    return bool(sa and sb) and len(sa & sb) / min(len(sa), len(sb)) >= threshold


@dataclass
class _LexicalIndex:
    revision: str
    passages: list[Passage]
    bm25: BM25Okapi | None
    versions: dict[str, str]


class Retriever:
    def __init__(self, settings: Settings, embedder: Embedder, store: IndexStore):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self._lexical: _LexicalIndex | None = None
        self._lock = threading.Lock()

    def lexical(self, refresh: bool = True) -> _LexicalIndex:
        """The in-memory BM25 index for the current revision (rebuilt when another process changed the index).

        ``refresh=False`` reuses the index the last search saw, without asking the store for its revision: the
        rest of a request (quoting, verifying) then reads the same document versions its retrieval did.
        """
        if not refresh and self._lexical is not None:
            return self._lexical
        revision = self.store.revision()
        with self._lock:
            if self._lexical is None or self._lexical.revision != revision:
                versions = {d: r.version for d, r in self.store.documents().items()}
                passages = self.store.all_passages(versions)
                corpus = [tokenize(f"{p.context}\n{p.text}" if p.context else p.text) for p in passages]
                bm25 = BM25Okapi(corpus) if passages else None
                self._lexical = _LexicalIndex(revision, passages, bm25, versions)
            return self._lexical

    def idf(self) -> dict[str, float]:
        """BM25 idf of the index the last search saw (word → weight), for answerers that weigh shared words."""
        bm25 = self.lexical(refresh=False).bm25
        return bm25.idf if bm25 is not None else {}

    def versions(self) -> dict[str, str]:
        """Registered version of each document, as the last search saw them."""
        return self.lexical(refresh=False).versions

    def search(self, query: str, k: int | None = None, documents: list[str] | None = None,
               language: str | None = None, query_vector: np.ndarray | None = None) -> list[SearchHit]:
        k = k or self.settings.top_k
        lexical = self.lexical()
        if not lexical.passages:
            return []
        vector = query_vector if query_vector is not None else self.embedder.embed_queries([query])[0]
        where = _where(documents, language)
        n = max(self.settings.candidates, k * 4)
        candidates: dict[str, tuple[Passage, float]] = {}
        for passage, score in self.store.query(vector, n, where):
            # Trust only the registered version of each document (an update in flight stores passages early).
            if lexical.versions.get(passage.document) == passage.version:
                candidates[passage.chunk_id] = (passage, score)

        lexical_scores: dict[str, float] = {}
        tokens = tokenize(query)
        if tokens and lexical.bm25 is not None and self.settings.lexical_weight > 0:
            scores = lexical.bm25.get_scores(tokens)
            allowed = [i for i, p in enumerate(lexical.passages) if _matches(p, documents, language)]
            best = sorted(allowed, key=lambda i: scores[i], reverse=True)[:n]
            top = max((scores[i] for i in best), default=0.0)
            if top > 0:
                missing = [lexical.passages[i] for i in best if scores[i] > 0 and lexical.passages[i].chunk_id not in candidates]
                for passage, dense in self._dense_scores(missing, vector):
                    candidates[passage.chunk_id] = (passage, dense)
                for i in best:
                    lexical_scores[lexical.passages[i].chunk_id] = float(scores[i] / top)

        ranked = sorted(
            (
                hit_from(p, dense + self.settings.lexical_weight * lexical_scores.get(cid, 0.0),
                         dense_score=round(dense, 4), lexical_score=round(lexical_scores.get(cid, 0.0), 4))
                for cid, (p, dense) in candidates.items()
            ),
            key=lambda h: h.score, reverse=True,
        )
        return fold_duplicates(ranked, k)

    def _dense_scores(self, passages: list[Passage], vector: np.ndarray) -> list[tuple[Passage, float]]:
        if not passages:
            return []
        got = self.store.passages.get(ids=[p.chunk_id for p in passages], include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        return [(p, float(np.dot(by_id[p.chunk_id], vector))) for p in passages if p.chunk_id in by_id]


def fold_duplicates(ranked: list[SearchHit], k: int) -> list[SearchHit]:
    """Keep the best of near-identical passages; the others' documents are listed as its alternatives."""
    kept: list[SearchHit] = []
    for hit in ranked:
        twin = next((k_ for k_ in kept if k_.document != hit.document and near_duplicate(k_.text, hit.text)), None)
        if twin is not None:
            if hit.document not in twin.alternatives:
                twin.alternatives.append(hit.document)
            continue
        if len(kept) < k:
            kept.append(hit)
    return kept


def _where(documents: list[str] | None, language: str | None) -> dict | None:
    clauses = []
    if documents:
        clauses.append({"document": {"$in": list(documents)}})
    if language:
        clauses.append({"language": language})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _matches(passage: Passage, documents: list[str] | None, language: str | None) -> bool:
    return (not documents or passage.document in documents) and (not language or passage.language == language)
