"""GET /documents/{id}/view (cited spans in their place, paging) and GET /documents/{id}/file (the stored original),
and the url / file_url / heading that every citation of /chat carries, over a real MiniLM index of the EO 14330
PDF, 26 U.S.C. 401(k) (Markdown with headings) and the Chinese seed article."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.api.conftest import api_settings, indexed_assistant
from tests.conftest import EO14330_PDF, MANIFEST, SEED

USC_MD = "uscode_title26_sec401k-cash-or-deferred-arrangements_sec401m-matching-contributions.md"

QUESTION = "What does the executive order direct the Secretary of Labor to do?"  # three quotes of the PDF
QUESTION_ZH = "401(k) 计划是哪一年设立的？"


@pytest.fixture(scope="module")
def view_assistant(tmp_path_factory, minilm_path, corpus_mirror, shared_embedder):
    # Quotes at every confidence: these tests check how cited spans are shown, not when the answer model (fit for
    # EmbeddingGemma) abstains, which with MiniLM is on most questions.
    settings = api_settings(tmp_path_factory.mktemp("api-view"), minilm_path, answer_threshold=0.0,
                            extra_sentence_ratio=0.0)
    return indexed_assistant(settings, shared_embedder, [EO14330_PDF, USC_MD, SEED], corpus_mirror)


@pytest.fixture(scope="module")
def api(make_client, view_assistant):
    return make_client(view_assistant)


@pytest.fixture(scope="module")
def answer(api) -> dict:
    response = api.post("/chat", json={"message": QUESTION, "history": []})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["grounded"] and len(body["citations"]) >= 2, body
    return body


def _view_path(doc_id: str) -> str:
    return f"/documents/{quote(doc_id, safe='')}/view"


def _marked(view: dict, index: int) -> str:
    span = view["spans"][index]
    return view["text"][span["view_start"]:span["view_end"]]


def test_citations_carry_the_official_url_the_file_at_its_page_and_the_heading(api, answer):
    manifest = {s["file"]: s["url"] for s in json.loads(MANIFEST.read_text())["sources"]}
    for c in answer["citations"]:
        assert c["document"] == EO14330_PDF
        assert c["url"] == manifest[EO14330_PDF]
        assert c["page"] and c["file_url"] == f"/documents/{EO14330_PDF}/file#page={c['page']}"
        assert "heading" in c
    # a quote of the Markdown summary names the heading it sits under
    usc = api.post("/chat", json={"message": "What is a qualified cash or deferred arrangement?", "history": [],
                                  "filters": {"documents": [USC_MD]}}).json()
    cited = [c for c in usc["citations"] if c["document"] == USC_MD]
    assert cited and all(c["heading"] for c in cited), usc["citations"]
    assert all(c["file_url"] == f"/documents/{USC_MD}/file" for c in cited)


def test_view_marks_the_cited_span_with_its_page_and_context(api, answer, view_assistant):
    citation = answer["citations"][0]
    response = api.get(_view_path(citation["document"]), params={"start": citation["start"], "end": citation["end"]})
    assert response.status_code == 200, response.text
    view = response.json()
    document = view_assistant.document(EO14330_PDF)
    assert view["text"] == document.text[view["start"]:view["end"]]
    assert _marked(view, 0) == citation["quote"] == view["spans"][0]["quote"]
    assert view["start"] < citation["start"] and view["end"] > citation["end"]  # text before and after it
    assert 1500 <= len(view["text"]) <= 3000 * 1.5
    assert view["focus"] == 0 and view["part"] is None
    assert view["spans"][0]["page"] == citation["page"] and citation["page"] in view["spans"][0]["pages"]
    assert citation["page"] in [p["page"] for p in view["pages"]]
    for page in view["pages"]:  # page offsets are relative to the returned text
        span = next(p for p in document.pages if p.page == page["page"])
        assert view["text"][page["start"]:page["end"]] == document.text[max(span.start, view["start"]):
                                                                         min(span.end, view["end"])]
    assert view["file_url"] == citation["file_url"] and view["url"] == citation["url"]
    assert view["parts"] >= 3 and (view["previous"] is not None or view["next"] is not None)


def test_view_marks_several_spans_and_centres_the_one_in_focus(api, answer):
    cites = answer["citations"]
    spans = [f"{c['start']}-{c['end']}" for c in cites]
    for focus, citation in enumerate(cites):
        view = api.get(_view_path(EO14330_PDF), params={"span": spans, "focus": focus, "chars": 600}).json()
        assert view["focus"] == focus
        assert _marked(view, focus) == citation["quote"]
        assert view["heading"] == view["spans"][focus]["heading"]
        for other in view["spans"]:  # each span is either marked (maybe clipped) or reported as outside the view
            if other["view_start"] is None:
                assert other["end"] <= view["start"] or other["start"] >= view["end"]
            else:
                assert view["text"][other["view_start"]:other["view_end"]] in other["quote"]
    far_apart = max(c["start"] for c in cites) - min(c["end"] for c in cites) > 600
    if far_apart:  # with a small window, the spans cannot all be in one view
        views = [api.get(_view_path(EO14330_PDF), params={"span": spans, "focus": i, "chars": 600}).json()
                 for i in range(len(cites))]
        assert any(s["view_start"] is None for v in views for s in v["spans"])


def test_parts_tile_the_whole_document_without_gaps(api, view_assistant):
    text = view_assistant.document(EO14330_PDF).text
    pieces, part, seen = [], 0, []
    while part is not None:
        view = api.get(_view_path(EO14330_PDF), params={"part": part, "chars": 1000}).json()
        assert view["part"] == part and view["previous"] == (part - 1 if part else None)
        assert view["focus"] is None and view["spans"] == []
        pieces.append(view["text"])
        seen.append(view["parts"])
        part = view["next"]
    assert "".join(pieces) == text
    assert len(pieces) == seen[0] and len(set(seen)) == 1
    assert all(len(p) <= 1000 + 250 + 1 for p in pieces)
    assert all(p.endswith("\n") or p.endswith(" ") for p in pieces[:-1])  # cut at line breaks or spaces
    # the centred view's neighbours are parts that reach the text just outside it
    middle = len(text) // 2
    view = api.get(_view_path(EO14330_PDF), params={"start": middle, "end": middle + 20, "chars": 1000}).json()
    before = api.get(_view_path(EO14330_PDF), params={"part": view["previous"], "chars": 1000}).json()
    after = api.get(_view_path(EO14330_PDF), params={"part": view["next"], "chars": 1000}).json()
    assert before["start"] < view["start"] <= before["end"] and after["start"] <= view["end"] < after["end"]


def test_view_of_a_chinese_quote(api, view_assistant):
    # kept to the Chinese article: this checks the view of a Chinese quote, not MiniLM's cross-language retrieval
    body = api.post("/chat", json={"message": QUESTION_ZH, "history": [], "filters": {"documents": [SEED]}}).json()
    cited = [c for c in body["citations"] if c["document"] == SEED]
    assert cited, body
    citation = cited[0]
    view = api.get(_view_path(SEED), params={"start": citation["start"], "end": citation["end"]}).json()
    assert view["language"] == "zh" and view["pages"] == [] and view["spans"][0]["page"] is None
    assert _marked(view, 0) == citation["quote"]
    assert view["file_url"] == citation["file_url"] == f"/documents/{SEED}/file"


@pytest.mark.parametrize("params, kind", [
    ({"start": 10, "end": 10}, "invalid_span"),
    ({"start": 20, "end": 10}, "invalid_span"),
    ({"start": 0, "end": 10_000_000}, "invalid_span"),
    ({"start": 5}, "invalid_span"),
    ({"span": "12"}, "invalid_span"),
    ({"span": "a-b"}, "invalid_span"),
    ({"span": ["1-2"] * 21}, "invalid_span"),
    ({"start": -1, "end": 5}, "validation_error"),
    ({"chars": 10}, "validation_error"),
    ({"part": 10_000}, "invalid_part"),
    ({"start": 0, "end": 5, "focus": 3}, "invalid_focus"),
])
def test_bad_offsets_are_422(api, params, kind):
    response = api.get(_view_path(EO14330_PDF), params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == kind


@pytest.mark.parametrize("path", [_view_path("no-such.pdf"), "/documents/no-such.pdf/file",
                                  "/documents/..%2F..%2F..%2Fetc%2Fpasswd/file", "/documents/../pyproject.toml/file",
                                  f"/documents/{quote(str(MANIFEST), safe='')}/file"])
def test_unknown_documents_are_404(api, view_assistant, path):
    response = api.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["type"] == "not_found"
    assert set(view_assistant._documents) <= {EO14330_PDF, USC_MD, SEED}  # unknown ids are never cached


def test_file_serves_the_stored_bytes_read_only(api, view_assistant):
    corpus = view_assistant.settings.corpus_dir
    pdf = api.get(f"/documents/{EO14330_PDF}/file")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == (corpus / EO14330_PDF).read_bytes()
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.headers["content-disposition"].startswith("inline")
    md = api.get(f"/documents/{quote(USC_MD)}/file")
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.content == (corpus / USC_MD).read_bytes()
    assert "sandbox" in md.headers["content-security-policy"]  # an uploaded page runs no script on our origin
    assert api.get(f"/documents/{SEED}/file").headers["content-type"] == "text/plain; charset=utf-8"
    for method in ("put", "post", "patch"):
        assert getattr(api, method)(f"/documents/{SEED}/file").status_code == 405
    assert (corpus / SEED).read_bytes()  # untouched


def test_file_gone_from_the_corpus_is_404(api, view_assistant):
    path = view_assistant.settings.corpus_dir / USC_MD
    data = path.read_bytes()
    path.unlink()
    try:
        response = api.get(f"/documents/{USC_MD}/file")
        assert response.status_code == 404 and response.json()["error"]["type"] == "file_missing"
    finally:
        path.write_bytes(data)
    assert api.get(f"/documents/{USC_MD}/file").status_code == 200


def test_view_and_file_follow_the_key_rules_of_the_other_read_endpoints(make_client, view_assistant):
    keyed = make_client(view_assistant, api_key="s3cret")
    listing = keyed.get("/documents").status_code
    assert keyed.get(f"/documents/{EO14330_PDF}/file").status_code == listing
    assert keyed.get(_view_path(EO14330_PDF), params={"part": 0}).status_code == listing
    auth = {"Authorization": "Bearer s3cret"}
    assert keyed.get(f"/documents/{EO14330_PDF}/file", headers=auth).status_code == 200
