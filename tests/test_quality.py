"""CI quality gate: the full eval set (eval/questions.jsonl) over the full corpus with the default model
(EmbeddingGemma-300M) must meet every target in ``assistant.evaluate.TARGETS``.

The index is built into a temp dir (the repo's corpus/ copied, the manifest's other sources fetched from the shared
mirror, then synced; about a minute on 2 cores), unless ASSISTANT_INDEX_DIR names an index the runner built already,
which is then synced and used. The run's results.jsonl, summary.json and report.html are written to
$ASSISTANT_QUALITY_REPORT_DIR if set (else a temp dir, printed in the failure message).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # index + 110 questions: ~3-8 min on 2 busy cores


def _settings(tmp_path_factory, corpus_mirror: Path):
    from assistant.settings import Settings
    from assistant.sources import fetch_sources

    if os.environ.get("ASSISTANT_INDEX_DIR"):
        return Settings()  # the runner's index, corpus and model, as configured by its environment
    base = tmp_path_factory.mktemp("quality")
    corpus = base / "corpus"
    shutil.copytree(REPO / "corpus", corpus, ignore=shutil.ignore_patterns("fetched", ".*"))
    settings = Settings(corpus_dir=corpus, corpus_manifest=corpus / "sources.json", corpus_mirror=corpus_mirror,
                        index_dir=base / "index", chroma_url=None, llm_provider="none")
    report = fetch_sources(settings, log=lambda _: None)
    assert not report.missing, f"sources missing from the mirror {corpus_mirror}: {report.missing}"
    return settings


def _worst(results, limit: int = 20) -> str:
    failing = sorted((r for r in results if r.failed), key=lambda r: (-len(r.failures), r.id))
    lines = []
    for r in failing[:limit]:
        got = ", ".join(p.document[:40] for p in r.retrieved[:3])
        lines.append(f"  {r.id} [{r.category}] {r.question[:70]!r}: {'; '.join(r.failures)[:160]} | top3: {got}")
    if len(failing) > limit:
        lines.append(f"  … and {len(failing) - limit} more (see the report)")
    return "\n".join(lines)


def test_quality_targets_on_the_project_eval_set(tmp_path_factory, corpus_mirror):
    from assistant.evaluate import TARGET_K, describe, failed_targets, load_items, run_evaluation, write_report
    from assistant.evaluate.command import console_table
    from assistant.pipeline import Assistant

    settings = _settings(tmp_path_factory, corpus_mirror)
    assistant = Assistant(settings)
    sync = assistant.sync(show_progress=False)
    assert not sync.failed, f"documents that could not be indexed: {sync.failed}"
    assert assistant.store.documents(), "the index is empty"

    items, malformed = load_items(REPO / "eval" / "questions.jsonl")
    assert not malformed, malformed
    run = run_evaluation(assistant, items, k=TARGET_K, source="eval/questions.jsonl")
    out = Path(os.environ.get("ASSISTANT_QUALITY_REPORT_DIR") or tmp_path_factory.mktemp("quality-report"))
    write_report(run, out)
    summary = run.summary
    table = console_table(summary)
    print(f"\n{table}\n" + "\n".join(describe(t) for t in summary.targets) + f"\nreport: {out / 'report.html'}")

    assert summary.counts["evaluated"] == len(items) and summary.counts["errors"] == 0, _worst(run.results)
    missed = failed_targets(summary)
    assert not missed, (
        f"{len(missed)} quality target(s) not met with {summary.model_id} (revision {summary.corpus_revision}):\n"
        + "\n".join("  " + describe(t) for t in missed)
        + f"\n\nper category and split:\n{table}\n\nfailing items (worst first):\n{_worst(run.results)}"
        + f"\n\nreport: {out / 'report.html'}"
    )
