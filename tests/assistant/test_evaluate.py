"""The evaluator: loading eval sets, metric functions, the run (incl. Ctrl-C), report files, comparison, targets, CLI.

Fast: a fake assistant stands in for the pipeline except in the one end-to-end run, which uses the small MiniLM
model over a two-document corpus.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from assistant.cite import make_citation
from assistant.evaluate import (
    TARGETS,
    EvalInputError,
    EvalItem,
    ItemResult,
    compare,
    evaluate_item,
    load_items,
    load_previous,
    public_settings,
    run_evaluation,
    write_report,
)
from assistant.evaluate import metrics as m
from assistant.evaluate.core import EvaluatedAssistant
from assistant.evaluate.output import ResultWriter, read_results
from assistant.schema import Answer, ChatTurn, Document, Passage, SearchHit
from assistant.settings import Settings
from tests.conftest import CEA_MD, FACT_SHEET_MD, VENV_BIN, copy_into, test_env

# --------------------------------------------------------------------------------------------------- fakes

DOC_TEXT = ("New York changed its rules in 1950.\n\nIt allowed pensions to invest up to 35% in equities.\n\n"
            "Other states followed later.")
DOC = Document(doc_id="seed.txt", title="Seed", language="en", text=DOC_TEXT, content_hash="x")
TWIN = "seed-copy.md"


def hit(start: int, end: int, score: float = 0.8, document: str = "seed.txt", alternatives=()) -> SearchHit:
    return SearchHit(chunk_id=f"{document}:{start}", document=document, title="Seed", page=None, start=start,
                     end=end, text=DOC_TEXT[start:end], score=score, alternatives=list(alternatives))


SENTENCES = [(0, 35), (37, 89), (91, len(DOC_TEXT))]  # the three paragraphs


def grounded_answer(text: str, hits: list[SearchHit], cite=(37, 89), tamper: bool = False) -> Answer:
    citation = make_citation(DOC, 1, *cite)
    if tamper:
        citation = citation.model_copy(update={"quote": citation.quote + "!"})
    return Answer(answer=text, grounded=True, citations=[citation], passages=hits, query=text,
                  timings={"total": 0.01})


def abstention(hits: list[SearchHit]) -> Answer:
    return Answer(answer="The sources in this corpus do not answer that question, so I won't guess.", grounded=False,
                  passages=hits)


class FakeStore:
    """The index of one document (seed.txt), one passage per paragraph."""

    def revision(self) -> str:
        return "rev-1"

    def documents(self) -> dict:
        return {"seed.txt": object()}

    def passages_of(self, doc_id: str, version: str | None = None) -> list[Passage]:
        if doc_id != "seed.txt":
            return []
        return [Passage(chunk_id=f"seed.txt:{start}", document="seed.txt", title="Seed", start=start, end=end,
                        text=DOC_TEXT[start:end]) for start, end in SENTENCES]


class FakeAssistant:
    """An EvaluatedAssistant that answers from a table (question → Answer or exception), over FakeStore. It has no
    sentence index (so no claim grading) and no chat model unless a test sets one."""

    sentences = None
    chat_model = None

    def __init__(self, answers: dict, settings: Settings | None = None):
        self.answers = answers
        self.settings = settings or Settings(api_key="sk-service-secret", llm_api_key="sk-llm-secret",
                                             llm_provider="none", chroma_url="http://user:pw@127.0.0.1:8001")
        self.store = FakeStore()
        self.embedder = SimpleNamespace(model_id="fake-model@1")  # the evaluator reads only its model id
        self.calls: list[tuple] = []
        self.warmed_up = 0

    def ask(self, question, *, history=None, k=None) -> Answer:
        self.calls.append((question, history, k))
        value = self.answers[question]
        if isinstance(value, BaseException):
            raise value
        return value() if callable(value) else value

    def document(self, doc_id) -> Document | None:
        return DOC if doc_id == "seed.txt" else None

    def warm_up(self) -> None:
        self.warmed_up += 1


def test_the_fake_is_what_the_evaluator_needs():
    assert isinstance(FakeAssistant({}), EvaluatedAssistant)
    assert not isinstance(SimpleNamespace(ask=FakeAssistant.ask, settings=Settings()), EvaluatedAssistant)


def item(**values) -> EvalItem:
    values.setdefault("id", values["question"][:8])
    return EvalItem(**values)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------- loading


def test_load_jsonl_with_aliases_defaults_and_malformed_rows(tmp_path):
    rows = [
        json.dumps({"id": "a", "user_input": "What did New York do?", "ground_truth": "It changed rules.",
                    "reference_contexts": ["in 1950"], "must_include": ["1950"], "category": "en_to_en",
                    "split": "dev"}),
        "",
        "{not json",
        json.dumps({"id": "b", "question": "And the share?", "expected_answer": "35%",
                    "history": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                    "answerable": "true"}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "c", "reference": "no question here"}),
        json.dumps({"id": "d", "question": "x?", "answerable": "maybe"}),
        json.dumps({"id": "a", "question": "duplicate id"}),
        json.dumps({"id": "e", "question": "bad history", "history": [{"role": "robot", "content": "beep"}]}),
        json.dumps({"question": "no id, unanswerable", "answerable": False, "must_include": "single string"}),
    ]
    items, malformed = load_items(write(tmp_path / "set.jsonl", "\n".join(rows) + "\n"))
    assert [i.id for i in items] == ["a", "b", "line-10"]
    a, b, c = items
    assert a.question == "What did New York do?" and a.reference == "It changed rules." and a.answerable
    assert a.reference_contexts == ["in 1950"] and a.category == "en_to_en" and a.split == "dev" and a.line == 1
    assert b.reference == "35%" and [t.role for t in b.history] == ["user", "assistant"] and b.line == 4
    assert not c.answerable and c.must_include == ["single string"]
    lines = {row.line: row.error for row in malformed}
    assert sorted(lines) == [3, 5, 6, 7, 8, 9]
    assert "invalid JSON" in lines[3]
    assert "JSON object" in lines[5]
    assert "no question" in lines[6]
    assert "answerable" in lines[7]
    assert "duplicate id" in lines[8]
    assert "history" in lines[9]


def test_load_csv_with_aliases_json_list_cells_and_malformed_rows(tmp_path):
    text = (
        "id,user_input,expected_answer,reference_contexts,reference_sources,must_include,answerable,history,split\n"
        'q1,What share?,35%,"[""35% in equities""]","[""seed.txt""]",35%,,,test\n'
        'q2,"A question\nthat spans two lines?",,,,"[""a"", ""b""]",no,"[{""role"": ""user"", ""content"": ""hi""}]",\n'
        'q3,Broken list,,"[not json",,,,,\n'
        "q4,,,,,,,,\n"
        "q5,Bad flag,,,,,perhaps,,\n"
        "\n"
        "q6,Plain,,,,,1,,dev\n"
    )
    items, malformed = load_items(write(tmp_path / "set.csv", text))
    assert [i.id for i in items] == ["q1", "q2", "q6"]
    q1, q2, q6 = items
    assert q1.reference == "35%" and q1.reference_contexts == ["35% in equities"] and q1.must_include == ["35%"]
    assert q1.reference_sources == ["seed.txt"] and q1.answerable and q1.split == "test" and q1.line == 2
    assert q2.question.startswith("A question") and q2.must_include == ["a", "b"] and not q2.answerable
    assert q2.history == [ChatTurn(role="user", content="hi")] and q2.line == 3
    assert q6.answerable and q6.line == 9
    lines = {row.line: row.error for row in malformed}
    assert sorted(lines) == [5, 6, 7]
    assert "reference_contexts" in lines[5] and "no question" in lines[6] and "answerable" in lines[7]


def test_csv_without_question_column_is_reported(tmp_path):
    items, malformed = load_items(write(tmp_path / "set.csv", "prompt,text\nhello,world\n"))
    assert items == [] and malformed[0].line == 1 and "question or answer column" in malformed[0].error


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), ("", "empty"), ("  \n\n", "empty"), (b"\xff\xfe\x00bad", "UTF-8"),
])
def test_unusable_files_raise_a_clear_error(tmp_path, content, message):
    path = tmp_path / "set.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(EvalInputError, match=message):
        load_items(path)
    with pytest.raises(EvalInputError, match="directory"):
        load_items(tmp_path)


def test_project_eval_set_loads_cleanly(repo_root):
    items, malformed = load_items(repo_root / "eval" / "questions.jsonl")
    lines = [line for line in (repo_root / "eval" / "questions.jsonl").read_text().splitlines() if line.strip()]
    assert len(items) == len(lines) >= 300 and not malformed
    assert {i.category for i in items} >= {"en_to_zh", "zh_to_en", "unanswerable", "off_topic", "followup", "table",
                                           "compound", "topic_shift"}
    assert all(i.answerable == (i.category not in {"unanswerable", "off_topic"}) for i in items)


# --------------------------------------------------------------------------------------------------- metrics


def test_whitespace_insensitive_matching():
    assert m.contains("1935 年,《社会保障法》\n出台", "1935年,《社会保障法》 出台")
    assert m.contains("up to  35%\nin equities", "35% in equities")
    assert not m.contains("35 % in equities", "")
    assert not m.contains("Up to 35%", "up to 35%")
    assert m.contains("Up to 35%", "up to 35%", case_sensitive=False)
    assert m.includes_any("The SHARPE ratio [1]", ["nothing", "sharpe  ratio"])
    assert not m.includes_any("nothing here", ["sharpe", ""])


def test_passage_relevance_by_contexts_else_sources_and_alternatives():
    assert m.passage_matches("it allowed up to 35 % ...", "a.txt", [], ["up to 35 %"], ["b.txt"])
    assert not m.passage_matches("unrelated", "b.txt", [], ["up to 35 %"], ["b.txt"])  # contexts win over sources
    assert m.passage_matches("unrelated", "b.txt", [], [], ["b.txt"])
    assert m.passage_matches("unrelated", "eo.md", ["fetched/eo.pdf"], [], ["eo.pdf"])
    assert not m.passage_matches("unrelated", "eo.md", [], [], ["eo.pdf"])
    assert not m.passage_matches("anything", "eo.md", [], [], [])


def test_hit_at_k_and_mrr():
    relevance = [False, False, True, True]
    assert m.first_relevant_rank(relevance) == 3
    assert m.hit_at_k(relevance) and m.hit_at_k(relevance, 3) and not m.hit_at_k(relevance, 2)
    assert m.reciprocal_rank(relevance) == pytest.approx(1 / 3)
    assert m.reciprocal_rank(relevance, k=2) == 0.0
    assert m.reciprocal_rank([]) == 0.0 and m.first_relevant_rank([False]) is None


def test_token_f1_words_and_chinese_characters():
    assert m.tokens("The 401(k) Plan, 35%!") == ["the", "401", "k", "plan", "35"]
    assert m.tokens("1935 年《社会保障法》") == ["1935", "年", "社", "会", "保", "障", "法"]
    assert m.tokens("mixed中文text") == ["mixed", "中", "文", "text"]
    assert m.token_f1("It was passed in 1935 [1].", "Passed in 1935") == pytest.approx(2 * 0.6 * 1 / 1.6)
    assert m.token_f1("社会保障法", "社会保障法于 1935 年出台") == pytest.approx(2 * 1 * (5 / 10) / 1.5)
    assert m.token_f1("完全不同", "another answer") == 0.0
    assert m.token_f1("", "") == 1.0 and m.token_f1("", "x") == 0.0


def test_percentiles_and_means():
    assert m.percentile([], 50) is None
    assert m.percentile([3.0], 95) == 3.0
    assert m.percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert m.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert m.mean([True, False, None, True]) == pytest.approx(2 / 3) and m.mean([None]) is None


# --------------------------------------------------------------------------------------------------- scoring


def scenario():
    """Items and a fake assistant covering each outcome."""
    good_hits = [hit(*SENTENCES[2], 0.7), hit(*SENTENCES[1], 0.6)]
    miss_hits = [hit(*SENTENCES[2], 0.7), hit(*SENTENCES[0], 0.6, document=TWIN)]
    items = [
        item(id="good", question="What share of equities?", category="en_to_en", split="dev",
             reference="up to 35% in equities", reference_contexts=["up to 35%  in equities"], must_include=["35%"]),
        item(id="miss", question="When?", category="en_to_en", split="test", reference="in 1950",
             reference_contexts=["allowed pensions to invest"], reference_sources=["seed.txt"], must_include=["1950"]),
        item(id="abstain-ok", question="Unknown?", category="unanswerable", split="dev", answerable=False,
             reference="not in the corpus"),
        item(id="abstain-bad", question="Share again?", category="followup", split="test",
             reference_sources=["seed-copy.md"], must_include=["35%"],
             history=[ChatTurn(role="user", content="q"), ChatTurn(role="assistant", content="a")]),
        item(id="answered-bad", question="Weather?", category="unanswerable", split="test", answerable=False),
        item(id="tampered", question="Tampered?", category="en_to_en", split="dev", must_include=["35"]),
        item(id="boom", question="Boom?", category="en_to_en", split="dev", reference_sources=["seed.txt"],
             must_include=["x"]),
    ]
    answers = {
        "What share of equities?": grounded_answer("It allowed pensions to invest up to 35% in equities. [1]", good_hits),
        "When?": grounded_answer("Other states followed later. [1]", miss_hits,
                                 cite=SENTENCES[2]).model_copy(update={"confidence": 0.4, "weak_evidence": True}),
        "Unknown?": abstention(good_hits),
        "Share again?": abstention([hit(*SENTENCES[0], 0.3, alternatives=["seed-copy.md"])]),
        "Weather?": grounded_answer("Up to 35% [1]", good_hits).model_copy(update={"confidence": 0.3,
                                                                                   "weak_evidence": True}),
        "Tampered?": grounded_answer("Up to 35% [1]", good_hits, tamper=True),
        "Boom?": RuntimeError("model exploded"),
    }
    return items, FakeAssistant(answers)


def test_evaluate_item_scores_each_outcome():
    items, fake = scenario()
    results = {i.id: evaluate_item(fake, i, k=5) for i in items}
    good = results["good"]
    assert good.metrics.hit and good.metrics.rank == 2 and good.metrics.reciprocal_rank == 0.5
    assert good.metrics.matched_by == "contexts" and [p.relevant for p in good.retrieved] == [False, True]
    assert good.metrics.must_include and good.metrics.token_f1 > 0.5 and not good.failures
    assert good.metrics.citations == good.metrics.citations_verbatim == 1 and good.citations[0].verbatim
    assert good.metrics.false_abstention is False and good.metrics.correct_abstention is None
    assert "rank 2" in " ".join(good.notes)

    miss = results["miss"]
    assert miss.metrics.hit is False and miss.metrics.reciprocal_rank == 0.0 and miss.metrics.must_include is False
    assert any("retrieval" in f for f in miss.failures) and any("none of" in f for f in miss.failures)
    assert any("ranked below the top k" in n for n in miss.notes)  # the context is in seed.txt, just not retrieved

    assert results["abstain-ok"].metrics.correct_abstention is True and not results["abstain-ok"].failures
    assert results["abstain-ok"].metrics.hit is None and results["abstain-ok"].metrics.token_f1 is None
    bad = results["abstain-bad"]
    assert bad.metrics.hit is True and bad.metrics.matched_by == "sources"  # matched via the alternative document
    assert bad.metrics.false_abstention is True and bad.failures == ["abstained on an answerable question"]
    assert results["answered-bad"].metrics.correct_abstention is False
    assert results["answered-bad"].failures == ["answered an unanswerable question"]
    tampered = results["tampered"]
    assert tampered.metrics.citations == 1 and tampered.metrics.citations_verbatim == 0
    assert any("not verbatim" in f for f in tampered.failures)
    boom = results["boom"]
    assert boom.error == "RuntimeError: model exploded" and boom.failures
    assert boom.metrics.hit is False and boom.metrics.must_include is False and boom.metrics.false_abstention
    # stateless asks: the item's history (a list, never None, so no conversation is stored) and k
    assert fake.calls[0] == ("What share of equities?", [], 5)
    assert [t.role for t in fake.calls[3][1]] == ["user", "assistant"]


def test_a_missed_context_is_diagnosed_from_the_documents_passages():
    fake = FakeAssistant({"Rules?": abstention([hit(*SENTENCES[2], 0.7)])})
    missed = item(id="rules", question="Rules?", reference_sources=["seed.txt", "gone.md"],
                  reference_contexts=["rules in 1950. It allowed pensions", "New York changed"])
    straddling, below = evaluate_item(fake, missed, k=5).notes
    assert "seed.txt: split across two passages" in straddling and "gone.md: not in the index" in straddling
    assert "seed.txt: in a passage ranked below the top k" in below


def test_summary_aggregates_overall_per_category_and_split():
    items, fake = scenario()
    run = run_evaluation(fake, items, k=5)
    assert fake.warmed_up == 1  # before the first question, so its latency is not the model's load time
    s = run.summary
    o = s.overall
    assert o.items == 7 and o.answerable == 5 and o.unanswerable == 2 and o.errors == 1
    assert o.hit_at_k == pytest.approx(2 / 4)  # good, abstain-bad hit; miss, boom missed; tampered has no reference
    assert o.mrr == pytest.approx((0.5 + 0 + 1 + 0) / 4)
    assert o.must_include == pytest.approx(2 / 5)  # good, tampered
    assert o.correct_abstention == 0.5 and o.false_abstention == pytest.approx(2 / 5)
    assert o.citations == 4 and o.citation_validity == 0.75
    assert o.latency_p50 is not None and o.latency_p95 >= o.latency_p50
    # marked weak: "When?" (wrong) and "Weather?" (unanswerable, answered anyway: the only such one)
    assert o.weak_evidence_answers == 2 and o.weak_evidence_correct == 0.0 and o.weak_evidence_on_unanswerable == 1.0
    assert s.by_split["dev"].weak_evidence_answers == 0 and s.by_split["dev"].weak_evidence_correct is None
    assert set(s.by_category) == {"en_to_en", "unanswerable", "followup"} and set(s.by_split) == {"dev", "test"}
    assert s.by_category["unanswerable"].hit_at_k is None and s.by_category["unanswerable"].correct_abstention == 0.5
    assert s.by_category["en_to_en"].items == 4 and s.by_split["dev"].items == 4
    assert s.counts == {"items": 7, "evaluated": 7, "answerable": 5, "unanswerable": 2, "passed": 2, "failed": 5,
                        "errors": 1, "malformed": 0}
    assert s.model_id == "fake-model@1" and s.corpus_revision == "rev-1" and s.k == 5
    assert not run.interrupted and not s.interrupted
    failed = {t.name for t in s.targets if not t.passed}
    assert failed == set(TARGETS)  # every target missed here


def test_settings_in_the_summary_have_no_secrets():
    data = public_settings(FakeAssistant({}).settings)
    text = json.dumps(data)
    assert "sk-" not in text and "pw@" not in text and "api_key" not in data and "llm_api_key" not in data
    assert data["chroma_url"] == "http://127.0.0.1:8001" and "passage_tokens" in data and "top_k" in data


def test_targets_pass_on_a_good_run():
    items = [item(id=f"q{i}", question="What share of equities?", reference_contexts=["35% in equities"],
                  must_include=["35%"]) for i in range(3)]
    items.append(item(id="u", question="Unknown?", answerable=False))
    _, fake = scenario()
    summary = run_evaluation(fake, items).summary
    assert all(t.passed for t in summary.targets), summary.targets


# --------------------------------------------------------------------------------------------------- interruption


def test_keyboard_interrupt_while_asking_keeps_the_results_so_far():
    items, fake = scenario()
    fake.answers["Unknown?"] = KeyboardInterrupt()
    seen = []
    run = run_evaluation(fake, items, k=5, on_result=seen.append)
    assert run.interrupted and [r.id for r in run.results] == ["good", "miss"] == [r.id for r in seen]
    assert run.summary.interrupted and run.summary.counts["evaluated"] == 2 and run.summary.counts["items"] == 7


def test_keyboard_interrupt_in_on_result_and_stop_event():
    items, fake = scenario()

    def on_result(result):
        if result.id == "miss":
            raise KeyboardInterrupt

    run = run_evaluation(fake, items, on_result=on_result)
    assert run.interrupted and [r.id for r in run.results] == ["good", "miss"]

    stop = threading.Event()
    run = run_evaluation(fake, items, on_result=lambda r: stop.set(), stop=stop)
    assert run.cancelled and not run.interrupted and len(run.results) == 1 and run.summary.interrupted


# --------------------------------------------------------------------------------------------------- files


_EXTERNAL_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I)


def test_report_files(tmp_path):
    items, fake = scenario()
    run = run_evaluation(fake, items, k=5, malformed=[], source="set.jsonl")
    paths = write_report(run, tmp_path / "out")
    assert set(paths) == {"results", "summary", "report"}
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 7
    first = json.loads(lines[0])
    assert {"id", "question", "category", "answer", "grounded", "citations", "retrieved", "metrics", "latency"} <= set(first)
    assert {"document", "chunk_id", "score", "text"} <= set(first["retrieved"][0])
    assert {"marker", "document", "start", "end", "quote", "verbatim"} <= set(first["citations"][0])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {"overall", "by_category", "by_split", "model_id", "settings", "corpus_revision", "timestamp", "counts",
            "malformed", "targets"} <= set(summary)
    assert "sk-" not in (tmp_path / "out" / "summary.json").read_text()
    html = paths["report"].read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "<table" in html
    assert not _EXTERNAL_ASSET.search(html) and "http://" not in html and "https://" not in html
    assert "<script" not in html
    # failures first, the passing item last; a failure shows what was retrieved and the answer
    assert html.index('id="item-boom"') < html.index('id="item-good"')
    assert html.index('id="item-miss"') < html.index('id="item-abstain-ok"')
    miss = html[html.index('id="item-miss"'):html.index("</details>", html.index('id="item-miss"'))]
    assert "Other states followed later." in miss and "seed-copy.md" in miss and "no reference context" in miss
    assert read_results(paths["results"])[0].id == "good"


def test_result_writer_appends_incrementally(tmp_path):
    items, fake = scenario()
    fake.answers["Unknown?"] = KeyboardInterrupt()
    with ResultWriter(tmp_path) as writer:
        def on_result(result):
            writer(result)
            assert len((tmp_path / "results.jsonl").read_text().splitlines()) == len(run_ids) + 1
            run_ids.append(result.id)

        run_ids: list[str] = []
        run = run_evaluation(fake, items, on_result=on_result)
    assert run.interrupted and [r.id for r in read_results(tmp_path / "results.jsonl")] == run_ids == ["good", "miss"]


# --------------------------------------------------------------------------------------------------- comparison


def test_compare_lists_regressions_and_metric_changes(tmp_path):
    items, fake = scenario()
    before = run_evaluation(fake, items, k=5)
    write_report(before, tmp_path / "before")
    # now "good" loses its hit and must_include string; "abstain-bad" starts answering
    fake.answers["What share of equities?"] = grounded_answer("Other states followed later. [1]",
                                                              [hit(*SENTENCES[2], 0.7)], cite=SENTENCES[2])
    fake.answers["Share again?"] = grounded_answer("Up to 35% [1]", [hit(*SENTENCES[1], 0.7, document=TWIN)])
    after = run_evaluation(fake, items, k=5)
    # a line written by an older evaluator (another citation shape) still counts; a truncated last line does not
    path = tmp_path / "before" / "results.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["citations"] = [{"citation": c, "verbatim": True} for c in first["citations"]]
    path.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n" + lines[1][:40])
    previous, previous_results = load_previous(tmp_path / "before")
    assert [r.id for r in previous_results] == [i.id for i in items]
    assert previous_results[0].metrics.hit is True and previous_results[0].citations == []
    comparison = compare(after.summary, previous, after.results, previous_results, previous_name="before")
    worse = {r.id: r.reasons for r in comparison.regressions}
    better = {r.id: r.reasons for r in comparison.improvements}
    assert set(worse) == {"good"}
    assert any("retrieval miss" in reason for reason in worse["good"])
    assert any("must_include" in reason for reason in worse["good"])
    assert "abstain-bad" in better and any("no longer abstains" in r for r in better["abstain-bad"])
    overall = comparison.deltas["overall"]
    assert overall["hit_at_k"].before == pytest.approx(0.5) and overall["hit_at_k"].delta == pytest.approx(-0.25)
    assert overall["false_abstention"].delta == pytest.approx(-0.2)
    assert "category:en_to_en" in comparison.deltas and "split:dev" in comparison.deltas
    with pytest.raises(ValueError, match="summary"):
        load_previous(write(tmp_path / "junk.json", "[1, 2]"))


# --------------------------------------------------------------------------------------------------- CLI (fake)


@pytest.fixture
def fake_cli(monkeypatch, tmp_path):
    """Run ``assistant eval`` in-process with the scenario's fake assistant."""
    import assistant.cli as cli

    _, fake = scenario()
    monkeypatch.setattr(cli, "_assistant", lambda rebuild=False: fake)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli.app, ["eval", *map(str, args)])

    return invoke, fake


def _scenario_file(tmp_path: Path, extra: str = "") -> Path:
    items, _ = scenario()
    lines = [json.dumps(i.model_dump(exclude={"line"}), ensure_ascii=False) for i in items]
    return write(tmp_path / "set.jsonl", "\n".join(lines) + "\n" + extra)


def test_cli_eval_check_compare_and_exit_codes(fake_cli, tmp_path):
    invoke, fake = fake_cli
    source = _scenario_file(tmp_path, "{broken\n")
    result = invoke(source, "--out", tmp_path / "run1", "--check")
    assert result.exit_code == 4, result.output
    assert "skipped line 8" in result.output and "not met" in result.output and "hit_at_5" in result.output
    assert (tmp_path / "run1" / "report.html").is_file()
    summary = json.loads((tmp_path / "run1" / "summary.json").read_text())
    assert summary["counts"]["malformed"] == 1 and summary["malformed"][0]["line"] == 8

    result = invoke(source, "--out", tmp_path / "run2", "--split", "dev", "--limit", "2", "--k", "3",
                    "--compare", tmp_path / "run1" / "summary.json", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "compared with" in result.output and [c[2] for c in fake.calls[-2:]] == [3, 3]
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 2 and summary["k"] == 3
    assert summary["comparison"]["deltas"]["overall"]["hit_at_k"]["before"] == pytest.approx(0.5)

    assert invoke(tmp_path / "missing.jsonl").exit_code == 1
    result = invoke(write(tmp_path / "empty.jsonl", ""))
    assert result.exit_code == 1 and "empty" in result.output
    result = invoke(source, "--compare", tmp_path / "nowhere" / "summary.json")
    assert result.exit_code == 1 and "cannot read" in result.output


def test_cli_ctrl_c_writes_partial_results_and_exits_130(fake_cli, tmp_path):
    invoke, fake = fake_cli
    fake.answers["Unknown?"] = KeyboardInterrupt()
    result = invoke(_scenario_file(tmp_path), "--out", tmp_path / "run")
    assert result.exit_code == 130, result.output
    assert "interrupted: 2 of 7" in result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interrupted"] and summary["counts"]["evaluated"] == 2
    assert len((tmp_path / "run" / "results.jsonl").read_text().splitlines()) == 2
    assert "Interrupted" in (tmp_path / "run" / "report.html").read_text()


# --------------------------------------------------------------------------------------------------- end to end


def test_eval_end_to_end_with_minilm(tmp_path, make_settings, corpus_mirror):
    """The real pipeline (MiniLM, two White House pages) through the real command line."""
    from assistant.pipeline import Assistant

    settings = make_settings()
    copy_into(settings.corpus_dir, [CEA_MD, FACT_SHEET_MD], corpus_mirror)
    report = Assistant(settings).sync(show_progress=False)
    assert not report.failed
    rows = [
        {"id": "dc", "question": "How many Americans participate in employer-sponsored defined-contribution plans?",
         "reference": "More than 90 million Americans.", "must_include": ["90 million"], "category": "en_to_en",
         "reference_contexts": ["90 million Americans participate in employer-sponsored defined-contribution plans"],
         "reference_sources": [FACT_SHEET_MD], "split": "dev"},
        {"id": "gdp", "user_input": "What GDP benefit could retail access to private equity bring?",
         "ground_truth": "Up to $35 billion, or 0.12 percent of GDP.", "reference_sources": [CEA_MD],
         "must_include": ["35 billion"], "category": "en_to_en", "split": "test"},
        {"id": "un", "question": "What is the boiling point of mercury in kelvin?", "answerable": False,
         "category": "unanswerable", "split": "test"},
    ]
    source = write(tmp_path / "set.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n{\"id\": 3}\n")
    out = tmp_path / "run"
    done = subprocess.run([str(VENV_BIN / "assistant"), "eval", str(source), "--out", str(out), "--no-progress"],
                          env=test_env(settings), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped line 4" in done.stderr and "hit@5" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 3 and summary["counts"]["malformed"] == 1
    assert summary["model_id"] and summary["settings"]["embedding_model"] == settings.embedding_model
    assert summary["corpus_revision"] and summary["settings"]["embedding_dtype"] == "float32"
    results = {r["id"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(results) == {"dc", "gdp", "un"}
    assert results["dc"]["metrics"]["hit"] is True  # an English question over English text, even for MiniLM
    assert results["gdp"]["metrics"]["matched_by"] == "sources"
    assert results["un"]["metrics"]["hit"] is None
    assert 1 <= len(results["dc"]["retrieved"]) <= 5 and results["dc"]["latency"] > 0
    assert all(c["verbatim"] for r in results.values() for c in r["citations"])  # the pipeline's citations hold
    assert summary["overall"]["citation_validity"] in (None, 1.0)
    html = (out / "report.html").read_text()
    assert not _EXTERNAL_ASSET.search(html) and "<svg" in html


def test_faithfulness_is_judged_only_with_an_llm(monkeypatch):
    import assistant.llm as llm

    items, fake = scenario()
    calls = []
    monkeypatch.setattr(llm, "judge_faithfulness", lambda model, answer, passages: calls.append(model) or 0.8)
    assert run_evaluation(fake, items).summary.overall.faithfulness is None and not calls  # llm_provider "none"
    fake.chat_model = "the-model"
    run = run_evaluation(fake, items, judge=True)
    by_id = {r.id: r.metrics.faithfulness for r in run.results}
    assert by_id["good"] == 0.8 and by_id["abstain-ok"] is None and by_id["boom"] is None
    assert run.summary.overall.faithfulness == 0.8 and set(calls) == {"the-model"}


# --------------------------------------------------------------------------------------------------- answer rows


def test_rows_that_bring_answers_native_ragas_and_csv(tmp_path):
    rows = [
        json.dumps({"id": "n", "question": "When?", "answer": "In 1950 [1].",
                    "citations": [{"quote": "in 1950", "document": "seed.txt", "marker": "[1]"}, "up to 35%"]}),
        json.dumps({"id": "r", "user_input": "Share?", "response": "Up to 35%.", "retrieved_contexts": ["ctx one"],
                    "reference": "35%"}),
        json.dumps({"id": "q", "question": "Asked by the assistant?"}),
        json.dumps({"id": "x", "answer": 42}),
        json.dumps({"id": "y", "answer": "text", "citations": [{"document": "seed.txt"}]}),
        json.dumps({"id": "z", "answer": "text", "citations": [{"quote": "q", "marker": "one"}]}),
        json.dumps({"id": "w", "answer": "   "}),
    ]
    items, malformed = load_items(write(tmp_path / "set.jsonl", "\n".join(rows) + "\n"))
    assert [i.id for i in items] == ["n", "r", "q"]
    n, r, q = items
    assert n.given_answer == "In 1950 [1]." and [(c.quote, c.document, c.marker) for c in n.given_citations] == [
        ("in 1950", "seed.txt", 1), ("up to 35%", None, None)]
    assert r.given_answer == "Up to 35%." and r.contexts == ["ctx one"] and r.reference == "35%"
    assert q.given_answer is None
    errors = {m.line: m.error for m in malformed}
    assert "answer must be a string" in errors[4] and "no quote" in errors[5] and "marker" in errors[6]
    assert "no question and no answer" in errors[7]

    csv_text = ('id,question,answer,citations,contexts\n'
                'c1,When?,In 1950.,"[{""quote"": ""in 1950"", ""document"": ""seed.txt""}]",\n'
                'c2,,Only an answer.,a plain quote,"[""one"", ""two""]"\n'
                'c3,Asked?,,,\n')
    items, malformed = load_items(write(tmp_path / "set.csv", csv_text))
    assert not malformed and [i.id for i in items] == ["c1", "c2", "c3"]
    assert items[0].given_citations[0].document == "seed.txt" and items[1].given_citations[0].quote == "a plain quote"
    assert items[1].question == "" and items[1].contexts == ["one", "two"] and items[2].given_answer is None


def test_given_answers_are_scored_without_asking():
    items, fake = scenario()
    given = [
        item(id="g1", question="Share?", given_answer="Up to 35% in equities.", must_include=["35%"],
             reference_contexts=["up to 35%"], contexts=["nothing here", "It allowed pensions to invest up to 35%"],
             category="llm"),
        item(id="g2", question="When?", given_answer="In 1947.", must_include=["1950"], category="llm"),
    ]
    run = run_evaluation(fake, [items[0], *given])
    assert [c[0] for c in fake.calls] == ["What share of equities?"]  # the given answers were not asked
    g1, g2 = run.results[1:]
    assert g1.answered_by == "given" and g1.answer == "Up to 35% in equities." and g1.latency is None
    assert g1.metrics.hit and g1.metrics.rank == 2 and g1.metrics.correct is True and not g1.failed
    assert g2.metrics.correct is False and g2.failed and g2.metrics.hit is None
    assert "claims not graded" in g1.notes[0]  # the fake has no sentence index
    assert run.summary.by_category["llm"].correctness == 0.5


def test_resume_keeps_finished_rows_and_evaluates_only_the_rest(tmp_path):
    items, fake = scenario()
    with ResultWriter(tmp_path) as writer:
        first = run_evaluation(fake, items[:3], on_result=writer)
    with (tmp_path / "results.jsonl").open("a") as handle:
        handle.write('{"id": "cut short by a ki')  # a kill mid-write leaves half a line
    fake.calls.clear()
    done = read_results(tmp_path / "results.jsonl")
    with ResultWriter(tmp_path, append=True) as writer:
        run = run_evaluation(fake, items, done=done, on_result=writer)
    assert len(fake.calls) == len(items) - 3
    assert [r.id for r in run.results] == [i.id for i in items] and run.summary.counts["evaluated"] == len(items)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [i.id for i in items]
    assert first.summary.counts["evaluated"] == 3


def test_cli_resume_continues_an_interrupted_run(fake_cli, tmp_path):
    invoke, fake = fake_cli
    fake.answers["Unknown?"] = KeyboardInterrupt()
    source = _scenario_file(tmp_path)
    assert invoke(source, "--out", tmp_path / "run").exit_code == 130
    fake.answers["Unknown?"] = abstention([])
    fake.calls.clear()
    result = invoke(source, "--out", tmp_path / "run", "--resume", "--no-progress")
    assert result.exit_code == 0, result.output
    assert len(fake.calls) == 5  # the two finished rows were not asked again
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 7
    assert invoke(source, "--resume").exit_code == 1  # --resume needs --out


def _graded_result(**values) -> ItemResult:
    from assistant.evaluate.models import ClaimResult, Evidence, ItemMetrics, QuoteCheck

    answer = "New York acted in 1950. The cap was 53%."
    evidence = Evidence(document="seed.txt", page=None, start=37, end=89, quote=DOC_TEXT[37:89])
    claims = [ClaimResult(text="New York acted in 1950.", verdict="supported", score=0.81, start=0, end=23,
                          evidence=Evidence(document="seed.txt", start=0, end=35, quote=DOC_TEXT[0:35])),
              ClaimResult(text="The cap was 53%.", verdict="conflicting", score=0.7, start=24, end=40,
                          evidence=evidence, conflicts=["percent: '53%' in the claim, '35%' in the evidence"])]
    cited = [QuoteCheck(quote="up to 53% in equities", document="seed.txt", status="near_verbatim",
                        found_document="seed.txt", start=70, end=89, differences=["'53' where the source has '35'"],
                        claim=1, supports_claim=False)]
    metrics = ItemMetrics(claims=2, supported=1, conflicting=1, claim_support=0.5)
    return ItemResult(id=values.get("id", "g"), question="What did New York do?", answer=answer, grounded=True,
                      answered_by="given", claims=claims, cited=cited, faithfulness=0.5, metrics=metrics,
                      failures=["claim 2 conflicts"], category=values.get("category"))


def test_report_shows_claims_by_verdict_with_evidence_and_pages_thousands_of_rows(tmp_path):
    from assistant.evaluate.core import summarize
    from assistant.evaluate.models import EvaluationRun
    from assistant.evaluate.report import PAGE

    results = [_graded_result(id=f"g{i}", category="llm") for i in range(2500)]
    run = EvaluationRun(results=results, summary=summarize(results, k=5))
    paths = write_report(run, tmp_path)
    html = paths["report"].read_text()
    assert '<span class="v-supported"' in html and '<span class="v-conflicting"' in html
    assert "The cap was 53%." in html and DOC_TEXT[37:89] in html  # the claim and its evidence quote
    assert "near verbatim" in html and "&#39;53&#39; where the source has &#39;35&#39;" in html
    assert html.count('<details class="page"') == -(-2500 // PAGE)
    assert html.count('<details class="item failed" id=') == 2500 and 'id="item-g0" open' not in html  # collapsed
    assert "<script" not in html and not _EXTERNAL_ASSET.search(html)
    row = json.loads(paths["results"].read_text().splitlines()[0])
    assert row["faithfulness"] == 0.5 and row["claims"][1]["verdict"] == "conflicting"
    assert set(row["claims"][0]) >= {"text", "verdict", "score", "evidence"}
    assert set(row["claims"][0]["evidence"]) >= {"document", "page", "start", "end", "quote"}
    summary = json.loads(paths["summary"].read_text())
    assert summary["overall"]["claims"] == 5000 and summary["overall"]["conflicting_claims"] == 0.5


def test_escaping_in_the_report(tmp_path):
    from assistant.evaluate.core import summarize
    from assistant.evaluate.models import EvaluationRun

    result = _graded_result()
    result.question = "<script>alert(1)</script>"
    run = EvaluationRun(results=[result], summary=summarize([result]))
    html = write_report(run, tmp_path)["report"].read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_two_answer_sets_side_by_side(tmp_path):
    from assistant.evaluate.core import summarize
    from assistant.evaluate.models import EvaluationRun

    before, after = _graded_result(id="q1"), _graded_result(id="q1")
    after.metrics.conflicting, after.metrics.claim_support, after.metrics.supported = 0, 1.0, 2
    previous = summarize([before])
    run = EvaluationRun(results=[after], summary=summarize([after]))
    run.summary.comparison = compare(run.summary, previous, [after], [before], previous_name="llm.jsonl")
    assert run.summary.comparison.improvements[0].reasons == ["claims supported 50% → 100%",
                                                              "conflicting claims 1 → 0"]
    html = write_report(run, tmp_path, previous_results=[before])["report"].read_text()
    assert "side by side" in html and "Compared with llm.jsonl" in html
