"""Step 1, load: read a txt, md, html or pdf file into raw per-page text, or say clearly why it cannot be read."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import yaml
from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

from assistant.errors import AssistantError
from assistant.schema import RawDocument

SUPPORTED_SUFFIXES = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf"}

# pypdf logs a warning per font it cannot fully parse; they say nothing a reader of our output can act on.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


class LoadError(AssistantError, ValueError):
    """A file that cannot be ingested; the message is the reason shown to the user."""

    expose = False  # names the file on the server


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def _decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise LoadError("contains NUL bytes: a binary file, not text")
    return text


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        return {}, text
    if not isinstance(data, dict):
        return {}, text
    meta = {str(k): str(v) for k, v in data.items() if v is not None and str(k) in {"title", "date", "source_url", "language", "author"}}
    # The front matter's lines stay as the document's first paragraph: they are the document's own facts (its title,
    # when it was published and modified) and must be citable with a verbatim quote like any other sentence.
    # One paragraph per key (a folded value's indented lines stay with it), so each fact is a sentence of its own.
    facts = re.sub(r"\n(?=\S)", "\n\n", match.group(1).strip("\n"))
    return meta, facts + "\n\n" + text[match.end():]


def _load_html(data: bytes) -> tuple[dict[str, str], str]:
    soup = BeautifulSoup(_decode_text(data), "html.parser")
    meta = {}
    if soup.title and soup.title.string:
        meta["title"] = soup.title.string.strip()
    # page chrome as HTML5 marks it (site navigation, side bars, the site's footer, forms) is not the document's text
    for tag in soup(["script", "style", "noscript", "template", "head", "svg", "iframe", "nav", "aside", "footer",
                     "form"]):
        tag.decompose()
    block_tags = ["p", "div", "section", "article", "li", "tr", "br", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "blockquote"]
    for tag in soup.find_all(block_tags):
        tag.insert_before("\n")
        tag.insert_after("\n")
    return meta, soup.get_text()


def _load_pdf(path: Path) -> tuple[dict[str, str], list[str]]:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except Exception as exc:  # noqa: BLE001 - pypdf raises several types for unsupported crypto
                raise LoadError(f"encrypted PDF that cannot be opened without a password ({exc})") from None
            if not unlocked:
                raise LoadError("encrypted PDF that needs a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = {}
        info = reader.metadata
        if info and info.title and info.title.strip():
            meta["title"] = info.title.strip()
    except LoadError:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise LoadError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    if not pages:
        raise LoadError("PDF has no pages")
    if not any(page.strip() for page in pages):
        raise LoadError(f"PDF has no text layer on any of its {len(pages)} pages (a scan?); OCR it first")
    return meta, pages


def load_file(path: Path, doc_id: str | None = None) -> RawDocument:
    """Read one file. Raises LoadError with a reason a user can act on."""
    fmt = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    data = path.read_bytes()
    if not data.strip():
        raise LoadError("empty file")
    doc_id = doc_id or path.name
    meta: dict[str, str] = {}
    if fmt == "pdf":
        if not data.lstrip().startswith(b"%PDF"):
            raise LoadError("not a PDF (the file does not start with %PDF)")
        meta, pages = _load_pdf(path)
        return RawDocument(doc_id=doc_id, path=path, format=fmt, pages=pages, paged=True, metadata=meta,
                           content_hash=content_hash(data))
    if fmt == "html":
        meta, text = _load_html(data)
    else:
        text = _decode_text(data)
        if fmt == "md":
            meta, text = _front_matter(text)
    if not text.strip():
        raise LoadError("no text after removing markup")
    return RawDocument(doc_id=doc_id, path=path, format=fmt, pages=[text], metadata=meta, content_hash=content_hash(data))
