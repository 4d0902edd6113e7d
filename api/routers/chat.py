"""POST /chat: answer a question with verified citations, as JSON or as a stream of Server-Sent Events.

Stream events: ``token`` {"text"} for each piece of the answer as it is produced, then ``citations``
{"citations", "grounded", "conversation_id"}, then ``done`` {"answer", "grounded", "conversation_id", "confidence",
"weak_evidence"}. A failure
after the stream started arrives as an ``error`` event {"error": {"type", "message"}}.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AssistantDep, SettingsDep
from api.routers.search import SearchFilters
from api.streaming import SSE_OPENAPI, event, primed, sse_response, stream_error
from api.validation import RequestModel, bounded_history, question_text
from assistant.pipeline import Token
from assistant.schema import Answer, ChatTurn, Citation

router = APIRouter(tags=["chat"])


class ChatRequest(RequestModel):
    message: str = Field(..., description="The question, in English or Chinese",
                         examples=["When did the executive order on 401(k) alternative assets get signed?"])
    conversation_id: str | None = Field(
        None, description="Continue this stored conversation (its history is used and the turn is saved). "
                          "Omit it, and `history`, to start a new conversation.")
    history: list[ChatTurn] | None = Field(
        None, description="Stateless alternative to conversation_id: the earlier turns; nothing is stored. "
                          "Ignored when conversation_id is given.")
    stream: bool = Field(False, description="Answer as Server-Sent Events (token, citations, done)")
    k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default: the server's top_k)")
    filters: SearchFilters | None = None


class ChatResponse(BaseModel):
    conversation_id: str | None
    answer: str
    grounded: bool = Field(..., description="False when the sources do not answer the question (an abstention)")
    citations: list[Citation]
    confidence: float | None = Field(None, description="Probability that the quoted evidence answers the question "
                                                       "(the answer model); given for abstentions too")
    weak_evidence: bool = Field(False, description="The confidence is below ASSISTANT_WEAK_EVIDENCE_BELOW (0.5): the "
                                                   "quotes more likely miss the asked fact than hold it")


def _kwargs(body: ChatRequest, settings) -> dict:
    filters = body.filters or SearchFilters()
    history = None if body.conversation_id else bounded_history(body.history, settings)
    return dict(conversation_id=body.conversation_id, history=history,
                k=body.k, documents=filters.documents or None, language=filters.language or None)


@router.post("/chat", response_model=ChatResponse, responses={200: SSE_OPENAPI}, summary="Ask a question")
async def chat(body: ChatRequest, assistant: AssistantDep, settings: SettingsDep):
    question = question_text(body.message, settings)
    kwargs = _kwargs(body, settings)
    if not body.stream:
        answer = await run_in_threadpool(assistant.ask, question, **kwargs)
        return ChatResponse(conversation_id=answer.conversation_id, answer=answer.answer, grounded=answer.grounded,
                            citations=answer.citations, confidence=answer.confidence,
                            weak_evidence=answer.weak_evidence)
    events = await primed(assistant.ask_stream(question, **kwargs))
    return sse_response(_chat_events(events))


async def _chat_events(events: AsyncIterator) -> AsyncIterator[bytes]:
    try:
        final: Answer | None = None
        async for item in events:
            if isinstance(item, Token):
                yield event("token", {"text": item.text})
            elif isinstance(item, Answer):
                final = item
        if final is None:
            raise RuntimeError("the answer stream ended without an answer")
        yield event("citations", {"citations": [c.model_dump() for c in final.citations], "grounded": final.grounded,
                                  "conversation_id": final.conversation_id})
        yield event("done", {"answer": final.answer, "grounded": final.grounded,
                             "conversation_id": final.conversation_id, "confidence": final.confidence,
                             "weak_evidence": final.weak_evidence})
    except Exception as exc:  # noqa: BLE001 - reported in-band: the status line is already sent
        yield event("error", stream_error(exc))
