"""Step 3, split: exact spans, right pages, sentence-boundary cuts in Chinese, table context, deterministic ids."""

from __future__ import annotations

import re

import pytest

from assistant.clean import clean
from assistant.load import load_file
from assistant.schema import Document
from assistant.split import estimate_tokens, heading_path_at, passage_id, section_starts, split
from assistant.sync import prepare
from tests.conftest import DOL_TABLES, EO14330_PDF, SEED

LIMIT = 160
_CJK = re.compile(r"[\u3400-\u9fff]")
_ZH_END = ("。", "！", "？", "；")
_CLOSERS = "」』”’)）"


@pytest.fixture(scope="module")
def corpus_documents(corpus_mirror, tmp_path_factory):
    from assistant.settings import Settings
    from tests.conftest import MANIFEST

    settings = Settings(corpus_dir=tmp_path_factory.mktemp("split"), corpus_manifest=MANIFEST)
    names = sorted(p.name for p in corpus_mirror.iterdir() if p.suffix in {".txt", ".md", ".pdf"} and p.name != "SOURCES.md")
    return {name: prepare(corpus_mirror / name, name, settings) for name in names}


def _document(text: str, doc_id: str = "doc.txt", language: str = "zh") -> Document:
    import hashlib

    return Document(doc_id=doc_id, title="t", language=language, text=text,
                    content_hash=hashlib.sha256(text.encode()).hexdigest())


def test_every_passage_is_an_exact_span_of_its_document(corpus_documents):
    for name, (document, passages) in corpus_documents.items():
        assert passages, name
        previous_start = -1
        for passage in passages:
            assert passage.text == document.text[passage.start:passage.end], (name, passage.chunk_id)
            assert passage.text.strip() == passage.text and passage.text
            assert passage.start > previous_start
            previous_start = passage.start
            assert passage.document == name and passage.title == document.title
        assert len({p.chunk_id for p in passages}) == len(passages)


def test_passages_cover_the_document(corpus_documents):
    for name, (document, passages) in corpus_documents.items():
        covered = "".join(document.text[p.start:p.end] for p in passages)
        # only whitespace between passages is dropped (no overlap is configured)
        assert re.sub(r"\s+", "", covered) == re.sub(r"\s+", "", document.text), name


def test_passages_respect_the_size_limit(corpus_documents):
    for name, (_, passages) in corpus_documents.items():
        for passage in passages:
            assert estimate_tokens(passage.text) <= LIMIT, (name, passage.chunk_id)


def test_pdf_passages_carry_their_physical_page(corpus_documents):
    document, passages = corpus_documents[EO14330_PDF]
    within = [p for p in passages if "Within 180 days" in p.text]
    assert within and all(p.page == 2 for p in within)
    assert passages[0].page == 1 and passages[-1].page == 3
    for passage in passages:
        span = next(s for s in document.pages if s.page == passage.page)
        assert span.start <= passage.start < span.end
    assert all(p.page is None for p in corpus_documents[SEED][1])  # not a paged format


def test_chinese_passages_end_at_sentence_boundaries(corpus_documents):
    document, passages = corpus_documents[SEED]
    text = document.text
    for i, passage in enumerate(passages):
        if not _CJK.search(passage.text[-30:]):
            continue
        tail = passage.text.rstrip(_CLOSERS)
        after = text[passage.end:passage.end + 1]
        at_boundary = tail.endswith(_ZH_END) or after in ("", "\n") or i == len(passages) - 1
        if not at_boundary:
            # allowed only when the sentence that was cut is itself longer than the limit
            start = max(text.rfind(c, 0, passage.end) for c in _ZH_END + ("\n",))
            ends = [j for j in (text.find(c, passage.end) for c in _ZH_END + ("\n",)) if j >= 0]
            sentence = text[start + 1:min(ends) + 1 if ends else len(text)]
            assert estimate_tokens(sentence) > LIMIT, f"cut mid-sentence: …{passage.text[-20:]!r}|{text[passage.end:passage.end + 20]!r}"


def test_a_long_chinese_paragraph_is_cut_only_after_sentence_marks():
    sentences = [f"第{n}条规定雇主可以为员工提供退休储蓄计划并进行匹配供款{'！' if n % 3 == 0 else '。'}" for n in range(60)]
    sentences[20] = "这是一个问句吗？"
    sentences[21] = "条款之间用分号隔开；"
    document = _document("".join(sentences))  # one paragraph: no newline to fall back on
    passages = split(document, LIMIT)
    assert len(passages) > 3
    for passage in passages[:-1]:
        assert passage.text.endswith(_ZH_END), passage.text[-10:]
    assert all(p.language == "zh" for p in passages)


def test_a_chinese_sentence_longer_than_the_limit_is_cut_at_a_comma():
    clause = "雇主承诺为员工提供退休后稳定的月度养老金，"
    long_sentence = clause * 20 + "结束。"  # about 420 tokens, no sentence mark until the end
    document = _document("开头一句。" + long_sentence + "最后一句。")
    passages = split(document, LIMIT)
    assert len(passages) >= 3
    for passage in passages:
        assert passage.text == document.text[passage.start:passage.end]
        assert estimate_tokens(passage.text) <= LIMIT
        assert passage.text.endswith(("。", "，")) or passage is passages[-1]


def test_dol_table_rows_carry_their_table_as_context(corpus_documents):
    _, passages = corpus_documents[DOL_TABLES]
    row = re.compile(r"^(19|20)\d\d\s+[\d,]+\s+[\d,]+", re.M)
    with_rows = [p for p in passages if row.search(p.text)]
    assert len(with_rows) >= 10
    for passage in with_rows:
        where = passage.context + "\n" + passage.text
        assert "Table E1" in where or "Table E19" in where, passage.text[:80]
    e1 = [p for p in with_rows if p.context.startswith("Table E1.")]
    e19 = [p for p in with_rows if p.context.startswith("Table E19.")]
    assert e1 and e19
    assert "Defined" in e1[0].context and "Benefit" in e1[0].context  # the column heads come with the title
    late_row = next(p for p in with_rows if p.text.startswith("2008 "))
    assert late_row.context.startswith("Table E19.")


def test_markdown_passages_carry_their_heading(tmp_path):
    text = "# Plan rules\n\n## Loans\n\n" + "A participant may borrow from the plan under conditions. " * 30 + "\n\n## Fees\n\nFees apply."
    path = tmp_path / "rules.md"
    path.write_text(text, encoding="utf-8")
    document = clean(load_file(path))
    passages = split(document, 60)
    loans = [p for p in passages if "borrow" in p.text and not p.text.startswith("##")]
    assert loans and all(p.context == "Loans" for p in loans)
    fees = [p for p in passages if "Fees apply." in p.text]
    assert fees and (fees[0].context in ("", "Fees"))  # a passage that opens with its heading has no extra context


def test_a_passage_never_runs_into_the_next_sections_headings(tmp_path, corpus_documents):
    """The US Code files repeat "# Title 29— LABOR / ## Subtitle B… / #### § 1104. … / ##### (b) …" above every
    subsection: those lines open the subsection's first passage instead of closing the one before."""
    text = ("# Title 29\n\n##### (a) Prudent man standard\n\n(1) A fiduciary shall diversify.\n\n"
            "(2) An eligible individual account plan is exempt.\n\n# Title 29\n## Subtitle B\n\n"
            "##### (b) Indicia of ownership\n\nNo fiduciary may hold assets abroad.\n")
    path = tmp_path / "code.md"
    path.write_text(text, encoding="utf-8")
    document = clean(load_file(path))
    assert [document.text[i:i + 11] for i in section_starts(document.text)] == ["# Title 29\n", "# Title 29\n"]
    passages = split(document, 400)
    assert [p.text.split("\n")[0] for p in passages] == ["# Title 29", "# Title 29"]
    assert passages[0].text.endswith("is exempt.") and passages[1].text.endswith("assets abroad.")
    assert section_starts("No headings at all.\n\nJust text.") == [0]
    erisa = next(passages for name, (_, passages) in corpus_documents.items() if "erisa" in name)
    assert not [p for p in erisa if "Title 29" in p.text and not p.text.startswith("# Title 29")]


def test_ids_are_deterministic_and_change_with_the_content(corpus_mirror, tmp_path):
    document = clean(load_file(corpus_mirror / EO14330_PDF))
    first = [p.chunk_id for p in split(document)]
    again = [p.chunk_id for p in split(clean(load_file(corpus_mirror / EO14330_PDF)))]
    assert first == again
    assert first[0] == passage_id(EO14330_PDF, document.content_hash[:16], 0)
    assert all(p.version == document.content_hash[:16] for p in split(document))

    path = tmp_path / "note.txt"
    path.write_text("Paragraph one about vesting.\n\nParagraph two about loans.\n", encoding="utf-8")
    v1 = [p.chunk_id for p in split(clean(load_file(path)))]
    path.write_text("Paragraph one about vesting.\n\nParagraph two about hardship loans.\n", encoding="utf-8")
    v2 = [p.chunk_id for p in split(clean(load_file(path)))]
    assert v1 and v2 and not set(v1) & set(v2)
    # the same bytes under another name are another document
    assert passage_id("a.txt", "0" * 16, 0) != passage_id("b.txt", "0" * 16, 0)


def test_language_of_passages(corpus_documents):
    _, seed = corpus_documents[SEED]
    assert seed[0].language == "zh"
    _, eo = corpus_documents[EO14330_PDF]
    assert {p.language for p in eo} == {"en"}


def test_heading_path_names_every_enclosing_section_outermost_first():
    text = ("# Title 29— LABOR\n## Subtitle B\n#### § 1104. Fiduciary duties\n##### (a) Prudent man standard of care\n"
            "(B) with the care, skill, prudence.\n##### (b) Other\nMore.\n## Subtitle C\nLast.\n")
    assert heading_path_at(text, text.index("(B) with")) == [
        "Title 29— LABOR", "Subtitle B", "§ 1104. Fiduciary duties", "(a) Prudent man standard of care"]
    # a sibling heading closes the one before it, a shallower one closes everything deeper
    assert heading_path_at(text, text.index("More.")) == ["Title 29— LABOR", "Subtitle B", "§ 1104. Fiduciary duties",
                                                          "(b) Other"]
    assert heading_path_at(text, text.index("Last.")) == ["Title 29— LABOR", "Subtitle C"]
    assert heading_path_at("No headings here.", 3) == []


def test_heading_path_ends_with_a_tables_head_under_its_section():
    text = "# Private pension plans\n\nTable E19. Number of plans\nYear Plans\n1983 1,000\n"
    path = heading_path_at(text, text.index("1983"))
    assert path[0] == "Private pension plans" and path[-1].startswith("Table E19. Number of plans")
