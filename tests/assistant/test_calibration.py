"""Reliability bins, expected calibration error and the risk–coverage curve of the eval report."""

from __future__ import annotations

import pytest

from assistant.evaluate.calibration import (
    calibration_html,
    points,
    reliability,
    risk_coverage,
    weak_evidence_summary,
)
from assistant.evaluate.models import ItemMetrics, ItemResult


def result(confidence, answerable=True, found=True, grounded=True, weak=False) -> ItemResult:
    metrics = ItemMetrics(must_include=found if answerable else None, abstained=not grounded)
    return ItemResult(id=str(confidence), question="q", answerable=answerable, grounded=grounded,
                      confidence=confidence, metrics=metrics, weak_evidence=weak)


def test_points_count_only_answerable_items_with_the_expected_fact_as_correct():
    got = points([result(0.9), result(0.8, found=False), result(0.7, answerable=False), result(None)])
    assert got == [(0.9, True), (0.8, False), (0.7, False)]


def test_a_calibrated_model_has_zero_ece_and_a_miscalibrated_one_does_not():
    calibrated = [(0.25, i < 1) for i in range(4)] + [(0.75, i < 3) for i in range(4)]
    rows, ece = reliability(calibrated, bins=4)
    assert [r["n"] for r in rows] == [4, 4] and ece == pytest.approx(0.0)
    _, bad = reliability([(0.95, False)] * 5 + [(0.05, True)] * 5, bins=10)
    assert bad == pytest.approx(0.95)


def test_risk_coverage_goes_from_the_most_confident_answer_to_all():
    curve = risk_coverage([(0.9, True), (0.8, True), (0.5, False), (0.2, False)])
    assert [(c, r) for _, c, r in curve] == [(0.25, 0.0), (0.5, 0.0), (0.75, pytest.approx(1 / 3)), (1.0, 0.5)]


def test_report_section_has_both_charts_or_is_empty():
    html = calibration_html([result(0.9), result(0.3, answerable=False, grounded=False)])
    assert html.count("<svg") == 2 and "Expected calibration error" in html
    assert calibration_html([result(None)]) == ""


def test_weak_evidence_answers_are_counted_apart_from_the_others():
    results = [result(0.9), result(0.8, found=False), result(0.4, weak=True), result(0.3, found=False, weak=True),
               result(0.35, answerable=False, weak=True), result(0.6, answerable=False),
               result(0.1, answerable=False, grounded=False)]  # a refusal is no answer at all
    assert weak_evidence_summary(results) == {"weak_answers": 3, "weak_right": 1, "weak_unanswerable": 1,
                                              "other_answers": 3, "other_right": 1, "other_unanswerable": 1}
    html = calibration_html(results)
    assert "Marked weak evidence: 3 answers, 1/3 right (0.33)" in html and "1 marked, 1 not" in html
