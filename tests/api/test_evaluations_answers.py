"""POST /evaluations with rows that bring their own answers (native and RAGAS names, JSONL and CSV): each answer is
graded claim by claim through the same loader and evaluator as `assistant eval`."""

from __future__ import annotations

import json

from tests.conftest import FACT_SHEET_MD
from tests.helpers import wait_for_evaluation

NINETY = "More than 90 million Americans participate in employer-sponsored defined-contribution plans."


def test_answer_rows_are_graded_claim_by_claim(client):
    rows = [
        {"id": "native", "question": "How many?", "answer": NINETY + " [1]",
         "citations": [{"quote": "90 million Americans participate", "document": FACT_SHEET_MD, "marker": 1}]},
        {"id": "ragas", "user_input": "How many?", "response": "The boiling point of mercury is 630 kelvin.",
         "retrieved_contexts": ["mercury"], "reference": "More than 90 million."},
        {"id": "asked", "question": "How many Americans participate in employer-sponsored defined-contribution plans?"},
    ]
    body = "\n".join(json.dumps(r) for r in rows) + "\n"
    response = client.post("/evaluations", files={"file": ("answers.jsonl", body.encode(), "application/jsonl")})
    assert response.status_code == 202, response.text
    status = wait_for_evaluation(client, response.json()["id"])
    assert status["status"] == "done", status
    results = {r["id"]: r for r in status["results"]}
    native, ragas, asked = results["native"], results["ragas"], results["asked"]
    assert native["answered_by"] == "given" and native["claims"][0]["verdict"] == "supported"
    assert native["claims"][0]["evidence"]["document"] == FACT_SHEET_MD and native["faithfulness"] == 1.0
    assert native["cited"][0]["status"] == "verbatim"
    assert ragas["claims"][0]["verdict"] == "not_found" and ragas["faithfulness"] == 0.0
    assert asked["answered_by"] == "assistant" and asked["claims"]  # the assistant's own answer is graded too
    assert status["summary"]["overall"]["claims"] >= 3


def test_answer_rows_in_csv(client):
    csv = f'id,question,answer,citations\nc1,How many?,"{NINETY}","[{{""quote"": ""not a real quote at all""}}]"\n'
    response = client.post("/evaluations", files={"file": ("answers.csv", csv.encode(), "text/csv")})
    assert response.status_code == 202, response.text
    status = wait_for_evaluation(client, response.json()["id"])
    result = status["results"][0]
    assert result["claims"][0]["verdict"] == "supported" and result["cited"][0]["status"] == "absent"
    assert any("not in the corpus" in f for f in result["failures"])
