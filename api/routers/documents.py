"""The corpus over HTTP: list, upload (indexed at once), delete, and sync the documents.

Uploads and deletions change the corpus folder and then sync, so the next question already sees the change, in this
worker and in every other one (each rebuilds its BM25 when the index revision changes). A sync from here queues
behind a running one for up to SYNC_WAIT seconds. Readers never see half an update: the store commits whole
document versions.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import unicodedata
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AssistantDep, SettingsDep, require_api_key
from api.errors import ApiError
from assistant.load import SUPPORTED_SUFFIXES, content_hash
from assistant.pipeline import Assistant
from assistant.schema import SyncReport
from assistant.settings import Settings
from assistant.sources import copy_into_corpus, corpus_files, remove_from_corpus
from assistant.store import DocumentRecord

router = APIRouter(tags=["documents"])

SYNC_WAIT = 300.0  # seconds an API sync queues behind another one before answering 503
UPLOAD_SUFFIXES = sorted(SUPPORTED_SUFFIXES)  # .pdf .txt .md/.markdown .html/.htm
MAX_NAME = 150
_UNSAFE = re.compile(r"[^\w.\-]+", re.U)

# One corpus change at a time in this process (check for duplicates → write → sync → maybe roll back); other
# processes are kept in order by the sync's file lock.
_corpus_lock = threading.Lock()


class DocumentInfo(BaseModel):
    id: str
    title: str
    language: str
    passages: int
    content_hash: str
    indexed_at: str = Field(..., description="When this version was indexed (ISO 8601, UTC)")
    version: str
    metadata: dict = Field(default_factory=dict)


class DocumentList(BaseModel):
    documents: list[DocumentInfo]
    revision: str


class SyncResult(BaseModel):
    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: list[str]
    failed: list[dict]
    passages: int
    embedded: int
    seconds: float
    revision: str
    partial: bool


class UploadResult(BaseModel):
    status: str = Field(..., description="'added', or 'updated' when a document of that name was replaced")
    document: DocumentInfo
    sync: SyncResult


class DeleteResult(BaseModel):
    deleted: str
    sync: SyncResult


def info(record: DocumentRecord) -> DocumentInfo:
    indexed = dt.datetime.fromtimestamp(record.indexed_at, dt.timezone.utc).isoformat(timespec="seconds")
    return DocumentInfo(id=record.doc_id, title=record.title, language=record.language, passages=record.passages,
                        content_hash=record.content_hash, indexed_at=indexed, version=record.version,
                        metadata=record.metadata)


def sync_result(report: SyncReport) -> SyncResult:
    return SyncResult(**report.model_dump(exclude={"failed"}), failed=[f.model_dump() for f in report.failed],
                      partial=report.partial)


def safe_name(filename: str | None) -> str:
    """A safe base name for an uploaded file: no directories, no '..', no hidden or odd characters."""
    raw = unicodedata.normalize("NFC", (filename or "").replace("\\", "/")).strip()
    parts = [p for p in raw.split("/") if p]
    if any(p.strip() == ".." for p in parts):
        raise ApiError(400, "invalid_filename", f"file name {filename!r} contains '..'")
    base = parts[-1] if parts else ""
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")
    suffix = _UNSAFE.sub("", suffix).lower()
    if not stem:
        stem = "upload"
    stem = stem[:MAX_NAME]
    name = f"{stem}.{suffix}" if suffix else stem
    if name.lower() == "readme.md":  # the corpus README is documentation, never indexed
        name = f"upload_{name}"
    return name


def _check_type(name: str) -> None:
    suffix = "." + name.rpartition(".")[2].lower() if "." in name else ""
    if suffix not in SUPPORTED_SUFFIXES:
        raise ApiError(415, "unsupported_file_type",
                       f"unsupported file type {suffix or '(none)'}: upload a PDF, TXT, Markdown or HTML file "
                       f"({', '.join(UPLOAD_SUFFIXES)})")


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the file is larger than the upload limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _duplicate_of(assistant: Assistant, settings: Settings, digest: str, name: str) -> str | None:
    """The id of a document in the corpus (indexed or just on disk) with exactly these bytes, if any."""
    for doc_id, record in assistant.store.documents().items():
        if record.content_hash == digest and doc_id != name:
            return doc_id
    for doc_id, path in corpus_files(settings).items():
        if doc_id != name and path.stat().st_size > 0:
            try:
                if content_hash(path.read_bytes()) == digest:
                    return doc_id
            except OSError:
                continue
    return None


def _sync(assistant: Assistant) -> SyncReport:
    return assistant.sync(wait=SYNC_WAIT, show_progress=False)


@router.get("/documents", response_model=DocumentList, summary="List the indexed documents")
def list_documents(assistant: AssistantDep) -> DocumentList:
    records = assistant.store.documents()
    return DocumentList(documents=[info(r) for _, r in sorted(records.items())], revision=assistant.store.revision())


@router.post("/documents", response_model=UploadResult, status_code=201, summary="Upload a document",
             dependencies=[Depends(require_api_key)],
             responses={200: {"description": "Identical content was already in the corpus: nothing changed"},
                        409: {"description": "The same content is already in the corpus under another name"},
                        413: {"description": "File too large"}, 415: {"description": "Unsupported file type"},
                        422: {"description": "The file could not be read; it was not added"}})
async def upload_document(file: Annotated[UploadFile, File(description="A PDF, TXT, Markdown or HTML file")],
                          assistant: AssistantDep, settings: SettingsDep):
    name = safe_name(file.filename)
    _check_type(name)
    data = await _read_limited(file, settings.max_upload_bytes)
    if not data.strip():
        raise ApiError(422, "unreadable_document", f"{name} is empty")
    result = await run_in_threadpool(_add, assistant, settings, name, data)
    if isinstance(result, JSONResponse):
        return result
    return JSONResponse(result.model_dump(), status_code=201 if result.status == "added" else 200)


def _add(assistant: Assistant, settings: Settings, name: str, data: bytes) -> UploadResult | JSONResponse:
    digest = content_hash(data)
    with _corpus_lock:
        before = assistant.store.documents().get(name)
        if before is not None and before.content_hash == digest:
            return JSONResponse({"status": "unchanged", "document": info(before).model_dump(),
                                 "message": f"'{name}' is already in the corpus with exactly this content"},
                                status_code=200)
        existing = _duplicate_of(assistant, settings, digest, name)
        if existing is not None:
            raise ApiError(409, "duplicate", f"identical content is already in the corpus as '{existing}'; "
                           "not added again", document=existing)
        target = settings.corpus_dir / name
        previous = target.read_bytes() if target.is_file() else None
        copy_into_corpus(settings, name, data)
        try:
            report = _sync(assistant)
        except BaseException:
            _restore(settings, name, previous)
            raise
        failure = next((f for f in report.failed if f.document == name), None)
        record = assistant.store.documents().get(name)
        if failure is not None or record is None or record.content_hash != digest:
            _restore(settings, name, previous)
            reason = failure.reason if failure is not None else "it was not indexed"
            raise ApiError(422, "unreadable_document", f"could not read {name}: {reason}; the file was not added",
                           document=name, reason=reason)
    return UploadResult(status="updated" if before is not None or previous is not None else "added",
                        document=info(record),
                        sync=sync_result(report))


def _restore(settings: Settings, name: str, previous: bytes | None) -> None:
    """Undo a failed upload: put back the earlier file of that name, or remove the new one."""
    if previous is None:
        (settings.corpus_dir / name).unlink(missing_ok=True)
    else:
        copy_into_corpus(settings, name, previous)


@router.delete("/documents/{doc_id:path}", response_model=DeleteResult, summary="Remove a document",
               dependencies=[Depends(require_api_key)], responses={404: {"description": "No such document"}})
def delete_document(doc_id: str, assistant: AssistantDep, settings: SettingsDep) -> DeleteResult:
    with _corpus_lock:
        known = doc_id in assistant.store.documents() or doc_id in corpus_files(settings)
        if not known or ".." in doc_id.split("/"):
            raise ApiError(404, "not_found", f"no document {doc_id!r} in the corpus")
        remove_from_corpus(settings, doc_id)
        report = _sync(assistant)
    return DeleteResult(deleted=doc_id, sync=sync_result(report))


@router.post("/documents/sync", response_model=SyncResult, summary="Re-sync the index with the corpus folder",
             dependencies=[Depends(require_api_key)])
def sync_documents(assistant: AssistantDep) -> SyncResult:
    with _corpus_lock:
        return sync_result(_sync(assistant))
