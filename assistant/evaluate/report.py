"""report.html: one self-contained page (inline CSS and SVG, no script, no external asset) that opens offline."""

from __future__ import annotations

from html import escape

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


# ----------------------------------------------------------------------------------------------------- sections


def _meta(run: EvaluationRun) -> str:
    s = run.summary
    rows = [
        ("timestamp", s.timestamp), ("eval file", s.source), ("embedding model", s.model_id),
        ("corpus revision", s.corpus_revision), ("k", s.k),
        ("evaluated", f"{s.counts.get('evaluated', 0)} of {s.counts.get('items', 0)} questions "
                      f"({s.counts.get('failed', 0)} with failures, {s.counts.get('errors', 0)} errors, "
                      f"{s.counts.get('malformed', 0)} malformed rows skipped)"),
        ("duration", None if s.duration is None else f"{s.duration:.1f} s"),
        ("answering", s.settings.get("llm_provider", "none") if s.settings else None),
    ]
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v)) if v is not None else '–'}</td></tr>" for k, v in rows)
    return f'<table class="meta">{body}</table>'


def _targets(summary: Summary) -> str:
    if not summary.targets:
        return ""
    rows = []
    for t in summary.targets:
        status = '<span class="ok">met</span>' if t.passed else '<span class="bad">FAILED</span>'
        rows.append(f"<tr><td>{escape(t.name)}</td><td>{escape(t.description)}</td>"
                    f'<td class="num">{_fmt(t.value, t.metric)}</td><td>{escape(t.op)} {t.threshold:.0%}</td>'
                    f"<td>{status}</td></tr>")
    return ("<h2>Quality targets</h2><table><tr><th>target</th><th>what</th><th>value</th><th>required</th>"
            f"<th></th></tr>{''.join(rows)}</table>")


def _summary_table(summary: Summary) -> str:
    metrics = [name for name in METRICS if name != "faithfulness" or summary.overall.faithfulness is not None]
    head = "".join(f"<th>{escape(METRICS[m_][0])}</th>" for m_ in metrics)
    rows = []

    def row(label: str, agg: Aggregate, css: str) -> str:
        cells = "".join(f'<td class="num">{_fmt(getattr(agg, m_), m_)}</td>' for m_ in metrics)
        return (f'<tr class="{css}"><td>{escape(label)}</td><td class="num">{agg.items}</td>'
                f'<td class="num">{agg.failed}</td>{cells}</tr>')

    rows.append(row("overall", summary.overall, "overall"))
    for name, agg in summary.by_category.items():
        rows.append(row(f"category {name}", agg, "group"))
    for name, agg in summary.by_split.items():
        rows.append(row(f"split {name}", agg, "group"))
    note = ('<p class="muted">hit@k, MRR, must include, token F1 and false abstention are over answerable questions; '
            "correct abstention over unanswerable ones; citations verbatim over all citations.</p>")
    return (f"<h2>Summary</h2><table><tr><th>group</th><th>items</th><th>failed</th>{head}</tr>{''.join(rows)}"
            f"</table>{note}")


def _comparison(summary: Summary) -> str:
    c = summary.comparison
    if c is None:
        return ""
    parts = [f"<h2>Compared with {escape(c.previous)}</h2>"]
    if c.previous_timestamp:
        parts.append(f'<p class="muted">previous run: {escape(c.previous_timestamp)}</p>')
    rows = []
    for scope, deltas in c.deltas.items():
        for metric, d in deltas.items():
            if d.before is None and d.after is None:
                continue
            higher_better = METRICS[metric][1]
            css = "" if not d.delta else ("ok" if (d.delta > 0) == higher_better else "bad")
            delta = "–" if d.delta is None else f"{d.delta:+.3f}"
            rows.append(f"<tr><td>{escape(scope)}</td><td>{escape(METRICS[metric][0])}</td>"
                        f'<td class="num">{_fmt(d.before, metric)}</td><td class="num">{_fmt(d.after, metric)}</td>'
                        f'<td class="num {css}">{delta}</td></tr>')
    parts.append("<details><summary>change of every aggregate metric</summary><table><tr><th>group</th>"
                 f"<th>metric</th><th>before</th><th>after</th><th>change</th></tr>{''.join(rows)}</table></details>")
    for title, entries, css in (("got worse", c.regressions, "bad"), ("got better", c.improvements, "ok")):
        parts.append(f'<h3>{len(entries)} item(s) {title}</h3>')
        if entries:
            items = "".join(f'<li><a href="#item-{escape(e.id)}">{escape(e.id)}</a> '
                            f'<span class="muted">{escape(e.category or "")}</span> {escape(e.question)} — '
                            f'<span class="{css}">{escape("; ".join(e.reasons))}</span></li>' for e in entries)
            parts.append(f"<ul>{items}</ul>")
    if c.missing:
        parts.append(f'<p class="muted">not in this run: {escape(", ".join(c.missing))}</p>')
    return "".join(parts)


def _malformed(summary: Summary) -> str:
    if not summary.malformed:
        return ""
    rows = "".join(f"<tr><td class='num'>{r.line}</td><td>{escape(r.error)}</td></tr>" for r in summary.malformed)
    return f"<h2>Malformed rows (skipped)</h2><table><tr><th>line</th><th>problem</th></tr>{rows}</table>"


def _highlight(text: str, contexts: list[str]) -> str:
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
    return "".join(out)


def _item(result: ItemResult, k: int | None) -> str:
    failed = result.failed
    mt = result.metrics
    badges = [f'<span class="badge">{escape(x)}</span>' for x in (result.category, result.split, result.lang) if x]
    if mt.hit is not None:
        badges.append(f'<span class="badge {"ok" if mt.hit else "bad"}">'
                      f'{"rank " + str(mt.rank) if mt.hit else "miss"}</span>')
    if result.error:
        badges.append('<span class="badge bad">error</span>')
    status = '<span class="bad">✗</span>' if failed else '<span class="ok">✓</span>'
    head = (f"<summary>{status} <b>{escape(result.id)}</b> {''.join(badges)} {escape(result.question)}</summary>")
    body = []
    if result.failures:
        body.append('<ul class="reasons">' + "".join(f"<li>{escape(f)}</li>" for f in result.failures) + "</ul>")
    kv = []
    if result.history:
        kv.append(("history", "<br>".join(f"<b>{escape(t.role)}</b>: {escape(t.content)}" for t in result.history)))
    if result.query and result.query != result.question:
        kv.append(("search query", escape(result.query)))
    kv.append(("answerable", "yes" if result.answerable else "no"))
    if result.reference:
        kv.append(("reference", escape(result.reference)))
    if result.must_include:
        kv.append(("must include", escape(" | ".join(result.must_include))))
    if result.reference_contexts:
        kv.append(("reference contexts", "<br>".join(escape(c) for c in result.reference_contexts)))
    if result.reference_sources:
        kv.append(("reference sources", "<br>".join(escape(s) for s in result.reference_sources)))
    scores = [f"grounded: {'yes' if result.grounded else 'no (abstained)'}"]
    if mt.token_f1 is not None:
        scores.append(f"token F1 {mt.token_f1:.2f}")
    if mt.faithfulness is not None:
        scores.append(f"faithfulness {mt.faithfulness:.2f}")
    if result.latency is not None:
        scores.append(f"{result.latency:.2f} s")
    kv.append(("scores", escape(" · ".join(scores))))
    if result.notes:
        kv.append(("diagnosis", "<br>".join(escape(n) for n in result.notes)))
    body.append('<div class="kv">' + "".join(f"<div>{k_}</div><div>{v}</div>" for k_, v in kv) + "</div>")
    if result.error:
        body.append(f'<p class="bad">{escape(result.error)}</p>')
    else:
        body.append(f'<div><b>answer</b></div><div class="answer">{escape(result.answer)}</div>')
    if result.citations:
        rows = "".join(
            f"<tr><td>[{c.marker}]</td><td>{escape(c.document)}"
            f"{' p.' + str(c.page) if c.page else ''} [{c.start}:{c.end}]</td>"
            f'<td>{"<span class=ok>verbatim</span>" if c.verbatim else "<span class=bad>NOT verbatim</span>"}</td>'
            f'<td class="quote">{escape(c.quote)}</td></tr>' for c in result.citations)
        body.append(f"<table><tr><th></th><th>cited</th><th>check</th><th>quote</th></tr>{rows}</table>")
    if result.retrieved:
        rows = []
        for p in result.retrieved:
            alt = f'<br><span class="muted">also in {escape(", ".join(p.alternatives))}</span>' if p.alternatives else ""
            css = ' class="relevant"' if p.relevant else ""
            mark = "✓" if p.relevant else ""
            text = p.text if len(p.text) <= 700 else p.text[:700] + " …"
            rows.append(f"<tr{css}><td class='num'>{p.rank}</td><td>{mark}</td><td>{escape(p.document)}"
                        f"{' p.' + str(p.page) if p.page else ''}{alt}</td><td class='num'>{p.score:.3f}</td>"
                        f'<td class="snippet">{_highlight(text, result.reference_contexts)}</td></tr>')
        body.append(f"<div><b>retrieved (top {k or len(result.retrieved)})</b></div><table><tr><th>#</th>"
                    f"<th>rel.</th><th>document</th><th>score</th><th>text</th></tr>{''.join(rows)}</table>")
    css = "item failed" if failed else "item"
    return (f'<details class="{css}" id="item-{escape(result.id)}"{" open" if failed else ""}>{head}'
            f"{''.join(body)}</details>")


def _items(run: EvaluationRun) -> str:
    order = {id(r): i for i, r in enumerate(run.results)}
    failing = sorted((r for r in run.results if r.failed),
                     key=lambda r: (r.error is None, -len(r.failures), order[id(r)]))
    passing = [r for r in run.results if not r.failed]
    k = run.summary.k
    return (f"<h2>Items with failures ({len(failing)})</h2>" + "".join(_item(r, k) for r in failing)
            + f"<h2>Passed items ({len(passing)})</h2>" + "".join(_item(r, k) for r in passing))


def render_html(run: EvaluationRun) -> str:
    s = run.summary
    groups = [("overall", s.overall)] + list(s.by_category.items())
    splits = [("overall", s.overall)] + list(s.by_split.items())
    banner = ""
    if s.interrupted:
        banner = (f'<div class="banner">Interrupted: {s.counts.get("evaluated", 0)} of {s.counts.get("items", 0)} '
                  "questions were evaluated; the numbers cover those only.</div>")
    charts = (f"<h2>Metrics by category</h2>{bar_chart_svg(groups, targets=_chart_targets(s))}"
              f'<p class="muted">Black ticks mark the targets (they apply to the overall numbers).</p>'
              f"<h2>Metrics by split</h2>{bar_chart_svg(splits)}")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Evaluation {escape(s.timestamp)}</title><style>{CSS}</style></head><body>"
        f"<h1>Evaluation report</h1>{banner}{_meta(run)}{_targets(s)}{_summary_table(s)}{charts}"
        f"{calibration_html(run.results)}{_comparison(s)}{_malformed(s)}{_items(run)}</body></html>\n"
    )
