"""Step 8, cite: a citation is a span of a document's cleaned text; its quote is checked against that text.

A citation whose quote is not exactly ``document.text[start:end]`` is never shown as support.
"""

from __future__ import annotations

from collections.abc import Callable

from assistant.schema import Citation, Document


def make_citation(document: Document, marker: int, start: int, end: int) -> Citation:
    return Citation(marker=marker, document=document.doc_id, title=document.title, page=document.page_at(start),
                    start=start, end=end, quote=document.text[start:end])


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
