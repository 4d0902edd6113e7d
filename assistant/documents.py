"""Changes of the corpus, one at a time, for the API and the CLI alike: add (or replace), remove and sync.

An upload is staged outside the corpus (``<index_dir>/.staging/``) and synced from there (``sync(files=...)``); its
file moves into the corpus only after the registry commit, while the sync lock is still held. So a process killed

- before the commit leaves the corpus and the index as they were (the staged file is discarded later, never added);
- after it, leaves the document indexed and its file staged: the next corpus change (or the server's start) moves
  a new document in; a replaced one keeps the corpus file, which the next sync indexes again. A sync by another
  process meanwhile removes a new document (the corpus lacks it). Each way, the index ends up matching the corpus.

Corpus changes wait at most ``wait`` seconds for a running one (``settings.write_wait`` in the API), then raise
``CorpusBusy`` (a 503 with Retry-After). Errors are ``AssistantError``s whose messages name documents, never paths.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import AssistantError, Busy, Conflict, InvalidInput, NotFound, public_text
from assistant.load import SUPPORTED_SUFFIXES, content_hash
from assistant.schema import SyncReport
from assistant.settings import Settings
from assistant.sources import copy_into_corpus, corpus_files, remove_from_corpus
from assistant.store import DocumentRecord
from assistant.sync import SyncBusy, sync, sync_lock

log = logging.getLogger(__name__)

STAGING = ".staging"
# File names are limited to 255 bytes on common file systems; the cut leaves room for a suffix and ".part".
NAME_BYTES = 200
_UNSAFE = re.compile(r"[^\w.\-]+", re.U)
RETRY_AFTER = 5


class InvalidName(AssistantError):
    status, kind = 400, "invalid_filename"


class UnsupportedType(AssistantError):
    status, kind = 415, "unsupported_file_type"


class UnreadableDocument(InvalidInput):
    kind = "unreadable_document"


class DuplicateContent(Conflict):
    kind = "duplicate"


class NameTaken(Conflict):
    kind = "name_taken"


class UnknownDocument(NotFound):
    pass


class CorpusBusy(Busy):
    def __init__(self, retry_after: int = RETRY_AFTER):
        super().__init__("another change of the corpus is running; retry in a few seconds", retry_after)


@dataclass
class Change:
    status: str  # "added", "updated" or "unchanged"
    record: DocumentRecord
    report: SyncReport | None = None


# One corpus change at a time in this process; other processes are kept in order by the sync's file lock.
_process_lock = threading.Lock()


def _cut(text: str, budget: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits in ``budget`` bytes (never half a character)."""
    return text.encode("utf-8")[:budget].decode("utf-8", "ignore")


def safe_name(filename: str | None) -> str:
    """A safe base name for an uploaded file: no directories, no '..', no hidden or odd characters, at most
    NAME_BYTES bytes of UTF-8 (a Chinese name of 150 characters is 450 bytes)."""
    raw = unicodedata.normalize("NFC", (filename or "").replace("\\", "/")).strip()
    parts = [p for p in raw.split("/") if p]
    if any(p.strip() == ".." for p in parts):
        raise InvalidName(f"file name {filename!r} contains '..'")
    base = parts[-1] if parts else ""
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")
    suffix = _cut(_UNSAFE.sub("", suffix).lower(), 16)
    stem = _cut(stem or "upload", NAME_BYTES - len(suffix.encode()) - 1).rstrip("._-") or "upload"
    name = f"{stem}.{suffix}" if suffix else stem
    if name.lower() == "readme.md":  # the corpus README is documentation, never indexed
        name = f"upload_{name}"
    return name


def check_type(name: str) -> None:
    suffix = "." + name.rpartition(".")[2].lower() if "." in name else ""
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedType(f"unsupported file type {suffix or '(none)'}: upload a PDF, TXT, Markdown or HTML file "
                              f"({', '.join(sorted(SUPPORTED_SUFFIXES))})")


@contextmanager
def corpus_change(settings: Settings, wait: float) -> Iterator[None]:
    """Hold this process's corpus lock and the sync lock for up to ``wait`` seconds, else raise CorpusBusy."""
    if not _process_lock.acquire(timeout=max(wait, 0.001)):
        raise CorpusBusy()
    try:
        try:
            with sync_lock(settings, wait):
                yield
        except SyncBusy:
            raise CorpusBusy() from None
    finally:
        _process_lock.release()


def _staging(settings: Settings) -> Path:
    return settings.index_dir / STAGING


def recover(assistant) -> list[str]:
    """Finish or discard uploads a killed process left staged (call with the corpus lock held).

    A staged file whose exact bytes are the registered version of its document was committed: it moves into the
    corpus. Any other staged file was never committed and is deleted. Returns the ids moved in.
    """
    moved: list[str] = []
    root = _staging(assistant.settings)
    if not root.is_dir():
        return moved
    registry = assistant.store.documents()
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for staged in (p for p in folder.rglob("*") if p.is_file()):
            doc_id = staged.relative_to(folder).as_posix()
            record = registry.get(doc_id)
            data = staged.read_bytes()
            # Only into an empty place: a file of that name in the corpus now may be someone's newer edit.
            if (record is not None and record.content_hash == content_hash(data)
                    and doc_id not in corpus_files(assistant.settings)):
                copy_into_corpus(assistant.settings, doc_id, data)
                moved.append(doc_id)
                log.warning("moved the committed upload %s into the corpus (its server stopped before it could)",
                            doc_id)
        shutil.rmtree(folder, ignore_errors=True)
    return moved


def _duplicate_of(assistant, digest: str, name: str) -> str | None:
    """The id of a document in the corpus (indexed or just on disk) with exactly these bytes, if any."""
    for doc_id, record in assistant.store.documents().items():
        if record.content_hash == digest and doc_id != name:
            return doc_id
    for doc_id, path in corpus_files(assistant.settings).items():
        if doc_id != name and path.stat().st_size > 0:
            try:
                if content_hash(path.read_bytes()) == digest:
                    return doc_id
            except OSError:
                continue
    return None


def add(assistant, filename: str | None, data: bytes, wait: float = 0.0) -> Change:
    """Add a file to the corpus (or replace the document of that name) and index it, all or nothing.

    ``filename`` is cleaned with safe_name; when cleaning changed it and another document already has the cleaned
    name, the upload is refused (NameTaken) rather than replacing a document the caller did not name.
    """
    name = safe_name(filename)
    check_type(name)
    if not data.strip():
        raise UnreadableDocument(f"{name} is empty", document=name, reason="empty file")
    digest = content_hash(data)
    settings = assistant.settings
    with corpus_change(settings, wait):
        recover(assistant)
        before = assistant.store.documents().get(name)
        if before is not None and before.content_hash == digest:
            return Change("unchanged", before)
        existing = _duplicate_of(assistant, digest, name)
        if existing is not None:
            raise DuplicateContent(f"identical content is already in the corpus as '{existing}'; not added again",
                                   document=existing)
        on_disk = corpus_files(settings)
        given = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rpartition("/")[2].strip())
        if given != name and (before is not None or name in on_disk):
            raise NameTaken(f"the name {given!r} becomes '{name}' on the server, and a different document of that "
                            f"name is in the corpus: rename the file, or upload it as '{name}' to replace that one",
                            document=name)
        folder = _staging(settings) / uuid.uuid4().hex
        staged = folder / name
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_bytes(data)
        try:
            report = sync(settings, assistant.embedder, assistant.store, wait=wait, show_progress=False,
                          files={**on_disk, name: staged})
            record = assistant.store.documents().get(name)
            failure = next((f for f in report.failed if f.document == name), None)
            if failure is not None or record is None or record.content_hash != digest:
                reason = public_text(failure.reason, settings) if failure is not None else "it was not indexed"
                raise UnreadableDocument(f"could not read {name}: {reason}; the file was not added",
                                         document=name, reason=reason)
            copy_into_corpus(settings, name, data)  # after the commit: the corpus now matches the index
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    status = "updated" if before is not None or name in on_disk else "added"
    return Change(status, record, report)


def remove(assistant, doc_id: str, wait: float = 0.0) -> SyncReport:
    with corpus_change(assistant.settings, wait):
        recover(assistant)
        known = doc_id in assistant.store.documents() or doc_id in corpus_files(assistant.settings)
        if not known or ".." in doc_id.split("/"):
            raise UnknownDocument(f"no document {doc_id!r} in the corpus")
        remove_from_corpus(assistant.settings, doc_id)
        return sync(assistant.settings, assistant.embedder, assistant.store, wait=wait, show_progress=False)


def sync_corpus(assistant, wait: float = 0.0) -> SyncReport:
    with corpus_change(assistant.settings, wait):
        recover(assistant)
        return sync(assistant.settings, assistant.embedder, assistant.store, wait=wait, show_progress=False)
