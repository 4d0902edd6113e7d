"""Step 8, cite: a citation quotes ``document.text[start:end]`` with its page; anything else is never verified."""

from __future__ import annotations

import pytest

from assistant.cite import is_verified, make_citation, verified
from assistant.schema import Citation, Document, PageSpan
from assistant.settings import Settings
from assistant.sync import prepare
from tests.conftest import EO14330_PDF, MANIFEST

PAGE_1 = "Section 1. Purpose. Many wealthy Americans can invest in alternative assets."
PAGE_2 = "Sec. 2. Policy. Within 180 days the Secretary of Labor shall reexamine the guidance."
PAGE_3 = "Sec. 3. General Provisions. Nothing in this order shall be construed to impair the law."


def paged_document() -> Document:
    text = f"{PAGE_1}\n\n{PAGE_2}\n\n{PAGE_3}"
    two = text.index(PAGE_2)
    three = text.index(PAGE_3)
    pages = [PageSpan(page=1, start=0, end=len(PAGE_1)), PageSpan(page=2, start=two, end=two + len(PAGE_2)),
             PageSpan(page=3, start=three, end=len(text))]
    return Document(doc_id="eo.pdf", title="Executive Order", language="en", text=text, pages=pages,
                    content_hash="0" * 64)


def plain_document() -> Document:
    return Document(doc_id="notes.md", title="Notes", language="en", content_hash="1" * 64,
                    text="The fact sheet says more than 90 million Americans participate in DC plans.")


def cite(document: Document, phrase: str, marker: int = 1) -> Citation:
    start = document.text.index(phrase)
    return make_citation(document, marker, start, start + len(phrase))


def test_make_citation_quotes_the_span_with_its_page():
    document = paged_document()
    for phrase, page in [("Many wealthy Americans", 1), ("Within 180 days the Secretary of Labor", 2),
                         ("Nothing in this order", 3)]:
        citation = cite(document, phrase, marker=4)
        assert citation.quote == phrase == document.text[citation.start:citation.end]
        assert citation.page == page
        assert (citation.marker, citation.document, citation.title) == (4, "eo.pdf", "Executive Order")
        assert is_verified(citation, document)


def test_make_citation_without_pages_has_no_page():
    document = plain_document()
    citation = cite(document, "90 million Americans")
    assert citation.page is None and citation.quote == "90 million Americans"
    assert is_verified(citation, document)


def test_make_citation_on_a_real_pdf_names_the_page_the_quote_is_on(corpus_mirror):
    document, _ = prepare(corpus_mirror / EO14330_PDF, EO14330_PDF, Settings(corpus_manifest=MANIFEST))
    assert len(document.pages) >= 3
    citation = cite(document, "(b) Within 180 days of the date of this order, the Secretary of Labor")
    assert citation.page == 2
    assert citation.quote == document.text[citation.start:citation.end]
    assert document.pages[1].start <= citation.start < document.pages[1].end
    first = cite(document, "Section 1. Purpose.")
    assert first.page == 1 and is_verified(first, document)


def test_a_quote_one_character_off_is_not_verified():
    document = paged_document()
    good = cite(document, "Within 180 days the Secretary of Labor")
    assert is_verified(good, document)
    for bad_quote in ["Within 181 days the Secretary of Labor", "within 180 days the Secretary of Labor",
                      "Within 180 days the Secretary of Labo", "Within 180 days the Secretary of Labor."]:
        assert not is_verified(good.model_copy(update={"quote": bad_quote}), document), bad_quote
    # shifted offsets with the same quote: not at its place
    shifted = good.model_copy(update={"start": good.start + 1, "end": good.end + 1})
    assert not is_verified(shifted, document)


@pytest.mark.parametrize("start, end", [(-1, 5), (10, 10_000), (20, 20), (30, 10)])
def test_offsets_out_of_range_or_empty_are_not_verified(start, end):
    document = paged_document()
    quote = document.text[max(start, 0):end] if start >= 0 else document.text[0:end]
    citation = Citation(marker=1, document=document.doc_id, title=document.title, page=1, start=start, end=end,
                        quote=quote)
    assert not is_verified(citation, document)


def test_whitespace_only_quote_and_missing_document_are_not_verified():
    document = paged_document()
    gap = document.text.index("\n\n")
    blank = make_citation(document, 1, gap, gap + 2)
    assert blank.quote == "\n\n" and not is_verified(blank, document)
    assert not is_verified(cite(document, "Many wealthy Americans"), None)


def test_a_citation_of_an_old_version_fails_against_the_edited_text():
    document = paged_document()
    citation = cite(document, "Within 180 days the Secretary of Labor")
    edited = document.model_copy(update={"text": document.text.replace("Section 1.", "Sec. 1.")})
    assert not is_verified(citation, edited)  # the offsets now point at other characters


def test_verified_drops_only_the_bad_citations_and_keeps_order():
    paged, plain = paged_document(), plain_document()
    good_1 = cite(paged, "Many wealthy Americans", 1)
    bad_quote = cite(paged, "Within 180 days", 2).model_copy(update={"quote": "Within 18O days"})
    good_2 = cite(plain, "90 million Americans", 3)
    out_of_range = cite(plain, "DC plans", 4).model_copy(update={"end": 10_000})
    unknown_doc = cite(paged, "Nothing in this order", 5).model_copy(update={"document": "gone.pdf"})
    good_3 = cite(paged, "Nothing in this order", 6)
    documents = {d.doc_id: d for d in (paged, plain)}
    kept = verified([good_1, bad_quote, good_2, out_of_range, unknown_doc, good_3], documents.get)
    assert kept == [good_1, good_2, good_3]
    assert verified([], documents.get) == []


def test_citation_links_the_official_source_the_stored_file_at_its_page_and_its_heading(corpus_mirror):
    document, _ = prepare(corpus_mirror / EO14330_PDF, EO14330_PDF, Settings(corpus_manifest=MANIFEST))
    citation = cite(document, "(b) Within 180 days of the date of this order, the Secretary of Labor")
    assert citation.url == "https://www.govinfo.gov/content/pkg/FR-2025-08-12/pdf/2025-15340.pdf"  # the manifest's
    assert citation.file_url == f"/documents/{EO14330_PDF}/file#page=2"
    assert citation.heading is None  # the PDF's text has no headings

    notes = Document(doc_id="sub dir/notes #1.md", title="Notes", language="en", content_hash="2" * 64,
                     metadata={"source_url": "https://example.org/notes"},
                     text="# Plans\n\nIntro.\n\n## Fees\n\nFees are capped at 1 percent.\n")
    fees = cite(notes, "Fees are capped")
    assert fees.heading == "Plans › Fees" and cite(notes, "Intro.").heading == "Plans"  # the section path
    assert fees.url == "https://example.org/notes"  # front matter source_url
    assert fees.file_url == "/documents/sub%20dir/notes%20%231.md/file"  # no page for a text file; id URL-encoded
    assert make_citation(plain_document(), 1, 0, 3).url is None
