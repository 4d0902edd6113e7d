"""/v1: the official ``openai`` client against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import httpx
import openai
import pytest

from api.routers.openai_compat import MODEL_ID
from assistant.answer import weak_evidence_note
from assistant.pipeline import Assistant
from tests.api.conftest import sse_events
from tests.conftest import FACT_SHEET_MD

QUESTION = "What does the Executive Order allow 401(k) investors to access?"


@pytest.fixture(scope="module")
def oai(live_server):
    with openai.OpenAI(base_url=f"{live_server}/v1", api_key="not-needed", max_retries=0, timeout=60) as client:
        yield client


def test_models(oai):
    assert [m.id for m in oai.models.list()] == [MODEL_ID]


def test_completion_with_citations(oai, api_assistant):
    completion = oai.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": QUESTION}])
    assert completion.object == "chat.completion"
    message = completion.choices[0].message
    assert message.role == "assistant" and "[1]" in message.content
    assert completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra
    assert extra["grounded"] is True
    assert extra["weak_evidence"] is (extra["confidence"] < api_assistant.settings.weak_evidence_below)
    assert message.content.endswith(weak_evidence_note(QUESTION, extra["confidence"])) is extra["weak_evidence"]
    citations = extra["citations"]
    assert citations and citations[0]["document"] == FACT_SHEET_MD
    for c in citations:
        assert api_assistant.document(c["document"]).text[c["start"]:c["end"]] == c["quote"]


def test_streaming_matches_the_plain_answer(oai):
    messages = [{"role": "system", "content": "Answer from the sources."}, {"role": "user", "content": QUESTION}]
    plain = oai.chat.completions.create(model="any-name", messages=messages)
    chunks = list(oai.chat.completions.create(model=MODEL_ID, messages=messages, stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == plain.choices[0].message.content
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert final.model_extra["citations"] == plain.model_extra["citations"]
    assert final.model_extra["grounded"] is True


def test_history_from_earlier_messages(oai):
    messages = [{"role": "user", "content": "当时道琼斯指数从峰值下跌了多少？"},
                {"role": "assistant", "content": "近 90%。"},
                {"role": "user", "content": [{"type": "text", "text": "And what did the 2025 executive order do?"}]}]
    completion = oai.chat.completions.create(model=MODEL_ID, messages=messages)
    assert completion.choices[0].message.content


def test_errors_reach_the_client(oai):
    with pytest.raises(openai.UnprocessableEntityError) as info:
        oai.chat.completions.create(model=MODEL_ID, messages=[{"role": "assistant", "content": "hi"}])
    assert "last message" in info.value.message
    with pytest.raises(openai.UnprocessableEntityError) as info:
        oai.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "   "}], stream=True)
    assert "empty" in info.value.message


def test_raw_stream_ends_with_done(live_server):
    body = {"model": MODEL_ID, "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.stream("POST", f"{live_server}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert events[-1] == (None, "[DONE]")
    assert events[-2][1]["citations"] and events[0][1]["choices"][0]["delta"]["role"] == "assistant"


def test_a_weak_answer_says_so_in_its_content_in_the_question_language(make_client, api_assistant):
    """An OpenAI client shows the content, not our fields: an answer marked weak ends with the note, streamed too."""
    weak = Assistant(api_assistant.settings.model_copy(update={"weak_evidence_below": 1.0}),
                     embedder=api_assistant.embedder, store=api_assistant.store)
    client = make_client(assistant=weak)
    for question in (QUESTION, "401(k) 投资者可以投资哪些另类资产?"):
        request = {"model": MODEL_ID, "messages": [{"role": "user", "content": question}]}
        body = client.post("/v1/chat/completions", json=request).json()
        content = body["choices"][0]["message"]["content"]
        assert body["grounded"] is True and body["weak_evidence"] is True
        note = weak_evidence_note(question, body["confidence"])
        assert content.endswith("\n\n" + note) and ("证据较弱" in note) is (question != QUESTION)
        with client.stream("POST", "/v1/chat/completions", json={**request, "stream": True}) as response:
            chunks = [data for _, data in sse_events(response.read().decode()) if isinstance(data, dict)]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == content
        assert chunks[-1]["weak_evidence"] is True and chunks[-1]["choices"][0]["finish_reason"] == "stop"
