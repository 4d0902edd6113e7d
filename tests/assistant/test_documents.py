"""Corpus changes (assistant/documents.py): staged uploads that a SIGKILL at any point never half-applies, names cut
at a byte budget, colliding names refused, a busy corpus refused after a bounded wait; and the corpus listing's
hardening (links out of the corpus, file names that are not UTF-8) and the sync's progress bar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant import documents
from assistant.documents import CorpusBusy, DuplicateContent, NameTaken, UnreadableDocument, safe_name
from assistant.pipeline import Assistant
from assistant.sources import corpus_files
from tests.conftest import FACT_SHEET_MD, close_store, copy_into, test_env
from tests.helpers import corpus_held

NOTE = "Quokka pension note.\n\nThe Quokka Retirement Fund invests forty percent of its assets in eucalyptus futures.\n"
NOTE_V2 = "Quokka pension note.\n\nThe Quokka Retirement Fund now holds only wattle seed bonds and cash.\n"


@pytest.fixture
def small_corpus(make_settings, corpus_mirror, shared_embedder):
    settings = make_settings()
    copy_into(settings.corpus_dir, [FACT_SHEET_MD], corpus_mirror)
    assistant = Assistant(settings, embedder=shared_embedder)
    assistant.sync(show_progress=False)
    yield assistant
    close_store(assistant.store)


def assert_consistent(assistant) -> dict[str, str]:
    """The index holds exactly the corpus files' current bytes; nothing staged is left."""
    registry = assistant.store.documents()
    files = corpus_files(assistant.settings)
    assert set(registry) == set(files)
    for doc_id, path in files.items():
        import hashlib

        assert registry[doc_id].content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert assistant.store.count() == sum(r.passages for r in registry.values())
    staging = assistant.settings.index_dir / documents.STAGING
    assert not staging.exists() or not any(staging.iterdir())
    return {d: r.content_hash for d, r in registry.items()}


def test_add_replace_and_remove(small_corpus):
    change = documents.add(small_corpus, "quokka.txt", NOTE.encode())
    assert change.status == "added" and change.record.doc_id == "quokka.txt"
    assert (small_corpus.settings.corpus_dir / "quokka.txt").read_text() == NOTE
    assert documents.add(small_corpus, "quokka.txt", NOTE.encode()).status == "unchanged"
    with pytest.raises(DuplicateContent):
        documents.add(small_corpus, "other.txt", NOTE.encode())
    assert documents.add(small_corpus, "quokka.txt", NOTE_V2.encode()).status == "updated"
    with pytest.raises(UnreadableDocument):
        documents.add(small_corpus, "quokka.txt", b"Quokka \xff\xfe not UTF-8")
    assert (small_corpus.settings.corpus_dir / "quokka.txt").read_text() == NOTE_V2  # the old version stays
    assert_consistent(small_corpus)
    assert "quokka.txt" in documents.remove(small_corpus, "quokka.txt").removed
    assert_consistent(small_corpus)


def test_a_long_non_ascii_name_is_cut_at_a_byte_budget(small_corpus):
    """The attack: 200 Chinese characters are 600 bytes, more than a file name may hold (it answered 500)."""
    name = safe_name("养" * 200 + ".txt")
    assert len(name.encode()) <= documents.NAME_BYTES and name.endswith(".txt") and name.startswith("养养")
    assert safe_name("a" * 300 + ".md").endswith(".md") and len(safe_name("é" * 300).encode()) <= documents.NAME_BYTES
    change = documents.add(small_corpus, "养" * 200 + ".txt", NOTE.encode())
    assert change.status == "added" and change.record.doc_id == name
    assert (small_corpus.settings.corpus_dir / name).is_file()


def test_names_that_clean_to_the_same_string_never_replace_each_other(small_corpus):
    """The attack: "a b.txt" and then "a?b.txt" both become "a_b.txt"; the second used to replace the first."""
    assert documents.add(small_corpus, "plan notes.txt", NOTE.encode()).record.doc_id == "plan_notes.txt"
    with pytest.raises(NameTaken) as info:
        documents.add(small_corpus, "plan?notes.txt", NOTE_V2.encode())
    assert "plan_notes.txt" in str(info.value)
    assert (small_corpus.settings.corpus_dir / "plan_notes.txt").read_text() == NOTE
    # naming the stored document exactly is a deliberate replacement
    assert documents.add(small_corpus, "plan_notes.txt", NOTE_V2.encode()).status == "updated"


def test_a_busy_corpus_is_refused_after_the_wait(small_corpus):
    with corpus_held(small_corpus.settings), pytest.raises(CorpusBusy) as info:
        documents.add(small_corpus, "late.txt", NOTE.encode(), wait=0.3)
    assert info.value.status == 503 and int(info.value.headers["Retry-After"]) > 0
    assert str(small_corpus.settings.index_dir) not in str(info.value) and "pid" not in str(info.value)
    assert not (small_corpus.settings.corpus_dir / "late.txt").exists()


# --- SIGKILL during an upload ---------------------------------------------------------------------------------------

DRIVER = textwrap.dedent('''
    """Upload one file through assistant.documents.add; with CRASH_AT=name:N, SIGKILL this process right after the
    N-th call of that function (store methods, or documents.copy_into_corpus: the move into the corpus)."""
    import os, signal, sys

    import assistant.documents as documents
    import assistant.store as store_module
    from assistant.pipeline import Assistant
    from assistant.settings import Settings

    crash_at = os.environ.get("CRASH_AT", "")
    counts = {}

    def instrument(owner, name):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            counts[name] = counts.get(name, 0) + 1
            print(f"EVENT {name} {counts[name]}", flush=True)
            if crash_at == f"{name}:{counts[name]}":
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(owner, name, wrapper)

    for name in ("mark_dirty", "add_passages", "commit_documents", "delete_derived", "bump_revision"):
        instrument(store_module.IndexStore, name)
    instrument(documents, "copy_into_corpus")

    assistant = Assistant(Settings())
    assistant.store
    assistant.embedder.model
    print("READY", flush=True)
    change = documents.add(assistant, sys.argv[1], open(sys.argv[2], "rb").read())
    print("DONE " + change.status, flush=True)
''')

# (crash point, was the upload committed when the process died)
UPLOAD_CRASH_POINTS = [
    ("mark_dirty:1", False),  # staged, the sync just started
    ("add_passages:1", False),  # the new passages stored, not committed
    ("commit_documents:1", True),  # committed, the older version's passages not yet deleted
    ("bump_revision:1", True),  # the sync's work done, its dirty flag still set
    ("mark_dirty:2", True),  # the sync finished, the file not yet moved into the corpus
    ("copy_into_corpus:1", True),  # moved in, the staging folder not yet removed
]


def run_upload(settings, tmp_path: Path, name: str, data: bytes, crash_at: str) -> int:
    script, payload = tmp_path / "upload_driver.py", tmp_path / "payload.bin"
    script.write_text(DRIVER)
    payload.write_bytes(data)
    proc = subprocess.run([sys.executable, str(script), name, str(payload)], env=test_env(settings, CRASH_AT=crash_at),
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"driver failed with {proc.returncode}:\n{proc.stderr[-3000:]}")
    events = [line for line in proc.stdout.splitlines() if line.startswith("EVENT")]
    if crash_at:
        assert proc.returncode == -signal.SIGKILL and events[-1] == "EVENT " + crash_at.replace(":", " "), events
    return proc.returncode


def _reopen(settings, embedder) -> Assistant:
    return Assistant(settings, embedder=embedder)


@pytest.mark.slow
@pytest.mark.parametrize("crash_at, committed", UPLOAD_CRASH_POINTS)
@pytest.mark.parametrize("replacing", [False, True], ids=["new", "replace"])
def test_an_upload_killed_at_any_point_is_all_or_nothing(make_settings, corpus_mirror, tmp_path, shared_embedder,
                                                         crash_at, committed, replacing):
    settings = make_settings(tmp_path)
    copy_into(settings.corpus_dir, [FACT_SHEET_MD], corpus_mirror)
    if replacing:
        (settings.corpus_dir / "quokka.txt").write_text(NOTE)
    first = _reopen(settings, shared_embedder)
    first.sync(show_progress=False)
    before = assert_consistent(first)
    close_store(first.store)

    run_upload(settings, tmp_path, "quokka.txt", NOTE_V2.encode(), crash_at)

    # What a restarted server does: finish or discard the staged upload, then any later sync.
    after = _reopen(settings, shared_embedder)
    try:
        from api.app import finish_staged_uploads

        finish_staged_uploads(after)
        after.sync(show_progress=False)
        state = assert_consistent(after)
        corpus_text = (settings.corpus_dir / "quokka.txt").read_text() if "quokka.txt" in state else None
        if committed and not replacing:
            assert corpus_text == NOTE_V2  # committed before the kill: finished, not lost
        elif replacing:
            # the old file stays in the corpus until the move; the index follows the corpus
            assert corpus_text in ({NOTE, NOTE_V2} if committed else {NOTE})
        else:
            assert state == before and corpus_text is None  # never added later
    finally:
        close_store(after.store)


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["add_passages:1", "mark_dirty:2"])
def test_a_cli_sync_after_a_killed_upload_never_adds_it_half(make_settings, corpus_mirror, tmp_path, shared_embedder,
                                                             crash_at):
    """Without the server's recovery, a plain sync (the CLI's) also leaves the index matching the corpus."""
    settings = make_settings(tmp_path)
    copy_into(settings.corpus_dir, [FACT_SHEET_MD], corpus_mirror)
    run_upload(settings, tmp_path, "quokka.txt", NOTE.encode(), crash_at)
    after = _reopen(settings, shared_embedder)
    try:
        after.sync(show_progress=False)
        registry = after.store.documents()
        assert set(registry) == {FACT_SHEET_MD} == set(corpus_files(settings))
        assert after.store.count() == sum(r.passages for r in registry.values())
    finally:
        close_store(after.store)


# --- the corpus listing and the sync ---------------------------------------------------------------------------------

def test_a_link_to_a_file_outside_the_corpus_is_refused(make_settings, tmp_path):
    settings = make_settings(tmp_path)
    settings.corpus_dir.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("a private key")
    (settings.corpus_dir / "notes.txt").write_text("inside")
    os.symlink(secret, settings.corpus_dir / "linked.txt")
    os.symlink(settings.corpus_dir / "notes.txt", settings.corpus_dir / "alias.txt")  # a link inside: fine
    assert set(corpus_files(settings)) == {"notes.txt", "alias.txt"}
    allowed = settings.model_copy(update={"follow_corpus_symlinks": True})
    assert "linked.txt" in corpus_files(allowed)


def test_a_file_name_that_is_not_utf8_is_reported_as_such(small_corpus):
    raw = os.fsencode(small_corpus.settings.corpus_dir) + b"/bad\xff-name.txt"
    with open(raw, "wb") as handle:
        handle.write(NOTE.encode())
    report = small_corpus.sync(show_progress=False)
    [failure] = report.failed
    assert "not valid UTF-8" in failure.reason and failure.document == "bad\\xff-name.txt"
    failure.model_dump_json()  # printable: a JSON response can carry it


def test_the_progress_bar_counts_reused_passages(small_corpus, monkeypatch):
    import assistant.sync as sync_module

    totals = []
    real = sync_module.tqdm

    class Recording(real):
        def close(self):
            totals.append((self.n, self.total))
            super().close()

    monkeypatch.setattr(sync_module, "tqdm", Recording)
    path = small_corpus.settings.corpus_dir / FACT_SHEET_MD
    path.write_text(path.read_text() + "\n\nOne new closing paragraph about plan fees.\n")
    report = small_corpus.sync(show_progress=True)
    assert report.updated == [FACT_SHEET_MD] and 0 < report.embedded < report.passages
    assert totals and totals[-1][0] == totals[-1][1]  # 100%


@pytest.mark.slow
def test_the_cli_adds_lists_and_removes_documents(make_settings, corpus_mirror, tmp_path):
    import json

    settings = make_settings(tmp_path)
    copy_into(settings.corpus_dir, [FACT_SHEET_MD], corpus_mirror)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "assistant.cli", "documents", *args], env=test_env(settings),
                              capture_output=True, text=True, timeout=300)

    note = tmp_path / "my quokka note.txt"
    note.write_text(NOTE)
    added = cli("add", str(note))
    assert added.returncode == 0 and "added my_quokka_note.txt" in added.stdout, added.stderr[-2000:]
    twin = tmp_path / "twin.txt"
    twin.write_text(NOTE)
    refused = cli("add", str(twin))
    assert refused.returncode == 1 and "identical content" in refused.stderr
    listed = json.loads(cli("list", "--json").stdout)
    assert {d["id"] for d in listed} == {FACT_SHEET_MD, "my_quokka_note.txt"}
    assert cli("remove", "my_quokka_note.txt").returncode == 0
    assert not (settings.corpus_dir / "my_quokka_note.txt").exists()
    assert cli("remove", "my_quokka_note.txt").returncode == 1
