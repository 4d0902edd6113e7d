"""The corpus's own bilingual terms: a Chinese term written with its English name beside it.

The seed article writes 「谨慎人规则」(Prudent Man Rule) and 固定缴款计划 (Defined Contribution Plan). Those pairs are
mined from each document at ingest (stored in the document's metadata) and shown with quotes: an English reader of a
Chinese quote gets the English names of the terms in it, a Chinese reader of an English quote the Chinese terms.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import lru_cache

import jieba

from assistant.bilingual import singular

# 「term」(English), 《term》(English), or a run of CJK characters followed by (English); full- or half-width brackets.
_PAIR = re.compile(r"(?:[「《“]([\u4e00-\u9fff·]{2,16})[」》”]|([\u4e00-\u9fff]{2,24}))\s*[（(]\s*"
                   r"([A-Za-z][A-Za-z0-9 .,'’&/\-]{1,60}?)\s*[)）]")
# Words that end a phrase before a term rather than belong to it ("采用谨慎人规则" → "谨慎人规则" is the term).
_BEFORE_TERM = set("的 了 是 在 和 与 及 或 为 将 把 被 对 即 称 从 向 以 由 于 采用 采纳 引入 推出 建立 通过 设立 实施 "
                   "开始 一种 一个 这种 所谓 传统 名为 叫做 称为".split())
_MAX_TERM_CHARS = 8


def without_english_names(text: str) -> str:
    """A Chinese text less the English names it writes beside its terms: "1935 年,《社会保障法》(Social Security
    Act)出台" reads "1935 年,《社会保障法》出台". Such a name translates a term; it names no person."""
    return _PAIR.sub(lambda match: match.group(0)[:match.start(3) - match.start(0)].rstrip("（( "), text)


def trim_term(run: str) -> str:
    """The term at the end of a run of Chinese text: the last words up to a function word or 8 characters."""
    words = list(jieba.cut(run))
    term: list[str] = []
    for word in reversed(words):
        if word in _BEFORE_TERM or len("".join(term)) + len(word) > _MAX_TERM_CHARS:
            break
        term.insert(0, word)
    return "".join(term) or run[-_MAX_TERM_CHARS:]


def mine_pairs(text: str) -> list[tuple[str, str]]:
    """(Chinese term, English name) pairs as the text writes them, first occurrence of each Chinese term."""
    pairs: dict[str, str] = {}
    for match in _PAIR.finditer(text):
        bracketed, run, english = match.group(1), match.group(2), match.group(3).strip()
        term = bracketed or trim_term(run)
        if len(term) >= 2 and term not in pairs and re.search(r"[A-Za-z]{2,}", english):
            pairs[term] = english
    return list(pairs.items())


def to_metadata(pairs: list[tuple[str, str]]) -> str:
    return json.dumps(pairs, ensure_ascii=False)


def from_metadata(value: str | None) -> list[tuple[str, str]]:
    try:
        return [(zh, en) for zh, en in json.loads(value or "[]")]
    except (ValueError, TypeError):
        return []


def terms_in(quote: str, pairs: list[tuple[str, str]], reader: str) -> list[tuple[str, str]]:
    """Pairs whose term occurs in a quote: the Chinese term for an English reader, the English name for a Chinese
    reader (case-insensitive)."""
    low = quote.lower()
    found = []
    for zh, en in pairs:
        present = zh in quote if reader == "en" else en.lower() in low
        if present and (zh, en) not in found:
            found.append((zh, en))
    return found


@lru_cache(maxsize=8)
def aligned_words(pairs: tuple[tuple[str, str], ...]) -> dict[str, frozenset[str]]:
    """English word (singular, lower case) → Chinese words, from the pairs whose words line up one to one, in order:
    固定缴款计划 (Defined Contribution Plan) gives "contribution" ↔ 缴款, a word the dictionary glosses only as "to
    pay". Compound terms are built word by word the same way in both languages; a pair that splits into different
    counts (社会保障法, Social Security Act) says nothing about its words."""
    aligned: dict[str, set[str]] = defaultdict(set)
    for zh, en in pairs:
        zh_words = [w for w in jieba.cut(zh) if w.strip()]
        en_words = [singular(w.lower()) for w in re.findall(r"[A-Za-z]+", en)]
        if len(zh_words) == len(en_words) > 1:
            for chinese, english in zip(zh_words, en_words):
                aligned[english].add(chinese)
    return {english: frozenset(chinese) for english, chinese in aligned.items()}
