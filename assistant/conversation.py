"""Multi-turn memory in SQLite (survives restarts, shared by workers), and follow-up → standalone query rewriting."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path

from assistant.errors import NotFound
from assistant.schema import ChatTurn


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


def needs_history(question: str) -> bool:
    question = question.strip()
    return bool(_OPENER.search(question) or _ANAPHORA.search(question)) or len(question) < _SHORT


def is_elliptical(question: str) -> bool:
    """A question that is only a continuation ("And the total assets?", "那总资产呢", "Why?"), as opposed to one
    that merely points back with a word such as "this" ("这项行政命令是哪天签署的?" names what it asks about)."""
    question = question.strip()
    return bool(_OPENER.search(question)) or len(question) < _SHORT


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
    return f"{question} ({' '.join(reversed(carried))})"
