"""Typed records of an evaluation: the questions in, one result per question, the aggregates and a comparison."""

from __future__ import annotations

from pydantic import BaseModel, Field

from assistant.schema import ChatTurn, Citation

SCHEMA_VERSION = 1


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
    text: str
    relevant: bool | None = Field(default=None, description="Matches a reference context (or source); None: no reference")


class CitationCheck(Citation):
    """A citation of the answer, and whether its quote is verbatim at its offsets in the cited document."""

    verbatim: bool


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


class ItemResult(EvalItem):
    """The item as asked, and what came back."""

    answer: str = ""
    grounded: bool = False
    confidence: float | None = Field(default=None, description="The answer model's probability that the evidence answers")
    query: str = ""
    citations: list[CitationCheck] = Field(default_factory=list)
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
