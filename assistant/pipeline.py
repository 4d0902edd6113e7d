"""The assembled assistant: one object that owns the model, the index and the retriever, built lazily and shared.

The CLI, the API and the evaluator all go through it, so the flow load → clean → split → embed → store → retrieve →
answer → cite is wired in exactly one place.
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from assistant import answer as compose
from assistant.cite import make_citation, verified
from assistant.conversation import ConversationStore, standalone_query
from assistant.embed import Embedder, make_embedder
from assistant.retrieve import Retriever, tokenize
from assistant.schema import Answer, ChatTurn, Citation, Document, SearchHit, SyncReport
from assistant.sentences import SentenceIndex
from assistant.settings import Settings, get_settings
from assistant.store import IndexStore
from assistant.sync import sync


class InvalidQuestion(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    """A piece of answer text, streamed before the final Answer."""

    text: str


class Assistant:
    def __init__(self, settings: Settings | None = None, rebuild: bool = False):
        self.settings = settings or get_settings()
        self._rebuild = rebuild
        self._build_lock = threading.Lock()
        self._documents: dict[str, tuple[str | None, Document | None]] = {}  # doc id -> (version, document)

    @cached_property
    def embedder(self) -> Embedder:
        return make_embedder(self.settings)  # the model in this process, or an embeddings server (embedding_url)

    @cached_property
    def store(self) -> IndexStore:
        with self._build_lock:
            return IndexStore(self.settings, self.embedder.model_id, rebuild=self._rebuild)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings, self.embedder, self.store)

    @property
    def sentences(self) -> SentenceIndex:
        """The sentence index of the open store."""
        return self.store.sentences

    def sync(self, wait: float = 0.0, show_progress: bool = True, files: dict[str, Path] | None = None) -> SyncReport:
        return sync(self.settings, self.embedder, self.store, wait=wait, show_progress=show_progress, files=files)

    def search(self, query: str, k: int | None = None, documents: list[str] | None = None,
               language: str | None = None) -> list[SearchHit]:
        return self.retriever.search(query, k=k, documents=documents, language=language)

    @cached_property
    def conversations(self) -> ConversationStore:
        return ConversationStore(self.settings.conversation_path)

    @cached_property
    def chat_model(self):
        """The configured LangChain chat model, or None for the extractive default."""
        if self.settings.llm_provider == "none":
            return None
        from assistant.llm import make_chat_model

        return make_chat_model(self.settings)

    def document(self, doc_id: str) -> Document | None:
        """The cleaned text of a document, in the version the last retrieval saw (fetched once per version)."""
        version = self.retriever.view(refresh=False).version_of(doc_id)
        cached = self._documents.get(doc_id)
        if cached is None or cached[0] != version:
            cached = self._documents[doc_id] = (version, self.store.document(doc_id))
        return cached[1]

    def ask(self, question: str, **kwargs) -> Answer:
        for event in self.ask_stream(question, **kwargs):
            if isinstance(event, Answer):
                return event
        raise RuntimeError("ask_stream ended without an answer")  # pragma: no cover

    def ask_stream(self, question: str, history: list[ChatTurn] | None = None, conversation_id: str | None = None,
                   k: int | None = None, documents: list[str] | None = None,
                   language: str | None = None) -> Iterator[Token | Answer]:
        """Answer a question: yields Tokens of the answer text as they are produced, then the final Answer.

        With ``conversation_id`` the stored history is used and the turn is saved; with ``history`` (stateless
        callers) that history is used and nothing is saved; with neither, a new conversation is started.
        """
        question = (question or "").strip()
        if not question:
            raise InvalidQuestion("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(f"the question is longer than {self.settings.max_question_chars} characters")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        if conversation_id is not None:
            history = self.conversations.history(conversation_id, self.settings.history_turns * 2)
        elif history is None:
            conversation_id = self.conversations.create()
            history = []
        history = history[-self.settings.history_turns * 2:] if self.settings.history_turns > 0 else []

        query = self._standalone(question, history)
        timings["rewrite"] = time.perf_counter() - started
        mark = time.perf_counter()
        vector = self.embedder.embed_queries([query])[0]
        timings["embed"] = time.perf_counter() - mark
        mark = time.perf_counter()
        hits = self.retriever.search(query, k=k, documents=documents, language=language, query_vector=vector)
        timings["retrieve"] = time.perf_counter() - mark
        mark = time.perf_counter()

        if self.chat_model is not None and hits and self._supported(hits):
            result = yield from self._llm_answer(question, hits, history)
        else:
            result = self._extractive_answer(question, query, hits)
            for piece in _pieces(result[0]):
                yield Token(piece)
        text, citations = result
        citations = verified(citations, self.document)
        grounded = bool(citations)
        if not grounded:
            text = compose.abstain_text(question)
        timings["compose"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - started
        if conversation_id is not None:
            self.conversations.append(conversation_id, "user", question)
            self.conversations.append(conversation_id, "assistant", text, [c.model_dump() for c in citations])
        yield Answer(answer=text, grounded=grounded, citations=citations, passages=hits, query=query,
                     conversation_id=conversation_id, timings={k_: round(v, 4) for k_, v in timings.items()})

    def _standalone(self, question: str, history: list[ChatTurn]) -> str:
        if not history:
            return question
        if self.chat_model is not None:
            from assistant.llm import rewrite_query

            return rewrite_query(self.chat_model, history, question)
        return standalone_query(question, history)

    def _supported(self, hits: list[SearchHit]) -> bool:
        return bool(hits) and (hits[0].dense_score or hits[0].score) >= self.settings.abstain_threshold

    def _extractive_answer(self, question: str, query: str, hits: list[SearchHit]) -> tuple[str, list[Citation]]:
        if not self._supported(hits):
            return compose.abstain_text(question), []
        idf = self.store.idf(tokenize(query))  # kept by the store at ingest: nothing is recomputed per process
        spans = compose.select_spans(query, hits, self.settings.max_answer_sentences, idf)
        spans = compose.complete_sentences(spans, lambda doc_id: getattr(self.document(doc_id), "text", None))
        if compose.unmet_constraints(question, hits, spans):
            return compose.abstain_text(question), []
        text, numbered = compose.render(question, spans)
        citations = []
        for marker, span in numbered:
            document = self.document(span.hit.document)
            if document is not None:
                citations.append(make_citation(document, marker, span.start, span.end))
        return text, citations

    def _llm_answer(self, question: str, hits: list[SearchHit], history: list[ChatTurn]):
        """Stream the LLM's answer; then keep only markers that name a passage, each cited by its best sentence."""
        from assistant.llm import drop_unknown_markers, is_not_in_sources, parse_markers, stream_answer

        pieces = []
        for piece in stream_answer(self.chat_model, question, hits, history):
            pieces.append(piece)
            yield Token(piece)
        raw = "".join(pieces).strip()
        if is_not_in_sources(raw):
            return compose.abstain_text(question), []
        valid = {n for n in parse_markers(raw) if 1 <= n <= len(hits)}
        text = drop_unknown_markers(raw, valid)
        citations = []
        for marker in sorted(valid):
            hit = hits[marker - 1]
            document = self.document(hit.document)
            spans = compose.score_sentences(text, [hit])
            if document is not None and spans:
                citations.append(make_citation(document, marker, spans[0].start, spans[0].end))
        return text, citations


def _pieces(text: str) -> Iterator[str]:
    """Word-sized pieces of a composed answer, so clients render it as a stream."""
    yield from (m.group(0) for m in re.finditer(r"\S+\s*|\s+", text))
