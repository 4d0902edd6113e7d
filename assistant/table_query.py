"""Step 6 (retrieve), for questions that describe a table row by its values rather than its words.

"In which year did 401(k) assets first top $1 trillion?" and "哪一年 401(k) 类计划数量最少?" name no row: the row
that answers holds neither "1 trillion" nor "最少", and looks like its forty neighbours to the embedding model, so
similarity search cannot find it. The table can: the first year a column crosses a threshold, its highest or
lowest year, or its latest or earliest ("in the most recent year"), is a computation over the column. This module
reads what such a question asks (``series_question``), picks the column it is about (``choose_column``) and finds
the row (``answer_rows``); the retriever puts that row's passage first and hands the row to the answerer as
computed evidence, with what was found (``TableAnswer``: the answer says it before quoting the rows). The row is
quoted verbatim like any other evidence, and the answer model still decides, with its calibrated confidence, whether
to answer. A question that names no word of the column's heading asks nothing of the table (``heading_match``):
sharing an extreme with it is not enough.

A crossing is only claimed where the table shows it: an earlier year on the other side of the threshold. A series
that starts past it gives no row (the table cannot say when); one that never reaches it says the question has no
answer in the table (``table_says_none``, as does a column that never rises or falls as asked), and the answerer
abstains rather than quote a year that does not cross.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from assistant.bilingual import dictionary, matched_words, singular
from assistant.claims import DIGITS, SCALES, WORD_NUMBER, number_value, scaled_value
from assistant.lexical import tokenize
from assistant.tables import SeriesRow, TableSeries

Operation = Literal["above", "below", "highest", "lowest", "largest_rise", "largest_fall", "latest", "earliest"]

# not a code such as "401(k)" or "401k": a number followed by a letter or a bracket is a name
_EN_NUMBER = rf"\$?\s?(?:(?P<n>{DIGITS})(?:\s*(?P<scale>thousand|million|billion|trillion|mn|bn|tn)\b)?" \
             rf"(?![\w(])|(?P<w>half\s+an?|an?|one|{WORD_NUMBER})(?:\s+(?P<hundred>hundred))?" \
             r"\s+(?P<wscale>thousand|million|billion|trillion)\b)"
# in words, a count needs its scale: "half a million", "a trillion dollars", "two hundred billion"
_CN_NUMBER = rf"(?P<n>{DIGITS}|[零〇一二两三四五六七八九十百千]+)\s*(?P<scale>万亿|千亿|百亿|十亿|千万|百万|亿|万|千)?"
_EN_UP = r"above|over|more\s+than|greater\s+than|higher\s+than|in\s+excess\s+of|exceed(?:s|ed|ing)?|top(?:s|ped)?|" \
         r"pass(?:es|ed)?|surpass(?:es|ed)?|cross(?:es|ed)?|break(?:s)?|broke|past|beyond|reach(?:es|ed)?|hit|" \
         r"at\s+least"
_EN_DOWN = r"below|under|beneath|less\s+than|fewer\s+than|lower\s+than"
_THRESHOLDS = (
    (re.compile(rf"\b(?:{_EN_UP})\s+(?:the\s+)?{_EN_NUMBER}", re.I), "above"),
    (re.compile(rf"\b(?:{_EN_DOWN})\s+(?:the\s+)?{_EN_NUMBER}", re.I), "below"),
    (re.compile(rf"(?:超过|超出|突破|高于|多于|大于|达到|逾)\s*{_CN_NUMBER}"), "above"),
    (re.compile(rf"(?:跌破|低于|少于|小于|不足|不到)\s*{_CN_NUMBER}"), "below"),
)
# An end of the series ("in the most recent year", "the latest figure", 最新一年, 最早那一年): the table's last or first
# year with a value in the column. Read before the extremes: "most recent" is not "the most". 最近 alone is "lately"
# ("最近十年增长了多少" asks for a change over years): only 最近一年, 最近的数据 and the like name the last year.
_ENDS = (
    (re.compile(r"\b(?:latest|most\s+recent(?:ly)?|newest|final\s+year)\b|最新|最近(?:的)?(?:那?一)?(?:年|期|数据|数字)",
                re.I), "latest"),
    (re.compile(r"\b(?:earliest|oldest|first\s+year)\b|最早|第一年", re.I), "earliest"),
)
# "at most", 最多能, 最高不得 bound a single figure ("at most how much GDP"); they ask for no extreme of a series
_EXTREMES = (
    (re.compile(r"(?<!at )\b(?:most(?!\s+recent)|highest|largest|biggest|greatest|peak(?:ed|s)?|maximum|record\s+high)\b|"
                r"(?:最多|最高|最大)(?![能可不只])|峰值|顶峰|高峰", re.I), "highest"),
    (re.compile(r"(?<!at )\b(?:fewest|least|lowest|smallest|minimum|record\s+low)\b|(?:最少|最低|最小)(?![能可不只])|"
                r"谷底|低谷", re.I), "lowest"),
)
# A change from one year to the next ("fell the most", "the biggest jump", 下降最多, 增长最大): an extreme of the change,
# not of the column (without this, "which year did assets fall the most?" read "most" as the highest year)
_CHANGES = (
    (re.compile(r"\b(?:grow|grew|grows|growth|rise|rose|rises|increase[sd]?|jump(?:ed|s)?|gain(?:ed|s)?|"
                r"climb(?:ed|s)?)\b|增长|上升|增加|上涨", re.I), "largest_rise"),
    (re.compile(r"\b(?:drop(?:ped|s)?|fall|fell|falls|decline[sd]?|decrease[sd]?|shrank|shrink|plunge[sd]?|"
                r"los[st])\b|下降|下跌|减少|缩水", re.I), "largest_fall"),
)
# The question asks for a year (or, for an extreme, the value there): "when", "which year", 哪一年, 什么时候, 多少.
_ASKS_YEAR = re.compile(r"\b(?:when|which\s+year|what\s+year)\b|哪一?年|哪个年份|什么时候|何时", re.I)
_ASKS_VALUE = re.compile(r"\bhow\s+(?:many|much)\b|\bwhat\s+was\b|多少", re.I)
_UNIT = re.compile(r"\(([^)]*)\)")
_TOTAL = "total"  # a statistical table's aggregate: the reading a question means when it names no part
_MIN_COMPOUND_END = 5  # letters: "employer" ends "multiemployer"; a short word ("plan", "tax") ends too many


@dataclass(frozen=True)
class SeriesQuestion:
    """What a question asks of a column: the first year past ``threshold`` (in plain units: dollars, plans,
    people), its highest or lowest year, the year of its largest rise or fall from the year before, or its latest
    or earliest year."""

    operation: Operation
    threshold: float | None = None


def _amount(match: re.Match) -> float | None:
    groups = match.groupdict()
    if groups.get("w"):
        words = " ".join(groups["w"].lower().split())
        count = 0.5 if words.startswith("half") else 1.0 if words in ("a", "an", "one") else number_value(words)
        if count is None:
            return None
        return count * (100 if groups.get("hundred") else 1) * SCALES[groups["wscale"].lower()]
    return scaled_value(groups["n"], groups["scale"])


def series_question(question: str) -> SeriesQuestion | None:
    """The operation a question asks of a table column, or None. A threshold needs a question for a year ("when
    did … first exceed 800,000"); an extreme needs one for a year or a value ("which year had the most …", "what
    was the highest …"). An end of the series needs neither ("total contributions in the latest year shown?"):
    naming it, and a column, is the question."""
    if _ASKS_YEAR.search(question):
        for pattern, operation in _THRESHOLDS:
            if (match := pattern.search(question)) and (amount := _amount(match)) is not None:
                return SeriesQuestion(operation, amount)  # type: ignore[arg-type]
    ends = {operation for pattern, operation in _ENDS if pattern.search(question)}
    if len(ends) == 1:  # "from the earliest to the latest year" asks for no one row
        return SeriesQuestion(ends.pop())  # type: ignore[arg-type]
    if _ASKS_YEAR.search(question) or _ASKS_VALUE.search(question):
        for pattern, operation in _EXTREMES:
            if pattern.search(question):
                changes = [change for change_pattern, change in _CHANGES if change_pattern.search(question)]
                if len(changes) > 1:  # "rise and fall": no one change asked for
                    return None
                return SeriesQuestion(changes[0] if changes else operation)  # type: ignore[arg-type]
    return None


def without_operation(question: str) -> str:
    """The question with the words of its operation blanked out: its bounds, extremes and changes. A row computed
    for "when did assets first exceed $5 trillion?" or "which year had the fewest participants?" is past the bound,
    or the lowest of its column, without holding 5 trillion or "fewest": those are what the computation answered,
    not words the evidence must hold."""
    for pattern, _ in (*_THRESHOLDS, *_ENDS, *_EXTREMES, *_CHANGES):
        question = pattern.sub(lambda m: " " * len(m.group(0)), question)
    return question


def column_scale(heading: str) -> float:
    """What one unit of a column is worth: "Total Assets (millions)" 1e6, "Active Participants (thousands)" 1e3."""
    for unit in _UNIT.findall(heading):
        for word in unit.lower().split():
            word = word.removesuffix("s")
            if word in SCALES and len(word) > 2:
                return SCALES[word]
    return 1.0


def cell_value(cell: str) -> float | None:
    """A table cell's number, its currency sign or percent sign aside ("$91,754" → 91754)."""
    return number_value(cell.lstrip("$€£").rstrip("%"))


def _values(series: TableSeries, column: int) -> list[tuple[SeriesRow, float]]:
    values: list[tuple[SeriesRow, float]] = []
    for row in series.rows:
        value = cell_value(row.values[column]) if column < len(row.values) else None
        if value is not None:
            values.append((row, value))
    return values


def _is_past(asked: SeriesQuestion, series: TableSeries, column: int):
    threshold = (asked.threshold or 0.0) / column_scale(series.columns[column])
    return (lambda v: v > threshold) if asked.operation == "above" else (lambda v: v < threshold)


def table_says_none(asked: SeriesQuestion, series: TableSeries, column: int) -> bool:
    """Whether the column shows that no year answers: it never gets past the question's bound ("when did 401(k)
    assets first pass $10 trillion?" of a table that tops out at 8.0 trillion), or never rises or never falls as
    the question asks."""
    values = _values(series, column)
    if not values or asked.operation in ("highest", "lowest", "latest", "earliest"):
        return False
    if asked.operation in ("above", "below"):
        past = _is_past(asked, series, column)
        return not any(past(v) for _, v in values)
    steps = [later - earlier for (_, earlier), (_, later) in zip(values, values[1:])]
    return bool(steps) and not any((step > 0) if asked.operation == "largest_rise" else (step < 0) for step in steps)


@dataclass(frozen=True)
class TableAnswer:
    """What a computation over a table found, said before its rows are quoted: the table, the column, what was asked
    of it, and the answering year's cell (with the year before it for a crossing or a change), as printed."""

    label: str
    column: str
    operation: Operation
    cells: tuple[tuple[int, str], ...]  # (year, cell), the answering year first

    def statement(self, reader: str, marker: int) -> str:
        """One sentence that says which year answers (a reader of the quoted rows alone would see the year before
        a crossing first: rows are quoted in the table's order). Only the table's own figures: the bound a
        question asked about is not repeated, so every figure said is in the quote that [marker] cites."""
        (year, cell), *before = self.cells
        if reader == "en":
            earlier = f"; {before[0][0]}: {before[0][1]}" if before else ""
            return f"{self.label} [{marker}], {self.column}, {_SAID['en'][self.operation]}: {year} ({cell}{earlier})."
        earlier = f";{before[0][0]} 年:{before[0][1]}" if before else ""
        return f"英文资料 [{marker}] 的 {self.label},{self.column},{_SAID['zh'][self.operation]}:{year} 年({cell}{earlier})。"


_SAID: dict[str, dict[str, str]] = {
    "en": {"above": "first year above the figure asked", "below": "first year below the figure asked",
           "highest": "highest year", "lowest": "lowest year",
           "largest_rise": "largest rise from the year before", "largest_fall": "largest fall from the year before",
           "latest": "latest year", "earliest": "earliest year"},
    "zh": {"above": "首次超过所问数额的年份", "below": "首次低于所问数额的年份", "highest": "最高的年份",
           "lowest": "最低的年份", "largest_rise": "比上一年增加最多的年份", "largest_fall": "比上一年减少最多的年份",
           "latest": "最新的年份", "earliest": "最早的年份"},
}


def table_answer(asked: SeriesQuestion, series: TableSeries, column: int, rows: list[SeriesRow]) -> TableAnswer:
    """The finding of ``answer_rows`` as a statement can say it."""
    return TableAnswer(series.label, series.columns[column], asked.operation,
                       tuple((row.year, row.values[column]) for row in rows))


def answer_rows(asked: SeriesQuestion, series: TableSeries, column: int) -> list[SeriesRow]:
    """The row that answers, and for a crossing or a change the year before it (which shows it): [] where the
    column gives no answer (no year past the threshold, the first year already past it, no rise or no fall)."""
    values = _values(series, column)
    if not values:
        return []
    if asked.operation in ("largest_rise", "largest_fall"):
        steps = [(later[1] - earlier[1], later[0], earlier[0]) for earlier, later in zip(values, values[1:])]
        if not steps:
            return []
        pick = max if asked.operation == "largest_rise" else min
        change, row, before = pick(steps, key=lambda s: s[0])
        return [row, before] if (change > 0 if asked.operation == "largest_rise" else change < 0) else []
    if asked.operation in ("latest", "earliest"):  # rows are in the table's order, which is the years' order
        return [values[-1 if asked.operation == "latest" else 0][0]]
    if asked.operation in ("highest", "lowest"):
        pick = max if asked.operation == "highest" else min
        return [pick(values, key=lambda rv: rv[1])[0]]
    past = _is_past(asked, series, column)
    for i, (row, value) in enumerate(values):
        if past(value):
            return [row, values[i - 1][0]] if i > 0 else []
    return []


def _heading_words(heading: str) -> set[str]:
    """A heading's words without its unit and without "total", which a question about the aggregate leaves out."""
    return {w for w in tokenize(_UNIT.sub(" ", heading).replace("−", "-")) if w != _TOTAL}


def _initials(heading: str) -> set[str]:
    """Two-word phrases of a heading as initials: "Defined Contribution" → "dc"."""
    words = re.findall(r"[A-Za-z]+", _UNIT.sub(" ", heading))
    return {(a[0] + b[0]).lower() for a, b in zip(words, words[1:])}


def heading_match(question: str, heading: str, glossary: Mapping[str, frozenset[str]] | None = None) -> tuple[int, int]:
    """(left out, named): how many of a heading's words the question does not name, and how many it does (as they
    are, translated, as initials such as "DC", or as the end of a compound: 多雇主 names "multiemployer" through
    雇主, "employer"). "defined benefit plans" leaves out nothing of "Total Plans Defined Benefit" but
    "multiemployer" of "Multiemployer Plans Defined Benefit". ``glossary``: the corpus's own word pairs (English
    word → Chinese words, ``glossary.aligned_words``), for words the dictionary does not translate as the corpus
    does (缴款, "contribution")."""
    words = _heading_words(heading)
    named = named_heading_words(question, heading, glossary)
    return len(words - named), len(named)


def named_heading_words(question: str, heading: str, glossary: Mapping[str, frozenset[str]] | None = None
                        ) -> set[str]:
    """Which of a heading's words the question names (see ``heading_match``)."""
    words = _heading_words(heading)
    tokens = tokenize(question)
    named = matched_words(words, question)
    if glossary:
        said = set(tokens)
        named |= {w for w in words if not glossary.get(singular(w), frozenset()).isdisjoint(said)}
    for initials in _initials(heading) & set(tokens):
        named |= {w for w in words if w[:1] in initials}
    ends = {f for f in dictionary().forms(tokens) if f.isascii() and f.isalpha() and len(f) >= _MIN_COMPOUND_END}
    named |= {w for w in words if any(w != f and w.endswith(f) for f in ends)}
    return named


def distinctive_words_named(question: str, series: list[TableSeries],
                            glossary: Mapping[str, frozenset[str]] | None = None) -> list[int]:
    """For each table, how many words of its title and headings the question names that no other table has: "the
    fewest 401(k)-type plans" names E19's "401(k)", while "plans" and "number" are in both tables' titles."""
    forms = [{singular(w) for heading in (s.title, *s.columns) for w in _heading_words(heading)} for s in series]
    counts = []
    for t, table in enumerate(series):
        others = set().union(*(f for u, f in enumerate(forms) if u != t))
        named = {singular(w) for heading in (table.title, *table.columns)
                 for w in named_heading_words(question, heading, glossary)}
        counts.append(len(named - others))
    return counts


def choose_column(question: str, question_vector: np.ndarray, series: list[TableSeries],
                  column_vectors: list[np.ndarray], glossary: Mapping[str, frozenset[str]] | None = None,
                  asked: SeriesQuestion | None = None) -> tuple[int, int] | None:
    """(table, column) the question is about: the table with most words of its own the question names (see
    ``distinctive_words_named``), of those the one with the column nearest in meaning; then within it the
    column whose heading the question names most completely (fewest words left out); among headings it names whole,
    the most specific (most words named: "multiemployer defined benefit plans" is "Multiemployer Plans Defined
    Benefit", not the aggregate "Total Plans Defined Benefit"); else the nearest in meaning. ``column_vectors[t]`` holds table ``t``'s columns, each embedded with the table's title.

    Meaning alone confuses sibling columns ("Multiemployer Plans Defined Benefit" came nearest to "the most defined
    benefit plans"); words alone cannot compare a Chinese question with most English headings, whose words the
    dictionary does not translate, and then leave meaning to decide.

    Given a bound ``asked`` about, a column the question names that passes it comes before one that does not: "when
    did active participants first exceed 70 million?" presupposes a column that does, and "参加 401(k) 计划的活跃人数"
    names Number of Plans (计划, 人数 "number") more fully than Active Participants, but plans never number 70
    million. Where no named column passes it, the first one says that none does. Not for a rise or a fall: nearly
    every column has one, so having one tells nothing."""
    if not series:
        return None
    cosines = [vectors @ question_vector for vectors in column_vectors]
    distinctive = distinctive_words_named(question, series, glossary)
    table = max(range(len(series)), key=lambda t: (distinctive[t], float(cosines[t].max())))
    headings = series[table].columns
    matches = [heading_match(question, h, glossary) for h in headings]
    order = sorted(range(len(headings)), key=lambda i: (matches[i][0], -matches[i][1] if matches[i][0] == 0 else 0,
                                                         -float(cosines[table][i])))
    if asked is not None and asked.threshold is not None:  # a bound's size tells columns apart; a rise does not
        answering = [i for i in order if matches[i][1] and answer_rows(asked, series[table], i)]
        if answering:
            return table, answering[0]
    return table, order[0]
