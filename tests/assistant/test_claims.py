"""Claims: splitting answers (en/zh, markers and quotes kept), language-neutral facts, conflicts, quote matching."""

from __future__ import annotations

import pytest

from assistant.claims import SquashedText, conflicts, facts, near_match, shared_facts, split_claims


def kinds(text: str) -> set[tuple[str, object]]:
    return {(f.kind, f.value) for f in facts(text) if f.kind != "name"}


# --------------------------------------------------------------------------------------------------- splitting


def test_sentences_keep_their_markers_and_quotes_in_english_and_chinese():
    answer = ('New York changed its rules in 1950. [1] The order says "plans must be prudent." '
              "特朗普于2025年8月7日签署了行政令。[2]美国有9000万人参与。")
    claims = split_claims(answer)
    assert [c.plain for c in claims] == ["New York changed its rules in 1950.", 'The order says "plans must be prudent."',
                                         "特朗普于2025年8月7日签署了行政令。", "美国有9000万人参与。"]
    assert [c.markers for c in claims] == [(1,), (), (2,), ()]
    assert claims[1].quotes == ("plans must be prudent.",)
    assert all(answer[c.start:c.end] == c.text for c in claims)


def test_a_sentence_joining_two_facts_becomes_two_claims_sharing_its_markers():
    claims = split_claims("It allowed up to 35% in equities; other states followed later with different caps [2].")
    assert [c.plain for c in claims] == ["It allowed up to 35% in equities", "other states followed later with different caps."]
    assert [c.markers for c in claims] == [(2,), (2,)]
    zh = split_claims("美国有九千万人参与这些计划，并且资产总额超过十万亿美元。")
    assert len(zh) == 2
    assert len(split_claims("Short, and sweet.")) == 1  # too short to hold two facts


def test_abbreviations_decimals_and_quoted_full_stops_do_not_end_a_claim():
    claims = split_claims('The U.S. Department of Labor, per Sec. 2 of the order, said "no. 3 is fine." It is 3.5% now.')
    assert len(claims) == 2 and claims[1].plain == "It is 3.5% now."


# --------------------------------------------------------------------------------------------------- facts


@pytest.mark.parametrize("a, b", [
    ("1,000 plans", "1000 plans"),
    ("35%", "35 percent"),
    ("35 per cent", "百分之三十五"),
    ("thirty-five percent", "35％"),
    ("in 1950", "1950 年"),
    ("一九七四年", "in 1974"),
    ("August 7, 2025", "2025年8月7日"),
    ("8 月 7 日", "Aug. 7"),
    ("7 August", "August 7th"),
    ("90 million Americans", "9000万美国人"),
    ("$35 billion", "350亿美元"),
    ("the 1970s", "70年代"),
])
def test_numbers_written_differently_are_the_same_fact(a, b):
    assert kinds(a) == kinds(b) and kinds(a)
    assert conflicts(a, b) == [] and conflicts(b, a) == []


def test_section_numbers_are_names_not_numbers():
    assert kinds("401(k) plans and 403(b) plans") == set()


def test_years_are_not_read_from_larger_numbers_or_percentages():
    assert kinds("1,974 plans") == {("number", 1974.0)}
    assert kinds("In 1950, New York acted") == {("year", 1950.0)}


@pytest.mark.parametrize("claim, evidence, kind", [
    ("ERISA was enacted in 1974.", "ERISA was enacted in 1947.", "year"),
    ("The cap was 53%.", "The cap was 35 percent.", "percent"),
    ("上限为百分之五十三。", "The cap was 35%.", "percent"),
    ("The order was signed on August 8.", "2025年8月7日，总统签署了行政令。", "date"),
    ("More than 80 million Americans take part.", "More than 90 million Americans take part.", "number"),
    ("The order was signed by President Biden.", "President Donald J. Trump signed the order.", "name"),
    ("The plans are not allowed to invest in crypto.", "The plans are allowed to invest in crypto.", "negation"),
])
def test_a_different_value_of_the_same_kind_conflicts(claim, evidence, kind):
    assert [c.kind for c in conflicts(claim, evidence)] == [kind]


def test_no_conflict_when_the_evidence_states_more_or_omits_a_kind():
    assert conflicts("In 1950 New York changed its rules.", "New York changed its rules in 1950 and again in 1974.") == []
    assert conflicts("In 1950 the cap was 35%.", "The cap was 35%.") == []
    assert conflicts("President Trump signed it.", "President Donald J. Trump signed the order.") == []
    assert conflicts("The DOL must act.", "The Department of Labor shall act.") == []
    assert conflicts("ERISA was enacted in 1974.", "ERISA was enacted in 1947.", checks=("percent",)) == []


def test_shared_facts_is_the_share_of_the_claims_facts_the_evidence_states():
    assert shared_facts("In 1950 the cap was 35%.", "The cap of 35% dates from 1950.") == 1.0
    assert shared_facts("In 1950 the cap was 35%.", "The cap was 35%.") == 0.5
    assert shared_facts("The cap was low.", "The cap was 35%.") == 0.0


# --------------------------------------------------------------------------------------------------- quotes


def test_quotes_are_found_whitespace_insensitively_at_their_true_offsets():
    text = "New York changed its rules\nin  1950.\n\nIt allowed pensions."
    located = SquashedText(text).find("its rules in 1950.")
    assert located is not None and text[located[0]:located[1]] == "its rules\nin  1950."
    assert SquashedText(text).find("its rules in 1951.") is None


def test_near_verbatim_quotes_say_what_differs():
    text = "xx New York changed its rules in 1950.\n\nIt allowed pensions to invest up to 35% in equities.\n\nOther"
    match = near_match("allowed pensions to invest up to 53% in equities", text)
    assert match is not None and match.ratio > 0.9
    assert match.differences == ("'53' where the source has '35'",)
    assert "35% in equities" in text[match.start:match.end]
    assert near_match("completely unrelated words about mercury", "abc") is None


def test_numbers_next_to_chinese_characters_are_read():
    assert kinds("在90天内") == {("number", 90.0)} and kinds("2023年401(k)类计划") == {("year", 2023.0)}
    assert kinds("至少每5年接受一次检查") == {("number", 5.0)}  # 一次 is "once", not the number one
    assert [c.kind for c in conflicts("财政部长须在90天内提交评估。", "财政部长须在60天内提交评估。")] == ["number"]


def test_a_bound_is_no_negation_and_a_prohibition_is_one():
    assert conflicts("at least 30 and at most 60 days", "at least 30 days and no more than 60 days") == []
    assert conflicts("up to 3% of pay", "to the extent they do not exceed 3 percent of pay") == []
    assert conflicts("agencies may not promote CBDCs", "agencies are prohibited from promoting CBDCs") == []
    assert [c.kind for c in conflicts("各机构可以推广央行数字货币。", "各机构禁止推广央行数字货币。")] == ["negation"]


def test_table_counts_in_thousands_match_the_number_they_stand_for():
    assert conflicts("about 81.6 million active participants in 2023", "2023 724,720 81,626 7,917,598") == []
    assert conflicts("约为8163万人", "2023 724,720 81,626") == []
    assert conflicts("about 7.9 trillion dollars", "7,917,598") == []
    assert [c.kind for c in conflicts("about 95.0 million participants", "81,626 participants")] == ["number"]


def test_names_compare_with_possessives_acronyms_and_titles_of_works_within_one_language():
    assert conflicts("the Department of Labor's guidance", "the Department of Labor’s guidance") == []
    assert conflicts("consult the SEC and the Secretary of Labor", "consult the Securities and Exchange Commission") == []
    assert conflicts("the Statement of December 21, 2021", "the December 21, 2021, Statement") == []
    assert [c.kind for c in conflicts("1935年出台的《国家劳资关系法》建立了养老金体系。",
                                      "1935 年,《社会保障法》出台,建立全国性养老金体系")] == ["name"]
    assert conflicts("拜登政府的指导意见被撤销。", "guidance put in place by the Biden Administration was rescinded") == []


def test_negation_is_read_in_the_clause_that_says_what_the_claim_says():
    evidence = "The protocol caps the supply at 21 million coins, and has never been hacked."
    assert conflicts("比特币协议把总供应量限制在2100万枚。", evidence) == []
    assert conflicts("The protocol caps the supply at 21 million coins.", evidence) == []
    assert [c.kind for c in conflicts("The protocol has been hacked.", evidence)] == ["negation"]
