"""Metric functions, pure and small: relevance of retrieved passages, answer checks, token F1, percentiles."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from assistant.stats import percentile  # noqa: F401 - part of the metrics the evaluator reads (m.percentile)

_WS = re.compile(r"\s+")
_CJK_RANGE = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A CJK character is a token on its own; otherwise a run of letters/digits (underscore excluded) is one word.
_TOKEN = re.compile(f"[{_CJK_RANGE}]|[^\\W_{_CJK_RANGE}]+", re.U)
_MARKER = re.compile(r"\[\d+(?:\s*[,，、]\s*\d+)*\]")


def squash(text: str) -> str:
    """``text`` without any whitespace: the form in which snippets are compared."""
    return _WS.sub("", text or "")


def contains(haystack: str, needle: str, case_sensitive: bool = True) -> bool:
    """Whitespace-insensitive substring test (optionally case-insensitive). An empty needle never matches."""
    n, h = squash(needle), squash(haystack)
    if not n:
        return False
    if not case_sensitive:
        n, h = n.casefold(), h.casefold()
    return n in h


def passage_matches(text: str, document: str, alternatives: Iterable[str], contexts: Sequence[str],
                    sources: Sequence[str]) -> bool:
    """Whether a retrieved passage is relevant: it contains a reference context (when contexts are given),
    else its document (or a document holding the same text) is a reference source."""
    if contexts:
        return any(contains(text, c) for c in contexts)
    if sources:
        names = {document, *alternatives}
        return any(s in names or _basename(s) in {_basename(n) for n in names} for s in sources)
    return False


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def first_relevant_rank(relevance: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant passage, or None."""
    for rank, relevant in enumerate(relevance, start=1):
        if relevant:
            return rank
    return None


def hit_at_k(relevance: Sequence[bool], k: int | None = None) -> bool:
    rank = first_relevant_rank(relevance)
    return rank is not None and (k is None or rank <= k)


def reciprocal_rank(relevance: Sequence[bool], k: int | None = None) -> float:
    rank = first_relevant_rank(relevance)
    return 0.0 if rank is None or (k is not None and rank > k) else 1.0 / rank


def includes_any(answer: str, required: Sequence[str]) -> bool:
    """Whether the answer contains at least one of the strings (whitespace- and case-insensitive)."""
    return any(contains(answer, r, case_sensitive=False) for r in required if r and r.strip())


def strip_markers(text: str) -> str:
    """The answer without its citation markers ([1], [1, 2]), which are no words of the answer."""
    return _MARKER.sub(" ", text or "")


def tokens(text: str) -> list[str]:
    """Lower-cased tokens: every Chinese character alone, otherwise words (letters and digits); punctuation dropped."""
    return _TOKEN.findall((text or "").lower())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 of ``prediction`` against ``reference`` (citation markers ignored)."""
    pred, ref = tokens(strip_markers(prediction)), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def mean(values: Iterable[float | bool | None]) -> float | None:
    data = [float(v) for v in values if v is not None]
    return sum(data) / len(data) if data else None
