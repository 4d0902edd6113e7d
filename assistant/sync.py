"""Make the index match the corpus: add new files, re-embed changed ones, delete removed ones, skip the unchanged.

Unchanged files cost one sha256 of their bytes and nothing else. Changed files reuse the stored vector of every
passage whose embedded input is unchanged (content hashes, as simonw/llm does), so editing one paragraph re-embeds
one passage. One sync runs at a time (a lock file); a sync killed at any point is finished by the next one, which
also reuses the passages the killed one had stored, so a large document is not embedded from zero again.

Documents stream through: a thread loads, cleans and splits ahead while the model embeds, and another writes to
Chroma (max-batch-size writes) while the model embeds the next batch. Documents are committed in batches of about
``sync_commit_passages`` passages: one registry write per batch.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue

import numpy as np
from tqdm import tqdm

from assistant.clean import clean
from assistant.embed import TextEmbedder
from assistant.glossary import mine_pairs
from assistant.glossary import to_metadata as glossary_metadata
from assistant.load import LoadError, content_hash, is_supported, load_file
from assistant.lock import SyncBusy, sync_lock  # noqa: F401 - SyncBusy: part of this module's interface
from assistant.retrieve import passage_terms
from assistant.schema import Document, LoadFailure, Passage, SyncReport
from assistant.sentences import input_hash as sentence_hash
from assistant.sentences import sentence_input, sentences_of
from assistant.settings import Settings
from assistant.sources import corpus_files, manifest_by_file
from assistant.split import split
from assistant.store import Commit, IndexStore

log = logging.getLogger(__name__)

# Bump when load, clean or split change what a file becomes, so the next sync re-derives every document.
INGEST_VERSION = "10"  # 3: sentence index, scalable row layout of store.py; 4: first occurrence of a running head kept;
# 5: a Markdown front matter stays text (the document's own facts, citable); 6: compounds keep their printed hyphen;
# 7: a sentence does not end inside brackets or after a section number and run-in title; 8: a web page's related-
# articles list and HTML5 page chrome (nav, aside, footer, form) are not part of the document; 9: the column
# headings of a text file's fixed-width tables are kept with the document (assistant/tables.py); 10: passages are cut
# within Markdown sections (split.section_starts)


@dataclass
class _Pending:
    document: Document
    passages: list[Passage]
    source: str
    is_new: bool
    terms: Counter


def input_hash(embedder: TextEmbedder, passage: Passage) -> str:
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
    if len(passages) > settings.max_document_passages:
        raise LoadError(f"{len(passages)} passages, more than the limit of {settings.max_document_passages} per "
                        "document (ASSISTANT_MAX_DOCUMENT_PASSAGES): split the file, or raise the limit")
    return document, passages


class _Writer:
    """Chroma writes on one background thread, in submission order, so they overlap with embedding the next batch.

    Order is what crash safety needs (a document's passages before its commit, the commit before the old version's
    deletion); a failed write is raised in the sync's thread at the next submit or at ``finish``.
    """

    def __init__(self, in_flight: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-write")
        self._futures: deque[Future] = deque()
        self._in_flight = in_flight

    def submit(self, fn, *args) -> None:
        while self._futures and (self._futures[0].done() or len(self._futures) >= self._in_flight):
            self._futures.popleft().result()
        self._futures.append(self._pool.submit(fn, *args))

    def finish(self) -> None:
        try:
            while self._futures:
                self._futures.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Batch:
    """Documents embedded since the last commit, and their passages not yet written (written max_batch at a time)."""

    def __init__(self) -> None:
        self.items: list[_Pending] = []
        self.passages = 0
        self.rows: tuple[list[Passage], list[np.ndarray], list[str]] = ([], [], [])
        # each passage's sentence vectors and hashes, in the same order as rows
        self.sentences: tuple[list[list[np.ndarray]], list[list[str]]] = ([], [])


def write_version_rows(store: IndexStore, writer: _Writer, batch: _Batch, flush: bool = False) -> None:
    """Queue the writes of the rows derived from document versions (passages; sentences from issue 8)."""
    passages, vectors, hashes = batch.rows
    sentence_vectors, sentence_hashes = batch.sentences
    while passages and (flush or len(passages) >= store.max_batch):
        n = store.max_batch
        s_vectors = [v for per_passage in sentence_vectors[:n] for v in per_passage]
        s_hashes = [h for per_passage in sentence_hashes[:n] for h in per_passage]
        writer.submit(store.write_derived, passages[:n], np.stack(vectors[:n]), hashes[:n],
                      np.stack(s_vectors) if s_vectors else None, s_hashes)
        del passages[:n], vectors[:n], hashes[:n], sentence_vectors[:n], sentence_hashes[:n]


def _commit(store: IndexStore, writer: _Writer, batch: _Batch, report: SyncReport) -> None:
    """Flush the batch's rows, then commit its documents in one registry write, then drop their old versions."""
    if not batch.items:
        return
    write_version_rows(store, writer, batch, flush=True)
    writer.submit(store.commit_documents, [Commit(i.document, len(i.passages), i.source, i.terms) for i in batch.items])
    for item in batch.items:
        if not item.is_new:
            writer.submit(store.delete_derived, item.document.doc_id, item.document.version)
        (report.added if item.is_new else report.updated).append(item.document.doc_id)
    batch.items, batch.passages = [], 0


def _embed(embedder: TextEmbedder, store: IndexStore, item: _Pending, batch: _Batch, writer: _Writer, resume: bool,
           report: SyncReport, bar) -> None:
    """Vectors of one document's passages and of their sentences (stored ones reused), queued for writing."""
    doc_id = item.document.doc_id
    reuse = not item.is_new or resume
    reusable = store.stored_vectors(doc_id) if reuse else {}
    reusable_sentences = store.sentences.stored_vectors(doc_id) if reuse else {}
    hashes = [input_hash(embedder, p) for p in item.passages]
    reused = sum(h in reusable for h in hashes)
    bar.update(reused)  # reused passages are done too: an update's bar reaches 100%
    step = max(embedder.batch_size, 1)
    for start in range(0, len(item.passages), step):
        part, part_hashes = item.passages[start:start + step], hashes[start:start + step]
        todo = [p for p, h in zip(part, part_hashes) if h not in reusable]
        fresh = iter(embedder.embed_passages(todo)) if todo else iter(())
        rows = sentences_of(part)
        inputs = [sentence_input(embedder, r) for r in rows]
        row_hashes = [sentence_hash(text) for text in inputs]
        missing = [text for text, h in zip(inputs, row_hashes) if h not in reusable_sentences]
        fresh_sentences = iter(embedder.embed_document_inputs(missing)) if missing else iter(())
        if todo or missing:
            report.embedded += len(todo)
            report.sentences_embedded += len(missing)
            bar.update(len(todo))
            time.sleep(0.0005)  # let a waiting query take the model between batches (locks are not fair)
        passages, vectors, p_hashes = batch.rows
        sentence_vectors, sentence_hashes = batch.sentences
        of_passage: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            of_passage.setdefault(row.chunk_id, []).append(i)
        for passage, h in zip(part, part_hashes):
            passages.append(passage)
            vectors.append(reusable[h] if h in reusable else np.asarray(next(fresh), dtype=np.float32))
            p_hashes.append(h)
            mine = of_passage.get(passage.chunk_id, [])
            sentence_vectors.append([np.asarray(reusable_sentences[row_hashes[i]], dtype=np.float32)
                                     if row_hashes[i] in reusable_sentences else
                                     np.asarray(next(fresh_sentences), dtype=np.float32) for i in mine])
            sentence_hashes.append([row_hashes[i] for i in mine])
        write_version_rows(store, writer, batch)
    report.passages += len(item.passages)


def _prepared(changes: list[tuple[str, Path, bool]], settings: Settings, ahead: int = 8):
    """load → clean → split (and count words) on a background thread, ``ahead`` documents ahead of the embedder.

    Yields _Pending or LoadFailure in corpus order. Closing the generator stops the thread.
    """
    out: Queue = Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for doc_id, path, is_new in changes:
                if stop.is_set():
                    return
                try:
                    document, passages = prepare(path, doc_id, settings)
                    out.put(_Pending(document, passages, str(path), is_new, passage_terms(passages)))
                except LoadError as exc:
                    out.put(LoadFailure(document=doc_id, reason=str(exc)))
                except Exception as exc:  # noqa: BLE001 - one bad file must not stop the corpus
                    out.put(LoadFailure(document=doc_id, reason=f"{type(exc).__name__}: {exc}"))
        finally:
            out.put(None)

    thread = threading.Thread(target=produce, name="sync-prepare", daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not None:
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                out.get(timeout=0.1)
            except Empty:
                pass


def _ingest(settings: Settings, embedder: TextEmbedder, store: IndexStore, changes: list[tuple[str, Path, bool]],
            report: SyncReport, show_progress: bool, resume: bool) -> None:
    batch, writer = _Batch(), _Writer()
    bar = tqdm(total=0, desc="embedding", unit="passage", disable=not show_progress or not changes)
    items = _prepared(changes, settings)
    try:
        for item in items:
            if isinstance(item, LoadFailure):
                report.failed.append(item)
                continue
            bar.total += len(item.passages)
            bar.refresh()
            _embed(embedder, store, item, batch, writer, resume, report, bar)
            batch.items.append(item)
            batch.passages += len(item.passages)
            if batch.passages >= settings.sync_commit_passages:
                _commit(store, writer, batch, report)
        _commit(store, writer, batch, report)
    finally:
        items.close()
        bar.close()
        writer.finish()


def _plan(settings: Settings, store: IndexStore, registry: dict, files: dict[str, Path],
          report: SyncReport) -> list[tuple[str, Path, bool]]:
    """Which files to (re)index: new ones, and those whose bytes, model or ingest signature changed."""
    changes: list[tuple[str, Path, bool]] = []
    for doc_id, path in files.items():
        if any("\udc80" <= c <= "\udcff" for c in doc_id):  # os.fsdecode's stand-ins for undecodable bytes
            shown = doc_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            report.failed.append(LoadFailure(document=shown, reason="the file name is not valid UTF-8: rename "
                                             "the file (document ids are UTF-8 text)"))
            continue
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
    return changes


def sync(settings: Settings, embedder: TextEmbedder, store: IndexStore, wait: float = 0.0, show_progress: bool = True,
         on_failure: Callable[[LoadFailure], None] | None = None,
         files: dict[str, Path] | None = None) -> SyncReport:
    """Make the index match the corpus folder (or ``files``: doc id → path, instead of listing the folder)."""
    started = time.perf_counter()
    report = SyncReport()
    with sync_lock(settings, wait, client=store.client):
        recovering = bool(store.meta().get("dirty"))  # a sync was killed: finish it (sweep, new revision, clean flag)
        registry = store.documents()
        files = dict(files) if files is not None else corpus_files(settings)
        changes = _plan(settings, store, registry, files, report)
        removed = [doc_id for doc_id in registry if doc_id not in files]

        if changes or removed or recovering:
            store.mark_dirty(True)
            _ingest(settings, embedder, store, changes, report, show_progress, resume=recovering)
            for doc_id in removed:
                store.forget_document(doc_id)
                store.delete_derived(doc_id)
                report.removed.append(doc_id)
            if recovering:
                # After the commits, not before: a killed sync's uncommitted passages were reused above.
                versions = {d: r.version for d, r in store.documents().items()}
                swept = store.sweep_orphans(versions)
                store.reconcile_terms(versions)
                log.info("finished an interrupted sync: %d orphan passages swept", swept)
            store.bump_revision()
            store.mark_dirty(False)
        if on_failure:
            for failure in report.failed:
                on_failure(failure)
    report.revision = store.revision()
    report.seconds = round(time.perf_counter() - started, 3)
    return report
