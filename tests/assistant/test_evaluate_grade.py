"""The claim grader over a real sentence index (MiniLM, real Chroma, real corpus files): verdicts with evidence,
citation lookups, and given answers graded through the evaluator and the command line."""

from __future__ import annotations

import json
import subprocess

import pytest

from assistant.evaluate import load_items, run_evaluation
from assistant.evaluate.grade import Candidate, ClaimGrader, GradeParams, Scored, decide, score_candidates
from assistant.evaluate.models import GivenCitation
from tests.conftest import CEA_MD, EO14330_PDF, FACT_SHEET_MD, VENV_BIN, close_store, copy_into, test_env

# Thresholds for MiniLM in these tests (the shipped ones are fitted for EmbeddingGemma by bench/grade.py fit).
PARAMS = GradeParams(support=0.6, conflict=0.5, agree=0.1)
NINETY = "More than 90 million Americans participate in employer-sponsored defined-contribution plans."


@pytest.fixture(scope="module")
def assistant(small_index, shared_embedder):
    from assistant.pipeline import Assistant
    from assistant.store import IndexStore

    store = IndexStore(small_index, shared_embedder.model_id)
    yield Assistant(small_index, embedder=shared_embedder, store=store)
    close_store(store)


@pytest.fixture(scope="module")
def grader(assistant):
    return ClaimGrader.for_assistant(assistant, PARAMS)


# --------------------------------------------------------------------------------------------------- decide


def _scored(text: str, cosine: float, claim: str) -> Scored:
    return score_candidates(claim, [Candidate("d", None, 0, len(text), text, cosine)])[0]


def test_decide_prefers_support_then_conflict_then_not_found():
    claim = "In 1950 the cap was 53%."
    agree = _scored("The cap was 53% from 1950.", 0.8, claim)
    differ = _scored("The cap was 35% from 1950.", 0.85, claim)
    far = _scored("Unrelated text.", 0.2, claim)
    verdict, score, evidence, found = decide([differ, far], PARAMS)
    assert verdict == "conflicting" and evidence.text.startswith("The cap was 35%") and "percent" in found[0]
    assert decide([agree, differ], PARAMS)[0] == "supported"  # the sentence that states the claim's facts wins
    assert decide([far], PARAMS)[:1] == ("not_found",) and decide([far], PARAMS)[2].text == "Unrelated text."
    assert decide([], PARAMS) == ("not_found", 0.0, None, [])
    assert decide([differ], GradeParams(support=0.6, conflict=0.9))[0] == "supported"  # not the same thing enough
    assert decide([differ], GradeParams(support=0.6, conflict=0.5, checks=("year",)))[0] == "supported"


def test_params_for_an_uncalibrated_model_are_the_defaults(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"models": {"m": {"params": {"support": 0.7, "checks": ["year"], "junk": 1}}}}))
    assert GradeParams.for_model("m@abc", path) == GradeParams(support=0.7, checks=("year",))
    assert GradeParams.for_model("other@abc", path) == GradeParams()
    assert GradeParams.for_model("m", tmp_path / "missing.json") == GradeParams()


# --------------------------------------------------------------------------------------------------- the grader


def test_claims_get_verdicts_with_verbatim_evidence(grader, small_index):
    answer = (f"{NINETY} [1] More than 60 million Americans participate in employer-sponsored defined-contribution "
              "plans. The boiling point of mercury is 630 kelvin.")
    graded = grader.grade([(answer, [])])[0]
    assert [c.verdict for c in graded.claims] == ["supported", "conflicting", "not_found"]
    supported, conflicting, _ = graded.claims
    assert supported.markers == [1] and supported.evidence.document == FACT_SHEET_MD
    document = grader.document(supported.evidence.document)
    assert document.text[supported.evidence.start:supported.evidence.end] == supported.evidence.quote
    assert "90 million" in conflicting.evidence.quote and "number" in conflicting.conflicts[0]
    assert graded.faithfulness == pytest.approx(1 / 3, abs=1e-3)


def test_cited_quotes_are_looked_up(grader):
    quote = "90 million Americans participate in employer-sponsored defined-contribution plans"
    cited = [
        GivenCitation(quote=quote, document=FACT_SHEET_MD, marker=1),
        GivenCitation(quote=quote, document=CEA_MD),
        GivenCitation(quote=quote.replace("90", "60"), document=FACT_SHEET_MD),
        GivenCitation(quote="Pension funds on Mars are regulated by the Martian Council of Elders."),
        GivenCitation(quote=quote, document=f"some/folder/{FACT_SHEET_MD}"),
    ]
    answer = f"{NINETY} [1] The moon is made of cheese."
    checks = grader.grade([(answer, cited)])[0].cited
    assert [c.status for c in checks] == ["verbatim", "wrong_document", "near_verbatim", "absent", "verbatim"]
    assert checks[0].found_document == FACT_SHEET_MD and checks[0].claim == 0 and checks[0].supports_claim
    assert checks[1].found_document in (FACT_SHEET_MD, EO14330_PDF)  # the order says it too
    assert checks[2].differences == ["'60' where the source has '90'"] and checks[2].similarity > 0.9
    assert checks[3].start is None and checks[3].supports_claim is None
    text = grader.document(FACT_SHEET_MD).text
    assert text[checks[0].start:checks[0].end] == quote


def test_a_citation_that_does_not_support_its_claim_is_flagged(grader):
    quote = "90 million Americans participate in employer-sponsored defined-contribution plans"
    checks = grader.grade([("The moon is made of green cheese. [1]",
                            [GivenCitation(quote=quote, document=FACT_SHEET_MD, marker=1)])])[0].cited
    assert checks[0].status == "verbatim" and checks[0].supports_claim is False and not checks[0].valid


def test_given_answers_through_the_evaluator(assistant, grader, tmp_path):
    rows = [
        {"id": "llm-1", "user_input": "How many Americans are in DC plans?", "response": NINETY,
         "reference": "More than 90 million.", "category": "llm"},
        {"id": "llm-2", "question": "How many?", "answer": NINETY.replace("90", "60") + " [1]",
         "citations": [{"quote": "90 million Americans", "document": FACT_SHEET_MD, "marker": 1}],
         "must_include": ["90 million"], "category": "llm"},
    ]
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items, _ = load_items(path)
    run = run_evaluation(assistant, items, grader=grader)
    first, second = run.results
    assert first.faithfulness == 1.0 and first.metrics.correct is True and not first.failed
    assert second.claims[0].verdict == "conflicting" and second.metrics.conflicting == 1
    assert second.cited[0].status == "verbatim" and second.cited[0].supports_claim is False
    assert any("conflicts with" in f for f in second.failures) and second.metrics.correct is False
    overall = run.summary.overall
    assert overall.claims == 2 and overall.conflicting_claims == 0.5 and overall.claim_support == 0.5


@pytest.mark.slow
def test_cli_grades_given_answers_and_compares_two_sets(make_settings, corpus_mirror, tmp_path):
    """The real command line over a MiniLM index: an LLM's answers against another set for the same questions."""
    from assistant.pipeline import Assistant

    settings = make_settings()
    copy_into(settings.corpus_dir, [FACT_SHEET_MD], corpus_mirror)
    assert not Assistant(settings).sync(show_progress=False).failed
    ours = [{"id": "q1", "question": "How many?", "answer": NINETY}]
    theirs = [{"id": "q1", "question": "How many?", "answer": NINETY.replace("90", "60")}]
    (tmp_path / "ours.jsonl").write_text(json.dumps(ours[0]) + "\n")
    (tmp_path / "theirs.jsonl").write_text(json.dumps(theirs[0]) + "\n")
    out = tmp_path / "run"
    done = subprocess.run([str(VENV_BIN / "assistant"), "eval", str(tmp_path / "theirs.jsonl"), "--out", str(out),
                           "--compare", str(tmp_path / "ours.jsonl"), "--no-progress"],
                          env=test_env(settings), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert result["claims"][0]["verdict"] in ("conflicting", "supported")
    assert (out / "compared" / "results.jsonl").is_file() and "compared with" in done.stdout
    assert "side by side" in (out / "report.html").read_text()
