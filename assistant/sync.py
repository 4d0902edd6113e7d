"""Make the index match the corpus: add new files, re-embed changed ones, delete removed ones, skip the unchanged.

Unchanged files cost one sha256 of their bytes and nothing else. Changed files reuse the stored vector of every
passage whose embedded input is unchanged (content hashes, as simonw/llm does), so editing one paragraph re-embeds
one passage. One sync runs at a time (a lock file); a sync killed at any point is finished by the next one.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout
from tqdm import tqdm

from assistant.clean import clean
from assistant.embed import Embedder
from assistant.glossary import mine_pairs
from assistant.glossary import to_metadata as glossary_metadata
from assistant.load import LoadError, content_hash, is_supported, load_file
from assistant.schema import Document, LoadFailure, Passage, SyncReport
from assistant.sentences import write_sentences
from assistant.settings import Settings
from assistant.sources import corpus_files, manifest_by_file
from assistant.split import split
from assistant.store import IndexStore

# Bump when load, clean or split change what a file becomes, so the next sync re-derives every document.
INGEST_VERSION = "4"  # 3: sentence index; 4: first occurrence of a running head kept (document facts)
EMBED_GROUP = 256  # passages embedded per model call: big enough to batch well, small enough to commit often


class SyncBusy(RuntimeError):
    pass


@contextmanager
def sync_lock(settings: Settings, wait: float = 0.0):
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    lock_path = settings.index_dir / ".sync.lock"
    owner_path = settings.index_dir / ".sync.owner"
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        owner = owner_path.read_text().strip() if owner_path.is_file() else "another process"
        raise SyncBusy(f"Another sync of {settings.index_dir} is running ({owner}); wait for it to finish, "
                       "or pass --wait to queue behind it.") from None
    try:
        owner_path.write_text(f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}")
        yield
    finally:
        lock.release()


@dataclass
class _Pending:
    document: Document
    passages: list[Passage]
    source: str
    is_new: bool


def input_hash(embedder: Embedder, passage: Passage) -> str:
    return hashlib.sha256(embedder.passage_input(passage).encode()).hexdigest()[:32]


def ingest_signature(settings: Settings) -> str:
    return f"{INGEST_VERSION}/{settings.passage_tokens}/{settings.passage_overlap_tokens}"


def prepare(path: Path, doc_id: str, settings: Settings) -> tuple[Document, list[Passage]]:
    """load → clean → split one file."""
    known = manifest_by_file(settings).get(Path(doc_id).name)
    raw = load_file(path, doc_id)
    document = clean(raw, known_title=known.title if known else None, known_language=known.language if known else None)
    document.ingest = ingest_signature(settings)
    if known:
        document.metadata.setdefault("date", known.date)
        if known.url:
            document.metadata.setdefault("source_url", known.url)
    if pairs := mine_pairs(document.text):
        document.metadata["glossary"] = glossary_metadata(pairs)  # the text's own "术语 (English term)" pairs
    passages = split(document, settings.passage_tokens, settings.passage_overlap_tokens)
    if not passages:
        raise LoadError("no text to index after cleaning")
    return document, passages


def _write(store: IndexStore, embedder: Embedder, pending: list[_Pending], report: SyncReport, bar) -> None:
    """Embed a group of documents' passages (reusing stored vectors), then commit each document in turn."""
    reusable: dict[str, list[float]] = {}
    for item in pending:
        if not item.is_new:
            reusable.update(store.stored_vectors(item.document.doc_id))
    hashes = [[input_hash(embedder, p) for p in item.passages] for item in pending]
    to_embed = [p for item, hs in zip(pending, hashes) for p, h in zip(item.passages, hs) if h not in reusable]
    fresh = iter(embedder.embed_passages(to_embed, progress=bar.update)) if to_embed else iter(())
    report.embedded += len(to_embed)
    for item, item_hashes in zip(pending, hashes):
        vectors = np.array([reusable[h] if h in reusable else next(fresh) for h in item_hashes], dtype=np.float32)
        store.add_passages(item.passages, vectors, item_hashes)
        report.sentences_embedded += write_sentences(store.sentences, embedder, item.passages, reuse=not item.is_new)
        store.commit_document(item.document, item.passages, item.source)  # the commit point of this document
        store.delete_passages(item.document.doc_id, keep_version=item.document.version)
        store.sentences.delete(item.document.doc_id, keep_version=item.document.version)
        (report.added if item.is_new else report.updated).append(item.document.doc_id)
        report.passages += len(item.passages)


def sync(settings: Settings, embedder: Embedder, store: IndexStore, wait: float = 0.0, show_progress: bool = True,
         on_failure: Callable[[LoadFailure], None] | None = None) -> SyncReport:
    started = time.perf_counter()
    report = SyncReport()
    with sync_lock(settings, wait):
        recovering = bool(store.meta().get("dirty"))  # a sync was killed: finish it (sweep, new revision, clean flag)
        if recovering:
            store.sweep_orphans({d: r.version for d, r in store.documents().items()})
            store.sentences.sweep({d: r.version for d, r in store.documents().items()})
        registry = store.documents()
        files = corpus_files(settings)
        changes: list[tuple[str, Path, bool]] = []
        for doc_id, path in files.items():
            if not is_supported(path):
                report.failed.append(LoadFailure(document=doc_id, reason=f"unsupported file type {path.suffix or '(none)'}"))
                continue
            record = registry.get(doc_id)
            if (record and record.content_hash == content_hash(path.read_bytes()) and record.model_id == store.model_id
                    and record.ingest == ingest_signature(settings)):
                report.unchanged.append(doc_id)
                report.passages += record.passages
            else:
                changes.append((doc_id, path, record is None))
        removed = [doc_id for doc_id in registry if doc_id not in files]

        if changes or removed or recovering:
            store.mark_dirty(True)
            prepared: list[_Pending] = []
            for doc_id, path, is_new in changes:
                try:
                    document, passages = prepare(path, doc_id, settings)
                except LoadError as exc:
                    report.failed.append(LoadFailure(document=doc_id, reason=str(exc)))
                    continue
                except Exception as exc:  # noqa: BLE001 - one bad file must not stop the corpus
                    report.failed.append(LoadFailure(document=doc_id, reason=f"{type(exc).__name__}: {exc}"))
                    continue
                prepared.append(_Pending(document, passages, str(path), is_new))
            total = sum(len(p.passages) for p in prepared)
            with tqdm(total=total, desc="embedding", unit="passage", disable=not show_progress or total == 0) as bar:
                group: list[_Pending] = []
                for item in prepared:
                    group.append(item)
                    if sum(len(g.passages) for g in group) >= EMBED_GROUP:
                        _write(store, embedder, group, report, bar)
                        group = []
                if group:
                    _write(store, embedder, group, report, bar)
            for doc_id in removed:
                store.forget_document(doc_id)
                store.delete_passages(doc_id)
                store.sentences.delete(doc_id)
                report.removed.append(doc_id)
            store.bump_revision()
            store.mark_dirty(False)
        if on_failure:
            for failure in report.failed:
                on_failure(failure)
    report.revision = store.revision()
    report.seconds = round(time.perf_counter() - started, 3)
    return report
