"""Step 7, answer: sentence offsets, sentence widening, cross-language facts, and the extractive answerer's choice.

Hits and spans are built by hand over a document text whose passage does not start at offset 0, so every offset
is checked as a document offset (the ones citations are made of), not as an offset into the passage.
"""

from __future__ import annotations

import pytest

from assistant.answer import (
    Span,
    continuation,
    expand_to_sentence,
    language_neutral_facts,
    leads_in,
    list_marker,
    one_line,
    ordinal,
    render,
    sentence_spans,
    with_continuations,
)
from assistant.claims import split_claims
from assistant.schema import SearchHit
from assistant.sentences import SentenceHit

ZH_1950 = "1950 年,纽约州率先部分采纳谨慎人规则,允许养老金投资高达 35% 的权益资产(如股票)。"
EN_1950 = "In 1950 New York allowed pension funds to invest up to 35% of their assets in equities."


def hit_in(document_text: str, passage: str, language: str = "en", document: str = "doc.txt",
           context: str = "") -> SearchHit:
    """A hit for ``passage`` at its place in ``document_text`` (it must occur there)."""
    start = document_text.index(passage)
    return SearchHit(chunk_id=f"{document}#0", document=document, title="A title", page=None, start=start,
                     end=start + len(passage), text=passage, score=0.8, language=language, context=context)


def span_of(text: str, language: str = "en", document: str = "doc.txt") -> tuple[SearchHit, Span]:
    """A hit whose passage is ``text`` (placed after a preamble) and a span quoting all of it."""
    doc = "Preamble that is not part of the passage. " + text
    hit = hit_in(doc, text, language, document)
    return hit, Span(document, hit.start, hit.end, text, language, 1.0)


# --- sentence_spans ---------------------------------------------------------------------------------------------------


def test_sentence_spans_english_keeps_abbreviations_inside_sentences():
    sentences = [
        "See Sec. 3 of the order for the policy.",
        "It amends 29 U.S.C. 1104 so that plans may hold more assets!",
        "Does the rule apply to Mr. Smith?",
        "Yes;",
        "it applies from 2026 on.",
    ]
    passage = " ".join(sentences)
    doc = "Title line\n\n" + passage + "\n\nA later paragraph."
    hit = hit_in(doc, passage)
    assert hit.start > 0
    spans = sentence_spans(hit)
    assert [doc[s:e] for s, e in spans] == sentences
    assert all(hit.start <= s < e <= hit.end for s, e in spans)


def test_sentence_spans_chinese_punctuation():
    passage = ZH_1950 + "这标志着从「法律清单」向灵活投资的转变！真的吗？是的；其他州跟进"
    doc = "从历史来看 401(k) 养老金\n\n" + passage
    hit = hit_in(doc, passage, "zh")
    spans = sentence_spans(hit)
    assert [doc[s:e] for s, e in spans] == [
        ZH_1950,
        "这标志着从「法律清单」向灵活投资的转变！",
        "真的吗？",
        "是的；",
        "其他州跟进",  # the passage's last piece has no end mark but is still a sentence
    ]


def test_sentence_spans_newlines_end_sentences_and_strip_whitespace():
    passage = "Retail Access to Alternative Investments\n\n   The order was signed in 2025.  \nIt directs the Secretary."
    doc = "x" * 37 + passage
    spans = sentence_spans(hit_in(doc, passage))
    assert [doc[s:e] for s, e in spans] == [
        "Retail Access to Alternative Investments", "The order was signed in 2025.", "It directs the Secretary."]


# --- expand_to_sentence -------------------------------------------------------------------------------------------


def test_expand_to_sentence_widens_mid_sentence_span_to_the_whole_sentence():
    text = "First sentence here. The second sentence is about the 1950 rules. Third one follows."
    start, end = text.index("sentence is"), text.index("1950") + 4
    a, b = expand_to_sentence(text, start, end)
    assert text[a:b] == "The second sentence is about the 1950 rules."


def test_expand_to_sentence_never_goes_past_a_sentence_end():
    text = "First sentence here. The second sentence is about the 1950 rules. Third one follows."
    whole = "The second sentence is about the 1950 rules."
    start = text.index(whole)
    # already a whole sentence: unchanged (not widened into the neighbours)
    assert expand_to_sentence(text, start, start + len(whole)) == (start, start + len(whole))
    # a span at the very start of the text stops at the first full stop
    a, b = expand_to_sentence(text, 3, 8)
    assert text[a:b] == "First sentence here."
    # the last sentence without an end mark runs to the end of the text
    a, b = expand_to_sentence(text + " And a tail", len(text) + 3, len(text) + 6)
    assert (text + " And a tail")[a:b] == "And a tail"


def test_expand_to_sentence_chinese():
    text = "第一句话。" + ZH_1950 + "这标志着转变！"
    a, b = expand_to_sentence(text, text.index("纽约"), text.index("35%"))
    assert text[a:b] == ZH_1950


def test_expand_to_sentence_keeps_the_cut_when_no_sentence_boundary_is_near():
    text = "word " * 200 + "end."
    start, end = 500, 512  # "word word wo"
    # no sentence boundary within the limit on either side: the passage's own cuts stay
    assert expand_to_sentence(text, start, end, limit=50) == (start, end)
    # with a wider limit the end reaches the full stop, but the start still has no boundary before it
    a, b = expand_to_sentence(text, start, end, limit=600)
    assert b == len(text) and a == 0


def test_expand_to_sentence_does_not_stop_at_an_abbreviation():
    text = "Intro. Under Sec. 3 the plan may invest. End."
    a, b = expand_to_sentence(text, text.index("the plan"), text.index("may"))
    assert text[a:b] == "Under Sec. 3 the plan may invest."


# --- facts and rendering across languages ---------------------------------------------------------------------------


def test_language_neutral_facts_of_a_chinese_sentence():
    facts = language_neutral_facts("1950 年,纽约州...允许养老金投资高达 35% 的权益资产")
    assert "1950" in facts and "35%" in facts
    assert not any("纽约" in f or "养老金" in f for f in facts)  # Chinese words are not language-neutral facts


def test_language_neutral_facts_keeps_latin_names_and_numbers():
    facts = language_neutral_facts("2025 年 8 月 7 日,特朗普签署了 Executive Order 14330,允许 401(k) 计划投资。")
    assert "August 7, 2025" in facts and "14330" in facts
    assert any(f.startswith("Executive Order") for f in facts)
    assert "401(k)" in facts


@pytest.mark.parametrize("chinese, english", [
    ("2025 年 8 月 7 日", "August 7, 2025"), ("2025年8月7日", "August 7, 2025"), ("2025 年 3 月", "March 2025"),
    ("8 月 12 日", "August 12"), ("1970 年代末", "1970s"), ("约 20 万枚", "200,000"), ("1 万亿美元", "1 trillion"),
    ("3.5 亿人", "350 million"), ("1950 年", "1950"), ("35%", "35%"),
    ("上世纪 30 年代", "1930s"), ("本世纪 20 年代", "2020s"), ("1940s", "1940s"),
    ("20 世纪初", "early 20th century"), ("19 世纪的信托法", "19th century"), ("21 世纪", "21st century"),
])
def test_chinese_dates_decades_and_counts_are_stated_as_english_writes_them(chinese, english):
    assert language_neutral_facts(f"据报道,{chinese}。") == [english]


@pytest.mark.parametrize("text, shown", [
    ("撰文:陈默 cmDeFi\n\n2025 年 8 月 7 日,特朗普签署", "撰文:陈默 cmDeFi 2025 年 8 月 7 日,特朗普签署"),
    ("风险自担。\n\n收益归员工。", "风险自担。收益归员工。"),
    ("允许投资\n股票", "允许投资股票"),
    ("加入 401(k)\n计划", "加入 401(k) 计划"),
])
def test_a_chinese_quote_is_shown_on_one_line_without_gluing_words(text, shown):
    assert one_line(text) == shown


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 19, 20, 21, 22, 102)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "19th", "20th", "21st", "22nd", "102nd"]


def test_a_duration_in_months_is_not_read_as_a_month():
    assert language_neutral_facts("至少持有 3 个月。") == ["3"]


def test_render_english_question_over_chinese_span_states_facts_in_english_and_quotes_chinese():
    _, span = span_of(ZH_1950, "zh")
    text, numbered = render("When did New York let pension funds hold stocks, and up to what share?", [span])
    assert numbered == [(1, span)]
    lead, _, quoted = text.partition("“")
    assert "1950" in lead and "35%" in lead  # the facts are stated outside the Chinese quote
    assert "Chinese" in lead and "[1]" in lead
    assert ZH_1950 in quoted and quoted.rstrip().endswith("[1]")


def test_render_same_language_just_quotes():
    _, span = span_of(EN_1950)
    text, _ = render("When did New York allow pension funds to invest in equities?", [span])
    assert text == f"{EN_1950} [1]"


def test_render_chinese_question_over_english_span_lists_the_facts_in_chinese():
    _, span = span_of(EN_1950)
    text, _ = render("纽约州哪一年允许养老金投资股票?", [span])
    assert text.startswith("英文资料 [1]")
    assert "1950" in text.split("“")[0] and "35%" in text.split("“")[0]
    assert f"“{EN_1950}”" in text


def test_render_numbers_several_spans_in_order():
    _, first = span_of(EN_1950, document="a.md")
    _, second = span_of("North Carolina allowed 10% in stocks in 1961.", document="b.md")
    text, numbered = render("When were pension funds allowed to invest in stocks?", [first, second])
    assert [m for m, _ in numbered] == [1, 2] and [s for _, s in numbered] == [first, second]
    assert text.splitlines() == [f"{EN_1950} [1]", "North Carolina allowed 10% in stocks in 1961. [2]"]


def test_threshold_settings_move_the_risk_coverage_point(make_settings):
    """The fitted thresholds apply unless a deployment chooses another point of the risk–coverage curve."""
    from assistant.answer import ExtractiveAnswerer
    from assistant.answer_model import AnswerModels

    def answerer(**overrides):
        return ExtractiveAnswerer(make_settings(**overrides), sentences=lambda: None, document=lambda _: None,
                                  versions=lambda _: {}, idf=lambda _: {})

    models = AnswerModels.load(None)
    fitted = answerer()
    assert fitted.answer_threshold == models.question.threshold
    assert fitted.near_tie_ratio == models.sentence.threshold
    moved = answerer(answer_threshold=0.2, extra_sentence_ratio=0.1)
    assert (moved.answer_threshold, moved.near_tie_ratio) == (0.2, 0.1)
    with pytest.raises(ValueError):
        make_settings(answer_threshold=1.5)


def test_language_neutral_facts_of_an_english_sentence_are_dates_numbers_citations_and_acronyms_only():
    facts = language_neutral_facts(
        "(b) Within 180 days of the date of this order, the Secretary of Labor shall reexamine guidance under the "
        "Employee Retirement Income Security Act of 1974 (ERISA) (29 U.S.C. 1104), signed August 7, 2025, for "
        "401(k) plans holding 35 percent or $90 million.")
    assert facts[:1] == ["180"]
    assert {"1974", "ERISA", "29 U.S.C. 1104", "August 7, 2025", "401(k)"} <= set(facts)
    assert "35 percent" in facts or "$90 million" in facts  # at most eight facts are listed
    assert not any(" " in f and not any(ch.isdigit() for ch in f) for f in facts)  # no English phrases


def test_enumeration_labels_are_not_facts():
    facts = language_neutral_facts("(2) In the case of a plan (as defined in section 1107(d)(3) of this title), "
                                   "paragraph (1)(C) and (5) apply.")
    assert facts == ["1107(d)(3)"]


def test_a_passage_is_on_topic_through_its_best_sentence(make_settings):
    """The floor below which nothing is answered reads the best passage cosine or the best sentence cosine: a long
    passage about much else can hold the one sentence that answers (the question model then decides), and a short
    question ("what is the 'legal list'?") can match one sentence of a passage that was not retrieved at all."""
    from assistant.answer import AnswerRequest, ExtractiveAnswerer, best_match_score

    answerer = ExtractiveAnswerer(make_settings(abstain_threshold=0.36), sentences=lambda: None,
                                  document=lambda _: None, versions=lambda _: {}, idf=lambda _: {})
    hit, _ = span_of(ZH_1950, "zh")
    long_passage = hit.model_copy(update={"score": 0.45, "dense_score": 0.34, "sentence_score": 0.46})
    far = hit.model_copy(update={"score": 0.3, "dense_score": 0.3, "sentence_score": None})
    assert best_match_score([long_passage, far]) == pytest.approx(0.46)
    assert answerer.supported(AnswerRequest(question="q", query="q", hits=[far, long_passage]))
    assert not answerer.supported(AnswerRequest(question="q", query="q", hits=[far]))
    # the question's nearest sentence counts even when its passage was not retrieved: it is a candidate of the answer
    nearest = SentenceHit(sentence_id="s", document=hit.document, chunk_id="elsewhere", title="t", page=None, start=0,
                          end=1, text="s", language="zh", version="v", score=0.4)
    assert best_match_score([far], [nearest]) == pytest.approx(0.4)
    assert answerer.supported(AnswerRequest(question="q", query="q", hits=[far], nearest_sentences=[nearest]))


# --- lead-ins: a sentence that only introduces what follows is quoted with it ---------------------------------------

MATCHING = ("(4) Matching contribution\nThe term “matching contribution” means\n(i) any employer contribution made on "
            "account of an employee contribution;\n(ii) any employer contribution made on account of an elective "
            "deferral; and\n(iii) any forfeiture allocated on the basis of employee contributions.\n(5) Other rules\n")


@pytest.mark.parametrize("sentence, expected", [
    ("The term “matching contribution” means", True),
    ("The Council of Economic Advisers (CEA) finds that:", True),
    ("In addition to the Chair, the Working Group shall include the following officials, or their designees:", True),
    ("主要内容如下：", True),
    ("New York adopted the prudent man rule in 1950.", False),
    ("2010 518,675 60,510 3,142,141", False),
])
def test_a_lead_in_ends_in_a_colon_or_a_word_that_cannot_end_a_statement(sentence, expected):
    assert leads_in(sentence) == expected


@pytest.mark.parametrize("sentence, kind", [
    ("(iv) direct and indirect investments in commodities;", "lower"), ("(B) with the care, skill;", "upper"),
    ("(2) In the case of a plan", "number"), ("1. 养老金", "number"), ("-   DC plan participants", "bullet"),
    ("一、历史", "chinese"), ("The Secretary shall", None),
])
def test_list_markers_by_kind(sentence, kind):
    assert list_marker(sentence) == kind


def test_a_lead_in_brings_the_items_of_its_list_and_stops_where_another_list_begins():
    end = MATCHING.index("means") + len("means")
    start, stop = continuation(MATCHING, end)
    assert MATCHING[start:stop].startswith("(i) any employer")
    assert MATCHING[start:stop].endswith("employee contributions.")  # "(ii) …; and" did not end the list
    assert "(5) Other" not in MATCHING[start:stop]


def test_a_lead_in_before_a_new_section_brings_nothing():
    text = "By the authority vested in me as President, it is hereby ordered:\nSection 1. Purpose. The United States…"
    assert continuation(text, text.index("ordered:") + len("ordered:")) is None


def test_a_clause_cut_mid_way_brings_its_next_sentence_only():
    text = "The term “eligible employee” means\nan employee who is at least 21 years old.\nOther text follows here."
    start, stop = continuation(text, text.index("means") + len("means"))
    assert text[start:stop] == "an employee who is at least 21 years old."


def test_a_long_list_is_cut_after_four_items():
    text = "It includes:\n" + "".join(f"({n}) item number {n};\n" for n in range(1, 9))
    start, stop = continuation(text, text.index(":") + 1)
    assert text[start:stop].count("item number") == 4


def test_with_continuations_adds_the_items_as_a_span_of_their_own_just_below_the_lead_in():
    end = MATCHING.index("means") + len("means")
    start = MATCHING.index("The term")
    lead = Span("doc", start, end, MATCHING[start:end], "en", 0.8)
    spans = with_continuations([lead], {"doc": MATCHING}.get)
    assert len(spans) == 2 and spans[1].text.startswith("(i) any employer") and spans[1].score < 0.8
    plain = Span("doc", 0, 25, MATCHING[:25], "en", 0.5)  # "(4) Matching contribution" leads into nothing
    assert with_continuations([plain], {"doc": MATCHING}.get) == [plain]


def test_a_lead_in_that_leads_into_another_brings_the_inner_list_too():
    text = ("a fiduciary shall discharge his duties solely in the interest of the participants and\n\n(A) for the "
            "exclusive purpose of:\n\n(i) providing benefits; and\n\n(ii) defraying reasonable expenses;\n\n(B) with "
            "the care of a prudent man;")
    lead = Span("doc", 0, text.index(" and\n") + 4, text[:text.index(" and\n") + 4], "en", 0.9)
    (_, follow) = with_continuations([lead], {"doc": text}.get)
    assert follow.text.startswith("(A) for the exclusive purpose of:") and follow.text.endswith("reasonable expenses;")


def test_render_reads_a_table_row_under_its_headings_before_the_verbatim_quote():
    rows = "1990 97,614 19,466\n1991 111,394 19,039"
    _, span = span_of(rows, document="tables.txt")

    def table_rows(_span):
        return "Table E19", ["1990: Number of Plans 97,614 · Active Participants (thousands) 19,466",
                             "1991: Number of Plans 111,394 · Active Participants (thousands) 19,039"]

    text, _ = render("How many 401(k) plans were there in 1990 and 1991?", [span], table_rows=table_rows)
    assert text == ("Table E19 [1], 1990: Number of Plans 97,614 · Active Participants (thousands) 19,466. "
                    "Table E19 [1], 1991: Number of Plans 111,394 · Active Participants (thousands) 19,039. "
                    "Quote: “1990 97,614 19,466 1991 111,394 19,039” [1]")
    # each row is one claim with its marker: a grader checks it against the quoted rows
    assert [len(c.markers) for c in split_claims(text)] == [1, 1, 1]
    text, _ = render("1990 年有多少个 401(k) 计划?", [span], table_rows=table_rows)
    assert text.startswith("英文资料 [1] 的 Table E19,1990: Number of Plans 97,614") and text.endswith("原文:“1990 97,614 "
                                                                                             "19,466 1991 111,394 19,039” [1]")
