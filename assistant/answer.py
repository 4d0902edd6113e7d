"""Step 7, answer: pick the sentences that answer the question, decide whether to answer at all, and quote them.

The extractive answerer needs no LLM. Its candidates are the sentences of the retrieved passages and the nearest
sentences of the sentence index (``assistant.sentences``); each is described by named features (query–sentence
cosine from its stored vector, its passage's score, idf-weighted word overlap, whether it holds the kind of fact the
question asks for, position...) and scored by one logistic regression fit on the eval set's dev split
(``assistant.answer_model``), which ranks them. A second model, over named features of the whole chosen evidence
(the best sentence's probability and its lead over the next, whether the asked kind of fact is there, how much of
what the question pins down the evidence lacks...), gives the probability that the evidence answers the question:
the answer's confidence. Below its fitted threshold the assistant abstains. A compound question gets a sentence for
each of its parts.

When the reader's language differs from the source's, the answer first states the language-neutral facts of the
quoted sentences (years, numbers, percentages, Latin-script names), so a reader who knows no Chinese still learns
"1950" and "35%".

Both answerers (extractive and LLM) implement ``Answerer``: they stream text pieces, then one ``Draft``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from assistant.answer_model import (
    DECADE_PATTERN,
    AnswerModel,
    AnswerModels,
    Candidate,
    Evidence,
    decade_of,
    featurize,
    idf_overlap,
    question_features,
    question_years,
)
from assistant.answer_types import MONTH_NAMES, YEAR_DIGITS, analyse
from assistant.cite import make_citation
from assistant.clean import CJK, detect_language
from assistant.glossary import terms_in
from assistant.retrieve import TableFinding, filter_where, shingles, tokenize
from assistant.schema import ChatTurn, Citation, Document, SearchHit
from assistant.sentences import SentenceHit, SentenceIndex, ends_sentence
from assistant.sentences import sentence_spans as text_sentence_spans
from assistant.settings import Settings
from assistant.tables import labelled_rows

# A Chinese date or decade is one fact for a reader of English ("2025 年 8 月 7 日" is August 7, 2025, not "2025, 8,
# 7"), a count in 万 or 亿 is written out ("20 万" is 200,000, not "20"); other numbers keep a section's bracket
# ("401(k)") and shares their sign, Latin-script names their words.
_FACT = re.compile(r"(?:(?P<year>\d{4})\s*年\s*)?(?P<month>1[0-2]|0?[1-9])\s*月(?:\s*(?P<day>3[01]|[12]\d|0?[1-9])\s*[日号])?"
                   rf"|{DECADE_PATTERN}"
                   r"|(?P<century>\d{1,2})\s*世纪(?P<century_part>初|末|中叶|中期)?"
                   r"|(?P<count>\d[\d,]*(?:\.\d+)?)\s*(?P<magnitude>万亿|亿|万)"
                   r"|\d[\d,.]*(?:\([a-zA-Z0-9]+\))*(?:\s*%|s\b)?"
                   r"|[A-Za-z][A-Za-z0-9()’'.\-]*(?:\s+[A-Za-z(][A-Za-z0-9()’'.\-]*)*")
_MONTHS = MONTH_NAMES.split("|")
_CENTURY_PART = {"初": "early ", "末": "late ", "中叶": "mid-", "中期": "mid-"}
_MAGNITUDES = {"万": 1e4, "亿": 1e8, "万亿": 1e12}
_SCALE_WORDS = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"))
_CJK = re.compile(f"[{CJK}]")
_NEUTRAL_IN_ENGLISH = re.compile(
    rf"\b(?:{MONTH_NAMES})\s+\d{{1,2}},\s*\d{{4}}"  # a date
    r"|\$\s?\d[\d,.]*(?:\s*(?:million|billion|trillion))?"  # an amount
    r"|\d[\d,.]*\s*(?:%|percent\b)"  # a share
    r"|\b\d+\s+U\.S\.C\.\s+\d+(?:\([a-z0-9]+\))*"  # a statute citation
    r"|(?<![\w(])\d[\d,.]*(?:\([a-zA-Z0-9]+\))*(?:s\b)?"  # a number, year or section such as 401(k); not "(2)"
    r"|\b[A-Z]{2,}s?\b")  # an acronym

ABSTAIN = {
    "en": "The sources in this corpus do not answer that question, so I won't guess.",
    "zh": "本语料库中的资料没有回答这个问题,我不作猜测。",
}


@dataclass
class AnswerRequest:
    """What an answerer gets: the question, the query it was retrieved with, the evidence and the history."""

    question: str
    query: str
    hits: list[SearchHit]
    query_vector: np.ndarray | None = None
    history: list[ChatTurn] = field(default_factory=list)
    # The question's own vector when the query adds history to it (a follow-up); None when the query is the question
    question_vector: np.ndarray | None = field(default=None, repr=False)
    documents: list[str] | None = None
    language: str | None = None
    # The query's nearest sentences as retrieval found them (best first), reused as direct candidates; None: search
    nearest_sentences: list[SentenceHit] | None = field(default=None, repr=False)
    # The scored evidence, once an answerer has built it: deciding whether a follow-up needs its history already
    # scores both requests, and the chosen one is not scored again when it is answered.
    evidence: Evidence | None = field(default=None, repr=False)
    # What a table computed for the question (assistant/table_query.py): its rows are quoted first, after a statement
    # of what they answer; a table that shows no year answers means the sources hold no answer.
    table: TableFinding = field(default_factory=TableFinding)


@dataclass
class Draft:
    """An answer before its citations are verified against the current documents."""

    text: str
    citations: list[Citation]
    confidence: float | None = None


class Answerer(Protocol):
    def stream(self, request: AnswerRequest) -> Iterator[str | Draft]:
        """Yield pieces of answer text as they are produced, then exactly one Draft."""
        ...


@dataclass(frozen=True)
class Span:
    document: str
    start: int  # offsets into the document's cleaned text
    end: int
    text: str
    language: str
    score: float = 0.0


def repeats(text: str, other: str, share: float = 0.8) -> bool:
    """Whether ``text`` says nothing ``other`` does not: the same words with other punctuation or quote marks (an
    article's summary repeating its body), or a part of it (a heading, a sentence cut at a passage end)."""
    own = shingles(text)
    return bool(own) and len(own & shingles(other)) / len(own) >= share


def best_dense_score(hits: list[SearchHit]) -> float:
    """The highest query–passage cosine among the hits: how on-topic the corpus is at all (hits are ranked by a fused
    score, so the first hit need not hold it)."""
    return max(float(h.dense_score if h.dense_score is not None else h.score) for h in hits)


def best_match_score(hits: list[SearchHit], nearest: Sequence[SentenceHit] = ()) -> float:
    """The highest cosine of a retrieved passage, of its best sentence, or of the question's nearest sentence (a
    candidate of the answer even when its passage was not retrieved): a passage that is long and about much else can
    hold one sentence that matches the question well, and that sentence is what the answer quotes. "what is the
    'legal list'?" is nearest to the article's sentence on the 「法律清单」(Legal List), whose passage ranks sixth."""
    return max(best_dense_score(hits), max((h.sentence_score or 0.0 for h in hits), default=0.0),
               max((s.score for s in nearest), default=0.0))


def sentence_spans(hit: SearchHit) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a passage, as offsets into its document."""
    return [(hit.start + s, hit.start + e) for s, e in text_sentence_spans(hit.text)]


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


def complete_sentences(spans: list[Span], document_text: Callable[[str], str | None]) -> list[Span]:
    """Spans widened to whole sentences in their documents' text (``document_text(doc_id) -> str | None``)."""
    widened = []
    for span in spans:
        text = document_text(span.document)
        if text is None or text[span.start:span.end] != span.text:
            widened.append(span)
            continue
        start, end = expand_to_sentence(text, span.start, span.end)
        widened.append(Span(span.document, start, end, text[start:end], span.language, span.score))
    return widened


# A sentence that leads into what follows says nothing alone: "The term “matching contribution” means", "The Council
# of Economic Advisers (CEA) finds that:", "… shall include the following officials, or their designees:". It ends in a
# colon, or in a word that cannot end a statement; what it leads into is a run of list items ("(i) …;", "- …", "1. …").
_LEAD_IN_END = re.compile(r"(?:[:：]|\b(?:means|that|following|include|includes|including|is|are|be|of|to|by|"
                          r"which|whether|as|than|and|or))\s*$", re.I)
_ENDS_WITH_WORD = re.compile(r"[A-Za-z]\s*$")
# A list item's marker, by kind: the items of one list share a kind, "(5) Other" after "(iii) …" starts something else.
_LIST_MARKERS = (("lower", re.compile(r"^\([a-z]+\)")), ("upper", re.compile(r"^\([A-Z]+\)")),
                 ("number", re.compile(r"^(?:\(\d+\)|\d+[.)、]\s?)")), ("bullet", re.compile(r"^[-•*]\s")),
                 ("chinese", re.compile(r"^[一二三四五六七八九十]+、")))


_CONJUNCTION = re.compile(r"^(?:and|or|以及|或者?)$", re.I)
LEAD_IN_ITEMS = 4  # at most this many items follow a lead-in into a quote
LEAD_IN_CHARS = 900  # nor more characters than this


def list_marker(sentence: str) -> str | None:
    """The kind of list marker a sentence opens with ("(iv)": lower, "(B)": upper, "2.": number, "- ": bullet)."""
    return next((kind for kind, pattern in _LIST_MARKERS if pattern.match(sentence)), None)


def leads_in(text: str) -> bool:
    """Whether a sentence only introduces what follows it (ends in a colon or in a word that cannot end a
    statement)."""
    return bool(_LEAD_IN_END.search(text.rstrip()))


def continuation(text: str, end: int, nested: int = 1) -> tuple[int, int] | None:
    """The span of ``text`` that a lead-in ending at ``end`` leads into: the list items that follow it (up to
    LEAD_IN_ITEMS and LEAD_IN_CHARS); after a lead-in that stops mid-clause ("… means"), the next sentence even when it
    is no list item. When what it leads into ends in a lead-in too ("… and" → "(A) for the exclusive purpose of:" →
    "(i) …"), ``nested`` more levels follow. None when nothing follows that it leads into ("… it is hereby ordered:"
    before "Section 1.")."""
    window = text[end:end + 4 * LEAD_IN_CHARS]
    mid_clause = bool(_ENDS_WITH_WORD.search(text[max(0, end - 40):end]))
    taken: tuple[int, int] | None = None
    count = 0
    kind: str | None = None
    for start, stop in text_sentence_spans(window):
        piece = window[start:stop]
        if _CONJUNCTION.match(piece):  # "…; and" splits off its "and": the list goes on
            continue
        marker = list_marker(piece)
        kind = kind or marker
        is_item = marker is not None and marker == kind
        if count >= LEAD_IN_ITEMS or stop > LEAD_IN_CHARS or not (is_item or (count == 0 and mid_clause)):
            break
        taken = (taken[0] if taken else end + start, end + stop)
        count += 1
        if not is_item:  # the rest of a clause cut mid-way, no list: that one sentence
            break
    if taken is not None and nested > 0 and leads_in(text[taken[0]:taken[1]]):
        inner = continuation(text, taken[1], nested - 1)
        taken = taken if inner is None else (taken[0], inner[1])
    return taken


def with_continuations(spans: list[Span], document_text: Callable[[str], str | None]) -> list[Span]:
    """Each lead-in among ``spans`` followed by what it leads into (a span of its own, scored just below it)."""
    extended = list(spans)
    for span in spans:
        text = document_text(span.document)
        if text is None or text[span.start:span.end] != span.text or not leads_in(span.text):
            continue
        follow = continuation(text, span.end)
        if follow is not None and not any(o.document == span.document and o.start <= follow[0] < o.end
                                          for o in extended):
            extended.append(Span(span.document, follow[0], follow[1], text[follow[0]:follow[1]], span.language,
                                 span.score * 0.999))
    return extended


def merge_adjacent(spans: list[Span], document_text: Callable[[str], str | None]) -> list[Span]:
    """Neighbouring sentences of one document become one quote (best score first)."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.document, s.start)):
        last = merged[-1] if merged else None
        text = document_text(span.document) if last and last.document == span.document else None
        if last and text is not None and span.start - last.end <= 2 and span.start >= last.start:
            end = max(last.end, span.end)
            merged[-1] = Span(last.document, last.start, end, text[last.start:end], last.language,
                              max(last.score, span.score))
        else:
            merged.append(span)
    return sorted(merged, key=lambda s: s.score, reverse=True)


def language_neutral_facts(text: str) -> list[str]:
    """What a reader of any language can take from a quote. From a Chinese quote: years, numbers, percentages and
    the Latin-script names it gives beside its terms. From an English quote (for a Chinese reader): only dates,
    amounts, numbers, statute citations and acronyms; its other words are English, not language-neutral, and
    listing them would just repeat the quote in pieces."""
    pattern = _FACT if _CJK.search(text) else _NEUTRAL_IN_ENGLISH
    facts: list[str] = []
    for match in pattern.finditer(text):
        fact = _in_english(match) or match.group(0).strip(" .,;:(’'-")
        while fact.endswith(")") and fact.count(")") > fact.count("("):  # keep the bracket of "401(k)"
            fact = fact[:-1].rstrip(" .,;:’'-")
        if len(fact) < 2 and not fact.isdigit():
            continue
        if fact and fact not in facts:
            facts.append(fact)
    return facts[:8]


_LINE_BREAK = re.compile(r"[ \t]*\n\s*")


def one_line(text: str) -> str:
    """A Chinese quote on one line: a break between two Chinese characters or marks goes, any other becomes a space
    (a byline "撰文:陈默 cmDeFi" above "2025 年 8 月 7 日…" must not read "cmDeFi2025")."""
    text = text.strip()  # the break's neighbours are read at the offsets of the text it is found in

    def joined(match: re.Match) -> str:
        before, after = text[match.start() - 1:match.start()], text[match.end():match.end() + 1]
        return "" if before and after and _CJK.match(before) and _CJK.match(after) else " "

    return _LINE_BREAK.sub(joined, text)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th … 11th, 12th, 13th … 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _in_english(match: re.Match) -> str:
    """A Chinese date, decade, century or count in 万/亿 matched by ``_FACT`` as English writes it ("" for any other
    fact)."""
    groups = match.groupdict()
    if groups.get("magnitude"):
        value = float(groups["count"].replace(",", "")) * _MAGNITUDES[groups["magnitude"]]
        for scale, word in _SCALE_WORDS:
            if value >= scale:
                return f"{value / scale:g} {word}"
        return f"{value:,.0f}"
    if groups.get("full") or groups.get("short_zh") or groups.get("short_en"):
        return decade_of(match)
    if groups.get("century"):
        return _CENTURY_PART.get(groups.get("century_part") or "", "") + ordinal(int(groups["century"])) + " century"
    if not groups.get("month"):
        return ""
    month_day = _MONTHS[int(groups["month"]) - 1] + (f" {int(groups['day'])}" if groups.get("day") else "")
    year = groups.get("year")
    if not year:
        return month_day
    return f"{month_day}, {year}" if groups.get("day") else f"{month_day} {year}"


def table_lead(reader: str, marker: int, label: str, rows: list[str]) -> str:
    """The words before a quoted table row: each row read cell by cell under its column headings, one statement per
    row with its marker (a grader checks each against the quoted row; a row cut into one clause per cell would leave
    the later cells without a marker)."""
    if reader == "en":
        return " ".join(f"{label} [{marker}], {row}." for row in rows) + " Quote: "
    return "".join(f"英文资料 [{marker}] 的 {label},{row}。" for row in rows) + "原文:"


def render(question: str, spans: list[Span],
           glossary: list[tuple[str, str]] | Callable[[], list[tuple[str, str]]] | None = None,
           table_rows: Callable[[Span], tuple[str, list[str]]] | None = None) -> tuple[str, list[tuple[int, Span]]]:
    """Answer text with [n] markers; returns the text and (marker, span) pairs.

    A quote in the other language comes with its language-neutral facts and with the corpus's own bilingual terms
    that occur in it (``glossary``: (Chinese term, English name) pairs, or a function giving them, called only when
    a quote is in the other language: reading them costs a registry read after every change of the index). A quoted
    row of a table comes with its cells under their column headings (``table_rows``: the table's label and the
    span's labelled rows, see ``assistant.tables.labelled_rows``), in either language."""
    reader = detect_language(question)
    parts = []
    numbered = []
    for marker, span in enumerate(spans, start=1):
        numbered.append((marker, span))
        language = detect_language(span.text)
        quote = " ".join(span.text.split()) if language == "en" else one_line(span.text)
        label, rows = table_rows(span) if table_rows else ("", [])
        if rows:
            parts.append(f"{table_lead(reader, marker, label, rows)}“{quote}” [{marker}]")
            continue
        if span.language == reader or language == reader:
            parts.append(f"{quote} [{marker}]")
            continue
        facts = language_neutral_facts(span.text)
        if callable(glossary):
            glossary = glossary()
        terms = terms_in(span.text, glossary or [], reader)
        if reader == "en":
            lead = f"The source [{marker}] (in Chinese) states" + (f" these facts: {', '.join(facts)}." if facts else ":")
            if terms:
                lead += " Terms: " + "; ".join(f"{zh} = {en}" for zh, en in terms) + "."
            parts.append(f"{lead} Quote: “{quote}” [{marker}]")
        else:
            lead = f"英文资料 [{marker}] 指出" + (f"(要点:{'、'.join(facts)})" if facts else "")
            if terms:
                lead += "(术语:" + "; ".join(f"{en} = {zh}" for zh, en in terms) + ")"
            parts.append(f"{lead}:“{quote}” [{marker}]")
    return "\n".join(parts), numbered


_ROW_YEAR = re.compile(rf"\s*({YEAR_DIGITS})r?\s+\$?\d")  # a table row's key: its year ("2004r": revised)


def row_year(text: str) -> str | None:
    """The year a table row is keyed by ("1994 174,945 25,062 …": "1994"); None for a sentence that is no row."""
    match = _ROW_YEAR.match(text)
    return match.group(1) if match else None


def is_table_row(text: str) -> bool:
    return row_year(text) is not None


def row_not_asked(text: str, years: set[str]) -> bool:
    """Whether a sentence is a table row keyed by a year the question does not name (any year, when it names none):
    beside the row of the year asked about, its neighbours (which look alike to the model and tie with it) say
    nothing asked; beside a prose answer to a question that names no year, a row that ties with it ("how much could
    they put in?" about New York's pensions, and a row of plan contributions in 1984) says nothing asked either."""
    year = row_year(text)
    return year is not None and year not in years


def table_statement(question: str, table: TableFinding, numbered: list[tuple[int, Span]]) -> str | None:
    """What a table computation found, said with the marker of the quote that holds its answering row (None when
    no quote holds it)."""
    if table.answer is None or not table.rows:
        return None
    row = table.rows[0]
    marker = next((m for m, span in numbered if span.document == row.document and span.start <= row.start < span.end),
                  None)
    return None if marker is None else table.answer.statement(detect_language(question), marker)


def abstain_text(question: str) -> str:
    return ABSTAIN[detect_language(question)]


# said beside an answer marked weak_evidence where no page can show the mark (the CLI, OpenAI-compatible clients)
WEAK_EVIDENCE = {
    "en": "Weak evidence ({:.0%}): these quotes may not answer this exact question; read them before relying on the "
          "answer.",
    "zh": "证据较弱(置信度 {:.0%}):这些引文未必回答了这个问题,请先核对。",
}


def weak_evidence_note(question: str, confidence: float) -> str:
    return WEAK_EVIDENCE[detect_language(question)].format(confidence)


class ExtractiveAnswerer:
    """Quotes the sentences the answer model rates best; abstains below the model's threshold."""

    def __init__(self, settings: Settings, sentences: Callable[[], SentenceIndex],
                 document: Callable[[str], Document | None], versions: Callable[[Iterable[str]], dict[str, str]],
                 idf: Callable[[Iterable[str]], dict[str, float]], models: AnswerModels | None = None,
                 glossary: Callable[[], list[tuple[str, str]]] = list):
        self.settings = settings
        self._glossary = glossary
        self._sentences = sentences
        self._document = document
        self._versions = versions
        self._idf = idf
        models = models or AnswerModels.load(settings.answer_model_path)
        self.model: AnswerModel = models.sentence  # ranks candidate sentences
        self.question_model: AnswerModel = models.question  # answer or abstain: the confidence
        self.floor = models.floor  # below it, nothing retrieved is on topic

    def _table_rows(self, span: Span) -> tuple[str, list[str]]:
        document = self._document(span.document)
        if document is None:
            return "", []
        return labelled_rows(document.text, span.start, span.end, document.metadata)

    def _text(self, doc_id: str) -> str | None:
        document = self._document(doc_id)
        return document.text if document is not None else None

    def candidates(self, request: AnswerRequest) -> Evidence:
        """Scored candidate sentences (best first): sentences of the retrieved passages and of the sentence index,
        with the question model's features and probability of the whole evidence."""
        if request.evidence is None:
            request.evidence = self._score(request)
        return request.evidence

    def _score(self, request: AnswerRequest) -> Evidence:
        hits = request.hits
        if not hits or request.query_vector is None:
            return Evidence()
        vector = np.asarray(request.query_vector, dtype=np.float32)
        index = self._sentences()
        own = None if request.question_vector is None else np.asarray(request.question_vector, dtype=np.float32)
        by_chunk = {h.chunk_id: (rank, h) for rank, h in enumerate(hits)}
        found: dict[str, Candidate] = {}
        for row, sentence_vector in index.for_passages([h.chunk_id for h in hits]):
            rank, hit = by_chunk[row.chunk_id]
            found[row.sentence_id] = Candidate.of(
                row, float(np.dot(vector, sentence_vector)), passage_text=hit.text,
                passage_score=float(hit.dense_score if hit.dense_score is not None else hit.score), passage_rank=rank,
                question_cosine=None if own is None else float(np.dot(own, sentence_vector)))
        n = self.settings.answer_sentence_candidates
        rows = (request.nearest_sentences[:n] if request.nearest_sentences is not None
                else index.query(vector, n, filter_where(request.documents, request.language)))
        versions = self._versions({row.document for row in rows})  # only these documents' registry rows are read
        for row in rows:
            if row.sentence_id in found or versions.get(row.document) != row.version:
                continue
            found[row.sentence_id] = Candidate.of(row, row.score)
        unseen = [row for row in request.table.rows if row.sentence_id not in found]
        row_vectors = index.vectors([row.sentence_id for row in unseen]) if unseen else {}
        for row in unseen:  # a computed row whose passage was folded away
            if (row_vector := row_vectors.get(row.sentence_id)) is not None:
                found[row.sentence_id] = Candidate.of(
                    row, float(np.dot(vector, row_vector)),
                    question_cosine=None if own is None else float(np.dot(own, row_vector)))
        for row in request.table.rows:
            if row.sentence_id in found:
                found[row.sentence_id].computed = True
        candidates = list(found.values())
        direct = [c for c in candidates if c.question_cosine is None]
        if own is not None and direct:  # the passages' sentences came with their vectors; these did not
            vectors = index.vectors([c.sentence_id for c in direct])
            for c in direct:
                if c.sentence_id in vectors:
                    c.question_cosine = float(np.dot(own, vectors[c.sentence_id]))
        top = best_dense_score(hits)
        analysis, idf = analyse(request.question), self._idf(tokenize(request.question))
        featurize(analysis, request.question, candidates, float(top), idf)
        self.model.score(candidates)
        order = {row.sentence_id: i for i, row in enumerate(request.table.rows)}
        # computed rows first, in their order (the answering row, then the one that shows a crossing)
        ranked = sorted(candidates, key=lambda c: (order.get(c.sentence_id, len(order)), -c.probability))
        features = question_features(analysis, request.question, ranked,
                                     [f"{h.title}\n{h.context}\n{h.text}" for h in hits], idf)
        return Evidence(ranked, features, self.question_model.probability(features) if ranked else 0.0)

    def confidence(self, evidence: Evidence) -> float:
        """The question model's probability that the evidence answers the question (0 without evidence)."""
        return evidence.confidence if evidence else 0.0

    def answers(self, evidence: Evidence) -> bool:
        return bool(evidence) and self.confidence(evidence) >= self.answer_threshold

    @property
    def answer_threshold(self) -> float:
        """The question model's fitted threshold, unless ASSISTANT_ANSWER_THRESHOLD moves the risk–coverage point."""
        override = self.settings.answer_threshold
        return self.question_model.threshold if override is None else override

    @property
    def near_tie_ratio(self) -> float:
        """How close to the best sentence's probability a further one must come to be quoted beside it: the fitted
        near-tie ratio, unless ASSISTANT_EXTRA_SENTENCE_RATIO sets another (0: up to ``max_answer_sentences``
        always; 1: the best sentence alone)."""
        override = self.settings.extra_sentence_ratio
        return self.model.threshold if override is None else override

    def supported(self, request: AnswerRequest) -> bool:
        """Whether anything retrieved is on topic at all: a passage or a sentence at least
        ``on_topic_floor`` from the question (below it no sentence is considered). Not where the table the question
        is about shows that no year answers it (``table_query.table_says_none``)."""
        hits = request.hits
        return (not request.table.says_none and bool(hits)
                and best_match_score(hits, request.nearest_sentences or ()) >= self.on_topic_floor)

    @property
    def on_topic_floor(self) -> float:
        """The floor fit with the answer model on dev, unless ASSISTANT_ABSTAIN_THRESHOLD sets another (a cosine:
        another embedding model needs its own)."""
        override = self.settings.abstain_threshold
        return self.floor.value if override is None else override

    def choose(self, request: AnswerRequest, candidates: list[Candidate]) -> list[Candidate]:
        """The best sentence; for each part of a compound question not yet covered, its best sentence; then the
        sentences the model cannot tell from the best (a near tie), up to ``max_answer_sentences``.

        When the model is sure, the answer is one sentence; when two or three are about as likely, showing them
        all is what keeps the fact in the answer (the fit measures that trade on dev, see ``fit_near_tie_ratio``)."""
        if not candidates:
            return []
        if candidates[0].computed:  # the rows a table computation picked say what the question asks
            return [c for c in candidates if c.computed]
        threshold = self.near_tie_ratio * candidates[0].probability
        limit = self.settings.max_answer_sentences
        years = question_years(request.question)
        if years or not is_table_row(candidates[0].text):  # a row answering no year has neighbours that may tie
            candidates = [candidates[0]] + [c for c in candidates[1:] if not row_not_asked(c.text, years)]
        chosen = [candidates[0]]
        for part_types in analyse(request.question).part_types:
            if not part_types or any(part_types & c.types for c in chosen) or len(chosen) >= limit:
                continue
            covering = next((c for c in candidates if part_types & c.types and c.probability >= threshold), None)
            if covering is not None:
                chosen.append(covering)
        for c in candidates[1:]:
            if len(chosen) >= limit or c.probability < threshold:
                break
            if c in chosen or any(repeats(c.text, o.text) for o in chosen):
                continue
            longer = next((i for i, o in enumerate(chosen) if repeats(o.text, c.text)), None)
            if longer is None:
                chosen.append(c)
            else:  # it says all a chosen one says, and more: it takes that one's place
                chosen[longer] = c
        return chosen

    def assess(self, request: AnswerRequest) -> Evidence:
        """The evidence an answer to the request is chosen from: none where nothing retrieved is on topic."""
        return self.candidates(request) if self.supported(request) else Evidence()

    def stream(self, request: AnswerRequest) -> Iterator[str | Draft]:
        candidates = self.assess(request)
        confidence = self.confidence(candidates)
        if not self.answers(candidates):
            text = abstain_text(request.question)
            yield from _pieces(text)
            yield Draft(text, [], round(confidence, 4))
            return
        chosen = self.choose(request, candidates)
        spans = [Span(c.document, c.start, c.end, c.text, c.language, c.probability) for c in chosen]
        spans = merge_adjacent(with_continuations(complete_sentences(spans, self._text), self._text), self._text)
        text, numbered = render(request.question, spans, self._glossary, self._table_rows)
        if chosen[0].computed and (statement := table_statement(request.question, request.table, numbered)):
            text = f"{statement}\n{text}"
        citations = []
        for marker, span in numbered:
            document = self._document(span.document)
            if document is not None:
                citations.append(make_citation(document, marker, span.start, span.end))
        yield from _pieces(text)
        yield Draft(text, citations, round(confidence, 4))


class LLMAnswerer:
    """The configured chat model writes the answer from the passages; the answer model still decides whether to
    answer (one calibrated decision for both answerers), and each marker is cited by its passage's best sentence."""

    def __init__(self, settings: Settings, chat_model, extractive: ExtractiveAnswerer,
                 document: Callable[[str], Document | None], idf: Callable[[Iterable[str]], dict[str, float]]):
        self.settings = settings
        self.chat_model = chat_model
        self.extractive = extractive
        self._document = document
        self._idf = idf

    def stream(self, request: AnswerRequest) -> Iterator[str | Draft]:
        from assistant.llm import drop_unknown_markers, is_not_in_sources, parse_markers, stream_answer

        candidates = self.extractive.candidates(request) if self.extractive.supported(request) else Evidence()
        confidence = self.extractive.confidence(candidates)
        if not self.extractive.answers(candidates):
            text = abstain_text(request.question)
            yield text
            yield Draft(text, [], round(confidence, 4))
            return
        pieces = []
        for piece in stream_answer(self.chat_model, request.question, request.hits, request.history,
                                   max_sentences=self.settings.max_answer_sentences):
            pieces.append(piece)
            yield piece
        raw = "".join(pieces).strip()
        if is_not_in_sources(raw):
            yield Draft(abstain_text(request.question), [], round(confidence, 4))
            return
        hits = request.hits
        valid = {n for n in parse_markers(raw) if 1 <= n <= len(hits)}
        text = drop_unknown_markers(raw, valid)
        tokens = set(tokenize(text))
        idf = self._idf(tokens)
        citations = []
        for marker in sorted(valid):
            hit = hits[marker - 1]
            document = self._document(hit.document)
            spans = sentence_spans(hit)
            if document is None or not spans:
                continue
            start, end = max(spans, key=lambda s: idf_overlap(tokens, document.text[s[0]:s[1]], idf))
            citations.append(make_citation(document, marker, start, end))
        yield Draft(text, citations, round(confidence, 4))


def _pieces(text: str) -> Iterator[str]:
    """Word-sized pieces of a composed answer, so clients render it as a stream."""
    yield from (m.group(0) for m in re.finditer(r"\S+\s*|\s+", text))
