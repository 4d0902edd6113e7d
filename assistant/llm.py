"""Optional LLM answering through LangChain chat models (off unless ``ASSISTANT_LLM_PROVIDER`` is set).

The extractive composer in ``assistant.answer`` needs no model. When a chat model is configured, this module builds
the grounded prompt (numbered passages ``[1]..[n]``, answer only from them, in the question's language, every claim
followed by ``[n]``, or exactly ``NOT_IN_SOURCES`` when they do not answer), streams the answer, rewrites follow-up
questions into standalone search queries, extracts ``[n]`` markers for the cite step, and offers a faithfulness judge
for the evaluator.

Every failure reaches the caller as an ``LLMError`` whose text can be shown to a user as is:
``LLMUnavailable`` (server down, connection refused, timeout, 5xx / 429), ``LLMBadOutput`` (empty or malformed output),
``LLMConfigError`` (provider set but model or URL missing). Providers:

* ``openai``: any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, a hosted API) through ``ChatOpenAI``;
  ``max_retries=0`` so a dead server fails at once instead of after back-off.
* ``ollama``: a local Ollama daemon through ``ChatOllama``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from assistant.clean import detect_language
from assistant.errors import AssistantError
from assistant.schema import ChatTurn, SearchHit

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from assistant.settings import Settings

log = logging.getLogger(__name__)

NOT_IN_SOURCES = "NOT_IN_SOURCES"
"""What the model is told to reply, exactly, when the passages do not answer the question."""

DEFAULT_HISTORY_TURNS = 6
_TURN_CHARS = 1200  # history turns are cut to this many characters so a long answer cannot crowd out the passages


# --------------------------------------------------------------------------------------------------------- errors


class LLMError(AssistantError, RuntimeError):
    """Any failure of the optional LLM; ``str(error)`` is a message fit for the user."""

    status, kind = 502, "llm_error"


class LLMConfigError(LLMError, ValueError):
    """The provider is set but the model name or server URL is missing."""


class LLMUnavailable(LLMError):
    """The model server cannot be reached, refused the connection, timed out, or is overloaded."""

    status, kind = 503, "llm_unavailable"  # the message says what to do


class LLMBadOutput(LLMError):
    """The model answered with nothing usable (empty, or not text)."""


# ---------------------------------------------------------------------------------------------------------- model


def make_chat_model(settings: Settings) -> BaseChatModel | None:
    """The configured chat model, or None when ``llm_provider`` is ``"none"``. Nothing is contacted here."""
    provider = settings.llm_provider
    if provider == "none":
        return None
    missing = [name for name, value in (("ASSISTANT_LLM_MODEL", settings.llm_model),
                                        ("ASSISTANT_LLM_BASE_URL", settings.llm_base_url)) if not value]
    if missing:
        raise LLMConfigError(
            f"ASSISTANT_LLM_PROVIDER={provider} also needs {' and '.join(missing)} "
            f"(for example http://127.0.0.1:8000/v1 for an OpenAI-compatible server, http://127.0.0.1:11434 for "
            f"Ollama); set ASSISTANT_LLM_PROVIDER=none to answer without an LLM."
        )
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key or "not-needed",  # local servers ignore it, the client insists on one
            timeout=settings.llm_timeout,
            max_retries=0,
            temperature=settings.llm_temperature,
            streaming=True,
        )
    if provider == "ollama":
        from langchain_ollama import ChatOllama

        return ChatOllama(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            temperature=settings.llm_temperature,
            client_kwargs={"timeout": settings.llm_timeout},
        )
    raise LLMConfigError(f"Unknown ASSISTANT_LLM_PROVIDER {provider!r}: use none, openai or ollama.")


# --------------------------------------------------------------------------------------------------------- prompts

_ANSWER_SYSTEM = """You are a careful research assistant. Answer the user's question using ONLY the numbered passages below.

Rules:
1. Use only facts stated in the passages. Never add outside knowledge.
2. {language_rule}
3. Be short: at most {max_sentences} sentences.
4. After every claim put the number of the passage that supports it in square brackets, like [1] or [1][2].
5. If the passages do not answer the question, reply exactly {sentinel} and nothing else.

Passages:
{passages}"""

_ANSWER_PROMPT = ChatPromptTemplate.from_messages([
    ("system", _ANSWER_SYSTEM),
    MessagesPlaceholder("history", optional=True),
    ("human", "{question}"),
])

_LANGUAGE_RULE = {
    "en": "The question is in English, so answer in English, even where the passages are in Chinese.",
    "zh": "The question is in Chinese, so answer in Chinese (请用中文回答), even where the passages are in English.",
}

_REWRITE_SYSTEM = """You turn a follow-up question from a conversation into one standalone search query.
Use the conversation only to resolve words like "it", "that", "they", "这个", "它" into the things they refer to.
Write the query in {language}, the language of the follow-up question.
Output only the query on one line: no answer, no explanation, no quotes."""

_REWRITE_PROMPT = ChatPromptTemplate.from_messages([
    ("system", _REWRITE_SYSTEM),
    ("human", "Conversation:\n{conversation}\n\nFollow-up question: {question}\n\nStandalone search query:"),
])

_JUDGE_SYSTEM = """You check whether an answer is supported by the given passages.
Score from 0 to 1: 1 means every claim in the answer is stated in the passages, 0 means none is, and values
in between mean some claims are supported and some are not. Reply with only the number, for example 0.7."""

_JUDGE_PROMPT = ChatPromptTemplate.from_messages([
    ("system", _JUDGE_SYSTEM),
    ("human", "Passages:\n{passages}\n\nAnswer:\n{answer}\n\nScore (0 to 1):"),
])

_TRANSLATE_SYSTEM = """You translate a quoted passage from a source document into {language}.
Translate faithfully and completely: keep every number, date, name and legal reference exactly as written; add
nothing, explain nothing. Output only the translation."""

_TRANSLATE_PROMPT = ChatPromptTemplate.from_messages([
    ("system", _TRANSLATE_SYSTEM),
    ("human", "{quote}"),
])

_LANGUAGE_NAME = {"en": "English", "zh": "Chinese"}
_TRANSLATION_CHECKS = ("year", "decade", "date", "percent", "number")  # a translation may not change these


def format_passages(passages: Iterable[SearchHit]) -> str:
    """Passages numbered from 1 as the model sees them: ``[n] Title, page p`` then the text."""
    blocks = []
    for n, hit in enumerate(passages, 1):
        head = f"[{n}] {hit.title or hit.document}"
        if hit.page is not None:
            head += f", page {hit.page}"
        blocks.append(f"{head}\n{hit.text.strip()}")
    return "\n\n".join(blocks) if blocks else "(no passages)"


def _history_messages(history: Iterable[ChatTurn] | None, question: str, max_turns: int) -> list[BaseMessage]:
    turns = [t for t in (history or []) if t.role in ("user", "assistant") and t.content.strip()]
    if turns and turns[-1].role == "user" and turns[-1].content.strip() == question.strip():
        turns = turns[:-1]  # the caller already appended the current question
    turns = turns[-max_turns:] if max_turns > 0 else []
    messages: list[BaseMessage] = []
    for turn in turns:
        content = _clip(turn.content.strip(), _TURN_CHARS)
        messages.append(HumanMessage(content) if turn.role == "user" else AIMessage(content))
    return messages


def build_messages(question: str, passages: list[SearchHit], history: list[ChatTurn] | None = None, *,
                   max_turns: int = DEFAULT_HISTORY_TURNS, max_sentences: int = 3) -> list[BaseMessage]:
    """System prompt with the numbered passages and the rules, the last ``max_turns`` turns, then the question."""
    language = detect_language(question)
    return _ANSWER_PROMPT.format_messages(
        language_rule=_LANGUAGE_RULE.get(language, _LANGUAGE_RULE["en"]),
        max_sentences=max_sentences,
        sentinel=NOT_IN_SOURCES,
        passages=format_passages(passages),
        history=_history_messages(history, question, max_turns),
        question=question.strip(),
    )


# ------------------------------------------------------------------------------------------------------- answering


def stream_answer(model: BaseChatModel, question: str, passages: list[SearchHit],
                  history: list[ChatTurn] | None = None, *, max_turns: int = DEFAULT_HISTORY_TURNS,
                  max_sentences: int = 3) -> Iterator[str]:
    """Yield the answer's text as the model produces it.

    Raises (while iterating) ``LLMUnavailable`` when the server is down or times out, ``LLMBadOutput`` when the
    model produced no text, and ``LLMError`` for any other failure. Text that may still turn out to be the
    ``NOT_IN_SOURCES`` sentinel is held back, so an abstention arrives as one chunk and never as ``NOT_IN_``;
    the chunks joined are always exactly what the model produced (test it with ``is_not_in_sources``).
    """
    messages = build_messages(question, passages, history, max_turns=max_turns, max_sentences=max_sentences)
    produced = False
    held: str | None = ""  # text held back while it is still a prefix of the sentinel; None once it is not
    try:
        for chunk in model.stream(messages):
            text = message_text(chunk)
            if not text:
                continue
            produced = produced or bool(text.strip())
            if held is None:
                yield text
                continue
            held += text
            if NOT_IN_SOURCES.startswith(held.strip()):
                continue
            yield held
            held = None
    except LLMError:
        raise
    except Exception as exc:  # noqa: BLE001 - every provider failure becomes a user-facing LLMError
        raise translate_error(exc, model) from exc
    if held:
        yield held
    if not produced:
        raise LLMBadOutput("The language model returned an empty answer. Try again, or answer without the LLM.")


def answer_text(model: BaseChatModel, question: str, passages: list[SearchHit],
                history: list[ChatTurn] | None = None, **kwargs) -> str:
    """The whole answer as one string (``stream_answer`` joined)."""
    return "".join(stream_answer(model, question, passages, history, **kwargs))


def is_not_in_sources(text: str) -> bool:
    """True when the model said the passages do not answer (it may add punctuation or words around the sentinel)."""
    return NOT_IN_SOURCES in text.upper()


def message_text(message: object) -> str:
    """The text of a message or chunk; content blocks other than text (reasoning, images) are skipped."""
    if not isinstance(message, BaseMessage):
        raise LLMBadOutput(f"The language model returned {type(message).__name__} instead of a message.")
    content = message.content
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)
    raise LLMBadOutput("The language model returned output in an unexpected format.")


# ----------------------------------------------------------------------------------------------- error translation


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _types(*names: str) -> tuple[type, ...]:
    """Exception classes by dotted name, skipping libraries that are not installed."""
    import importlib

    found = []
    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            found.append(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _server(model: object) -> str:
    url = getattr(model, "openai_api_base", None) or getattr(model, "base_url", None)
    return f"The language model server at {url}" if url else "The language model server"


def _timeout(model: object) -> str:
    value = getattr(model, "request_timeout", None)
    if value is None:
        value = (getattr(model, "client_kwargs", None) or {}).get("timeout")
    return f" within {value:g} s" if isinstance(value, int | float) else " in time"


_HUNG_UP_WORDS = re.compile(r"disconnected|reset by peer|broken pipe|connection aborted", re.I)


def translate_error(exc: BaseException, model: object = None) -> LLMError:
    """Map a provider or transport exception onto ``LLMUnavailable`` / ``LLMBadOutput`` / ``LLMError``."""
    if isinstance(exc, LLMError):
        return exc
    chain = _chain(exc)
    server = _server(model)
    timeouts = _types("openai.APITimeoutError", "httpx.TimeoutException", "httpx2.TimeoutException",
                      "httpcore.TimeoutException") + (TimeoutError,)
    connection = _types("openai.APIConnectionError", "httpx.TransportError", "httpx2.TransportError",
                        "httpcore.NetworkError", "httpcore.ProtocolError") + (ConnectionError,)
    # A connection the server accepted and then closed, cleanly or by a reset (a close with the request still unread
    # resets it), is a server that hung up, not one that cannot be reached.
    dropped_types = _types("httpx.RemoteProtocolError", "httpx2.RemoteProtocolError", "httpcore.RemoteProtocolError"
                           ) + (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
    status_errors = _types("openai.APIStatusError")
    ollama_errors = _types("ollama.ResponseError")
    bad_output = _types("openai.APIResponseValidationError") + (json.JSONDecodeError, UnicodeDecodeError)
    hint = " Start it, check ASSISTANT_LLM_BASE_URL, or set ASSISTANT_LLM_PROVIDER=none."

    if any(isinstance(e, timeouts) for e in chain):
        return LLMUnavailable(f"{server} did not answer{_timeout(model)}.{hint}")
    if any(isinstance(e, connection) for e in chain):
        refused = any(isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower() for e in chain)
        dropped = any(isinstance(e, dropped_types) or _HUNG_UP_WORDS.search(str(e)) for e in chain)
        how = ("refused the connection" if refused else
               "closed the connection without finishing its answer (did it crash?)" if dropped else
               "could not be reached")
        return LLMUnavailable(f"{server} {how}.{hint}")
    status = None
    for e in chain:
        if isinstance(e, status_errors):
            status = getattr(e, "status_code", None)
        elif isinstance(e, ollama_errors):
            status = getattr(e, "status_code", None)
        if status is not None:
            detail = _clip(str(e), 300)
            break
    if status is not None:
        if status < 100:  # Ollama reports errors met mid-stream with status -1
            return LLMError(f"{server} reported an error: {detail}")
        if status in (408, 429) or status >= 500:
            return LLMUnavailable(f"{server} is unavailable or overloaded (HTTP {status}): {detail}")
        if status in (401, 403):
            return LLMError(f"{server} rejected the API key (HTTP {status}); check ASSISTANT_LLM_API_KEY.")
        if status == 404:
            return LLMError(f"{server} does not know the model or endpoint (HTTP 404); check ASSISTANT_LLM_MODEL "
                            f"and ASSISTANT_LLM_BASE_URL. {detail}")
        return LLMError(f"{server} rejected the request (HTTP {status}): {detail}")
    if any(isinstance(e, ValueError) and "No generation chunks" in str(e) for e in chain):
        # LangChain's own check when a stream ends without a single chunk
        return LLMBadOutput("The language model returned an empty answer. Try again, or answer without the LLM.")
    if any(isinstance(e, bad_output) for e in chain):
        return LLMBadOutput(f"{server} sent a malformed response: {_clip(str(exc), 300)}")
    return LLMError(f"The language model failed: {type(exc).__name__}: {_clip(str(exc), 300)}")


# ----------------------------------------------------------------------------------------------- query rewriting


def _transcript(history: Iterable[ChatTurn], max_turns: int) -> str:
    turns = [t for t in history if t.role in ("user", "assistant") and t.content.strip()][-max_turns:]
    return "\n".join(f"{'User' if t.role == 'user' else 'Assistant'}: {_clip(' '.join(t.content.split()), 500)}"
                     for t in turns)


_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:standalone\s+)?(?:search\s+)?(?:query|question|rewritten(?:\s+query)?|"
                     r"独立(?:的)?(?:搜索)?(?:查询|问题)|搜索查询|查询|问题)\s*(?:\*\*)?\s*[:：]\s*", re.I)
_QUOTES = "\"'`“”‘’「」『』"


def _clean_query(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = _PREFIX.sub("", lines[0]).strip()
    if not line and len(lines) > 1:  # "Query:" on its own line, the query below
        line = lines[1]
    return line.strip().strip(_QUOTES).strip()


def rewrite_query(model: BaseChatModel | None, history: list[ChatTurn] | None, question: str, *,
                  max_turns: int = DEFAULT_HISTORY_TURNS) -> str:
    """A standalone search query for a follow-up question, in the question's language.

    Returns ``question`` unchanged when there is no model or no earlier turn, and on any failure: an error, an empty
    result, a result much longer than the question, or one in the other language.
    """
    if model is None or not question.strip():
        return question
    earlier = [t for t in (history or []) if t.role in ("user", "assistant") and t.content.strip()]
    if earlier and earlier[-1].role == "user" and earlier[-1].content.strip() == question.strip():
        earlier = earlier[:-1]
    if not earlier:
        return question
    language = detect_language(question)
    try:
        messages = _REWRITE_PROMPT.format_messages(
            language=_LANGUAGE_NAME.get(language, "English"),
            conversation=_transcript(earlier, max_turns),
            question=question.strip(),
        )
        rewritten = _clean_query(message_text(model.invoke(messages)))
    except Exception as exc:  # noqa: BLE001 - rewriting is an optimisation; the original question always works
        log.warning("query rewrite failed, searching with the question as asked: %s", translate_error(exc, model))
        return question
    limit = max(200, 3 * len(question))
    if not rewritten or len(rewritten) > limit or is_not_in_sources(rewritten):
        log.info("query rewrite unusable (%d chars), searching with the question as asked", len(rewritten))
        return question
    if detect_language(rewritten) != language:
        log.info("query rewrite changed the language, searching with the question as asked")
        return question
    return rewritten


# ------------------------------------------------------------------------------------------------------- markers

_OPEN, _CLOSE = r"\[［【", r"\]］】"
_NUM = r"\d{1,3}(?:\s*[-–~]\s*\d{1,3})?"
_MARKER = re.compile(rf"(\s*)([{_OPEN}])\s*({_NUM}(?:\s*[,，、;；]\s*{_NUM})*)\s*([{_CLOSE}])")
_MAX_RANGE = 50


def translate_quote(model: BaseChatModel | None, quote: str, language: str) -> str | None:
    """A machine translation of ``quote`` into ``language`` ("en" or "zh"), or None: without a model, when the quote
    is already in that language, and on any failure (an error, an empty reply, a reply in the wrong language, or one
    that states a year, date, share or number other than the quote's). It is a reading aid shown beside the verified quote, never in its place."""
    if model is None or not quote.strip() or language not in _LANGUAGE_NAME or detect_language(quote) == language:
        return None
    try:
        messages = _TRANSLATE_PROMPT.format_messages(language=_LANGUAGE_NAME[language], quote=quote.strip())
        translation = message_text(model.invoke(messages)).strip()
    except Exception as exc:  # noqa: BLE001 - a translation is optional; the verified quote stands without it
        log.warning("quote not translated: %s", translate_error(exc, model))
        return None
    if not translation or detect_language(translation) != language or is_not_in_sources(translation):
        log.info("quote translation unusable (%d chars, language %s)", len(translation), detect_language(translation))
        return None
    from assistant.claims import conflicts

    changed = conflicts(translation, quote, checks=_TRANSLATION_CHECKS)  # facts compared across languages
    if changed:
        log.info("quote translation changed a fact (%s); not shown", changed[0].describe())
        return None
    return translation


def _numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,，、;；]\s*", group.strip()):
        bounds = [int(x) for x in re.split(r"\s*[-–~]\s*", part) if x]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= _MAX_RANGE:
            numbers.extend(range(bounds[0], bounds[1] + 1))
        else:
            numbers.extend(bounds[:1])
    return [n for n in numbers if n > 0]


def parse_markers(text: str) -> list[int]:
    """Passage numbers cited as ``[n]``, ``[n, m]``, ``[n][m]``, ``[n-m]`` or ``【n】``: unique, in order of first use."""
    seen: dict[int, None] = {}
    for match in _MARKER.finditer(text):
        for n in _numbers(match.group(3)):
            seen.setdefault(n, None)
    return list(seen)


def drop_unknown_markers(text: str, valid: set[int]) -> str:
    """Remove the numbers of markers that are not in ``valid``; a marker left empty is removed with its space."""

    def keep(match: re.Match) -> str:
        numbers = _numbers(match.group(3))
        kept = list(dict.fromkeys(n for n in numbers if n in valid))
        if kept == numbers:
            return match.group(0)
        if not kept:
            return ""
        return f"{match.group(1)}{match.group(2)}{', '.join(map(str, kept))}{match.group(4)}"

    return _MARKER.sub(keep, text)


# --------------------------------------------------------------------------------------------------------- judge

_SCORE = re.compile(r"(?<![\d.\-])(\d+(?:\.\d+)?|\.\d+)\s*(%|/\s*(\d+(?:\.\d+)?))?")


def parse_score(text: str) -> float | None:
    """The first number in ``text`` as a 0–1 score (``0.8``, ``80%``, ``8/10``); None if there is none in range."""
    match = _SCORE.search(text)
    if not match:
        return None
    value = float(match.group(1))
    if match.group(2) == "%":
        value /= 100
    elif match.group(3):
        scale = float(match.group(3))
        if scale <= 0:
            return None
        value /= scale
    return value if 0.0 <= value <= 1.0 else None


def judge_faithfulness(model: BaseChatModel | None, answer: str, passages: list[SearchHit]) -> float | None:
    """How well ``answer`` is supported by ``passages``, 0–1, as judged by ``model``.

    None when there is no model, nothing to judge (empty answer or the ``NOT_IN_SOURCES`` abstention), or the model
    failed or gave no number in range.
    """
    if model is None or not answer.strip() or is_not_in_sources(answer) or not passages:
        return None
    try:
        messages = _JUDGE_PROMPT.format_messages(passages=format_passages(passages), answer=answer.strip())
        return parse_score(message_text(model.invoke(messages)))
    except Exception as exc:  # noqa: BLE001 - the judge is advisory
        log.warning("faithfulness judge failed: %s", translate_error(exc, model))
        return None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


__all__ = [
    "NOT_IN_SOURCES", "LLMError", "LLMConfigError", "LLMUnavailable", "LLMBadOutput",
    "make_chat_model", "build_messages", "format_passages", "stream_answer", "answer_text", "is_not_in_sources",
    "message_text", "translate_error", "rewrite_query", "parse_markers", "drop_unknown_markers", "parse_score",
    "judge_faithfulness",
]
