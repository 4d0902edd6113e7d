"""``assistant ask`` and ``assistant chat`` as a user runs them (subprocesses, settings from ASSISTANT_* variables)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import FACT_SHEET_MD, VENV_BIN, copy_into, test_env

ASSISTANT = str(VENV_BIN / "assistant")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, minilm_path, corpus_mirror):
    from assistant.settings import Settings
    from tests.conftest import MANIFEST

    base = tmp_path_factory.mktemp("cli-ask")
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", embedding_model=minilm_path,
                        embedding_dtype="float32", corpus_manifest=MANIFEST, abstain_threshold=0.3)
    copy_into(settings.corpus_dir, [FACT_SHEET_MD], corpus_mirror)
    result = run(settings, "index")
    assert result.returncode == 0, result.stderr
    return settings


def run(settings, *args: str, stdin: str | None = None, **env_extra: str) -> subprocess.CompletedProcess:
    env = test_env(settings, ASSISTANT_ABSTAIN_THRESHOLD=str(settings.abstain_threshold), **env_extra)
    return subprocess.run([ASSISTANT, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300)


def test_ask_json_gives_an_answer_with_verified_citations(indexed):
    result = run(indexed, "ask", "How many Americans participate in employer-sponsored defined-contribution plans?",
                 "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"answer", "grounded", "citations", "passages", "confidence", "weak_evidence"}
    assert answer["weak_evidence"] is (answer["confidence"] < indexed.weak_evidence_below)
    assert answer["grounded"] and "90 million" in answer["answer"]
    text = (indexed.corpus_dir / FACT_SHEET_MD).read_text(encoding="utf-8")
    for citation in answer["citations"]:
        assert f"[{citation['marker']}]" in answer["answer"]
        assert citation["document"] == FACT_SHEET_MD
        assert " ".join(citation["quote"].split()) in " ".join(text.split())  # the cleaned text joins wrapped lines
        assert citation["url"].startswith("https://www.whitehouse.gov/")  # the manifest's official URL
        assert citation["file_url"] == f"/documents/{FACT_SHEET_MD}/file"


def test_ask_tells_the_reader_when_the_evidence_is_weak(indexed):
    question = "How many Americans participate in employer-sponsored defined-contribution plans?"
    marked = run(indexed, "ask", question, ASSISTANT_WEAK_EVIDENCE_BELOW="1")
    assert marked.returncode == 0, marked.stderr
    assert "90 million" in marked.stdout and "Weak evidence (" in marked.stdout
    assert "read them before relying on the answer" in marked.stdout
    unmarked = run(indexed, "ask", question, ASSISTANT_WEAK_EVIDENCE_BELOW="0")
    assert "90 million" in unmarked.stdout and "Weak evidence" not in unmarked.stdout


def test_ask_says_so_when_the_sources_do_not_answer(indexed):
    result = run(indexed, "ask", "What is the boiling point of mercury?", "--json")
    answer = json.loads(result.stdout)
    assert answer["grounded"] is False and answer["citations"] == []


def test_ask_refuses_an_empty_question_clearly(indexed):
    result = run(indexed, "ask", "   ")
    assert result.returncode == 1 and "the question is empty" in result.stderr and "Traceback" not in result.stderr


def test_chat_keeps_the_conversation_and_supports_sources_and_reset(indexed):
    script = "\n".join([
        "What does the order direct the Secretary of Labor to do?",
        "/sources",
        "And the Securities and Exchange Commission?",
        "/reset",
        "/quit",
    ]) + "\n"
    result = run(indexed, "chat", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Secretary of Labor" in out
    assert "1. " + FACT_SHEET_MD in out  # /sources lists the passages of the last answer
    assert "Securities and Exchange Commission" in out.split("1. " + FACT_SHEET_MD, 1)[1]
    assert "(new conversation)" in out
