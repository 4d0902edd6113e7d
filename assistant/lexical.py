"""Lexical (BM25) index on disk: SQLite FTS5 over jieba-segmented text, updated per document version.

Why not Chroma: chromadb 1.5.9's embedded engine has no ranked lexical search (``Collection.search`` with sparse /
BM25 ranking raises "Search is not implemented for Local Chroma"; ``where_document`` only filters, unranked, by
scanning). SQLite ships FTS5 with Python, keeps an inverted index on disk, ranks with ``bm25()`` and is updated
row by row, so neither a search nor an update touches every passage and no process holds the corpus in memory.

FTS5's own tokenizers do not segment Chinese, so text is segmented with jieba first and stored as space-separated
tokens; the ``unicode61`` tokenizer then only splits on those spaces (``tokenchars`` keeps ``1.2%`` whole).

Readers trust only the document versions they are given (the registry's), exactly as for the passages in Chroma:
rows of a version being written, or of one a killed sync left behind, are never returned and are swept later.

Where it lives: ``<index_dir>/lexical.sqlite3``, one per node. With a shared Chroma server each node keeps its own
copy and brings it up to date with ``reconcile`` (add the registered versions it lacks, drop the rest), because
SQLite files must not be shared over a network file system and Chroma has no ranked lexical search to share.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import jieba

from assistant.schema import Passage

jieba.setLogLevel(logging.WARNING)

FILE_NAME = "lexical.sqlite3"

_TOKEN = re.compile(r"[\w\u3400-\u9fff]+(?:[.,]\d+)*%?", re.U)  # words, and numbers such as 1.2% or 35%
STOP_WORDS = set(
    "a an and are as at be by for from has have how in is it its of on or that the this to was were what when which "
    "who why with did does do i you he she they we our their his her can could would should will shall may about into "
    "than then there these those such any all also not no 的 了 是 在 和 与 及 或 对 等 为 也 就 都 而 有 被 把 吗 呢 "
    "什么 哪些 哪个 如何 怎么 怎样 多少 是否 请问".split()
)


CJK_RUN = re.compile(r"[\u3400-\u9fff]+")


def _words(text: str) -> list[str]:
    return [w for w in _TOKEN.findall(text) if w not in STOP_WORDS]


def tokenize(text: str) -> list[str]:
    """Lower-cased words without stop words or punctuation; Chinese segmented by jieba (its search mode).

    Only runs of Chinese characters go through jieba: on English text it costs 50 times more than a regular
    expression and finds the same words.
    """
    text = text.lower()
    tokens: list[str] = []
    position = 0
    for run in CJK_RUN.finditer(text):
        tokens += _words(text[position:run.start()])
        tokens += [w for w in jieba.cut_for_search(run.group()) if w not in STOP_WORDS]
        position = run.end()
    return tokens + _words(text[position:])


def _match_expression(tokens: Iterable[str]) -> str:
    # Each token quoted as an FTS5 string, so words such as OR/NOT/NEAR are never read as operators.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in dict.fromkeys(tokens))


# The text index holds only tokens; which passage a row is lives in a plain table with B-tree indexes, so deleting a
# document version or filtering by document touches only its rows (FTS5's UNINDEXED columns would mean full scans).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, document TEXT NOT NULL, version TEXT NOT NULL,
    language TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rows_document ON rows (document, version);
CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5(
    tokens, tokenize = "unicode61 remove_diacritics 0 tokenchars '.,%_'"
);
CREATE VIRTUAL TABLE IF NOT EXISTS vocabulary USING fts5vocab(passages, 'row');
CREATE TABLE IF NOT EXISTS versions (
    document TEXT NOT NULL, version TEXT NOT NULL, passages INTEGER NOT NULL, PRIMARY KEY (document, version)
);
"""


class LexicalIndex:
    """``add`` / ``delete`` / ``sweep`` one document version's passages; ``search`` ranks by BM25; ``idf`` for weights.

    Safe for several threads (one SQLite connection per thread) and several processes (SQLite WAL: readers never
    wait for the writer).
    """

    def __init__(self, path: Path | str):
        """``path``: the folder that holds (or will hold) ``lexical.sqlite3``, normally ``settings.index_dir``."""
        self.path = Path(path) / FILE_NAME  # a folder: the index folder, beside Chroma's files
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        with self._db() as db:
            db.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
            with self._guard:
                self._connections.append(db)
        return db

    def close(self) -> None:
        with self._guard:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    # --- writes ---
    def add(self, passages: list[Passage]) -> int:
        """Index passages (of one or more document versions) in one transaction; re-adding a chunk replaces it."""
        if not passages:
            return 0
        rows = [(" ".join(tokenize(f"{p.context}\n{p.text}" if p.context else p.text)), p.chunk_id, p.document,
                 p.version, p.language) for p in passages]
        with self._db() as db:
            for tokens, chunk_id, document, version, language in rows:
                old = db.execute("SELECT id FROM rows WHERE chunk_id = ?", (chunk_id,)).fetchone()
                if old:  # the same chunk written again (a retried sync): replace it
                    db.execute("DELETE FROM passages WHERE rowid = ?", old)
                    db.execute("DELETE FROM rows WHERE id = ?", old)
                rowid = db.execute("INSERT INTO rows (chunk_id, document, version, language) VALUES (?,?,?,?)",
                                   (chunk_id, document, version, language)).lastrowid
                db.execute("INSERT INTO passages (rowid, tokens) VALUES (?, ?)", (rowid, tokens))
            db.executemany("INSERT OR REPLACE INTO versions (document, version, passages) "
                           "VALUES (?1, ?2, (SELECT count(*) FROM rows WHERE document = ?1 AND version = ?2))",
                           list(dict.fromkeys((p.document, p.version) for p in passages)))
        return len(rows)

    def delete(self, doc_id: str, keep_version: str | None = None) -> int:
        """Remove a document's passages, or with ``keep_version`` only those of its other versions."""
        with self._db() as db:
            where, params = ("document = ?", (doc_id,)) if keep_version is None else \
                ("document = ? AND version != ?", (doc_id, keep_version))
            db.execute(f"DELETE FROM passages WHERE rowid IN (SELECT id FROM rows WHERE {where})", params)
            removed = db.execute(f"DELETE FROM rows WHERE {where}", params).rowcount
            db.execute(f"DELETE FROM versions WHERE {where}", params)
        return removed

    def sweep(self, current: dict[str, str]) -> int:
        """Drop every row whose document version is not in ``current`` (doc id → version): a killed sync's leftovers."""
        removed = 0
        for doc_id, versions in self.indexed_versions().items():
            if versions != {current.get(doc_id)}:
                removed += self.delete(doc_id, keep_version=current.get(doc_id))
        return removed

    def reconcile(self, current: dict[str, str], passages_of: Callable[[str], Iterable[Passage]]) -> tuple[int, int]:
        """Bring this node's copy up to date with the registry: add versions it lacks, drop stale ones.

        ``passages_of(doc_id)`` yields the registered version's passages (e.g. read from Chroma filtered by
        document). Returns (passages added, passages removed). Cost is proportional to what changed.
        """
        indexed = self.indexed_versions()
        added = 0
        for doc_id, version in current.items():
            if version not in indexed.get(doc_id, ()):
                added += self.add([p for p in passages_of(doc_id) if p.version == version])
        return added, self.sweep(current)

    def indexed_versions(self) -> dict[str, set[str]]:
        """Doc id → the versions that have rows here (two while a sync replaces one, before it deletes the old)."""
        found: dict[str, set[str]] = {}
        for doc_id, version in self._db().execute("SELECT document, version FROM versions").fetchall():
            found.setdefault(doc_id, set()).add(version)
        return found

    # --- reads ---
    def search(self, query: str, n: int, documents: list[str] | None = None, language: str | None = None,
               versions: dict[str, str] | None = None) -> list[tuple[str, float]]:
        """Best ``n`` passages by BM25 as (chunk_id, score), higher is better; an empty list if no word matches.

        ``versions`` (doc id → registered version): only those document versions are trusted and returned;
        ``documents`` / ``language`` narrow the search further.
        """
        tokens = tokenize(query)
        if not tokens or n <= 0:
            return []
        sql = ("SELECT r.chunk_id, bm25(passages) AS rank FROM passages JOIN rows r ON r.id = passages.rowid "
               "WHERE passages MATCH ?")
        params: list = [_match_expression(tokens)]
        if documents is not None:
            sql += " AND r.document IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(list(documents)))
        if language is not None:
            sql += " AND r.language = ?"
            params.append(language)
        if versions is not None:
            sql += " AND r.document || char(31) || r.version IN (SELECT value FROM json_each(?))"
            params.append(json.dumps([f"{d}\x1f{v}" for d, v in versions.items()]))
        sql += " ORDER BY rank LIMIT ?"
        params.append(n)
        # bm25() is negative, lower is better; report it positive so callers can normalise by the best score.
        return [(chunk_id, -rank) for chunk_id, rank in self._db().execute(sql, params).fetchall()]

    def count(self) -> int:
        return int(self._db().execute("SELECT coalesce(sum(passages), 0) FROM versions").fetchone()[0])

    def document_frequency(self, tokens: Iterable[str]) -> dict[str, int]:
        """Number of passages that contain each token (0 if none), from FTS5's own vocabulary, no scan of rows."""
        wanted = list(dict.fromkeys(tokens))
        if not wanted:
            return {}
        found = dict(self._db().execute(
            "SELECT term, doc FROM vocabulary WHERE term IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),)).fetchall())
        return {t: int(found.get(t, 0)) for t in wanted}

    def idf(self, tokens: Iterable[str]) -> dict[str, float]:
        """BM25's idf of each token, ln(1 + (N − df + 0.5) / (df + 0.5)): the composer's word weights."""
        total = self.count()
        return {t: math.log(1 + (total - df + 0.5) / (df + 0.5)) for t, df in self.document_frequency(tokens).items()}
