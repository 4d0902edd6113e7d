"""Typed records of an evaluation: the questions in, one result per question, the aggregates and a comparison."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from assistant.schema import ChatTurn, Citation

SCHEMA_VERSION = 2

Verdict = Literal["supported", "conflicting", "not_found"]
QuoteStatus = Literal["verbatim", "wrong_document", "near_verbatim", "absent"]


class GivenCitation(BaseModel):
    """A citation that an answer written elsewhere brings: a quote, optionally the document it names."""

    quote: str = Field(min_length=1)
    document: str | None = None
    marker: int | None = Field(default=None, description="The [n] marker of the answer that refers to it")


class EvalItem(BaseModel):
    """One question of an eval set. Only ``question`` is required (``id`` defaults to the row's line)."""

    id: str
    question: str
    category: str | None = None
    lang: str | None = None
    split: str | None = None
    answerable: bool = True
    reference: str | None = None
    reference_contexts: list[str] = Field(default_factory=list)
    reference_sources: list[str] = Field(default_factory=list)
    must_include: list[str] = Field(default_factory=list)
    history: list[ChatTurn] = Field(default_factory=list)
    given_answer: str | None = Field(default=None, description="An answer brought by the row (answer/response); "
                                                               "None: the assistant answers")
    given_citations: list[GivenCitation] = Field(default_factory=list)
    contexts: list[str] = Field(default_factory=list, description="Passages the answering system retrieved")
    line: int | None = Field(default=None, description="Line of the input file the item starts on")


class MalformedRow(BaseModel):
    line: int
    error: str


class RetrievedPassage(BaseModel):
    rank: int
    document: str
    alternatives: list[str] = Field(default_factory=list)
    chunk_id: str
    page: int | None = None
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    sentence_score: float | None = None
    text: str
    relevant: bool | None = Field(default=None, description="Matches a reference context (or source); None: no reference")


class CitationCheck(Citation):
    """A citation of the answer, and whether its quote is verbatim at its offsets in the cited document."""

    verbatim: bool


class Evidence(BaseModel):
    """The corpus sentence that best bears on a claim: where it is and its verbatim text."""

    document: str
    page: int | None = None
    start: int
    end: int
    quote: str


class ClaimResult(BaseModel):
    """One claim of an answer, its verdict, its support score and the evidence for the verdict."""

    text: str
    verdict: Verdict
    score: float
    evidence: Evidence | None = None
    start: int = Field(0, description="Offsets of the claim in the answer")
    end: int = 0
    markers: list[int] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list, description="What differs from the evidence, when conflicting")


class QuoteCheck(BaseModel):
    """A quote an answer cites, looked up in the corpus."""

    quote: str
    document: str | None = Field(None, description="The document the answer names")
    marker: int | None = None
    status: QuoteStatus
    found_document: str | None = Field(None, description="Where the quote (or its nearest match) is")
    page: int | None = None
    start: int | None = None
    end: int | None = None
    similarity: float | None = Field(None, description="0-1 character similarity of the nearest match")
    differences: list[str] = Field(default_factory=list, description="What differs from the source, when near-verbatim")
    claim: int | None = Field(None, description="Index of the claim it is cited for")
    supports_claim: bool | None = None

    @property
    def valid(self) -> bool:
        """Verbatim where it says it is (or anywhere, when it names no document), and supporting its claim."""
        found = self.status == "verbatim" or (self.status == "wrong_document" and not self.document)
        return found and self.supports_claim is not False


class ItemMetrics(BaseModel):
    """Per-question metrics; None where a metric does not apply (e.g. hit@k of an unanswerable question)."""

    hit: bool | None = None
    rank: int | None = Field(default=None, description="Rank (1-based) of the first relevant passage")
    reciprocal_rank: float | None = None
    matched_by: str | None = Field(default=None, description="'contexts' or 'sources': what relevance was judged by")
    must_include: bool | None = None
    token_f1: float | None = None
    citations: int = 0
    citations_verbatim: int = 0
    abstained: bool = False
    correct_abstention: bool | None = None
    false_abstention: bool | None = None
    faithfulness: float | None = None
    claims: int = 0
    supported: int = 0
    conflicting: int = 0
    not_found: int = 0
    claim_support: float | None = Field(None, description="Supported claims / claims (the row's faithfulness)")
    correct: bool | None = Field(None, description="Answer contains a must_include string, else token F1 >= 0.5 "
                                                   "against the reference; None without either")


class ItemResult(EvalItem):
    """The item as asked, and what came back."""

    answer: str = ""
    grounded: bool = False
    confidence: float | None = Field(default=None, description="The answer model's probability that the evidence answers")
    weak_evidence: bool = Field(default=False, description="Answered, but marked as resting on weak evidence "
                                                           "(confidence below ASSISTANT_WEAK_EVIDENCE_BELOW)")
    query: str = ""
    answered_by: Literal["assistant", "given"] = "assistant"
    citations: list[CitationCheck] = Field(default_factory=list)
    cited: list[QuoteCheck] = Field(default_factory=list, description="Quotes the answer cites, looked up")
    claims: list[ClaimResult] = Field(default_factory=list)
    faithfulness: float | None = Field(None, description="Supported claims / claims; None without claims")
    retrieved: list[RetrievedPassage] = Field(default_factory=list)
    metrics: ItemMetrics = Field(default_factory=ItemMetrics)
    latency: float | None = Field(default=None, description="Seconds for the whole ask, as seen by the caller")
    timings: dict[str, float] = Field(default_factory=dict)
    error: str | None = None
    failures: list[str] = Field(default_factory=list, description="Why this item counts as failed; empty: passed")
    notes: list[str] = Field(default_factory=list, description="Diagnostics that help explain a failure")

    @property
    def failed(self) -> bool:
        return bool(self.failures)


class Aggregate(BaseModel):
    """Aggregated metrics over a group of results; rates are 0-1 and None where no item of the group applies."""

    items: int = 0
    answerable: int = 0
    unanswerable: int = 0
    errors: int = 0
    failed: int = 0
    hit_at_k: float | None = None
    mrr: float | None = None
    must_include: float | None = None
    token_f1: float | None = None
    citations: int = 0
    citation_validity: float | None = None
    correct_abstention: float | None = None
    false_abstention: float | None = None
    faithfulness: float | None = None
    claims: int = 0
    claim_support: float | None = Field(None, description="Mean share of supported claims per answer")
    supported_claims: float | None = Field(None, description="Supported claims / all claims")
    conflicting_claims: float | None = Field(None, description="Conflicting claims / all claims")
    not_found_claims: float | None = None
    correctness: float | None = None
    weak_evidence_answers: int = Field(0, description="Answers marked as resting on weak evidence")
    weak_evidence_correct: float | None = Field(None, description="Share of the marked answers that hold the expected "
                                                                  "fact (unanswerable questions count as wrong)")
    weak_evidence_on_unanswerable: float | None = Field(None, description="Share of the unanswerable questions "
                                                                          "answered anyway that carry the mark")
    latency_p50: float | None = None
    latency_p95: float | None = None


class TargetResult(BaseModel):
    name: str
    metric: str
    scope: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    description: str = ""


class MetricDelta(BaseModel):
    before: float | None
    after: float | None
    delta: float | None


class Regression(BaseModel):
    id: str
    question: str
    category: str | None = None
    reasons: list[str]


class Comparison(BaseModel):
    previous: str = Field(default="", description="The summary compared against")
    previous_timestamp: str | None = None
    deltas: dict[str, dict[str, MetricDelta]] = Field(default_factory=dict, description="scope → metric → change")
    regressions: list[Regression] = Field(default_factory=list)
    improvements: list[Regression] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="Ids in the previous run but not in this one")


class Summary(BaseModel):
    schema_version: int = SCHEMA_VERSION
    timestamp: str = ""
    source: str | None = Field(default=None, description="The eval file")
    k: int | None = None
    model_id: str | None = None
    corpus_revision: str | None = None
    settings: dict = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    interrupted: bool = False
    duration: float | None = None
    overall: Aggregate = Field(default_factory=Aggregate)
    by_category: dict[str, Aggregate] = Field(default_factory=dict)
    by_split: dict[str, Aggregate] = Field(default_factory=dict)
    targets: list[TargetResult] = Field(default_factory=list)
    malformed: list[MalformedRow] = Field(default_factory=list)
    comparison: Comparison | None = None

    @property
    def targets_met(self) -> bool:
        return all(t.passed for t in self.targets)


class EvaluationRun(BaseModel):
    """A run: its results (in input order, possibly partial), its summary, and whether it was cut short."""

    results: list[ItemResult] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    total: int = 0
    interrupted: bool = False
    cancelled: bool = False
