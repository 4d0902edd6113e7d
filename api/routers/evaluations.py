"""POST /evaluations: upload a question file, get a job id; GET /evaluations/{id}: status, results and report.

Jobs run in a background thread of the worker that took the upload, through the same evaluator as `assistant eval`.
Their state lives on disk (``<index_dir>/evaluations/<id>/``: status.json, results.jsonl, summary.json,
report.html), so any worker of the service can answer for any job, and a finished job survives a restart.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.deps import AssistantDep
from api.errors import ApiError
from assistant.evaluate.loader import EvalInputError, load_items
from assistant.evaluate.output import ResultWriter, write_report

router = APIRouter(tags=["evaluations"])

_ACCEPTED = {".jsonl", ".json", ".csv"}
_ID_CHARS = set("0123456789abcdef")
_running: dict[str, threading.Event] = {}


class EvaluationStatus(BaseModel):
    id: str
    status: Literal["running", "done", "cancelled", "failed"]
    done: int = 0
    total: int = 0
    malformed: list[dict] = Field(default_factory=list, description="Rows skipped, with line numbers and reasons")
    error: str | None = None
    summary: dict | None = Field(None, description="Aggregates, targets and settings, once the run ended")
    results: list[dict] | None = Field(None, description="Per-question results, once the run ended")
    report_url: str | None = None


def _jobs_dir(assistant) -> Path:
    return Path(assistant.settings.index_dir) / "evaluations"


def _job_dir(assistant, job_id: str) -> Path:
    if not job_id or set(job_id) - _ID_CHARS or len(job_id) != 32:
        raise ApiError(404, "not_found", f"no evaluation {job_id!r}")
    path = _jobs_dir(assistant) / job_id
    if not (path / "status.json").is_file():
        raise ApiError(404, "not_found", f"no evaluation {job_id!r}")
    return path


def _write_status(folder: Path, **status) -> None:
    tmp = folder / "status.json.part"
    tmp.write_text(json.dumps(status, ensure_ascii=False))
    tmp.replace(folder / "status.json")


def _run(assistant, folder: Path, job_id: str, items, malformed, k: int | None, stop: threading.Event) -> None:
    base = {"id": job_id, "total": len(items), "malformed": [m.model_dump() for m in malformed]}
    done = [0]

    def progress(result) -> None:
        writer(result)
        done[0] += 1
        _write_status(folder, status="running", done=done[0], **base)

    try:
        with ResultWriter(folder) as writer:
            from assistant.evaluate.core import run_evaluation

            run = run_evaluation(assistant, items, k=k, on_result=progress, stop=stop, malformed=malformed,
                                 source=str(folder / "input"))
        write_report(run, folder)
        _write_status(folder, status="cancelled" if run.cancelled else "done", done=len(run.results), **base)
    except Exception as exc:  # noqa: BLE001 - recorded for the client; the worker goes on
        _write_status(folder, status="failed", done=done[0], error=f"{type(exc).__name__}: {exc}", **base)
    finally:
        _running.pop(job_id, None)


@router.post("/evaluations", response_model=EvaluationStatus, status_code=202,
             summary="Start a bulk evaluation of a question file (JSONL or CSV)")
async def start_evaluation(
    assistant: AssistantDep,
    file: Annotated[UploadFile, File(description="JSONL or CSV: question, reference, reference_contexts, ...")],
    k: Annotated[int | None, Form(ge=1, le=50)] = None,
    limit: Annotated[int | None, Form(ge=1)] = None,
) -> EvaluationStatus:
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in _ACCEPTED:
        raise ApiError(415, "unsupported_media_type", f"an eval file must be .jsonl or .csv, not {suffix or 'no suffix'}")
    data = await file.read()
    job_id = uuid.uuid4().hex
    folder = _jobs_dir(assistant) / job_id
    folder.mkdir(parents=True)
    source = folder / f"input{suffix}"
    source.write_bytes(data)
    try:
        items, malformed = load_items(source)
    except EvalInputError as exc:
        raise ApiError(422, "invalid_eval_file", str(exc).replace(str(source), file.filename or "upload")) from None
    if limit:
        items = items[:limit]
    if not items:
        raise ApiError(422, "invalid_eval_file", "no usable question in the file",
                       malformed=[m.model_dump() for m in malformed])
    stop = threading.Event()
    _running[job_id] = stop
    _write_status(folder, id=job_id, status="running", done=0, total=len(items),
                  malformed=[m.model_dump() for m in malformed], started=time.time())
    threading.Thread(target=_run, args=(assistant, folder, job_id, items, malformed, k, stop),
                     name=f"evaluation-{job_id[:8]}", daemon=True).start()
    return EvaluationStatus(id=job_id, status="running", total=len(items),
                            malformed=[m.model_dump() for m in malformed])


@router.get("/evaluations/{job_id}", response_model=EvaluationStatus, summary="Status, results and summary of a run")
async def get_evaluation(job_id: str, assistant: AssistantDep) -> EvaluationStatus:
    folder = _job_dir(assistant, job_id)
    status = json.loads((folder / "status.json").read_text())
    response = EvaluationStatus(**{k: v for k, v in status.items() if k in EvaluationStatus.model_fields})
    if response.status in ("done", "cancelled") and (folder / "summary.json").is_file():
        response.summary = json.loads((folder / "summary.json").read_text())
        results = folder / "results.jsonl"
        response.results = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        response.report_url = f"/evaluations/{job_id}/report"
    return response


@router.get("/evaluations/{job_id}/report", summary="The run's HTML report (opens offline)")
async def get_report(job_id: str, assistant: AssistantDep) -> FileResponse:
    report = _job_dir(assistant, job_id) / "report.html"
    if not report.is_file():
        raise ApiError(409, "not_ready", "the evaluation has not finished yet")
    return FileResponse(report, media_type="text/html")


@router.delete("/evaluations/{job_id}", response_model=EvaluationStatus, summary="Stop a running evaluation")
async def cancel_evaluation(job_id: str, assistant: AssistantDep) -> EvaluationStatus:
    folder = _job_dir(assistant, job_id)
    stop = _running.get(job_id)
    if stop is not None:
        stop.set()
    status = json.loads((folder / "status.json").read_text())
    return EvaluationStatus(**{k: v for k, v in status.items() if k in EvaluationStatus.model_fields})
