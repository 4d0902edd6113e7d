"""Read an eval set from JSONL or CSV: one question (and optionally its answer) per row, RAGAS names accepted,
malformed rows reported by line and skipped.

A row that brings an answer (``answer``/``response``) is graded as it is; a row without one is answered by the
assistant. ``citations`` (each a quote, or ``{"quote", "document", "marker"}``) and ``contexts``
(``retrieved_contexts``) are optional.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pydantic import ValidationError

from assistant.errors import InvalidInput
from assistant.evaluate.models import EvalItem, GivenCitation, MalformedRow

ALIASES = {
    "question": ("question", "user_input", "query"),
    "reference": ("reference", "expected_answer", "ground_truth"),
    "answer": ("answer", "response"),
    "contexts": ("contexts", "retrieved_contexts"),
}
LIST_FIELDS = ("reference_contexts", "reference_sources", "must_include", "history", "contexts",
               "retrieved_contexts", "citations")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class EvalInputError(InvalidInput, ValueError):
    """The eval file cannot be used at all (missing, unreadable, empty, or without a single valid row)."""


def load_split(path: str | Path, split: str = "dev", answerable_only: bool = False) -> list[EvalItem]:
    """The items of one split of an eval file, for fitting on it; EvalInputError when a row is malformed or the split
    has none (a fit on part of a broken file would be fit on the wrong questions)."""
    items, malformed = load_items(path)
    if malformed:
        raise EvalInputError(f"{path}: {len(malformed)} malformed rows (first: line {malformed[0].line})")
    chosen = [item for item in items if item.split == split and (item.answerable or not answerable_only)]
    if not chosen:
        raise EvalInputError(f"{path} has no {'answerable ' if answerable_only else ''}{split} questions")
    return chosen


def load_items(path: str | Path) -> tuple[list[EvalItem], list[MalformedRow]]:
    """Items of a JSONL or CSV eval file, and the rows that could not be used (with their line numbers).

    Raises EvalInputError when the file is missing, unreadable, not UTF-8 or holds no rows at all.
    """
    path = Path(path)
    if not path.exists():
        raise EvalInputError(f"{path}: no such file")
    if path.is_dir():
        raise EvalInputError(f"{path}: is a directory, not an eval file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not text.strip():
        raise EvalInputError(f"{path}: the file is empty")
    rows = _csv_rows(text) if _is_csv(path, text) else _jsonl_rows(text)
    items: list[EvalItem] = []
    malformed: list[MalformedRow] = []
    seen: set[str] = set()
    for line, row in rows:
        if isinstance(row, str):
            malformed.append(MalformedRow(line=line, error=row))
            continue
        try:
            item = parse_row(row, line)
        except ValueError as exc:
            malformed.append(MalformedRow(line=line, error=str(exc)))
            continue
        if item.id in seen:
            malformed.append(MalformedRow(line=line, error=f"duplicate id {item.id!r}"))
            continue
        seen.add(item.id)
        items.append(item)
    if not items and not malformed:
        raise EvalInputError(f"{path}: no questions in the file")
    return items, malformed


def _is_csv(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        return True
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return False
    return not text.lstrip().startswith("{")


def _jsonl_rows(text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"invalid JSON: {exc.msg} (column {exc.colno})"
            continue
        yield number, row if isinstance(row, dict) else f"expected a JSON object, got {type(row).__name__}"


def _csv_rows(text: str):
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, f"unreadable CSV header: {exc}"
        return
    names = [h.strip() for h in header]
    if not any(n in ALIASES["question"] + ALIASES["answer"] for n in names):
        yield 1, (f"the CSV header has no question or answer column (one of "
                  f"{', '.join(ALIASES['question'] + ALIASES['answer'])}); got {names}")
        return
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, f"unreadable CSV row: {exc}"
            return
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(names):
            yield start, f"{len(cells)} cells but the header has {len(names)} columns"
            continue
        yield start, _csv_values(dict(zip(names, cells)))


def _csv_values(row: dict[str, str]) -> dict | str:
    """CSV cells as the types a JSONL row would hold: list cells are JSON arrays (or one plain string)."""
    out: dict = {}
    for name, cell in row.items():
        cell = cell.strip()
        if name in LIST_FIELDS:
            if not cell:
                out[name] = []
            elif cell.startswith("["):
                try:
                    out[name] = json.loads(cell)
                except json.JSONDecodeError as exc:
                    return f"column {name}: not a JSON array ({exc.msg})"
            elif name in ("history", "citations") and cell.startswith("{"):
                return f"column {name}: expected a JSON array, got an object"
            elif name == "history":
                return "column history: expected a JSON array of {role, content} objects"
            else:
                out[name] = [cell]
        elif cell:
            out[name] = cell
    return out


def _pick(row: dict, field: str):
    present = [a for a in ALIASES[field] if row.get(a) not in (None, "")]
    if len(present) > 1 and len({json.dumps(row[a], sort_keys=True) for a in present}) > 1:
        raise ValueError(f"conflicting values for {field} in {', '.join(present)}")
    return row[present[0]] if present else None


def _boolean(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{field} must be true or false, got {value!r}")


def _strings(value, field: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field} must be a list of strings")
    return value


def _citations(value) -> list[GivenCitation]:
    """Citations of a given answer: quotes, or objects with a quote and optionally a document and a marker."""
    if value in (None, ""):
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"citations must be a list, got {type(value).__name__}")
    out = []
    for n, entry in enumerate(value, start=1):
        if isinstance(entry, str):
            entry = {"quote": entry}
        if not isinstance(entry, dict):
            raise ValueError(f"citation {n}: expected a quote or an object with a quote")
        quote = entry.get("quote", entry.get("text"))
        if not isinstance(quote, str) or not quote.strip():
            raise ValueError(f"citation {n}: no quote")
        document = entry.get("document", entry.get("source"))
        marker = entry.get("marker")
        if document is not None and not isinstance(document, str):
            raise ValueError(f"citation {n}: document must be a string")
        if marker is not None and (isinstance(marker, bool) or not isinstance(marker, (int, str))
                                   or not str(marker).strip().strip("[]").isdigit()):
            raise ValueError(f"citation {n}: marker must be a number such as 1 or [1]")
        out.append(GivenCitation(quote=quote, document=document or None,
                                 marker=None if marker is None else int(str(marker).strip().strip("[]"))))
    return out


def parse_row(row: dict, line: int) -> EvalItem:
    """One row (already decoded) as an EvalItem; ValueError with a readable message if it is not usable."""
    question = _pick(row, "question")
    answer = _pick(row, "answer")
    if answer is not None and not isinstance(answer, str):
        raise ValueError(f"answer must be a string, got {type(answer).__name__}")
    if answer is not None and not answer.strip():
        answer = None
    if question is not None and not isinstance(question, str):
        raise ValueError(f"question must be a string, got {type(question).__name__}")
    if (question is None or not question.strip()) and answer is None:
        raise ValueError("no question and no answer (expected a non-empty string in 'question'/'user_input' or "
                         "'answer'/'response')")
    values: dict = {"question": (question or "").strip(), "line": line}
    if answer is not None:
        values["given_answer"] = answer
        values["given_citations"] = _citations(row.get("citations"))
    contexts = _pick(row, "contexts")
    if contexts is not None:
        values["contexts"] = _strings(contexts, "contexts")
    reference = _pick(row, "reference")
    if reference is not None:
        if not isinstance(reference, str):
            raise ValueError(f"reference must be a string, got {type(reference).__name__}")
        values["reference"] = reference
    item_id = row.get("id")
    if item_id in (None, ""):
        item_id = f"line-{line}"
    elif not isinstance(item_id, (str, int)) or isinstance(item_id, bool):
        raise ValueError(f"id must be a string, got {type(item_id).__name__}")
    values["id"] = str(item_id)
    if row.get("answerable") not in (None, ""):
        values["answerable"] = _boolean(row["answerable"], "answerable")
    for name in ("reference_contexts", "reference_sources", "must_include", "history"):
        value = row.get(name)
        if value is None:
            continue
        if isinstance(value, str) and name != "history":
            value = [value]
        if not isinstance(value, list):
            raise ValueError(f"{name} must be a list, got {type(value).__name__}")
        if name != "history" and not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of strings")
        values[name] = value
    for name in ("category", "lang", "split"):
        value = row.get(name)
        if value not in (None, ""):
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {type(value).__name__}")
            values[name] = value.strip()
    try:
        return EvalItem(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(problems) from None
