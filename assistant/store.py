"""Step 5, store: passages and their vectors in Chroma, plus a registry of indexed document versions.

Both live in Chroma (embedded ``PersistentClient`` under ``index/``, or a server through ``HttpClient``), so every
process that opens the same Chroma sees the same corpus. The registry row of a document is the commit point of an
update: the rows derived from a new version (its passages, its cleaned text) are written first, then the registry
row names that version, then the old version's rows are deleted. Readers only trust rows whose version the registry
names, so a crash at any point leaves whole document versions answering, and the next sync sweeps up the rest.

Scale rules (chromadb 1.5.9 fails a read of more than 32,766 rows with their metadata): every read is by id, filtered
to one document, or paged; no process keeps a copy of the corpus. The registry row holds no document text (a row
with a large ``documents`` field costs Chroma a full-text indexing of it on every commit): the cleaned text is kept
compressed in the metadata of a ``<collection>-texts`` row per version, written before the commit like passages.
Word statistics for the answer composer (document frequencies) are kept incrementally in :class:`TermStats`.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from math import log
from pathlib import Path
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from assistant.errors import AssistantError
from assistant.lexical import FILE_NAME as LEXICAL_FILE
from assistant.lexical import LexicalIndex
from assistant.schema import Document, PageSpan, Passage, SearchHit
from assistant.sentences import RowCache, SentenceIndex, vectors_by_id
from assistant.settings import Settings
from assistant.split import passage_id

log_ = logging.getLogger(__name__)

META_ID = "__meta__"
_UNIT = [1.0]  # registry and text rows need a vector; they are only ever fetched by id or by metadata
PAGE = 10_000  # rows per paged read: well under SQLite's 32,766 variables that a larger read with metadata exceeds
TEXT_PART = 512 * 1024  # characters of compressed text per row of the texts collection


class IndexModelMismatch(AssistantError):
    """The index holds vectors of another embedding model: they cannot be mixed."""

    status, kind = 409, "index_model_mismatch"


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    title: str
    language: str
    content_hash: str
    version: str
    ingest: str
    passages: int
    indexed_at: float
    model_id: str
    source: str
    metadata: dict

    @property
    def passage_ids(self) -> list[str]:
        return [passage_id(self.doc_id, self.version, i) for i in range(self.passages)]


@dataclass(frozen=True)
class Commit:
    """One document version to make visible: its passages (and text) are already stored."""

    document: Document
    passages: int
    source: str
    terms: Counter | None = None  # passages of this version containing each word (for idf)


def make_client(settings: Settings):
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(host=url.hostname or "localhost", port=url.port or 8000,
                                   ssl=url.scheme == "https", settings=chroma_settings)
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)


class _Gate:
    """Many store calls at once, or one reopen of the client alone (reader preference: calls may nest)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0

    @contextmanager
    def shared(self):
        with self._cond:
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                if not self._users:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self):
        with self._cond:
            while self._users:
                self._cond.wait()
            yield


def _shared(method):
    @wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._gate.shared():
            return method(self, *args, **kwargs)
    return wrapper


def _pages(collection, **kwargs) -> Iterator[dict]:
    """``collection.get`` in pages of PAGE rows (same filters and includes)."""
    offset = 0
    while True:
        got = collection.get(limit=PAGE, offset=offset, **kwargs)
        if got["ids"]:
            yield got
        if len(got["ids"]) < PAGE:
            return
        offset += PAGE


class IndexStore:
    def __init__(self, settings: Settings, model_id: str, rebuild: bool = False, client=None):
        self.settings = settings
        self.model_id = model_id
        self._gate = _Gate()
        self._own_revisions: set[str] = set()  # revisions this store wrote: no reason to reopen for them
        self._seen_revision: str | None = None
        # (revision, doc id -> version, doc id -> title)
        self._registered_rows: tuple[str, dict[str, str], dict[str, str]] | None = None
        self._some_versions: tuple[str, dict[str, str | None]] = ("", {})  # (revision, the doc ids asked for so far)
        self._versions_lock = threading.Lock()
        self._passages_by_id: RowCache[str, tuple[Passage, np.ndarray]] = RowCache()
        self._open(client)
        name = settings.collection
        existing = {c.name if hasattr(c, "name") else c for c in self.client.list_collections()}
        if f"{name}-registry" in existing:
            registry = self.client.get_collection(f"{name}-registry")
            meta = registry.get(ids=[META_ID], include=["metadatas"])
            indexed_with = meta["metadatas"][0].get("model_id") if meta["ids"] else None
            if indexed_with and indexed_with != model_id:
                if not rebuild:
                    raise IndexModelMismatch(
                        f"The index was built with the embedding model {indexed_with}, but the assistant is set to "
                        f"{model_id}. Vectors of two models cannot be mixed: run `assistant index --rebuild` to "
                        "re-embed the corpus, or set ASSISTANT_EMBEDDING_MODEL back."
                    )
            if rebuild and indexed_with:
                for coll in (name, f"{name}-registry", f"{name}-texts", f"{name}-sentences"):
                    if coll in existing:
                        self.client.delete_collection(coll)
                self.terms.clear()
                for suffix in ("", "-wal", "-shm"):
                    (Path(settings.index_dir) / f"{LEXICAL_FILE}{suffix}").unlink(missing_ok=True)
        self._collections()
        if not self.registry.get(ids=[META_ID])["ids"]:
            self._write_meta(revision=uuid.uuid4().hex[:12], dirty=False)
        self.max_batch = min(self.client.get_max_batch_size(), 5000)

    # --- the client, and reopening it when another process changed an embedded index ---
    def _open(self, client=None) -> None:
        self._given_client = client is not None
        self.client = client or make_client(self.settings)
        if not hasattr(self, "terms"):
            self.terms = TermStats(self.settings)
            self._lexical: LexicalIndex | None = None

    def _collections(self) -> None:
        name = self.settings.collection
        self.passages = self.client.get_or_create_collection(
            name, configuration={"hnsw": {"space": "cosine", "ef_construction": 200, "ef_search": 200}},
            metadata={"model_id": self.model_id},
        )
        self.registry = self.client.get_or_create_collection(f"{name}-registry")
        self.texts = self.client.get_or_create_collection(f"{name}-texts")
        self.sentences = SentenceIndex(self.client, self.settings, self.model_id)  # sentence rows beside the passages

    @property
    def lexical(self) -> LexicalIndex | None:
        """The on-disk BM25 index (assistant/lexical.py), written by syncs only while ``lexical_weight`` > 0."""
        return self.open_lexical() if self.settings.lexical_weight > 0 else None

    def open_lexical(self) -> LexicalIndex:
        """The lexical index beside this store, opened on first use (a reader brings it up to date by reconciling)."""
        if self._lexical is None:
            self._lexical = LexicalIndex(self.settings.index_dir)
        return self._lexical

    @property
    def embedded(self) -> bool:
        return not self.settings.chroma_url and not self._given_client

    def reopen(self) -> None:
        """Drop the embedded client's in-memory state (its vector index) and read the index from disk again.

        An embedded Chroma loads its vector index once per process: passages that another process (``assistant
        index`` beside a running ``serve``) added are in the metadata tables but not in that index, so they are never
        found, and a filtered query naming them fails. Waits for calls in flight; takes tens of ms.
        """
        if not self.embedded:
            return
        with self._gate.exclusive():
            close = getattr(self.client, "close", None)
            if close is not None:
                close()
            self._open()
            self._collections()
            self._passages_by_id.clear()
        log_.info("reopened the index at %s: another process changed it", self.settings.index_dir)

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()
        self.terms.close()
        if self._lexical is not None:
            self._lexical.close()

    # --- meta row: revision and the dirty flag of an unfinished sync ---
    @_shared
    def meta(self) -> dict:
        got = self.registry.get(ids=[META_ID], include=["metadatas"])
        return got["metadatas"][0] if got["ids"] else {}

    def _write_meta(self, **values) -> None:
        meta = {"model_id": self.model_id, **self.meta(), **values}
        with self._gate.shared():
            self.registry.upsert(ids=[META_ID], embeddings=[_UNIT], metadatas=[meta], documents=[""])

    def revision(self) -> str:
        """The index's revision; a change by another process to an embedded index reopens it (see ``reopen``)."""
        revision = str(self.meta().get("revision", ""))
        if revision != self._seen_revision:
            if self._seen_revision is not None and revision not in self._own_revisions:
                self.reopen()
            self._seen_revision = revision
        return revision

    def bump_revision(self) -> str:
        revision = uuid.uuid4().hex[:12]
        self._own_revisions.add(revision)
        self._write_meta(revision=revision)
        return revision

    def mark_dirty(self, dirty: bool) -> None:
        self._write_meta(dirty=dirty)

    # --- registry ---
    @_shared
    def documents(self) -> dict[str, DocumentRecord]:
        records = {}
        for got in _pages(self.registry, include=["metadatas"]):
            for doc_id, meta in zip(got["ids"], got["metadatas"]):
                if doc_id != META_ID:
                    records[doc_id] = _record(doc_id, meta)
        return records

    @_shared
    def record(self, doc_id: str) -> DocumentRecord | None:
        if doc_id == META_ID:
            return None
        got = self.registry.get(ids=[doc_id], include=["metadatas"])
        return _record(doc_id, got["metadatas"][0]) if got["ids"] else None

    def document_versions(self, revision: str | None = None) -> dict[str, str]:
        """doc id → registered version, read from the registry once per revision (pass the one a request saw)."""
        return self._registered(revision)[0]

    def document_titles(self, revision: str | None = None) -> dict[str, str]:
        """doc id → title, from the same once-per-revision read of the registry as ``document_versions``."""
        return self._registered(revision)[1]

    def _registered(self, revision: str | None) -> tuple[dict[str, str], dict[str, str]]:
        revision = revision if revision is not None else self.revision()
        cached = self._registered_rows
        if cached is not None and cached[0] == revision:
            return cached[1], cached[2]
        with self._versions_lock:
            if self._registered_rows is None or self._registered_rows[0] != revision:
                with self._gate.shared():
                    rows = [(doc_id, meta) for got in _pages(self.registry, include=["metadatas"])
                            for doc_id, meta in zip(got["ids"], got["metadatas"]) if doc_id != META_ID]
                self._registered_rows = (revision, {d: m["version"] for d, m in rows}, {d: m["title"] for d, m in rows})
            return self._registered_rows[1], self._registered_rows[2]

    def versions_of(self, doc_ids: Iterable[str], revision: str) -> dict[str, str]:
        """Registered versions of these documents at ``revision`` (one registry read by id for those not yet asked).

        A search needs the versions of its candidates only: after a sync, a reader's next question costs one small
        read, not a read of the whole registry.
        """
        full = self._registered_rows
        if full is not None and full[0] == revision:
            return {d: full[1][d] for d in doc_ids if d in full[1]}
        cached_revision, cache = self._some_versions
        if cached_revision != revision:
            cache = {}
            self._some_versions = (revision, cache)
        missing = [d for d in dict.fromkeys(doc_ids) if d not in cache and d != META_ID]
        if missing:
            with self._gate.shared():
                found: dict[str, str | None] = dict.fromkeys(missing)
                for i in range(0, len(missing), self.max_batch):
                    got = self.registry.get(ids=missing[i:i + self.max_batch], include=["metadatas"])
                    found.update((d, m["version"]) for d, m in zip(got["ids"], got["metadatas"]))
            cache.update(found)
        return {d: v for d in doc_ids if (v := cache.get(d)) is not None}

    @_shared
    def document(self, doc_id: str) -> Document | None:
        """The registered version of a document with its cleaned text (the text every passage offset refers to)."""
        record = self.record(doc_id)
        if record is None:
            return None
        got = self.texts.get(where={"$and": [{"document": doc_id}, {"version": record.version}]},
                             include=["metadatas"])
        parts = sorted(got["metadatas"], key=lambda m: m["part"])
        if parts and len(parts) == parts[0]["parts"]:
            text = zlib.decompress(base64.b64decode("".join(m["data"] for m in parts))).decode("utf-8")
        else:  # a registry row written before texts moved out of it (INGEST_VERSION < 3) still holds the text
            legacy = self.registry.get(ids=[doc_id], include=["documents"])["documents"]
            if not legacy or not legacy[0]:
                return None
            text, parts = legacy[0], [{}]
        return Document(
            doc_id=doc_id, title=record.title, language=record.language, text=text,
            pages=[PageSpan(**p) for p in json.loads(parts[0].get("pages", "[]"))],
            metadata=record.metadata, content_hash=record.content_hash, ingest=record.ingest,
        )

    @_shared
    def commit_documents(self, commits: list[Commit]) -> None:
        """Make these document versions the ones readers see, in one registry write (the commit point).

        Their passages must already be stored. Their texts are written here, just before the registry rows: text rows
        of a version the registry does not name are orphans like its passages.
        """
        if not commits:
            return
        ids, metas = [], []
        for commit in commits:
            document = commit.document
            packed = base64.b64encode(zlib.compress(document.text.encode("utf-8"), 1)).decode("ascii")
            parts = [packed[i:i + TEXT_PART] for i in range(0, len(packed), TEXT_PART)] or [""]
            for i, data in enumerate(parts):
                ids.append(f"{document.doc_id}@{document.version}#{i}")
                meta = {"document": document.doc_id, "version": document.version, "part": i, "parts": len(parts),
                        "data": data}
                if i == 0:
                    meta["pages"] = json.dumps([p.model_dump() for p in document.pages])
                metas.append(meta)
        for i in range(0, len(ids), self.max_batch):
            self.texts.upsert(ids=ids[i:i + self.max_batch], embeddings=[_UNIT] * len(ids[i:i + self.max_batch]),
                              metadatas=metas[i:i + self.max_batch])
        now = time.time()
        rows = [{
            "title": c.document.title, "language": c.document.language, "content_hash": c.document.content_hash,
            "version": c.document.version, "ingest": c.document.ingest, "passages": c.passages, "indexed_at": now,
            "model_id": self.model_id, "source": c.source, "extra": json.dumps(c.document.metadata, ensure_ascii=False),
        } for c in commits]
        for i in range(0, len(rows), self.max_batch):
            batch = commits[i:i + self.max_batch]
            self.registry.upsert(ids=[c.document.doc_id for c in batch], embeddings=[_UNIT] * len(batch),
                                 metadatas=rows[i:i + self.max_batch], documents=[""] * len(batch))
        self.terms.apply([(c.document.doc_id, c.document.version, c.passages, c.terms) for c in commits
                          if c.terms is not None])

    def commit_document(self, document: Document, passages: list[Passage], source: str) -> None:
        """One document's commit (see ``commit_documents``)."""
        self.commit_documents([Commit(document, len(passages), source)])

    @_shared
    def forget_document(self, doc_id: str) -> None:
        self.registry.delete(ids=[doc_id])
        self.terms.apply([], removed=[doc_id])

    # --- rows derived from one document version: passages (and their vectors) and its text ---
    @_shared
    def add_passages(self, passages: list[Passage], vectors, input_hashes: list[str]) -> None:
        for i in range(0, len(passages), self.max_batch):
            batch = passages[i:i + self.max_batch]
            self.passages.upsert(
                ids=[p.chunk_id for p in batch],
                embeddings=np.asarray(vectors[i:i + self.max_batch], dtype=np.float32),
                metadatas=[_passage_meta(p, h) for p, h in zip(batch, input_hashes[i:i + self.max_batch])],
            )

    def write_derived(self, passages: list[Passage], vectors, input_hashes: list[str],
                      sentence_vectors=None, sentence_hashes: list[str] | None = None) -> None:
        """Store the rows derived from passages of document versions, before their commit: the passages, and their
        sentences (vectors and hashes in ``sentences_of(passages)`` order)."""
        self.add_passages(passages, vectors, input_hashes)
        if self.lexical is not None:
            self.lexical.add(passages)
        if sentence_hashes:
            with self._gate.shared():
                self.sentences.add(passages, sentence_vectors, sentence_hashes)

    @_shared
    def stored_vectors(self, doc_id: str) -> dict[str, np.ndarray]:
        """Vectors of a document's stored passages (any version, committed or not) keyed by the hash of what was
        embedded, for reuse: an edit re-embeds only changed passages, a killed sync resumes where it stopped."""
        vectors: dict[str, np.ndarray] = {}
        for got in _pages(self.passages, where={"document": doc_id}, include=["metadatas", "embeddings"]):
            for meta, vector in zip(got["metadatas"], got["embeddings"]):
                vectors[_input_hash(meta)] = np.asarray(vector, dtype=np.float32)
        return vectors

    def _delete_where(self, collection, where: dict) -> int:
        deleted = 0
        while ids := collection.get(where=where, limit=self.max_batch, include=[])["ids"]:
            collection.delete(ids=ids)
            deleted += len(ids)
        return deleted

    @_shared
    def delete_derived(self, doc_id: str, keep_version: str | None = None) -> int:
        """Delete the rows derived from a document's versions (all, or all but ``keep_version``)."""
        where: dict = {"document": doc_id}
        if keep_version is not None:
            where = {"$and": [{"document": doc_id}, {"version": {"$ne": keep_version}}]}
        deleted = self._delete_where(self.passages, where)
        self._delete_where(self.texts, where)
        self.sentences.delete(doc_id, keep_version=keep_version)
        if self.lexical is not None:
            self.lexical.delete(doc_id, keep_version=keep_version)
        return deleted

    def delete_passages(self, doc_id: str, keep_version: str | None = None) -> int:
        return self.delete_derived(doc_id, keep_version)

    @_shared
    def sweep_orphans(self, current: dict[str, str]) -> int:
        """Delete derived rows whose document version is not the registered one (left by an interrupted sync)."""
        swept = 0
        for collection in (self.passages, self.texts):
            orphans = [row_id for got in _pages(collection, include=["metadatas"])
                       for row_id, m in zip(got["ids"], got["metadatas"])
                       if current.get(m["document"]) != m["version"]]
            for i in range(0, len(orphans), self.max_batch):
                collection.delete(ids=orphans[i:i + self.max_batch])
            if collection is self.passages:
                swept = len(orphans)
        self.sentences.sweep(current)
        if self.lexical is not None:
            self.lexical.sweep(current)
        return swept

    # --- reads ---
    @_shared
    def count(self) -> int:
        return self.passages.count()

    @_shared
    def passages_of(self, doc_id: str, version: str | None = None) -> list[Passage]:
        """The passages of one document version (default: the registered one), in document order."""
        if version is None:
            record = self.record(doc_id)
            if record is None:
                return []
            version = record.version
        where = {"$and": [{"document": doc_id}, {"version": version}]}
        passages = [_to_passage(pid, text, meta) for got in _pages(self.passages, where=where,
                                                                    include=["metadatas", "documents"])
                    for pid, text, meta in zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(passages, key=lambda p: p.start)

    def iter_passages(self, versions: dict[str, str] | None = None) -> Iterator[Passage]:
        """Every registered passage, one document at a time (for building an index beside the store)."""
        versions = versions if versions is not None else self.document_versions()
        for doc_id, version in versions.items():
            yield from self.passages_of(doc_id, version)

    @_shared
    def passages_by_id(self, ids: list[str]) -> list[tuple[Passage, np.ndarray]]:
        """These passages (any version) with their vectors; missing ids are left out."""
        return list(self._passages_by_id.get_many(ids, self._read_passages).values())

    def _read_passages(self, ids: list[str]) -> dict[str, tuple[Passage, np.ndarray]]:
        found: dict[str, tuple[Passage, np.ndarray]] = {}
        for i in range(0, len(ids), self.max_batch):
            got = self.passages.get(ids=ids[i:i + self.max_batch], include=["metadatas", "embeddings"])
            found.update((pid, (_to_passage(pid, None, meta), np.asarray(v, dtype=np.float32)))
                         for pid, meta, v in zip(got["ids"], got["metadatas"], got["embeddings"]))
        return found

    @_shared
    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these passages by id (missing ids are left out)."""
        return vectors_by_id(self.passages, ids, self.max_batch)

    def query(self, vector, n: int, where: dict | None = None) -> list[tuple[Passage, float]]:
        try:
            return self._query(vector, n, where)
        except Exception as exc:  # noqa: BLE001 - chromadb raises its own internal error types
            if not self.embedded or "finding id" not in str(exc):
                raise
            # Another process added passages that this process's vector index has not loaded: reload it.
            self.reopen()
            return self._query(vector, n, where)

    @_shared
    def _query(self, vector, n: int, where: dict | None) -> list[tuple[Passage, float]]:
        # Chroma returns fewer rows when it holds fewer than n (none when empty): no count first, which costs a read.
        got = self.passages.query(query_embeddings=[np.asarray(vector, dtype=np.float32)], n_results=n,
                                  where=where, include=["metadatas", "documents", "distances"])
        return [
            (_to_passage(pid, text, meta), 1.0 - float(dist))
            for pid, text, meta, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
        ]

    # --- word statistics for the answer composer ---
    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        """BM25's idf of each term over the registered passages: ln((N - n + 0.5) / (n + 0.5)), at least 0."""
        return self.terms.idf(terms)

    def reconcile_terms(self, versions: dict[str, str]) -> None:
        """After an interrupted sync: make the word statistics count exactly the registered versions."""
        stale = self.terms.stale(versions)
        if stale:
            from assistant.retrieve import passage_terms

            fixed = [(doc_id, versions[doc_id], len(ps), passage_terms(ps))
                     for doc_id in stale if doc_id in versions for ps in [self.passages_of(doc_id, versions[doc_id])]]
            self.terms.apply(fixed, removed=[d for d in stale if d not in versions])


class TermStats:
    """Document frequencies of words over the registered passages, updated per commit (SQLite beside the index).

    Each document version's own counts are kept too, so replacing or removing a document subtracts exactly what it
    added, and a sync interrupted between a registry commit and this update is repaired by ``reconcile_terms``.
    """

    def __init__(self, settings: Settings):
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        self.path = Path(settings.index_dir) / f"{settings.collection}-terms.sqlite3"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache: tuple[int, dict[str, float]] = (-1, {})
        with self._db() as db:
            db.executescript("""
                PRAGMA journal_mode=WAL;
                CREATE TABLE IF NOT EXISTS df (term TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, version TEXT NOT NULL,
                                                 passages INTEGER NOT NULL, counts BLOB NOT NULL);
            """)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=60)
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def clear(self) -> None:
        with self._lock, self._db() as db:
            db.execute("DELETE FROM df")
            db.execute("DELETE FROM docs")

    def apply(self, versions: list[tuple[str, str, int, Counter]], removed: Iterable[str] = ()) -> None:
        """Count these document versions instead of whatever version of them was counted, and drop ``removed``."""
        delta: Counter = Counter()
        with self._lock, self._db() as db:
            for doc_id in [v[0] for v in versions] + list(removed):
                row = db.execute("SELECT counts FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
                if row:
                    delta.subtract(json.loads(zlib.decompress(row[0])))
                    db.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
            for doc_id, version, passages, counts in versions:
                delta.update(counts)
                db.execute("INSERT INTO docs VALUES (?, ?, ?, ?)", (doc_id, version, passages,
                           zlib.compress(json.dumps(counts, ensure_ascii=False).encode(), 1)))
            changed = [(term, n) for term, n in delta.items() if n]
            db.executemany("INSERT INTO df VALUES (?, ?) ON CONFLICT(term) DO UPDATE SET n = n + excluded.n", changed)
            db.execute("DELETE FROM df WHERE n <= 0")

    def stale(self, versions: dict[str, str]) -> list[str]:
        """Documents whose counted version is not the registered one (or that are counted but not registered)."""
        counted = dict(self._db().execute("SELECT doc_id, version FROM docs").fetchall())
        return sorted({d for d, v in versions.items() if counted.get(d) != v} | (set(counted) - set(versions)))

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        terms = sorted(set(terms))
        db = self._db()
        total = db.execute("SELECT COALESCE(SUM(passages), 0) FROM docs").fetchone()[0]
        if not terms or not total:
            return {}
        found: dict[str, int] = {}
        for i in range(0, len(terms), 500):
            chunk = terms[i:i + 500]
            found.update(db.execute(f"SELECT term, n FROM df WHERE term IN ({','.join('?' * len(chunk))})", chunk))
        return {t: max(log((total - found.get(t, 0) + 0.5) / (found.get(t, 0) + 0.5)), 0.0) for t in terms}


def _record(doc_id: str, meta: dict) -> DocumentRecord:
    return DocumentRecord(
        doc_id=doc_id, title=meta["title"], language=meta["language"], content_hash=meta["content_hash"],
        version=meta["version"], ingest=meta.get("ingest", ""), passages=int(meta["passages"]),
        indexed_at=float(meta["indexed_at"]), model_id=meta["model_id"], source=meta.get("source", ""),
        metadata=json.loads(meta.get("extra", "{}")),
    )


def _passage_meta(p: Passage, input_hash: str) -> dict:
    # Filtered fields as their own keys; the rest packed into one. The text is metadata too, not Chroma's
    # ``documents``: each key is a row of Chroma's metadata table and ``documents`` are full-text indexed, which
    # together were 60% of the cost of writing a passage (lexical search has its own index).
    return {
        "document": p.document, "version": p.version, "language": p.language, "text": p.text,
        "x": json.dumps({"s": p.start, "e": p.end, "p": p.page, "t": p.title, "c": p.context, "h": input_hash},
                        ensure_ascii=False),
    }


def _input_hash(meta: dict) -> str:
    return json.loads(meta["x"])["h"] if "x" in meta else meta.get("input_hash", "")


def _to_passage(pid: str, text: str | None, meta: dict) -> Passage:
    if "x" in meta:
        x = json.loads(meta["x"])
        return Passage(chunk_id=pid, document=meta["document"], title=x["t"], page=x["p"], start=x["s"], end=x["e"],
                       text=meta["text"], language=meta.get("language", "en"), version=meta["version"],
                       context=x["c"])
    page = int(meta.get("page", -1))  # rows written before INGEST_VERSION 3
    return Passage(
        chunk_id=pid, document=meta["document"], title=meta["title"], page=None if page < 0 else page,
        start=int(meta["start"]), end=int(meta["end"]), text=text or "", language=meta.get("language", "en"),
        version=meta["version"], context=meta.get("context", ""),
    )


def hit_from(passage: Passage, score: float, **extra) -> SearchHit:
    return SearchHit(chunk_id=passage.chunk_id, document=passage.document, title=passage.title, page=passage.page,
                     start=passage.start, end=passage.end, text=passage.text, language=passage.language,
                     context=passage.context, score=score, **extra)
