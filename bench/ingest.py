"""Ingest benchmark: index the full corpus from scratch and compare with the model's raw encode rate.

Builds a temporary corpus (the committed files of corpus/ plus every manifest source fetched from the mirror), then,
in this one process and with the model loaded first:

* full index: ``sync`` of the whole corpus into an empty index → passages per second;
* raw encode: ``embedder.model.encode`` of the very same passage inputs, same batch size → passages per second;
  the ratio index/raw says how much the pipeline around the model costs (target ≥ 0.9);
* no-op re-sync: a second ``sync`` with nothing changed (target < 1 s, and nothing embedded);
* peak memory (ru_maxrss).

With ``--standin N`` it measures the pipeline around the model instead: a synthetic corpus of about N passages
(paragraphs of the real corpus, English and Chinese, reshuffled into documents of 100 paragraphs, each made unique)
is indexed with an instant stand-in for the model (bench/standin.py), and it prints ingest passages/s (wall and per
CPU second, the machine being shared), the no-op sync, a reader in a new process (its first search, its search
right after a one-document update by this process, warm search p50, its peak RSS).

Prints the numbers as JSON on stdout and a short summary on stderr. Exit code 1 if the no-op re-sync embedded
anything or a corpus file failed to index.

    .venv/bin/python bench/ingest.py                       # EmbeddingGemma (the default model), bf16
    .venv/bin/python bench/ingest.py --model PATH_OR_ID --dtype float32
    .venv/bin/python bench/ingest.py --standin 10000       # the pipeline without the model, 10k passages
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RATIO_TARGET = 0.9
NOOP_TARGET_S = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Targets: index rate ≥ 0.9 × raw encode rate; no-op re-sync < 1 s.")
    parser.add_argument("--model", help="embedding model: a folder or a known model id "
                                        "(default: ASSISTANT_EMBEDDING_MODEL, else EmbeddingGemma-300M)")
    parser.add_argument("--dtype", choices=["bfloat16", "float32", "float16"],
                        help="model dtype (default: the settings' default, bfloat16)")
    parser.add_argument("--batch-size", type=int, help="encode batch size (default: the settings' embed_batch_size)")
    parser.add_argument("--mirror", type=Path,
                        help="corpus mirror (default: ASSISTANT_CORPUS_MIRROR, else shared/corpus beside the repo)")
    parser.add_argument("--workdir", type=Path, help="where to build the temp corpus and index (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir afterwards")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument("--standin", type=int, metavar="N",
                        help="synthetic corpus of about N passages, embedded by the instant stand-in model")
    return parser.parse_args(argv)


def build_corpus(settings, mirror: Path) -> dict:
    """Committed files of the repo's corpus/ plus every manifest source fetched from the mirror."""
    from assistant.sources import fetch_sources, read_manifest

    settings.corpus_dir.mkdir(parents=True, exist_ok=True)
    for source in read_manifest(settings):
        if source.committed:
            shutil.copyfile(REPO / "corpus" / source.file, settings.corpus_dir / source.file)
    report = fetch_sources(settings, log=lambda _: None)
    if report.missing:
        raise SystemExit(f"could not fetch from the mirror {mirror}: {report.missing}")
    return report.as_dict()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from assistant.settings import Settings

    mirror = args.mirror or Path(os.environ.get("ASSISTANT_CORPUS_MIRROR") or REPO.parent / "shared" / "corpus")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    overrides = dict(corpus_dir=work / "corpus", index_dir=work / "index", corpus_manifest=REPO / "corpus" / "sources.json",
                     corpus_mirror=mirror, chroma_url=None)
    if args.model:
        overrides["embedding_model"] = args.model
    if args.dtype:
        overrides["embedding_dtype"] = args.dtype
    if args.batch_size:
        overrides["embed_batch_size"] = args.batch_size
    settings = Settings(**overrides)
    load_at_start = os.getloadavg()
    try:
        result = run_standin(settings, mirror, args.standin) if args.standin else run(settings, mirror)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    result["loadavg_start"] = [round(x, 2) for x in load_at_start]
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.keep or args.workdir:
        result["workdir"] = str(work)

    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    print(summary_standin(result) if args.standin else summary(result), file=sys.stderr)
    return 0 if result["noop_embedded"] == 0 and not result["failed"] else 1


PARAGRAPHS_PER_DOCUMENT = 100

READER = r"""
import json, os, resource, statistics, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from assistant.pipeline import Assistant
from assistant.settings import Settings
from bench.standin import InstantEmbedder

assistant = Assistant(Settings(), embedder=InstantEmbedder())
query = sys.argv[2]

def timed(fn):
    mark = time.perf_counter()
    result = fn()
    return time.perf_counter() - mark, result

first, hits = timed(lambda: assistant.search(query, k=5))
out = {"first_search_s": round(time.perf_counter() - started, 3), "first_search_only_s": round(first, 3),
       "first_hits": len(hits)}
ask, answer = timed(lambda: assistant.ask(query, history=[]))
out["first_ask_s"] = round(ask, 3)
warm = [timed(lambda: assistant.search(query, k=5))[0] for _ in range(15)]
out["warm_search_p50_ms"] = round(statistics.median(warm) * 1000, 1)
print(json.dumps(out), flush=True)
sys.stdin.readline()  # the bench updates one document, then says go
after, hits = timed(lambda: assistant.search(sys.argv[3], k=1))
out = {"search_after_update_s": round(after, 3)}
hits = assistant.search(sys.argv[3], k=20, documents=[sys.argv[4]])
out["update_visible"] = any(sys.argv[3] in hit.text for hit in hits)
ask, answer = timed(lambda: assistant.ask(sys.argv[3], history=[]))
out["ask_after_update_s"] = round(ask, 3)
out["reader_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(out), flush=True)
"""


def synthetic_corpus(settings, mirror: Path, passages: int) -> tuple[int, str, Path]:
    """About ``passages`` passages: paragraphs of the real corpus reshuffled into documents, each made unique."""
    import random

    from assistant.sync import prepare

    settings_for_pool = settings.model_copy(update={"corpus_dir": mirror})
    pool = []
    for path in sorted(mirror.iterdir()):
        if path.suffix.lower() in {".txt", ".md", ".pdf", ".html"}:
            try:
                pool += [p.text for p in prepare(path, path.name, settings_for_pool)[1] if len(p.text) > 200]
            except Exception:  # noqa: BLE001 - a file the corpus skips is skipped here too
                continue
    rng = random.Random(11)
    settings.corpus_dir.mkdir(parents=True, exist_ok=True)
    documents = max(1, passages // PARAGRAPHS_PER_DOCUMENT)
    for d in range(documents):
        body = "\n\n".join(f"Marker d{d}p{i}. " + rng.choice(pool) for i in range(PARAGRAPHS_PER_DOCUMENT))
        (settings.corpus_dir / f"synthetic-{d:05d}.txt").write_text(f"Synthetic document {d}\n\n{body}", encoding="utf-8")
    return documents, "Marker d0p7", settings.corpus_dir / "synthetic-00001.txt"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_standin(settings, mirror: Path, passages: int) -> dict:
    import subprocess

    from assistant.store import IndexStore
    from assistant.sync import sync
    from bench.standin import InstantEmbedder

    settings = settings.model_copy(update={"corpus_manifest": settings.index_dir.parent / "no-manifest.json"})
    documents, query, updated_path = synthetic_corpus(settings, mirror, passages)
    embedder = InstantEmbedder()
    store = IndexStore(settings, embedder.model_id)
    started, cpu = time.perf_counter(), _cpu()
    report = sync(settings, embedder, store, show_progress=False)
    index_s, index_cpu = time.perf_counter() - started, _cpu() - cpu
    started = time.perf_counter()
    noop = sync(settings, embedder, store, show_progress=False)
    noop_s = time.perf_counter() - started

    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_INDEX_DIR": str(settings.index_dir),
           "ASSISTANT_CORPUS_MANIFEST": str(settings.corpus_manifest)}
    marker = "Zebra quokka clause"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(REPO), query, marker, updated_path.name], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    first = json.loads(reader.stdout.readline())
    updated_path.write_text(updated_path.read_text(encoding="utf-8").replace("Marker d1p3. ", f"Marker d1p3. {marker}. "),
                            encoding="utf-8")
    started = time.perf_counter()
    update = sync(settings, embedder, store, show_progress=False)
    update_s = time.perf_counter() - started
    reader.stdin.write("go\n")
    reader.stdin.flush()
    after = json.loads(reader.stdout.readline())
    reader.wait(60)
    return {
        "mode": "instant stand-in model", "documents": documents, "passages": report.passages,
        "embedded": report.embedded,
        "sentences_embedded": report.sentences_embedded,
        "failed": [f.model_dump() for f in report.failed],
        "index_s": round(index_s, 2), "index_passages_per_s": round(report.passages / index_s, 1),
        "index_cpu_s": round(index_cpu, 2), "index_passages_per_cpu_s": round(report.passages / index_cpu, 1),
        "noop_resync_s": round(noop_s, 3), "noop_embedded": noop.embedded,
        "update_sync_s": round(update_s, 3), "update_embedded": update.embedded,
        **first, **after,
        "bench_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def summary_standin(r: dict) -> str:
    return "\n".join([
        f"ingest benchmark, instant stand-in model — {r['documents']} documents, {r['passages']} passages",
        f"  ingest         {r['index_s']:.1f} s → {r['index_passages_per_s']:.0f} passages/s "
        f"({r['index_passages_per_cpu_s']:.0f} per CPU second)",
        f"  no-op sync     {r['noop_resync_s'] * 1000:.0f} ms; one-document update {r['update_sync_s']:.2f} s",
        f"  new reader     first search {r['first_search_s']:.2f} s after start ({r['first_search_only_s']:.3f} s "
        f"the search), warm p50 {r['warm_search_p50_ms']:.0f} ms",
        f"  after update   search {r['search_after_update_s']:.3f} s (sees it: {r['update_visible']}), "
        f"ask {r['ask_after_update_s']:.3f} s",
        f"  reader RSS     {r['reader_peak_rss_mb']:.0f} MB",
    ])


def run(settings, mirror: Path) -> dict:
    import torch

    from assistant.embed import Embedder
    from assistant.sources import corpus_files
    from assistant.store import IndexStore
    from assistant.sync import prepare, sync

    fetched = build_corpus(settings, mirror)
    files = corpus_files(settings)

    embedder = Embedder(settings)
    started = time.perf_counter()
    model = embedder.model
    load_s = time.perf_counter() - started

    # the same inputs that the sync will embed: every passage, and every sentence of it (the sentence index)
    from assistant.sentences import sentence_input, sentences_of

    passages = [p for doc_id, path in files.items() for p in prepare(path, doc_id, settings)[1]]
    inputs = [embedder.passage_input(p) for p in passages] + [sentence_input(embedder, s) for s in sentences_of(passages)]
    model.encode(inputs[:embedder.batch_size], batch_size=embedder.batch_size, normalize_embeddings=True,
                 show_progress_bar=False)  # warm-up: first-call costs belong to neither measurement

    store = IndexStore(settings, embedder.model_id)
    calls = embedder.calls
    started = time.perf_counter()
    report = sync(settings, embedder, store, show_progress=False)
    index_s = time.perf_counter() - started
    assert embedder.calls - calls == report.embedded + report.sentences_embedded

    # passages and sentences timed apart: the sentence index's cost over a passage-only index is measured, not guessed
    started = time.perf_counter()
    model.encode(inputs[:len(passages)], batch_size=embedder.batch_size, normalize_embeddings=True,
                 convert_to_numpy=True, show_progress_bar=False)
    raw_passages_s = time.perf_counter() - started
    model.encode(inputs[len(passages):], batch_size=embedder.batch_size, normalize_embeddings=True,
                 convert_to_numpy=True, show_progress_bar=False)
    raw_s = time.perf_counter() - started

    calls = embedder.calls
    started = time.perf_counter()
    noop = sync(settings, embedder, store, show_progress=False)
    noop_s = time.perf_counter() - started
    noop_embedded = noop.embedded + (embedder.calls - calls)

    index_rate = (report.embedded + report.sentences_embedded) / index_s if index_s else 0.0
    raw_rate = len(inputs) / raw_s if raw_s else 0.0
    ratio = index_rate / raw_rate if raw_rate else 0.0
    return {
        "model": settings.embedding_model,
        "model_id": embedder.model_id,
        "dtype": settings.embedding_dtype,
        "batch_size": embedder.batch_size,
        "device": settings.device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "documents": len(report.added),
        "fetched_from_mirror": len(fetched["fetched"]),
        "failed": [f.model_dump() for f in report.failed],
        "passages": report.passages,
        "embedded": report.embedded,
        "sentences_embedded": report.sentences_embedded,
        "texts_embedded": len(inputs),
        "sentence_cost_ratio": round(raw_s / raw_passages_s, 3) if raw_passages_s else None,
        "model_load_s": round(load_s, 2),
        "index_s": round(index_s, 2),
        "index_passages_per_s": round(index_rate, 2),
        "raw_encode_s": round(raw_s, 2),
        "raw_passages_per_s": round(raw_rate, 2),
        "ratio": round(ratio, 3),
        "ratio_target": RATIO_TARGET,
        "ratio_ok": ratio >= RATIO_TARGET,
        "noop_resync_s": round(noop_s, 3),
        "noop_embedded": noop_embedded,
        "noop_unchanged": len(noop.unchanged),
        "noop_target_s": NOOP_TARGET_S,
        "noop_ok": noop_s < NOOP_TARGET_S and noop_embedded == 0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def summary(r: dict) -> str:
    mark = lambda ok: "ok" if ok else "MISSED"  # noqa: E731
    return "\n".join([
        f"ingest benchmark — {r['model_id']} ({r['dtype']}, batch {r['batch_size']}, {r['torch_threads']} threads)",
        f"  corpus        {r['documents']} documents, {r['passages']} passages"
        + (f", {len(r['failed'])} FAILED" if r["failed"] else ""),
        f"  model load    {r['model_load_s']:.1f} s",
        f"  full index    {r['index_s']:.1f} s  → {r['index_passages_per_s']:.2f} texts/s "
        f"({r['embedded']} passages + {r['sentences_embedded']} sentences)",
        f"  raw encode    {r['raw_encode_s']:.1f} s  → {r['raw_passages_per_s']:.2f} texts/s (the same texts); "
        f"sentences included cost {r['sentence_cost_ratio']}× passages alone",
        f"  ratio         {r['ratio']:.3f}  (target ≥ {r['ratio_target']}: {mark(r['ratio_ok'])})",
        f"  no-op resync  {r['noop_resync_s'] * 1000:.0f} ms, {r['noop_embedded']} embedded "
        f"(target < {r['noop_target_s']:.0f} s and 0: {mark(r['noop_ok'])})",
        f"  peak RSS      {r['peak_rss_mb']:.0f} MB",
        f"  load average  {r['loadavg_start']} → {r['loadavg_end']} (other work on the machine skews the rates)",
    ])


if __name__ == "__main__":
    sys.exit(main())
