"""assistant.llm: prompts, streaming, error mapping, markers, query rewrite, judge; and one run on a real local model.

Everything except the last test runs offline in a second or two: LangChain's fake chat models stand in for a model,
and tiny servers on 127.0.0.1 stand in for a dead, a hanging, or a broken model server. The slow test starts
llama.cpp's OpenAI-compatible server on Qwen2.5-Coder-0.5B (see scripts/setup_local_llm.sh) and skips when either
is not installed.
"""

from __future__ import annotations

import http.server
import importlib.util
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from assistant import llm
from assistant.llm import (
    NOT_IN_SOURCES,
    LLMBadOutput,
    LLMConfigError,
    LLMError,
    LLMUnavailable,
    build_messages,
    drop_unknown_markers,
    judge_faithfulness,
    make_chat_model,
    parse_markers,
    parse_score,
    rewrite_query,
    stream_answer,
    translate_quote,
)
from assistant.schema import ChatTurn, SearchHit
from assistant.settings import Settings
from tests.conftest import stop_process
from tests.helpers import free_port

EO = "Democratizing Access to Alternative Assets for 401(K) Investors"
EO_DOC = "whitehouse_eo_2025-08-07_democratizing-access-to-alternative-assets-for-401k-investors"

# Passages taken verbatim from the corpus (Executive Order 14330, Sec. 2 and 3(b)-(c)), lines joined.
PASSAGES = [
    SearchHit(
        chunk_id="eo14330-3b", document=EO_DOC, title=EO, page=None, start=3720, end=4260, score=0.82,
        text="(b) Within 180 days of the date of this order, the Secretary of Labor (Secretary) shall reexamine the "
             "Department of Labor’s past and present guidance regarding a fiduciary’s duties under the Employee "
             "Retirement Income Security Act of 1974, as amended (ERISA) (29 U.S.C. 1104), in connection with making "
             "available to participants an asset allocation fund that includes investments in alternative assets. "
             "When conducting this reexamination, the Secretary shall consider whether to rescind the Department of "
             "Labor’s December 21, 2021, Supplemental Private Equity Statement.",
    ),
    SearchHit(
        chunk_id="eo14330-3c", document=EO_DOC, title=EO, page=None, start=4262, end=4800, score=0.74,
        text="(c) Within 180 days of the date of this order, the Secretary shall further, as the Secretary deems "
             "appropriate and consistent with applicable law, seek to clarify the Department of Labor’s position on "
             "alternative assets and the appropriate fiduciary process associated with offering asset allocation "
             "funds containing investments in alternative assets under ERISA.",
    ),
    SearchHit(
        chunk_id="eo14330-2", document=EO_DOC, title=EO, page=None, start=2200, end=2620, score=0.61,
        text="It is the policy of the United States that every American preparing for retirement should have "
             "access to funds that include investments in alternative assets when the relevant plan fiduciary "
             "determines that such access provides an appropriate opportunity for plan participants and "
             "beneficiaries to enhance the net risk-adjusted returns on their retirement assets.",
    ),
]
QUESTION = "What must the Secretary of Labor do within 180 days of the order on alternative assets in 401(k) plans?"
HISTORY = [
    ChatTurn(role="user", content="What does the executive order on 401(k) alternative assets say?"),
    ChatTurn(role="assistant", content="It makes it US policy that savers can reach funds with alternative assets [1]."),
]


def llm_settings(**overrides) -> Settings:
    values = {"llm_provider": "openai", "llm_base_url": "http://127.0.0.1:9/v1", "llm_model": "test-model",
              "llm_timeout": 2.0}
    values.update(overrides)
    return Settings(**values)


class Exploding(BaseChatModel):
    """A chat model whose every call fails with the given exception."""

    error: Exception

    @property
    def _llm_type(self) -> str:
        return "exploding"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        raise self.error


class Recording(BaseChatModel):
    """A chat model that answers ``reply`` and remembers the messages it was given."""

    reply: str
    seen: list = []

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.seen.append(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply))])


# ------------------------------------------------------------------------------------------------ make_chat_model


def test_provider_none_gives_no_model():
    assert make_chat_model(Settings(llm_provider="none")) is None


def test_openai_model_is_configured_for_a_local_server():
    from langchain_openai import ChatOpenAI

    model = make_chat_model(llm_settings(llm_temperature=0.2, llm_timeout=7))
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert model.model_name == "test-model"
    assert model.openai_api_key.get_secret_value() == "not-needed"
    assert model.streaming is True and model.max_retries == 0
    assert model.request_timeout == 7 and model.temperature == 0.2


def test_openai_api_key_is_passed_when_set():
    model = make_chat_model(llm_settings(llm_api_key="sk-test"))
    assert model.openai_api_key.get_secret_value() == "sk-test"


def test_ollama_model():
    from langchain_ollama import ChatOllama

    model = make_chat_model(llm_settings(llm_provider="ollama", llm_base_url="http://127.0.0.1:11434",
                                         llm_model="qwen2.5:0.5b", llm_timeout=5))
    assert isinstance(model, ChatOllama)
    assert model.base_url == "http://127.0.0.1:11434" and model.model == "qwen2.5:0.5b"
    assert model.client_kwargs == {"timeout": 5}


@pytest.mark.parametrize("provider", ["openai", "ollama"])
@pytest.mark.parametrize("missing", ["llm_model", "llm_base_url"])
def test_missing_model_or_url_is_a_clear_config_error(provider, missing):
    with pytest.raises(LLMConfigError) as info:
        make_chat_model(llm_settings(llm_provider=provider, **{missing: None}))
    assert f"ASSISTANT_{missing.upper()}" in str(info.value)
    assert isinstance(info.value, LLMError)


# ------------------------------------------------------------------------------------------------- build_messages


def test_prompt_numbers_passages_and_states_the_rules():
    messages = build_messages(QUESTION, PASSAGES, [])
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage]
    system = messages[0].content
    for n, hit in enumerate(PASSAGES, 1):
        assert f"[{n}] {EO}" in system
        assert hit.text in system
    assert NOT_IN_SOURCES in system and "ONLY" in system and "[1]" in system
    assert "answer in English" in system
    assert messages[-1].content == QUESTION


def test_prompt_shows_pages_and_keeps_braces_literal():
    hit = PASSAGES[0].model_copy(update={"page": 7, "title": "Plan {rules}", "text": "Limit is {cap} dollars."})
    system = build_messages("What is the limit?", [hit], [])[0].content
    assert "[1] Plan {rules}, page 7" in system and "Limit is {cap} dollars." in system


def test_prompt_follows_the_question_language():
    system = build_messages("行政命令要求劳工部长在180天内做什么？", PASSAGES, [])[0].content
    assert "answer in Chinese" in system


def test_prompt_includes_recent_history_only():
    turns = [ChatTurn(role="user" if i % 2 == 0 else "assistant", content=f"turn {i}") for i in range(10)]
    turns.insert(3, ChatTurn(role="system", content="internal note"))
    messages = build_messages(QUESTION, PASSAGES, turns, max_turns=4)
    middle = messages[1:-1]
    assert [m.content for m in middle] == ["turn 6", "turn 7", "turn 8", "turn 9"]
    assert [type(m) for m in middle] == [HumanMessage, AIMessage, HumanMessage, AIMessage]
    assert all("internal note" not in m.content for m in messages)


def test_prompt_does_not_repeat_the_current_question():
    history = HISTORY + [ChatTurn(role="user", content=QUESTION)]
    messages = build_messages(QUESTION, PASSAGES, history)
    assert [m.content for m in messages].count(QUESTION) == 1
    assert len(messages) == 2 + len(HISTORY)


# -------------------------------------------------------------------------------------------------- stream_answer


def test_stream_yields_tokens_in_order():
    answer = "The Secretary must reexamine ERISA guidance on alternative assets [1] and clarify its position [2]."
    model = GenericFakeChatModel(messages=iter([answer]))
    chunks = list(stream_answer(model, QUESTION, PASSAGES, HISTORY))
    assert len(chunks) > 5
    assert "".join(chunks) == answer
    assert parse_markers("".join(chunks)) == [1, 2]


def test_stream_delivers_the_sentinel_in_one_piece():
    model = FakeListChatModel(responses=[NOT_IN_SOURCES])  # streams one character at a time
    chunks = list(stream_answer(model, "Who won the 1998 World Cup?", PASSAGES, []))
    assert chunks == [NOT_IN_SOURCES]
    assert llm.is_not_in_sources("".join(chunks))


def test_stream_releases_text_that_only_starts_like_the_sentinel():
    model = FakeListChatModel(responses=["NOT only that [1]."])
    chunks = list(stream_answer(model, QUESTION, PASSAGES, []))
    assert "".join(chunks) == "NOT only that [1]."
    assert chunks[0] == "NOT o" and len(chunks) > 2
    assert not llm.is_not_in_sources("".join(chunks))


@pytest.mark.parametrize("output", ["", "   \n "])
def test_empty_output_is_bad_output(output):
    model = GenericFakeChatModel(messages=iter([AIMessage(output)]))
    with pytest.raises(LLMBadOutput, match="empty answer"):
        list(stream_answer(model, QUESTION, PASSAGES, []))


def test_output_without_text_blocks_is_bad_output():
    image_only = AIMessage(content=[{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])
    model = FakeMessagesListChatModel(responses=[image_only])
    with pytest.raises(LLMBadOutput):
        list(stream_answer(model, QUESTION, PASSAGES, []))


def test_text_blocks_are_streamed_and_reasoning_blocks_skipped():
    blocks = AIMessage(content=[{"type": "reasoning", "reasoning": "hmm"}, {"type": "text", "text": "Yes [1]."}])
    model = FakeMessagesListChatModel(responses=[blocks])
    assert "".join(stream_answer(model, QUESTION, PASSAGES, [])) == "Yes [1]."


def test_failure_mid_stream_is_an_llm_error_after_partial_text():
    model = FakeListChatModel(responses=["Reexamine the guidance [1]."], error_on_chunk_number=6)
    got = []
    with pytest.raises(LLMError, match="language model failed"):
        for chunk in stream_answer(model, QUESTION, PASSAGES, []):
            got.append(chunk)
    assert "".join(got) == "Reexam"


@pytest.mark.parametrize("error", [ConnectionRefusedError(111, "Connection refused"),
                                   httpx.ConnectError("[Errno 111] Connection refused"),
                                   ConnectionError("Failed to connect to Ollama.")])
def test_connection_errors_become_unavailable(error):
    with pytest.raises(LLMUnavailable, match="ASSISTANT_LLM_PROVIDER=none"):
        list(stream_answer(Exploding(error=error), QUESTION, PASSAGES, []))


@pytest.mark.parametrize("error", [httpx.ReadTimeout("timed out"), TimeoutError("timed out")])
def test_timeouts_become_unavailable(error):
    with pytest.raises(LLMUnavailable, match="did not answer"):
        list(stream_answer(Exploding(error=error), QUESTION, PASSAGES, []))


def test_server_down_is_unavailable_with_a_clear_message():
    port = free_port()  # bound and released: nothing listens there now
    model = make_chat_model(llm_settings(llm_base_url=f"http://127.0.0.1:{port}/v1", llm_timeout=2))
    started = time.monotonic()
    with pytest.raises(LLMUnavailable) as info:
        list(stream_answer(model, QUESTION, PASSAGES, HISTORY))
    assert time.monotonic() - started < 2, "a refused connection must fail at once (no retries)"
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/v1" in message and "refused the connection" in message
    assert "ASSISTANT_LLM_PROVIDER=none" in message


def test_ollama_server_down_is_unavailable():
    port = free_port()
    model = make_chat_model(llm_settings(llm_provider="ollama", llm_base_url=f"http://127.0.0.1:{port}",
                                         llm_model="qwen2.5:0.5b"))
    with pytest.raises(LLMUnavailable, match=f"127.0.0.1:{port}"):
        list(stream_answer(model, QUESTION, PASSAGES, []))


@pytest.fixture
def raw_server() -> Iterator[callable]:
    """A TCP server on 127.0.0.1 that reads each request and then says nothing (``hang``), hangs up (``close``) or
    resets the connection (``reset``)."""
    stop = threading.Event()
    started: list[tuple[socket.socket, threading.Thread, list[socket.socket]]] = []

    def start(behaviour: str) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.1)
        held: list[socket.socket] = []

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                conn.settimeout(0.5)
                try:
                    conn.recv(65536)
                except OSError:
                    pass
                if behaviour == "hang":
                    held.append(conn)  # keep it open and silent until the test ends
                    continue
                if behaviour == "reset":  # close at once with a reset (what a close with unread data does)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started.append((listener, thread, held))
        return listener.getsockname()[1]

    yield start
    stop.set()
    for listener, thread, held in started:
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.parametrize("provider,path", [("openai", "/v1"), ("ollama", "")])
def test_timeout_is_unavailable(raw_server, provider, path):
    port = raw_server("hang")
    model = make_chat_model(llm_settings(llm_provider=provider, llm_base_url=f"http://127.0.0.1:{port}{path}",
                                         llm_timeout=1))
    started = time.monotonic()
    with pytest.raises(LLMUnavailable) as info:
        list(stream_answer(model, QUESTION, PASSAGES, []))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    assert "did not answer within 1 s" in str(info.value)


@pytest.mark.parametrize("behaviour", ["close", "reset"])
def test_server_hanging_up_is_unavailable(raw_server, behaviour):
    port = raw_server(behaviour)
    model = make_chat_model(llm_settings(llm_base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(LLMUnavailable, match="closed the connection"):
        list(stream_answer(model, QUESTION, PASSAGES, []))


@pytest.fixture
def canned_server() -> Iterator[callable]:
    """An HTTP server on 127.0.0.1 that answers every POST with a given status, content type and body."""
    servers = []

    def start(status: int, body: bytes, content_type: str = "application/json") -> int:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status,expected,phrase", [
    (503, LLMUnavailable, "HTTP 503"),
    (500, LLMUnavailable, "HTTP 500"),
    (401, LLMError, "ASSISTANT_LLM_API_KEY"),
    (404, LLMError, "ASSISTANT_LLM_MODEL"),
])
def test_http_errors(canned_server, status, expected, phrase):
    port = canned_server(status, b'{"error": {"message": "nope"}}')
    model = make_chat_model(llm_settings(llm_base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(expected) as info:
        list(stream_answer(model, QUESTION, PASSAGES, []))
    assert phrase in str(info.value)
    if expected is LLMError:
        assert not isinstance(info.value, LLMUnavailable | LLMBadOutput)


def test_malformed_stream_from_a_server_is_bad_output(canned_server):
    port = canned_server(200, b"data: {this is not json\n\n", "text/event-stream")
    model = make_chat_model(llm_settings(llm_base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(LLMBadOutput, match="malformed"):
        list(stream_answer(model, QUESTION, PASSAGES, []))


def test_stream_with_no_content_from_a_server_is_bad_output(canned_server):
    body = b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[' \
           b'{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    port = canned_server(200, body, "text/event-stream")
    model = make_chat_model(llm_settings(llm_base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(LLMBadOutput, match="empty"):
        list(stream_answer(model, QUESTION, PASSAGES, []))


# ------------------------------------------------------------------------------------------------------- markers


@pytest.mark.parametrize("text,expected", [
    ("Reexamine the guidance [1].", [1]),
    ("Both [1, 2]. Again [2].", [1, 2]),
    ("Adjacent [3][1] markers.", [3, 1]),
    ("Spaces [ 2 ,3 ] and ranges [4-6].", [2, 3, 4, 5, 6]),
    ("全角【2】和［3］，中文逗号[1，4]、[5、6]", [2, 3, 1, 4, 5, 6]),
    ("No markers: [a], [0], [2021], 29 U.S.C. 1104, (1).", []),
    ("", []),
])
def test_parse_markers(text, expected):
    assert parse_markers(text) == expected


@pytest.mark.parametrize("text,valid,expected", [
    ("A [1][9]. B [2, 9]. C [9].", {1, 2}, "A [1]. B [2]. C."),
    ("Kept as written [1, 2] and [2][1].", {1, 2}, "Kept as written [1, 2] and [2][1]."),
    ("Range [1-4] trimmed.", {2, 3}, "Range [2, 3] trimmed."),
    ("中文答案【7】。", {1}, "中文答案。"),
    ("Nothing valid [5] [6].", set(), "Nothing valid."),
])
def test_drop_unknown_markers(text, valid, expected):
    assert drop_unknown_markers(text, valid) == expected


# ------------------------------------------------------------------------------------------------- rewrite_query


def test_rewrite_without_history_does_not_call_the_model():
    assert rewrite_query(Exploding(error=AssertionError("called")), [], QUESTION) == QUESTION
    assert rewrite_query(None, HISTORY, QUESTION) == QUESTION


def test_rewrite_uses_the_model_and_sees_the_conversation():
    model = Recording(reply='Standalone query: "Secretary of Labor duties within 180 days EO 14330"', seen=[])
    got = rewrite_query(model, HISTORY, "And what must the Secretary do?")
    assert got == "Secretary of Labor duties within 180 days EO 14330"
    prompt = "\n".join(m.content for m in model.seen[0])
    assert HISTORY[0].content in prompt and "And what must the Secretary do?" in prompt and "English" in prompt


def test_rewrite_keeps_chinese():
    model = FakeListChatModel(responses=["行政命令 劳工部长 180天 职责"])
    got = rewrite_query(model, HISTORY, "那劳工部长要做什么？")
    assert got == "行政命令 劳工部长 180天 职责"


@pytest.mark.parametrize("model", [
    Exploding(error=ConnectionRefusedError(111, "Connection refused")),
    Exploding(error=ValueError("boom")),
    FakeListChatModel(responses=[""]),
    FakeListChatModel(responses=["   \n"]),
    FakeListChatModel(responses=["word " * 200]),  # overlong: the model answered instead of rewriting
    FakeListChatModel(responses=["劳工部长的职责"]),  # the question is English
    FakeListChatModel(responses=[NOT_IN_SOURCES]),
])
def test_rewrite_falls_back_to_the_question(model):
    question = "And what must the Secretary do?"
    assert rewrite_query(model, HISTORY, question) == question


def test_rewrite_against_a_dead_server_falls_back_quickly():
    model = make_chat_model(llm_settings(llm_base_url=f"http://127.0.0.1:{free_port()}/v1"))
    assert rewrite_query(model, HISTORY, "And then?") == "And then?"


# ------------------------------------------------------------------------------------------------------ translate

QUOTE = "(b) Within 180 days of the date of this order, the Secretary of Labor shall reexamine the guidance."


def test_translate_quote_gives_the_models_translation_and_shows_it_the_quote():
    model = Recording(reply="(b) 自本命令发布之日起 180 天内,劳工部长应重新审视相关指引。", seen=[])
    assert translate_quote(model, QUOTE, "zh") == "(b) 自本命令发布之日起 180 天内,劳工部长应重新审视相关指引。"
    prompt = "\n".join(m.content for m in model.seen[0])
    assert QUOTE in prompt and "Chinese" in prompt


def test_translate_quote_does_not_call_the_model_for_a_quote_in_the_readers_language():
    assert translate_quote(Exploding(error=AssertionError("called")), QUOTE, "en") is None
    assert translate_quote(None, QUOTE, "zh") is None


@pytest.mark.parametrize("model", [
    Exploding(error=ConnectionRefusedError(111, "Connection refused")),
    FakeListChatModel(responses=[""]),
    FakeListChatModel(responses=["Within 180 days the Secretary shall act."]),  # not Chinese
    FakeListChatModel(responses=["自本命令发布之日起 18 天内,劳工部长应重新审视相关指引。"]),  # 180 became 18
    FakeListChatModel(responses=[NOT_IN_SOURCES]),
])
def test_an_unusable_translation_is_not_shown(model):
    assert translate_quote(model, QUOTE, "zh") is None


# ---------------------------------------------------------------------------------------------------------- judge


@pytest.mark.parametrize("reply,expected", [
    ("0.8", 0.8), ("Score: 0.35", 0.35), ("1", 1.0), ("0", 0.0), ("85%", 0.85), ("8/10", 0.8), (".5", 0.5),
    ("7", None), ("fully supported", None), ("-0.5", None),
])
def test_parse_score(reply, expected):
    assert parse_score(reply) == (pytest.approx(expected) if expected is not None else None)


def test_judge_returns_the_models_score():
    model = Recording(reply="0.9", seen=[])
    assert judge_faithfulness(model, "Reexamine ERISA guidance [1].", PASSAGES) == pytest.approx(0.9)
    prompt = "\n".join(m.content for m in model.seen[0])
    assert PASSAGES[0].text in prompt and "Reexamine ERISA guidance [1]." in prompt


@pytest.mark.parametrize("model,answer", [
    (FakeListChatModel(responses=["I think it is fine"]), "An answer [1]."),
    (Exploding(error=ConnectionRefusedError(111, "Connection refused")), "An answer [1]."),
    (FakeListChatModel(responses=["0.9"]), NOT_IN_SOURCES),
    (FakeListChatModel(responses=["0.9"]), "  "),
    (None, "An answer [1]."),
])
def test_judge_gives_none_when_it_cannot_score(model, answer):
    assert judge_faithfulness(model, answer, PASSAGES) is None


# ------------------------------------------------------------------------------------------ end to end, real model


def _model_path() -> Path:
    override = os.environ.get("ASSISTANT_TEST_GGUF")
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "pension-assistant" / "llm" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


class LocalServer:
    def __init__(self, proc: subprocess.Popen, log_path: Path, base_url: str):
        self.proc, self.log_path, self.base_url = proc, log_path, base_url

    def check_alive(self) -> None:
        """Fail with the server's own log when it has died (132 or -4 is SIGILL: a CPU instruction it may not use)."""
        if self.proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {self.proc.returncode} (rebuild with scripts/setup_local_llm.sh)"
                        f":\n{self.log_path.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def local_server(tmp_path_factory) -> Iterator[LocalServer]:
    """llama.cpp's OpenAI-compatible server on a free port; skipped when it or the model is not installed."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: run scripts/setup_local_llm.sh")
    model_path = _model_path()
    if not model_path.is_file():
        pytest.skip(f"no local model at {model_path}: run scripts/setup_local_llm.sh")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
    server = LocalServer(proc, log_path, f"http://127.0.0.1:{port}/v1")
    try:
        started = time.monotonic()
        while True:
            server.check_alive()
            try:
                if httpx.get(f"{server.base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > 180:
                pytest.fail(f"llama_cpp.server did not come up in 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        print(f"\nllama_cpp.server up in {time.monotonic() - started:.1f} s")
        yield server
    finally:
        stop_process(proc)


@pytest.mark.slow
def test_end_to_end_with_a_local_model(local_server, caplog):
    model = make_chat_model(llm_settings(llm_base_url=local_server.base_url, llm_model="qwen2.5-coder-0.5b-instruct",
                                         llm_timeout=120))
    started = time.monotonic()
    chunks: list[str] = []
    first = None
    try:
        for chunk in stream_answer(model, QUESTION, PASSAGES, HISTORY):
            first = first if first is not None else time.monotonic() - started
            chunks.append(chunk)
    except LLMError:
        local_server.check_alive()
        raise
    answer = "".join(chunks)
    print(f"answer: first chunk after {first:.1f} s, {len(chunks)} chunks in {time.monotonic() - started:.1f} s:\n"
          f"{answer}")
    assert answer.strip()
    assert len(chunks) > 1, "the answer should arrive as a stream"
    assert set(parse_markers(answer)) & {1, 2, 3}, "the answer cites none of the given passages"

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="assistant.llm"):
        query = rewrite_query(model, HISTORY, "And what must the Secretary of Labor do within 180 days?")
    print(f"rewritten query ({time.monotonic() - started:.1f} s): {query!r}")
    # rewrite_query falls back to the question on any failure, so a non-empty query proves nothing: the log does
    assert query.strip() and "query rewrite" not in caplog.text, caplog.text

    started = time.monotonic()
    score = judge_faithfulness(model, answer, PASSAGES)
    print(f"judge ({time.monotonic() - started:.1f} s): {score}")
    assert score is not None and 0.0 <= score <= 1.0  # None: the judge failed or answered no score

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="assistant.llm"):
        translation = translate_quote(model, "1950 年,纽约州允许养老金投资股票。", "en")
    print(f"translation ({time.monotonic() - started:.1f} s): {translation!r}")
    # None means the reply failed a check (wrong language, a changed year): the log says which
    assert translation and "1950" in translation, caplog.text
    local_server.check_alive()
