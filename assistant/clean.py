"""Step 2, clean: turn raw page text into the one cleaned text that passages and citations point into.

PDF text comes out of pypdf as printed lines: running headers and footers on every page, words hyphenated at line
ends, sentences wrapped mid-way (in Chinese, mid-word). We remove the first two, join wrapped lines (with a space for
Latin text, with nothing between CJK characters) and keep paragraph breaks. A web page saved as text, Markdown or
HTML ends with the site's related-articles list, which is cut (``cut_related_tail``).
"""

from __future__ import annotations

import re
from collections import Counter
from statistics import median

from assistant.schema import Document, PageSpan, RawDocument
from assistant.tables import dump_layouts, table_layouts

CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
CJK_CHAR = re.compile(f"[{CJK}]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]{0,2000}>")  # converted pages wrap a tag's attributes over lines
_HYPHEN_BREAK = re.compile(r"([A-Za-z]+)-\n([a-z]+)")

# Running heads of the Federal Register print layout (and similar government PDFs); the generic detector below
# finds other repeated heads, these catch the ones whose page number or date changes from page to page.
_KNOWN_RUNNING_LINES = [
    re.compile(r"^\s*\d*\s*Federal Register\s*/\s*Vol\.\s*\d+.*$"),
]
# Typesetting slugs: never part of the document, not even once.
_TYPESETTING_LINES = [
    re.compile(r"^\s*VerDate\s.*$"),
    re.compile(r"^\S*\s*on DSK\w*PROD with \S+$"),
]
# Typesetting residue that pypdf glues onto the last text line of a page (a signature graphic, a footer's tail).
_INLINE_RESIDUE = re.compile(r"\s*(\S+\.EPS</GPH>|\S*\s*\bon DSK\w*PROD with \S+)")
_TERMINAL = (".", ":", ";", "。", "！", "？", "；", "：", "!", "?")
_BLOCK_START = re.compile(r"^(Sec\.|Section\b|\(\w{1,4}\)\s|[IVX]+\.\s|\d+\.\s|•|-\s|\*\s)")


def detect_language(text: str) -> str:
    cjk = len(CJK_CHAR.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    # A Chinese character carries about as much as a short Latin word (five letters); compare like with like.
    return "zh" if cjk * 5 > latin else "en"


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", line.strip())


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Shapes of lines that stand at the top or bottom of most pages: running heads and folios."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        edge = [line for line in lines if line.strip()]
        counts.update({_shape(line) for line in edge[:2] + edge[-2:]})
    return {shape for shape, n in counts.items() if n >= max(3, 0.6 * len(pages)) and len(shape) > 3}


def _is_running(line: str, repeated: set[str]) -> bool:
    return any(p.match(line) for p in _KNOWN_RUNNING_LINES) or _shape(line) in repeated


def _running_key(line: str) -> str:
    """Lines of one running head share this key (the Federal Register head changes its date and page number)."""
    return "federal-register" if any(p.match(line) for p in _KNOWN_RUNNING_LINES) else _shape(line)


def _dehyphenate(text: str) -> str:
    """Rejoin words split at a line end. The hyphen stays where the document elsewhere writes the word hyphenated, or
    where both halves are English words and the joined form is not one ("self-\ncustody" → "self-custody", as
    printed; "poten-\ntial" → "potential", "sub-\nsection" → "subsection"): a compound word broken at its own hyphen
    reads wrongly once joined, and a quote must read as the page does."""
    hyphenated = Counter(m.group(0).lower() for m in re.finditer(r"[A-Za-z]+-[A-Za-z]+", text.replace("-\n", "#")))

    def join(match: re.Match) -> str:
        left, right = match.group(1), match.group(2)
        if f"{left}-{right}".lower() in hyphenated or _is_hyphenated_compound(left, right):
            return f"{left}-{right}"
        return left + right

    return _HYPHEN_BREAK.sub(join, text)


def _is_hyphenated_compound(left: str, right: str) -> bool:
    from assistant.bilingual import english_words, singular

    words = english_words()
    return (singular((left + right).lower()) not in words and singular(left.lower()) in words
            and singular(right.lower()) in words)


def _join_lines(lines: list[str]) -> str:
    """Rejoin printed lines into paragraphs: a line that ends a sentence and is short, or is followed by a new
    numbered block, ends a paragraph; other line ends are wraps."""
    lines = [line.strip() for line in lines]
    lengths = [len(line) for line in lines if line]
    typical = median(lengths) if lengths else 0
    out: list[str] = []
    for i, line in enumerate(lines):
        if not line:
            if out and out[-1] != "\n\n":
                out.append("\n\n")
            continue
        if out and out[-1] not in ("\n\n", "\n"):
            prev = lines[i - 1]
            ends_sentence = prev.endswith(_TERMINAL)
            if ends_sentence and (len(prev) < 0.8 * typical or _BLOCK_START.match(line)):
                out.append("\n")
            elif CJK_CHAR.match(prev[-1]) or CJK_CHAR.match(line[0]):
                pass  # wrapped CJK text: no space between characters
            else:
                out.append(" ")
        out.append(line)
    return "".join(out).strip()


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\u00a0", " ")
    text = "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def clean_pdf_pages(pages: list[str]) -> list[str]:
    """Drop typesetting slugs and running heads, but keep the first occurrence of each running head as a paragraph
    of its own: a first page's head carries document facts (the Federal Register's publication date and page)."""
    split_pages = [page.replace("\r\n", "\n").split("\n") for page in pages]
    repeated = _running_lines(split_pages)
    seen: set[str] = set()
    cleaned = []
    for lines in split_pages:
        kept = []
        for line in lines:
            if any(p.match(line) for p in _TYPESETTING_LINES):
                continue
            if _is_running(line, repeated):
                key = _running_key(line)
                if key in seen:
                    continue
                seen.add(key)
                kept.extend(["", line.strip(), ""])
                continue
            kept.append(_INLINE_RESIDUE.sub("", line))
        text = _dehyphenate("\n".join(line.rstrip() for line in kept))
        cleaned.append(_tidy(_join_lines(text.split("\n"))))
    return cleaned


# A web page saved as text or Markdown ends with the site's own chrome: a "related articles" list of teasers of other
# stories, then navigation. Indexed, those teasers are retrieved and cited as if the document said them (the seed
# article's page carries five English AI-news teasers, four times its own length). The list is cut at its heading:
# the labels news sites put above it, in the languages of the corpora we serve and the sites they come from.
_RELATED_HEADING = re.compile(
    r"^(?:#{1,6}\s*)?(?:related(?: articles| posts| stories| reading| reads| news| content)?|read (?:more|next)"
    r"|more (?:stories|articles|news)|you (?:may|might) also like|recommended (?:for you|reading|articles|stories)"
    r"|leituras relacionadas|artigos relacionados|not[íi]cias relacionadas|art[íi]culos relacionados"
    r"|lecturas relacionadas|noticias relacionadas|articles (?:connexes|similaires)|[àa] lire aussi"
    r"|verwandte artikel|weitere artikel|das k[öo]nnte sie auch interessieren"
    r"|相关阅读|相关文章|相关推荐|推荐阅读|延伸阅读|猜你喜欢|热门文章|相關閱讀|相關文章|延伸閱讀|推薦閱讀|関連記事)"
    r"\s*[:：]?$", re.I)


def cut_related_tail(text: str) -> str:
    """``text`` up to the heading of a web page's trailing related-articles list (``text`` itself when none).

    Only a heading on a line of its own counts, and never the first line with text: a document about "Related
    parties" or titled "Read more" keeps its text."""
    lines = text.split("\n")
    first = next((number for number, line in enumerate(lines) if line.strip()), len(lines))
    for number in range(first + 1, len(lines)):
        if _RELATED_HEADING.match(lines[number].strip()):
            return "\n".join(lines[:number]).rstrip()
    return text


_MD_BLOCK_START = re.compile(r"^\s*(#{1,6}\s|[-*+]\s|\d+[.)]\s|\(\w{1,4}\)\s|>|\||```)")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!$])")


def _unwrap_markdown(text: str) -> str:
    """Join Markdown's soft-wrapped lines: in Markdown a single newline inside a paragraph is just a space."""
    out: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        previous = out[-1] if out else ""
        continues = (
            stripped and previous.strip()
            and not _MD_BLOCK_START.match(line)
            and not previous.lstrip().startswith(("#", "|", "```"))
        )
        if continues:
            out[-1] = previous.rstrip() + " " + stripped
        else:
            out.append(line)
    return "\n".join(out)


def clean_text(text: str, fmt: str) -> str:
    """Clean the text of a txt, md or html file (PDF pages go through ``clean_pdf_pages``)."""
    text = cut_related_tail(text)
    if fmt == "md":
        text = _HTML_TAG.sub("", text)
        text = _MD_ESCAPE.sub(r"\1", text)
        text = _MD_EMPHASIS.sub(lambda m: m.group(2) or m.group(3), text)
        text = _unwrap_markdown(text)
    return _tidy(text)


def _title(raw: RawDocument, text: str, known_title: str | None) -> str:
    if known_title:
        return known_title
    if raw.metadata.get("title"):
        return raw.metadata["title"]
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if len(line) >= 4:
            return line[:160]
    return raw.doc_id


def clean(raw: RawDocument, known_title: str | None = None, known_language: str | None = None) -> Document:
    """Clean a raw document; page spans record where each physical page lies in the result."""
    if raw.format == "pdf":
        page_texts = clean_pdf_pages(raw.pages)
    else:
        page_texts = [clean_text(raw.pages[0], raw.format)]
    parts: list[str] = []
    spans: list[PageSpan] = []
    offset = 0
    for number, page_text in enumerate(page_texts, start=1):
        if parts:
            parts.append("\n\n")
            offset += 2
        parts.append(page_text)
        if raw.paged:
            spans.append(PageSpan(page=number, start=offset, end=offset + len(page_text)))
        offset += len(page_text)
    text = "".join(parts)
    metadata = {k: v for k, v in raw.metadata.items() if k != "title"}
    if raw.format in ("txt", "md") and (layouts := table_layouts(raw.pages[0])):
        metadata["tables"] = dump_layouts(layouts)  # cleaning collapses the spaces that say which column is which
    return Document(
        doc_id=raw.doc_id,
        title=_title(raw, text, known_title),
        language=known_language or raw.metadata.get("language") or detect_language(text),
        text=text,
        pages=spans,
        metadata=metadata,
        content_hash=raw.content_hash,
    )
