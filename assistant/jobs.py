"""Evaluation jobs: an eval file in, a scored run out, in a background thread, with bounded cost.

A job lives in ``<index_dir>/evaluations/<id>/`` (status.json, input, results.jsonl, summary.json, report.html), so
any worker of the service can answer for it and a finished job survives a restart. Every cost an anonymous client
could raise is bounded by a setting: the file's bytes and lines (checked while it streams in, so a huge file is
refused before it is read whole), the malformed rows reported one by one (the rest only counted), the jobs running
at once, and the finished jobs kept. A refused file is deleted. What a job reports names no server path.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import AssistantError, InvalidInput, NotFound, TooLarge, TooManyRequests, public, public_text
from assistant.fileio import write_atomic
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.evaluate.core import EvaluatedAssistant

log = logging.getLogger(__name__)

ACCEPTED = (".jsonl", ".json", ".csv")
_ID_CHARS = set("0123456789abcdef")
_running: dict[str, threading.Event] = {}
_slots = threading.Lock()


class UnsupportedEvalFile(AssistantError):
    status, kind = 415, "unsupported_media_type"


class InvalidEvalFile(InvalidInput):
    kind = "invalid_eval_file"


class NotReady(AssistantError):
    status, kind = 409, "not_ready"


def jobs_dir(settings: Settings) -> Path:
    return Path(settings.index_dir) / "evaluations"


def job_dir(settings: Settings, job_id: str) -> Path:
    if not job_id or set(job_id) - _ID_CHARS or len(job_id) != 32:
        raise NotFound(f"no evaluation {job_id!r}")
    path = jobs_dir(settings) / job_id
    if not (path / "status.json").is_file():
        raise NotFound(f"no evaluation {job_id!r}")
    return path


# --- intake ----------------------------------------------------------------------------------------------------------

class EvalUpload:
    """An eval file arriving in chunks, written into a new job folder and refused as soon as it passes a limit."""

    def __init__(self, settings: Settings, filename: str | None):
        self.settings = settings
        self.filename = Path((filename or "").replace("\\", "/")).name or "upload"
        suffix = Path(self.filename).suffix.lower()
        if suffix not in ACCEPTED:
            raise UnsupportedEvalFile(f"an eval file must be .jsonl or .csv, not {suffix or 'no suffix'}")
        self.id = uuid.uuid4().hex
        self.folder = jobs_dir(settings) / self.id
        self.folder.mkdir(parents=True)
        self.path = self.folder / f"input{suffix}"
        self._handle = self.path.open("wb")
        self.size = self.lines = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.lines += chunk.count(b"\n")
        if self.size > self.settings.max_eval_bytes:
            self.discard()
            raise TooLarge(f"the eval file is larger than {self.settings.max_eval_bytes} bytes")
        if self.lines > self.settings.max_eval_rows:
            self.discard()
            raise TooLarge(f"the eval file has more than {self.settings.max_eval_rows} lines; split it")
        self._handle.write(chunk)

    def close(self) -> None:
        self._handle.close()

    def discard(self) -> None:
        self._handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def reserve_slot(settings: Settings) -> None:
    """Refuse early (429) when this worker already runs as many evaluations as it may."""
    with _slots:
        if len(_running) >= settings.max_running_evaluations:
            raise TooManyRequests(f"{len(_running)} evaluations are running, the most this server runs at once; "
                                  "retry when one has finished", retry_after=30)


def _write_status(folder: Path, **status) -> None:
    write_atomic(folder / "status.json", json.dumps(status, ensure_ascii=False))


def read_status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def start(assistant: EvaluatedAssistant, upload: EvalUpload, k: int | None = None, limit: int | None = None) -> dict:
    """Validate the received file and start its run; returns the first status. A refused file is deleted."""
    from assistant.evaluate.loader import EvalInputError, load_items

    settings = upload.settings
    upload.close()
    try:
        try:
            items, malformed = load_items(upload.path)
        except EvalInputError as exc:
            raise InvalidEvalFile(str(exc).replace(str(upload.path), upload.filename)) from None
        if limit:
            items = items[:limit]
        shown = [m.model_dump() for m in malformed[:settings.max_reported_rows]]
        if not items:
            raise InvalidEvalFile("no usable question in the file", malformed=shown, malformed_count=len(malformed))
        stop = threading.Event()
        with _slots:
            if len(_running) >= settings.max_running_evaluations:
                raise TooManyRequests("too many evaluations are running; retry when one has finished", retry_after=30)
            _running[upload.id] = stop
    except BaseException:
        upload.discard()
        raise
    status = dict(id=upload.id, status="running", done=0, total=len(items), malformed=shown,
                  malformed_count=len(malformed), started=time.time())
    _write_status(upload.folder, **status)
    threading.Thread(target=_run, args=(assistant, upload, items, malformed[:settings.max_reported_rows], status, k,
                                        stop), name=f"evaluation-{upload.id[:8]}", daemon=True).start()
    prune(settings)
    return status


def _run(assistant: EvaluatedAssistant, upload: EvalUpload, items, malformed, base: dict, k: int | None, stop: threading.Event) -> None:
    from assistant.evaluate.core import run_evaluation
    from assistant.evaluate.output import ResultWriter, write_report

    settings = upload.settings
    folder, done = upload.folder, [0]

    def progress(result) -> None:
        writer(result)
        done[0] += 1
        _write_status(folder, **{**base, "done": done[0]})

    try:
        with ResultWriter(folder) as writer:
            run = run_evaluation(assistant, items, k=k, on_result=progress, stop=stop, malformed=malformed,
                                 source=upload.filename)
        run.summary = type(run.summary).model_validate(public(run.summary.model_dump(mode="json"), settings))
        write_report(run, folder)
        _write_status(folder, **{**base, "status": "cancelled" if run.cancelled else "done", "done": len(run.results)})
    except Exception as exc:  # noqa: BLE001 - recorded for the client; the worker goes on
        log.exception("evaluation %s failed", upload.id)
        _write_status(folder, **{**base, "status": "failed", "done": done[0],
                                 "error": public_text(f"{type(exc).__name__}: {exc}", settings)})
    finally:
        with _slots:
            _running.pop(upload.id, None)


def cancel(settings: Settings, job_id: str) -> dict:
    folder = job_dir(settings, job_id)
    stop = _running.get(job_id)
    if stop is not None:
        stop.set()
    return read_status(folder)


def prune(settings: Settings) -> list[str]:
    """Delete the oldest finished jobs beyond ``max_stored_evaluations``; running ones are never touched."""
    root = jobs_dir(settings)
    finished = []
    for folder in root.iterdir() if root.is_dir() else ():
        try:
            status = read_status(folder)
        except (OSError, ValueError):
            continue
        if status.get("status") != "running" and folder.name not in _running:
            finished.append((status.get("started", 0), folder))
    finished.sort()
    gone = []
    for _, folder in finished[:max(0, len(finished) - settings.max_stored_evaluations)]:
        shutil.rmtree(folder, ignore_errors=True)
        gone.append(folder.name)
    return gone


def results(folder: Path, status: dict) -> tuple[dict | None, list[dict] | None]:
    """The summary and result rows of an ended run, or (None, None)."""
    if status.get("status") not in ("done", "cancelled") or not (folder / "summary.json").is_file():
        return None, None
    summary = json.loads((folder / "summary.json").read_text())
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines() if line.strip()]
    return summary, rows


def report_path(settings: Settings, job_id: str) -> Path:
    report = job_dir(settings, job_id) / "report.html"
    if not report.is_file():
        raise NotReady("the evaluation has not finished yet")
    return report
