"""An OpenAI-compatible chat endpoint, so any OpenAI client (or UI built on one) can talk to the assistant.

POST /v1/chat/completions: the last user message is the question, the earlier user/assistant messages its history
(stateless: nothing is stored). The answer is ``choices[0].message.content``, followed by the weak-evidence note
when the answer is marked so (a client shows the content, not our fields); the verified citations ride along in an
extra top-level field ``citations`` (plus ``grounded``, ``confidence`` and ``weak_evidence``), and in the final chunk
when streaming. ``model`` is accepted whatever it says (clients insist on sending one); the response names the
assistant's model id.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.sse import format_sse_event
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AssistantDep, SettingsDep
from api.errors import ApiError
from api.streaming import SSE_OPENAPI, primed, sse_response, stream_error
from api.validation import RequestModel, bounded_history, question_text
from assistant.answer import weak_evidence_note
from assistant.pipeline import Token
from assistant.schema import Answer, ChatTurn

router = APIRouter(prefix="/v1", tags=["openai"])

MODEL_ID = "pension-assistant"


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") in ("text", "input_text"))
        return self.content or ""


class ChatCompletionRequest(RequestModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, user, ...: accepted and ignored

    model: str = Field(MODEL_ID, examples=[MODEL_ID])
    messages: list[Message] = Field(..., min_length=1)
    stream: bool = False


def _question_and_history(messages: list[Message], settings) -> tuple[str, list[ChatTurn]]:
    if messages[-1].role != "user":
        raise ApiError(422, "invalid_request", "the last message must be the user's question (role 'user')")
    earlier = messages[:-1]
    if len(earlier) > settings.max_history_turns:  # counted before any of them is read
        raise ApiError(422, "history_too_long", f"{len(earlier)} earlier messages; at most "
                       f"{settings.max_history_turns} are accepted (only the last {settings.history_turns * 2} are used)")
    keep = settings.history_turns * 2
    used = [m for m in earlier if m.role in ("user", "assistant")][-keep:] if keep > 0 else []
    history = [ChatTurn(role=m.role, content=m.text()) for m in used]
    bounded = bounded_history([t for t in history if t.content], settings, field="messages")
    return question_text(messages[-1].text(), settings, field="the last message"), bounded or []


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _citations(answer: Answer) -> list[dict]:
    return [c.model_dump() for c in answer.citations]


@router.get("/models", summary="The one model this server offers")
def list_models() -> dict:
    model = Model(id=MODEL_ID, object="model", created=0, owned_by="pension-assistant")
    return {"object": "list", "data": [_wire(model)]}


def _wire(model) -> dict:
    """An openai type as the JSON OpenAI sends: only the fields that were set (no null tool_calls, refusal...)."""
    return model.model_dump(mode="json", exclude_unset=True)


@router.post("/chat/completions", summary="OpenAI-compatible chat completion", responses={200: SSE_OPENAPI})
async def chat_completions(body: ChatCompletionRequest, assistant: AssistantDep, settings: SettingsDep):
    question, history = _question_and_history(body.messages, settings)
    created = int(time.time())
    completion_id = _completion_id()
    if not body.stream:
        answer = await run_in_threadpool(assistant.ask, question, history=history)
        return _wire(ChatCompletion(
            id=completion_id, object="chat.completion", created=created, model=MODEL_ID,
            choices=[Choice(index=0, message=ChatCompletionMessage(role="assistant",
                                                                   content=answer.answer + _note(question, answer)),
                            finish_reason="stop", logprobs=None)],
            usage=None, **_extras(answer),  # extra fields: ours
        ))
    events = await primed(assistant.ask_stream(question, history=history))
    return sse_response(_chunks(events, completion_id, created, question))


def _note(question: str, answer: Answer) -> str:
    """The weak-evidence note after the answer text: an OpenAI client shows the content, not our extra fields."""
    if not answer.weak_evidence or answer.confidence is None:
        return ""
    return "\n\n" + weak_evidence_note(question, answer.confidence)


def _extras(answer: Answer) -> dict:
    """Our fields beside OpenAI's: the verified citations and how far to trust them."""
    return dict(citations=_citations(answer), grounded=answer.grounded, confidence=answer.confidence,
                weak_evidence=answer.weak_evidence)


def _data(payload: dict | str) -> bytes:
    if isinstance(payload, str):
        return format_sse_event(data_str=payload)
    return format_sse_event(data_str=json.dumps(payload, ensure_ascii=False))


async def _chunks(events: AsyncIterator, completion_id: str, created: int, question: str) -> AsyncIterator[bytes]:
    def chunk(delta: ChoiceDelta, finish: str | None = None, **extra) -> dict:
        return _wire(ChatCompletionChunk(
            id=completion_id, object="chat.completion.chunk", created=created, model=MODEL_ID,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish, logprobs=None)], **extra))

    try:
        yield _data(chunk(ChoiceDelta(role="assistant", content="")))
        final: Answer | None = None
        async for item in events:
            if isinstance(item, Token):
                yield _data(chunk(ChoiceDelta(content=item.text)))
            elif isinstance(item, Answer):
                final = item
        if final is None:
            raise RuntimeError("the answer stream ended without an answer")
        if note := _note(question, final):
            yield _data(chunk(ChoiceDelta(content=note)))
        yield _data(chunk(ChoiceDelta(), "stop", **_extras(final)))
    except Exception as exc:  # noqa: BLE001 - in-band, as OpenAI does: {"error": {...}}
        yield _data(stream_error(exc))
    yield _data("[DONE]")
