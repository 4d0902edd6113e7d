"""POST /chat: JSON answers with verified citations, SSE streaming, conversations and stateless history."""

from __future__ import annotations

import threading
import time

from api.deps import get_assistant
from assistant.pipeline import Token
from assistant.schema import Answer
from tests.api.conftest import sse_events
from tests.conftest import FACT_SHEET_MD, SEED

QUESTION = "What does the Executive Order allow 401(k) investors to access?"


def _check_citations(citations, assistant):
    for c in citations:
        document = assistant.document(c["document"])
        assert document.text[c["start"]:c["end"]] == c["quote"]


def test_chat_answers_with_verified_citations(client, api_assistant):
    response = client.post("/chat", json={"message": QUESTION})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"conversation_id", "answer", "grounded", "citations", "confidence", "weak_evidence"}
    assert body["grounded"] is True and body["conversation_id"]
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["weak_evidence"] is (body["confidence"] < api_assistant.settings.weak_evidence_below)
    assert body["citations"] and body["citations"][0]["document"] == FACT_SHEET_MD
    assert "[1]" in body["answer"]
    _check_citations(body["citations"], api_assistant)


def test_chat_stream_events(client, api_assistant):
    plain = client.post("/chat", json={"message": QUESTION, "history": []}).json()
    with client.stream("POST", "/chat", json={"message": QUESTION, "history": [], "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    names = [name for name, _ in events]
    assert names[-2:] == ["citations", "done"] and set(names[:-2]) == {"token"} and len(names) > 3
    text = "".join(data["text"] for name, data in events if name == "token")
    citations, done = events[-2][1], events[-1][1]
    assert text == done["answer"] == plain["answer"]
    assert citations["citations"] == plain["citations"] and citations["grounded"] is done["grounded"] is True
    assert citations["conversation_id"] is None and done["conversation_id"] is None  # stateless: history given
    assert done["confidence"] == plain["confidence"] and done["weak_evidence"] is plain["weak_evidence"]
    _check_citations(citations["citations"], api_assistant)


def test_conversation_follow_up(client, api_assistant):
    first = client.post("/chat", json={"message": "当时道琼斯指数从峰值下跌了多少？"}).json()
    conversation = first["conversation_id"]
    second = client.post("/chat", json={"message": "What about 401(k) crypto?", "conversation_id": conversation})
    assert second.status_code == 200 and second.json()["conversation_id"] == conversation
    turns = api_assistant.conversations.history(conversation)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]


def test_stateless_history_stores_nothing(client):
    history = [{"role": "user", "content": "Tell me about the Chinese article"},
               {"role": "assistant", "content": "It is about 401(k) and crypto."}]
    body = client.post("/chat", json={"message": "Who wrote it?", "history": history}).json()
    assert body["conversation_id"] is None


def test_chinese_question_cites_the_chinese_article(client):
    body = client.post("/chat", json={"message": "401(k) 引入加密资产的行政令是什么时候签署的？", "history": []}).json()
    assert body["grounded"] and SEED in {c["document"] for c in body["citations"]}


def test_unanswerable_question_abstains(client):
    body = client.post("/chat", json={"message": "What is the boiling point of tungsten on Mars?", "history": []}).json()
    assert body["grounded"] is False and body["citations"] == []
    assert body["weak_evidence"] is False  # a refusal is not an answer resting on weak evidence


def test_errors_before_the_stream_starts_are_http_errors(client):
    for stream in (False, True):
        empty = client.post("/chat", json={"message": " ", "stream": stream})
        assert empty.status_code == 422 and empty.json()["error"]["type"] == "invalid_question"
        unknown = client.post("/chat", json={"message": "hi there", "conversation_id": "nope", "stream": stream})
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "unknown_conversation"


class _SlowAssistant:
    """Yields one token, then blocks its thread until released: the event loop must stay free meanwhile."""

    def __init__(self):
        self.release = threading.Event()

    def ask_stream(self, question, **kwargs):
        yield Token("first ")
        self.release.wait(10)
        yield Token("second")
        yield Answer(answer="first second", grounded=False)


def test_streaming_does_not_block_the_event_loop(make_client):
    client = make_client()
    slow = _SlowAssistant()
    client.app.dependency_overrides[get_assistant] = lambda: slow
    try:
        with client.stream("POST", "/chat", json={"message": "q", "stream": True}) as response:
            lines = response.iter_lines()
            assert next(line for line in lines if line.startswith("data:")) == 'data: {"text": "first "}'
            started = time.perf_counter()
            assert client.get("/v1/models").status_code == 200  # served while the generator's thread is blocked
            assert time.perf_counter() - started < 2
            slow.release.set()
            rest = "\n".join(lines)
        assert "event: done" in rest and "first second" in rest
    finally:
        slow.release.set()
        client.app.dependency_overrides.clear()


def test_error_during_stream_is_an_error_event(make_client):
    client = make_client()

    class Broken:
        def ask_stream(self, question, **kwargs):
            yield Token("partial ")
            raise RuntimeError("secret detail")

    client.app.dependency_overrides[get_assistant] = lambda: Broken()
    try:
        with client.stream("POST", "/chat", json={"message": "q", "stream": True}) as response:
            events = sse_events(response.read().decode())
        assert events[-1] == ("error", {"error": {"type": "internal", "message": "internal error, see server log"}})
        assert "secret detail" not in str(events)
    finally:
        client.app.dependency_overrides.clear()


# --- hostile input (issue 12) ---------------------------------------------------------------------------------------

def _raw_chat(client, body: str, path: str = "/chat"):
    """Post a JSON text as is: lone surrogates must travel as the JSON escape \\ud800, which httpx cannot encode."""
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


def test_a_lone_surrogate_is_a_422_naming_the_field(client):
    response = _raw_chat(client, '{"message": "What is a 401(k)? \\ud800"}')
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["error"]["message"]
    history = _raw_chat(client, '{"message": "And then?", "history": [{"role": "user", "content": "x\\udfff"}]}')
    assert history.status_code == 422 and "history" in history.json()["error"]["message"]
    search = _raw_chat(client, '{"query": "401(k)", "filters": {"documents": ["a\\ud800"]}}', "/search")
    assert search.status_code == 422
    openai = _raw_chat(client, '{"messages": [{"role": "user", "content": "\\ud800"}]}', "/v1/chat/completions")
    assert openai.status_code == 422
    paired = _raw_chat(client, '{"message": "What does the order say? \\ud83d\\ude00", "history": []}')
    assert paired.status_code == 200  # a valid pair is an emoji, not an attack


def test_zero_width_only_question_is_422(client):
    for text in ["\u200b\u200c\u200d", "\ufeff \u2060", "\x00\x01", "\u3000"]:
        response = client.post("/chat", json={"message": text, "history": []})
        assert response.status_code == 422, (text, response.text)
        assert response.json()["error"]["type"] == "invalid_question"
    assert client.post("/search", json={"query": "\u200b"}).json()["error"]["type"] == "invalid_query"


def test_a_bad_question_never_fails_concurrent_good_ones(make_client, api_assistant, shared_embedder):
    """The attack: 10 legitimate /chat requests and one carrying "\\ud800", at once, through the batching embedder."""
    from concurrent.futures import ThreadPoolExecutor

    from api.batching import BatchingEmbedder
    from assistant.pipeline import Assistant

    batching = Assistant(api_assistant.settings, embedder=BatchingEmbedder(shared_embedder), store=api_assistant.store)
    client = make_client(assistant=batching)
    with ThreadPoolExecutor(11) as pool:
        for _ in range(3):
            bad = pool.submit(_raw_chat, client, '{"message": "\\ud800 what is ERISA?", "history": []}')
            good = [pool.submit(client.post, "/chat", json={"message": QUESTION, "history": []})
                    for _ in range(10)]
            assert bad.result().status_code == 422
            assert [f.result().status_code for f in good] == [200] * 10


def test_history_is_bounded(make_client):
    limited = make_client(max_history_turns=4, max_turn_chars=100, max_chat_request_bytes=4096)
    turn = {"role": "user", "content": "What is a 401(k)?"}
    many = limited.post("/chat", json={"message": QUESTION, "history": [turn] * 5})
    assert many.status_code == 422 and many.json()["error"]["type"] == "history_too_long"
    long_turn = limited.post("/chat", json={"message": QUESTION, "history": [{"role": "user", "content": "x" * 101}]})
    assert long_turn.status_code == 422 and long_turn.json()["error"]["type"] == "turn_too_long"
    huge = limited.post("/chat", json={"message": QUESTION, "history": [{"role": "user", "content": "y" * 5000}]})
    assert huge.status_code == 413 and huge.json()["error"]["type"] == "payload_too_large"
    openai = limited.post("/v1/chat/completions", json={"messages": [turn] * 5 + [{"role": "user", "content": "Q?"}]})
    assert openai.status_code == 422 and openai.json()["error"]["type"] == "history_too_long"
    big = limited.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "z" * 5000}]})
    assert big.status_code == 413
    ok = limited.post("/chat", json={"message": QUESTION, "history": [turn] * 4})
    assert ok.status_code == 200


def test_only_the_used_turns_are_checked(make_client):
    """history_turns=1 uses the last 2 turns: an oversized turn before them is never read."""
    limited = make_client(history_turns=1, max_turn_chars=100)
    history = [{"role": "user", "content": "x" * 500}, {"role": "user", "content": "What is a 401(k)?"},
               {"role": "assistant", "content": "A plan."}]
    assert limited.post("/chat", json={"message": QUESTION, "history": history}).status_code == 200
    history[-1]["content"] = "x" * 500
    assert limited.post("/chat", json={"message": QUESTION, "history": history}).status_code == 422
