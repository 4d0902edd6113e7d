"""API fixtures: one indexed MiniLM corpus and one Assistant for the session, apps built over them cheaply.

``api_assistant`` indexes the seed article (zh), the White House fact sheet and the CEA summary (en) once.
``client`` is a TestClient over ``create_app(settings, assistant=api_assistant)``; ``make_client(**overrides)``
builds further apps over the same Assistant with other settings (an API key, a small body limit). Tests that change
the corpus use ``fresh_assistant`` (their own corpus and index) so they never disturb the shared one.
``live_server`` runs a real uvicorn server in a thread on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import CEA_MD, FACT_SHEET_MD, MANIFEST, MINILM_ABSTAIN_THRESHOLD, SEED, copy_into
from tests.helpers import uvicorn_in_thread

API_DOCS = [SEED, FACT_SHEET_MD, CEA_MD]


def api_settings(base: Path, minilm_path: str, **overrides):
    from assistant.settings import Settings

    values = dict(corpus_dir=base / "corpus", index_dir=base / "index", model_cache=base / "models",
                  embedding_model=minilm_path, embedding_dtype="float32", corpus_manifest=MANIFEST,
                  corpus_mirror=None, chroma_url=None, llm_provider="none", api_key=None,
                  abstain_threshold=MINILM_ABSTAIN_THRESHOLD)
    values.update(overrides)
    return Settings(**values)


def indexed_assistant(settings, embedder, names: list[str], mirror: Path):
    """An Assistant over a fresh copy of ``names``, indexed, reusing the session's embedder (model loaded once)."""
    from assistant.pipeline import Assistant

    copy_into(settings.corpus_dir, names, mirror)
    assistant = Assistant(settings, embedder=embedder)  # the shared, already-loaded model
    report = assistant.sync(show_progress=False)
    assert not report.failed, report.failed
    return assistant


@pytest.fixture(scope="session")
def api_assistant(tmp_path_factory, minilm_path, corpus_mirror, shared_embedder):
    settings = api_settings(tmp_path_factory.mktemp("api"), minilm_path)
    return indexed_assistant(settings, shared_embedder, API_DOCS, corpus_mirror)


@pytest.fixture(scope="session")
def make_client(api_assistant) -> Iterator[Callable]:
    """``make_client(assistant=None, **settings_overrides)`` → an entered TestClient; closed at session end."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    opened = []

    def factory(assistant=None, **overrides):
        assistant = assistant or api_assistant
        settings = assistant.settings.model_copy(update=overrides) if overrides else assistant.settings
        client = TestClient(create_app(settings, assistant=assistant), base_url="http://localhost")
        client.__enter__()
        opened.append(client)
        return client

    yield factory
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def client(make_client):
    return make_client()


@pytest.fixture(scope="module")
def fresh_assistant(tmp_path_factory, minilm_path, corpus_mirror, shared_embedder):
    """A module's own small corpus (the fact sheet only) and index, free to change."""
    settings = api_settings(tmp_path_factory.mktemp("api-fresh"), minilm_path)
    return indexed_assistant(settings, shared_embedder, [FACT_SHEET_MD], corpus_mirror)


@contextmanager
def serve_in_thread(app, http=None) -> Iterator[str]:
    """A real uvicorn server for ``app`` on 127.0.0.1:<free port>, in a thread; yields its base URL.

    ``http``: the protocol class (default: the one `assistant serve` uses)."""
    from api.protocol import http_protocol

    with uvicorn_in_thread(app, lifespan="on", http=http or http_protocol()) as url:
        yield url


@pytest.fixture(scope="session")
def live_server(api_assistant) -> Iterator[str]:
    from api.app import create_app

    with serve_in_thread(create_app(api_assistant.settings, assistant=api_assistant)) as url:
        yield url


def sse_events(text: str) -> list[tuple[str | None, object]]:
    """Parse a text/event-stream body into (event name, decoded JSON data or raw string) pairs."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            raw = "\n".join(data)
            try:
                events.append((name, json.loads(raw)))
            except json.JSONDecodeError:
                events.append((name, raw))
    return events
