"""Step 6, retrieve: dense search in Chroma fused with BM25 over jieba tokens, near-duplicates folded together.

Dense retrieval (EmbeddingGemma) carries cross-language questions; BM25 only helps where query and passage share
words (same language, or numbers and names). Equal-weight rank fusion lets BM25's misses outvote dense hits, so we
fuse scores instead: ``dense cosine + lexical_weight × BM25 normalised to the best candidate``, with the weight tuned
on the eval set's dev split (see README). BM25 comes from the on-disk FTS5 index of assistant/lexical.py, kept only
while the weight is above 0 (the default is 0). A search reads only the store: a query, and the registered versions
of its candidates' documents (once per revision).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from assistant.embed import TextEmbedder
from assistant.lexical import tokenize  # one tokenizer for BM25, word statistics and the answer model
from assistant.schema import Passage, SearchHit
from assistant.settings import Settings
from assistant.store import IndexStore, hit_from

_NORMALISE = re.compile(r"[\W_]+", re.U)


def passage_terms(passages: Iterable[Passage]) -> Counter:
    """How many of these passages contain each word (the document frequencies behind idf)."""
    counts: Counter = Counter()
    for p in passages:
        counts.update(set(tokenize(f"{p.context}\n{p.text}" if p.context else p.text)))
    return counts


def _shingles(text: str, n: int = 5) -> set[str]:
    flat = _NORMALISE.sub("", text.lower())
    return {flat[i:i + n] for i in range(max(1, len(flat) - n + 1))}


def near_duplicate(a: str, b: str, threshold: float = 0.6) -> bool:
    sa, sb = _shingles(a), _shingles(b)
    return bool(sa and sb) and len(sa & sb) / min(len(sa), len(sb)) >= threshold


@dataclass
class View:
    """What one request reads: the index revision (and, asked for, the registered versions of documents at it)."""

    revision: str
    store: IndexStore

    @property
    def versions(self) -> dict[str, str]:
        """Every document's registered version (one paged registry read per revision, shared by the store)."""
        return self.store.document_versions(self.revision)

    def version_of(self, doc_id: str) -> str | None:
        return self.store.versions_of([doc_id], self.revision).get(doc_id)


class Retriever:
    """Dense search through the store, fused with BM25 from the on-disk lexical index when ``lexical_weight`` > 0."""

    def __init__(self, settings: Settings, embedder: TextEmbedder, store: IndexStore):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self._view: View | None = None
        self._lock = threading.Lock()

    def view(self, refresh: bool = True) -> View:
        """The current revision; nothing else is read until asked (see View).

        ``refresh=False`` reuses the view the last search saw, without asking the store for its revision: the rest
        of a request (quoting, verifying) then reads the same document versions its retrieval did.
        """
        if not refresh and self._view is not None:
            return self._view
        revision = self.store.revision()
        view = self._view
        if view is None or view.revision != revision:
            with self._lock:
                if self._view is None or self._view.revision != revision:
                    lexical = self._lexical_index()
                    if lexical is not None:
                        # This node's copy catches up with the registry: cost proportional to what changed.
                        lexical.reconcile(self.store.document_versions(revision), self.store.passages_of)
                    self._view = View(revision, self.store)
                view = self._view
        return view

    def _lexical_index(self):
        return self.store.open_lexical() if self.settings.lexical_weight > 0 else None

    def versions_of(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """Registered versions of these documents at the revision the last search saw (only their rows are read)."""
        return self.store.versions_of(list(doc_ids), self.view(refresh=False).revision)

    def search(self, query: str, k: int | None = None, documents: list[str] | None = None,
               language: str | None = None, query_vector: np.ndarray | None = None) -> list[SearchHit]:
        k = k or self.settings.top_k
        view = self.view()
        vector = query_vector if query_vector is not None else self.embedder.embed_queries([query])[0]
        where = filter_where(documents, language)
        n = max(self.settings.candidates, k * 4)
        found = self.store.query(vector, n, where)
        lexical_scores: dict[str, float] = {}
        lexical = self._lexical_index()
        if lexical is not None:
            ranked = lexical.search(query, n, documents=documents, language=language)
            if ranked and ranked[0][1] > 0:
                top = ranked[0][1]
                lexical_scores = {chunk_id: score / top for chunk_id, score in ranked}
                dense_ids = {p.chunk_id for p, _ in found}
                found += [(p, float(np.dot(v, vector)))
                          for p, v in self.store.passages_by_id([c for c, _ in ranked if c not in dense_ids])]
        versions = self.store.versions_of({p.document for p, _ in found}, view.revision)
        # Trust only the registered version of each document (an update in flight stores passages early).
        candidates = {p.chunk_id: (p, score) for p, score in found if versions.get(p.document) == p.version}
        ranked_hits = sorted(
            (
                hit_from(p, dense + self.settings.lexical_weight * lexical_scores.get(cid, 0.0),
                         dense_score=round(dense, 4), lexical_score=round(lexical_scores.get(cid, 0.0), 4))
                for cid, (p, dense) in candidates.items()
            ),
            key=lambda h: h.score, reverse=True,
        )
        return fold_duplicates(ranked_hits, k)


def fold_duplicates(ranked: list[SearchHit], k: int, threshold: float = 0.6) -> list[SearchHit]:
    """Keep the best of near-identical passages; the others' documents are listed as its alternatives."""
    kept: list[SearchHit] = []
    shingles: dict[str, set[str]] = {}  # each hit's shingles once, not once per comparison

    def of(hit: SearchHit) -> set[str]:
        if hit.chunk_id not in shingles:
            shingles[hit.chunk_id] = _shingles(hit.text)
        return shingles[hit.chunk_id]

    def twins(a: SearchHit, b: SearchHit) -> bool:
        sa, sb = of(a), of(b)
        return bool(sa and sb) and len(sa & sb) / min(len(sa), len(sb)) >= threshold

    for hit in ranked:
        twin = next((k_ for k_ in kept if k_.document != hit.document and twins(k_, hit)), None)
        if twin is not None:
            if hit.document not in twin.alternatives:
                twin.alternatives.append(hit.document)
            continue
        if len(kept) < k:
            kept.append(hit)
    return kept


def filter_where(documents: list[str] | None, language: str | None) -> dict | None:
    """The Chroma ``where`` clause of a search kept to some documents and/or one language (None: no filter)."""
    clauses: list[dict] = []
    if documents:
        clauses.append({"document": {"$in": list(documents)}})
    if language:
        clauses.append({"language": language})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
