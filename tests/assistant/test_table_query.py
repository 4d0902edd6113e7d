"""Questions that describe a table row by its values: the first year past a bound, the highest or lowest year."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.answer import is_table_row, row_not_asked
from assistant.answer_model import Candidate, featurize, question_features, question_numbers
from assistant.answer_types import analyse
from assistant.lexical import tokenize
from assistant.pipeline import Assistant
from assistant.settings import Settings
from assistant.table_query import (
    SeriesQuestion,
    answer_rows,
    cell_value,
    choose_column,
    column_scale,
    distinctive_words_named,
    heading_match,
    series_question,
    table_answer,
    table_says_none,
    without_operation,
)
from assistant.tables import SeriesRow, TableSeries
from tests.conftest import CEA_MD, DOL_TABLES, MANIFEST, MINILM_ABSTAIN_THRESHOLD, close_store, copy_into


@pytest.mark.parametrize(("question", "asked"), [
    ("In which year did total 401(k) assets first top $1 trillion?", SeriesQuestion("above", 1e12)),
    ("when did the number of plans first exceed 800,000?", SeriesQuestion("above", 800_000)),
    ("which year did plans first have more than 60 million active participants?", SeriesQuestion("above", 6e7)),
    ("When did defined benefit plans first fall below 50,000?", SeriesQuestion("below", 50_000)),
    ("in which year did DB plans first fall below 50,000, and what was the count?", SeriesQuestion("below", 50_000)),
    ("401(k) 计划的总缴款是哪一年首次超过 5000 亿美元的?", SeriesQuestion("above", 5e11)),
    ("活跃参与者人数哪一年首次突破三千万?", SeriesQuestion("above", 3e7)),
    ("哪一年 DB 计划跌破五万个?", SeriesQuestion("below", 5e4)),
    ("when did the number of plans first pass half a million?", SeriesQuestion("above", 5e5)),
    ("when did assets first top a trillion dollars?", SeriesQuestion("above", 1e12)),
    ("what year did contributions first exceed two hundred billion?", SeriesQuestion("above", 2e11)),
    ("when did participants first exceed twenty-five million?", SeriesQuestion("above", 2.5e7)),
    ("which year had the most defined benefit plans?", SeriesQuestion("highest")),
    ("what was the lowest number of multiemployer plans?", SeriesQuestion("lowest")),
    ("哪一年 401(k) 类计划数量最少?", SeriesQuestion("lowest")),
    # a change from the year before: "most" is the largest change, not the highest year
    ("which year did 401(k) assets fall the most?", SeriesQuestion("largest_fall")),
    ("when did the number of DB plans drop the most?", SeriesQuestion("largest_fall")),
    ("In which year did the number of plans grow the most?", SeriesQuestion("largest_rise")),
    ("哪一年 401(k) 总资产下降最多?", SeriesQuestion("largest_fall")),
    ("哪一年缴款总额增长最大?", SeriesQuestion("largest_rise")),
    ("when did assets first fall below 2 trillion?", SeriesQuestion("below", 2e12)),  # a bound, not a change
    # an end of the series: "most recent" is the latest year, not the most of anything
    ("How many defined benefit plans were there in the most recent year?", SeriesQuestion("latest")),
    ("total contributions to 401k-type plans in the latest year shown?", SeriesQuestion("latest")),
    ("最新一年有多少个 401(k) 类计划?", SeriesQuestion("latest")),
    ("最近一年多雇主计划有多少个?", SeriesQuestion("latest")),
    ("In the earliest year the table covers, how many active participants were there?", SeriesQuestion("earliest")),
    ("表格里最早那一年一共有多少个养老金计划?", SeriesQuestion("earliest")),
    ("when did assets first top $1 trillion, and what were they in the latest year?", SeriesQuestion("above", 1e12)),
])
def test_a_question_about_a_row_by_its_values_is_read_as_an_operation(question, asked):
    assert series_question(question) == asked


@pytest.mark.parametrize("question", [
    "How many 401(k)-type plans were there in 2000?",  # names its row
    "Under the 401k safe harbor match, what's the match rate on the first 3%?",  # "under the 401k" is a code
    "how much GDP could private equity add at most?",  # "at most" bounds one figure
    "合格自动供款安排的自动供款比例最高不得超过工资的多少?",  # 最高不得: "at most", not the highest year
    "did more than 90 million Americans have such plans?",  # a bound, but no year or value asked for
    "Which company offered the most generous 401(k) match?",  # an extreme, but neither a year nor a value
    "what was the biggest rise and fall of assets?",  # both changes: no one asked for
    "how did plan counts change from the earliest year to the latest?",  # both ends: no one row
    "最近十年 401(k) 资产增长了多少?",  # 最近 alone is "lately": a change over years, not the last row
])
def test_other_questions_ask_no_operation(question):
    assert series_question(question) is None


def test_a_bound_is_not_a_number_the_evidence_must_hold():
    assert question_numbers("when did the number of plans first exceed 800,000?") == {"800,000"}
    assert question_numbers(without_operation("when did the number of plans first exceed 800,000?")) == set()
    assert question_numbers(without_operation("how many plans were there in 1990?")) == {"1990"}


def test_the_words_of_an_extreme_or_a_change_are_not_words_the_evidence_must_hold():
    assert tokenize(without_operation("Which year had the fewest 401(k)-type plan participants?")) == tokenize(
        "Which year had the 401(k)-type plan participants?")
    assert "下降" not in without_operation("哪一年 401(k) 总资产下降最多?")
    assert "最多" not in without_operation("哪一年 401(k) 总资产下降最多?")
    assert without_operation("how many plans were there in 1990?") == "how many plans were there in 1990?"


def test_the_words_of_an_end_of_the_series_are_not_words_the_evidence_must_hold():
    assert tokenize(without_operation("How many plans were there in the most recent year?")) == tokenize(
        "How many plans were there in the year?")
    assert "最早" not in without_operation("表格里最早那一年一共有多少个养老金计划?")


def test_a_computed_row_is_not_asked_for_the_words_of_its_operation():
    question = "Which year had the fewest 401(k)-type plan participants?"
    row = Candidate(sentence_id="s", document="d", chunk_id="c", start=0, end=10, text="1984 17,303 7,526",
                    language="en", position=0, context="Year · Number of Plans · Active Participants", title="t",
                    cosine=0.5)
    plain = Candidate(**{**row.__dict__, "sentence_id": "p"})
    row.computed = True
    idf = {**dict.fromkeys(tokenize(question), 0.5), "fewest": 6.0, "participants": 2.0}
    featurize(analyse(question), question, [row, plain], 0.5, idf)
    assert row.features["overlap"] > plain.features["overlap"]  # "fewest", the rarest word, is not missed
    row.probability = plain.probability = 0.5
    computed, asked = (question_features(analyse(question), question, [c], [f"{c.context}\n{c.text}"], idf)
                       for c in (row, plain))
    assert computed["max_missing_idf"] == 0.5 and asked["max_missing_idf"] == 6.0


def test_units_and_cells_are_read_as_printed():
    assert column_scale("Total Assets (millions)") == 1e6
    assert column_scale("Active Participants (thousands)") == 1e3
    assert column_scale("Number of Plans") == 1.0
    assert cell_value("$91,754") == 91754.0
    assert cell_value("1,061,493") == 1061493.0
    assert cell_value("n/a") is None


ASSETS = TableSeries("Table X1", "Table X1. Plans and assets", ("Number of Plans", "Total Assets (millions)"), (
    SeriesRow(1994, ("174,945", "674,681"), 0, 10),
    SeriesRow(1995, ("200,813", "863,918"), 11, 20),
    SeriesRow(1996, ("230,808", "1,061,493"), 21, 30),
    SeriesRow(1997, ("210,000", "1,264,168"), 31, 40),
))


def test_a_crossing_is_the_first_year_past_the_bound_with_the_year_before_it():
    rows = answer_rows(SeriesQuestion("above", 1e12), ASSETS, 1)  # $1 trillion in a column of millions
    assert [r.year for r in rows] == [1996, 1995]
    falling = TableSeries("Table X3", "Table X3", ("Defined Benefit",), (
        SeriesRow(1997, ("59,499",), 0, 5), SeriesRow(1998, ("56,405",), 6, 11), SeriesRow(1999, ("49,895",), 12, 20)))
    assert [r.year for r in answer_rows(SeriesQuestion("below", 50_000), falling, 0)] == [1999, 1998]


def test_no_crossing_is_claimed_where_the_table_does_not_show_one():
    assert answer_rows(SeriesQuestion("above", 1e13), ASSETS, 1) == []  # never reached
    assert answer_rows(SeriesQuestion("above", 100_000), ASSETS, 0) == []  # already past in the first year


def test_a_bound_never_reached_is_told_from_one_passed_before_the_table_begins():
    assert table_says_none(SeriesQuestion("above", 1e13), ASSETS, 1)  # the table says: not by its last year
    assert not table_says_none(SeriesQuestion("above", 100_000), ASSETS, 0)  # the table cannot say when
    assert not table_says_none(SeriesQuestion("above", 1e12), ASSETS, 1)
    assert not table_says_none(SeriesQuestion("highest"), ASSETS, 1)


def test_extremes_are_the_highest_and_lowest_years():
    assert [r.year for r in answer_rows(SeriesQuestion("highest"), ASSETS, 0)] == [1996]
    assert [r.year for r in answer_rows(SeriesQuestion("lowest"), ASSETS, 1)] == [1994]


def test_the_ends_are_the_last_and_first_years_with_a_value_whatever_the_values():
    assert [r.year for r in answer_rows(SeriesQuestion("latest"), ASSETS, 0)] == [1997]  # not 1996, the highest
    assert [r.year for r in answer_rows(SeriesQuestion("earliest"), ASSETS, 1)] == [1994]
    later = TableSeries("Table X4", "Table X4", ("Total", "Multiple-Employer"), (
        SeriesRow(2016, ("10",), 0, 5), SeriesRow(2017, ("12", "3"), 6, 11), SeriesRow(2018, ("14", "4"), 12, 20)))
    assert [r.year for r in answer_rows(SeriesQuestion("earliest"), later, 1)] == [2017]  # its first printed year
    assert not table_says_none(SeriesQuestion("latest"), ASSETS, 0)
    found = table_answer(SeriesQuestion("latest"), ASSETS, 0, answer_rows(SeriesQuestion("latest"), ASSETS, 0))
    assert found.statement("en", 1) == "Table X1 [1], Number of Plans, latest year: 1997 (210,000)."
    assert found.statement("zh", 1) == "英文资料 [1] 的 Table X1,Number of Plans,最新的年份:1997 年(210,000)。"


def test_the_largest_change_is_the_year_with_the_year_before_it():
    assert [r.year for r in answer_rows(SeriesQuestion("largest_rise"), ASSETS, 1)] == [1997, 1996]  # +202,675
    assert [r.year for r in answer_rows(SeriesQuestion("largest_fall"), ASSETS, 0)] == [1997, 1996]  # −20,808
    assert answer_rows(SeriesQuestion("largest_fall"), ASSETS, 1) == []  # assets never fell


def test_a_column_that_never_changes_as_asked_says_no_year_answers():
    assert table_says_none(SeriesQuestion("largest_fall"), ASSETS, 1)
    assert not table_says_none(SeriesQuestion("largest_rise"), ASSETS, 1)
    assert not table_says_none(SeriesQuestion("largest_fall"), ASSETS, 0)


def test_what_was_found_is_said_with_the_tables_own_figures_the_answering_year_first():
    crossing = SeriesQuestion("above", 1e12)
    found = table_answer(crossing, ASSETS, 1, answer_rows(crossing, ASSETS, 1))
    assert found.statement("en", 2) == ("Table X1 [2], Total Assets (millions), first year above the figure asked: "
                                        "1996 (1,061,493; 1995: 863,918).")
    assert "1 trillion" not in found.statement("en", 2)  # the bound is the question's, not the table's
    assert found.statement("zh", 1) == ("英文资料 [1] 的 Table X1,Total Assets (millions),首次超过所问数额的年份:"
                                        "1996 年(1,061,493;1995 年:863,918)。")
    lowest = SeriesQuestion("lowest")
    assert table_answer(lowest, ASSETS, 0, answer_rows(lowest, ASSETS, 0)).statement("en", 1) == (
        "Table X1 [1], Number of Plans, lowest year: 1994 (174,945).")
    fall = SeriesQuestion("largest_fall")
    assert table_answer(fall, ASSETS, 0, answer_rows(fall, ASSETS, 0)).statement("zh", 1).endswith(
        "比上一年减少最多的年份:1997 年(210,000;1996 年:230,808)。")


def test_a_shorter_row_is_skipped_for_the_columns_it_lacks():
    grown = TableSeries("Table X2", "Table X2", ("Total", "Added later"), (
        SeriesRow(2015, ("10",), 0, 5), SeriesRow(2016, ("12",), 6, 11), SeriesRow(2017, ("13", "4"), 12, 20),
        SeriesRow(2018, ("14", "6"), 21, 30)))
    assert [r.year for r in answer_rows(SeriesQuestion("highest"), grown, 1)] == [2018]
    assert [r.year for r in answer_rows(SeriesQuestion("lowest"), grown, 1)] == [2017]


def test_a_heading_is_matched_by_the_words_the_question_names_and_leaves_out():
    question = "which year had the most defined benefit plans?"
    assert heading_match(question, "Total Plans Defined Benefit") == (0, 3)  # "total" is the aggregate, implied
    assert heading_match(question, "Multiemployer Plans Defined Benefit") == (1, 3)
    assert heading_match("单一雇主 DC 计划数量最多的是哪一年?", "Single−Employer Plans Defined Contribution") == (0, 5)
    assert heading_match("单一雇主 DC 计划数量最多的是哪一年?", "Single−Employer Plans Defined Benefit") == (2, 3)
    assert heading_match("total assets", "Total Assets (millions)") == (0, 1)  # the unit is no word of the heading
    # 多雇主: 雇主 is "employer", the end of the compound "multiemployer"
    assert heading_match("哪一年多雇主 DB 计划最多?", "Multiemployer Plans Defined Benefit") == (0, 4)
    assert heading_match("哪一年多雇主 DB 计划最多?", "Single−Employer Plans Defined Benefit") == (1, 4)


def test_the_corpus_glossary_names_a_heading_word_the_dictionary_does_not_translate():
    question = "401(k) 计划的总缴款是哪一年首次超过 5000 亿美元的?"  # 缴款: "to pay" in the dictionary
    assert heading_match(question, "Total Contributions (millions)") == (1, 0)
    assert heading_match(question, "Total Contributions (millions)", {"contribution": frozenset({"缴款"})}) == (0, 1)


def test_the_column_is_the_most_completely_named_then_the_nearest_in_meaning():
    e1 = TableSeries("Table E1", "Table E1. Number of Pension Plans", (
        "Total Plans Defined Benefit", "Multiemployer Plans Defined Benefit", "Total Plans Defined Contribution"), ())
    e19 = TableSeries("Table E19", "Table E19. 401(k)-Type Plans", ("Number of Plans", "Total Assets (millions)"), ())
    vector = np.array([1.0, 0.0], dtype=np.float32)
    vectors = [np.array([[0.6, 0.8], [0.9, 0.1], [0.5, 0.5]], dtype=np.float32),  # E1 holds the nearest column
               np.array([[0.2, 0.9], [0.1, 0.9]], dtype=np.float32)]
    # meaning alone would take Multiemployer (0.9); the question never says "multiemployer"
    assert choose_column("which year had the most defined benefit plans?", vector, [e1, e19], vectors) == (0, 0)
    # named whole by both, the more specific heading wins over the aggregate nearer in meaning
    nearer_total = [np.array([[0.9, 0.1], [0.6, 0.8], [0.5, 0.5]], dtype=np.float32), vectors[1]]
    assert choose_column("the most multiemployer defined benefit plans?", vector, [e1, e19], nearer_total) == (0, 1)
    # nothing named: the heading that leaves out fewest words (the aggregate), then meaning
    assert choose_column("哪一年最多?", vector, [e1, e19], vectors) == (0, 0)
    assert choose_column("哪一年最多?", np.array([0.0, 1.0], dtype=np.float32), [e1, e19], vectors) == (1, 1)
    assert choose_column("anything", vector, [], []) is None


def test_the_table_whose_own_words_the_question_names_comes_before_the_nearer_one_in_meaning():
    e1 = TableSeries("Table E1", "Table E1. Number of Pension Plans by type of plan", (
        "Total Plans Total", "Total Plans Defined Benefit"), ())
    e19 = TableSeries("Table E19", "Table E19. Number of 401(k)-Type Plans, Active Participants, Assets, and Benefits",
                      ("Number of Plans", "Active Participants (thousands)"), ())
    # "401(k)" is E19's alone; "plans", "number", "type" are in both; E19's "Benefits" is E1's "Benefit" too
    assert distinctive_words_named("which year had the fewest 401(k)-type plans?", [e1, e19]) == [0, 1]
    assert distinctive_words_named("which year had the most defined benefit plans?", [e1, e19]) == [1, 0]
    assert distinctive_words_named("which year had the most plans?", [e1, e19]) == [0, 0]
    vector = np.array([1.0, 0.0], dtype=np.float32)
    vectors = [np.array([[0.9, 0.1], [0.5, 0.5]], dtype=np.float32),  # E1's total is nearest in meaning
               np.array([[0.6, 0.8], [0.1, 0.9]], dtype=np.float32)]
    assert choose_column("which year had the fewest 401(k)-type plans?", vector, [e1, e19], vectors) == (1, 0)
    assert choose_column("which year had the fewest plans?", vector, [e1, e19], vectors) == (0, 0)  # meaning decides


def test_of_the_columns_a_question_names_the_one_that_passes_its_bound_is_meant():
    table = TableSeries("Table X3", "Table X3. 401(k)-Type Plans", ("Number of Plans", "Active Participants (thousands)"), (
        SeriesRow(2016, ("560,373", "67,121"), 0, 10), SeriesRow(2017, ("571,841", "68,187"), 11, 20),
        SeriesRow(2018, ("588,499", "70,335"), 21, 30)))
    vectors = [np.array([[0.6, 0.8], [0.5, 0.5]], dtype=np.float32)]
    vector = np.array([1.0, 0.0], dtype=np.float32)
    question = "在哪一年,参加 401(k) 计划的活跃人数首次超过 7000 万?"  # names Number of Plans whole: 计划, 人数
    assert choose_column(question, vector, [table], vectors) == (0, 0)
    asked = series_question(question)
    assert choose_column(question, vector, [table], vectors, asked=asked) == (0, 1)  # plans never number 70 million
    never = SeriesQuestion("above", 1e9)  # no named column passes it: the first says none does
    assert choose_column(question, vector, [table], vectors, asked=never) == (0, 0)
    rise = SeriesQuestion("largest_rise")  # every column rises: no help
    assert choose_column(question, vector, [table], vectors, asked=rise) == (0, 0)


def test_a_computed_row_need_not_hold_the_bound_but_other_sentences_must():
    question = "when did the number of plans first exceed 800,000?"
    rows = [Candidate(sentence_id=f"s{i}", document="d", chunk_id="c", start=0, end=10, text="2022 801,371 46,508",
                      language="en", position=0, context="", title="t", cosine=0.5) for i in range(2)]
    rows[0].computed = True
    featurize(analyse(question), question, rows, 0.5, {})
    assert rows[0].features["numbers_missing"] == 0.0
    assert rows[1].features["numbers_missing"] == 1.0


# --- through the pipeline: the real DOL tables, the real store ------------------------------------------------------


@pytest.fixture(scope="module")
def tables_assistant(tmp_path_factory, minilm_path, corpus_mirror, shared_embedder):
    base = tmp_path_factory.mktemp("tables")
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", model_cache=base / "models",
                        embedding_model=minilm_path, embedding_dtype="float32", corpus_manifest=MANIFEST,
                        llm_provider="none", lexical_weight=0.0, abstain_threshold=MINILM_ABSTAIN_THRESHOLD,
                        answer_threshold=0.0)
    copy_into(settings.corpus_dir, [DOL_TABLES, CEA_MD], corpus_mirror)
    built = Assistant(settings, embedder=shared_embedder)
    assert not built.sync(show_progress=False).failed
    yield built
    close_store(built.store)


def test_the_row_past_a_bound_leads_retrieval_and_is_quoted(tables_assistant):
    question = "In which year did total 401(k) plan assets first exceed $1 trillion?"
    retrieval = tables_assistant.retriever.retrieve(question)
    assert [r.text.split()[0] for r in retrieval.table.rows] == ["1996", "1995"]
    assert retrieval.table.rows[0].text in retrieval.hits[0].text
    answer = tables_assistant.ask(question, history=[])
    quotes = " ".join(c.quote for c in answer.citations)
    assert "1996 230,808 30,643 1,061,493" in quotes and "1995 200,813" in quotes
    assert "Total Assets (millions) 1,061,493" in answer.answer  # the row read under its headings
    # said first: the year that answers, though the quote shows 1995's row before it
    assert answer.answer.startswith("Table E19 [1], Total Assets (millions), first year above the figure asked: "
                                    "1996 (1,061,493; 1995: 863,918).")


def test_the_most_recent_year_is_the_last_row_not_the_highest(tables_assistant):
    # defined benefit plans peaked in 1983: "the most" of the column would answer from that year
    question = "How many defined benefit plans were there in the most recent year?"
    retrieval = tables_assistant.retriever.retrieve(question)
    assert [r.text.split()[0] for r in retrieval.table.rows] == ["2023"]
    answer = tables_assistant.ask(question, history=[])
    assert answer.answer.startswith("Table E1 [1], Total Plans Defined Benefit, latest year: 2023 (46,233).")
    assert "2023 836,843 46,233" in answer.citations[0].quote


def test_a_bound_the_table_never_reaches_is_refused(tables_assistant):
    question = "When did total 401(k) plan assets first exceed $20 trillion?"
    retrieval = tables_assistant.retriever.retrieve(question)
    assert retrieval.table.says_none and retrieval.table.rows == []
    answer = tables_assistant.ask(question, history=[])  # this fixture answers at any confidence, yet refuses
    assert not answer.grounded and answer.citations == []


def test_a_question_that_names_no_column_computes_nothing(tables_assistant):
    # an extreme and a question for a year, and the table's passages lead; but no column is what it asks about
    question = "When did unemployment peak during the Great Depression?"
    retrieval = tables_assistant.retriever.retrieve(question)
    assert retrieval.hits[0].document == DOL_TABLES
    assert retrieval.table.rows == [] and not retrieval.table.says_none


def test_a_table_found_by_one_retrieved_row_is_read_when_the_question_names_its_column(tables_assistant):
    retriever = tables_assistant.retriever
    revision = retriever.view().revision
    cea = retriever.search("private equity GDP benefit", k=4, documents=[CEA_MD])
    row = next(h for h in retriever.search("401(k) plans, assets", k=30, documents=[DOL_TABLES])
               if "2018 588,499" in h.text)  # a passage of Table E19's rows
    hits = [*cea, row]  # another document leads and holds most passages; one row of the table is among them

    def finding(question):
        return retriever.table_finding(question, tables_assistant.embedder.embed_queries([question])[0], hits,
                                       revision)

    found = finding("When did total assets of 401(k)-type plans first exceed $1 trillion?")
    assert [r.text.split()[0] for r in found.rows] == ["1996", "1995"]
    assert found.answer is not None and found.answer.column == "Total Assets (millions)"
    # "Active Participants" named in part: a table reached by one row must be named whole
    assert finding("When did 401(k) participants first exceed 20 million?").rows == []
    assert finding("When did active participants first exceed 20 million?").rows != []


def test_a_question_that_names_its_year_is_answered_from_that_years_row_alone(tables_assistant):
    answer = tables_assistant.ask("How many active participants did 401(k)-type plans have in 1995?", history=[])
    assert answer.grounded
    rows = [line.split()[0] for c in answer.citations for line in c.quote.split("\n") if line[:2] in ("19", "20")]
    assert rows == ["1995"]


def test_a_row_of_a_year_not_asked_about_is_told_apart():
    assert row_not_asked("1994 174,945 25,062 674,681 75,878 50,659", {"1995"})
    assert not row_not_asked("1995 200,813 27,759 863,918 87,416 62,163", {"1995"})
    assert not row_not_asked("2004r 400,000 50,000", {"2004"})  # a revised row keeps its year
    assert row_not_asked("1994 174,945 25,062", set())  # no year asked: no row is asked for by its year
    assert not row_not_asked("In 1994, 174,945 plans filed.", {"1995"})  # a sentence, not a row
    assert is_table_row("1984 17,303 7,526 $91,754") and not is_table_row("In 1984, 17,303 plans filed.")


def test_a_question_that_names_its_row_computes_nothing(tables_assistant):
    assert tables_assistant.retriever.retrieve("How many 401(k)-type plans were there in 1996?").table.rows == []
