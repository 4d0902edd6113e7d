"""`assistant serve`: refuses several workers over embedded Chroma; with a Chroma server, every worker sees every
update (a real `chroma run`, a real `assistant serve --workers 2`, requests over loopback)."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import api_settings
from tests.conftest import CEA_MD, FACT_SHEET_MD, VENV_BIN, copy_into, stop_process, test_env
from tests.helpers import free_port, wait_http

NOTE = ("Okapi pension memo\n\nThe Okapi Provident Scheme of the Ituri forest keeps its reserves in cocoa warehouse "
        "receipts and reports to members each rainy season.\n")
QUERY = {"query": "Okapi Provident Scheme cocoa warehouse receipts", "k": 5}


def test_serve_refuses_workers_with_embedded_chroma(tmp_path, minilm_path):
    env = test_env(api_settings(tmp_path, minilm_path))
    run = subprocess.run([str(VENV_BIN / "assistant"), "serve", "--workers", "2", "--port", str(free_port())],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "ASSISTANT_CHROMA_URL" in run.stderr and "one process" in run.stderr


def _rounds(base: str, want_per_worker: int = 4, limit: int = 80) -> dict[int, list[set[str]]]:
    """/search over fresh connections until each worker answered a few times; documents found, per worker pid.

    /health and /search share one connection per round, so the pid names the worker that did the search."""
    seen: dict[int, list[set[str]]] = defaultdict(list)
    for _ in range(limit):
        with httpx.Client(base_url=base, timeout=60) as client:
            pid = client.get("/health").json()["pid"]
            response = client.post("/search", json=QUERY)
            assert response.status_code == 200, response.text
            seen[pid].append({hit["document"] for hit in response.json()["results"]})
        if len(seen) >= 2 and all(len(v) >= want_per_worker for v in seen.values()):
            break
    return seen


@pytest.mark.slow
def test_two_workers_share_one_chroma_server(tmp_path: Path, minilm_path: str, corpus_mirror: Path):
    chroma_port, port = free_port(), free_port()
    settings = api_settings(tmp_path, minilm_path, chroma_url=f"http://127.0.0.1:{chroma_port}")
    copy_into(settings.corpus_dir, [FACT_SHEET_MD, CEA_MD], corpus_mirror)
    env = test_env(settings)
    chroma_log, server_log = tmp_path / "chroma.log", tmp_path / "serve.log"  # files: a full pipe would block them
    chroma = subprocess.Popen([str(VENV_BIN / "chroma"), "run", "--path", str(tmp_path / "chroma"), "--host",
                               "127.0.0.1", "--port", str(chroma_port)], env=env, stdout=chroma_log.open("w"),
                              stderr=subprocess.STDOUT)
    server = None
    try:
        wait_http(f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", 60, chroma)
        server = subprocess.Popen([str(VENV_BIN / "assistant"), "serve", "--workers", "2", "--port", str(port),
                                   "--log-level", "warning"], env=env, stdout=server_log.open("w"),
                                  stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", 240, server)
        synced = httpx.post(f"{base}/documents/sync", timeout=120).json()
        assert "added" in synced, synced
        assert sorted(synced["added"]) == sorted([FACT_SHEET_MD, CEA_MD])

        before = _rounds(base)  # both workers answer, and build their in-memory BM25, before the change
        assert len(before) == 2, f"only one worker answered: {list(before)}"
        assert all("okapi-memo.txt" not in docs for runs in before.values() for docs in runs)

        upload = httpx.post(f"{base}/documents", files={"file": ("okapi-memo.txt", NOTE.encode())}, timeout=120)
        assert upload.status_code == 201, upload.text
        after = _rounds(base)
        assert len(after) == 2
        for pid, runs in after.items():
            assert all("okapi-memo.txt" in docs for docs in runs), f"worker {pid} missed the upload: {runs}"

        assert httpx.delete(f"{base}/documents/okapi-memo.txt", timeout=120).status_code == 200
        gone = _rounds(base)
        assert len(gone) == 2
        for pid, runs in gone.items():
            assert all("okapi-memo.txt" not in docs for docs in runs), f"worker {pid} still has it: {runs}"
    finally:
        if server is not None:
            stop_process(server)
        stop_process(chroma)
    assert f"chat page: http://127.0.0.1:{port}/" in server_log.read_text()
