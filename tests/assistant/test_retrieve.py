"""Step 6, retrieve: jieba tokens, near-duplicate folding, filters, fused scores, and fresh results after a sync.

A module index (real Chroma, MiniLM) is a copy of the session's ``small_index`` (the Chinese seed article, the
EO 14330 PDF, the CEA summary, the fact sheet) with the White House page of EO 14330 added, a near-duplicate of the
PDF: only that page is embedded. Tests that change an index build their own.
"""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.retrieve import (
    FIT_PATH,
    Retriever,
    fitted_sentence_weight,
    identifier_index,
    identifiers,
    named_documents,
    near_duplicate,
    tokenize,
)
from assistant.settings import Settings
from assistant.store import IndexStore
from assistant.sync import prepare, sync
from tests.conftest import CEA_MD, EO14330_PDF, FACT_SHEET_MD, MANIFEST, SEED, WH_EO_MD, close_store, copy_into

SMALL_INDEX_DOCS = [SEED, EO14330_PDF, CEA_MD, FACT_SHEET_MD]
DOCS = SMALL_INDEX_DOCS + [WH_EO_MD]


@pytest.fixture(scope="module")
def eo_index(tmp_path_factory, small_index, corpus_mirror, shared_embedder):
    base = tmp_path_factory.mktemp("retrieve-index")
    shutil.copytree(small_index.corpus_dir, base / "corpus")
    shutil.copytree(small_index.index_dir, base / "index")  # small_index is closed on disk: a whole copy
    settings = small_index.model_copy(update={"corpus_dir": base / "corpus", "index_dir": base / "index"})
    copy_into(settings.corpus_dir, [WH_EO_MD], corpus_mirror)
    store = IndexStore(settings, shared_embedder.model_id)
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert not report.failed and report.added == [WH_EO_MD] and sorted(report.unchanged) == sorted(SMALL_INDEX_DOCS)
    yield settings, store
    close_store(store)


@pytest.fixture(scope="module")
def retriever(eo_index, shared_embedder):
    settings, store = eo_index
    return Retriever(settings, shared_embedder, store)


# --- tokenize -------------------------------------------------------------------------------------------------------


def test_tokenize_splits_chinese_into_words():
    text = "纽约州允许养老金投资权益资产"
    tokens = tokenize(text)
    assert {"纽约州", "养老金", "投资", "权益", "资产"} <= set(tokens)
    assert any(len(t) >= 2 for t in tokens) and text not in tokens  # words: not single characters, not one blob
    assert len(tokens) >= 5


def test_tokenize_lowercases_english_and_drops_stopwords():
    tokens = tokenize("What SHARE of the Equities did New York allow in 1950?")
    assert tokens == ["share", "equities", "new", "york", "allow", "1950"]
    assert tokenize("the of and is to") == []


def test_tokenize_drops_chinese_stopwords_and_punctuation():
    tokens = tokenize("它允许员工怎样存钱?养老金的比例是多少?")
    assert "怎样" not in tokens and "的" not in tokens and "多少" not in tokens and "是" not in tokens
    assert not any(t in "?,。?" for t in tokens)
    assert {"允许", "员工", "存钱", "养老金", "比例"} <= set(tokens)


def test_tokenize_mixed_text_keeps_latin_terms_and_numbers():
    tokens = tokenize("2025 年,特朗普签署 Executive Order 14330,允许 401(k) 计划投资 Crypto 资产")
    assert {"2025", "executive", "order", "14330", "401", "crypto", "签署", "资产"} <= set(tokens)


def test_tokenize_keeps_percentages_and_decimals():
    tokens = tokenize("New York allowed up to 35% in equities; the yield fell to 1.2%")
    assert "35" in tokens or "35%" in tokens
    assert any(t.startswith("1") and "2" in t for t in tokens) or {"1", "2"} <= set(tokens)


# --- near_duplicate -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eo_passages(corpus_mirror):
    settings = Settings(corpus_manifest=MANIFEST)
    _, pdf = prepare(corpus_mirror / EO14330_PDF, EO14330_PDF, settings)
    _, web = prepare(corpus_mirror / WH_EO_MD, WH_EO_MD, settings)
    _, cea = prepare(corpus_mirror / CEA_MD, CEA_MD, settings)
    return pdf, web, cea


def test_near_duplicate_pdf_and_web_page_of_the_same_order(eo_passages):
    pdf, web, _ = eo_passages
    purpose_pdf = next(p for p in pdf if "Many wealthy Americans" in p.text)
    purpose_web = next(p for p in web if "Many wealthy Americans" in p.text)
    assert purpose_pdf.text != purpose_web.text  # different extraction (layout, markup): not equal strings
    assert near_duplicate(purpose_pdf.text, purpose_web.text)
    # every PDF passage of the order's text has a twin on the web page; the Federal Register head (kept once as the
    # document's own fact: its publication date) is the PDF's alone
    head, body = [p for p in pdf if "Federal Register / Vol." in p.text], [p for p in pdf if "Federal Register / Vol." not in p.text]
    assert len(head) == 1 and not any(near_duplicate(head[0].text, w.text) for w in web)
    assert all(any(near_duplicate(p.text, w.text) for w in web) for p in body)


def test_near_duplicate_rejects_unrelated_passages(eo_passages):
    pdf, web, cea = eo_passages
    assert not any(near_duplicate(p.text, c.text) for p in pdf for c in cea)
    purpose = next(p for p in pdf if "Many wealthy Americans" in p.text)
    provisions = next(p for p in pdf if "shall be implemented consistent with applicable law" in p.text)
    assert not near_duplicate(purpose.text, provisions.text)  # same document, different sections
    assert not near_duplicate("", purpose.text)


# --- search ---------------------------------------------------------------------------------------------------------


def test_hits_quote_the_stored_document_text_at_their_offsets(eo_index, retriever):
    _, store = eo_index
    texts = {doc: store.document(doc).text for doc in DOCS}
    for query in ["Within 180 days the Secretary of Labor shall reexamine guidance",
                  "纽约州 养老金 股票 1950", "retail access to private equity in DC plans"]:
        hits = retriever.search(query, k=5)
        assert hits, query
        for hit in hits:
            assert texts[hit.document][hit.start:hit.end] == hit.text
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_eo_duplicate_appears_once_with_the_other_document_as_alternative(retriever):
    hits = retriever.search("Many wealthy Americans and Government workers can invest in alternative assets", k=5)
    purpose = [h for h in hits if "Many wealthy Americans" in h.text]
    assert len(purpose) == 1
    kept = purpose[0]
    other = WH_EO_MD if kept.document == EO14330_PDF else EO14330_PDF
    assert kept.document in (EO14330_PDF, WH_EO_MD) and kept.alternatives == [other]
    # no two kept hits are near-duplicates of each other across documents
    for i, a in enumerate(hits):
        for b in hits[i + 1:]:
            assert a.document == b.document or not near_duplicate(a.text, b.text)


def test_document_filter_restricts_results(retriever):
    query = "Within 180 days the Secretary of Labor shall reexamine guidance"
    only_web = retriever.search(query, k=5, documents=[WH_EO_MD])
    assert only_web and {h.document for h in only_web} == {WH_EO_MD}
    assert all(h.alternatives == [] for h in only_web)  # its twin was filtered out, so nothing folds
    two = retriever.search(query, k=8, documents=[CEA_MD, SEED])
    assert two and {h.document for h in two} <= {CEA_MD, SEED}


@pytest.mark.parametrize(("text", "expected"), [
    ("who signed EO 14233?", {"14233"}),
    ("第14330号行政令是哪天签署的", {"14330"}),
    ("90 FR 38921", {"38921"}),
    ("ERISA 1104(a)(1)", {"1104"}),
    ("how many plans were there in 1975 and 2023?", set()),  # years
    ("$11,789 or 1,104 plans, 12345.6 or 99.1234%", set()),  # amounts, counts, decimals, shares
])
def test_identifiers_are_long_numbers_that_are_not_years_amounts_or_shares(text, expected):
    assert identifiers(text) == expected


def test_a_question_naming_a_title_s_identifier_names_that_document():
    titles = {"eo": "Executive Order 14330: Democratizing Access (Federal Register, 90 FR 38921)",
              "web": "Democratizing Access (White House text of EO 14330)",
              "tables": "Private Pension Plan Bulletin Historical Tables 1975-2023"}
    read = []

    def read_titles():
        read.append(1)
        return identifier_index(titles)

    assert named_documents("what is a 401(k) plan?", read_titles) == [] and not read  # no number: nothing read
    assert named_documents("when was EO 14330 signed?", read_titles) == ["eo", "web"]
    assert named_documents("what does 90 FR 38921 say?", read_titles) == ["eo"]
    assert named_documents("how many plans were there in 1975?", read_titles) == []  # a year names no document


def test_a_search_naming_a_document_s_identifier_is_kept_to_that_document(retriever, eo_index):
    _, store = eo_index
    assert store.document_titles()[EO14330_PDF].startswith("Executive Order 14330")
    hits = retriever.search("what does order 14330 say about retirement savers?", k=8)
    assert hits and {h.document for h in hits} <= {EO14330_PDF, WH_EO_MD}
    unscoped = retriever.search("what does the order say about retirement savers?", k=8)
    assert {h.document for h in unscoped} - {EO14330_PDF, WH_EO_MD}  # the fact sheet and the CEA summary too
    # a filter the caller gave wins over the one the question names
    assert {h.document for h in retriever.search("order 14330 and savers", k=5, documents=[CEA_MD])} == {CEA_MD}


def test_language_filter_restricts_results(retriever):
    query = "When did New York let pension funds hold stocks?"
    chinese = retriever.search(query, k=5, language="zh")
    assert chinese and all(h.language == "zh" and h.document == SEED for h in chinese)  # the only Chinese text
    # language is per passage: the seed article's scraped English page furniture counts as English
    english = retriever.search("纽约州 养老金 股票", k=5, language="en")
    assert english and all(h.language == "en" for h in english)
    assert not any("纽约" in h.text for h in english)
    both = retriever.search(query, k=5, documents=[EO14330_PDF], language="zh")
    assert both == []


def test_lexical_weight_changes_scores_only_by_the_lexical_term(eo_index, shared_embedder):
    settings, store = eo_index
    query = "Within 180 days the Secretary of Labor shall reexamine guidance on alternative assets"
    settings = settings.model_copy(update={"sentence_weight": 0.0})
    dense = Retriever(settings, shared_embedder, store).search(query, k=6)
    weighted_settings = settings.model_copy(update={"lexical_weight": 0.5})
    fused = Retriever(weighted_settings, shared_embedder, store).search(query, k=6)
    assert all(h.score == pytest.approx(h.dense_score, abs=1e-3) for h in dense)
    assert any(h.lexical_score and h.lexical_score > 0 for h in fused)
    assert max(h.lexical_score for h in fused) == pytest.approx(1.0)  # normalised to the best candidate
    for hit in fused:
        assert hit.score == pytest.approx(hit.dense_score + 0.5 * hit.lexical_score, abs=1e-3)
    dense_by_id = {h.chunk_id: h.dense_score for h in dense}
    shared = [h for h in fused if h.chunk_id in dense_by_id]
    assert shared
    for hit in shared:  # the dense part is the same cosine in both
        assert hit.dense_score == pytest.approx(dense_by_id[hit.chunk_id], abs=2e-3)


def test_a_passage_gains_the_weighted_cosine_of_its_best_near_sentence(eo_index, shared_embedder):
    """Sentence fusion: score = dense cosine + weight x its best sentence's cosine among the query's nearest
    sentences; a passage none of whose sentences is near gains nothing. The default weight is the one fit on dev."""
    settings, store = eo_index
    query = "Within 180 days the Secretary of Labor shall reexamine guidance on alternative assets"
    plain = Retriever(settings.model_copy(update={"sentence_weight": 0.0}), shared_embedder, store).search(query, k=6)
    fused = Retriever(settings.model_copy(update={"sentence_weight": 0.3}), shared_embedder, store).search(query, k=6)
    assert all(h.sentence_score is None for h in plain)
    assert any(h.sentence_score is not None for h in fused)
    for hit in fused:
        assert hit.score == pytest.approx(hit.dense_score + 0.3 * (hit.sentence_score or 0.0), abs=1e-3)
    assert "180 days" in fused[0].text and fused[0].sentence_score > 0.5
    assert Retriever(settings, shared_embedder, store).sentence_weight == fitted_sentence_weight()


def test_the_sentence_weight_fit_file_is_fit_on_dev():
    data = json.loads(FIT_PATH.read_text(encoding="utf-8"))
    metrics = data["metrics"]
    assert metrics["split"] == "dev" and data["sentence_weight"] in {p["weight"] for p in metrics["curve"]}
    chosen = next(p for p in metrics["curve"] if p["weight"] == data["sentence_weight"])
    assert chosen["hit_at_k"] == max(p["hit_at_k"] for p in metrics["curve"])


# --- freshness after a sync -----------------------------------------------------------------------------------------


NEW_SENTENCE = "The zebra clause lets each plan hold quokka bonds worth 777 million."


def test_retrievers_see_a_changed_document_after_sync(make_settings, corpus_mirror, shared_embedder, open_store):
    # lexical_weight > 0: the BM25 cache and its registered versions decide which passages may answer
    settings = make_settings(lexical_weight=0.3)
    copy_into(settings.corpus_dir, [CEA_MD, FACT_SHEET_MD], corpus_mirror)
    store = open_store(settings, shared_embedder.model_id)
    sync(settings, shared_embedder, store, show_progress=False)

    this_worker = Retriever(settings, shared_embedder, store)
    other_worker = Retriever(settings, shared_embedder, open_store(settings, shared_embedder.model_id))
    query = "zebra clause quokka bonds"
    for retriever in (this_worker, other_worker):  # warm both caches on the old revision
        assert not any("quokka" in h.text for h in retriever.search(query, k=5))
    old_revision = this_worker.view().revision
    assert other_worker.view().revision == old_revision

    md = settings.corpus_dir / CEA_MD
    text = md.read_text(encoding="utf-8")
    anchor = "Amidst changes in the composition"
    assert anchor in text
    md.write_text(text.replace(anchor, f"{NEW_SENTENCE} {anchor}"), encoding="utf-8")
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert report.updated == [CEA_MD]

    new_text = store.document(CEA_MD).text
    for retriever in (this_worker, other_worker):
        view = retriever.view()
        assert view.revision == report.revision != old_revision
        assert any("quokka" in p.text for p in retriever.store.passages_of(CEA_MD, view.versions[CEA_MD]))
        hits = retriever.search(query, k=3)
        assert hits[0].document == CEA_MD and "quokka" in hits[0].text
        assert hits[0].lexical_score == pytest.approx(1.0)
        assert new_text[hits[0].start:hits[0].end] == hits[0].text
        # every hit is of the current version: its offsets fit the current text
        for hit in hits:
            assert store.document(hit.document).text[hit.start:hit.end] == hit.text


def test_a_retriever_over_an_empty_index_returns_nothing(make_settings, shared_embedder, open_store):
    settings = make_settings()
    settings.corpus_dir.mkdir(parents=True)
    store = open_store(settings, shared_embedder.model_id)
    assert Retriever(settings, shared_embedder, store).search("anything at all") == []


def test_a_search_after_a_sync_reads_only_its_candidates_versions(make_settings, corpus_mirror, shared_embedder,
                                                                 open_store, monkeypatch):
    """No rebuild on the request path: with the lexical weight at 0 nothing reads the whole registry or corpus."""
    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD], corpus_mirror)
    store = open_store(settings, shared_embedder.model_id)
    sync(settings, shared_embedder, store, show_progress=False)
    retriever = Retriever(settings, shared_embedder, store)
    assert retriever.search("retail access to private equity", k=3)
    copy_into(settings.corpus_dir, [FACT_SHEET_MD], corpus_mirror)
    sync(settings, shared_embedder, store, show_progress=False)

    def whole_read(*args, **kwargs):
        raise AssertionError("a search read the whole registry or corpus")

    for name in ("document_versions", "documents", "iter_passages"):
        monkeypatch.setattr(store, name, whole_read)
    hits = retriever.search("fact sheet alternative assets 401(k)", k=5)
    assert FACT_SHEET_MD in {h.document for h in hits}


def test_a_table_is_read_for_the_top_passages_document_or_the_one_holding_most_passages():
    from assistant.retrieve import table_candidates
    from assistant.schema import SearchHit

    def hits(*docs: str) -> list[SearchHit]:
        return [SearchHit(chunk_id=f"{d}-{i}", document=d, title=d, page=None, start=0, end=1, text="x", score=1.0)
                for i, d in enumerate(docs)]

    assert table_candidates(hits("article", "table", "table", "table", "article")) == ["article", "table"]
    assert table_candidates(hits("article", "article", "article", "table", "table")) == ["article"]
    assert table_candidates(hits("table", "article", "order")) == ["table"]
    assert table_candidates([]) == []
