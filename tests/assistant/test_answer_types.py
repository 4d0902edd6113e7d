"""The bilingual answer-type rules: each question rule and each sentence rule, on English and Chinese examples."""

from __future__ import annotations

import pytest

from assistant.answer_types import (
    analyse,
    asks_for_name,
    chinese_roles,
    english_organisation,
    english_person,
    english_place,
    expected_types,
    keyword_query_types,
    personal_names,
    question_focus,
    question_parts,
    sentence_types,
    type_match,
)
from tests.helpers import assert_refused_unverified


@pytest.mark.parametrize("question, expected", [
    ("When did New York adopt the prudent man rule?", {"date"}),
    ("这项行政命令是哪天签署的?", {"date"}),
    ("In what year was ERISA passed?", {"date"}),
    ("What share of their assets could pension funds hold in stocks?", {"percent"}),
    ("养老金可以投资股票的比例是多少?", {"percent"}),
    ("How many Americans participate in defined-contribution plans?", {"count"}),
    ("有多少家公司参与?", {"count"}),
    ("How long does the Secretary of Labor have to act?", {"duration"}),
    ("劳工部长需要在多长时间内完成?", {"duration"}),
    ("Who wrote the article?", {"person"}),
    ("这篇文章的作者是谁?", {"person"}),
    ("Which agency must review its guidance?", {"organisation"}),
    ("哪个部门负责审查指南?", {"organisation"}),
    ("Which state first adopted the prudent man rule?", {"place"}),
    ("哪个州最早采用谨慎人规则?", {"place"}),
    ("What is a defined contribution plan?", {"definition"}),
    ("什么是固定缴款计划?", {"definition"}),
    ("Why did pension funds move into stocks?", {"reason"}),
    ("为什么养老金转向股票?", {"reason"}),
    ("How much money did the fund hold?", {"money"}),
    ("资产规模是多少美元?", {"money"}),
])
def test_question_rules(question, expected):
    assert expected <= expected_types(question)


def test_how_much_alone_may_be_money_share_count_or_time():
    assert expected_types("how much") == {"money", "percent", "count", "duration"}
    assert expected_types("多少") == {"money", "percent", "count", "duration"}
    assert "duration" in expected_types("how much advance warning do I get before the fund lineup changes?")


@pytest.mark.parametrize(("question", "expected"), [
    ("on which page of the federal register does EO 14178 start", {"count"}),
    ("which volume and issue of the Federal Register was EO 14178 printed in?", {"count"}),
    ("第 14330 号行政令在联邦公报上从第几页开始?", {"count"}),
    ("第 14330 号行政令刊登在联邦公报第几卷第几期?", {"count"}),
    ("这份文件有多少页?", {"count"}),
    ("what issue does the order address?", set()),  # an issue as a topic asks for no number
])
def test_a_page_volume_or_issue_is_asked_for_by_its_number(question, expected):
    assert expected_types(question) == expected
    assert "count" in sentence_types("38921 Federal Register / Vol. 90, No. 153 / Tuesday, August 12, 2025")


def test_a_when_clause_inside_a_who_question_does_not_ask_for_a_date():
    assert expected_types("Who was Secretary of Labor when EO 14330 was signed?") == {"person"}


@pytest.mark.parametrize(("question", "expected"), [
    ("what does the order say about lawsuits against employers who offer these funds?", set()),
    ("what did the order say about workers whose plans exclude alternatives?", set()),
    ("is there a rule for plans where the employer matches?", set()),
    ("which state was the first where pensions could buy stocks?", {"place"}),  # "which state" still asks
    ("What's the name of the person who wrote the TechFlow article?", {"person"}),  # so does "the name of the person"
    ("Who opposed pension stock investing after the Depression?", {"person"}),
    ("tell me who runs the reserve", {"person"}),  # a question word opening a clause that is no relative one
])
def test_a_question_word_opening_a_relative_clause_asks_for_nothing(question, expected):
    assert expected_types(question) == expected


@pytest.mark.parametrize(("question", "expected"), [
    ("作者为什么说养老金买加密资产就等于“囤币”?", {"reason"}),
    ("跟当年引入股票相比,作者怎么评价现在引入加密资产", set()),
    ("这篇文章的作者是谁?", {"person"}),
    ("那篇深潮文章的作者叫什么名字?", {"person"}),
    ("深潮文章 作者?", {"person"}),  # a keyword query that ends in 作者 asks for the author
])
def test_a_chinese_question_about_what_the_author_says_does_not_ask_for_a_person(question, expected):
    assert expected_types(question) == expected


@pytest.mark.parametrize("query, expected", [
    ("prudent man rule NY year", {"date"}),
    ("401k crypto order date?", {"date"}),
    ("date of the bitcoin reserve order", {"date"}),
    ("401k plans number 2023", {"count"}),
    ("author of the techflow article", {"person"}),
    ("ERISA fiduciary standard", set()),
    ("and their total assets that year?", set()),  # "that year" points back; it asks for the assets
    ("contributions per year", set()),
    ("what is the plan year", set()),  # a worded question: its question word decides
])
def test_a_keyword_query_asks_with_its_head_noun(query, expected):
    assert keyword_query_types(query) == expected


def test_a_keyword_query_gets_its_type_only_where_no_question_rule_fired():
    assert expected_types("prudent man rule NY year") == {"date"}
    assert expected_types("new york stock limit percent") == {"percent"}


@pytest.mark.parametrize("question, asks", [
    ("What is the name of the Secretary of Labor?", True),
    ("which president signed the Social Security Act", True),
    ("CEA 那份报告是哪几位经济学家写的?", True),
    ("那篇文章的作者叫什么名字?", True),
    ("Who chairs the working group?", False),  # a role may answer it
    ("When was the order signed?", False),
    ("401(k) 这个名字是从哪里来的?", False),  # about a name, not for one
    ("Where does the name 401(k) come from?", False),
    ("What does the name 'prudent man rule' mean?", False),
])
def test_a_question_asks_for_a_name(question, asks):
    assert asks_for_name(question) == asks


@pytest.mark.parametrize("sentence, names", [
    ("Today, President Donald J. Trump signed an Executive Order.", {"Donald J. Trump"}),
    ("President Trump wants to give workers more options.", {"Trump"}),
    ("DONALD J. TRUMP", {"DONALD J. TRUMP"}),
    ("The Working Group shall be chaired by the Special Advisor for AI and Crypto.", set()),
    ("The Secretary of the Treasury shall establish an office.", set()),
    ("THE WHITE HOUSE, August 7, 2025.", set()),
    ("The Council of Economic Advisers (CEA) finds that:", set()),  # the tail of a body's name, not a person
    ("撰文:陈默 cmDeFi", {"陈默"}),
    ("特朗普总统签署了这项行政令。", {"特朗普"}),  # CC-CEDICT glosses it "Donald Trump (1946-)…": a name
    ("这个阶段养老金资金的投资策略高度保守。", set()),  # jieba tags 养老金 as a name; CC-CEDICT: "pension"
    ("为缓和争议,并优先投资「蓝筹股」。", set()),  # "blue chip stock"
    ("Ted Benna is often called the father of the 401(k).", {"Ted Benna"}),
    ("Government BTC deposited into the Strategic Bitcoin Reserve shall not be sold.", set()),
    ("The Congress finds that the growth of employee benefit plans has been rapid.", set()),
])
def test_personal_names_are_not_titles_bodies_or_documents(sentence, names):
    assert personal_names(sentence) == names


def test_an_entity_model_that_fails_its_checksum_is_refused(monkeypatch):
    from assistant import answer_types

    monkeypatch.setitem(answer_types.NER_SHA256, "ner/model", "0" * 64)
    assert_refused_unverified(answer_types.english_pipeline)


@pytest.mark.parametrize("question, focus", [
    ("Which company offered the first 401(k) plan?", {"company"}),  # which + noun
    ("What fee cap does EO 14330 put on private equity funds?", {"fee", "cap"}),  # with its compound
    ("How many employees did the state pension system cover?", {"employees"}),
    ("What was the inflation rate when ERISA passed?", {"inflation"}),  # "rate" names the type: left to the types
    ("Who was Secretary of Labor when the order was signed?", {"secretary"}),
    ("What is the name of the author?", set()),
    ("When was EO 14330 signed?", set()),  # the question word asks for a date, not about a noun
    ("纽约州 1950 年采纳谨慎人规则时,州长是谁?", {"州长"}),  # the nouns before 是谁
    ("美国 401(k) 账户的平均余额是多少?", {"余额"}),
    ("美国第一个企业养老金计划是哪家公司推出的?", {"公司"}),  # the nouns after 哪家
    ("行政令 14330 对违规的受托人有什么处罚?", {"处罚"}),  # 什么 makes the verb after it a noun
    ("401(k) 在 1978 年推出后的第一年有多少人参加?", set()),  # 人 alone is too ambiguous to be a topic
    ("第 14330 号行政令是哪天签署的?", set()),
    ("养老金几乎全部投资了什么债券?", {"债券"}),  # 几乎 ("almost") is no question word
])
def test_the_focus_is_the_noun_the_question_word_asks_about(question, focus):
    assert question_focus(question) == focus


def test_questions_that_ask_for_nothing_in_particular():
    assert expected_types("Tell me about 401(k) plans") == set()


@pytest.mark.parametrize("question, parts", [
    ("When did New York first let pension funds buy stocks, and how much?",
     ["When did New York first let pension funds buy stocks", "how much"]),
    ("纽约州哪一年允许养老金投资股票,比例是多少?", ["纽约州哪一年允许养老金投资股票", "比例是多少"]),
    ("When was the order signed?", ["When was the order signed"]),
])
def test_compound_questions_split_into_parts(question, parts):
    assert question_parts(question) == parts


def test_analysis_gives_each_part_its_types_and_folds_back_a_false_split():
    analysis = analyse("When did New York first let pension funds buy stocks, and how much?")
    assert [set(t) for t in analysis.part_types] == [{"date"}, {"money", "percent", "count", "duration"}]
    # "and the rules" asks nothing: not a compound question
    assert len(analyse("What did the order say about plans, and what changed?").parts) == 1
    simple = analyse("Where is the Federal Register printed and what does it cost")
    assert simple.types >= {"place"}


@pytest.mark.parametrize("sentence, kind", [
    ("1950 年,纽约州率先部分采纳谨慎人规则,允许养老金投资高达 35% 的权益资产(如股票)。", "date"),
    ("1950 年,纽约州率先部分采纳谨慎人规则,允许养老金投资高达 35% 的权益资产(如股票)。", "percent"),
    ("The order was published on August 12, 2025.", "date"),
    ("Plans hold $12.5 trillion in assets.", "money"),
    ("规模达到 9 万亿美元。", "money"),
    ("More than 90 million Americans participate.", "count"),
    ("The Secretary shall act within 180 days of the date of this order.", "duration"),
    ("A defined contribution plan is a plan in which the employee bears the risk.", "definition"),
    ("固定缴款计划是指员工承担投资风险的计划。", "definition"),
    ("Funds moved into stocks because bond yields were low.", "reason"),
    ("由于通货膨胀,养老金转向股票。", "reason"),
    ("撰文:陈默 cmDeFi", "person"),
])
def test_sentence_rules(sentence, kind):
    assert kind in sentence_types(sentence)


def test_a_percentage_is_not_money_and_a_plain_statement_has_no_number():
    assert "money" not in sentence_types("The funds could put up to 35% of their assets in equities.")
    assert not sentence_types("the rule changed over time.") & {"date", "money", "percent", "count", "duration"}


def test_english_person_organisation_place():
    assert english_person("President Donald J. Trump signed the order.")
    assert not english_person("The Department of Labor issued guidance.")
    assert english_organisation("The Department of Labor issued guidance.")
    assert english_organisation("The SEC will act.")
    assert not english_organisation("the rule changed over time.")
    assert english_place("Pension funds in New York could buy stocks.")
    assert not english_place("the funds could buy stocks.")


def test_the_english_name_beside_a_chinese_term_is_no_person():
    assert "person" not in sentence_types("1935 年,《社会保障法》(Social Security Act)出台,建立全国性养老金体系。")
    assert "person" not in sentence_types("受「法律清单」(Legal List)法规限制,主要被限定在政府债券。")
    assert "person" in sentence_types("2025 年 8 月 7 日,美国总统唐纳德·特朗普签署了一项行政令。")  # jieba's name
    assert "person" in sentence_types("President Donald J. Trump signed the order.")


def test_a_chinese_noun_for_a_kind_of_person_answers_who_but_gives_no_name():
    opposed = "这一改变引发了较大争议,反对者(主要是精算师和工会)认为,股票投资重蹈 1929 年股灾覆辙。"
    assert chinese_roles(opposed) == {"反对者", "精算师"}
    assert chinese_roles("投资收益或损失由员工个人承担。") >= {"员工"}
    assert not chinese_roles("两者均涉及从保守投资向高风险资产的跃迁。")  # "both", not a person
    assert "person" in sentence_types(opposed)
    assert "person" not in sentence_types(opposed, roles=False)  # a question that asks for a name


def test_type_match_counts_parts_covered():
    analysis = analyse("When did New York first let pension funds buy stocks, and how much?")
    assert type_match(analysis, {"date", "percent"}) == 1.0
    assert type_match(analysis, {"date"}) == 0.5
    assert type_match(analyse("Tell me about 401(k) plans"), {"date"}) == 0.0


def test_a_year_is_a_date_not_a_count_and_a_table_row_holds_counts():
    """"Beginning in 2017, multiple-employer plans…" names a year, not how many; the E1 row for 2017 is all counts."""
    assert "count" not in sentence_types("Beginning in 2017, multiple-employer plans are classified as a group.")
    assert "count" not in sentence_types("The 1940s saw the rule reinterpreted.")
    row = sentence_types("2017 709,527 46,698 662,829 702,374 45,079 657,295 2,494 1,399 1,095 4,659 221 4,438")
    assert {"date", "count"} <= row
    assert "count" in sentence_types("In 2023, 90 million Americans took part.")
    assert "money" in sentence_types("$91,754") and "count" not in sentence_types("$91,754")
    assert sentence_types("up to 35% of assets") == {"percent"}


@pytest.mark.parametrize("sentence", [
    "Executive Order 14330 of August 7, 2025 Democratizing Access to Alternative Assets",
    "SOURCE: Form 5500 and Form 5500-SF filings with the U.S. Department of Labor.",
    "(B) for the purposes of paragraph (23) of this section and section 1054 of this title, shall be treated",
    "第 14330 号行政令",
    "that is not needed to satisfy requirements under 31 U.S.C. 9705 or released",  # a citation's title number
    "Executive Order 14330 was published at 90 FR 38921.",
])
def test_a_number_after_a_designator_is_an_identifier_not_a_count(sentence):
    assert "count" not in sentence_types(sentence)


def test_a_count_beside_an_identifier_still_counts():
    assert "count" in sentence_types("Under Executive Order 14330, 90 million Americans may invest.")
    assert "count" in sentence_types("Under 31 U.S.C. 9705, 30 U.S. states may invest.")


def test_chinese_one_before_a_measure_word_is_the_article_not_a_count():
    assert "count" not in sentence_types("401(k) 不是单一基金,而是一个由员工控制的个人账户。")
    assert "count" not in sentence_types("特朗普签署了一项行政令。")
    assert "count" in sentence_types("两家公司退出了计划。")
    assert "count" in sentence_types("三十个州采纳了这一规则。")


@pytest.mark.parametrize("sentence", [
    "(b) Within 180 days of the date of this order, the Secretary of Labor shall reexamine the guidance.",
    "20 世纪初至 1920 年代,美国的养老金主要以固定收益计划为主。",
    "Employees vest after 3 years of service.",
    "至少提前 30 天书面通知参与者。",
])
def test_a_number_before_a_unit_of_time_is_a_duration_or_a_century_not_a_count(sentence):
    assert "count" not in sentence_types(sentence)

