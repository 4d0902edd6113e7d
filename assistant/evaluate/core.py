"""The evaluation core, pure Python: run questions through an Assistant (or take the answers a row brings), grade
each answer claim by claim against the corpus, score it, aggregate, compare runs.

Nothing here prints or touches the terminal, so the CLI, the tests and an API worker thread all use it alike.
What it needs of an assistant is ``EvaluatedAssistant``: the pipeline's Assistant is one, and so are the tests' fakes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from assistant.cite import is_verified
from assistant.evaluate import metrics as m
from assistant.evaluate.calibration import weak_evidence_summary
from assistant.evaluate.models import (
    Aggregate,
    CitationCheck,
    Comparison,
    EvalItem,
    EvaluationRun,
    GivenCitation,
    ItemMetrics,
    ItemResult,
    MalformedRow,
    MetricDelta,
    Regression,
    RetrievedPassage,
    Summary,
)
from assistant.evaluate.targets import check_targets
from assistant.schema import Answer, ChatTurn, Document, Passage
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.embed import TextEmbedder
    from assistant.evaluate.grade import ClaimGrader
    from assistant.sentences import SentenceIndex
    from assistant.store import DocumentRecord

log = logging.getLogger(__name__)


class EvaluatedStore(Protocol):
    """What the evaluator reads of an assistant's index."""

    def revision(self) -> str: ...

    def documents(self) -> Mapping[str, DocumentRecord]: ...

    def passages_of(self, doc_id: str, version: str | None = None) -> list[Passage]:
        """The passages of a document's registered version (default), in document order."""
        ...


@runtime_checkable  # so a test can check that its fake is one
class EvaluatedAssistant(Protocol):
    """What the evaluator needs of an assistant (``assistant.pipeline.Assistant`` is one).

    ``sentences`` None: no sentence index, so answers are not graded claim by claim. ``chat_model`` None: no LLM to
    judge faithfulness with. ``warm_up`` loads what the first question would otherwise wait for.
    """

    @property
    def settings(self) -> Settings: ...

    @property
    def embedder(self) -> TextEmbedder: ...

    @property
    def store(self) -> EvaluatedStore: ...

    @property
    def sentences(self) -> SentenceIndex | None: ...

    @property
    def chat_model(self) -> Any: ...

    def ask(self, question: str, *, history: list[ChatTurn] | None = None, k: int | None = None) -> Answer: ...

    def document(self, doc_id: str) -> Document | None: ...

    def warm_up(self) -> None: ...


# Aggregate metrics, in the order reports show them, with their labels and whether higher is better.
METRICS: dict[str, tuple[str, bool]] = {
    "hit_at_k": ("hit@k", True),
    "mrr": ("MRR", True),
    "must_include": ("must include", True),
    "token_f1": ("token F1", True),
    "citation_validity": ("citations verbatim", True),
    "correct_abstention": ("correct abstention", True),
    "false_abstention": ("false abstention", False),
    "faithfulness": ("faithfulness (LLM judge)", True),
    "claim_support": ("claims supported", True),
    "conflicting_claims": ("claims conflicting", False),
    "correctness": ("correct", True),
    "latency_p50": ("latency p50 (s)", False),
    "latency_p95": ("latency p95 (s)", False),
}
_SECRET = re.compile(r"(^|_)(api_key|key|secret|password|passwd|token|credentials?)$", re.I)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def public_settings(settings: Settings | None) -> dict:
    """``settings.model_dump()`` fit to publish: secrets (API keys, passwords) dropped, URL credentials stripped."""
    if settings is None:
        return {}
    try:
        data = settings.model_dump(mode="json")
    except AttributeError:
        return {}
    clean = {}
    for name, value in data.items():
        if _SECRET.search(name):
            continue
        if isinstance(value, str) and "@" in value and "://" in value:
            parts = urlsplit(value)
            if parts.username or parts.password:
                value = urlunsplit(parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")))
        clean[name] = value
    return clean


# ------------------------------------------------------------------------------------------------------ one item


def evaluate_item(assistant: EvaluatedAssistant, item: EvalItem, k: int, judge: Callable | None = None) -> ItemResult:
    """Ask one question (statelessly, with the item's history) and score the answer. Errors become results.
    A row that brings its own answer is scored as given (see ``given_result``); claims are graded by the run."""
    if item.given_answer is not None:
        return given_result(item)
    result = ItemResult(**item.model_dump(include=_ITEM_FIELDS), history=item.history)
    started = time.perf_counter()
    try:
        answer = assistant.ask(item.question, history=list(item.history), k=k)
    except Exception as exc:  # noqa: BLE001 - one failing question must not end the run
        result.latency = round(time.perf_counter() - started, 4)
        result.error = f"{type(exc).__name__}: {exc}"
        result.metrics = _error_metrics(item)
        result.failures = [f"error: {result.error}"]
        return result
    result.latency = round(time.perf_counter() - started, 4)
    result.answer, result.grounded, result.query = answer.answer, answer.grounded, answer.query
    result.confidence, result.weak_evidence = answer.confidence, answer.weak_evidence
    result.timings = dict(answer.timings)

    relevance_applies = item.answerable and bool(item.reference_contexts or item.reference_sources)
    relevance = []
    for rank, hit in enumerate(answer.passages, start=1):
        relevant = (m.passage_matches(hit.text, hit.document, hit.alternatives, item.reference_contexts,
                                      item.reference_sources) if relevance_applies else None)
        relevance.append(bool(relevant))
        result.retrieved.append(RetrievedPassage(
            rank=rank, document=hit.document, alternatives=list(hit.alternatives), chunk_id=hit.chunk_id,
            page=hit.page, score=round(hit.score, 4), dense_score=hit.dense_score, lexical_score=hit.lexical_score,
            sentence_score=hit.sentence_score, text=hit.text, relevant=relevant))

    for citation in answer.citations:
        document = _document(assistant, citation.document)
        result.citations.append(CitationCheck(**citation.model_dump(), verbatim=is_verified(citation, document)))

    metrics = ItemMetrics(abstained=not answer.grounded, citations=len(result.citations),
                          citations_verbatim=sum(c.verbatim for c in result.citations))
    if relevance_applies:
        metrics.matched_by = "contexts" if item.reference_contexts else "sources"
        metrics.rank = m.first_relevant_rank(relevance[:k])
        metrics.hit = metrics.rank is not None
        metrics.reciprocal_rank = round(1.0 / metrics.rank, 4) if metrics.rank else 0.0
    _correctness(metrics, item, answer.answer)
    if item.answerable:
        metrics.false_abstention = not answer.grounded
    else:
        metrics.correct_abstention = not answer.grounded
    if judge is not None and answer.grounded:
        try:
            score = judge(answer.answer, answer.passages)
            metrics.faithfulness = None if score is None else round(float(score), 4)
        except Exception as exc:  # noqa: BLE001 - the judge is advisory
            result.notes.append(f"faithfulness judge failed: {type(exc).__name__}: {exc}")
    result.metrics = metrics
    result.failures = _failures(result, k)
    if metrics.hit is False:
        result.notes.extend(_diagnose_miss(assistant, item))
    elif metrics.rank and metrics.rank > 1:
        result.notes.append(f"first relevant passage at rank {metrics.rank}")
    return result


_ITEM_FIELDS = {"id", "question", "category", "split", "lang", "answerable", "reference", "reference_contexts",
                "reference_sources", "must_include", "given_answer", "given_citations", "contexts"}


def _correctness(metrics: ItemMetrics, item: EvalItem, answer: str) -> None:
    if item.must_include and item.answerable:
        metrics.must_include = m.includes_any(answer, item.must_include)
    if item.reference and item.answerable:
        metrics.token_f1 = round(m.token_f1(answer, item.reference), 4)
    if metrics.must_include is not None:
        metrics.correct = metrics.must_include
    elif metrics.token_f1 is not None:
        metrics.correct = metrics.token_f1 >= 0.5


def given_result(item: EvalItem) -> ItemResult:
    """A row that brings its answer: correctness against its reference, retrieval judged on the contexts it brings
    (when reference contexts are given). Claims and cited quotes are graded by the run, in batches."""
    result = ItemResult(**item.model_dump(include=_ITEM_FIELDS), history=item.history, answered_by="given",
                        answer=item.given_answer or "", grounded=bool((item.given_answer or "").strip()))
    metrics = ItemMetrics(abstained=not result.grounded)
    if item.answerable and item.reference_contexts and item.contexts:
        relevance = [any(m.contains(context, ref) for ref in item.reference_contexts) for context in item.contexts]
        metrics.matched_by = "contexts"
        metrics.rank = m.first_relevant_rank(relevance)
        metrics.hit = metrics.rank is not None
        metrics.reciprocal_rank = round(1.0 / metrics.rank, 4) if metrics.rank else 0.0
    _correctness(metrics, item, result.answer)
    result.metrics = metrics
    result.failures = _failures(result, len(item.contexts))
    return result


def attach_grade(result: ItemResult, graded) -> None:
    """Put a claim grade (claims, cited quotes, faithfulness) into a result, its metrics and its failures."""
    result.claims, result.cited, result.faithfulness = graded.claims, graded.cited, graded.faithfulness
    metrics = result.metrics
    metrics.claims = len(graded.claims)
    metrics.supported = sum(c.verdict == "supported" for c in graded.claims)
    metrics.conflicting = sum(c.verdict == "conflicting" for c in graded.claims)
    metrics.not_found = sum(c.verdict == "not_found" for c in graded.claims)
    metrics.claim_support = graded.faithfulness
    if result.answered_by == "given":
        metrics.citations = len(graded.cited)
        metrics.citations_verbatim = sum(c.valid for c in graded.cited)
    for n, claim in enumerate(graded.claims, start=1):
        if claim.verdict == "conflicting":
            result.failures.append(f"claim {n} conflicts with {claim.evidence.document if claim.evidence else 'the corpus'}: "
                                   + "; ".join(claim.conflicts))
    for check in graded.cited:
        where = f"[{check.marker}] " if check.marker is not None else ""
        if check.status == "absent":
            result.failures.append(f"citation {where}{check.quote[:60]!r} is not in the corpus")
        elif check.status == "near_verbatim":
            result.failures.append(f"citation {where}is not verbatim: {'; '.join(check.differences)}")
        elif check.status == "wrong_document" and check.document:
            result.failures.append(f"citation {where}is in {check.found_document}, not in {check.document}")
        if check.status != "absent" and check.supports_claim is False:
            result.failures.append(f"citation {where}does not support the claim it is cited for")


def _document(assistant: EvaluatedAssistant, doc_id: str) -> Document | None:
    try:
        return assistant.document(doc_id)
    except Exception:  # noqa: BLE001 - an unknown document means the citation cannot be verified
        return None


def _error_metrics(item: EvalItem) -> ItemMetrics:
    """An item whose ask raised fails every check that applies to it."""
    metrics = ItemMetrics(abstained=True)
    if item.answerable and (item.reference_contexts or item.reference_sources):
        metrics.hit, metrics.reciprocal_rank = False, 0.0
        metrics.matched_by = "contexts" if item.reference_contexts else "sources"
    if item.answerable and item.must_include:
        metrics.must_include = False
    if item.answerable and item.reference:
        metrics.token_f1 = 0.0
    if item.answerable:
        metrics.false_abstention = True
    else:
        metrics.correct_abstention = False
    return metrics


def _failures(result: ItemResult, k: int) -> list[str]:
    metrics, failures = result.metrics, []
    if metrics.hit is False:
        what = "reference context" if metrics.matched_by == "contexts" else "reference source"
        failures.append(f"retrieval: no {what} in the top {k} passages")
    if result.answerable and not result.grounded:
        failures.append("abstained on an answerable question")
    elif metrics.must_include is False:
        failures.append("answer contains none of: " + " | ".join(result.must_include))
    if not result.answerable and result.grounded:
        failures.append("answered an unanswerable question")
    for check in result.citations:
        if not check.verbatim:
            failures.append(f"citation [{check.marker}] is not verbatim at "
                            f"{check.document}[{check.start}:{check.end}]")
    return failures


def _diagnose_miss(assistant: EvaluatedAssistant, item: EvalItem) -> list[str]:
    """Why a reference context was not retrieved: not in the indexed text at all, split across passages, or ranked
    too low. Best effort: diagnostics never fail an evaluation."""
    if not item.reference_contexts or not item.reference_sources:
        return []
    notes = []
    passages: dict[str, list[Passage]] = {}

    def passages_of(source: str) -> list[Passage]:  # read once for all the item's contexts
        if source not in passages:
            passages[source] = assistant.store.passages_of(source)
        return passages[source]

    try:
        for context in item.reference_contexts:
            where = []
            for source in item.reference_sources:
                document = _document(assistant, source)
                if document is None:
                    where.append(f"{source}: not in the index")
                elif not m.contains(document.text, context):
                    where.append(f"{source}: not in its cleaned text")
                elif not any(m.contains(p.text, context) for p in passages_of(source)):
                    where.append(f"{source}: split across two passages")
                else:
                    where.append(f"{source}: in a passage ranked below the top k")
            notes.append(f"context {context[:60]!r} — " + "; ".join(where))
    except Exception as exc:  # noqa: BLE001
        notes.append(f"(no diagnosis: {type(exc).__name__}: {exc})")
    return notes


# ------------------------------------------------------------------------------------------------------ the run


def _judge_for(assistant: EvaluatedAssistant, judge: bool | None) -> Callable | None:
    if judge is None:
        judge = assistant.settings.llm_provider != "none"
    if not judge:
        return None
    try:
        from assistant.llm import judge_faithfulness

        model = assistant.chat_model
    except Exception as exc:  # noqa: BLE001 - the judged score is optional (e.g. the LLM is misconfigured)
        log.warning("faithfulness not judged: %s", exc)
        return None
    if model is None:
        return None
    return lambda answer, passages: judge_faithfulness(model, answer, passages)


def _describe_assistant(assistant: EvaluatedAssistant) -> dict:
    return {"settings": public_settings(assistant.settings), "model_id": assistant.embedder.model_id,
            "corpus_revision": assistant.store.revision()}


def claim_grader(assistant: EvaluatedAssistant) -> ClaimGrader | None:
    """The claim grader over the assistant's sentence index; None when the assistant has none."""
    if assistant.sentences is None:
        return None
    from assistant.evaluate.grade import ClaimGrader

    return ClaimGrader.for_assistant(assistant)


def _to_grade(result: ItemResult) -> tuple[str, list[GivenCitation]] | None:
    if result.error is not None or not result.grounded:
        return None
    if result.answered_by == "given":
        return result.answer, list(result.given_citations)
    return result.answer, [GivenCitation(quote=c.quote, document=c.document, marker=c.marker) for c in result.citations]


def _blocks(items: Sequence[EvalItem], size: int):
    """Consecutive items in blocks: up to ``size`` rows that bring answers (graded together, so their claims are
    embedded in one batch); a row the assistant answers is a block of its own (its answer is slow to come)."""
    block: list[EvalItem] = []
    for item in items:
        if item.given_answer is None:
            if block:
                yield block
                block = []
            yield [item]
            continue
        block.append(item)
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block


def run_evaluation(assistant: EvaluatedAssistant, items: Sequence[EvalItem], k: int | None = None,
                   on_result: Callable[[ItemResult], None] | None = None, *, judge: bool | None = None,
                   stop: threading.Event | None = None, malformed: Sequence[MalformedRow] = (),
                   source: str | None = None, warm_up: bool = True,
                   on_start: Callable[[], None] | None = None, grader: ClaimGrader | Literal["auto"] | None = "auto",
                   done: Sequence[ItemResult] = (),
                   batch: int = 64) -> EvaluationRun:
    """Evaluate ``items`` in order and return the run with its summary.

    Rows that bring an answer are graded as given; the others are asked. Every answer is graded claim by claim by
    ``grader`` (default: over the assistant's sentence index; None: no claims). ``done``: results of an earlier,
    interrupted run of the same set — their items are skipped and they count in the summary (resume).
    ``on_result`` is called after each item (e.g. to append it to results.jsonl or advance a progress bar).
    Setting ``stop`` ends the run after the current block (``cancelled``); a KeyboardInterrupt — raised while
    asking, grading or in ``on_result`` — ends it too (``interrupted``). Either way the results so far are kept
    and summarised. ``judge``: ask the configured LLM to score faithfulness (default: when an LLM is configured).
    """
    k = k if k else assistant.settings.top_k
    started_at, started = now_iso(), time.perf_counter()
    finished = {r.id for r in done}
    todo = [item for item in items if item.id not in finished]
    run = EvaluationRun(total=len(items), results=list(done))
    info = _describe_assistant(assistant)
    try:
        if grader == "auto":
            grader = claim_grader(assistant)
        if warm_up and any(item.given_answer is None for item in todo):
            assistant.warm_up()
        judge_fn = _judge_for(assistant, judge) if any(item.given_answer is None for item in todo) else None
        if on_start is not None:
            on_start()
        for block in _blocks(todo, batch):
            if stop is not None and stop.is_set():
                run.cancelled = True
                break
            results = [evaluate_item(assistant, item, k, judge_fn) for item in block]
            graded_rows = [(r, g) for r in results if (g := _to_grade(r)) is not None]
            if graded_rows and grader is not None:
                for (result, _), graded in zip(graded_rows, grader.grade([g for _, g in graded_rows])):
                    attach_grade(result, graded)
            elif graded_rows and any(r.answered_by == "given" for r, _ in graded_rows):
                for result, _ in graded_rows:
                    if result.answered_by == "given":
                        result.notes.append("claims not graded: the index has no sentence index")
            for result in results:
                run.results.append(result)
                if on_result is not None:
                    on_result(result)
    except KeyboardInterrupt:
        run.interrupted = True
    run.summary = summarize(
        run.results, k=k, timestamp=started_at, source=source, malformed=list(malformed),
        interrupted=run.interrupted or run.cancelled, planned=len(items),
        duration=round(time.perf_counter() - started, 2), **info,
    )
    return run


# ------------------------------------------------------------------------------------------------------ aggregates


def aggregate(results: Iterable[ItemResult]) -> Aggregate:
    results = list(results)
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    citations = sum(r.metrics.citations for r in results)
    verbatim = sum(r.metrics.citations_verbatim for r in results)
    latencies = [r.latency for r in results if r.latency is not None]

    def rate(group, field):
        value = m.mean(getattr(r.metrics, field) for r in group)
        return None if value is None else round(value, 4)

    claims = sum(r.metrics.claims for r in results)

    def share(field):
        return round(sum(getattr(r.metrics, field) for r in results) / claims, 4) if claims else None

    p50, p95 = m.percentile(latencies, 50), m.percentile(latencies, 95)
    weak = weak_evidence_summary(results)
    answered_anyway = weak["weak_unanswerable"] + weak["other_unanswerable"]
    return Aggregate(
        items=len(results), answerable=len(answerable), unanswerable=len(unanswerable),
        errors=sum(r.error is not None for r in results), failed=sum(r.failed for r in results),
        hit_at_k=rate(answerable, "hit"), mrr=rate(answerable, "reciprocal_rank"),
        must_include=rate(answerable, "must_include"), token_f1=rate(answerable, "token_f1"),
        citations=citations, citation_validity=round(verbatim / citations, 4) if citations else None,
        correct_abstention=rate(unanswerable, "correct_abstention"),
        false_abstention=rate(answerable, "false_abstention"), faithfulness=rate(results, "faithfulness"),
        claims=claims, claim_support=rate(results, "claim_support"),
        supported_claims=share("supported"), conflicting_claims=share("conflicting"), not_found_claims=share("not_found"),
        correctness=rate(answerable, "correct"),
        weak_evidence_answers=weak["weak_answers"],
        weak_evidence_correct=round(weak["weak_right"] / weak["weak_answers"], 4) if weak["weak_answers"] else None,
        weak_evidence_on_unanswerable=round(weak["weak_unanswerable"] / answered_anyway, 4) if answered_anyway else None,
        latency_p50=None if p50 is None else round(p50, 4), latency_p95=None if p95 is None else round(p95, 4),
    )


def _grouped(results: Sequence[ItemResult], key: Callable[[ItemResult], str | None]) -> dict[str, Aggregate]:
    groups: dict[str, list[ItemResult]] = {}
    for result in results:
        groups.setdefault(key(result) or "(none)", []).append(result)
    return {name: aggregate(group) for name, group in sorted(groups.items())}


def summarize(results: Sequence[ItemResult], *, k: int | None = None, timestamp: str | None = None,
              source: str | None = None, model_id: str | None = None, corpus_revision: str | None = None,
              settings: dict | None = None, malformed: Sequence[MalformedRow] = (), interrupted: bool = False,
              planned: int | None = None, duration: float | None = None) -> Summary:
    """Aggregates overall, per category and per split, the counts, and the targets checked."""
    results = list(results)
    summary = Summary(
        timestamp=timestamp or now_iso(), source=source, k=k, model_id=model_id, corpus_revision=corpus_revision,
        settings=settings or {}, interrupted=interrupted, duration=duration, malformed=list(malformed),
        overall=aggregate(results),
        by_category=_grouped(results, lambda r: r.category),
        by_split=_grouped(results, lambda r: r.split),
    )
    summary.counts = {
        "items": planned if planned is not None else len(results),
        "evaluated": len(results),
        "answerable": summary.overall.answerable,
        "unanswerable": summary.overall.unanswerable,
        "passed": len(results) - summary.overall.failed,
        "failed": summary.overall.failed,
        "errors": summary.overall.errors,
        "malformed": len(malformed),
    }
    summary.targets = check_targets(summary)
    return summary


# ------------------------------------------------------------------------------------------------------ comparison


def _delta(before: float | None, after: float | None) -> MetricDelta:
    delta = None if before is None or after is None else round(after - before, 4)
    return MetricDelta(before=before, after=after, delta=delta)


def _scopes(summary: Summary) -> dict[str, Aggregate]:
    scopes = {"overall": summary.overall}
    scopes.update({f"category:{name}": agg for name, agg in summary.by_category.items()})
    scopes.update({f"split:{name}": agg for name, agg in summary.by_split.items()})
    return scopes


def _item_changes(before: ItemResult, after: ItemResult) -> tuple[list[str], list[str]]:
    """(ways the item got worse, ways it got better) from ``before`` to ``after``."""
    worse: list[str] = []
    better: list[str] = []
    b, a = before.metrics, after.metrics

    def flip(old, new, good: bool, lost: str, gained: str):
        if old is None or new is None or old == new:
            return
        (better if new == good else worse).append(gained if new == good else lost)

    if after.error and not before.error:
        worse.append(f"error: {after.error}")
    elif before.error and not after.error:
        better.append("no longer errors")
    flip(b.hit, a.hit, True, f"retrieval miss (was rank {b.rank})", f"retrieval hit (rank {a.rank})")
    if b.hit and a.hit and b.rank and a.rank and a.rank != b.rank:
        (worse if a.rank > b.rank else better).append(f"relevant passage rank {b.rank} → {a.rank}")
    flip(b.must_include, a.must_include, True, "answer lost its must_include string", "answer now has a must_include string")
    flip(b.false_abstention, a.false_abstention, False, "now abstains on an answerable question", "no longer abstains")
    flip(b.correct_abstention, a.correct_abstention, True, "now answers an unanswerable question", "now abstains correctly")
    if a.citations_verbatim < a.citations and (b.citations_verbatim == b.citations):
        worse.append(f"{a.citations - a.citations_verbatim} citation(s) no longer verbatim")
    if b.claim_support is not None and a.claim_support is not None and abs(a.claim_support - b.claim_support) >= 0.2:
        (worse if a.claim_support < b.claim_support else better).append(
            f"claims supported {b.claim_support:.0%} → {a.claim_support:.0%}")
    if a.conflicting != b.conflicting and (a.claims or b.claims):
        (worse if a.conflicting > b.conflicting else better).append(
            f"conflicting claims {b.conflicting} → {a.conflicting}")
    if b.token_f1 is not None and a.token_f1 is not None and abs(a.token_f1 - b.token_f1) >= 0.2:
        (worse if a.token_f1 < b.token_f1 else better).append(f"token F1 {b.token_f1:.2f} → {a.token_f1:.2f}")
    return worse, better


def compare(summary: Summary, previous: Summary, results: Sequence[ItemResult] = (),
            previous_results: Sequence[ItemResult] = (), previous_name: str = "") -> Comparison:
    """How this run differs from a previous one: the change of every aggregate metric (overall, per category, per
    split) and the items (matched by id) that got worse or better."""
    comparison = Comparison(previous=previous_name or previous.source or "", previous_timestamp=previous.timestamp)
    now, then = _scopes(summary), _scopes(previous)
    for scope in [s for s in now if s in then] + [s for s in then if s not in now]:
        after, before = now.get(scope), then.get(scope)
        comparison.deltas[scope] = {
            metric: _delta(getattr(before, metric) if before else None, getattr(after, metric) if after else None)
            for metric in METRICS
        }
    old = {r.id: r for r in previous_results}
    for result in results:
        if result.id not in old:
            continue
        worse, better = _item_changes(old[result.id], result)
        if worse:
            comparison.regressions.append(Regression(id=result.id, question=result.question,
                                                     category=result.category, reasons=worse))
        if better:
            comparison.improvements.append(Regression(id=result.id, question=result.question,
                                                      category=result.category, reasons=better))
    current = {r.id for r in results}
    if not summary.interrupted:
        comparison.missing = [i for i in old if i not in current]
    return comparison
