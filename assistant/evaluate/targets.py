"""The quality targets, in one place: the CI gate (tests/test_quality.py) and ``assistant eval --check`` use these."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from assistant.evaluate.models import Aggregate, Summary, TargetResult


@dataclass(frozen=True)
class Target:
    metric: str  # a field of Aggregate
    op: str  # ">=" or "<="
    threshold: float
    description: str
    scope: str = "overall"  # "overall", "category:<name>" or "split:<name>"


TARGET_K = 5  # hit@k is targeted at k = 5

TARGETS: dict[str, Target] = {
    "hit_at_5": Target("hit_at_k", ">=", 0.95,
                       "hit@5 over answerable questions (en→zh, zh→en, same-language, follow-ups, tables)"),
    "must_include": Target("must_include", ">=", 0.90, "answerable answers that contain a must_include string"),
    "correct_abstention": Target("correct_abstention", ">=", 0.90, "abstentions on unanswerable questions"),
    "false_abstention": Target("false_abstention", "<=", 0.05, "abstentions on answerable questions"),
    "citation_validity": Target("citation_validity", ">=", 1.0, "citations verbatim at their offsets"),
}

_OPS = {">=": operator.ge, "<=": operator.le}


def check_targets(summary: Summary, targets: dict[str, Target] | None = None) -> list[TargetResult]:
    """Each target against the summary. A metric that no item measured (value None) does not fail its target."""
    results = []
    for name, target in (targets or TARGETS).items():
        aggregate: Aggregate | None
        if target.scope == "overall":
            aggregate = summary.overall
        else:
            kind, _, key = target.scope.partition(":")
            aggregate = (summary.by_category if kind == "category" else summary.by_split).get(key)
        value = getattr(aggregate, target.metric) if aggregate is not None else None
        passed = value is None or _OPS[target.op](round(value, 9), target.threshold)
        description = target.description
        if target.metric == "hit_at_k" and summary.k is not None and summary.k != TARGET_K:
            description += f" (measured at k={summary.k}, the target is for k={TARGET_K})"
        results.append(TargetResult(name=name, metric=target.metric, scope=target.scope, op=target.op,
                                    threshold=target.threshold, value=value, passed=passed, description=description))
    return results


def failed_targets(summary: Summary) -> list[TargetResult]:
    return [t for t in summary.targets if not t.passed]


def describe(result: TargetResult) -> str:
    value = "n/a" if result.value is None else f"{result.value:.3f}"
    mark = "n/a " if result.value is None else "ok  " if result.passed else "FAIL"
    scope = "" if result.scope == "overall" else f" [{result.scope}]"
    return f"{mark} {result.name}{scope}: {value} (target {result.op} {result.threshold:g}) — {result.description}"
