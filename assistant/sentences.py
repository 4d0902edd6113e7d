"""Sentences as evidence: every passage's sentences, embedded on their own and stored next to the passages.

A passage says what a question is about; a sentence is what answers it. So each sentence of a passage (exact
offsets into the document's cleaned text) is embedded with the document prompt, with its passage's title and heading
as context, and stored in one Chroma collection ``<collection>-sentences`` on the store's client. Rows carry their
document version, like passages: sync writes a version's sentences before the registry commit, deletes the old
version's after it, and sweeps orphans of an interrupted sync, so readers trusting only registered versions always
see whole versions. Vectors are reused by the hash of the embedded input, so an unchanged sentence is never
embedded twice. Every whole-collection read is paged (Chroma refuses a single get of more than 32,766 rows).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from assistant.schema import Passage

PAGE = 5000  # rows per paged read; far below Chroma's 32,766-row limit on one get
_FILTER_CHUNK = 500  # ids per "$in" filter

# A sentence ends at Chinese end marks, at Latin end marks followed by white space, and at a line end.
_BOUNDARY = re.compile(r"[。！？；]|[.!?;](?=\s)|\n")
# Closing quotes and brackets that belong to the sentence they close ("…转变。”").
_CLOSERS = re.compile(r"[”’\"'」』）)\]]*")
# Brackets a sentence cannot end inside: "[FR Doc. 2025–15340 Filed 8–11–25; 11:15 am]" is one unit.
_OPENING, _CLOSING = "([（【", ")]）】"
# A section's number and run-in title head the sentence after them ("Sec. 2. Policy. It is the policy…"): alone, they
# are not a statement anyone can quote.
_RUN_IN_HEADING = re.compile(r"(?:Sec\.|Section|SECTION|§)\s*\d+[A-Za-z]?\.(?:\s+[A-Z][^.;!?\n]{0,60}\.)?")
# A full stop after these does not end a sentence ("Sec. 3", "29 U.S.C. 1104", "Mr. Smith", "Aug. 7").
_ABBREVIATION = re.compile(
    r"(\b[A-Z]\.|\b(?:Sec|No|Vol|Mr|Ms|Mrs|Dr|Inc|Co|Corp|U\.S|e\.g|i\.e|etc|Pub|L|Stat|U\.S\.C|v|vs|St|Jan|Feb|Mar|"
    r"Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Fig|p|pp|para|art)\.)$")


@dataclass(frozen=True)
class SentenceHit:
    sentence_id: str
    document: str  # doc id
    chunk_id: str  # the passage it belongs to
    title: str
    page: int | None
    start: int  # offsets into the document's cleaned text: document.text[start:end] == text
    end: int
    text: str
    language: str
    version: str  # document version (readers trust only registered versions)
    score: float = 0.0  # cosine to the query, when from a query
    position: int = 0  # index of the sentence in its passage
    context: str = ""  # heading the passage sits under


def ends_sentence(text: str, i: int) -> bool:
    """Whether a sentence ends just before offset ``i`` ("Sec." and "U.S.C." end none)."""
    if i <= 0 or i > len(text) or not _BOUNDARY.match(text, i - 1):
        return False
    return not (text[i - 1] == "." and _ABBREVIATION.search(text[max(0, i - 12):i]))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, white space trimmed; English and Chinese, abbreviation-aware."""
    spans: list[tuple[int, int]] = []
    begin = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if end <= begin or not ends_sentence(text, end):
            continue
        closers = _CLOSERS.match(text, end)  # the pattern matches the empty string too
        closed = closers.end() if closers else end
        if text[end - 1] != "\n" and holds_together(text, begin, closed):
            continue
        end = closed
        _append(spans, text, begin, end)
        begin = end
    _append(spans, text, begin, len(text))
    return spans


def holds_together(text: str, begin: int, end: int) -> bool:
    """Whether the sentence ``text[begin:end]`` must go on past its end mark: it is inside a bracket that the rest of
    its line closes, or it is only a section number with or without its run-in title ("Sec. 2.", "Sec. 2. Policy.").
    A stray bracket that nothing closes ("a sad face :(") keeps no sentence from ending."""
    piece = text[begin:end]
    unclosed = _bracket_balance(piece)
    if unclosed > 0:  # the rest of the line is read only for the rare sentence with an open bracket
        line_end = text.find("\n", end)
        if -_bracket_balance(text[end:] if line_end < 0 else text[end:line_end]) >= unclosed:
            return True
    return _RUN_IN_HEADING.fullmatch(piece.strip()) is not None


def _bracket_balance(text: str) -> int:
    return sum(text.count(c) for c in _OPENING) - sum(text.count(c) for c in _CLOSING)


def _append(spans: list[tuple[int, int]], text: str, begin: int, end: int) -> None:
    piece = text[begin:end]
    lead = len(piece) - len(piece.lstrip())
    start, stop = begin + lead, begin + len(piece.rstrip())
    if stop - start >= 2:
        spans.append((start, stop))


def sentence_id(chunk_id: str, position: int) -> str:
    return f"{chunk_id}-s{position:03d}"


def sentences_of(passages: Iterable[Passage]) -> list[SentenceHit]:
    """The sentences of passages, in order, with document offsets."""
    rows = []
    for passage in passages:
        for position, (s, e) in enumerate(sentence_spans(passage.text)):
            rows.append(SentenceHit(
                sentence_id=sentence_id(passage.chunk_id, position), document=passage.document,
                chunk_id=passage.chunk_id, title=passage.title, page=passage.page, start=passage.start + s,
                end=passage.start + e, text=passage.text[s:e], language=passage.language, version=passage.version,
                position=position, context=passage.context,
            ))
    return rows


def sentence_input(embedder, sentence: SentenceHit) -> str:
    """What is embedded for a sentence: the document prompt with its passage's title, heading and the sentence."""
    return embedder.document_input(sentence.title, sentence.text, sentence.context)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RowCache(Generic[K, V]):
    """The rows of up to ``size`` passages, kept by id: a passage id names one version of one document, so its rows
    never change, and reading them from memory spares a Chroma read (2 to 4 ms) on every question. Least recently
    used ids go first; a store drops the whole cache when it reopens its index."""

    def __init__(self, size: int = 2048):
        self.size = size
        self._rows: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, ids: Iterable[K], read: Callable[[list[K]], dict[K, V]]) -> dict[K, V]:
        """The rows of ``ids`` (in their order; ids that ``read`` does not return are left out), reading only those
        not held; what ``read`` returns is kept."""
        ids = list(dict.fromkeys(ids))
        with self._lock:
            held = {i: self._rows[i] for i in ids if i in self._rows}
            for i in held:
                self._rows.move_to_end(i)
        missing = [i for i in ids if i not in held]
        fresh = read(missing) if missing else {}
        with self._lock:
            for i, row in fresh.items():
                self._rows[i] = row
                self._rows.move_to_end(i)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return {i: held[i] if i in held else fresh[i] for i in ids if i in held or i in fresh}

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


def vectors_by_id(collection, ids: list[str], batch: int) -> dict[str, np.ndarray]:
    """The stored vectors of a Chroma collection's rows by id, read ``batch`` ids at a time (missing ids are left out)."""
    found: dict[str, np.ndarray] = {}
    for i in range(0, len(ids), batch):
        got = collection.get(ids=ids[i:i + batch], include=["embeddings"])
        found.update((row_id, np.asarray(v, dtype=np.float32)) for row_id, v in zip(got["ids"], got["embeddings"]))
    return found


def input_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SentenceIndex:
    """One Chroma collection of sentence rows beside the passages, on the same client."""

    def __init__(self, client, settings, model_id: str):
        self.model_id = model_id
        self.name = f"{settings.collection}-sentences"
        existing = {c.name if hasattr(c, "name") else c for c in client.list_collections()}
        if self.name in existing:
            built_with = (client.get_collection(self.name).metadata or {}).get("model_id")
            if built_with and built_with != model_id:
                # The store has already decided (rebuild) or refused (mismatch); vectors of two models never mix.
                client.delete_collection(self.name)
        self.collection = client.get_or_create_collection(
            self.name, configuration={"hnsw": {"space": "cosine", "ef_construction": 200, "ef_search": 200}},
            metadata={"model_id": model_id},
        )
        self.max_batch = min(client.get_max_batch_size(), 5000)
        self._by_passage: RowCache[str, list[tuple[SentenceHit, np.ndarray]]] = RowCache()

    # --- writing ---
    def add(self, passages: list[Passage], vectors, input_hashes: list[str]) -> None:
        """Upsert the sentence rows of ``passages``; ``vectors`` and ``input_hashes`` follow ``sentences_of(passages)``."""
        rows = sentences_of(passages)
        if len(rows) != len(vectors) or len(rows) != len(input_hashes):
            raise ValueError(f"{len(rows)} sentences but {len(vectors)} vectors and {len(input_hashes)} hashes")
        for i in range(0, len(rows), self.max_batch):
            batch = rows[i:i + self.max_batch]
            self.collection.upsert(
                ids=[r.sentence_id for r in batch],
                embeddings=np.asarray(vectors[i:i + self.max_batch], dtype=np.float32),
                metadatas=[_meta(r, h) for r, h in zip(batch, input_hashes[i:i + self.max_batch])],
            )

    def stored_vectors(self, doc_id: str) -> dict[str, list[float]]:
        """Vectors of a document's stored sentences keyed by the hash of what was embedded, for reuse."""
        out: dict[str, list[float]] = {}
        for _, meta, _, vector in self._pages(where={"document": doc_id}, include=["metadatas", "embeddings"]):
            out[json.loads(meta["x"])["h"] if "x" in meta else meta.get("input_hash", "")] = list(vector)
        return out

    def delete(self, doc_id: str, keep_version: str | None = None) -> int:
        where: dict = {"document": doc_id}
        if keep_version is not None:
            where = {"$and": [{"document": doc_id}, {"version": {"$ne": keep_version}}]}
        ids = [row[0] for row in self._pages(where=where, include=[])]
        self._delete(ids)
        return len(ids)

    def sweep(self, current: dict[str, str]) -> int:
        """Delete sentences whose document version is not the registered one (left by an interrupted sync)."""
        orphans = [sid for sid, meta, _, _ in self._pages(include=["metadatas"])
                   if current.get(meta["document"]) != meta["version"]]
        self._delete(orphans)
        return len(orphans)

    def _delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), self.max_batch):
            self.collection.delete(ids=ids[i:i + self.max_batch])

    # --- reading ---
    def count(self) -> int:
        return self.collection.count()

    def query(self, vector, n: int, where: dict | None = None) -> list[SentenceHit]:
        if n <= 0:
            return []
        # Chroma returns fewer rows when it holds fewer than n (none when empty): no count first, which costs a read.
        got = self.collection.query(query_embeddings=[list(map(float, vector))], n_results=n, where=where,
                                    include=["metadatas", "distances"])
        return [_hit(sid, None, meta, 1.0 - float(dist))
                for sid, meta, dist in zip(got["ids"][0], got["metadatas"][0], got["distances"][0])]

    def vectors(self, sentence_ids: list[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these sentences (ids not stored are left out)."""
        return vectors_by_id(self.collection, sentence_ids, self.max_batch)

    def within(self, doc_id: str, version: str, start: int, end: int) -> list[SentenceHit]:
        """The stored sentences of one document version that lie inside ``[start, end)``, in document order."""
        where = {"$and": [{"document": doc_id}, {"version": version}]}
        found = [_hit(sid, text, meta) for sid, meta, text, _ in self._pages(where=where, include=["metadatas",
                                                                                                 "documents"])]
        return sorted((h for h in found if start <= h.start and h.end <= end), key=lambda h: h.start)

    def for_passages(self, chunk_ids: list[str]) -> list[tuple[SentenceHit, np.ndarray]]:
        """Every stored sentence of these passages with its vector, in passage order then sentence order."""
        by_passage = self._by_passage.get_many(chunk_ids, self._read_passages)
        return [row for rows in by_passage.values() for row in rows]

    def _read_passages(self, chunk_ids: list[str]) -> dict[str, list[tuple[SentenceHit, np.ndarray]]]:
        rows: dict[str, list[tuple[SentenceHit, np.ndarray]]] = {}
        for i in range(0, len(chunk_ids), _FILTER_CHUNK):
            where = {"chunk_id": {"$in": chunk_ids[i:i + _FILTER_CHUNK]}}
            for sid, meta, text, vector in self._pages(where=where, include=["metadatas", "embeddings"]):
                hit = _hit(sid, text, meta)
                rows.setdefault(hit.chunk_id, []).append((hit, np.asarray(vector, dtype=np.float32)))
        for found in rows.values():
            found.sort(key=lambda r: r[0].position)
        return rows  # a passage without sentences is not kept: its rows may still be on their way

    def _pages(self, where: dict | None = None, include: list | None = None) -> Iterator[tuple]:
        """(id, metadata, document, embedding) of every matching row, read a page at a time."""
        include = include or []
        offset = 0
        while True:
            got = self.collection.get(where=where, include=include, limit=PAGE, offset=offset)
            ids = got["ids"]
            metas = got.get("metadatas") if "metadatas" in include else None
            docs = got.get("documents") if "documents" in include else None
            vectors = got.get("embeddings") if "embeddings" in include else None
            for j, sid in enumerate(ids):
                yield (sid, metas[j] if metas is not None else None, docs[j] if docs is not None else None,
                       vectors[j] if vectors is not None else None)
            if len(ids) < PAGE:
                return
            offset += PAGE


def write_sentences(index: SentenceIndex, embedder, passages: list[Passage], reuse: bool = True) -> int:
    """Store the sentences of one document version's passages, embedding only inputs not stored before.

    Returns the number of sentences embedded. Called by sync before the document's registry commit.
    """
    if not passages:
        return 0
    rows = sentences_of(passages)
    inputs = [sentence_input(embedder, r) for r in rows]
    hashes = [input_hash(t) for t in inputs]
    reusable = index.stored_vectors(passages[0].document) if reuse else {}
    missing = [t for t, h in zip(inputs, hashes) if h not in reusable]
    fresh = iter(embedder.embed_document_inputs(missing)) if missing else iter(())
    vectors = np.array([reusable[h] if h in reusable else next(fresh) for h in hashes], dtype=np.float32)
    index.add(passages, vectors.reshape(len(rows), -1), hashes)
    return len(missing)


def _meta(r: SentenceHit, input_hash_: str) -> dict:
    # The layout of passage rows (store.py): filtered fields as keys, the rest packed, the text as metadata (Chroma's
    # full-text-indexed ``documents`` and one metadata row per key made a row cost 2.5 times as much to write).
    return {
        "document": r.document, "chunk_id": r.chunk_id, "version": r.version, "language": r.language, "text": r.text,
        "x": json.dumps({"t": r.title, "p": r.page, "s": r.start, "e": r.end, "n": r.position, "c": r.context,
                         "h": input_hash_}, ensure_ascii=False),
    }


def _hit(sid: str, text: str | None, meta: dict, score: float = 0.0) -> SentenceHit:
    if "x" in meta:
        x = json.loads(meta["x"])
        return SentenceHit(
            sentence_id=sid, document=meta["document"], chunk_id=meta["chunk_id"], title=x["t"], page=x["p"],
            start=x["s"], end=x["e"], text=meta["text"], language=meta.get("language", "en"), version=meta["version"],
            score=score, position=x["n"], context=x["c"],
        )
    page = int(meta.get("page", -1))
    return SentenceHit(
        sentence_id=sid, document=meta["document"], chunk_id=meta["chunk_id"], title=meta.get("title", ""),
        page=None if page < 0 else page, start=int(meta["start"]), end=int(meta["end"]), text=text or "",
        language=meta.get("language", "en"), version=meta["version"], score=score,
        position=int(meta.get("position", 0)), context=meta.get("context", ""),
    )
