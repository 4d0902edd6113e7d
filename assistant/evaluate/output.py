"""Files of a run: results.jsonl (appended as items finish), summary.json and report.html; reading them back."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.evaluate.models import EvaluationRun, ItemResult, Summary
from assistant.fileio import write_atomic

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
REPORT = "report.html"


def _line(result: ItemResult) -> str:
    return json.dumps(result.model_dump(mode="json"), ensure_ascii=False) + "\n"


class ResultWriter:
    """Appends each result to results.jsonl as soon as it is known, flushed, so an interrupted run keeps them."""

    def __init__(self, out_dir: str | Path, append: bool = False):
        """``append``: keep the rows already there (resuming an interrupted run); a last line cut short by a kill
        is dropped first, so every line stays one whole result."""
        self.path = Path(out_dir) / RESULTS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append and self.path.is_file():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True)
                    if line.endswith("\n") and _parses(line)]
            write_atomic(self.path, "".join(kept))
        self._file = self.path.open("a" if append else "w", encoding="utf-8")

    def __call__(self, result: ItemResult) -> None:
        self._file.write(_line(result))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def write_results(results: list[ItemResult], out_dir: str | Path) -> Path:
    path = Path(out_dir) / RESULTS
    write_atomic(path, "".join(_line(r) for r in results))
    return path


def write_summary(summary: Summary, out_dir: str | Path) -> Path:
    path = Path(out_dir) / SUMMARY
    write_atomic(path, json.dumps(summary.model_dump(mode="json"), ensure_ascii=False, indent=1) + "\n")
    return path


def write_report(run: EvaluationRun, out_dir: str | Path, previous_results=()) -> dict[str, Path]:
    """Write results.jsonl, summary.json and report.html of ``run`` into ``out_dir``; returns their paths.
    ``previous_results``: those of a compared run, shown side by side in the report."""
    from assistant.evaluate.report import render_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": write_results(run.results, out), "summary": write_summary(run.summary, out)}
    path = out / REPORT
    write_atomic(path, render_html(run, previous_results=list(previous_results)))
    paths["report"] = path
    return paths


_CORE_FIELDS = ("id", "question", "category", "split", "lang", "answerable", "answer", "grounded", "metrics",
                "latency", "error", "failures")


def read_results(path: str | Path, lenient: bool = False) -> list[ItemResult]:
    """The results of a results.jsonl. A line that does not parse (e.g. the last line of a run killed mid-write)
    is skipped; with ``lenient``, a line written by another version of the evaluator keeps its id, metrics and
    failures even if its other fields no longer validate."""
    results = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                continue
            try:
                results.append(ItemResult.model_validate(data))
            except ValueError:
                if not lenient or not isinstance(data, dict):
                    continue
                try:
                    results.append(ItemResult.model_validate({k: data[k] for k in _CORE_FIELDS if k in data}))
                except ValueError:
                    continue
    return results


def load_previous(path: str | Path) -> tuple[Summary, list[ItemResult]]:
    """A previous run for ``--compare``: its summary.json (or the folder holding it) and the results.jsonl beside it."""
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY
    try:
        summary = Summary.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{path} is not a summary.json of an evaluation run: {str(exc).splitlines()[0]}") from exc
    results_path = path.parent / RESULTS
    return summary, read_results(results_path, lenient=True) if results_path.is_file() else []
