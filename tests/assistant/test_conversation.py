"""Multi-turn memory: SQLite turns that outlive the process, and follow-ups made retrievable on their own."""

from __future__ import annotations

import pytest

from assistant.conversation import (
    ConversationStore,
    UnknownConversation,
    asks_without_naming,
    explicit_years,
    needs_history,
    reply_years,
    resolve_relative_year,
    standalone_query,
    year_offset,
)
from assistant.schema import ChatTurn
from assistant.table_query import series_question

NY_QUESTION = "When did New York let pension funds hold stocks?"
NY_ANSWER = "1950 年,纽约州率先部分采纳谨慎人规则,允许养老金投资高达 35% 的权益资产(如股票)。 [1]"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "state" / "conversations.sqlite3"  # the folder does not exist yet


def fill(store: ConversationStore, conversation_id: str, n: int) -> list[ChatTurn]:
    turns = []
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        store.append(conversation_id, role, f"{role} turn {i}", citations=[{"marker": 1}] if role == "assistant" else None)
        turns.append(ChatTurn(role=role, content=f"{role} turn {i}"))
    return turns


def test_create_append_history_in_order(db_path):
    store = ConversationStore(db_path)
    conversation_id = store.create()
    assert store.exists(conversation_id) and store.history(conversation_id) == []
    turns = fill(store, conversation_id, 5)
    assert store.history(conversation_id) == turns


def test_history_limit_keeps_the_latest_turns_oldest_first(db_path):
    store = ConversationStore(db_path)
    conversation_id = store.create()
    turns = fill(store, conversation_id, 7)
    assert store.history(conversation_id, limit=3) == turns[-3:]
    assert store.history(conversation_id, limit=1) == turns[-1:]
    assert store.history(conversation_id, limit=100) == turns


def test_conversations_are_separate_and_ids_unique(db_path):
    store = ConversationStore(db_path)
    a, b = store.create(), store.create()
    assert a != b
    store.append(a, "user", "question for a")
    store.append(b, "user", "question for b")
    store.append(a, "assistant", "answer for a")
    assert [t.content for t in store.history(a)] == ["question for a", "answer for a"]
    assert [t.content for t in store.history(b)] == ["question for b"]


def test_history_survives_a_restart(db_path):
    first = ConversationStore(db_path)
    conversation_id = first.create()
    turns = fill(first, conversation_id, 4)
    del first
    reopened = ConversationStore(db_path)  # a new process would do exactly this
    assert reopened.exists(conversation_id)
    assert reopened.history(conversation_id) == turns
    reopened.append(conversation_id, "user", "after the restart")
    assert reopened.history(conversation_id)[-1] == ChatTurn(role="user", content="after the restart")
    assert len(ConversationStore(db_path).history(conversation_id)) == 5


def test_unknown_conversation_raises_with_a_helpful_message(db_path):
    store = ConversationStore(db_path)
    store.create()
    with pytest.raises(UnknownConversation) as raised:
        store.history("no-such-id")
    assert raised.value.conversation_id == "no-such-id"
    message = str(raised.value)
    assert "no-such-id" in message and "omit it to start a new conversation" in message
    assert isinstance(raised.value, KeyError)
    assert not store.exists("no-such-id")


def test_reset_clears_turns_but_keeps_the_conversation(db_path):
    store = ConversationStore(db_path)
    kept, cleared = store.create(), store.create()
    fill(store, kept, 2)
    fill(store, cleared, 3)
    store.reset(cleared)
    assert store.exists(cleared) and store.history(cleared) == []
    assert len(store.history(kept)) == 2  # other conversations untouched
    store.append(cleared, "user", "a fresh start")
    assert store.history(cleared) == [ChatTurn(role="user", content="a fresh start")]


# --- follow-up → standalone query -----------------------------------------------------------------------------------


def history_of(*questions: str) -> list[ChatTurn]:
    turns = []
    for question in questions:
        turns += [ChatTurn(role="user", content=question), ChatTurn(role="assistant", content=NY_ANSWER)]
    return turns


@pytest.mark.parametrize("follow_up", [
    "And what share of equities did it allow?",
    "它允许员工怎样存钱?",
    "What about North Carolina?",
    "那么其他州呢?",
    "Why?",  # too short to stand alone
])
def test_follow_ups_carry_the_previous_user_question(follow_up):
    query = standalone_query(follow_up, history_of("What is a 401(k) plan?", NY_QUESTION))
    assert query.startswith(follow_up)
    assert NY_QUESTION in query  # the latest user question ...
    assert "What is a 401(k) plan?" not in query  # ... not an older one
    assert NY_ANSWER not in query  # and never the assistant's answer


@pytest.mark.parametrize("question", [
    "What does Executive Order 14330 direct the Secretary of Labor to do?",
    "How many Americans participate in employer-sponsored defined-contribution plans?",
    "1950 年纽约州允许养老金投资多少比例的股票?",
    "美国总统在 2025 年 8 月 7 日签署了什么行政令?",
])
def test_self_contained_questions_do_not_lean_on_history_but_still_get_a_query_with_it(question):
    assert not needs_history(question)  # ties of the evidence comparison go to the question alone
    # the comparison still gets the joined query: a reference back need not be a pronoun ("the order")
    assert standalone_query(question, history_of("What is a 401(k) plan?", NY_QUESTION)) == f"{question} ({NY_QUESTION})"


def test_a_question_without_a_pronoun_that_refers_back_gets_the_previous_question():
    follow_up = "does the order say anything about safe harbors?"
    assert not needs_history(follow_up)
    query = standalone_query(follow_up, history_of("What does EO 14330 ask the SEC to do?"))
    assert query == "does the order say anything about safe harbors? (What does EO 14330 ask the SEC to do?)"


def test_a_follow_up_of_a_follow_up_carries_the_questions_back_to_the_last_self_contained_one():
    history = history_of("What is a 401(k) plan?", "How many private pension plans did the DOL count in 2023?",
                         "活跃参与者呢?")
    query = standalone_query("那总资产呢", history)
    assert query == "那总资产呢 (How many private pension plans did the DOL count in 2023? 活跃参与者呢?)"
    assert "What is a 401(k) plan?" not in query  # the chain stops at the question that stands on its own


def test_a_question_that_only_points_back_gets_just_the_previous_question_not_the_chain():
    history = history_of("纽约州哪一年开始允许养老金投资股票?", "那比例上限是多少?")
    assert standalone_query("这项行政命令是哪天签署的?", history) == "这项行政命令是哪天签署的? (那比例上限是多少?)"


def test_without_a_previous_user_question_nothing_is_added():
    follow_up = "And what share of equities did it allow?"
    assert standalone_query(follow_up, []) == follow_up
    assistant_only = [ChatTurn(role="assistant", content=NY_ANSWER)]
    assert standalone_query(follow_up, assistant_only) == follow_up


# --- the year a follow-up points to ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "offset"), [
    ("and five years later?", 5),
    ("and a decade later", 10),
    ("how about two years earlier", -2),
    ("what did the total assets look like 10 years before that?", -10),
    ("and in the following year?", 1),
    ("what about the year before?", -1),
    ("and their total assets that year?", 0),
    ("三年前呢?", -3),
    ("十年后 401(k) 计划支付了多少福利?", 10),
    ("十五年之后呢", 15),
    ("那五年后的情况呢?", 5),
    ("what about ten years before that?", -10),
    ("and two years after?", 2),
    ("and twenty one years later?", 21),  # a compound count, not the "one" at its end
    ("what about thirty-five years earlier", -35),
    ("and one year later?", 1),
    ("次年呢", 1),
    ("前一年呢", -1),
    ("那一年的缴款总额是多少?", 0),
])
def test_year_offset_reads_relative_years_in_both_languages(question, offset):
    assert year_offset(question) == offset


@pytest.mark.parametrize("question", [
    "a few years later?",  # vague: no year to name
    "1990 年前的情况",  # "before 1990", a year of its own, not "1990 years ago"
    "How many years must an employee work before vesting?",
    "What happened to pensions after the crash?",
    # durations, not years: "before" / "after" followed by a clause, a Chinese span inside a clause
    "must an employee work 3 years before becoming eligible?",
    "can I withdraw 2 years after leaving my job?",
    "what happened the year before the crash?",
    "工作满 3 年后才能领钱吗?",
    "员工要工作两年以后才能参加吗?",
    "跟当年引入股票相比,作者怎么评价现在引入加密资产",  # 当年 is "back then" as often as "that year"
])
def test_year_offset_is_none_where_no_relative_year_is_named(question):
    assert year_offset(question) is None


def test_explicit_years_are_years_not_amounts_or_decades():
    assert explicit_years("$91,754 in 1984, 2,010 plans, 2010 年, the 1950s, 2020% and 1995 again 1984") == [
        "1984", "2010", "1995"]


def exchange(*turns: str) -> list[ChatTurn]:
    return [ChatTurn(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(turns)]


def test_a_relative_year_is_named_from_the_previous_question():
    history = exchange("how many 401(k) plans were there in 2000?", "348,053 in 2000.")
    assert resolve_relative_year("and five years later?", history) == "and five years later? (2005)"
    assert resolve_relative_year("三年前呢?", history) == "三年前呢? (1997)"
    assert resolve_relative_year("and their total assets that year?", history) == (
        "and their total assets that year? (2000)")


def test_a_relative_year_is_counted_from_the_resolved_one_before_it_and_through_continuations_without_a_year():
    history = exchange("how many 401(k) plans were there in 2000?", "348,053.",
                       "and five years later?", "436,207.",
                       "and their total assets?", "2,395,792 million.")
    assert resolve_relative_year("and the year after?", history) == "and the year after? (2006)"


def test_a_question_without_a_year_takes_the_year_its_reply_named():
    history = exchange("when did North Carolina let its pensions buy corporate bonds?", "In 1957, per the article.")
    assert resolve_relative_year("and four years later?", history) == "and four years later? (1961)"


@pytest.mark.parametrize(("question", "history"), [
    ("and five years later?", exchange("how many plans were there in 1975 and in 2023?", "311,094 and 836,843.")),
    ("and five years later?", exchange("what is a 401(k) plan?", "A plan of 1978, amended in 1981.")),  # two years
    ("and five years later?", exchange("what is a 401(k) plan?", "An employer-sponsored savings plan.")),
    ("how many were there in 2005, five years later?", exchange("how many plans were there in 2000?", "348,053.")),
    ("and five years later?", []),
])
def test_nothing_is_added_where_the_base_is_not_one_year_or_the_question_names_its_own(question, history):
    assert resolve_relative_year(question, history) == question


def test_the_carried_question_takes_the_year_the_follow_up_names():
    history = exchange("how many 401(k) plans were there in 2000?", "348,053 in 2000.")
    assert standalone_query("and in 2005?", history) == "and in 2005? (how many 401(k) plans were there in 2005?)"
    assert standalone_query("and five years later? (2005)", history) == (
        "and five years later? (2005) (how many 401(k) plans were there in 2005?)")
    assert standalone_query("and their assets?", history) == "and their assets? (how many 401(k) plans were there in 2000?)"


def test_a_table_answer_s_year_is_the_one_its_lead_line_names_outside_parentheses():
    found = ("Table E19 [1], Active Participants (thousands), first year above the figure asked: 2009 (60,285; 2008: "
             "59,976).\nTable E19 [1], 2008: Number of Plans 511,583 · Active Participants (thousands) 59,976")
    assert reply_years(found) == ["2009"]
    assert reply_years("英文资料 [1] 的 Table E19,Number of Plans,首次超过所问数额的年份:2008 年(511,583;2007 年:490,917)。"
                       "\n英文资料 [1] 的 Table E19,2007: Number of Plans 490,917") == ["2008"]
    # a lead line with no one year outside parentheses falls back to the whole reply's years
    assert reply_years("A plan of 1978, amended in 1981.") == ["1978", "1981"]
    history = exchange("when did 401(k) plan participants first pass 60 million", found)
    assert resolve_relative_year("and total plans that year?", history) == "and total plans that year? (2009)"


def test_a_follow_up_for_one_year_does_not_carry_the_previous_question_s_bound_or_extreme():
    history = exchange("when did 401(k) plan participants first pass 60 million", "2009 (60,285; 2008: 59,976).")
    query = standalone_query("and total plans that year? (2009)", history)
    assert query == "and total plans that year? (2009) (when did 401(k) plan participants first)"
    assert series_question(query) is None
    # without a year the follow-up still asks the previous question's operation of another column
    elliptical = standalone_query("and for total assets?", history)
    assert elliptical == "and for total assets? (when did 401(k) plan participants first pass 60 million)"
    assert series_question(elliptical) is not None


@pytest.mark.parametrize(("question", "expected"), [
    ("how much?", True), ("why?", True), ("by when?", True), ("how long do they have?", True), ("为什么?", True),
    ("谁管?", True), ("多少?", True), ("and then what?", True),
    ("and later?", True), ("what else?", True), ("那后来呢?", True),
    ("why did they change?", False), ("did other states follow soon after?", False),
    ("那总资产呢", False), ("Who chairs it?", False),
])
def test_a_question_that_names_nothing_but_what_it_asks_for(question, expected):
    assert asks_without_naming(question) == expected
