"""Multi-turn memory in SQLite (survives restarts, shared by workers), and follow-up → standalone query rewriting."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path

from assistant.answer_model import YEAR, explicit_years
from assistant.answer_types import HOW_MUCH, QUESTION_RULES, QUESTION_WORD
from assistant.claims import WORD_NUMBER, number_value
from assistant.clean import CJK_CHAR
from assistant.errors import NotFound
from assistant.lexical import tokenize
from assistant.schema import ChatTurn
from assistant.table_query import without_operation


class UnknownConversation(NotFound, KeyError):
    kind = "unknown_conversation"

    def __init__(self, conversation_id: str):
        super().__init__(f"unknown conversation id {conversation_id!r}; omit it to start a new conversation")
        self.conversation_id = conversation_id

    def __str__(self) -> str:
        return self.message


class ConversationStore:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, created REAL NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS turns (conversation_id TEXT NOT NULL REFERENCES conversations(id), "
                "seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, citations TEXT, created REAL NOT NULL, "
                "PRIMARY KEY (conversation_id, seq))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def create(self) -> str:
        conversation_id = uuid.uuid4().hex
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO conversations VALUES (?, ?)", (conversation_id, time.time()))
        return conversation_id

    def exists(self, conversation_id: str) -> bool:
        with closing(self._connect()) as db:
            return db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is not None

    def history(self, conversation_id: str, limit: int | None = None) -> list[ChatTurn]:
        if not self.exists(conversation_id):
            raise UnknownConversation(conversation_id)
        with closing(self._connect()) as db:
            rows = db.execute("SELECT role, content FROM turns WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?",
                              (conversation_id, -1 if limit is None else limit)).fetchall()
        return [ChatTurn(role=role, content=content) for role, content in reversed(rows)]

    def append(self, conversation_id: str, role: str, content: str, citations: list | None = None) -> None:
        if not self.exists(conversation_id):
            raise UnknownConversation(conversation_id)
        with closing(self._connect()) as db, db:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE conversation_id = ?",
                                (conversation_id,)).fetchone()
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                       (conversation_id, seq, role, content, json.dumps(citations or [], ensure_ascii=False), time.time()))

    def reset(self, conversation_id: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))


# Words that make a question lean on what came before it; an opener ("And…", "那…呢") leans on it wholly.
_OPENER = re.compile(r"^(and|but|also|so|what about|how about|then)\b|^(那|那么|还|另外|而|并且|它|他们|其)", re.I)
_ANAPHORA = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|the same|there|then)\b|"
    r"(它|他们|该|此|这|那|其|上述|同时)",
    re.I,
)
_SHORT = 12  # characters: shorter than this, a question names too little to be retrieved on its own
# Words that carry a conversation on without naming anything ("and later?", "what else?", "那后来呢?").
_ONWARD = re.compile(r"\b(?:and|but|so|later|after(?:wards)?|next|else|more|further|again|too|also|before|earlier)\b|"
                     r"后来|之后|然后|以后|此后|还有|那么|呢|吗", re.I)


def needs_history(question: str) -> bool:
    question = question.strip()
    return bool(_OPENER.search(question) or _ANAPHORA.search(question)) or len(question) < _SHORT


def is_elliptical(question: str) -> bool:
    """A question that is only a continuation ("And the total assets?", "那总资产呢", "Why?"), as opposed to one
    that merely points back with a word such as "this" ("这项行政命令是哪天签署的?" names what it asks about)."""
    question = question.strip()
    return bool(_OPENER.search(question)) or len(question) < _SHORT


def asks_without_naming(question: str) -> bool:
    """Whether a question holds nothing but what it asks for ("how much?", "why?", "by when?", "how long do they
    have?", "谁管?", "and later?"): less what the question rules match, the question words, and the words that point
    back or carry the conversation on, only stop words (and single Chinese characters) are left. Such a question names
    no topic: how close a sentence comes to it alone is noise."""
    rest = question
    for rule in (*QUESTION_RULES.values(), HOW_MUCH, QUESTION_WORD, _OPENER, _ANAPHORA, _ONWARD):
        rest = rule.sub(" ", rest)
    return not [token for token in tokenize(rest) if not (len(token) == 1 and CJK_CHAR.match(token))]


def standalone_query(question: str, history: list[ChatTurn]) -> str:
    """Make a follow-up retrievable on its own, without an LLM: carry the previous user question along with it.

    The dense model reads the pair as one request, so "And what share of equities did it allow?" after a question
    about New York's 1950 rule retrieves the passage about New York's 1950 rule.

    Every question asked after another gets this query, even one with no pronoun: a reference back need not be a
    pronoun ("does the order say anything about safe harbors?", "did other states follow soon after?"). Whether
    the question is answered from it or from the question alone is the caller's decision, by comparing evidence
    (``Assistant.evidence``); ``needs_history`` only breaks that comparison's ties.
    """
    previous = [turn.content for turn in history if turn.role == "user"]
    if not previous:
        return question
    # A continuation of a continuation ("那总资产呢" after "活跃参与者呢?") needs the question both lean on: carry
    # the previous questions back to the last one that stands on its own. A question that only points back with a
    # word like "this" gets just the previous question, so a new topic is not buried under the old one's chain.
    carried = [previous.pop()]
    while previous and is_elliptical(question) and needs_history(carried[-1]):
        carried.append(previous.pop())
    context = with_year_of(question, " ".join(reversed(carried)))
    if explicit_years(question):
        # A follow-up for one year's figure ("那一年的活跃参与者有多少?" resolved to 2008) asks for that year's row:
        # the bound or extreme the previous question computed ("first year above 500,000") no longer applies.
        context = " ".join(without_operation(context).split())
    return f"{question} ({context})"


# --- years a follow-up points to -------------------------------------------------------------------------------------
# "before" and "after" end the span ("ten years before that?"): followed by a clause they measure a duration ("work
# two years before you vest"), as does a Chinese span inside a clause ("工作满 3 年后"), which must open the question
# or close it with 呢
_CLAUSE_END = r"(?=(?:\s+(?:that|then|this|it))?\s*(?:[?？.!,，;]|$))"
_LATER = rf"(?:later|afterwards)\b|after{_CLAUSE_END}"
_EARLIER = rf"(?:earlier|previously)\b|(?:before|prior){_CLAUSE_END}"
_ENGLISH_SPAN = re.compile(
    rf"\b(?P<n>\d{{1,2}}|an?|one|{WORD_NUMBER})[\s-]+(?P<unit>years?|decades?)\s+(?:(?P<later>{_LATER})|"
    rf"(?P<earlier>{_EARLIER}))", re.I)
_ENGLISH_STEP = re.compile(
    rf"\bthe\s+(?:(?P<next>next|following|subsequent)\s+year|year\s+(?P<after>after){_CLAUSE_END}|"
    rf"(?P<prev>previous|prior|preceding)\s+year|year\s+(?P<before>before){_CLAUSE_END})|"
    r"\b(?P<same>that|the\s+same|that\s+same)\s+year\b", re.I)
_CHINESE_SPAN_CORE = r"(?P<n>\d{1,2}|[一两二三四五六七八九十]{1,3})\s*年\s*(?:(?P<later>之?后|以后)|(?P<earlier>之?前|以前))"
_CHINESE_SPANS = (re.compile(rf"^\s*(?:那么?|而|再|还有)?\s*{_CHINESE_SPAN_CORE}"),
                  re.compile(rf"(?<![\d,.]){_CHINESE_SPAN_CORE}\s*呢"))
_CHINESE_STEP = re.compile(r"(?P<next>次年|翌年|第二年|后一年|下一年)|(?P<prev>前一年|上一年)|(?P<same>那一?年|同一?年|这一年)")


def year_offset(question: str) -> int | None:
    """How far from the year the conversation is about a question points: "five years later" +5, "a decade earlier"
    -10, "the year before" -1, "that year" 0, "三年前" -3, "次年" +1. None when it points to no year: vague spans
    ("a few years later"), durations ("work 3 years before you vest", "工作满 3 年后") and 当年 ("back then" as often as
    "that year") point to none."""
    for pattern in (_ENGLISH_SPAN, *_CHINESE_SPANS):
        if span := pattern.search(question):
            n = span["n"].lower()
            count = 1 if n in ("a", "an") else number_value(n)  # digits, English words, Chinese numerals
            if count is None:
                return None
            decades = (span.groupdict().get("unit") or "").lower().startswith("decade")
            years = int(count) * (10 if decades else 1)
            return years if span["later"] else -years
    for pattern in (_ENGLISH_STEP, _CHINESE_STEP):
        if match := pattern.search(question):
            if match["same"]:
                return 0
            return 1 if match["next"] or match.groupdict().get("after") else -1
    return None


def resolve_relative_year(question: str, history: list[ChatTurn]) -> str:
    """Name the year a follow-up points to: "and five years later?" after a question about 2000 becomes "and five
    years later? (2005)", "那一年的缴款总额是多少?" after one about 2010 gets "(2010)".

    Retrieval and the answer model match years by their digits; a relative year has none, so the table row of the
    year the user means could not be told from its neighbours. The base year is the one the latest user question
    names (its own relative year resolved first), looking further back through continuations that name none ("and
    their total assets?"); a question that names no year is answered by its reply, if that names exactly one ("when
    did North Carolina let its pensions buy bonds?" "In 1957"; see ``reply_years``). Nothing is added where the
    question names a year of its own, or the base is not one year."""
    offset = year_offset(question)
    if offset is None or explicit_years(question):
        return question
    base = _base_year(history)
    return question if base is None else f"{question} ({base + offset})"


def _base_year(history: list[ChatTurn]) -> int | None:
    for at in range(len(history) - 1, -1, -1):
        turn = history[at]
        if turn.role != "user":
            continue
        years = explicit_years(resolve_relative_year(turn.content, history[:at]))
        if not years and is_elliptical(turn.content):
            continue  # a continuation that names no year is about the year before it
        if not years:
            replies = [t.content for t in history[at + 1:] if t.role == "assistant"]
            years = reply_years(replies[0]) if replies else []
        return int(years[0]) if len(years) == 1 else None
    return None


_PARENTHESES = re.compile(r"[(（][^()（）]*[)）]")


def reply_years(reply: str) -> list[str]:
    """The years a reply answers with: those its lead line names outside parentheses, if one; else those it names.

    A table answer leads with what it found and puts the figures it read in parentheses: "…first year above the
    figure asked: 2009 (60,285; 2008: 59,976)." names 2009 as the answer, 2008 as the row before it; the rows it
    quotes after that line name more years still."""
    lead = _PARENTHESES.sub(" ", reply.strip().split("\n", 1)[0])
    years = explicit_years(lead)
    return years if len(years) == 1 else explicit_years(reply)


def with_year_of(question: str, carried: str) -> str:
    """The previous question with its year changed to the one the follow-up names: "and in 2005?" after "how many
    plans were there in 2000?" searches for "how many plans were there in 2005?", not for both years at once. Only
    where each names exactly one year."""
    asked, earlier = explicit_years(question), explicit_years(carried)
    if len(asked) != 1 or len(earlier) != 1 or asked == earlier:
        return carried
    return YEAR.sub(lambda year: asked[0] if year.group(0) == earlier[0] else year.group(0), carried)
