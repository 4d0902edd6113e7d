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
from assistant.sentences import ends_sentence
from assistant.sentences import sentence_spans as passage_sentence_spans

_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)(?:s)?\b|(1[89]\d\d|20\d\d)\s*年")
_PERCENT = re.compile(r"\d+(?:\.\d+)?\s*%|percent|百分之")
_NUMBER = re.compile(r"\d[\d,.]*")
_FACT = re.compile(r"\d[\d,.]*(?:\s*%|s\b)?|[A-Za-z][A-Za-z0-9()’'.\-]*(?:\s+[A-Za-z(][A-Za-z0-9()’'.\-]*)*")

_TABLE_ROW = re.compile(r"^\s*(?:19|20)\d\d\w?\s+[\d,.]+\s+[\d,.]+")
_ASKS_TABLE = re.compile(r"\btable\b|表", re.I)
_ASKS_AUTHOR = re.compile(r"\b(who wrote|author|written by)\b|作者|谁写", re.I)
_AUTHOR = re.compile(r"撰文|作者|\bby\b|\bauthor", re.I)
_ASKS_YEAR = re.compile(r"\b(when|what year|which year|since when|how long ago)\b|哪一年|哪年|何时|什么时候|几年|年份", re.I)
_ASKS_SHARE = re.compile(r"\b(share|percent|percentage|proportion|fraction|rate|how much of|up to what)\b|比例|百分|占比|多少%|份额|比率|上限", re.I)
_ASKS_NUMBER = re.compile(r"\b(how many|how much|number of|how long|how large|how high|how low|how far|what level|to what|total)\b|多少|几|数量|数目|总数|多长", re.I)

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
    text: str


def sentence_spans(hit: SearchHit) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a passage, as offsets into its document."""
    return [(hit.start + s, hit.start + e) for s, e in passage_sentence_spans(hit.text)]


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
        # A table row says little by itself: its table's title and heads decide whether it is the table asked for.
        # The document's title counts too: "what does the fact sheet say" is answered by the fact sheet.
        heading = 0.5 * sum(weight(t) for t in query_tokens & set(tokenize(f"{hit.title} {hit.context}"))) / query_mass
        sentences = sentence_spans(hit)
        for position, (start, end) in enumerate(sentences):
            text = hit.text[start - hit.start:end - hit.start]
            overlap = sum(weight(t) for t in query_tokens & set(tokenize(text))) / query_mass
            score = (
                hit.score / top  # how good the passage is
                + heading
                + 0.8 * overlap  # shared words (works within a language, and for numbers and names across)
                + _answer_type_bonus(question, text)
                - 0.02 * position  # passages often open with the point
                - 0.1 * rank
            )
            row = bool(_TABLE_ROW.match(text))
            if len(text) < 8:
                score -= 0.5  # a list marker is no answer
            elif not row and len(text) < 60 and not text.rstrip().endswith(tuple(".。!?！？;；")):
                score -= 0.5  # a heading names the topic but does not answer
            else:
                # A year the question names picks the row of a table, or the sentence of a history.
                years = set(_QUESTION_YEAR.findall(question))
                if years and years & set(_QUESTION_YEAR.findall(text)):
                    score += 0.4
                if row and _ASKS_TABLE.search(question):
                    score += 0.6  # the question asks for a table's figure: its rows answer, its notes don't
            if _ASKS_AUTHOR.search(question) and _AUTHOR.search(text):
                score += 1.0  # a byline is short and has no full stop, but it is exactly what is asked
            spans.append(Span(hit, start, end, score, text))
    return sorted(spans, key=lambda s: s.score, reverse=True)


def select_spans(question: str, hits: list[SearchHit], max_sentences: int, idf: dict[str, float] | None = None) -> list[Span]:
    """The best sentences: up to two from the best passage, plus strong ones from others; merged where adjacent."""
    ranked = score_sentences(question, hits[:3], idf)
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    # Across languages shared words cannot pick the sentence, so quote more of the best passage.
    margin = 0.45 if detect_language(question) == best.hit.language else 1.0
    for span in ranked[1:]:
        if len(chosen) >= max_sentences:
            break
        same_passage = span.hit.chunk_id == best.hit.chunk_id
        if span.score >= best.score - (margin if same_passage else 0.25):
            chosen.append(span)
    chosen.sort(key=lambda s: (s.hit.document, s.start))
    merged: list[Span] = []
    for span in chosen:
        last = merged[-1] if merged else None
        if last and last.hit.chunk_id == span.hit.chunk_id and span.start - last.end <= 2:
            merged[-1] = Span(last.hit, last.start, span.end, max(last.score, span.score),
                              last.text + span.text[last.end - span.start:] if span.start < last.end else
                              last.text + last.hit.text[last.end - last.hit.start:span.start - last.hit.start] + span.text)
        else:
            merged.append(span)
    return sorted(merged, key=lambda s: s.score, reverse=True)


def expand_to_sentence(text: str, start: int, end: int, limit: int = 400) -> tuple[int, int]:
    """Widen a span of ``text`` to whole sentences, so a quote never starts or stops mid-sentence at a passage cut."""
    floor = max(0, start - limit)
    head = start
    while head > floor and not ends_sentence(text, head):
        head -= 1
    if head == floor and floor > 0:
        head = start  # no sentence start nearby: keep the passage's own cut
    ceiling = min(len(text), end + limit)
    tail = end
    while tail < ceiling and not ends_sentence(text, tail):
        tail += 1
    if tail == ceiling and ceiling < len(text):
        tail = end
    while head < tail and text[head].isspace():
        head += 1
    while tail > head and text[tail - 1].isspace():
        tail -= 1
    return head, tail


def complete_sentences(spans: list[Span], document_text) -> list[Span]:
    """Spans widened to whole sentences in their documents' text (``document_text(doc_id) -> str | None``)."""
    widened = []
    for span in spans:
        text = document_text(span.hit.document)
        if text is None or text[span.start:span.end] != span.text:
            widened.append(span)
            continue
        start, end = expand_to_sentence(text, span.start, span.end)
        widened.append(Span(span.hit, start, end, span.score, text[start:end]))
    return widened


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


def render(question: str, spans: list[Span]) -> tuple[str, list[tuple[int, Span]]]:
    """Answer text with [n] markers; returns the text and (marker, span) pairs."""
    reader = detect_language(question)
    parts = []
    numbered = []
    for marker, span in enumerate(spans, start=1):
        numbered.append((marker, span))
        language = detect_language(span.text)
        quote = " ".join(span.text.split()) if language == "en" else span.text.replace("\n", "")
        if span.hit.language == reader or language == reader:
            parts.append(f"{quote} [{marker}]")
            continue
        facts = language_neutral_facts(span.text)
        if reader == "en":
            lead = f"The source [{marker}] (in Chinese) states" + (f" these facts: {', '.join(facts)}." if facts else ":")
            parts.append(f"{lead} Quote: “{quote}” [{marker}]")
        else:
            lead = f"英文资料 [{marker}] 指出" + (f"(要点:{'、'.join(facts)})" if facts else "")
            parts.append(f"{lead}:“{quote}” [{marker}]")
    return "\n".join(parts), numbered


def abstain_text(question: str) -> str:
    return ABSTAIN[detect_language(question)]


_QUESTION_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_ASKS_AMOUNT = re.compile(
    r"\b(how many|how much|what (?:was|is|were) the (?:value|amount|number|price|limit|total)|peak value|price of|"
    r"what (?:annual )?(?:return|rate|yield)|dollars?)\b|多少|几|金额|价格|上限|数额|收益率", re.I)
_ASKS_SHARE_ONLY = re.compile(r"\b(share|percent|percentage|proportion|rate|yield|return)\b|比例|百分|占比|份额|比率|收益率", re.I)
_AMOUNT = re.compile(r"(?<![\d.])\d[\d,]*(?:\.\d+)?(?![\d])(?!\s*(?:月|日|号))")
_CURRENCY_ASKED = {
    "yuan": (re.compile(r"多少元|(?<!美)元|人民币|\byuan\b|\bRMB\b", re.I), re.compile(r"(?<!美)元|人民币|yuan|RMB", re.I)),
    "dollar": (re.compile(r"美元|\bdollars?\b|\bprice\b|价格", re.I), re.compile(r"\$|dollars?|美元|USD", re.I)),
}
_ASKS_NAME = re.compile(r"\bname of\b|\bwhat is (?:his|her|their) name\b|\bwhich company\b|"
                        r"\bwho (?:designed|invented|founded|created)\b|叫什么名字|的名字|姓名", re.I)
_DURATION = re.compile(r"(\d[\d,]*)\s*(?:days?|months?|years?|weeks?|天|个月|年内|周)", re.I)
_ASKS_DURATION = re.compile(r"\b(how long|how many (?:days|months|years|weeks)|within)\b|多少天|几天|多久|多长时间|几个月|多少个月", re.I)
_PERSON_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z]\.)?\s+[A-Z][a-z]+\b|[\u4e00-\u9fff]{2,4}\s*[A-Za-z]{2,}\b")
_NOT_A_NAME = set(
    "Secretary Labor Department Treasury Commerce Office President Administration Executive Order Section Sec "
    "Federal Register Security Exchange Commission Council Economic Advisers Special Advisor Working Group Digital "
    "Asset Assets Markets Bitcoin Reserve Strategic Stockpile United States America American Americans Government "
    "National Public Private Plan Plans Act Code Internal Revenue Employee Retirement Income Table White House "
    "Central Bank Currency Director Management Budget Attorney General Chairman Chair Fact Sheet Trust Trusts "
    "Within The This That Such Each Any All Homeland Commission Trading Futures Defined Contribution Benefit "
    "Supplemental Equity Statement".split())
_SECTION_NUMBER = re.compile(r"(?:Section|Sec\.|§|paragraph|subsection|clause|Table|No\.)\s*(\d+)", re.I)
_HOW_MANY_UNIT = re.compile(r"\bhow many ([a-z]+)", re.I)
_LATIN_TERM = re.compile(r"[A-Za-z][A-Za-z\-]{2,}")


def _names(text: str) -> list[str]:
    """Capitalised word pairs that are not ordinary words (the text itself writes ordinary words in lower case too)."""
    ordinary = set(re.findall(r"\b[a-z]+\b", text))
    found = []
    for match in _PERSON_NAME.finditer(text):
        words = re.findall(r"[A-Z][a-z]+", match.group(0))
        if words and not all(w in _NOT_A_NAME or w.lower() in ordinary for w in words):
            found.append(match.group(0))
    return found


def unmet_constraints(question: str, hits: list[SearchHit], spans: list[Span]) -> list[str]:
    """Reasons the evidence cannot answer this question even though it is on topic.

    On-topic but unanswerable questions (the 2024 IRA limit, a price, a name the corpus never gives) retrieve
    passages as similar as real answers do, so similarity alone cannot tell them apart. What the question pins down
    can: a year it names must occur in the evidence; a Latin-script term in a Chinese question must too; a question
    asking for an amount needs a number in the quoted sentences (in the currency asked for, and not a percentage
    unless a share is asked); a question asking for a name needs a name.
    """
    reasons = []
    evidence = " ".join(f"{h.context} {h.text}" for h in hits[:3])
    quoted = " ".join(s.text for s in spans)
    for year in set(_QUESTION_YEAR.findall(question)):
        if year not in evidence:
            reasons.append(f"the sources do not mention {year}")
    if detect_language(question) == "zh" and hits and hits[0].language == "zh":
        # Within Chinese text a Latin-script term is quoted as written; across languages it may be spelled out.
        for term in set(_LATIN_TERM.findall(question)):
            if term.lower() not in evidence.lower():
                reasons.append(f"the sources do not mention {term}")
    if _ASKS_AMOUNT.search(question) and spans:
        asked = set(_AMOUNT.findall(question))
        numbers = [n for n in _AMOUNT.findall(quoted) if n not in asked and not _QUESTION_YEAR.fullmatch(n)]
        sections = set(_SECTION_NUMBER.findall(quoted))
        numbers = [n for n in numbers if n not in sections]
        unit = _HOW_MANY_UNIT.search(question)
        if unit and spans and all(s.hit.language == "en" and "Table" not in s.hit.context for s in spans):
            # "How many bitcoins": a number of something else (coins of total supply, days) does not answer it.
            stem = unit.group(1).lower()[:4]
            counted = {m.group(1) for m in re.finditer(r"(\d[\d,.]*)\s+(?:\w+\s+){0,2}?" + re.escape(stem), quoted, re.I)}
            numbers = [n for n in numbers if n in counted]
        if not _ASKS_DURATION.search(question):
            durations = set(_DURATION.findall(quoted))
            numbers = [n for n in numbers if n not in durations]
        if not _ASKS_SHARE_ONLY.search(question):
            shares = set(re.findall(r"(\d[\d,]*(?:\.\d+)?)\s*%", quoted))
            numbers = [n for n in numbers if n not in shares]
        if not numbers:
            reasons.append("the quoted passages give no amount")
        for currency, (asked_for, present) in _CURRENCY_ASKED.items():
            if asked_for.search(question) and not present.search(quoted):
                reasons.append(f"the quoted passages give no amount in {currency}")
    if _ASKS_NAME.search(question) and not _names(" ".join(h.text for h in hits[:3]) + " " + quoted):
        reasons.append("the quoted passages name no one")
    return reasons
