"""report.html: one self-contained page (inline CSS and SVG, no script, no external asset) that opens offline.

Rendered with Jinja2 from templates/report.html.j2 (autoescaped). Each answer shows its claims highlighted by
verdict with the evidence quote beside each; rows are collapsed and paged in groups of ``PAGE`` so a run of a few
thousand answers stays usable.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from html import escape

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from assistant.evaluate.calibration import calibration_html
from assistant.evaluate.core import METRICS
from assistant.evaluate.models import Aggregate, EvaluationRun, ItemResult, Summary

# Rates shown in the charts (all 0-1, higher is better; false abstention is shown as its complement).
CHART_SERIES = [
    ("hit_at_k", "hit@k", "#2f6db5"),
    ("mrr", "MRR", "#7aa6d8"),
    ("must_include", "must include", "#2e9a5b"),
    ("token_f1", "token F1", "#9bcf6f"),
    ("citation_validity", "citations verbatim", "#8a5cb8"),
    ("answered", "answered (1 − false abst.)", "#e0a030"),
    ("correct_abstention", "correct abstention", "#d0603a"),
    ("claim_support", "claims supported", "#1f7a3f"),
]
_RATE_METRICS = {name for name, (_, _) in METRICS.items() if not name.startswith("latency")}

CSS = """
:root { --ok: #1f7a3f; --bad: #b3261e; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", "PingFang SC",
       "Microsoft YaHei", sans-serif; margin: 0; padding: 24px 32px; color: #222; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); }
table { border-collapse: collapse; background: #fff; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.overall td { font-weight: 600; } tr.group td:first-child { padding-left: 18px; }
.meta td:first-child { color: var(--muted); }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; } .muted { color: var(--muted); }
.banner { padding: 8px 12px; border-radius: 4px; margin: 8px 0; background: #fff4e5; border: 1px solid #f0c36d; }
details.item { background: #fff; border: 1px solid var(--line); border-left: 5px solid var(--ok); border-radius: 4px;
               margin: 6px 0; padding: 6px 10px; }
details.item.failed { border-left-color: var(--bad); }
details.item > summary { cursor: pointer; }
.badge { display: inline-block; font-size: 12px; padding: 0 6px; border-radius: 3px; background: #eee; margin-right: 4px; }
.badge.bad { background: #fbe3e1; } .badge.ok { background: #e3f4e8; }
.reasons { margin: 4px 0 4px 18px; color: var(--bad); }
.answer, .snippet, .quote { white-space: pre-wrap; word-break: break-word; }
.answer { background: #f6f8fa; padding: 6px 8px; border-radius: 4px; }
.snippet { font-size: 13px; color: #333; }
.relevant { background: #e3f4e8; } mark { background: #ffe58a; }
.kv { display: grid; grid-template-columns: 150px 1fr; gap: 2px 12px; margin: 6px 0; }
.kv > div:nth-child(odd) { color: var(--muted); }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
details.page { margin: 6px 0; } details.page > summary { cursor: pointer; font-weight: 600; }
.v-supported { background: #e3f4e8; } .v-conflicting { background: #fbe3e1; } .v-not_found { background: #f1f1f1; }
span.v-supported, span.v-conflicting, span.v-not_found { border-radius: 3px; padding: 0 2px; }
table.claims td { font-size: 13px; }
"""


def _fmt(value, metric: str = "") -> str:
    if value is None:
        return '<span class="muted">–</span>'
    if metric.startswith("latency"):
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.1%}" if metric in _RATE_METRICS else f"{value:.3f}"
    return escape(str(value))


def _rate_of(aggregate: Aggregate, series: str) -> float | None:
    if series == "answered":
        return None if aggregate.false_abstention is None else 1 - aggregate.false_abstention
    return getattr(aggregate, series)


# ----------------------------------------------------------------------------------------------------- charts


def bar_chart_svg(groups: list[tuple[str, Aggregate]], series=CHART_SERIES, height: int = 240,
                  targets: dict[str, float] | None = None) -> str:
    """A grouped vertical bar chart of 0-1 rates, one group per (label, aggregate), as inline SVG."""
    bar, gap, left, bottom, legend_columns, legend_width = 11, 18, 42, 46, 4, 200
    n = len(series)
    top = 18 + 14 * -(-n // legend_columns)
    group_width = n * bar + gap
    width = max(left + max(1, len(groups)) * group_width + 10, left + legend_columns * legend_width)
    plot = height - top - bottom
    parts = [f'<svg role="img" aria-label="metrics chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">']
    x: float
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>')
    legend_x = left
    for index, (_, label, color) in enumerate(series):
        row, col = divmod(index, legend_columns)
        x, y = legend_x + col * legend_width, 6 + row * 14
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14}" y="{y + 9}">{escape(label)}</text>')
    for g, (label, aggregate) in enumerate(groups):
        x0 = left + g * group_width + gap / 2
        for s, (key, name, color) in enumerate(series):
            value = _rate_of(aggregate, key)
            x = x0 + s * bar
            if value is None:
                continue
            h = max(0.0, min(1.0, value)) * plot
            parts.append(f'<rect x="{x:.1f}" y="{top + plot - h:.1f}" width="{bar - 2}" height="{h:.1f}" '
                         f'fill="{color}"><title>{escape(label)} — {escape(name)}: {value:.1%}</title></rect>')
            if targets and key in targets:
                ty = top + plot * (1 - targets[key])
                parts.append(f'<line x1="{x - 1:.1f}" x2="{x + bar - 1:.1f}" y1="{ty:.1f}" y2="{ty:.1f}" '
                             f'stroke="#000" stroke-width="2"><title>target {targets[key]:.0%}</title></line>')
        cx = x0 + n * bar / 2
        parts.append(f'<text x="{cx:.1f}" y="{top + plot + 16}" text-anchor="middle">{escape(label)}</text>'
                     f'<text x="{cx:.1f}" y="{top + plot + 30}" text-anchor="middle" class="muted">'
                     f'n={aggregate.items}</text>')
    parts.append(f'<line x1="{left}" x2="{width - 6}" y1="{top + plot}" y2="{top + plot}" stroke="#999"/></svg>')
    return "".join(parts)


def _chart_targets(summary: Summary) -> dict[str, float]:
    out = {}
    for target in summary.targets:
        if target.scope != "overall":
            continue
        if target.metric == "false_abstention":
            out["answered"] = 1 - target.threshold
        elif target.op == ">=":
            out[target.metric] = target.threshold
    return out


# ----------------------------------------------------------------------------------------------------- rendering

PAGE = 100  # rows per collapsed group


@lru_cache(maxsize=1)
def _environment() -> Environment:
    from pathlib import Path

    return Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def _meta(run: EvaluationRun) -> list[tuple[str, object]]:
    s = run.summary
    return [
        ("timestamp", s.timestamp), ("eval file", s.source), ("embedding model", s.model_id),
        ("corpus revision", s.corpus_revision), ("k", s.k),
        ("evaluated", f"{s.counts.get('evaluated', 0)} of {s.counts.get('items', 0)} rows "
                      f"({s.counts.get('failed', 0)} with failures, {s.counts.get('errors', 0)} errors, "
                      f"{s.counts.get('malformed', 0)} malformed rows skipped)"),
        ("duration", None if s.duration is None else f"{s.duration:.1f} s"),
        ("answering", s.settings.get("llm_provider", "none") if s.settings else None),
    ]


def _highlight(text: str, contexts: list[str]) -> Markup:
    """Escape ``text``, marking exact occurrences of the reference contexts."""
    spans = []
    for context in contexts:
        start = text.find(context.strip()) if context.strip() else -1
        if start >= 0:
            spans.append((start, start + len(context.strip())))
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out += [escape(text[pos:start]), f"<mark>{escape(text[start:end])}</mark>"]
        pos = end
    out.append(escape(text[pos:]))
    return Markup("".join(out))


def _highlight_claims(result: ItemResult) -> Markup:
    """The answer, each claim in the colour of its verdict (with its score and evidence as a tooltip)."""
    text, out, pos = result.answer, [], 0
    for claim in sorted(result.claims, key=lambda c: c.start):
        if claim.start < pos or text[claim.start:claim.end] != claim.text:
            continue
        tip = f"{claim.verdict} ({claim.score:.2f})"
        if claim.evidence is not None:
            tip += f" — {claim.evidence.document}: {claim.evidence.quote[:200]}"
        out += [escape(text[pos:claim.start]),
                f'<span class="v-{claim.verdict}" title="{escape(tip)}">{escape(claim.text)}</span>']
        pos = claim.end
    out.append(escape(text[pos:]))
    return Markup("".join(out))


def _scores(result: ItemResult) -> str:
    mt = result.metrics
    parts = [f"answered by: {result.answered_by}"]
    if result.answered_by == "assistant":
        parts.append(f"grounded: {'yes' if result.grounded else 'no (abstained)'}")
    if result.faithfulness is not None:
        parts.append(f"claims supported {result.faithfulness:.0%}")
    if mt.token_f1 is not None:
        parts.append(f"token F1 {mt.token_f1:.2f}")
    if mt.faithfulness is not None:
        parts.append(f"faithfulness (LLM judge) {mt.faithfulness:.2f}")
    if result.latency is not None:
        parts.append(f"{result.latency:.2f} s")
    return " · ".join(parts)


def _pages(results: list[ItemResult], open_first: bool) -> list[dict]:
    return [{"first": i + 1, "last": i + len(results[i:i + PAGE]), "rows": results[i:i + PAGE], "open": open_first}
            for i in range(0, len(results), PAGE)]


def _side_by_side(run: EvaluationRun, previous: dict[str, ItemResult]) -> list[dict]:
    rows = []
    for result in run.results:
        before = previous.get(result.id)
        if before is None or (not result.claims and not before.claims):
            continue
        rows.append({"id": result.id, "question": result.question,
                     "before_support": before.metrics.claim_support, "before_conflicting": before.metrics.conflicting,
                     "after_support": result.metrics.claim_support, "after_conflicting": result.metrics.conflicting})
    return rows


def render_html(run: EvaluationRun, extra_sections: Sequence[str] = (),
                previous_results: Sequence[ItemResult] = ()) -> str:
    """The report page. ``extra_sections``: HTML blocks (e.g. calibration charts) placed after the charts;
    ``previous_results``: the compared run's results, for the side-by-side table of claims."""
    s = run.summary
    metrics = [name for name in METRICS if name != "faithfulness" or s.overall.faithfulness is not None]
    if not s.overall.claims:
        metrics = [m_ for m_ in metrics if m_ not in ("claim_support", "conflicting_claims")]
    groups = [("overall", s.overall, "overall")]
    groups += [(f"category {name}", agg, "group") for name, agg in s.by_category.items()]
    groups += [(f"split {name}", agg, "group") for name, agg in s.by_split.items()]
    deltas = []
    if s.comparison is not None:
        for scope, changes in s.comparison.deltas.items():
            for metric, d in changes.items():
                if d.before is None and d.after is None:
                    continue
                css = "" if not d.delta else ("ok" if (d.delta > 0) == METRICS[metric][1] else "bad")
                deltas.append((scope, metric, d, css))
    order = {id(r): i for i, r in enumerate(run.results)}
    failing = sorted((r for r in run.results if r.failed),
                     key=lambda r: (r.error is None, -len(r.failures), order[id(r)]))
    passing = [r for r in run.results if not r.failed]
    series = CHART_SERIES if s.overall.claims else [x for x in CHART_SERIES if x[0] != "claim_support"]
    template = _environment().get_template("report.html.j2")
    return template.render(
        s=s, c=s.comparison, css=Markup(CSS), meta=_meta(run), metrics=metrics,
        labels={name: label for name, (label, _) in METRICS.items()}, groups=groups, deltas=deltas,
        fmt=lambda value, metric="": Markup(_fmt(value, metric)),
        chart_categories=Markup(bar_chart_svg([("overall", s.overall)] + list(s.by_category.items()), series=series,
                                              targets=_chart_targets(s))),
        chart_splits=Markup(bar_chart_svg([("overall", s.overall)] + list(s.by_split.items()), series=series)),
        extra_sections=[Markup(x) for x in (calibration_html(run.results), *extra_sections) if x],
        side_by_side=_side_by_side(run, {r.id: r for r in previous_results}) if previous_results else [],
        sections=[(f"Items with failures ({len(failing)})", _pages(failing, True)),
                  (f"Passed items ({len(passing)})", _pages(passing, False))],
        open_failed=len(failing) <= PAGE, k=s.k, scores=_scores, highlight=_highlight,
        highlight_claims=_highlight_claims,
    ) + "\n"
