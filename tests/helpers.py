"""Shared test helpers for real servers: a free port, and waiting until a server (thread or process) answers."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (bound and released: nothing listens there now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float, process: subprocess.Popen | None = None,
              thread: threading.Thread | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early when the ``process`` exits or the ``thread`` dies."""
    import httpx

    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[:2]} exited with {process.returncode}")
        if thread is not None and not thread.is_alive():
            raise RuntimeError(f"the server thread died during startup (last answer from {url}: {last})")
        try:
            response = httpx.get(url, timeout=5, trust_env=False)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds} s (last: {last})")


def wait_started(server, thread: threading.Thread, seconds: float = 20) -> None:
    """Wait until a uvicorn ``server`` running in ``thread`` has started."""
    deadline = time.monotonic() + seconds
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)


@contextmanager
def uvicorn_in_thread(app, seconds: float = 20, **config) -> Iterator[str]:
    """A real uvicorn server for ``app`` on 127.0.0.1:<free port>, in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **{"log_level": "warning", **config}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_started(server, thread, seconds)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_for_evaluation(client, job_id: str, seconds: float = 120) -> dict:
    """Poll ``GET /evaluations/{job_id}`` through a test ``client`` until the job is no longer running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get(f"/evaluations/{job_id}").json()
        if status["status"] != "running":
            return status
        time.sleep(0.2)
    raise AssertionError(f"evaluation {job_id} still running after {seconds} s")


@contextmanager
def corpus_held(settings, seconds: float = 10) -> Iterator[None]:
    """Another writer holding the corpus lock (in a thread) for the duration of the block."""
    from assistant.documents import corpus_change

    held, release = threading.Event(), threading.Event()

    def hold():
        with corpus_change(settings, wait=5):
            held.set()
            release.wait(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        held.wait(5)
        yield
    finally:
        release.set()
        thread.join(10)


def assert_refused_unverified(loader) -> None:
    """``loader`` (an lru_cached loader of a packaged model or dictionary) raises ModelError "failed verification";
    its cache is cleared before and after, so the next caller loads the real one."""
    import pytest

    from assistant.model_fetch import ModelError

    loader.cache_clear()
    try:
        with pytest.raises(ModelError, match="failed verification"):
            loader()
    finally:
        loader.cache_clear()
