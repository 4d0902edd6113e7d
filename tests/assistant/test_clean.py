"""Step 2, clean: running heads dropped, hyphenation undone, wrapped lines joined (no spaces inside Chinese)."""

from __future__ import annotations

import re

import pytest

from assistant.clean import clean, clean_pdf_pages, clean_text, cut_related_tail, detect_language
from assistant.load import load_file
from assistant.sync import prepare
from tests.conftest import EO14178_PDF, EO14233_PDF, EO14330_PDF, SEED

FR_PDFS = [EO14330_PDF, EO14233_PDF, EO14178_PDF]


@pytest.fixture(scope="module")
def fr_documents(corpus_mirror):
    return {name: clean(load_file(corpus_mirror / name)) for name in FR_PDFS}


def test_hyphenated_line_breaks_are_rejoined_in_the_eo14330_pdf(fr_documents, corpus_mirror):
    raw = load_file(corpus_mirror / EO14330_PDF)
    assert any("poten-\ntial" in re.sub(r"[ \t]+\n", "\n", page) for page in raw.pages)  # as printed
    text = fr_documents[EO14330_PDF].text
    assert "poten-" not in text and "potential" in text
    assert not re.search(r"[a-z]-\n[a-z]", text)


def test_dehyphenation_keeps_words_the_document_writes_with_a_hyphen():
    [text] = clean_pdf_pages(["a plan with a long-term horizon and a long-\nterm view of the poten-\ntial returns."])
    assert "long-term view" in text and "potential returns" in text


@pytest.mark.parametrize("name", FR_PDFS)
def test_running_headers_and_footers_are_dropped_after_their_first_occurrence(fr_documents, name):
    text = fr_documents[name].text
    # the first page's head stays, once, as its own paragraph: it carries the publication date
    heads = re.findall(r"^.*Federal Register\s*/\s*Vol\..*$", text, re.M)
    assert len(heads) == 1 and re.search(r"(January|February|March|August) \d{1,2}, 2025", heads[0])
    assert text.index(heads[0]) < len(text) // 4
    assert "VerDate" not in text
    assert "PROD with" not in text
    assert "Executive Order" in text  # the body is still there


def test_running_lines_repeated_on_most_pages_are_dropped():
    bodies = ["Vesting rules differ by plan.", "Loans are allowed in some plans.", "Fees reduce the returns.",
              "Employers may match deferrals.", "Rollovers keep the tax deferral."]
    pages = [f"ACME Pension Bulletin   page {n}\nSection {n}\n{body}\nConfidential draft {n}"
             for n, body in enumerate(bodies, 1)]
    cleaned = clean_pdf_pages(pages)
    assert "ACME Pension Bulletin page 1" in cleaned[0] and "Confidential draft 1" in cleaned[0]  # first occurrence
    assert all("ACME Pension Bulletin" not in page for page in cleaned[1:])
    assert all("Confidential draft" not in page for page in cleaned[1:])
    assert all(body in page for body, page in zip(bodies, cleaned))


def test_wrapped_chinese_lines_join_without_spaces():
    assert clean_pdf_pages(["第一行的文字被\n折行了。"]) == ["第一行的文字被折行了。"]
    assert clean_pdf_pages(["养老金可以投资于私募股\n权、房地产以及加密资\n产。"]) == ["养老金可以投资于私募股权、房地产以及加密资产。"]
    # a wrap right after or before full-width punctuation is a CJK wrap too
    assert clean_pdf_pages(["引入了更高波动，\n和风险。"]) == ["引入了更高波动，和风险。"]


def test_wrapped_latin_lines_join_with_one_space():
    [text] = clean_pdf_pages(["The plan may\ninvest in private\nequity and real estate."])
    assert text == "The plan may invest in private equity and real estate."


def test_paragraph_breaks_survive_cleaning():
    [text] = clean_pdf_pages(["第一段的内容。\n\n第二段的内容。"])
    assert text == "第一段的内容。\n\n第二段的内容。"
    [text] = clean_pdf_pages(["First paragraph ends here.\n\nSecond paragraph."])
    assert text == "First paragraph ends here.\n\nSecond paragraph."


def test_numbered_blocks_start_new_lines():
    lines = [
        "to the following long line of text that wraps across the printed page and then",
        "ends with a full stop somewhere.",
        "Sec. 2. Definitions. For purposes of this order the following terms apply here:",
        "(a) the term alternative assets means assets that are not publicly traded.",
    ]
    [text] = clean_pdf_pages(["\n".join(lines)])
    assert "\nSec. 2. Definitions." in text
    assert "and then ends with" in text


def test_detect_language():
    assert detect_language("从历史来看 401(k) 养老金引入 Crypto 资产") == "zh"
    assert detect_language("养老金买入加密资产相当于“囤币”。") == "zh"
    assert detect_language("The Secretary of Labor shall reexamine the guidance.") == "en"
    # a Chinese sentence quoting English terms is still Chinese
    assert detect_language("固定收益计划(Defined Benefit Plan)为主,雇主承诺为员工提供退休后稳定的月度养老金。") == "zh"
    assert detect_language("") == "en"


def test_clean_text_of_md_strips_inline_html_and_tidies_whitespace():
    text = clean_text('<a\nhref="x">Retail</a>   Access\r\n\n\n\nDownload\u00a0now', "md")
    assert text == "Retail Access\n\nDownload now"


def test_seed_article_is_chinese_with_its_manifest_title(make_settings, corpus_mirror):
    settings = make_settings()
    document, _ = prepare(corpus_mirror / SEED, SEED, settings)
    assert document.language == "zh"
    assert document.title == "从历史来看 401(k) 养老金引入 Crypto 资产"
    assert document.metadata["date"] == "2025-08-10"


@pytest.mark.parametrize("heading", ["Related Articles", "Leituras Relacionadas", "相关阅读", "## Read more",
                                     "You may also like:", "Artículos relacionados"])
def test_a_web_pages_related_articles_list_is_cut_at_its_heading(heading):
    page = f"Title\n\nThe plan lets workers save.\n\n{heading}\n\nAnother story\n\nTeaser of it.\n\nsiteHá 3h"
    assert cut_related_tail(page) == "Title\n\nThe plan lets workers save."
    assert clean_text(page, "md") == clean_text(page, "txt") == "Title\n\nThe plan lets workers save."


@pytest.mark.parametrize("text", [
    "Related parties\n\nA party in interest includes any fiduciary.",  # a heading that is the document's subject
    "Read more\n\nA book club's guide.",  # the first line is the title, never chrome
    "\n\n  \nRead more\n\nA book club's guide.",  # the first line with text, after blank ones
    "Plans must disclose related fees.\n\nSee the related rule.",  # the words inside sentences
])
def test_text_without_a_related_articles_heading_is_kept_whole(text):
    assert cut_related_tail(text) == text


def test_the_seed_articles_page_chrome_is_not_part_of_the_document(corpus_mirror):
    raw_text = (corpus_mirror / SEED).read_text(encoding="utf-8")
    document = clean(load_file(corpus_mirror / SEED))
    assert "Leituras Relacionadas" in raw_text and "Luo Fuli" in raw_text  # the scraped page's teasers of other stories
    assert "Luo Fuli" not in document.text and "ChatGPT" not in document.text and "Futuros" not in document.text
    assert document.text.endswith("无兜底机制。")  # the article's last sentence stays
    assert "撰文:陈默 cmDeFi" in document.text and "Publicado em 2025-08-10" in document.text  # its own facts too


def test_seed_article_is_detected_chinese_without_a_manifest(corpus_mirror):
    document = clean(load_file(corpus_mirror / SEED))
    assert document.language == "zh"
    assert document.title.startswith("从历史来看")


def test_every_corpus_document_gets_a_title_and_a_language(make_settings, corpus_mirror):
    settings = make_settings()
    names = sorted(p.name for p in corpus_mirror.iterdir() if p.suffix in {".txt", ".md", ".pdf"} and p.name != "SOURCES.md")
    assert len(names) >= 10
    for name in names:
        document, passages = prepare(corpus_mirror / name, name, settings)
        assert document.title.strip() and document.title != name, name
        assert document.language in {"en", "zh"}, name
        assert passages, name
    # without a manifest, titles still come from the file (front matter, PDF metadata or first line)
    for name in names:
        document = clean(load_file(corpus_mirror / name))
        assert document.title.strip() and len(document.title) <= 160, name
        assert document.language == ("zh" if name == SEED else "en"), name


def test_dehyphenation_keeps_the_hyphen_of_a_compound_broken_at_it():
    # both halves are words and the joined form is not: the printed hyphen is the word's own
    [text] = clean_pdf_pages(["the ability to maintain self-\ncustody of digital assets, and its sub-\nsection on "
                              "the Inter-\nnational Monetary Fund's bene-\nficiaries."])
    assert "self-custody" in text
    assert "subsection" in text and "International" in text and "beneficiaries" in text  # joined words, fragments


def test_the_digital_fintech_pdf_keeps_self_custody_as_printed(fr_documents):
    text = fr_documents[EO14178_PDF].text
    assert "self-custody" in text and "selfcustody" not in text
