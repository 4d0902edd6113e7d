"""A citation checked in place: the cited span(s) in the document's text, and the stored original file.

``GET /documents/{id}/view`` returns the document's cleaned text (the text every citation offset refers to) around
one or more cited spans, each span's offsets relative to the returned text, the heading and page(s) they sit under,
and paging through the rest of the document. Paging uses fixed parts of about ``chars`` characters, cut at line
breaks, so the parts tile the text without gaps; the first view of a span is centred on it instead. All offsets
count Unicode code points (Python string indices), not UTF-16 units. The text is plain text: clients must render it
as text, since uploaded documents are untrusted.

``GET /documents/{id}/file`` serves the indexed document's stored file, read-only. Its path comes from the index
registry (never from the request) and must lie inside the corpus folders. HTML and text files are served under a
``sandbox`` Content-Security-Policy, so an uploaded page runs no script on this origin.
"""

from __future__ import annotations

import bisect
import logging
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AssistantDep, SettingsDep
from api.errors import ApiError
from assistant.cite import file_url
from assistant.load import SUPPORTED_SUFFIXES
from assistant.schema import Document
from assistant.settings import Settings
from assistant.sources import corpus_files
from assistant.split import heading_at

log = logging.getLogger("api")

router = APIRouter(tags=["documents"])

VIEW_CHARS = 3000  # default length of a view, in characters: a few paragraphs either side of a quote
MAX_SPANS = 20
_SPAN = re.compile(r"^\s*(\d{1,12})\s*[-:]\s*(\d{1,12})\s*$")
MEDIA_TYPES = {"pdf": "application/pdf", "txt": "text/plain", "md": "text/markdown", "html": "text/html"}
_SANDBOX = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class ViewSpan(BaseModel):
    index: int = Field(..., description="Position of this span in the request (start/end first, then each span)")
    start: int = Field(..., description="Offset in the document's cleaned text")
    end: int
    view_start: int | None = Field(None, description="Offset in the returned text (clipped to it); None when the "
                                                     "span is outside this view")
    view_end: int | None = None
    quote: str = Field(..., description="The document's text at start:end, to compare with the citation's quote")
    page: int | None = Field(None, description="Page of the span's start (PDFs)")
    pages: list[int] = Field(default_factory=list, description="Every page the span touches (PDFs)")
    heading: str | None = Field(None, description="The section heading the span sits under")


class ViewPage(BaseModel):
    page: int
    start: int = Field(..., description="Where this page's text starts in the returned text (clipped)")
    end: int


class DocumentView(BaseModel):
    document: str
    title: str
    language: str
    length: int = Field(..., description="Length of the document's cleaned text")
    start: int = Field(..., description="Offset of the returned text in the document")
    end: int
    text: str = Field(..., description="document text [start:end], plain text")
    spans: list[ViewSpan]
    focus: int | None = Field(None, description="Index of the span this view is centred on")
    heading: str | None = Field(None, description="Heading of the focused span, else of the view's start")
    pages: list[ViewPage] = Field(default_factory=list, description="The PDF pages in this view")
    part: int | None = Field(None, description="Which part this view is (None: a view centred on a span)")
    parts: int = Field(..., description="How many parts page through the whole document")
    previous: int | None = Field(None, description="The part to request for the text before this view")
    next: int | None = Field(None, description="The part to request for the text after this view")
    url: str | None = Field(None, description="The source's official URL")
    file_url: str | None = Field(None, description="API path of the stored file (at the focused span's page)")


def _break_after(text: str, pos: int, slack: int) -> int:
    """A cut at or after ``pos``: just after a line break within ``slack`` characters, else at a space, else pos."""
    if pos >= len(text):
        return len(text)
    for pattern in ("\n", " "):
        found = text.find(pattern, pos, pos + slack)
        if found >= 0:
            return found + 1
    return pos


def _break_before(text: str, pos: int, slack: int) -> int:
    """A cut at or before ``pos``: just after a line break within ``slack`` characters before it, else pos."""
    if pos <= 0:
        return 0
    if text[pos - 1] == "\n":
        return pos
    found = text.rfind("\n", max(0, pos - slack), pos)
    return found + 1 if found >= 0 else pos


def part_bounds(text: str, chars: int) -> list[int]:
    """Offsets 0 = b0 < b1 < ... < bn = len(text): part k is text[b_k:b_k+1]."""
    bounds = [0]
    while bounds[-1] < len(text):
        bounds.append(max(bounds[-1] + 1, _break_after(text, bounds[-1] + chars, chars // 4)))
    return bounds


def centred(text: str, start: int, end: int, chars: int) -> tuple[int, int]:
    """A window of about ``chars`` characters around text[start:end] (all of it, however long), cut at lines."""
    spare = max(0, chars - (end - start))
    lo, hi = start - spare // 2, end + spare - spare // 2
    if lo < 0:
        lo, hi = 0, hi - lo
    if hi > len(text):
        lo, hi = max(0, lo - (hi - len(text))), len(text)
    slack = max(1, chars // 4)
    return min(_break_before(text, lo, slack), start), max(_break_after(text, hi, slack), end)


def parse_spans(start: int | None, end: int | None, span: list[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if (start is None) != (end is None):
        raise ApiError(422, "invalid_span", "give both start and end, or neither")
    if start is not None and end is not None:
        spans.append((start, end))
    for raw in span:
        match = _SPAN.match(raw)
        if not match:
            raise ApiError(422, "invalid_span", f"span {raw!r} is not START-END (two offsets, e.g. 120-245)")
        spans.append((int(match.group(1)), int(match.group(2))))
    if len(spans) > MAX_SPANS:
        raise ApiError(422, "invalid_span", f"at most {MAX_SPANS} spans per view, got {len(spans)}")
    return spans


def build_view(document: Document, spans: list[tuple[int, int]], focus: int | None, part: int | None,
               chars: int) -> DocumentView:
    text = document.text
    for s, e in spans:
        if not 0 <= s < e <= len(text):
            raise ApiError(422, "invalid_span", f"span {s}-{e} is not inside the document's text "
                           f"(0-{len(text)}, start before end)", length=len(text))
    bounds = part_bounds(text, chars)
    parts = len(bounds) - 1
    if part is not None and part >= max(parts, 1):
        raise ApiError(422, "invalid_part", f"part {part} does not exist: the document has {parts} parts "
                       f"of about {chars} characters", parts=parts)
    if focus is not None and focus >= max(len(spans), 1):
        raise ApiError(422, "invalid_focus", f"focus {focus} names no span (there are {len(spans)})")
    if part is None and spans:
        focus = focus or 0
        lo, hi = centred(text, *spans[focus], chars)
        previous = bisect.bisect_right(bounds, lo - 1) - 1 if lo > 0 else None
        following = bisect.bisect_right(bounds, hi) - 1 if hi < len(text) else None
    else:
        part, focus = part or 0, None
        lo, hi = (bounds[part], bounds[part + 1]) if parts else (0, 0)
        previous = part - 1 if part > 0 else None
        following = part + 1 if part + 1 < parts else None

    headings: dict[int, str] = {}

    def heading(offset: int) -> str | None:
        if offset not in headings:
            headings[offset] = heading_at(text, offset)
        return headings[offset] or None

    view_spans = []
    for index, (s, e) in enumerate(spans):
        inside = s < hi and e > lo
        view_spans.append(ViewSpan(
            index=index, start=s, end=e, quote=text[s:e],
            view_start=max(s, lo) - lo if inside else None, view_end=min(e, hi) - lo if inside else None,
            page=document.page_at(s), heading=heading(s),
            pages=[p.page for p in document.pages if p.start < e and p.end > s],
        ))
    pages = [ViewPage(page=p.page, start=max(p.start, lo) - lo, end=min(p.end, hi) - lo)
             for p in document.pages if p.start < hi and p.end > lo]
    focused = view_spans[focus] if focus is not None else None
    page_of_view = focused.page if focused else (pages[0].page if pages else None)
    return DocumentView(
        document=document.doc_id, title=document.title, language=document.language, length=len(text),
        start=lo, end=hi, text=text[lo:hi], spans=view_spans, focus=focus,
        heading=focused.heading if focused else heading(lo), pages=pages,
        part=part, parts=parts, previous=previous, next=following,
        url=document.metadata.get("source_url") or None, file_url=file_url(document.doc_id, page_of_view),
    )


def _document(assistant, doc_id: str) -> Document:
    # The registry first: the Assistant caches documents by id, and ids that are not indexed must not fill it.
    document = assistant.document(doc_id) if assistant.store.record(doc_id) is not None else None
    if document is None:
        raise ApiError(404, "not_found", f"no document {doc_id!r} in the index")
    return document


@router.get("/documents/{doc_id:path}/view", response_model=DocumentView,
            summary="A document's text around cited spans, with the spans marked",
            responses={404: {"description": "No such document in the index"},
                       422: {"description": "Offsets outside the document, a malformed span, or no such part"}})
def view_document(
    doc_id: str,
    assistant: AssistantDep,
    start: Annotated[int | None, Query(ge=0, description="Start offset of the cited span")] = None,
    end: Annotated[int | None, Query(ge=0, description="End offset of the cited span")] = None,
    span: Annotated[list[str], Query(description="Further spans as START-END; repeat for several quotes")] = [],  # noqa: B006
    focus: Annotated[int | None, Query(ge=0, description="Index of the span to centre on (default: the first); "
                                                         "ignored with part")] = None,
    part: Annotated[int | None, Query(ge=0, description="Show this part of the document (paging) instead")] = None,
    chars: Annotated[int, Query(ge=500, le=20_000, description="Length of a view, in characters")] = VIEW_CHARS,
) -> DocumentView:
    spans = parse_spans(start, end, span)
    return build_view(_document(assistant, doc_id), spans, focus, part, chars)


def stored_file(settings: Settings, doc_id: str, source: str) -> Path | None:
    """The indexed file of ``doc_id``: the registry's path, else the corpus listing's; only inside the corpus."""
    roots = [settings.corpus_dir.resolve(), settings.fetched_dir.resolve()]
    for candidate in (Path(source) if source else None, corpus_files(settings).get(doc_id)):
        if candidate is None or not candidate.is_file():
            continue
        resolved = candidate.resolve()
        if any(resolved.is_relative_to(root) for root in roots):
            return resolved
        log.warning("not serving %s for %r: outside the corpus folders", resolved, doc_id)
    return None


@router.get("/documents/{doc_id:path}/file", summary="The stored original file of an indexed document",
            response_class=FileResponse,
            responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()},
                             "description": "The file, read-only; PDFs open at a page with #page=N"},
                       404: {"description": "No such document in the index, or its file is gone"}})
async def document_file(doc_id: str, assistant: AssistantDep, settings: SettingsDep) -> FileResponse:
    record = await run_in_threadpool(assistant.store.record, doc_id)
    if record is None:
        raise ApiError(404, "not_found", f"no document {doc_id!r} in the index")
    path = await run_in_threadpool(stored_file, settings, doc_id, record.source)
    if path is None:
        raise ApiError(404, "file_missing", f"the stored file of {doc_id!r} is no longer in the corpus")
    fmt = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    media_type = MEDIA_TYPES.get(fmt or "", "application/octet-stream")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    if fmt != "pdf":  # a browser's PDF viewer does not run under a sandbox CSP; pages and text files do
        headers["Content-Security-Policy"] = _SANDBOX
        media_type += "; charset=utf-8"  # the loader indexes only UTF-8 text
    return FileResponse(path, media_type=media_type, headers=headers, filename=Path(doc_id).name,
                        content_disposition_type="inline")
