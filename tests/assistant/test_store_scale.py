"""Past chromadb 1.5.9's limit of 32,766 rows in one read: an index of more passages than that (built with the
instant stand-in model; Chroma, the sync and the retriever are the real ones) is searched, synced without change,
updated, and recovered after a sync is SIGKILLed half-way. Before the paged reads, each of these failed with
``too many SQL variables``.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap

import pytest

from assistant.retrieve import Retriever
from assistant.sync import sync
from bench.standin import InstantEmbedder
from tests.assistant.test_sync import assert_in_sync, assert_whole_versions
from tests.conftest import test_env

pytestmark = pytest.mark.slow

LIMIT = 32_766
DOCS, PARAGRAPHS = 56, 600  # 33,600 passages: one per paragraph
_WORDS = [f"{a}{b}" for a in ("pen", "ret", "fid", "ann", "con", "ves", "tax", "fun") for b in
          ("sion", "ire", "uciary", "uity", "tract", "ting", "able", "ding", "ure", "ant")]


def paragraph(rng: random.Random, doc: int, i: int, extra: str = "") -> str:
    return f"Marker d{doc}p{i} {extra}" + " ".join(rng.choice(_WORDS) for _ in range(50)) + "."


def write_corpus(corpus_dir) -> None:
    corpus_dir.mkdir(parents=True)
    for doc in range(DOCS):
        rng = random.Random(doc)
        (corpus_dir / f"doc{doc:03d}.txt").write_text(
            "\n\n".join(paragraph(rng, doc, i) for i in range(PARAGRAPHS)), encoding="utf-8")


DRIVER = textwrap.dedent('''
    """A real sync with the stand-in model; SIGKILL right after the N-th registry commit (CRASH_AT=N)."""
    import os, signal

    import assistant.store as store_module
    from assistant.settings import Settings
    from assistant.store import IndexStore
    from assistant.sync import sync
    from bench.standin import InstantEmbedder

    crash_at, commits = int(os.environ["CRASH_AT"]), []
    original = store_module.IndexStore.commit_documents

    def commit_documents(self, *args, **kwargs):
        original(self, *args, **kwargs)
        commits.append(1)
        if len(commits) == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    store_module.IndexStore.commit_documents = commit_documents
    settings = Settings()
    embedder = InstantEmbedder()
    sync(settings, embedder, IndexStore(settings, embedder.model_id), show_progress=False)
''')


def test_an_index_past_chromas_read_limit_searches_syncs_updates_and_recovers(make_settings, tmp_path, open_store):
    settings = make_settings(corpus_manifest=tmp_path / "no-manifest.json", sync_commit_passages=2048)
    write_corpus(settings.corpus_dir)
    embedder = InstantEmbedder()

    # a first sync, killed after its 8th commit (about half the corpus committed, more passages stored)
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.run([sys.executable, str(script)], env=test_env(settings, CRASH_AT="8",
                                                                      ASSISTANT_SYNC_COMMIT_PASSAGES="2048"),
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    store = open_store(settings, embedder.model_id)
    committed = assert_whole_versions(store)
    assert 0 < len(committed) < DOCS and store.meta().get("dirty") is True
    stored_early = store.count() - sum(r.passages for r in store.documents().values())

    # the next sync finishes it: nothing committed is redone, stored passages are reused, orphans swept (paged)
    report = sync(settings, embedder, store, show_progress=False)
    assert not report.failed and sorted(report.unchanged) == sorted(committed)
    assert report.passages == store.count() == DOCS * PARAGRAPHS > LIMIT
    assert report.embedded == DOCS * PARAGRAPHS - sum(store.record(d).passages for d in committed) - stored_early
    assert_in_sync(settings, store)
    assert len(store.document_versions()) == DOCS

    # search, filtered and not: the registered passage, at offsets that fit the stored text
    retriever = Retriever(settings, embedder, store)
    rng = random.Random(41)
    target = paragraph(rng, 41, 0)
    for documents in (None, ["doc041.txt"]):
        hits = retriever.search(target, k=3, documents=documents)
        assert hits and hits[0].document == "doc041.txt" and hits[0].text.startswith("Marker d41p0 ")
        assert store.document("doc041.txt").text[hits[0].start:hits[0].end] == hits[0].text
    assert store.idf(["d41p0"])["d41p0"] > store.idf(["pension"])["pension"] >= 0

    # a no-op sync reads the registry (paged) and embeds nothing
    calls = embedder.calls
    noop = sync(settings, embedder, store, show_progress=False)
    assert noop.embedded == 0 and embedder.calls == calls and len(noop.unchanged) == DOCS
    assert noop.revision == report.revision

    # one document updated: only its changed passage is embedded, readers see the new text at once
    path = settings.corpus_dir / "doc007.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("Marker d7p3 ", "Marker d7p3 zebra quokka "),
                    encoding="utf-8")
    update = sync(settings, embedder, store, show_progress=False)
    assert update.updated == ["doc007.txt"] and update.embedded == 1
    changed = next(p for p in store.passages_of("doc007.txt") if "zebra quokka" in p.text)
    hits = retriever.search(changed.text, k=1)
    assert hits and hits[0].chunk_id == changed.chunk_id
    assert_in_sync(settings, store)
