"""Step 5, store: passages and their vectors in Chroma, plus a registry of indexed document versions.

Both live in Chroma (embedded ``PersistentClient`` under ``index/``, or a server through ``HttpClient``), so every
process that opens the same Chroma sees the same corpus. The registry row of a document is the commit point of an
update: passages of a new version are written first, then the registry row names that version, then the old
version's passages are deleted. Readers only trust passages whose version the registry names, so a crash at any
point leaves whole document versions answering, and the next sync sweeps up the rest.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings as ChromaSettings

from assistant.schema import Document, PageSpan, Passage, SearchHit
from assistant.sentences import SentenceIndex
from assistant.settings import Settings
from assistant.split import passage_id

META_ID = "__meta__"
_UNIT = [1.0]  # registry rows need a vector; they are only ever fetched by id


class IndexModelMismatch(RuntimeError):
    pass


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


def make_client(settings: Settings):
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(host=url.hostname or "localhost", port=url.port or 8000,
                                   ssl=url.scheme == "https", settings=chroma_settings)
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.index_dir), settings=chroma_settings)


class IndexStore:
    def __init__(self, settings: Settings, model_id: str, rebuild: bool = False, client=None):
        self.client = client or make_client(settings)
        self.model_id = model_id
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
                for coll in (name, f"{name}-registry", f"{name}-sentences"):
                    if coll in existing:
                        self.client.delete_collection(coll)
        self.passages = self.client.get_or_create_collection(
            name, configuration={"hnsw": {"space": "cosine", "ef_construction": 200, "ef_search": 200}},
            metadata={"model_id": model_id},
        )
        self.registry = self.client.get_or_create_collection(f"{name}-registry")
        if not self.registry.get(ids=[META_ID])["ids"]:
            self._write_meta(revision=uuid.uuid4().hex[:12], dirty=False)
        self.max_batch = min(self.client.get_max_batch_size(), 1000)
        self.sentences = SentenceIndex(self.client, settings, model_id)  # sentence rows beside the passages

    # --- meta row: revision and the dirty flag of an unfinished sync ---
    def meta(self) -> dict:
        got = self.registry.get(ids=[META_ID], include=["metadatas"])
        return got["metadatas"][0] if got["ids"] else {}

    def _write_meta(self, **values) -> None:
        meta = {"model_id": self.model_id, **(self.meta() if hasattr(self, "registry") else {}), **values}
        self.registry.upsert(ids=[META_ID], embeddings=[_UNIT], metadatas=[meta], documents=[""])

    def revision(self) -> str:
        return str(self.meta().get("revision", ""))

    def bump_revision(self) -> str:
        revision = uuid.uuid4().hex[:12]
        self._write_meta(revision=revision)
        return revision

    def mark_dirty(self, dirty: bool) -> None:
        self._write_meta(dirty=dirty)

    # --- registry ---
    def documents(self) -> dict[str, DocumentRecord]:
        got = self.registry.get(include=["metadatas"])
        records = {}
        for doc_id, meta in zip(got["ids"], got["metadatas"]):
            if doc_id == META_ID:
                continue
            records[doc_id] = DocumentRecord(
                doc_id=doc_id, title=meta["title"], language=meta["language"], content_hash=meta["content_hash"],
                version=meta["version"], ingest=meta.get("ingest", ""), passages=int(meta["passages"]), indexed_at=float(meta["indexed_at"]),
                model_id=meta["model_id"], source=meta.get("source", ""), metadata=json.loads(meta.get("extra", "{}")),
            )
        return records

    def document(self, doc_id: str) -> Document | None:
        got = self.registry.get(ids=[doc_id], include=["metadatas", "documents"])
        if not got["ids"] or doc_id == META_ID:
            return None
        meta = got["metadatas"][0]
        return Document(
            doc_id=doc_id, title=meta["title"], language=meta["language"], text=got["documents"][0],
            pages=[PageSpan(**p) for p in json.loads(meta.get("pages", "[]"))],
            metadata=json.loads(meta.get("extra", "{}")), content_hash=meta["content_hash"],
        )

    def commit_document(self, document: Document, passages: list[Passage], source: str) -> None:
        """Make ``document``'s version the one readers see. Its passages must already be stored."""
        meta = {
            "title": document.title, "language": document.language, "content_hash": document.content_hash,
            "version": document.version, "ingest": document.ingest, "passages": len(passages), "indexed_at": time.time(),
            "model_id": self.model_id, "source": source,
            "pages": json.dumps([p.model_dump() for p in document.pages]),
            "extra": json.dumps(document.metadata, ensure_ascii=False),
        }
        self.registry.upsert(ids=[document.doc_id], embeddings=[_UNIT], metadatas=[meta], documents=[document.text])

    def forget_document(self, doc_id: str) -> None:
        self.registry.delete(ids=[doc_id])

    # --- passages ---
    def add_passages(self, passages: list[Passage], vectors, input_hashes: list[str]) -> None:
        for i in range(0, len(passages), self.max_batch):
            batch = passages[i:i + self.max_batch]
            self.passages.upsert(
                ids=[p.chunk_id for p in batch],
                embeddings=[list(map(float, v)) for v in vectors[i:i + self.max_batch]],
                documents=[p.text for p in batch],
                metadatas=[_passage_meta(p, h) for p, h in zip(batch, input_hashes[i:i + self.max_batch])],
            )

    def stored_vectors(self, doc_id: str) -> dict[str, list[float]]:
        """Vectors of a document's stored passages keyed by the hash of what was embedded, for reuse."""
        got = self.passages.get(where={"document": doc_id}, include=["metadatas", "embeddings"])
        return {m.get("input_hash", ""): list(e) for m, e in zip(got["metadatas"], got["embeddings"])}

    def delete_passages(self, doc_id: str, keep_version: str | None = None) -> int:
        where: dict = {"document": doc_id}
        if keep_version is not None:
            where = {"$and": [{"document": doc_id}, {"version": {"$ne": keep_version}}]}
        ids = self.passages.get(where=where, include=[])["ids"]
        for i in range(0, len(ids), self.max_batch):
            self.passages.delete(ids=ids[i:i + self.max_batch])
        return len(ids)

    def sweep_orphans(self, current: dict[str, str]) -> int:
        """Delete passages whose document version is not the registered one (left by an interrupted sync)."""
        got = self.passages.get(include=["metadatas"])
        orphans = [pid for pid, m in zip(got["ids"], got["metadatas"]) if current.get(m["document"]) != m["version"]]
        for i in range(0, len(orphans), self.max_batch):
            self.passages.delete(ids=orphans[i:i + self.max_batch])
        return len(orphans)

    def count(self) -> int:
        return self.passages.count()

    def all_passages(self, current: dict[str, str]) -> list[Passage]:
        got = self.passages.get(include=["metadatas", "documents"])
        return [
            _to_passage(pid, text, meta)
            for pid, text, meta in zip(got["ids"], got["documents"], got["metadatas"])
            if current.get(meta["document"]) == meta["version"]
        ]

    def query(self, vector, n: int, where: dict | None = None) -> list[tuple[Passage, float]]:
        total = self.passages.count()
        if total == 0:
            return []
        got = self.passages.query(query_embeddings=[list(map(float, vector))], n_results=min(n, total), where=where,
                                  include=["metadatas", "documents", "distances"])
        return [
            (_to_passage(pid, text, meta), 1.0 - float(dist))
            for pid, text, meta, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
        ]


def _passage_meta(p: Passage, input_hash: str) -> dict:
    return {
        "document": p.document, "title": p.title, "page": p.page if p.page is not None else -1,
        "start": p.start, "end": p.end, "language": p.language, "version": p.version, "context": p.context,
        "input_hash": input_hash,
    }


def _to_passage(pid: str, text: str, meta: dict) -> Passage:
    page = int(meta.get("page", -1))
    return Passage(
        chunk_id=pid, document=meta["document"], title=meta["title"], page=None if page < 0 else page,
        start=int(meta["start"]), end=int(meta["end"]), text=text, language=meta.get("language", "en"),
        version=meta["version"], context=meta.get("context", ""),
    )


def hit_from(passage: Passage, score: float, **extra) -> SearchHit:
    return SearchHit(chunk_id=passage.chunk_id, document=passage.document, title=passage.title, page=passage.page,
                     start=passage.start, end=passage.end, text=passage.text, language=passage.language,
                     context=passage.context, score=score, **extra)
