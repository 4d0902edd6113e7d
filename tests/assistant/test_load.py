"""Step 1, load: txt, md (front matter), html (visible text only) and pdf (pypdf, physical pages), and clear refusals."""

from __future__ import annotations

import hashlib
import logging

import pytest

from assistant.clean import clean
from assistant.load import LoadError, is_supported, load_file
from tests.conftest import CEA_MD, EO14178_PDF, EO14233_PDF, EO14330_PDF, SEED, copy_into, write_bad_inputs


def test_txt_is_one_unpaged_page_with_the_hash_of_its_bytes(corpus_mirror):
    raw = load_file(corpus_mirror / SEED)
    data = (corpus_mirror / SEED).read_bytes()
    assert raw.format == "txt" and raw.paged is False and len(raw.pages) == 1
    assert raw.doc_id == SEED
    assert raw.content_hash == hashlib.sha256(data).hexdigest()
    assert raw.pages[0].startswith("从历史来看 401(k) 养老金引入 Crypto 资产")


def test_txt_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffA plan with a BOM.\n".encode("utf-8"))
    assert load_file(path).pages == ["A plan with a BOM.\n"]


def test_md_front_matter_becomes_metadata_and_stays_citable_as_the_first_paragraphs(corpus_mirror):
    raw = load_file(corpus_mirror / CEA_MD)
    assert raw.format == "md"
    assert raw.metadata["title"] == "Retail Access to Alternative Investments Via Defined Contribution Plans"
    assert raw.metadata["date"] == "2025-08-12"
    assert raw.metadata["source_url"].startswith("https://www.whitehouse.gov/research/2025/08/")
    assert "modified_time" not in raw.metadata and "tags" not in raw.metadata  # only the fields we use
    # the document's own facts (when it was published, its title) stay text, one paragraph per key, no fences
    assert not raw.pages[0].lstrip().startswith("---")
    assert raw.pages[0].startswith("date: '2025-08-12'\n\nmodified_time: 2025-08-12 14:44:06-04:00\n\n")
    assert "\n\npublished_time: 2025-08-12 14:44:05-04:00\n\n" in raw.pages[0]

    document = clean(raw)  # no manifest: the front matter names the document
    assert document.title == raw.metadata["title"]
    assert document.metadata["date"] == "2025-08-12" and "source_url" in document.metadata
    assert "title" not in document.metadata
    assert "<a" not in document.text and "href=" not in document.text  # inline HTML of the page conversion
    assert "Executive Summary" in document.text


def test_md_without_front_matter_takes_its_first_heading_as_title(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Vesting schedules\n\nA participant vests over six years.\n", encoding="utf-8")
    raw = load_file(path)
    assert raw.metadata == {}
    assert clean(raw).title == "Vesting schedules"


def test_html_keeps_visible_text_only(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<!doctype html><html><head><title>Plan Guide</title>"
        "<style>.x { color: red }</style><script>var SECRET_SCRIPT = 1;</script></head>"
        "<body><nav><ul><li>Home</li><li>About</li></ul></nav>"
        "<h1>Alternative assets</h1><p>Defined contribution plans may hold <b>private equity</b>.</p>"
        "<aside>SIDEBAR_TEASER</aside><form>SEARCH_FORM</form>"
        "<div>Participants bear the risk.</div><noscript>Enable JavaScript</noscript><footer>SITE_FOOTER</footer>"
        "<script type='application/ld+json'>{\"hidden\": true}</script>"
        "<template><p>TEMPLATE_TEXT</p></template></body></html>",
        encoding="utf-8",
    )
    raw = load_file(path)
    text = raw.pages[0]
    assert raw.format == "html" and raw.metadata["title"] == "Plan Guide"
    for hidden in ("SECRET_SCRIPT", "color: red", "hidden", "Enable JavaScript", "TEMPLATE_TEXT", "Home", "SIDEBAR_TEASER",
                   "SEARCH_FORM", "SITE_FOOTER"):  # code, and the page chrome HTML5 marks as such
        assert hidden not in text
    assert "Defined contribution plans may hold private equity." in text  # inline tags do not split words
    document = clean(raw)
    assert document.title == "Plan Guide"
    lines = document.text.split("\n")
    assert "Alternative assets" in lines and "Participants bear the risk." in lines  # blocks stay separate lines


@pytest.mark.parametrize("name, pages", [(EO14330_PDF, 3), (EO14233_PDF, None), (EO14178_PDF, None)])
def test_pdf_pages_are_physical_and_one_based(corpus_mirror, name, pages):
    raw = load_file(corpus_mirror / name)
    assert raw.format == "pdf" and raw.paged is True
    if pages:
        assert len(raw.pages) == pages
    document = clean(raw)
    assert [span.page for span in document.pages] == list(range(1, len(raw.pages) + 1))
    previous_end = -1
    for span in document.pages:
        assert span.start > previous_end and span.end >= span.start
        previous_end = span.end
    assert document.pages[-1].end == len(document.text)


def test_pdf_page_spans_point_at_each_page_text(corpus_mirror):
    document = clean(load_file(corpus_mirror / EO14330_PDF))
    page = {span.page: document.text[span.start:span.end] for span in document.pages}
    assert "By the authority vested in me" in page[1]
    assert "Within 180 days of the date of this order" in page[2]
    assert "Within 180 days" not in page[1]
    assert document.page_at(document.text.index("Within 180 days")) == 2


def test_pdf_font_warnings_are_not_printed(corpus_mirror, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    for name in (EO14330_PDF, EO14233_PDF, EO14178_PDF):
        raw = load_file(corpus_mirror / name)
        assert any(page.strip() for page in raw.pages)
    out, err = capfd.readouterr()
    assert "fontTools" not in out + err
    assert not [r for r in caplog.records if "fontTools" in r.getMessage()]
    assert not [r for r in caplog.records if r.name.startswith("pypdf") and r.levelno >= logging.WARNING]


def test_pdf_with_an_owner_password_only_still_loads(tmp_path, corpus_mirror):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(corpus_mirror / EO14330_PDF).pages[0])
    writer.encrypt("", owner_password="owner-only")  # restricts permissions; anyone may read it
    path = tmp_path / "permissions.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    raw = load_file(path)
    assert "Democratizing Access to Alternative Assets" in raw.pages[0]


def test_unreadable_files_are_refused_with_a_reason(tmp_path, corpus_mirror):
    expected = write_bad_inputs(tmp_path, corpus_mirror)
    for name, fragment in expected.items():
        with pytest.raises(LoadError) as caught:
            load_file(tmp_path / name)
        assert fragment in str(caught.value), (name, str(caught.value))


def test_latin1_reason_names_the_byte_and_the_fix(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Café".encode("latin-1"))
    with pytest.raises(LoadError, match=r"invalid byte 0xe9 at offset 3.*save it as UTF-8"):
        load_file(path)


def test_binary_bytes_named_txt_are_refused(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(b"abc\x00def\x00")
    with pytest.raises(LoadError, match="NUL"):
        load_file(path)


def test_markup_only_html_is_refused(tmp_path):
    path = tmp_path / "blank.html"
    path.write_text("<html><head><script>x()</script></head><body>   </body></html>", encoding="utf-8")
    with pytest.raises(LoadError, match="no text"):
        load_file(path)


def test_unsupported_types(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    assert not is_supported(path)
    assert is_supported(tmp_path / "A.PDF") and is_supported(tmp_path / "b.markdown") and is_supported(tmp_path / "c.htm")
    with pytest.raises(LoadError, match=r"unsupported file type \.xlsx"):
        load_file(path)


def test_doc_id_can_be_given(tmp_path, corpus_mirror):
    copy_into(tmp_path / "sub", [CEA_MD], corpus_mirror)
    raw = load_file(tmp_path / "sub" / CEA_MD, doc_id=f"sub/{CEA_MD}")
    assert raw.doc_id == f"sub/{CEA_MD}"


def test_a_folded_front_matter_value_stays_one_paragraph(tmp_path):
    path = tmp_path / "sheet.md"
    path.write_text("---\ntitle: 'Fact Sheet: A Long\n  Title'\ndate: '2025-08-07'\n---\nBody text.\n", encoding="utf-8")
    raw = load_file(path)
    assert raw.metadata["title"] == "Fact Sheet: A Long Title"
    assert raw.pages[0] == "title: 'Fact Sheet: A Long\n  Title'\n\ndate: '2025-08-07'\n\nBody text.\n"
