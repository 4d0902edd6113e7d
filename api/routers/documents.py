"""The corpus over HTTP: list, upload (indexed at once), delete, and sync the documents.

The work is assistant/documents.py's (staged uploads, duplicate and name checks, the lock); these handlers read the
request and shape the answer. A change waits at most ``settings.write_wait`` seconds for a running one, then answers
503 with Retry-After. Readers never see half an update: the store commits whole document versions.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AssistantDep, SettingsDep, require_api_key
from api.errors import ApiError
from assistant import documents as corpus
from assistant.documents import safe_name  # noqa: F401 - re-exported for callers of the old location
from assistant.errors import public
from assistant.schema import SyncReport
from assistant.settings import Settings
from assistant.store import DocumentRecord

router = APIRouter(tags=["documents"])

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


def sync_result(report: SyncReport, settings: Settings) -> SyncResult:
    failed = [public(f.model_dump(), settings) for f in report.failed]  # a loader's reason may quote a path
    return SyncResult(**report.model_dump(exclude={"failed"}), failed=failed, partial=report.partial)


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the file is larger than the upload limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/documents", response_model=DocumentList, summary="List the indexed documents")
def list_documents(assistant: AssistantDep) -> DocumentList:
    records = assistant.store.documents()
    return DocumentList(documents=[info(r) for _, r in sorted(records.items())], revision=assistant.store.revision())


@router.post("/documents", response_model=UploadResult, status_code=201, summary="Upload a document",
             dependencies=[Depends(require_api_key)],
             responses={200: {"description": "Identical content was already in the corpus: nothing changed"},
                        409: {"description": "The same content is already in the corpus under another name, or the "
                                             "cleaned file name is another document's"},
                        413: {"description": "File too large"}, 415: {"description": "Unsupported file type"},
                        422: {"description": "The file could not be read; it was not added"},
                        503: {"description": "Another corpus change is running (see Retry-After)"}})
async def upload_document(file: Annotated[UploadFile, File(description="A PDF, TXT, Markdown or HTML file")],
                          assistant: AssistantDep, settings: SettingsDep):
    corpus.check_type(corpus.safe_name(file.filename))  # before reading a byte of an unwanted file
    data = await _read_limited(file, settings.max_upload_bytes)
    change = await run_in_threadpool(corpus.add, assistant, file.filename, data, settings.write_wait)
    if change.status == "unchanged":
        return JSONResponse({"status": "unchanged", "document": info(change.record).model_dump(),
                             "message": f"'{change.record.doc_id}' is already in the corpus with exactly this content"},
                            status_code=200)
    assert change.report is not None  # an added or replaced document always comes with its sync report
    result = UploadResult(status=change.status, document=info(change.record),
                          sync=sync_result(change.report, settings))
    return JSONResponse(result.model_dump(), status_code=201 if change.status == "added" else 200)


@router.delete("/documents/{doc_id:path}", response_model=DeleteResult, summary="Remove a document",
               dependencies=[Depends(require_api_key)], responses={404: {"description": "No such document"}})
def delete_document(doc_id: str, assistant: AssistantDep, settings: SettingsDep) -> DeleteResult:
    report = corpus.remove(assistant, doc_id, settings.write_wait)
    return DeleteResult(deleted=doc_id, sync=sync_result(report, settings))


@router.post("/documents/sync", response_model=SyncResult, summary="Re-sync the index with the corpus folder",
             dependencies=[Depends(require_api_key)])
def sync_documents(assistant: AssistantDep, settings: SettingsDep) -> SyncResult:
    return sync_result(corpus.sync_corpus(assistant, settings.write_wait), settings)
