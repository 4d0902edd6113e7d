"""The sentence index: exact sentence offsets (en + zh), rows written, reused, deleted and swept with their document.

Real Chroma and the small MiniLM model; the corpus is one White House summary (Markdown) plus a short text.
"""

from __future__ import annotations

import numpy as np
import pytest

from assistant import sentences as sentences_module
from assistant.sentences import RowCache, SentenceIndex, sentence_spans, sentences_of, write_sentences
from assistant.sync import sync
from tests.conftest import CEA_MD, SEED, copy_into

# --- sentence_spans ---------------------------------------------------------------------------------------------------


def pieces(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def test_english_sentences_keep_abbreviations_inside():
    text = "See Sec. 3 of the order. It amends 29 U.S.C. 1104 so plans may hold more! Mr. Smith agreed on Aug. 7, 2025."
    assert pieces(text) == ["See Sec. 3 of the order.", "It amends 29 U.S.C. 1104 so plans may hold more!",
                            "Mr. Smith agreed on Aug. 7, 2025."]


def test_chinese_sentences_end_at_chinese_marks_and_keep_their_closing_quotes():
    text = "他说:“这是转变。”然后离开了！真的吗？是的；其他州跟进"
    assert pieces(text) == ["他说:“这是转变。”", "然后离开了！", "真的吗？", "是的；", "其他州跟进"]


def test_decimal_points_and_versions_do_not_end_sentences():
    text = "Assets rose 3.5 percent in 2023.The next line.\nA heading\n\n  Indented sentence.  "
    # "2023.The" has no space after the stop: a typo is kept inside one sentence rather than guessed at
    assert pieces(text) == ["Assets rose 3.5 percent in 2023.The next line.", "A heading", "Indented sentence."]


def test_a_sentence_does_not_end_inside_brackets_that_close_on_its_line():
    text = ("THE WHITE HOUSE, August 7, 2025.\n[FR Doc. 2025–15340 Filed 8–11–25; 11:15 am] Billing code 4510–FN–P\n"
            "It applies (see Sec. 3. of the order). Next one.\n"
            "A stray (bracket. It ends nothing; so both end. (Closed on the next line;\nit is not.)\n"
            "（注：括号里的话；还有。）然后继续。")
    assert pieces(text) == ["THE WHITE HOUSE, August 7, 2025.",
                            "[FR Doc. 2025–15340 Filed 8–11–25; 11:15 am] Billing code 4510–FN–P",
                            "It applies (see Sec. 3. of the order).", "Next one.",
                            "A stray (bracket.", "It ends nothing;", "so both end.", "(Closed on the next line;",
                            "it is not.)", "（注：括号里的话；还有。）", "然后继续。"]


def test_a_section_number_and_run_in_title_head_the_sentence_after_them():
    text = ("Sec. 2. Policy. It is the policy of the United States to establish a reserve. It is further the policy.\n"
            "Sec. 3. Revocation of Executive Order 14067.\nSection 1. Purpose. Many Americans cannot. Policy. Two.")
    assert pieces(text) == ["Sec. 2. Policy. It is the policy of the United States to establish a reserve.",
                            "It is further the policy.", "Sec. 3. Revocation of Executive Order 14067.",
                            "Section 1. Purpose. Many Americans cannot.", "Policy.", "Two."]


def test_offsets_are_exact_and_trimmed():
    text = "  One.  Two?\n\n三。 "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["One.", "Two?", "三。"]
    assert all(text[s:e] == text[s:e].strip() for s, e in spans)


# --- the index --------------------------------------------------------------------------------------------------------


@pytest.fixture
def indexed(make_settings, corpus_mirror, shared_embedder, open_store):
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    (settings.corpus_dir / "notes.txt").write_text(
        "Pension history notes.\n\nIn 1950 New York let pension funds hold up to 35% in stocks. "
        "Other states followed later.", encoding="utf-8")
    store = open_store(settings, shared_embedder.model_id)
    calls = shared_embedder.calls
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert not report.failed
    return settings, store, report, shared_embedder.calls - calls


def all_rows(store) -> list[tuple[str, dict, str]]:
    got = store.sentences.collection.get(include=["metadatas"])
    hits = [sentences_module._hit(sid, None, meta) for sid, meta in zip(got["ids"], got["metadatas"])]
    return [(h.sentence_id, {"document": h.document, "start": h.start, "end": h.end, "version": h.version}, h.text)
            for h in hits]


def test_sync_stores_every_sentence_with_exact_offsets_and_its_version(indexed):
    settings, store, report, calls = indexed
    rows = all_rows(store)
    records = store.documents()
    assert report.sentences_embedded == len(rows) > report.passages
    assert calls == report.embedded + report.sentences_embedded
    for _, meta, text in rows:
        document = store.document(meta["document"])
        assert document.text[meta["start"]:meta["end"]] == text
        assert meta["version"] == records[meta["document"]].version
    # every passage's sentences are there, in order
    passages = list(store.iter_passages({d: r.version for d, r in records.items()}))
    expected = sentences_of(passages)
    assert sorted(r.sentence_id for r in expected) == sorted(sid for sid, _, _ in rows)


def test_a_no_op_sync_embeds_nothing(indexed, shared_embedder):
    settings, store, _, _ = indexed
    before = store.sentences.count()
    calls = shared_embedder.calls
    again = sync(settings, shared_embedder, store, show_progress=False)
    assert again.embedded == 0 and again.sentences_embedded == 0 and shared_embedder.calls == calls
    assert store.sentences.count() == before


def test_an_edit_re_embeds_only_changed_sentences_and_removal_deletes_them(indexed, shared_embedder):
    settings, store, _, _ = indexed
    old_version = store.documents()["notes.txt"].version
    path = settings.corpus_dir / "notes.txt"
    path.write_text(path.read_text().replace("Other states followed later.", "Other states followed in the 1960s."))
    calls = shared_embedder.calls
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert report.updated == ["notes.txt"]
    assert report.sentences_embedded == 1  # the two unchanged sentences reuse their stored vectors
    assert shared_embedder.calls - calls == report.embedded + report.sentences_embedded
    assert not store.sentences.collection.get(where={"version": old_version}, include=[])["ids"]
    texts = {text for _, meta, text in all_rows(store) if meta["document"] == "notes.txt"}
    assert "Other states followed in the 1960s." in texts and "Other states followed later." not in texts

    path.unlink()
    sync(settings, shared_embedder, store, show_progress=False)
    assert not store.sentences.collection.get(where={"document": "notes.txt"}, include=[])["ids"]
    assert store.sentences.count() > 0  # the other document keeps its sentences


def test_query_and_for_passages_return_sentence_hits_with_vectors(indexed, shared_embedder):
    _, store, _, _ = indexed
    vector = shared_embedder.embed_queries(["When did New York let pension funds buy stocks?"])[0]
    hits = store.sentences.query(vector, 3)
    assert hits[0].text == "In 1950 New York let pension funds hold up to 35% in stocks."
    assert hits[0].score == pytest.approx(float(np.dot(vector, store.sentences.for_passages([hits[0].chunk_id])[1][1])),
                                          abs=1e-3)
    rows = store.sentences.for_passages([hits[0].chunk_id])
    assert [r.position for r, _ in rows] == list(range(len(rows)))
    assert all(v.shape == vector.shape for _, v in rows)
    assert store.sentences.query(vector, 3, where={"document": CEA_MD})[0].document == CEA_MD


def test_a_passage_read_once_is_served_from_memory_in_passage_order(indexed, shared_embedder, monkeypatch):
    _, store, _, _ = indexed
    chunk_ids = [p.chunk_id for p in store.iter_passages()][:3]
    first = store.sentences.for_passages(chunk_ids)
    reads = []
    original = store.sentences.collection.get
    monkeypatch.setattr(store.sentences.collection, "get", lambda *a, **k: reads.append(k) or original(*a, **k))
    again = store.sentences.for_passages(list(reversed(chunk_ids)))
    assert not reads
    assert [r.sentence_id for r, _ in again] == [r.sentence_id for cid in reversed(chunk_ids)
                                                 for r, _ in first if r.chunk_id == cid]
    assert store.sentences.for_passages([chunk_ids[0], "no-such-passage"]) == [
        (r, v) for r, v in first if r.chunk_id == chunk_ids[0]]
    assert len(reads) == 1  # only the unknown id was asked for


def test_queries_ask_for_more_rows_than_are_held_or_none(make_settings, open_store, shared_embedder):
    store = open_store(make_settings(), shared_embedder.model_id)
    vector = shared_embedder.embed_queries(["pensions"])[0]
    assert store.sentences.query(vector, 50) == [] and store.query(vector, 50) == []
    store.sentences.collection.upsert(ids=["s"], embeddings=[vector], metadatas=[
        {"document": "d", "version": "v", "chunk_id": "c", "title": "", "start": 0, "end": 1, "position": 0}])
    assert [h.sentence_id for h in store.sentences.query(vector, 50)] == ["s"]


def test_row_cache_reads_only_what_it_lacks_and_forgets_the_least_recently_used():
    cache: RowCache[str, int] = RowCache(size=2)
    asked: list[list[str]] = []

    def read(ids):
        asked.append(ids)
        return {i: len(i) for i in ids if i != "gone"}

    assert cache.get_many(["a", "bb", "gone"], read) == {"a": 1, "bb": 2}
    assert cache.get_many(["bb", "a"], read) == {"bb": 2, "a": 1} and asked == [["a", "bb", "gone"]]
    cache.get_many(["ccc"], read)  # "a" was used after "bb": "bb" goes
    assert asked[-1] == ["ccc"]
    cache.get_many(["a", "ccc"], read)
    assert asked[-1] == ["ccc"]
    cache.get_many(["bb"], read)
    assert asked[-1] == ["bb"]
    cache.clear()
    cache.get_many(["bb"], read)
    assert len(asked) == 4


def test_paged_reads_delete_and_sweep_across_pages(indexed, shared_embedder, monkeypatch):
    """Reads go a page at a time (Chroma fails one get above 32,766 rows): a tiny page must give the same results."""
    _, store, _, _ = indexed
    monkeypatch.setattr(sentences_module, "PAGE", 2)
    records = store.documents()
    vectors = store.sentences.stored_vectors(CEA_MD)
    assert len(vectors) == len(store.sentences.collection.get(where={"document": CEA_MD}, include=[])["ids"]) > 2

    # an interrupted sync leaves rows of an unregistered version: the sweep removes exactly those
    passages = list(store.iter_passages({d: r.version for d, r in records.items()}))
    stale = [p.model_copy(update={"version": "stale", "chunk_id": p.chunk_id + "x"}) for p in passages
             if p.document == CEA_MD]
    written = write_sentences(store.sentences, shared_embedder, stale, reuse=True)
    assert written == 0  # same inputs: vectors reused
    kept = store.sentences.count() - len(sentences_of(stale))
    assert store.sentences.sweep({d: r.version for d, r in records.items()}) == len(sentences_of(stale))
    assert store.sentences.count() == kept
    assert store.sentences.delete(CEA_MD) == len(vectors) and not store.sentences.stored_vectors(CEA_MD)


def test_a_new_model_starts_an_empty_sentence_collection(make_settings, open_store):
    settings = make_settings()
    store = open_store(settings, "model-a@1")
    store.sentences.collection.upsert(ids=["x"], embeddings=[[1.0, 0.0]], documents=["x"],
                                      metadatas=[{"document": "d", "version": "v"}])
    other = SentenceIndex(store.client, settings, "model-b@2")
    assert other.count() == 0


def test_add_refuses_vectors_that_do_not_match_the_sentences(indexed):
    _, store, _, _ = indexed
    passages = list(store.iter_passages())[:1]
    with pytest.raises(ValueError, match="sentences but"):
        store.sentences.add(passages, np.zeros((0, 3), np.float32), [])


def test_chinese_seed_article_sentences(corpus_mirror):
    from assistant.clean import clean
    from assistant.load import load_file
    from assistant.split import split

    document = clean(load_file(corpus_mirror / SEED, SEED))
    rows = sentences_of(split(document))
    assert any("1950" in r.text and "35%" in r.text and r.text.endswith("。") for r in rows)
    assert all(document.text[r.start:r.end] == r.text for r in rows)
