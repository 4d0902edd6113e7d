"""POST /evaluations: upload a question file, get a job id; GET /evaluations/{id}: status, results and report.

The jobs are assistant/jobs.py's (same evaluator as `assistant eval`, bounded cost, no server paths out). Starting
one writes to disk and keeps a worker busy, so it needs the API key when one is set; so does cancelling one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AssistantDep, SettingsDep, require_api_key
from assistant import jobs

router = APIRouter(tags=["evaluations"])

CHUNK = 256 * 1024


class EvaluationStatus(BaseModel):
    id: str
    status: Literal["running", "done", "cancelled", "failed"]
    done: int = 0
    total: int = 0
    malformed: list[dict] = Field(default_factory=list,
                                  description="Rows skipped, with line numbers and reasons (the first ones only)")
    malformed_count: int = Field(0, description="How many rows were skipped in all")
    error: str | None = None
    summary: dict | None = Field(None, description="Aggregates, targets and settings, once the run ended")
    results: list[dict] | None = Field(None, description="Per-question results, once the run ended")
    report_url: str | None = None


def _status(status: dict) -> EvaluationStatus:
    return EvaluationStatus(**{k: v for k, v in status.items() if k in EvaluationStatus.model_fields})


@router.post("/evaluations", response_model=EvaluationStatus, status_code=202,
             summary="Start a bulk evaluation of a question file (JSONL or CSV)",
             dependencies=[Depends(require_api_key)],
             responses={413: {"description": "File too large or too many lines"},
                        415: {"description": "Not a .jsonl or .csv file"},
                        422: {"description": "No usable question (the first malformed rows, and their count)"},
                        429: {"description": "Too many evaluations running (see Retry-After)"}})
async def start_evaluation(
    assistant: AssistantDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="JSONL or CSV: question, reference, reference_contexts, ...")],
    k: Annotated[int | None, Form(ge=1, le=50)] = None,
    limit: Annotated[int | None, Form(ge=1)] = None,
) -> EvaluationStatus:
    jobs.reserve_slot(settings)
    upload = jobs.EvalUpload(settings, file.filename)
    try:
        while chunk := await file.read(CHUNK):
            upload.write(chunk)
    except BaseException:
        upload.discard()
        raise
    return _status(await run_in_threadpool(jobs.start, assistant, upload, k, limit))


@router.get("/evaluations/{job_id}", response_model=EvaluationStatus, summary="Status, results and summary of a run")
def get_evaluation(job_id: str, settings: SettingsDep) -> EvaluationStatus:
    folder = jobs.job_dir(settings, job_id)
    status = jobs.read_status(folder)
    response = _status(status)
    response.summary, response.results = jobs.results(folder, status)
    if response.summary is not None:
        response.report_url = f"/evaluations/{job_id}/report"
    return response


@router.get("/evaluations/{job_id}/report", summary="The run's HTML report (opens offline)")
def get_report(job_id: str, settings: SettingsDep) -> FileResponse:
    return FileResponse(jobs.report_path(settings, job_id), media_type="text/html")


@router.delete("/evaluations/{job_id}", response_model=EvaluationStatus, summary="Stop a running evaluation",
               dependencies=[Depends(require_api_key)])
def cancel_evaluation(job_id: str, settings: SettingsDep) -> EvaluationStatus:
    return _status(jobs.cancel(settings, job_id))
