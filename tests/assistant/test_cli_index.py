"""The ``assistant`` command as a user runs it (a subprocess, settings from ASSISTANT_* variables): index, search,
corpus fetch, and their exit codes."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from assistant.store import IndexModelMismatch, IndexStore
from assistant.sync import sync, sync_lock
from tests.conftest import CEA_MD, EO14330_PDF, SEED, VENV_BIN, close_store, copy_into, test_env

ASSISTANT = str(VENV_BIN / "assistant")


def run(settings, *args: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run([ASSISTANT, *args], env=test_env(settings, **extra_env), capture_output=True, text=True,
                          timeout=timeout, cwd=settings.corpus_dir.parent)


def test_index_exits_2_and_names_each_bad_file_then_0_once_fixed(make_settings, corpus_mirror, bad_inputs):
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    expected = bad_inputs(settings.corpus_dir)

    result = run(settings, "index", "--json")
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["partial"] is True and report["added"] == [CEA_MD] and report["embedded"] == report["passages"] > 0
    reasons = {f["document"]: f["reason"] for f in report["failed"]}
    assert set(reasons) == set(expected)
    for name, fragment in expected.items():
        assert fragment in reasons[name]

    result = run(settings, "index")  # human output: one line per skipped file on stderr, a summary on stdout
    assert result.returncode == 2
    for name in expected:
        assert f"skipped  {name}: " in result.stderr
    assert "added 0, updated 0, removed 0, unchanged 1, failed 5" in result.stdout
    assert "(0 embedded)" in result.stdout
    assert "Traceback" not in result.stderr

    for name in expected:
        (settings.corpus_dir / name).unlink()
    result = run(settings, "index")
    assert result.returncode == 0, result.stderr
    assert "unchanged 1, failed 0" in result.stdout


def test_index_refuses_while_another_sync_runs(make_settings):
    settings = make_settings()
    settings.corpus_dir.mkdir()
    with sync_lock(settings):
        result = run(settings, "index")
    assert result.returncode == 1
    assert "Another sync of" in result.stderr and "--wait" in result.stderr and "Traceback" not in result.stderr


def test_index_with_another_model_asks_for_rebuild(make_settings, corpus_mirror, minilm_path, tmp_path,
                                                   shared_embedder, open_store):
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    store = open_store(settings, shared_embedder.model_id)
    assert sync(settings, shared_embedder, store, show_progress=False).added == [CEA_MD]
    close_store(store)

    # the same weights under another folder name are another model id: the index must not mix them
    other = tmp_path / "other-minilm"
    other.symlink_to(minilm_path, target_is_directory=True)
    result = run(settings, "index", ASSISTANT_EMBEDDING_MODEL=str(other))
    assert result.returncode == 1
    assert "--rebuild" in result.stderr and "other-minilm" in result.stderr and "Traceback" not in result.stderr

    result = run(settings, "index", "--rebuild", "--json", ASSISTANT_EMBEDDING_MODEL=str(other))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == [CEA_MD] and report["embedded"] == report["passages"]
    with pytest.raises(IndexModelMismatch):  # the index now belongs to the other model
        IndexStore(settings, shared_embedder.model_id)


def test_index_without_the_model_says_how_to_get_it(make_settings, tmp_path):
    settings = make_settings(embedding_model="google/embeddinggemma-300m", model_cache=tmp_path / "no-models")
    settings.corpus_dir.mkdir()
    result = run(settings, "index")
    assert result.returncode == 1
    assert "assistant models fetch" in result.stderr and "Traceback" not in result.stderr


def test_search_json_prints_results_with_their_spans(small_index, shared_embedder):
    result = run(small_index, "search", "Within 180 days the Secretary of Labor shall reexamine", "--json", "--k", "4")
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert 0 < len(results) <= 4
    assert results[0]["document"] == EO14330_PDF and results[0]["page"] == 2 and "Within 180 days" in results[0]["text"]
    store = IndexStore(small_index, shared_embedder.model_id)
    try:
        records = store.documents()
        for hit in results:
            assert {"chunk_id", "document", "title", "page", "start", "end", "text", "score"} <= set(hit)
            record = records[hit["document"]]
            assert hit["chunk_id"] in record.passage_ids and hit["title"] == record.title
            assert store.document(hit["document"]).text[hit["start"]:hit["end"]] == hit["text"]
            assert isinstance(hit["score"], float)
            assert (hit["page"] is None) == (hit["document"] != EO14330_PDF)
        assert [h["score"] for h in results] == sorted((h["score"] for h in results), reverse=True)
    finally:
        close_store(store)


def test_search_filters_and_chinese_queries(small_index):
    result = run(small_index, "search", "大萧条 养老金", "--json", "--language", "zh", "--document", SEED)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert results and {h["document"] for h in results} == {SEED}
    assert any("大萧条" in h["text"] for h in results)

    result = run(small_index, "search", "   ")
    assert result.returncode == 1 and "the query is empty" in result.stderr


def test_corpus_fetch_command(make_settings, corpus_mirror, tmp_path):
    sources = json.loads((make_settings().corpus_manifest).read_text())["sources"]
    for source in sources:
        if source.get("url"):
            source["url"] = "https://sources.pension-assistant.invalid/" + source["file"]
    manifest = tmp_path / "sources.json"
    manifest.write_text(json.dumps({"sources": sources}))
    settings = make_settings(corpus_manifest=manifest)
    settings.corpus_dir.mkdir()

    result = run(settings, "corpus", "fetch", "--json", ASSISTANT_CORPUS_MIRROR=str(corpus_mirror),
                 ASSISTANT_FETCH_TIMEOUT="2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["fetched"]) == sum(1 for s in sources if not s.get("committed")) and not report["missing"]

    os.remove(settings.fetched_dir / EO14330_PDF)
    result = run(settings, "corpus", "fetch", ASSISTANT_FETCH_TIMEOUT="2")  # no mirror, no network
    assert result.returncode == 3
    assert f"MISSING  {EO14330_PDF}" in result.stderr and "missing 1" in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["index", "--help"], ["search", "--help"]])
def test_help(make_settings, args):
    settings = make_settings()
    settings.corpus_dir.mkdir()
    result = run(settings, *args)
    assert result.returncode == 0 and "Usage" in result.stdout


OKAPI = ("Okapi pension memo\n\nThe Okapi Provident Scheme of the Ituri forest keeps its reserves in cocoa warehouse "
         "receipts and reports to members each rainy season.\n")


@pytest.mark.slow
def test_an_index_run_beside_a_running_serve_is_visible_to_it_within_seconds(make_settings, corpus_mirror, tmp_path,
                                                                           shared_embedder, open_store):
    """`assistant index` in another process changes the embedded index under a running `serve`: the server's next
    searches find the new document (plain and filtered to it, which answered 500 'Error finding id' before) and stop
    finding the removed one, without a restart."""
    import time

    import httpx

    from tests.conftest import FACT_SHEET_MD, stop_process
    from tests.helpers import free_port, wait_http

    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD, FACT_SHEET_MD], corpus_mirror)
    close_store_after = open_store(settings, shared_embedder.model_id)
    assert sorted(sync(settings, shared_embedder, close_store_after, show_progress=False).added) == sorted(
        [CEA_MD, FACT_SHEET_MD])
    close_store(close_store_after)

    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([str(VENV_BIN / "assistant"), "serve", "--port", str(port), "--log-level", "warning"],
                              env=test_env(settings), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    query = {"query": "Okapi Provident Scheme cocoa warehouse receipts", "k": 3}

    def documents_found(body: dict) -> set[str]:
        response = httpx.post(f"{base}/search", json=body, timeout=60)
        assert response.status_code == 200, response.text
        return {hit["document"] for hit in response.json()["results"]}

    try:
        wait_http(f"{base}/health", 240, server)
        assert "okapi.txt" not in documents_found(query)

        (settings.corpus_dir / "okapi.txt").write_text(OKAPI, encoding="utf-8")
        (settings.corpus_dir / FACT_SHEET_MD).unlink()
        result = run(settings, "index", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["added"] == ["okapi.txt"] and report["removed"] == [FACT_SHEET_MD]

        deadline = time.monotonic() + 10
        while "okapi.txt" not in documents_found(query) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert time.monotonic() < deadline, "the server never saw the document the CLI added"
        assert documents_found({**query, "filters": {"documents": ["okapi.txt"]}}) == {"okapi.txt"}
        assert FACT_SHEET_MD not in documents_found({"query": "fact sheet alternative assets 401(k)", "k": 10})
        health = httpx.get(f"{base}/health", timeout=30).json()
        assert health["documents"] == 2 and health["corpus_revision"] == report["revision"]
    finally:
        stop_process(server)
        log.close()
