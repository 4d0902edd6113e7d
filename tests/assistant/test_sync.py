"""Step 5, sync: the index follows the corpus (add, update, remove, skip), reports bad files, and survives SIGKILL.

The crash tests run a real sync in a subprocess and kill it with SIGKILL: either at a chosen step (the driver
wraps the store's write methods and kills its own process right after the N-th call of one), or after a delay.
Then the index is opened here and checked: readers see whole document versions only; a new sync repairs the rest.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from assistant.retrieve import Retriever
from assistant.sources import corpus_files
from assistant.store import IndexModelMismatch, IndexStore, _pages
from assistant.sync import SyncBusy, ingest_signature, sync, sync_lock
from tests.conftest import CEA_MD, EO14330_PDF, FACT_SHEET_MD, SEED, close_store, copy_into, test_env

# --- invariants -----------------------------------------------------------------------------------------------------


def stored_by_version(store: IndexStore) -> dict[tuple[str, str], set[str]]:
    by_version: dict[tuple[str, str], set[str]] = defaultdict(set)
    for got in _pages(store.passages, include=["metadatas"]):
        for pid, meta in zip(got["ids"], got["metadatas"]):
            by_version[(meta["document"], meta["version"])].add(pid)
    return by_version


def assert_whole_versions(store: IndexStore, embedder=None, settings=None) -> dict[str, str]:
    """What readers can see is, for every registered document, exactly the passages of its registered version."""
    records = store.documents()
    by_version = stored_by_version(store)
    for doc_id, record in records.items():
        assert by_version.get((doc_id, record.version), set()) == set(record.passage_ids), \
            f"{doc_id}: registered version {record.version} is not whole in the store"
    registered_ids = set().union(*(r.passage_ids for r in records.values())) if records else set()
    versions = {d: r.version for d, r in records.items()}
    visible = list(store.iter_passages(versions))
    assert {p.chunk_id for p in visible} == registered_ids
    texts = {d: store.document(d).text for d in records}
    for passage in visible:
        assert texts[passage.document][passage.start:passage.end] == passage.text
    if embedder is not None and records:
        hits = Retriever(settings, embedder, store).search("retirement plan investments", k=10)
        assert hits and all(h.chunk_id in registered_ids for h in hits)
    return versions


def assert_in_sync(settings, store: IndexStore, expected_docs: set[str] | None = None) -> None:
    """No duplicate, no orphan, nothing missing, no unfinished sync."""
    records = store.documents()
    expected = expected_docs if expected_docs is not None else set(corpus_files(settings))
    assert set(records) == expected
    assert store.count() == sum(r.passages for r in records.values())
    assert {doc for doc, _ in stored_by_version(store)} == set(records)
    assert not store.meta().get("dirty")
    for doc_id, path in corpus_files(settings).items():
        if doc_id in records:
            assert records[doc_id].content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert_whole_versions(store)


# --- the life of an index -------------------------------------------------------------------------------------------


@pytest.fixture
def three_docs(make_settings, corpus_mirror):
    settings = make_settings()
    copy_into(settings.corpus_dir, [SEED, EO14330_PDF, CEA_MD], corpus_mirror)
    return settings


def test_sync_adds_skips_updates_and_removes(three_docs, shared_embedder, open_store):
    settings, embedder = three_docs, shared_embedder
    store = open_store(settings, embedder.model_id)

    calls = embedder.calls
    first = sync(settings, embedder, store, show_progress=False)
    assert sorted(first.added) == sorted([SEED, EO14330_PDF, CEA_MD])
    assert not (first.updated or first.removed or first.unchanged or first.failed) and not first.partial
    assert first.embedded == first.passages == store.count() > 0
    assert embedder.calls - calls == first.embedded + first.sentences_embedded  # sentences: the sentence index
    records = store.documents()
    assert records[SEED].language == "zh" and records[SEED].title.startswith("从历史来看")
    assert records[EO14330_PDF].title.startswith("Executive Order 14330")
    assert records[CEA_MD].metadata["source_url"].startswith("https://www.whitehouse.gov/")
    assert_in_sync(settings, store)

    # nothing changed: nothing embedded, the revision stays (readers keep their caches)
    calls = embedder.calls
    second = sync(settings, embedder, store, show_progress=False)
    assert second.embedded == 0 and embedder.calls == calls
    assert sorted(second.unchanged) == sorted(first.added) and not (second.added or second.updated or second.removed)
    assert second.passages == first.passages and second.revision == first.revision

    # a paragraph of the md changes: only its passages are embedded again, the old version is gone
    md = settings.corpus_dir / CEA_MD
    text = md.read_text(encoding="utf-8")
    assert "Amidst changes in the composition" in text
    md.write_text(text.replace("Amidst changes in the composition", "Amid shifts in the makeup"), encoding="utf-8")
    old_version = records[CEA_MD].version
    md_passages = records[CEA_MD].passages
    calls = embedder.calls
    third = sync(settings, embedder, store, show_progress=False)
    assert third.updated == [CEA_MD] and sorted(third.unchanged) == sorted([SEED, EO14330_PDF])
    assert 0 < third.embedded < md_passages and embedder.calls - calls == third.embedded + third.sentences_embedded
    assert third.revision != second.revision
    new_record = store.documents()[CEA_MD]
    assert new_record.version != old_version
    assert not store.passages.get(where={"version": old_version}, include=[])["ids"]
    assert "Amid shifts in the makeup" in store.document(CEA_MD).text
    assert_in_sync(settings, store)

    # a file is removed: its registry row and passages go
    (settings.corpus_dir / SEED).unlink()
    calls = embedder.calls
    fourth = sync(settings, embedder, store, show_progress=False)
    assert fourth.removed == [SEED] and fourth.embedded == 0 and embedder.calls == calls
    assert not store.passages.get(where={"document": SEED}, include=[])["ids"]
    assert store.document(SEED) is None
    assert_in_sync(settings, store)

    # a file moved to another folder is another document id: one removed, one added
    (settings.corpus_dir / "white-house").mkdir()
    (settings.corpus_dir / CEA_MD).rename(settings.corpus_dir / "white-house" / CEA_MD)
    fifth = sync(settings, embedder, store, show_progress=False)
    assert fifth.added == [f"white-house/{CEA_MD}"] and fifth.removed == [CEA_MD]
    assert_in_sync(settings, store)


def test_a_second_store_object_sees_the_index(three_docs, shared_embedder, open_store):
    settings = three_docs
    (settings.corpus_dir / SEED).unlink()
    (settings.corpus_dir / EO14330_PDF).unlink()
    report = sync(settings, shared_embedder, open_store(settings, shared_embedder.model_id), show_progress=False)
    other = open_store(settings, shared_embedder.model_id)
    assert set(other.documents()) == {CEA_MD} and other.count() == report.passages
    assert other.revision() == report.revision


def test_bad_inputs_are_reported_by_name_and_the_rest_indexes(make_settings, corpus_mirror, bad_inputs,
                                                              shared_embedder, open_store):
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    expected = bad_inputs(settings.corpus_dir)
    (settings.corpus_dir / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    expected["sheet.xlsx"] = "unsupported file type .xlsx"
    store = open_store(settings, shared_embedder.model_id)
    failures = []
    report = sync(settings, shared_embedder, store, show_progress=False, on_failure=failures.append)

    assert report.partial is True
    assert report.added == [CEA_MD]
    reasons = {f.document: f.reason for f in report.failed}
    assert set(reasons) == set(expected)
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
    assert failures == report.failed
    assert_in_sync(settings, store, expected_docs={CEA_MD})

    # still reported next time, still nothing re-embedded
    calls = shared_embedder.calls
    again = sync(settings, shared_embedder, store, show_progress=False)
    assert again.partial and {f.document for f in again.failed} == set(expected)
    assert again.embedded == 0 and shared_embedder.calls == calls and again.unchanged == [CEA_MD]

    # fixing a file brings it in; a file that turns bad drops out of the index, the rest stays
    (settings.corpus_dir / "latin1.txt").write_text("Now valid UTF-8 text about the café.", encoding="utf-8")
    (settings.corpus_dir / CEA_MD).write_bytes(b"")
    third = sync(settings, shared_embedder, store, show_progress=False)
    assert third.added == ["latin1.txt"]
    assert "empty file" in {f.document: f.reason for f in third.failed}[CEA_MD]
    # a file that can no longer be read keeps its last good version (its failure is reported every sync)
    assert set(store.documents()) == {CEA_MD, "latin1.txt"}
    assert_whole_versions(store)


def test_an_empty_corpus_syncs_to_an_empty_index(make_settings, shared_embedder, open_store):
    settings = make_settings()
    settings.corpus_dir.mkdir()
    store = open_store(settings, shared_embedder.model_id)
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert report.passages == 0 and not report.added and not report.partial and store.count() == 0


def test_a_sync_finishes_the_work_of_a_killed_one(make_settings, corpus_mirror, shared_embedder, open_store):
    """The state a sync killed after its last commit leaves (orphans stored, dirty flag set) is repaired by the next
    sync even when no file changed: orphans swept, a new revision for readers, the flag cleared."""
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    store = open_store(settings, shared_embedder.model_id)
    first = sync(settings, shared_embedder, store, show_progress=False)
    record = store.documents()[CEA_MD]
    stale = store.passages_of(CEA_MD)[:2]
    orphans = [p.model_copy(update={"chunk_id": f"{p.chunk_id}-old", "version": "0" * 16}) for p in stale]
    vectors = store.vectors([p.chunk_id for p in stale])
    store.add_passages(orphans, [vectors[p.chunk_id] for p in stale], ["x", "y"])
    store.mark_dirty(True)
    assert store.count() == record.passages + 2
    assert_whole_versions(store)  # readers already ignore the orphans

    calls = shared_embedder.calls
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert report.embedded == 0 and shared_embedder.calls == calls and report.unchanged == [CEA_MD]
    assert report.revision != first.revision
    assert_in_sync(settings, store)
    again = sync(settings, shared_embedder, store, show_progress=False)
    assert again.revision == report.revision  # and after that, a no-op is a no-op again


# --- one sync at a time ---------------------------------------------------------------------------------------------


def test_a_second_sync_is_refused_clearly_or_waits(make_settings, corpus_mirror, shared_embedder, open_store):
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    store = open_store(settings, shared_embedder.model_id)
    held, release = threading.Event(), threading.Event()

    def hold(seconds: float) -> None:
        with sync_lock(settings):
            held.set()
            release.wait(seconds)

    holder = threading.Thread(target=hold, args=(30,), daemon=True)
    holder.start()
    assert held.wait(10)
    with pytest.raises(SyncBusy) as caught:
        sync(settings, shared_embedder, store, show_progress=False)
    message = str(caught.value)
    assert str(settings.index_dir) in message and f"pid {os.getpid()}" in message and "--wait" in message
    assert store.count() == 0
    release.set()
    holder.join(10)

    held.clear()
    release.clear()
    holder = threading.Thread(target=hold, args=(1.5,), daemon=True)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    report = sync(settings, shared_embedder, store, wait=60, show_progress=False)
    assert time.monotonic() - started >= 1.0  # it queued behind the holder
    assert report.added == [CEA_MD]
    holder.join(10)


def test_a_sync_in_another_process_holds_the_lock(make_settings, shared_embedder, open_store):
    settings = make_settings()
    settings.corpus_dir.mkdir()
    code = textwrap.dedent("""
        import sys, time
        from assistant.settings import Settings
        from assistant.sync import sync_lock
        with sync_lock(Settings()):
            print("HELD", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=test_env(settings), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HELD"
        store = open_store(settings, shared_embedder.model_id)
        with pytest.raises(SyncBusy, match=rf"pid {proc.pid}"):
            sync(settings, shared_embedder, store, show_progress=False)
    finally:
        proc.kill()
        proc.wait(10)
    # a killed holder leaves no stale lock behind
    report = sync(settings, shared_embedder, open_store(settings, shared_embedder.model_id), show_progress=False)
    assert not report.partial


# --- the model the index was built with -----------------------------------------------------------------------------


def test_opening_an_index_with_another_model_says_rebuild(make_settings, corpus_mirror, shared_embedder, open_store):
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    store = open_store(settings, shared_embedder.model_id)
    sync(settings, shared_embedder, store, show_progress=False)
    close_store(store)

    with pytest.raises(IndexModelMismatch) as caught:
        IndexStore(settings, "another-model@0123456789")
    message = str(caught.value)
    assert "--rebuild" in message and shared_embedder.model_id in message and "another-model@0123456789" in message

    rebuilt = open_store(settings, "another-model@0123456789", rebuild=True)
    assert rebuilt.count() == 0 and rebuilt.documents() == {}
    report = sync(settings, shared_embedder, rebuilt, show_progress=False)
    assert report.added == [CEA_MD]
    assert open_store(settings, "another-model@0123456789").meta()["model_id"] == "another-model@0123456789"
    with pytest.raises(IndexModelMismatch):
        IndexStore(settings, shared_embedder.model_id)


# --- crash safety ---------------------------------------------------------------------------------------------------

DRIVER = textwrap.dedent('''
    """Run a real sync; with CRASH_AT=method:N, SIGKILL this process right after the N-th call of that store method."""
    import json, os, signal, sys

    import assistant.store as store_module
    from assistant.pipeline import Assistant
    from assistant.settings import Settings

    crash_at = os.environ.get("CRASH_AT", "")
    counts = {}

    def instrument(name):
        original = getattr(store_module.IndexStore, name)

        def wrapper(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            counts[name] = counts.get(name, 0) + 1
            print(f"EVENT {name} {counts[name]}", flush=True)
            if crash_at == f"{name}:{counts[name]}":
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(store_module.IndexStore, name, wrapper)

    for name in ("mark_dirty", "add_passages", "commit_documents", "delete_derived", "forget_document",
                 "bump_revision"):
        instrument(name)

    assistant = Assistant(Settings())
    assistant.store
    assistant.embedder.model
    print("READY", flush=True)
    report = assistant.sync(show_progress=False)
    print("DONE " + json.dumps(report.model_dump()), flush=True)
''')


def run_driver(settings, tmp_path: Path, crash_at: str = "", kill_after: float | None = None) -> tuple[int, list[str]]:
    """Run the driver; returns (exit code, stdout lines). ``kill_after``: SIGKILL that many seconds after READY."""
    script = tmp_path / "sync_driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script)], env=test_env(settings, CRASH_AT=crash_at, ASSISTANT_SYNC_COMMIT_PASSAGES="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("READY") and kill_after is not None:
                timer = threading.Timer(kill_after, lambda: proc.poll() is None and proc.send_signal(signal.SIGKILL))
                timer.start()
        code = proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    if code not in (0, -signal.SIGKILL):
        raise AssertionError(f"driver failed with {code}:\n{stderr[-3000:]}")
    return code, lines


def small_text(topic: str, n: int) -> str:
    return "\n\n".join(f"{topic} note {i}: a plan sponsor reviews {topic} options for participants and documents "
                       f"the fiduciary process in writing, paragraph {i}." for i in range(n))


def crash_corpus(make_settings, corpus_mirror, tmp_path):
    settings = make_settings(tmp_path)
    copy_into(settings.corpus_dir, [CEA_MD, FACT_SHEET_MD], corpus_mirror)
    (settings.corpus_dir / "loans.txt").write_text(small_text("loan", 6), encoding="utf-8")
    (settings.corpus_dir / "fees.txt").write_text(small_text("fee", 6), encoding="utf-8")
    return settings


FRESH_CRASH_POINTS = [
    "mark_dirty:1",  # dirty flag set, nothing written
    "add_passages:1",  # the first document's passages stored, not committed
    "commit_documents:2",  # two documents committed (one per commit: ASSISTANT_SYNC_COMMIT_PASSAGES=1), the second's cleanup not run
    "add_passages:4",  # three committed, the last stored but not committed
    "bump_revision:1",  # everything written, the dirty flag still set
]
FAST_CRASH_POINTS = {"add_passages:1"}  # the others run with -m slow: each is a subprocess that loads the model


@pytest.mark.parametrize("crash_at", [
    pytest.param(point, marks=() if point in FAST_CRASH_POINTS else pytest.mark.slow) for point in FRESH_CRASH_POINTS])
def test_a_sync_killed_at_any_step_leaves_whole_versions(make_settings, corpus_mirror, tmp_path, shared_embedder,
                                                        open_store, crash_at):
    settings = crash_corpus(make_settings, corpus_mirror, tmp_path)
    code, lines = run_driver(settings, tmp_path, crash_at=crash_at)
    assert code == -signal.SIGKILL and lines[-1] == f"EVENT {crash_at.replace(':', ' ')}"

    store = open_store(settings, shared_embedder.model_id)
    committed = int(crash_at.split(":")[1]) if crash_at.startswith("commit") else None
    versions = assert_whole_versions(store, shared_embedder, settings)
    if committed is not None:
        assert len(versions) == committed
    assert store.meta().get("dirty") is True

    # passages the killed sync stored but did not commit: the next sync reuses them instead of embedding again
    stored_early = store.count() - sum(r.passages for r in store.documents().values())
    calls = shared_embedder.calls
    revision = store.revision()
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert_in_sync(settings, store)
    assert report.revision != revision  # readers in other processes refresh their caches
    assert sorted(report.unchanged) == sorted(versions)  # committed documents are not redone
    assert report.embedded == sum(r.passages for d, r in store.documents().items() if d not in versions) - stored_early
    assert stored_early > 0 or not crash_at.startswith("add_passages")
    assert shared_embedder.calls - calls == report.embedded + report.sentences_embedded


def indexed_version(path, settings) -> str:
    """The version a sync gives this file: its bytes and the ingest signature (see Document.version)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashlib.sha256(f"{digest}:{ingest_signature(settings)}".encode()).hexdigest()[:16]


def _edit_corpus_to_v2(settings) -> None:
    md = settings.corpus_dir / CEA_MD
    md.write_text(md.read_text(encoding="utf-8").replace("Executive Summary", "Summary of the paper"), encoding="utf-8")
    (settings.corpus_dir / "loans.txt").write_text(small_text("hardship loan", 7), encoding="utf-8")
    (settings.corpus_dir / "fees.txt").unlink()
    (settings.corpus_dir / "vesting.txt").write_text(small_text("vesting", 3), encoding="utf-8")


UPDATE_CRASH_POINTS = [
    "add_passages:1",  # the first changed document's new version stored, not committed
    "commit_documents:1",  # its new version committed, the old passages not yet deleted
    "delete_derived:2",  # two documents done, the third pending
    "forget_document:1",  # a removed document is out of the registry, its passages still stored
]


@pytest.mark.parametrize("crash_at", [
    pytest.param(point, marks=() if point == "commit_documents:1" else pytest.mark.slow) for point in UPDATE_CRASH_POINTS])
def test_a_sync_killed_mid_update_leaves_each_document_whole_v1_or_v2(make_settings, corpus_mirror, tmp_path,
                                                                      shared_embedder, open_store, crash_at):
    settings = crash_corpus(make_settings, corpus_mirror, tmp_path)
    store = open_store(settings, shared_embedder.model_id)
    sync(settings, shared_embedder, store, show_progress=False)
    v1 = {d: r.version for d, r in store.documents().items()}
    close_store(store)  # the subprocess must see the index as it is on disk

    _edit_corpus_to_v2(settings)
    v2 = {d: indexed_version(p, settings) for d, p in corpus_files(settings).items()}
    code, lines = run_driver(settings, tmp_path, crash_at=crash_at)
    assert code == -signal.SIGKILL

    store = open_store(settings, shared_embedder.model_id)
    seen = assert_whole_versions(store, shared_embedder, settings)
    for doc_id, version in seen.items():
        assert version in (v1.get(doc_id), v2.get(doc_id)), doc_id
    assert set(seen) >= set(v1) - {"fees.txt"}  # nothing that still exists vanished from the registry
    assert any(seen[d] == v2.get(d) != v1.get(d) for d in seen) or crash_at == "add_passages:1"

    revision = store.revision()
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert_in_sync(settings, store)
    assert report.revision != revision
    assert {d: r.version for d, r in store.documents().items()} == v2
    assert "fees.txt" not in store.documents() and not report.partial


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.4, 1.2, 2.5])
def test_a_sync_killed_after_a_delay_is_repaired_by_the_next(make_settings, corpus_mirror, tmp_path,
                                                             shared_embedder, open_store, delay):
    settings = crash_corpus(make_settings, corpus_mirror, tmp_path)
    copy_into(settings.corpus_dir, [EO14330_PDF], corpus_mirror)
    store = open_store(settings, shared_embedder.model_id)
    sync(settings, shared_embedder, store, show_progress=False)
    v1 = {d: r.version for d, r in store.documents().items()}
    close_store(store)
    _edit_corpus_to_v2(settings)
    (settings.corpus_dir / EO14330_PDF).unlink()
    copy_into(settings.corpus_dir / "again", [EO14330_PDF], corpus_mirror)

    code, lines = run_driver(settings, tmp_path, kill_after=delay)
    store = open_store(settings, shared_embedder.model_id)
    seen = assert_whole_versions(store, shared_embedder, settings)
    v2 = {d: indexed_version(p, settings) for d, p in corpus_files(settings).items()}
    for doc_id, version in seen.items():
        assert version in (v1.get(doc_id), v2.get(doc_id)), doc_id
    sync(settings, shared_embedder, store, show_progress=False)
    assert_in_sync(settings, store)


# --- limits, progress, explicit file lists ----------------------------------------------------------------------------


def test_a_document_over_the_passage_limit_is_refused_clearly(make_settings, shared_embedder, open_store):
    settings = make_settings(max_document_passages=3)
    settings.corpus_dir.mkdir(parents=True)
    (settings.corpus_dir / "long.txt").write_text(small_text("loan", 40), encoding="utf-8")
    (settings.corpus_dir / "short.txt").write_text("A short note on vesting schedules.", encoding="utf-8")
    store = open_store(settings, shared_embedder.model_id)
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert report.added == ["short.txt"] and [f.document for f in report.failed] == ["long.txt"]
    reason = report.failed[0].reason
    assert "more than the limit of 3" in reason and "ASSISTANT_MAX_DOCUMENT_PASSAGES" in reason
    assert store.record("long.txt") is None and not store.passages_of("long.txt")


def test_the_progress_bar_reaches_its_total_on_an_update(make_settings, corpus_mirror, shared_embedder, open_store,
                                                         capsys):
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    store = open_store(settings, shared_embedder.model_id)
    sync(settings, shared_embedder, store, show_progress=False)
    md = settings.corpus_dir / CEA_MD
    md.write_text(md.read_text(encoding="utf-8").replace("Executive Summary", "Summary of the paper"), encoding="utf-8")
    capsys.readouterr()
    report = sync(settings, shared_embedder, store, show_progress=True)
    assert report.updated == [CEA_MD] and 0 < report.embedded < report.passages  # most passages reused
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in bar and f"{report.passages}/{report.passages}" in bar


def test_an_explicit_file_list_replaces_the_corpus_listing(make_settings, shared_embedder, open_store, tmp_path):
    settings = make_settings()
    settings.corpus_dir.mkdir(parents=True)
    (settings.corpus_dir / "in-folder.txt").write_text("A note in the corpus folder about plan loans.", encoding="utf-8")
    staged = tmp_path / "staging" / "upload.txt"
    staged.parent.mkdir()
    staged.write_text("A staged upload about hardship withdrawals.", encoding="utf-8")
    store = open_store(settings, shared_embedder.model_id)
    report = sync(settings, shared_embedder, store, show_progress=False, files={"upload.txt": staged})
    assert report.added == ["upload.txt"] and store.record("in-folder.txt") is None
    record = store.record("upload.txt")
    assert record.source == str(staged) and store.document_versions() == {"upload.txt": record.version}
    assert store.document("upload.txt").text.startswith("A staged upload")
