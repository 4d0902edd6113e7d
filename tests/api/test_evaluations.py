"""POST /evaluations and GET /evaluations/{id}: a question file in, a scored run out, through the real service."""

from __future__ import annotations

import json
import time

QUESTIONS = [
    {"id": "fs-1", "question": "How many Americans participate in employer-sponsored defined-contribution plans?",
     "must_include": ["90 million"], "reference_sources": ["whitehouse_fact-sheet_2025-08-07_democratizes-access-to-alternative-assets-for-401k-investors.md"]},
    {"id": "off-1", "question": "What is the boiling point of mercury in kelvin?", "answerable": False},
]


def _wait(client, job_id: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get(f"/evaluations/{job_id}").json()
        if status["status"] != "running":
            return status
        time.sleep(0.2)
    raise AssertionError(f"evaluation {job_id} still running after {seconds} s")


def test_an_uploaded_question_file_is_scored_with_a_report(client):
    body = "\n".join(json.dumps(q) for q in QUESTIONS) + "\n{not json\n"
    response = client.post("/evaluations", files={"file": ("set.jsonl", body.encode(), "application/jsonl")})
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "running" and started["total"] == 2
    assert started["malformed"] and started["malformed"][0]["line"] == 3

    status = _wait(client, started["id"])
    assert status["status"] == "done" and status["done"] == 2
    assert [r["id"] for r in status["results"]] == ["fs-1", "off-1"]
    overall = status["summary"]["overall"]
    assert overall["items"] == 2 and overall["answerable"] == 1 and overall["unanswerable"] == 1
    assert overall["hit_at_k"] == 1.0  # the fact sheet is retrieved for its own question
    assert overall["correct_abstention"] == 1.0  # mercury is not in a pension corpus
    assert overall["citation_validity"] in (1.0, None)
    assert status["summary"]["malformed"][0]["line"] == 3
    report = client.get(status["report_url"])
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    assert "fs-1" in report.text


def test_csv_files_are_accepted_and_limit_applies(client):
    csv = "question,answerable\nWhat does the CEA summary estimate?,true\nWho is the mayor of Paris?,false\n"
    response = client.post("/evaluations", files={"file": ("set.csv", csv.encode(), "text/csv")}, data={"limit": "1"})
    assert response.status_code == 202, response.text
    status = _wait(client, response.json()["id"])
    assert status["status"] == "done" and status["total"] == 1 and len(status["results"]) == 1


def test_bad_uploads_and_unknown_ids_are_clear_4xx(client):
    wrong_type = client.post("/evaluations", files={"file": ("set.pdf", b"%PDF-1.4", "application/pdf")})
    assert wrong_type.status_code == 415 and "jsonl" in wrong_type.json()["error"]["message"]
    empty = client.post("/evaluations", files={"file": ("empty.jsonl", b"", "application/jsonl")})
    assert empty.status_code == 422 and empty.json()["error"]["message"]
    assert "Traceback" not in empty.text
    unknown = client.get("/evaluations/" + "0" * 32)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found"
    traversal = client.get("/evaluations/..%2F..%2Fetc")
    assert traversal.status_code == 404
