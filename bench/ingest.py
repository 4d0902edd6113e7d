"""Ingest benchmark: index the full corpus from scratch and compare with the model's raw encode rate.

Builds a temporary corpus (the committed files of corpus/ plus every manifest source fetched from the mirror), then,
in this one process and with the model loaded first:

* full index: ``sync`` of the whole corpus into an empty index → passages per second;
* raw encode: ``embedder.model.encode`` of the very same passage inputs, same batch size → passages per second;
  the same for the sentence index's inputs: (passages + sentences) / passages is the ingest cost of the sentence
  index; raw encode time of both over the index time says how much the pipeline around the model costs (≥ 0.9);
* no-op re-sync: a second ``sync`` with nothing changed (target < 1 s, and nothing embedded);
* peak memory (ru_maxrss).

Prints the numbers as JSON on stdout and a short summary on stderr. Exit code 1 if the no-op re-sync embedded
anything or a corpus file failed to index.

    .venv/bin/python bench/ingest.py                       # EmbeddingGemma (the default model), bf16
    .venv/bin/python bench/ingest.py --model PATH_OR_ID --dtype float32
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
        result = run(settings, mirror)
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
    print(summary(result), file=sys.stderr)
    return 0 if result["noop_embedded"] == 0 and not result["failed"] else 1


def run(settings, mirror: Path) -> dict:
    import torch

    from assistant.embed import Embedder
    from assistant.sentences import sentence_input, sentences_of
    from assistant.sources import corpus_files
    from assistant.store import IndexStore
    from assistant.sync import prepare, sync

    fetched = build_corpus(settings, mirror)
    files = corpus_files(settings)

    embedder = Embedder(settings)
    started = time.perf_counter()
    model = embedder.model
    load_s = time.perf_counter() - started

    # the same inputs, in the same order, that the sync will embed
    passages = [p for doc_id, path in files.items() for p in prepare(path, doc_id, settings)[1]]
    inputs = [embedder.passage_input(p) for p in passages]
    model.encode(inputs[:embedder.batch_size], batch_size=embedder.batch_size, normalize_embeddings=True,
                 show_progress_bar=False)  # warm-up: first-call costs belong to neither measurement

    store = IndexStore(settings, embedder.model_id)
    calls = embedder.calls
    started = time.perf_counter()
    report = sync(settings, embedder, store, show_progress=False)
    index_s = time.perf_counter() - started
    assert embedder.calls - calls == report.embedded + report.sentences_embedded

    started = time.perf_counter()
    model.encode(inputs, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                 show_progress_bar=False)
    raw_s = time.perf_counter() - started
    # the sentence index's inputs, so the cost of sentences over a passage-only index is measured, not guessed
    sentence_inputs = [sentence_input(embedder, s) for s in sentences_of(passages)]
    started = time.perf_counter()
    model.encode(sentence_inputs, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                 show_progress_bar=False)
    raw_sentences_s = time.perf_counter() - started

    calls = embedder.calls
    started = time.perf_counter()
    noop = sync(settings, embedder, store, show_progress=False)
    noop_s = time.perf_counter() - started
    noop_embedded = noop.embedded + (embedder.calls - calls)

    index_rate = report.embedded / index_s if index_s else 0.0
    raw_rate = len(inputs) / raw_s if raw_s else 0.0
    # pipeline efficiency: the model time the index needs (passages and sentences) over the time the index took
    ratio = (raw_s + raw_sentences_s) / index_s if index_s else 0.0
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
        "model_load_s": round(load_s, 2),
        "index_s": round(index_s, 2),
        "index_passages_per_s": round(index_rate, 2),
        "raw_encode_s": round(raw_s, 2),
        "raw_passages_per_s": round(raw_rate, 2),
        "sentences": len(sentence_inputs),
        "sentences_embedded": report.sentences_embedded,
        "raw_sentence_encode_s": round(raw_sentences_s, 2),
        "sentence_cost_ratio": round((raw_s + raw_sentences_s) / raw_s, 3) if raw_s else None,
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
        f"  full index    {r['index_s']:.1f} s  → {r['index_passages_per_s']:.2f} passages/s",
        f"  raw encode    {r['raw_encode_s']:.1f} s  → {r['raw_passages_per_s']:.2f} passages/s",
        f"  sentences     {r['sentences']} ({r['sentences_embedded']} embedded), raw encode "
        f"{r['raw_sentence_encode_s']:.1f} s; passages+sentences / passages only = {r['sentence_cost_ratio']}",
        f"  ratio         {r['ratio']:.3f}  (target ≥ {r['ratio_target']}: {mark(r['ratio_ok'])})",
        f"  no-op resync  {r['noop_resync_s'] * 1000:.0f} ms, {r['noop_embedded']} embedded "
        f"(target < {r['noop_target_s']:.0f} s and 0: {mark(r['noop_ok'])})",
        f"  peak RSS      {r['peak_rss_mb']:.0f} MB",
        f"  load average  {r['loadavg_start']} → {r['loadavg_end']} (other work on the machine skews the rates)",
    ])


if __name__ == "__main__":
    sys.exit(main())
