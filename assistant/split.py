"""Step 3, split: cut a cleaned document into passages at sentence boundaries, each an exact span of its text.

LangChain's RecursiveCharacterTextSplitter does the cutting. Sizes are in estimated model tokens (a CJK character
is about one token, four Latin characters about one), so English and Chinese passages carry a similar amount of
meaning. Each passage also gets a ``context``: the heading it sits under (a Markdown heading, or a table's title and
column heads), which the embedder and the lexical index read with it, so that a table row still says which table
and which columns it belongs to.
"""

from __future__ import annotations

import hashlib
import re

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.clean import CJK_CHAR, detect_language
from assistant.schema import Document, Passage
from assistant.tables import TABLE_TITLE

SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "? ", "! ", "; ", "，", ", ", " ", ""]
_MD_HEADING = re.compile(r"^#{1,6}\s+\S.*$", re.M)
_DATA_ROW = re.compile(r"^\s*(19|20)\d\d\b")
_CONTEXT_CHARS = 400


def estimate_tokens(text: str) -> int:
    cjk = len(CJK_CHAR.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def _splitter(max_tokens: int, overlap_tokens: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=max_tokens,
        chunk_overlap=overlap_tokens,
        length_function=estimate_tokens,
        separators=SEPARATORS,
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=True,
    )


def _table_head(text: str, start: int) -> str:
    """A table's title line and its column-head lines (up to the first data row), as one context line."""
    lines = []
    for line in text[start:].split("\n")[:12]:
        if _DATA_ROW.match(line):
            break
        if line.strip():
            lines.append(" ".join(line.split()))
    return " | ".join(lines)[:_CONTEXT_CHARS]


def _headings(text: str) -> list[tuple[int, str]]:
    """(offset, heading text) for every heading; a table heading carries its title and column-head lines."""
    found = [(m.start(), m.group(0).lstrip("#").strip()) for m in _MD_HEADING.finditer(text)]
    found += [(m.start(), _table_head(text, m.start())) for m in TABLE_TITLE.finditer(text)]
    return sorted(found)


def _context_at(headings: list[tuple[int, str]], offset: int) -> str:
    context = ""
    for start, heading in headings:
        if start > offset:
            break
        context = heading
    return context


def heading_at(text: str, offset: int) -> str:
    """The heading (or table head) that the text at ``offset`` sits under, as passages record it; '' if none."""
    return _context_at(_headings(text), offset)


HEADING_PATH_SEPARATOR = " › "


def heading_path_at(text: str, offset: int) -> list[str]:
    """The chain of Markdown headings that the text at ``offset`` sits under, outermost first (a table's head as
    the innermost), so that a quote of "(B) with the care…" is located as "§ 1104. Fiduciary duties › (a) Prudent man
    standard of care" rather than by its innermost heading alone; [] when the text has no heading above it."""
    open_levels: list[tuple[int, int, str]] = []  # (level, offset, heading) of the headings still open at the offset
    for match in _MD_HEADING.finditer(text):
        if match.start() > offset:
            break
        marks = len(match.group(0)) - len(match.group(0).lstrip("#"))
        while open_levels and open_levels[-1][0] >= marks:
            open_levels.pop()
        open_levels.append((marks, match.start(), match.group(0).lstrip("#").strip()))
    path = [heading for _, _, heading in open_levels]
    table = None
    for match in TABLE_TITLE.finditer(text):
        if match.start() > offset:
            break
        table = match.start()
    if table is not None and (not open_levels or table > open_levels[-1][1]):
        path.append(_table_head(text, table))  # a table's title and column heads, under the Markdown headings
    return path


def passage_id(doc_id: str, version: str, index: int) -> str:
    """Deterministic: the same document version always yields the same ids, a new version new ones."""
    digest = hashlib.sha1(f"{doc_id}\x00{version}".encode()).hexdigest()[:16]
    return f"{digest}-{index:04d}"


def section_starts(text: str) -> list[int]:
    """Where each section of a Markdown text begins: 0, and the first line of every run of heading lines (blank
    lines inside a run allowed). Passages are cut within sections, so a passage never ends with the next section's
    headings ("…(2) In the case of an eligible individual account plan… # Title 29— LABOR ## Subtitle B… #### §
    1104. Fiduciary duties ##### (b) Indicia of ownership…"): a section's headings open its first passage."""
    starts = [0]
    previous_end = None  # where the heading before ended
    for heading in _MD_HEADING.finditer(text):
        if heading.start() > 0 and (previous_end is None or text[previous_end:heading.start()].strip()):
            starts.append(heading.start())
        previous_end = heading.end()
    return starts


def split(document: Document, max_tokens: int = 160, overlap_tokens: int = 0) -> list[Passage]:
    splitter = _splitter(max_tokens, overlap_tokens)
    starts = section_starts(document.text)
    pieces = []  # (offset in the document, text)
    for begin, end in zip(starts, starts[1:] + [len(document.text)]):
        pieces += [(begin + piece.metadata["start_index"], piece.page_content)
                   for piece in splitter.create_documents([document.text[begin:end]])]
    headings = _headings(document.text)
    version = document.version
    passages: list[Passage] = []
    for start, text in pieces:
        if start < 0 or document.text[start:start + len(text)] != text:
            # The splitter locates chunks by search; if that ever fails, find the chunk ourselves.
            start = document.text.find(text, max(0, passages[-1].start if passages else 0))
            if start < 0:
                raise RuntimeError(f"splitter produced text not found in {document.doc_id}")
        context = _context_at(headings, start)
        if context and text.startswith(context[:40]):
            context = ""  # the passage starts with its own heading
        passages.append(Passage(
            chunk_id=passage_id(document.doc_id, version, len(passages)),
            document=document.doc_id,
            title=document.title,
            page=document.page_at(start),
            start=start,
            end=start + len(text),
            text=text,
            language=detect_language(text) if CJK_CHAR.search(text) or document.language != "en" else "en",
            version=version,
            context=context,
        ))
    return passages
