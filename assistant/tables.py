"""Column headings of the fixed-width tables in a text file, so that a quoted row reads cell by cell.

A statistical bulletin saved as text lays its tables out with spaces: "1990   97,614   19,466   384,854 …" under a
heading block whose words stand above their columns. Cleaning collapses runs of spaces (a passage must not be
mostly blanks), and with them the only thing that says which heading a number belongs to; the quote "1990 97,614
19,466 384,854 48,998 32,028" then leaves a reader to guess. So the layout is read from the raw text at the clean
step (``table_layouts``), kept with the document (``Document.metadata["tables"]``, by table label), and the answer
reads a quoted row with it (``labelled_rows``; where each table stands in the cleaned text is worked out once per
document version): "1990: Number of Plans 97,614 · Active Participants (thousands) 19,466 · …". The quote itself
stays the verbatim row.

A layout is only kept when every column gets a heading; a table whose headings cannot be placed is quoted as it
stands rather than labelled wrongly. PDF text from pypdf has lost its alignment, so only text files are read.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from statistics import mean

TABLE_TITLE = re.compile(r"^[ \t]*(Table [A-Z]?\d+)[.:]", re.M)
_CELL = re.compile(r"\S+(?: \S+)*")  # two spaces or more separate cells; one space joins the words of a cell
_NUMBER = re.compile(r"[$€£]?-?\d[\d,]*(?:\.\d+)?%?")
_FOOTNOTE_MARK = re.compile(r"(?:^|\s)\d{1,2}(?=\s|$)")  # "(millions) 2", a lone "1" over a column
MAX_HEADING_LINES = 12
GROUP_TOLERANCE = 2.0  # characters: how much closer to one column than to its group a group heading may stand


@dataclass(frozen=True)
class TableLayout:
    """A table's label ("Table E19"), its column headings (the row key's first), and the numbers of value cells a
    row may have: all columns, or fewer when such rows fill the leading columns (later columns were added)."""

    label: str
    columns: tuple[str, ...]
    value_counts: frozenset[int]

    def to_dict(self) -> dict:
        return {"columns": list(self.columns), "value_counts": sorted(self.value_counts)}


def _cells(line: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _CELL.finditer(line)]


def _is_data_row(cells: list[tuple[int, int, str]]) -> bool:
    """A row key followed by at least two numbers."""
    return len(cells) >= 3 and all(_NUMBER.fullmatch(text) for _, _, text in cells[1:])


def _heading_phrases(line: str) -> list[tuple[float, str]]:
    """(centre, words) of a heading line's phrases, footnote marks left out."""
    phrases = []
    for start, end, text in _cells(line):
        words = _FOOTNOTE_MARK.sub(" ", text).strip()
        if words:
            phrases.append(((start + end) / 2, " ".join(words.split())))
    return phrases


def in_order(points: list[float], centres: list[float]) -> list[int] | None:
    """Each point's column, in order and each a different one (a heading line's phrases stand left to right above
    distinct columns), closest in total distance; None when there are more points than columns. Headings are often
    set narrower than the numbers below them, so the nearest column alone would put two phrases over one."""
    k, n = len(points), len(centres)
    if k > n:
        return None
    inf = float("inf")
    # cost[i][j]: the best placing of the first i points on columns before j
    cost = [[0.0] * (n + 1)] + [[inf] * (n + 1) for _ in range(k)]
    for i in range(1, k + 1):
        for j in range(i, n + 1):
            cost[i][j] = min(cost[i][j - 1], cost[i - 1][j - 1] + abs(points[i - 1] - centres[j - 1]))
    placed: list[int] = []
    j = n
    for i in range(k, 0, -1):
        while cost[i][j] == cost[i][j - 1]:
            j -= 1
        placed.insert(0, j - 1)
        j -= 1
    return placed


def _place(phrases: list[tuple[float, str]], centres: list[float]) -> list[list[int]] | None:
    """The columns each phrase of one heading line stands over: one column each (``in_order``), or, when the line
    spans the value columns in equal groups (a group heading centred above its group's sub-headings), each phrase's
    whole group. None when the line has more phrases than the table has columns."""
    placed = in_order([x for x, _ in phrases], centres)
    if placed is None:
        return None
    values = len(centres) - 1
    k = len(phrases)
    if 2 <= k < values and values % k == 0 and 0 not in placed:
        size = values // k
        groups = [list(range(1 + g * size, 1 + (g + 1) * size)) for g in range(k)]
        centred = all(
            n in group and abs(x - mean(centres[i] for i in group)) <= abs(x - centres[n]) + GROUP_TOLERANCE
            for (x, _), n, group in zip(phrases, placed, groups))
        if centred:
            return groups
    return [[n] for n in placed]


def _layout(label: str, heading_lines: list[str], rows: list[list[tuple[int, int, str]]]) -> TableLayout | None:
    width = max(len(r) for r in rows)
    full = [r for r in rows if len(r) == width]
    centres = [mean((r[i][0] + r[i][1]) / 2 for r in full) for i in range(width)]
    headings: list[list[str]] = [[] for _ in range(width)]
    for line in heading_lines:
        phrases = _heading_phrases(line)
        placed = _place(phrases, centres)
        if placed is None:
            return None
        for (_, words), columns in zip(phrases, placed):
            for column in columns:
                headings[column].append(words)
    if not all(headings):
        return None
    value_counts = {width - 1}
    for row in rows:
        if len(row) < width:
            # a shorter row is labelled only if its cells stand under the leading columns
            under = [min(range(width), key=lambda i: abs(centres[i] - (s + e) / 2)) for s, e, _ in row]
            if under != list(range(len(row))):
                return None
            value_counts.add(len(row) - 1)
    return TableLayout(label, tuple(" ".join(h) for h in headings), frozenset(value_counts))


def table_layouts(raw_text: str) -> dict[str, TableLayout]:
    """The layouts of the labelled fixed-width tables of a raw text, by label. After the title line, the title's
    continuation lines (one phrase each, up to the first blank line or the first line of several phrases) are not
    headings; the heading lines run from there to the first data row."""
    lines = raw_text.replace("\r\n", "\n").split("\n")
    layouts: dict[str, TableLayout] = {}
    for i, line in enumerate(lines):
        title = TABLE_TITLE.match(line)
        if not title or title.group(1) in layouts:
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() and len(_cells(lines[j])) == 1:
            j += 1
        heading_lines: list[str] = []
        while j < len(lines) and len(heading_lines) <= MAX_HEADING_LINES and not _is_data_row(_cells(lines[j])):
            if lines[j].strip():
                heading_lines.append(lines[j])
            j += 1
        rows = []
        while j < len(lines) and (_is_data_row(_cells(lines[j])) or not lines[j].strip()):
            if lines[j].strip():
                rows.append(_cells(lines[j]))
            j += 1
        if heading_lines and len(rows) >= 2:
            layout = _layout(title.group(1), heading_lines, rows)
            if layout is not None:
                layouts[layout.label] = layout
    return layouts


def dump_layouts(layouts: dict[str, TableLayout]) -> str:
    return json.dumps({label: layout.to_dict() for label, layout in layouts.items()}, ensure_ascii=False)


@lru_cache(maxsize=64)
def _parse_layouts(tables: str) -> dict[str, TableLayout]:
    data = json.loads(tables)
    return {label: TableLayout(label, tuple(d["columns"]), frozenset(d["value_counts"])) for label, d in data.items()}


def _row(line: str, layout: TableLayout) -> tuple[str, list[str]] | None:
    """A cleaned line's row key and value cells, when it is a row of ``layout`` (all its cells, or a leading run)."""
    tokens = line.split()
    values: list[str] = []
    while len(tokens) > 1 and _NUMBER.fullmatch(tokens[-1]) and len(values) < len(layout.columns) - 1:
        values.insert(0, tokens.pop())
    if not tokens or len(values) not in layout.value_counts:
        return None
    return " ".join(tokens), values


@dataclass(frozen=True)
class _Region:
    """Where a titled table stands in a cleaned text: a span starting from ``first`` on is under this title (later
    titles start their own regions), and stays inside the table up to ``last``: the end of the first line after its
    rows that is neither a row nor blank (a note, or a later untitled table). ``layout`` is None for a table without
    one; ``title_at`` is where its title begins."""

    first: int
    last: int
    layout: TableLayout | None
    title_at: int


def _table_end(text: str, line_start: int, layout: TableLayout | None) -> int:
    """The end of the first line from ``line_start`` on that follows the table's rows and is neither a row, a footnote
    row ("2004r 5 53,100") nor blank; the text's end when there is none."""
    rows_begun = False
    offset = line_start
    for line in text[line_start:].split("\n"):
        offset += len(line) + 1
        if layout is not None and _row(line, layout) is not None:
            rows_begun = True
            continue
        tokens = line.split()
        row_like = len(tokens) >= 2 and all(_NUMBER.fullmatch(t) for t in tokens[1:])
        if rows_begun and tokens and not row_like:
            return offset - 1
    return len(text)


@lru_cache(maxsize=64)
def _regions(text: str, tables: str) -> tuple[_Region, ...]:
    """The regions of every titled table of a cleaned text, once per document version: quoting reads them for every
    span of every answer."""
    layouts = _parse_layouts(tables)
    regions = []
    for title in TABLE_TITLE.finditer(text):
        layout = layouts.get(title.group(1))
        after_title = text.find("\n", title.start())
        last = len(text) if after_title < 0 or layout is None else _table_end(text, after_title + 1, layout)
        regions.append(_Region(title.end() - 1, last, layout, title.start()))
    return tuple(regions)


def labelled_rows(text: str, start: int, end: int, metadata: dict[str, str]) -> tuple[str, list[str]]:
    """The table label and the labelled data rows of the span ``text[start:end]`` of a cleaned document whose
    ``metadata`` holds its table layouts ("" and [] when the span holds no row of a table with a layout). The table
    is the last one titled before the span, if the span is still inside it."""
    tables = metadata.get("tables")
    if not tables:
        return "", []
    regions = _regions(text, tables)
    at = bisect_right([r.first for r in regions], start) - 1
    region = regions[at] if at >= 0 else None
    if region is None or region.layout is None or start > region.last:
        return "", []
    layout = region.layout
    rows = []
    for line in text[start:end].split("\n"):
        if (row := _row(line, layout)) is not None:
            key, values = row
            cells = " · ".join(f"{heading} {value}" for heading, value in zip(layout.columns[1:], values))
            rows.append(f"{key}: {cells}")
    return (layout.label, rows) if rows else ("", [])


# --- a table's columns as series, for questions answered by computing over rows --------------------------------------

_YEAR_KEY = re.compile(r"(?:19|20)\d\d")


@dataclass(frozen=True)
class SeriesRow:
    """A row keyed by a plain year; ``values`` are its cells as printed (fewer than the columns where the table
    added columns later), ``start``/``end`` its line in the cleaned text."""

    year: int
    values: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class TableSeries:
    """A titled table with a layout: its title as printed, its value columns' headings, and its yearly rows."""

    label: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[SeriesRow, ...]


def _title(text: str, at: int) -> str:
    """A table title's lines, up to a blank line or one that opens with a digit (a year range, footnote marks)."""
    lines = []
    for line in text[at:].split("\n"):
        if not line.strip() or line.lstrip()[:1].isdigit():
            break
        lines.append(line.strip())
    return " ".join(lines)


@lru_cache(maxsize=16)
def table_series(text: str, tables: str) -> tuple[TableSeries, ...]:
    """The tables of a cleaned text whose layout is known (``tables``: the document's ``metadata["tables"]``), each
    with the rows keyed by a plain year ("2004r", a revised figure, is a note to its year rather than a year of the
    series). Once per document version, like the regions quoting reads."""
    series = []
    for region in _regions(text, tables):
        layout = region.layout
        if layout is None:
            continue
        rows = []
        offset = region.first
        for line in text[region.first:region.last].split("\n"):
            row = _row(line, layout)
            if row is not None and _YEAR_KEY.fullmatch(row[0]):
                rows.append(SeriesRow(int(row[0]), tuple(row[1]), offset, offset + len(line)))
            offset += len(line) + 1
        if rows:
            series.append(TableSeries(layout.label, _title(text, region.title_at), layout.columns[1:],
                                      tuple(sorted(rows, key=lambda r: r.year))))
    return tuple(series)
