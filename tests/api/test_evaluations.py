"""POST /evaluations and GET /evaluations/{id}: a question file in, a scored run out, through the real service."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import wait_for_evaluation

QUESTIONS = [
    {"id": "fs-1", "question": "How many Americans participate in employer-sponsored defined-contribution plans?",
     "must_include": ["90 million"], "reference_sources": ["whitehouse_fact-sheet_2025-08-07_democratizes-access-to-alternative-assets-for-401k-investors.md"]},
    {"id": "off-1", "question": "What is the boiling point of mercury in kelvin?", "answerable": False},
]


def test_an_uploaded_question_file_is_scored_with_a_report(client):
    body = "\n".join(json.dumps(q) for q in QUESTIONS) + "\n{not json\n"
    response = client.post("/evaluations", files={"file": ("set.jsonl", body.encode(), "application/jsonl")})
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "running" and started["total"] == 2
    assert started["malformed"] and started["malformed"][0]["line"] == 3

    status = wait_for_evaluation(client, started["id"])
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
    status = wait_for_evaluation(client, response.json()["id"])
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


# --- abuse (issue 12) -----------------------------------------------------------------------------------------------

def _jobs(client) -> set[str]:
    from assistant.jobs import jobs_dir

    root = jobs_dir(client.app.state.settings)
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


def _post(client, body: bytes, name: str = "set.jsonl", **kwargs):
    return client.post("/evaluations", files={"file": (name, body, "application/jsonl")}, **kwargs)


def test_starting_an_evaluation_needs_the_key_when_one_is_set(make_client):
    keyed = make_client(api_key="s3cret")
    before = _jobs(keyed)
    body = (json.dumps(QUESTIONS[1]) + "\n").encode()
    refused = _post(keyed, body)
    assert refused.status_code == 401 and _jobs(keyed) == before
    assert keyed.delete("/evaluations/" + "0" * 32).status_code == 401
    started = _post(keyed, body, headers={"X-API-Key": "s3cret"})
    assert started.status_code == 202
    assert keyed.get(f"/evaluations/{started.json()['id']}").status_code == 200  # reading needs no key
    wait_for_evaluation(keyed, started.json()["id"])


def test_a_file_of_invalid_lines_gets_a_small_422_and_is_deleted(client):
    """The attack, scaled: a file of nothing but invalid lines used to answer every one (323 MB for 10 MB)."""
    before = _jobs(client)
    body = b"x\n" * 4000
    response = _post(client, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["malformed_count"] == 4000 and len(error["malformed"]) == 20  # max_reported_rows
    assert len(response.content) < 5000
    assert _jobs(client) == before  # nothing kept


def test_too_many_lines_or_bytes_are_413_while_streaming(make_client):
    small = make_client(max_eval_rows=100, max_eval_bytes=50_000)
    before = _jobs(small)
    lines = _post(small, b"x\n" * 101)
    assert lines.status_code == 413 and "lines" in lines.json()["error"]["message"]
    size = _post(small, b'{"question": "' + b"q" * 60_000 + b'"}\n')
    assert size.status_code == 413 and "bytes" in size.json()["error"]["message"]
    assert _jobs(small) == before


def test_running_jobs_are_capped(make_client):
    import threading

    from assistant import jobs

    capped = make_client(max_running_evaluations=1)
    jobs._running["f" * 32] = threading.Event()  # one job already running in this worker
    try:
        before = _jobs(capped)
        response = _post(capped, (json.dumps(QUESTIONS[1]) + "\n").encode())
        assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
        assert _jobs(capped) == before
    finally:
        jobs._running.pop("f" * 32)


def test_finished_jobs_are_capped_and_no_server_path_is_shown(make_client, api_assistant):
    capped = make_client(max_stored_evaluations=2)
    body = (json.dumps(QUESTIONS[0]) + "\n{bad\n").encode()
    ids = []
    for _ in range(4):
        response = _post(capped, body)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
        wait_for_evaluation(capped, ids[-1])
    assert capped.get(f"/evaluations/{ids[0]}").status_code == 404  # the oldest went
    status = capped.get(f"/evaluations/{ids[-1]}")
    assert status.json()["status"] == "done"
    report = capped.get(f"/evaluations/{ids[-1]}/report").text
    settings = api_assistant.settings
    for text in (status.text, report):
        for folder in (settings.index_dir, settings.corpus_dir, settings.model_cache, settings.corpus_manifest,
                       Path.home()):
            assert str(folder) not in text
    summary = status.json()["summary"]
    assert summary["source"] == "set.jsonl"
    assert summary["settings"]["index_dir"] == "index"
