"""Is the answer's confidence calibrated? A reliability diagram and a risk–coverage curve for the eval report.

Each result with a ``confidence`` (the answer model's probability that the quoted evidence answers the question)
counts as *correct* when the question is answerable and the answer holds the expected fact (``must_include``), or —
for items without ``must_include`` — when it was answered with verbatim citations. Unanswerable questions are never
correct to answer, so a well-calibrated confidence is low on them.

* reliability: items binned by confidence; each bin's mean confidence against its observed rate of correct answers
  (on the diagonal when calibrated), with the expected calibration error (ECE);
* risk–coverage: answering only the items above a confidence cut-off, the share answered (coverage) against the
  share of those answered that are wrong (risk), for every cut-off;
* weak evidence: how often the answers marked as resting on weak evidence were right, against the others, and how
  many of the unanswerable questions that were answered anyway carry the mark.
"""

from __future__ import annotations

from collections.abc import Sequence


def _correct(result) -> bool:
    metrics = result.metrics
    if not result.answerable:
        return False
    if metrics.must_include is not None:
        return bool(metrics.must_include) and result.grounded
    return result.grounded and metrics.citations > 0 and metrics.citations_verbatim == metrics.citations


def points(results: Sequence) -> list[tuple[float, bool]]:
    """(confidence, correct) of every result that carries a confidence."""
    return [(float(r.confidence), _correct(r)) for r in results if r.confidence is not None]


def reliability(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> tuple[list[dict], float]:
    """Per bin: range, count, mean confidence, observed correct rate; and the expected calibration error."""
    rows = []
    ece = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if low <= c < high or (b == bins - 1 and c == 1.0)]
        if not inside:
            continue
        confidence = sum(c for c, _ in inside) / len(inside)
        observed = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / len(pairs) * abs(confidence - observed)
        rows.append({"low": low, "high": high, "n": len(inside), "confidence": confidence, "observed": observed})
    return rows, ece


def risk_coverage(pairs: Sequence[tuple[float, bool]]) -> list[tuple[float, float, float]]:
    """(cut-off, coverage, risk) answering the items with confidence ≥ cut-off, highest cut-off first."""
    ranked = sorted(pairs, key=lambda p: -p[0])
    curve = []
    wrong = 0
    for i, (confidence, ok) in enumerate(ranked, start=1):
        wrong += not ok
        if i == len(ranked) or ranked[i][0] != confidence:
            curve.append((confidence, i / len(ranked), wrong / i))
    return curve


def _svg_frame(width: int, height: int, pad: int, x_label: str, y_label: str) -> list[str]:
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    parts = [f'<svg width="{width}" height="{height}" role="img">',
             f'<rect x="{pad}" y="{pad}" width="{inner_w}" height="{inner_h}" fill="#fff" stroke="#bbb"/>']
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = pad + t * inner_w, pad + (1 - t) * inner_h
        parts.append(f'<text x="{x:.0f}" y="{height - pad + 14}" font-size="10" text-anchor="middle">{t:.2f}</text>')
        parts.append(f'<text x="{pad - 4}" y="{y + 3:.0f}" font-size="10" text-anchor="end">{t:.2f}</text>')
    parts.append(f'<text x="{width / 2:.0f}" y="{height - 4}" font-size="11" text-anchor="middle">{x_label}</text>')
    parts.append(f'<text x="10" y="{height / 2:.0f}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 10 {height / 2:.0f})">{y_label}</text>')
    return parts


def reliability_svg(rows: list[dict], width: int = 320, height: int = 280, pad: int = 40) -> str:
    parts = _svg_frame(width, height, pad, "predicted confidence", "observed correct")
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    parts.append(f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{pad}" stroke="#999" '
                 'stroke-dasharray="4 3"/>')
    for row in rows:
        x = pad + row["low"] * inner_w
        w = (row["high"] - row["low"]) * inner_w
        h = row["observed"] * inner_h
        parts.append(f'<rect x="{x + 1:.1f}" y="{height - pad - h:.1f}" width="{w - 2:.1f}" height="{h:.1f}" '
                     f'fill="#2f6db5" fill-opacity="0.6"><title>{row["n"]} items, confidence '
                     f'{row["confidence"]:.2f}, observed {row["observed"]:.2f}</title></rect>')
        parts.append(f'<circle cx="{pad + row["confidence"] * inner_w:.1f}" cy="{height - pad - h:.1f}" r="3" '
                     'fill="#b3261e"/>')
    parts.append("</svg>")
    return "".join(parts)


def risk_coverage_svg(curve: list[tuple[float, float, float]], width: int = 320, height: int = 280,
                      pad: int = 40) -> str:
    parts = _svg_frame(width, height, pad, "coverage (share answered)", "risk (share wrong)")
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    path = " ".join(f"{'M' if i == 0 else 'L'}{pad + cov * inner_w:.1f},{height - pad - risk * inner_h:.1f}"
                    for i, (_, cov, risk) in enumerate(curve))
    if path:
        parts.append(f'<path d="{path}" fill="none" stroke="#d0603a" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def weak_evidence_summary(results: Sequence) -> dict[str, int]:
    """Answers (grounded results) with and without the weak-evidence mark: how many, how many right, and how many of
    the unanswerable questions answered anyway are among them."""
    answered = [r for r in results if r.grounded]
    out = {}
    for name, group in (("weak", [r for r in answered if r.weak_evidence]),
                        ("other", [r for r in answered if not r.weak_evidence])):
        out[f"{name}_answers"] = len(group)
        out[f"{name}_right"] = sum(_correct(r) for r in group)
        out[f"{name}_unanswerable"] = sum(not r.answerable for r in group)
    return out


def _weak_evidence_html(results: Sequence) -> str:
    s = weak_evidence_summary(results)
    if not s["weak_answers"] and not s["other_answers"]:
        return ""

    def share(right: int, n: int) -> str:
        return f"{right}/{n} right ({right / n:.2f})" if n else "none"

    return (f'<p class="muted">Marked weak evidence: {s["weak_answers"]} answers, '
            f'{share(s["weak_right"], s["weak_answers"])}; not marked: {s["other_answers"]} answers, '
            f'{share(s["other_right"], s["other_answers"])}. Unanswerable questions answered anyway: '
            f'{s["weak_unanswerable"]} marked, {s["other_unanswerable"]} not.</p>')


def calibration_html(results: Sequence) -> str:
    """The report section: both charts, the ECE and the reliability table; empty when no result has a confidence."""
    pairs = points(results)
    if not pairs:
        return ""
    rows, ece = reliability(pairs)
    curve = risk_coverage(pairs)
    table = "".join(f'<tr><td>{r["low"]:.1f}–{r["high"]:.1f}</td><td class="num">{r["n"]}</td>'
                    f'<td class="num">{r["confidence"]:.2f}</td><td class="num">{r["observed"]:.2f}</td></tr>'
                    for r in rows)
    return (
        "<h2>Confidence calibration</h2>"
        f'<p class="muted">{len(pairs)} answers with a confidence; correct = answerable and the answer holds the '
        f"expected fact. Expected calibration error: {ece:.3f}.</p>"
        f"{_weak_evidence_html(results)}"
        f'<div style="display:flex;gap:24px;flex-wrap:wrap">{reliability_svg(rows)}{risk_coverage_svg(curve)}</div>'
        "<table><tr><th>confidence</th><th>n</th><th>mean confidence</th><th>observed correct</th></tr>"
        f"{table}</table>"
    )
