"""Chroma as a server (ASSISTANT_CHROMA_URL): a real ``chroma run`` subprocess, several processes, one corpus."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from assistant.retrieve import Retriever
from assistant.store import IndexStore
from assistant.sync import sync
from tests.conftest import CEA_MD, EO14330_PDF, FACT_SHEET_MD, VENV_BIN, copy_into, stop_process, test_env
from tests.helpers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def chroma_server(tmp_path):
    """A real Chroma server on a free port over a temp folder; yields its URL, terminated at the end."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen([str(VENV_BIN / "chroma"), "run", "--path", str(tmp_path / "chroma-data"),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
            try:
                client = chromadb.HttpClient(host="127.0.0.1", port=port,
                                             settings=ChromaSettings(anonymized_telemetry=False))
                client.heartbeat()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    pytest.fail("chroma server did not answer its heartbeat within 60 s")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
        log.close()


def test_sync_and_search_through_a_chroma_server(chroma_server, make_settings, corpus_mirror, shared_embedder,
                                                 tmp_path):
    settings = make_settings(chroma_url=chroma_server)
    copy_into(settings.corpus_dir, [EO14330_PDF, CEA_MD, FACT_SHEET_MD], corpus_mirror)
    store = IndexStore(settings, shared_embedder.model_id)
    first = sync(settings, shared_embedder, store, show_progress=False)
    assert sorted(first.added) == sorted([EO14330_PDF, CEA_MD, FACT_SHEET_MD]) and not first.partial
    assert store.count() == first.passages == first.embedded
    # the vectors live in the server, not in index_dir; only this node's word statistics (idf) sit beside it
    assert [p.name for p in settings.index_dir.glob("*.sqlite3")] in ([], ["passages-terms.sqlite3"])
    assert not (settings.index_dir / "chroma.sqlite3").exists()

    hits = Retriever(settings, shared_embedder, store).search("Within 180 days the Secretary of Labor shall", k=3)
    assert hits and hits[0].document == EO14330_PDF and hits[0].page == 2

    calls = shared_embedder.calls
    second = sync(settings, shared_embedder, IndexStore(settings, shared_embedder.model_id), show_progress=False)
    assert second.embedded == 0 and shared_embedder.calls == calls and len(second.unchanged) == 3
    assert second.revision == first.revision

    # another process, with its own (empty) local index folder, sees the same documents through the server
    elsewhere = make_settings(tmp_path / "elsewhere", chroma_url=chroma_server)
    elsewhere.corpus_dir.mkdir(parents=True)
    result = subprocess.run([str(VENV_BIN / "assistant"), "search", "alternative assets fact sheet", "--json"],
                            env=test_env(elsewhere), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert results and {h["document"] for h in results} <= {EO14330_PDF, CEA_MD, FACT_SHEET_MD}

    # and an `assistant index` in another process is a no-op too
    result = subprocess.run([str(VENV_BIN / "assistant"), "index", "--json"], env=test_env(settings),
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["embedded"] == 0 and len(report["unchanged"]) == 3

    # an update made by that other process is seen here: the revision moved, search finds the new text
    (settings.corpus_dir / FACT_SHEET_MD).unlink()
    result = subprocess.run([str(VENV_BIN / "assistant"), "index", "--json"], env=test_env(settings),
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["removed"] == [FACT_SHEET_MD]
    assert store.revision() != first.revision and FACT_SHEET_MD not in store.documents()
    hits = Retriever(settings, shared_embedder, store).search("fact sheet alternative assets", k=5)
    assert hits and FACT_SHEET_MD not in {h.document for h in hits}
