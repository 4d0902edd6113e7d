"""Step 8, cite: a citation is a span of a document's cleaned text; its quote is checked against that text.

A citation whose quote is not exactly ``document.text[start:end]`` is never shown as support. It also says where a
reader can check it: the source's official URL (the manifest's, put into the document's ``source_url`` metadata by
the sync, or the file's own front matter), the stored file as served by the API (at the quote's page for a PDF,
which browsers' PDF viewers open with ``#page=N``), and the headings the quote sits under, outermost first
("§ 1104. Fiduciary duties › (a) Prudent man standard of care"), so a reader sees which section a clause belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from urllib.parse import quote

from assistant.load import SUPPORTED_SUFFIXES
from assistant.schema import Citation, Document
from assistant.split import HEADING_PATH_SEPARATOR, heading_path_at


def is_pdf(doc_id: str) -> bool:
    return SUPPORTED_SUFFIXES.get(PurePosixPath(doc_id).suffix.lower()) == "pdf"


def file_url(doc_id: str, page: int | None = None) -> str:
    """The API path of a document's stored file (``GET /documents/{id}/file``), at ``page`` for a PDF."""
    path = f"/documents/{quote(doc_id, safe='/')}/file"
    return f"{path}#page={page}" if page and is_pdf(doc_id) else path


def make_citation(document: Document, marker: int, start: int, end: int) -> Citation:
    page = document.page_at(start)
    return Citation(marker=marker, document=document.doc_id, title=document.title, page=page,
                    start=start, end=end, quote=document.text[start:end],
                    url=document.metadata.get("source_url") or None, file_url=file_url(document.doc_id, page),
                    heading=HEADING_PATH_SEPARATOR.join(heading_path_at(document.text, start)) or None)


def is_verified(citation: Citation, document: Document | None) -> bool:
    return (
        document is not None
        and 0 <= citation.start < citation.end <= len(document.text)
        and document.text[citation.start:citation.end] == citation.quote
        and bool(citation.quote.strip())
    )


def verified(citations: list[Citation], lookup: Callable[[str], Document | None]) -> list[Citation]:
    """The citations whose quotes are verbatim at their offsets in the current text of their documents."""
    return [c for c in citations if is_verified(c, lookup(c.document))]
