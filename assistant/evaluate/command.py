"""``assistant eval``: evaluate an eval set (questions the assistant answers, or answers written elsewhere), grade
every answer claim by claim, write results.jsonl, summary.json and report.html.

A Typer sub-app that receives what it needs (a function that opens the assistant), so the CLI imports it and it
never imports the CLI: ``app.add_typer(eval_app(open_assistant))``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.evaluate.core import METRICS, EvaluatedAssistant, compare
from assistant.evaluate.targets import TARGETS, describe, failed_targets

EXIT_INTERRUPTED = 130
EXIT_TARGETS = 4


class Split(str, Enum):
    dev = "dev"
    test = "test"


def _err(message: str, color: str | None = None) -> None:
    typer.secho(message, fg=color, err=True)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def default_out_dir(base: Path = Path("eval") / "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out, n = base / stamp, 1
    while out.exists():
        n += 1
        out = base / f"{stamp}-{n}"
    return out


def _value(value, metric: str) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}s" if metric.startswith("latency") else f"{value:.3f}"


def console_table(summary) -> str:
    """The aggregates as a plain-text table: overall, each category, each split."""
    columns = [("hit_at_k", f"hit@{summary.k}"), ("mrr", "MRR"), ("must_include", "must"), ("token_f1", "F1"),
               ("citation_validity", "cite ok"), ("correct_abstention", "abst ok"), ("false_abstention", "abst bad"),
               ("latency_p50", "p50"), ("latency_p95", "p95")]
    if summary.overall.faithfulness is not None:
        columns.insert(5, ("faithfulness", "faithful"))
    if summary.overall.claims:
        columns[4:4] = [("claim_support", "supported"), ("conflicting_claims", "conflict"), ("correctness", "correct")]
    rows = [("overall", summary.overall)]
    rows += [(f"  {name}", agg) for name, agg in summary.by_category.items()]
    rows += [(f"  split {name}", agg) for name, agg in summary.by_split.items()]
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"{'group':<{width}}{'n':>4}{'fail':>5}" + "".join(f"{title:>10}" for _, title in columns)]
    for label, agg in rows:
        lines.append(f"{label:<{width}}{agg.items:>4}{agg.failed:>5}"
                     + "".join(f"{_value(getattr(agg, metric), metric):>10}" for metric, _ in columns))
    return "\n".join(lines)


def eval_app(open_assistant: Callable[[], EvaluatedAssistant]) -> typer.Typer:
    """The ``eval`` command, as a Typer app to merge into the CLI; ``open_assistant()`` returns the Assistant
    (and exits with a clear message when the model or the index cannot be opened)."""
    app = typer.Typer(add_completion=False)

    @app.command("eval")
    def eval_command(
        file: Annotated[Path, typer.Argument(help="Eval set: JSONL or CSV, one row per question. question/user_input; "
                                                  "optional answer/response (graded as given, else the assistant "
                                                  "answers), citations (quotes, or {quote, document, marker}), "
                                                  "contexts/retrieved_contexts, id, reference, reference_contexts, "
                                                  "reference_sources, must_include, history, answerable, category, "
                                                  "split")],
        out: Annotated[Optional[Path], typer.Option("--out", help="Output folder [default: eval/runs/<timestamp>]")] = None,
        k: Annotated[Optional[int], typer.Option("--k", min=1, help="Passages retrieved per question [default: top_k]")] = None,
        limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Evaluate only the first N rows")] = None,
        previous: Annotated[Optional[Path], typer.Option(
            "--compare", help="Compare with a previous run (its summary.json or folder) or with another answer set "
                              "for the same questions (a JSONL/CSV file, graded first into OUT/compared)")] = None,
        split: Annotated[Optional[Split], typer.Option("--split", help="Only rows of this split")] = None,
        check: Annotated[bool, typer.Option("--check", help=f"Exit {EXIT_TARGETS} if a quality target is not met")] = False,
        judge: Annotated[Optional[bool], typer.Option("--judge/--no-judge", help="Have the configured LLM judge "
                                                      "faithfulness [default: when an LLM is configured]")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run: keep the rows already in "
                                                           "OUT/results.jsonl and evaluate only the rest")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table")] = False,
        progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar")] = True,
    ) -> None:
        """Evaluate an eval set; write results.jsonl, summary.json and report.html.

        Rows without an answer are answered by the assistant; rows with one (from another system, a chatbot, a
        memo, an earlier run) are graded as given. Every answer is split into claims, and each claim gets a verdict
        (supported, conflicting, not_found) with its evidence sentence from the corpus; every cited quote is looked
        up. Metrics: claims supported and conflicting, citation validity, correctness (must_include, token F1),
        hit@k and MRR, abstentions, latency — overall, per category and per split.

        Exit code 0: done; 1: unusable input or setup; 4: --check and a quality target missed; 130: interrupted
        (Ctrl-C keeps the results so far; rerun with --resume --out DIR to continue).
        """
        from assistant.evaluate import load_previous, read_results

        items, malformed = _load(file, split, limit)
        out_dir = out or default_out_dir()
        done = []
        if resume:
            if out is None:
                _fail("--resume needs --out: the folder of the interrupted run")
            if (out_dir / "results.jsonl").is_file():
                wanted = {item.id for item in items}
                done = [r for r in read_results(out_dir / "results.jsonl") if r.id in wanted]
        before = None
        if previous is not None and _is_answer_file(previous):
            before = _run(open_assistant, previous, *_load(previous, split, limit), out_dir / "compared", k, judge,
                          progress, [], label="compared set")
            before = (before.summary, before.results)
        elif previous is not None:
            try:
                before = load_previous(previous)
            except ValueError as exc:
                _fail(str(exc))
        run = _run(open_assistant, file, items, malformed, out_dir, k, judge, progress, done)
        if before is not None:
            run.summary.comparison = compare(run.summary, before[0], run.results, before[1],
                                             previous_name=str(previous))
        from assistant.evaluate import write_report

        paths = write_report(run, out_dir, before[1] if before is not None else ())
        summary = run.summary
        if as_json:
            typer.echo(json.dumps(summary.model_dump(mode="json"), ensure_ascii=False, indent=1))
        else:
            typer.echo(console_table(summary))
            typer.echo("")
            for target in summary.targets:
                typer.secho(describe(target), fg=None if target.passed else typer.colors.RED)
            if summary.comparison is not None:
                _print_comparison(summary.comparison)
            typer.echo(f"\n{summary.counts['evaluated']} evaluated, {summary.counts['failed']} with failures, "
                       f"{summary.counts['errors']} errors, {summary.counts['malformed']} malformed rows skipped")
            typer.echo(f"report:  {paths['report']}\nresults: {paths['results']}\nsummary: {paths['summary']}")
        if run.interrupted:
            _err(f"interrupted: {len(run.results)} of {run.total} rows evaluated; their results and summary are in "
                 f"{out_dir} (continue with --resume --out {out_dir})", typer.colors.YELLOW)
            raise typer.Exit(EXIT_INTERRUPTED)
        missed = failed_targets(summary)
        if check and missed:
            _err(f"{len(missed)} of {len(TARGETS)} quality target(s) not met:", typer.colors.RED)
            for target in missed:
                _err("  " + describe(target), typer.colors.RED)
            raise typer.Exit(EXIT_TARGETS)

    return app


def _is_answer_file(path: Path) -> bool:
    """Whether --compare names another eval/answer set (rather than a run's summary.json or folder)."""
    return path.is_file() and path.suffix.lower() in {".jsonl", ".csv", ".tsv", ".ndjson"}


def _load(file: Path, split, limit) -> tuple[list, list]:
    from assistant.evaluate import EvalInputError, load_items

    try:
        items, malformed = load_items(file)
    except EvalInputError as exc:
        _fail(str(exc))
    for row in malformed:
        _err(f"skipped line {row.line} of {file.name}: {row.error}", typer.colors.YELLOW)
    if split is not None:
        items = [item for item in items if item.split == split.value]
    if limit is not None:
        items = items[:limit]
    if not items:
        _fail(f"nothing to evaluate in {file}" + (f" (split {split.value})" if split else "")
              + (f"; {len(malformed)} malformed row(s)" if malformed else ""))
    return items, malformed


def _run(open_assistant: Callable[[], EvaluatedAssistant], file: Path, items, malformed, out_dir: Path, k, judge,
         progress: bool, done, label="eval"):
    """Evaluate ``items`` into ``out_dir`` (results.jsonl appended row by row), with a progress bar."""
    from tqdm import tqdm

    from assistant.evaluate import ResultWriter, run_evaluation

    assistant = open_assistant()
    asks = any(item.given_answer is None for item in items)
    if asks and not assistant.store.documents():
        _fail("the index is empty: run `assistant index` first")
    try:
        writer = ResultWriter(out_dir, append=bool(done))
    except OSError as exc:
        _fail(f"cannot write to {out_dir}: {exc.strerror or exc}")
    bar = None
    failed = 0

    def start() -> None:
        nonlocal bar
        bar = tqdm(total=len(items), initial=len(done), unit="row", desc=label, disable=not progress,
                   dynamic_ncols=True)

    def on_result(result) -> None:
        nonlocal failed
        writer(result)
        failed += result.failed
        if bar is not None:
            bar.set_postfix(failed=failed, refresh=False)
            bar.update(1)

    if progress:
        resumed = f", {len(done)} already done" if done else ""
        _err(f"{label}: {len(items)} row(s){resumed}; loading the model…")
    try:
        return run_evaluation(assistant, items, k=k, on_result=on_result, judge=judge, malformed=malformed,
                              source=str(file), on_start=start, done=done)
    finally:
        if bar is not None:
            bar.close()
        writer.close()


def _print_comparison(comparison) -> None:
    typer.echo(f"\ncompared with {comparison.previous}:")
    for metric, d in comparison.deltas.get("overall", {}).items():
        if d.delta:
            better = (d.delta > 0) == METRICS[metric][1]
            typer.secho(f"  {METRICS[metric][0]:<20} {_value(d.before, metric):>8} → {_value(d.after, metric):>8}"
                        f"  ({d.delta:+.3f})", fg=typer.colors.GREEN if better else typer.colors.RED)
    typer.echo(f"  {len(comparison.regressions)} item(s) got worse, {len(comparison.improvements)} got better")
    for entry in comparison.regressions:
        typer.secho(f"  worse  {entry.id}: {'; '.join(entry.reasons)}", fg=typer.colors.RED)
