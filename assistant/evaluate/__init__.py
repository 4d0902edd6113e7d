"""Evaluate the assistant on a question set, or grade answers written elsewhere: claims supported / conflicting /
not found with their evidence (grade.py), cited quotes looked up, retrieval (hit@k, MRR), answers (must_include,
token F1), citations (verbatim at their offsets), abstention, latency — overall, per category and per split — and
check the targets.

    items, malformed = load_items("eval/questions.jsonl")
    run = run_evaluation(Assistant(settings), items, k=5, on_result=print)
    write_report(run, "eval/runs/now")  # results.jsonl, summary.json, report.html

The core is pure Python (no terminal I/O) so the CLI (``assistant eval``) and an API worker thread share it.
"""

from assistant.evaluate.core import (
    METRICS,
    aggregate,
    attach_grade,
    claim_grader,
    compare,
    evaluate_item,
    given_result,
    public_settings,
    run_evaluation,
    summarize,
)
from assistant.evaluate.loader import EvalInputError, load_items, parse_row
from assistant.evaluate.models import (
    Aggregate,
    CitationCheck,
    ClaimResult,
    Comparison,
    EvalItem,
    EvaluationRun,
    Evidence,
    GivenCitation,
    ItemMetrics,
    ItemResult,
    MalformedRow,
    MetricDelta,
    QuoteCheck,
    Regression,
    RetrievedPassage,
    Summary,
    TargetResult,
)
from assistant.evaluate.output import ResultWriter, load_previous, read_results, write_report, write_summary
from assistant.evaluate.targets import TARGET_K, TARGETS, Target, check_targets, describe, failed_targets

__all__ = [
    "METRICS", "TARGETS", "TARGET_K", "Target", "aggregate", "attach_grade", "claim_grader", "compare",
    "evaluate_item", "given_result", "public_settings", "ClaimResult", "Evidence", "GivenCitation", "QuoteCheck",
    "run_evaluation", "summarize", "EvalInputError", "load_items", "parse_row", "Aggregate", "CitationCheck",
    "Comparison", "EvalItem", "EvaluationRun", "ItemMetrics", "ItemResult", "MalformedRow", "MetricDelta",
    "Regression", "RetrievedPassage", "Summary", "TargetResult", "ResultWriter", "load_previous", "read_results",
    "write_report", "write_summary", "check_targets", "describe", "failed_targets",
]
