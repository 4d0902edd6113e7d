"""The assembled assistant: one object that owns the model, the index and the retriever, built lazily and shared.

The CLI, the API and the evaluator all go through it, so the flow load → clean → split → embed → store → retrieve →
answer → cite is wired in exactly one place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant import answer as compose
from assistant.answer_types import english_pipeline
from assistant.bilingual import dictionary
from assistant.cite import verified
from assistant.clean import detect_language
from assistant.conversation import (
    ConversationStore,
    asks_without_naming,
    is_elliptical,
    needs_history,
    resolve_relative_year,
    standalone_query,
)
from assistant.embed import TextEmbedder, make_embedder
from assistant.errors import InvalidInput
from assistant.glossary import from_metadata as glossary_pairs
from assistant.retrieve import Retriever
from assistant.schema import Answer, ChatTurn, Citation, Document, SearchHit, SyncReport
from assistant.sentences import SentenceIndex
from assistant.settings import Settings, get_settings
from assistant.store import IndexStore
from assistant.sync import sync

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


class InvalidQuestion(InvalidInput, ValueError):
    kind = "invalid_question"


@dataclass(frozen=True)
class Token:
    """A piece of answer text, streamed before the final Answer."""

    text: str


def weak_evidence(grounded: bool, confidence: float | None, below: float) -> bool:
    """Whether an answer is shown as resting on weak evidence. The question model is calibrated (the eval report's
    reliability diagram), so below 0.5 its quotes more likely miss the asked fact than hold it: on the full run,
    answers under 0.5 held the expected fact about half the time, answers above it 0.84-0.87, and most unanswerable
    questions that were answered anyway fell under it."""
    return grounded and confidence is not None and confidence < below


class Assistant:
    """Builds what it is not given: ``Assistant(settings, embedder=..., store=..., retriever=..., answerer=...,
    chat_model=...)``."""

    def __init__(self, settings: Settings | None = None, rebuild: bool = False, *, embedder: TextEmbedder | None = None,
                 store: IndexStore | None = None, retriever: Retriever | None = None,
                 answerer: compose.Answerer | None = None, chat_model: BaseChatModel | None = None):
        self.settings = settings or get_settings()
        self._rebuild = rebuild
        self._build_lock = threading.Lock()
        self._documents: dict[str, tuple[str | None, Document | None]] = {}  # doc id -> (version, document)
        self._glossary: tuple[str, list[tuple[str, str]]] | None = None  # (index revision, pairs)
        # given parts take the place of the lazily built ones (cached_property reads the instance dict first)
        for name, part in (("embedder", embedder), ("store", store), ("retriever", retriever), ("answerer", answerer),
                           ("chat_model", chat_model)):
            if part is not None:
                self.__dict__[name] = part

    @cached_property
    def embedder(self) -> TextEmbedder:
        return make_embedder(self.settings)  # the model in this process, or an embeddings server (embedding_url)

    @cached_property
    def store(self) -> IndexStore:
        with self._build_lock:
            return IndexStore(self.settings, self.embedder.model_id, rebuild=self._rebuild)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings, self.embedder, self.store, glossary=self.glossary)

    @property
    def sentences(self) -> SentenceIndex:
        """The sentence index of the open store."""
        return self.store.sentences

    @cached_property
    def extractive(self) -> compose.ExtractiveAnswerer:
        return compose.ExtractiveAnswerer(self.settings, sentences=lambda: self.sentences, document=self.document,
                                          versions=self.retriever.versions_of, idf=self.store.idf,
                                          glossary=self.glossary)

    def glossary(self) -> list[tuple[str, str]]:
        """The corpus's bilingual term pairs (mined at ingest, kept in the registry rows), once per index revision."""
        revision = self.retriever.view(refresh=False).revision
        if self._glossary is None or self._glossary[0] != revision:
            pairs: list[tuple[str, str]] = []
            seen: set[tuple[str, str]] = set()
            for _doc_id, record in sorted(self.store.documents().items()):
                for pair in glossary_pairs(record.metadata.get("glossary")):
                    if pair not in seen:
                        seen.add(pair)
                        pairs.append(pair)
            self._glossary = (revision, pairs)
        return self._glossary[1]

    @cached_property
    def answerer(self) -> compose.Answerer:
        """The extractive answerer, or the LLM answerer when a chat model is configured."""
        if self.chat_model is None:
            return self.extractive
        return compose.LLMAnswerer(self.settings, self.chat_model, self.extractive, self.document, self.store.idf)

    def sync(self, wait: float = 0.0, show_progress: bool = True, files: dict[str, Path] | None = None) -> SyncReport:
        return sync(self.settings, self.embedder, self.store, wait=wait, show_progress=show_progress, files=files)

    def search(self, query: str, k: int | None = None, documents: list[str] | None = None,
               language: str | None = None) -> list[SearchHit]:
        return self.retriever.search(query, k=k, documents=documents, language=language)

    @cached_property
    def conversations(self) -> ConversationStore:
        return ConversationStore(self.settings.conversation_path)

    @cached_property
    def chat_model(self) -> BaseChatModel | None:
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

    def ask(self, question: str, history: list[ChatTurn] | None = None, conversation_id: str | None = None,
            k: int | None = None, documents: list[str] | None = None, language: str | None = None) -> Answer:
        """``ask_stream``'s final Answer."""
        for event in self.ask_stream(question, history=history, conversation_id=conversation_id, k=k,
                                     documents=documents, language=language):
            if isinstance(event, Answer):
                return event
        raise RuntimeError("ask_stream ended without an answer")  # pragma: no cover

    def evidence(self, question: str, history: list[ChatTurn] | None = None, k: int | None = None,
                 documents: list[str] | None = None, language: str | None = None,
                 timings: dict[str, float] | None = None) -> compose.AnswerRequest:
        """Retrieve for a question; with history, decide whether the question needs it.

        A follow-up ("And what share did it allow?") retrieves nothing useful alone; a self-contained question
        asked after another topic ("这项行政命令是哪天签署的?") is harmed by the previous question. So both are
        tried, the question alone and the question with the previous one, and the evidence the answer model rates
        more likely to answer wins (ties go to the question alone unless it leans on what came before). A
        continuation ("and what is it funded with?") is answered from the conversation's tries whenever one of
        them answers.

        A third try keeps the conversation's documents but not its words: the question alone, searched only in the
        documents the question with the previous one found. "And which older order did it revoke?" after a question
        about EO 14178's CBDC rules: the joined query finds the CBDC passages again, the question alone finds
        revocations in every order, and the question within EO 14178 finds the revocation of EO 14067.
        """
        timings = timings if timings is not None else {}
        mark = time.perf_counter()
        question = resolve_relative_year(question, history or [])
        queries = [question]
        rewritten = self._standalone(question, history or [])
        if rewritten != question:
            queries.append(rewritten)
        timings["rewrite"] = time.perf_counter() - mark
        mark = time.perf_counter()
        vectors = self.embedder.embed_queries(queries)
        timings["embed"] = time.perf_counter() - mark
        mark = time.perf_counter()
        found = [self.retriever.retrieve(q, k=k, documents=documents, language=language, query_vector=v)
                 for q, v in zip(queries, vectors)]
        scopes = [documents] * len(queries)
        if len(queries) > 1 and found[1].hits:  # the question alone, within the documents the conversation is about
            scopes.append(list(dict.fromkeys(hit.document for hit in found[1].hits)))
            queries.append(question)
            vectors = np.vstack([vectors, vectors[:1]])
            found.append(self.retriever.retrieve(question, k=k, documents=scopes[-1], language=language,
                                                 query_vector=vectors[0]))
        # The conversation's tries also score sentences by their closeness to the question alone, unless it names no
        # topic ("how much?", "why?"): then that closeness is noise ("so much of the amount" in the 401(k) statute,
        # after a question on North Carolina's pensions), and the joined query's closeness is read alone.
        own = None if len(queries) > 1 and asks_without_naming(question) else vectors[0]
        requests = [compose.AnswerRequest(question=question, query=q, hits=r.hits, query_vector=v,
                                          history=list(history or []), documents=scope, language=language,
                                          nearest_sentences=r.sentences, table=r.table,
                                          question_vector=None if q == question else own)
                    for q, v, r, scope in zip(queries, vectors, found, scopes)]
        timings["retrieve"] = time.perf_counter() - mark
        if len(requests) == 1:
            return requests[0]
        mark = time.perf_counter()
        # judged as the answer will be: a try whose passages are all below the on-topic floor has no evidence
        assessed = [self.extractive.assess(r) for r in requests]
        confidences = [self.extractive.confidence(e) for e in assessed]
        timings["history_check"] = time.perf_counter() - mark
        tries = range(len(requests))
        if is_elliptical(question) and any(self.extractive.answers(e) for e in assessed[1:]):
            # A continuation ("and what is it funded with?") asks about the conversation's topic: the question alone
            # can find a confident answer about anything else that is "funded".
            tries = range(1, len(requests))
        # ties: a question that leans on what came before takes the conversation's evidence (the later tries)
        leans = needs_history(question)
        best = max(tries, key=lambda i: (confidences[i], (i > 0) == leans, i))
        return requests[best]

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

        request = self.evidence(question, history, k=k, documents=documents, language=language, timings=timings)
        mark = time.perf_counter()
        draft = compose.Draft(compose.abstain_text(question), [])
        for event in self.answerer.stream(request):
            if isinstance(event, compose.Draft):
                draft = event
            else:
                yield Token(event)
        citations = self._translated(verified(draft.citations, self.document), question)
        grounded = bool(citations)
        text = draft.text if grounded else compose.abstain_text(question)
        timings["compose"] = time.perf_counter() - mark
        timings["total"] = time.perf_counter() - started
        if conversation_id is not None:
            self.conversations.append(conversation_id, "user", question)
            self.conversations.append(conversation_id, "assistant", text, [c.model_dump() for c in citations])
        yield Answer(answer=text, grounded=grounded, citations=citations, passages=request.hits, query=request.query,
                     conversation_id=conversation_id, confidence=draft.confidence,
                     weak_evidence=weak_evidence(grounded, draft.confidence, self.settings.weak_evidence_below),
                     timings={k_: round(v, 4) for k_, v in timings.items()})

    def _translated(self, citations: list[Citation], question: str) -> list[Citation]:
        """With a chat model (and ``translate_quotes``), each quote in the other language gets a machine translation
        beside it, labelled as such; the verified quote itself is never replaced."""
        if not citations or not self.settings.translate_quotes or self.chat_model is None:
            return citations
        from assistant.llm import translate_quote

        reader = detect_language(question)
        translations: dict[str, str | None] = {}  # one request per distinct quote
        for citation in citations:
            if citation.quote not in translations:
                translations[citation.quote] = translate_quote(self.chat_model, citation.quote, reader)
        return [c.model_copy(update={"translation": translations[c.quote]}) if translations[c.quote] else c
                for c in citations]

    def _standalone(self, question: str, history: list[ChatTurn]) -> str:
        if not history:
            return question
        if self.chat_model is not None:
            from assistant.llm import rewrite_query

            return rewrite_query(self.chat_model, history, question)
        return standalone_query(question, history)

    def warm_up(self) -> None:
        """Open the index, load the models and bring this node's lexical index up to date, so the first question's
        latency is not their load time (the embedder, the bilingual dictionary, the English language model). The index
        first: one built with another model fails before the model loads."""
        self.store
        self.embedder.embed_queries(["warm up"])
        self.retriever.view()
        dictionary()
        english_pipeline()

    def is_loaded(self, part: str) -> bool:
        """Whether ``part`` ("embedder", "store", "retriever", "answerer"...) is built or given, without building it."""
        return part in self.__dict__
