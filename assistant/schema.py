"""Typed records that travel between the steps: load → clean → split → embed → store → retrieve → answer → cite."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class PageSpan(BaseModel):
    """Where one physical page (1-based) lies in a document's cleaned text."""

    page: int
    start: int
    end: int


class RawDocument(BaseModel):
    """A file as loaded, before cleaning: text per page (one page for non-paged formats)."""

    doc_id: str
    path: Path
    format: Literal["txt", "md", "html", "pdf"]
    pages: list[str]
    paged: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)
    content_hash: str


class Document(BaseModel):
    """A cleaned document: the text that every passage offset and citation quote refers to."""

    doc_id: str
    title: str
    language: str
    text: str
    pages: list[PageSpan] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    content_hash: str
    ingest: str = Field(default="", description="Signature of the cleaning and splitting that produced the passages")

    @property
    def version(self) -> str:
        """Changes when the file's bytes change, and when the code or settings that turn it into passages do."""
        if not self.ingest:
            return self.content_hash[:16]
        return hashlib.sha256(f"{self.content_hash}:{self.ingest}".encode()).hexdigest()[:16]

    def page_at(self, offset: int) -> int | None:
        for span in self.pages:
            if span.start <= offset < span.end:
                return span.page
        return self.pages[-1].page if self.pages and offset >= self.pages[-1].end else None


class Passage(BaseModel):
    """A span of a document's cleaned text; ``text == document.text[start:end]``."""

    chunk_id: str
    document: str
    title: str
    page: int | None = None
    start: int
    end: int
    text: str
    language: str = "en"
    version: str = ""
    context: str = ""  # heading / table header that the passage belongs under, used for embedding and BM25


class SearchHit(BaseModel):
    chunk_id: str
    document: str
    title: str
    page: int | None
    start: int
    end: int
    text: str
    score: float
    language: str = "en"
    context: str = Field(default="", description="Heading or table head the passage sits under")
    dense_score: float | None = None
    lexical_score: float | None = None
    sentence_score: float | None = Field(default=None, description="Cosine of its best sentence among the query's "
                                                                     "nearest sentences (None: none among them)")
    alternatives: list[str] = Field(default_factory=list, description="Other documents holding the same text")


class Citation(BaseModel):
    marker: int
    document: str
    title: str
    page: int | None
    start: int
    end: int
    quote: str
    url: str | None = Field(None, description="The source's official URL (corpus/sources.json or front matter)")
    file_url: str | None = Field(None, description="API path of the stored file; '#page=N' (the quote's page) for PDFs")
    heading: str | None = Field(None, description="The headings the quote sits under, outermost first, joined by ' › '")
    translation: str | None = Field(None, description=(
        "A machine translation of the quote into the question's language by the configured chat model: a reading "
        "aid, not verified against the source (the quote is the verified original); null without a chat model or "
        "when the quote is already in the question's language"))


class ChatTurn(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: str


class Answer(BaseModel):
    answer: str
    grounded: bool
    citations: list[Citation] = Field(default_factory=list)
    passages: list[SearchHit] = Field(default_factory=list)
    query: str = ""
    conversation_id: str | None = None
    confidence: float | None = Field(default=None, description="Probability (answer model) that the quoted evidence "
                                     "answers the question; also given when the assistant abstains")
    weak_evidence: bool = Field(default=False, description=(
        "An answer whose confidence is below ASSISTANT_WEAK_EVIDENCE_BELOW (0.5): its quotes more likely miss the "
        "asked fact than hold it, so read them before relying on it; false for abstentions and unknown confidence"))
    timings: dict[str, float] = Field(default_factory=dict)


class LoadFailure(BaseModel):
    document: str
    reason: str


class SyncReport(BaseModel):
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    failed: list[LoadFailure] = Field(default_factory=list)
    passages: int = 0
    embedded: int = 0
    sentences_embedded: int = Field(default=0, description="Sentences embedded for the sentence index")
    seconds: float = 0.0
    revision: str = ""

    @property
    def partial(self) -> bool:
        return bool(self.failed)
