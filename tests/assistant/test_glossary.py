"""Bilingual term pairs mined from the text itself, and shown beside quotes in the other language."""

from __future__ import annotations

from assistant.answer import Span, render
from assistant.glossary import (
    aligned_words,
    from_metadata,
    mine_pairs,
    terms_in,
    to_metadata,
    trim_term,
    without_english_names,
)
from tests.conftest import SEED


def test_pairs_in_brackets_and_after_a_run_of_chinese_text():
    text = "养老金开始采用「谨慎人规则」(Prudent Man Rule),401(k) 是一种固定缴款计划 (Defined Contribution Plan)。"
    assert mine_pairs(text) == [("谨慎人规则", "Prudent Man Rule"), ("固定缴款计划", "Defined Contribution Plan")]


def test_a_text_without_the_english_names_of_its_terms():
    text = "养老金开始采用「谨慎人规则」(Prudent Man Rule),401(k) 是一种固定缴款计划 (Defined Contribution Plan)。"
    assert without_english_names(text) == "养老金开始采用「谨慎人规则」,401(k) 是一种固定缴款计划。"
    english = "the rise of RAG (Retrieval-Augmented Generation) and 401(k) plans"
    assert without_english_names(english) == english  # no Chinese term before the brackets


def test_a_term_is_trimmed_at_the_word_before_it():
    assert trim_term("1950 年纽约州开始采用谨慎人规则") == "谨慎人规则"


def test_english_parentheses_without_a_chinese_term_are_not_pairs():
    assert mine_pairs("the rise of RAG (Retrieval-Augmented Generation) and 401(k) plans") == []


def test_the_seed_article_yields_its_own_terms(corpus_mirror):
    pairs = dict(mine_pairs((corpus_mirror / SEED).read_text(encoding="utf-8")))
    assert pairs["谨慎人规则"] == "Prudent Man Rule" and pairs["法律清单"] == "Legal List"
    assert from_metadata(to_metadata(list(pairs.items()))) == list(pairs.items())
    assert from_metadata("not json") == []


def test_terms_shown_to_readers_of_the_other_language():
    pairs = [("谨慎人规则", "Prudent Man Rule"), ("法律清单", "Legal List")]
    zh_quote = "1950 年,纽约州率先部分采纳谨慎人规则。"
    assert terms_in(zh_quote, pairs, "en") == [("谨慎人规则", "Prudent Man Rule")]
    text, _ = render("When did New York adopt the prudent man rule?",
                     [Span("seed", 0, len(zh_quote), zh_quote, "zh")], pairs)
    assert "Terms: 谨慎人规则 = Prudent Man Rule." in text and "Legal List" not in text
    en_quote = "States moved from the legal list to the prudent man rule."
    text, _ = render("纽约州何时采用谨慎人规则?", [Span("doc", 0, len(en_quote), en_quote, "en")], pairs)
    assert "Prudent Man Rule = 谨慎人规则" in text and "Legal List = 法律清单" in text


def test_words_of_pairs_that_line_up_one_to_one_are_paired_in_order():
    words = aligned_words((("固定缴款计划", "Defined Contribution Plan"), ("谨慎人规则", "Prudent Man Rule"),
                           ("社会保障法", "Social Security Act")))  # 社会保障 / 法: two words against three
    assert words["contribution"] == {"缴款"} and words["plan"] == {"计划"} and words["man"] == {"人"}
    assert "security" not in words and "act" not in words
    assert aligned_words((("雇员退休收入保障法", "ERISA"),)) == {}  # an acronym lines up with nothing
