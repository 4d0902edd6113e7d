"""Step 7, answer: compose a short answer from retrieved passages, every sentence tied to a quoted span.

The default composer is extractive and needs no LLM: it picks the sentences of the best passages that answer the
question (shared words weighted by BM25 idf, the kind of fact asked for: a year, a share, a number, and the
passage's retrieval score) and quotes them. When the reader's language differs from the source's, it first states
the language-neutral facts of the quoted sentences (years, numbers, percentages, Latin-script names), so a reader
who knows no Chinese still learns "1950" and "35%". When the best evidence is too weak, it abstains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.clean import detect_language
from assistant.retrieve import tokenize
from assistant.schema import SearchHit

_ABBREVIATIONS = re.compile(r"(\b[A-Z]\.|\b(?:Sec|No|Vol|Mr|Ms|Dr|Inc|U\.S|e\.g|i\.e|etc|Pub|L|Stat|U\.S\.C|v|St|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.)$")
_BOUNDARY = re.compile(r"[。！？；]|[.!?;](?=\s)|\n")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)(?:s)?\b|(1[89]\d\d|20\d\d)\s*年")
_PERCENT = re.compile(r"\d+(?:\.\d+)?\s*%|percent|百分之")
_NUMBER = re.compile(r"\d[\d,.]*")
_FACT = re.compile(r"\d[\d,.]*(?:\s*%|s\b)?|[A-Za-z][A-Za-z0-9()’'.\-]*(?:\s+[A-Za-z(][A-Za-z0-9()’'.\-]*)*")

_ASKS_YEAR = re.compile(r"\b(when|what year|which year|since when|how long ago)\b|哪一年|哪年|何时|什么时候|几年|年份", re.I)
_ASKS_SHARE = re.compile(r"\b(share|percent|percentage|proportion|fraction|rate|how much of|up to what)\b|比例|百分|占比|多少%|份额|比率|上限", re.I)
_ASKS_NUMBER = re.compile(r"\b(how many|how much|number of|how long|how large|total)\b|多少|几|数量|数目|总数|多长", re.I)

ABSTAIN = {
    "en": "The sources in this corpus do not answer that question, so I won't guess.",
    "zh": "本语料库中的资料没有回答这个问题,我不作猜测。",
}


@dataclass(frozen=True)
class Span:
    hit: SearchHit
    start: int  # offsets into the document's cleaned text
    end: int
    score: float

    @property
    def text(self) -> str:
        return self.hit.text[self.start - self.hit.start:self.end - self.hit.start]


def sentence_spans(hit: SearchHit) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a passage, as offsets into its document."""
    text = hit.text
    spans = []
    begin = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if text[match.start()] == "." and _ABBREVIATIONS.search(text[begin:end]):
            continue
        piece = text[begin:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((begin + lead, begin + len(piece.rstrip())))
        begin = end
    if text[begin:].strip():
        piece = text[begin:]
        lead = len(piece) - len(piece.lstrip())
        spans.append((begin + lead, begin + len(piece.rstrip())))
    return [(hit.start + s, hit.start + e) for s, e in spans if e - s >= 2]


def _answer_type_bonus(question: str, sentence: str) -> float:
    bonus = 0.0
    if _ASKS_YEAR.search(question) and _YEAR.search(sentence):
        bonus += 0.35
    if _ASKS_SHARE.search(question) and _PERCENT.search(sentence):
        bonus += 0.35
    if _ASKS_NUMBER.search(question) and _NUMBER.search(sentence):
        bonus += 0.2
    return bonus


def score_sentences(question: str, hits: list[SearchHit], idf: dict[str, float] | None = None) -> list[Span]:
    query_tokens = set(tokenize(question))
    weight = (lambda t: max(idf.get(t, 1.0), 0.1)) if idf else (lambda t: 1.0)
    query_mass = sum(weight(t) for t in query_tokens) or 1.0
    top = hits[0].score if hits else 1.0
    spans = []
    for rank, hit in enumerate(hits):
        sentences = sentence_spans(hit)
        for position, (start, end) in enumerate(sentences):
            text = hit.text[start - hit.start:end - hit.start]
            overlap = sum(weight(t) for t in query_tokens & set(tokenize(text))) / query_mass
            score = (
                hit.score / top  # how good the passage is
                + 0.8 * overlap  # shared words (works within a language, and for numbers and names across)
                + _answer_type_bonus(question, text)
                - 0.02 * position  # passages often open with the point
                - 0.1 * rank
            )
            if len(text) < 8:
                score -= 0.5  # a list marker is no answer
            elif len(text) < 60 and not text.rstrip().endswith(tuple(".。!?！？;；")):
                score -= 0.3  # a heading names the topic but does not answer
            # A year the question names picks the row of a table, or the sentence of a history.
            years = set(_QUESTION_YEAR.findall(question))
            if years and years & set(_QUESTION_YEAR.findall(text)):
                score += 0.4
            spans.append(Span(hit, start, end, score))
    return sorted(spans, key=lambda s: s.score, reverse=True)


def select_spans(question: str, hits: list[SearchHit], max_sentences: int, idf: dict[str, float] | None = None) -> list[Span]:
    """The best sentences: up to two from the best passage, plus strong ones from others; merged where adjacent."""
    ranked = score_sentences(question, hits[:3], idf)
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    for span in ranked[1:]:
        if len(chosen) >= max_sentences:
            break
        same_passage = span.hit.chunk_id == best.hit.chunk_id
        if span.score >= best.score - (0.45 if same_passage else 0.25):
            chosen.append(span)
    chosen.sort(key=lambda s: (s.hit.document, s.start))
    merged: list[Span] = []
    for span in chosen:
        last = merged[-1] if merged else None
        if last and last.hit.chunk_id == span.hit.chunk_id and span.start - last.end <= 2:
            merged[-1] = Span(last.hit, last.start, span.end, max(last.score, span.score))
        else:
            merged.append(span)
    return sorted(merged, key=lambda s: s.score, reverse=True)


def language_neutral_facts(text: str) -> list[str]:
    """Years, numbers, percentages and Latin-script names: what a reader of any language can take from a quote."""
    facts: list[str] = []
    for match in _FACT.finditer(text):
        fact = match.group(0).strip(" .,;:()’'-")
        if len(fact) < 2 and not fact.isdigit():
            continue
        if fact and fact not in facts:
            facts.append(fact)
    return facts[:8]


def question_language(question: str) -> str:
    return detect_language(question)


def render(question: str, spans: list[Span]) -> tuple[str, list[tuple[int, Span]]]:
    """Answer text with [n] markers; returns the text and (marker, span) pairs."""
    reader = question_language(question)
    parts = []
    numbered = []
    for marker, span in enumerate(spans, start=1):
        numbered.append((marker, span))
        quote = " ".join(span.text.split()) if detect_language(span.text) == "en" else span.text.replace("\n", "")
        if span.hit.language == reader or detect_language(span.text) == reader:
            parts.append(f"{quote} [{marker}]")
            continue
        facts = language_neutral_facts(span.text)
        if reader == "en":
            lead = f"The source [{marker}] (in Chinese) states" + (f" these facts: {', '.join(facts)}." if facts else ":")
            parts.append(f"{lead} Quote: “{quote}” [{marker}]")
        else:
            lead = f"英文资料 [{marker}] 指出" + (f"(要点:{'、'.join(facts)})" if facts else "")
            parts.append(f"{lead}:“{quote}” [{marker}]")
    joiner = "\n" if reader == "en" else "\n"
    return joiner.join(parts), numbered


def abstain_text(question: str) -> str:
    return ABSTAIN[question_language(question)]


_QUESTION_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_ASKS_AMOUNT = re.compile(r"\b(how many|how much|what (?:was|is) the (?:value|amount|number|price|limit)|peak value|price of|dollar)\b|多少|几|金额|价格|上限|数额", re.I)
_AMOUNT = re.compile(r"(?<![\d.])\d[\d,]*(?:\.\d+)?(?![\d])")


def unmet_constraints(question: str, hits: list[SearchHit], spans: list[Span]) -> list[str]:
    """Reasons the evidence cannot answer this question even though it is on topic.

    On-topic but unanswerable questions (the 2024 IRA limit, a price, a count the corpus never gives) retrieve
    passages as similar as real answers do, so similarity alone cannot tell them apart. Two checks can: a year the
    question names must occur in the evidence, and a question asking for an amount needs a number in the quoted
    sentences other than the numbers the question itself contains.
    """
    reasons = []
    evidence = " ".join(f"{h.context} {h.text}" for h in hits[:3])
    for year in set(_QUESTION_YEAR.findall(question)):
        if year not in evidence:
            reasons.append(f"the sources do not mention {year}")
    if _ASKS_AMOUNT.search(question) and spans:
        asked = set(_AMOUNT.findall(question))
        quoted = " ".join(s.text for s in spans)
        numbers = {n for n in _AMOUNT.findall(quoted) if n not in asked and not _QUESTION_YEAR.fullmatch(n)}
        if not numbers:
            reasons.append("the quoted passages give no amount")
    return reasons
