"""Scale benchmark: synthetic corpora of 10k / 100k / 1M passages through the real sync, store, retriever and composer.

For each size it builds a corpus of mixed English and Chinese documents (sentences sampled from the real corpus and
recombined, so vocabulary, sentence length and the jieba workload are realistic), indexes it with ``sync`` and
prints:

* ingest passages/s of the whole pipeline (load → clean → split → embed → store), and its ratio to the model's
  raw encode rate on this machine (with ``--model instant`` the model is replaced by an instant stand-in, so the
  figure is the pipeline's own cost, and the ratio says how far ahead of the model it is);
* no-op sync seconds (nothing changed);
* in a fresh worker process (as an API worker would be): cold start to the first answer, warm search and ask
  p50/p95, the time from an upload's sync returning to its passage being found (by a search with that passage's own
  vector; where the upload ranks for its own sentence and for a question in words is reported beside it), and the
  worker's RSS;
* the index's size on disk.

Only public functions of the assistant are used (``sync``, ``Assistant``, ``IndexStore``, settings).

    python bench/scale.py --sizes 10000 --json                 # instant stand-in model, JSON on stdout
    python bench/scale.py --sizes 10000 --model real           # the configured model (EmbeddingGemma)
    python bench/scale.py --sizes 10000,100000,1000000 --raw-rate 14.2

Targets (issue 11): ingest without the model ≥ 2,000 passages/s at every size; ask p50 at 1M ≤ 1.5 × at 10k;
search after a one-document update ≤ 2 × warm search p50; no-op sync at 1M < 2 s; worker RSS at 1M ≤ 1.5 GB above
the model's own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO))  # after PYTHONPATH, so another checkout's assistant can be measured with this script

PASSAGES_PER_DOCUMENT = 20  # a ten-page report; the real corpus averages 25
CHINESE_SHARE = 0.25
QUERIES = ["What does Executive Order 14330 direct the Secretary of Labor to do?",
           "alternative assets in 401(k) plans", "fiduciary duties under ERISA section 1104",
           "How many private pension plans existed in 1975?", "401(k)计划是什么时候开始的？",
           "行政命令对另类资产有什么规定？", "matching contributions under section 401(m)",
           "private equity and real estate in defined contribution plans"]
UPLOAD_MARKER = "Quillfeather retirement covenant"  # a phrase no sampled sentence contains
UPLOAD_SENTENCE = f"The {UPLOAD_MARKER} was signed in 2031."
UPLOAD = "uploads/upload.md"
RANK_DEPTH = 30  # hits read to report where the upload ranks


def instant_embedder():
    """The instant stand-in for the model (bench/standin.py), at EmbeddingGemma's 768 dimensions: Chroma's cost per
    row grows with the vector's size, so the pipeline is measured with vectors of the real size."""
    from bench.standin import InstantEmbedder

    return InstantEmbedder(dimension=768)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="comma-separated passage counts (default: 10000,100000,1000000)")
    parser.add_argument("--model", choices=["instant", "real"], default="instant",
                        help="instant: a stand-in with no model cost (the pipeline's own speed); real: the configured "
                             "embedding model (ASSISTANT_EMBEDDING_MODEL, ASSISTANT_DEVICE)")
    parser.add_argument("--raw-rate", type=float,
                        help="the model's raw encode rate in passages/s, if already known (skips measuring it)")
    parser.add_argument("--raw-sample", type=int, default=64,
                        help="passages encoded to measure the model's raw rate (default 64; 0: skip)")
    parser.add_argument("--queries", type=int, default=40, help="warm searches and asks per size (default 40)")
    parser.add_argument("--lexical", action="store_true",
                        help="also measure the on-disk lexical index (add rate, BM25 search p50/p95, delete, size)")
    parser.add_argument("--mirror", type=Path, help="real corpus to sample sentences from "
                                                    "(default: ASSISTANT_CORPUS_MIRROR, else shared/corpus beside the repo)")
    parser.add_argument("--workdir", type=Path, help="where corpora and indexes go (default: a temp dir, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--resume", action="store_true",
                        help="with --workdir: reuse a size's corpus and index left by a stopped run (the sync "
                             "finishes it); ingest figures then cover only the rest")
    parser.add_argument("--ingest-only", action="store_true",
                        help="measure ingest and the no-op sync only (no serving worker, no lexical index)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument("--out", type=Path, help="also write the JSON results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run the serving-worker measurements
    return parser.parse_args(argv)


# --- the synthetic corpus ---

def sample_sentences(mirror: Path) -> tuple[list[str], list[str]]:
    """English and Chinese sentences of the real corpus (its text and Markdown files)."""
    english, chinese = [], []
    files = [p for p in sorted(mirror.glob("*")) if p.suffix in {".txt", ".md"} and p.name != "SOURCES.md"]
    files += [p for p in sorted((REPO / "corpus").glob("*.txt"))]
    for path in files:
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8", errors="ignore"))
        for sentence in re.split(r"(?<=[.!?。！？])\s*", text):
            sentence = sentence.strip()
            if re.search(r"[\u3400-\u9fff]", sentence) and 8 <= len(sentence) <= 200:
                chinese.append(sentence)
            elif 40 <= len(sentence) <= 400 and sum(c.isalpha() for c in sentence) > len(sentence) / 2:
                english.append(sentence)
    if not english or not chinese:
        raise SystemExit(f"no English or no Chinese sentences found in {mirror}")
    return english, chinese


def write_document(path: Path, rng: random.Random, english: list[str], chinese: list[str], n_chars: int,
                   extra: str = "") -> None:
    zh = rng.random() < CHINESE_SHARE
    pool = chinese if zh else english
    title = ("关于养老金的报告 " if zh else "Report on retirement plans ") + str(rng.randrange(10 ** 6))
    paragraphs, size, paragraph = [], 0, []
    while size < n_chars:
        sentence = rng.choice(pool)
        paragraph.append(sentence)
        size += len(sentence)
        if len(paragraph) >= rng.randint(3, 6):
            paragraphs.append(("" if zh else " ").join(paragraph))
            paragraph = []
    paragraphs.append(("" if zh else " ").join(paragraph))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n" + (f"{extra}\n\n" if extra else "") + "\n\n".join(paragraphs) + "\n",
                    encoding="utf-8")


def build_corpus(corpus_dir: Path, n_documents: int, chars: int, rng: random.Random, english, chinese,
                 show_progress: bool) -> None:
    from tqdm import tqdm

    for i in tqdm(range(n_documents), desc="writing corpus", unit="doc", disable=not show_progress):
        write_document(corpus_dir / f"d{i // 1000:04d}" / f"doc{i:07d}.md", rng, english, chinese, chars)


def make_settings(base: Path):
    from assistant.settings import Settings

    return Settings(corpus_dir=base / "corpus", index_dir=base / "index", corpus_manifest=base / "no-manifest.json",
                    corpus_mirror=None, chroma_url=None, llm_provider="none")


def make_embedder(settings, model: str):
    if model == "instant":
        return instant_embedder()
    from assistant import embed

    factory = getattr(embed, "make_embedder", embed.Embedder)
    return factory(settings)


def chars_per_document(work: Path, rng: random.Random, english, chinese, model: str) -> int:
    """Calibrate document length so that one document splits into about PASSAGES_PER_DOCUMENT passages."""
    from assistant.store import IndexStore
    from assistant.sync import sync

    base = work / "calibrate"
    chars = 6000
    for i in range(40):
        write_document(base / "corpus" / f"c{i}.md", rng, english, chinese, chars)
    settings = make_settings(base)
    embedder = instant_embedder()
    report = sync(settings, embedder, IndexStore(settings, embedder.model_id), show_progress=False)
    shutil.rmtree(base, ignore_errors=True)
    return int(chars * PASSAGES_PER_DOCUMENT / (report.passages / 40))


def raw_encode_rate(settings, english: list[str], chinese: list[str], sample: int, rng: random.Random) -> float | None:
    """The configured model's own encode rate on this machine, on passage-sized inputs (no pipeline around it)."""
    if sample <= 0:
        return None
    from assistant.embed import Embedder

    embedder = Embedder(settings)
    texts = []
    for i in range(sample):
        pool = chinese if i % 4 == 0 else english
        texts.append(" ".join(rng.choice(pool) for _ in range(4))[:700])
    embedder.model.encode(texts[:4], batch_size=embedder.batch_size)  # warm-up
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
    return sample / (time.perf_counter() - started)


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def percentiles(samples: list[float]) -> dict[str, float]:
    from assistant.stats import percentile

    return {"p50": round(percentile(samples, 50), 4), "p95": round(percentile(samples, 95), 4)}


def lexical_figures(size: int, work: Path, english, chinese, rng: random.Random, queries: int) -> dict:
    """The on-disk lexical index (assistant/lexical.py) at this size: add rate, BM25 search latency, size on disk."""
    from tqdm import tqdm

    from assistant.lexical import LexicalIndex
    from assistant.schema import Passage

    path = work / f"lexical-{size}"
    shutil.rmtree(path, ignore_errors=True)
    index = LexicalIndex(path)
    versions: dict[str, str] = {}
    started = time.perf_counter()
    with tqdm(total=size, desc="lexical index", unit="passage") as bar:
        for first in range(0, size, 1000):
            batch = []
            for i in range(first, min(size, first + 1000)):
                doc = f"doc{i // PASSAGES_PER_DOCUMENT:07d}.md"
                zh = zlib.crc32(doc.encode()) % 4 == 0
                text = ("" if zh else " ").join(rng.choice(chinese if zh else english) for _ in range(3 if zh else 4))
                versions[doc] = "v1"
                batch.append(Passage(chunk_id=f"{doc}:v1:{i}", document=doc, title=doc, start=0, end=len(text),
                                     text=text, language="zh" if zh else "en", version="v1"))
            index.add(batch)
            bar.update(len(batch))
    add_s = time.perf_counter() - started
    latencies = []
    for i in range(queries):
        started = time.perf_counter()
        index.search(QUERIES[i % len(QUERIES)], 30, versions=versions)
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    index.delete("doc0000000.md")
    delete_s = time.perf_counter() - started
    result = {"lexical_add_passages_per_s": round(size / add_s, 1), "lexical_search_s": percentiles(latencies),
              "lexical_delete_document_s": round(delete_s, 4), "lexical_bytes": disk_bytes(path)}
    index.close()
    shutil.rmtree(path, ignore_errors=True)
    return result


# --- the serving worker (a fresh process) ---

def worker(config: dict) -> dict:
    """Runs in a new process: cold start, warm latencies, an upload becoming answerable, RSS."""
    from assistant.pipeline import Assistant

    base, model = Path(config["base"]), config["model"]
    settings = make_settings(base)
    assistant = Assistant(settings, embedder=instant_embedder() if model == "instant" else None)
    assistant.ask(QUERIES[0])
    cold = time.time() - config["started"]
    _partial(cold_start_to_first_answer_s=round(cold, 3), worker_rss_gb=round(_rss_bytes() / 2 ** 30, 3))

    searches, asks = [], []
    for i in range(config["queries"]):
        query = QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        assistant.search(query)
        searches.append(time.perf_counter() - started)
        started = time.perf_counter()
        assistant.ask(query)
        asks.append(time.perf_counter() - started)
    _partial(search_s=percentiles(searches), ask_s=percentiles(asks))

    # an upload: the file lands in the corpus and its sync returns; how long until a question finds it?
    rng = random.Random(config["seed"])
    english, chinese = sample_sentences(Path(config["mirror"]))
    path = settings.corpus_dir / UPLOAD
    write_document(path, rng, english, chinese, 3000, extra=UPLOAD_SENTENCE)
    started = time.perf_counter()
    report = assistant.sync(show_progress=False)
    upload_sync = time.perf_counter() - started
    _partial(upload_sync_s=round(upload_sync, 3))
    # Answerable: a search with the vector of the upload's passage that holds the marker finds that passage. That is
    # what an update must achieve (stored, in the vector index, registered), whatever the model. A question in words
    # is no sound check with the stand-in model: at 100k passages its hashed bag of words ranks many passages that share
    # "what", "is", "the" or a colliding hash slot above the upload, and the vector index's approximate search misses
    # even the exact sentence's best match among such near-orthogonal vectors (upload_rank reports both).
    started = time.perf_counter()
    deadline = started + 120
    found, stored = False, []
    while not found and time.perf_counter() < deadline:
        stored = assistant.store.passages_of(UPLOAD)
        marker = next((p for p in stored if UPLOAD_MARKER in p.text), None)
        if marker is not None:
            own = assistant.embedder.embed_passages([marker])[0]
            found = any(h.chunk_id == marker.chunk_id for h in assistant.retriever.search("", query_vector=own))
    answerable = time.perf_counter() - started
    ranks = {}
    for name, question in (("sentence", UPLOAD_SENTENCE), ("question", f"What is the {UPLOAD_MARKER}?")):
        hits = assistant.search(question, k=RANK_DEPTH)
        ranks[name] = next((i for i, h in enumerate(hits) if h.document == UPLOAD), None)
    return {"cold_start_to_first_answer_s": round(cold, 3), "search_s": percentiles(searches),
            "ask_s": percentiles(asks), "upload_sync_s": round(upload_sync, 3),
            "upload_sync_passages": report.passages,
            "upload_to_answerable_s": round(answerable, 4),
            "upload_found": found,
            "upload_passages_stored": len(stored),
            "upload_rank": ranks,  # 0-based rank of the upload among the hits (None: not in the first RANK_DEPTH)
            "worker_rss_gb": round(_rss_bytes() / 2 ** 30, 3),
            "worker_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 3)}


def _partial(**figures) -> None:
    # Figures as soon as they are known, on stderr: a worker stopped by a time limit still reports what it measured.
    print("partial " + json.dumps(figures), file=sys.stderr, flush=True)


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_worker(base: Path, model: str, queries: int, seed: int, mirror: Path) -> dict:
    config = {"base": str(base), "model": model, "queries": queries, "seed": seed, "mirror": str(mirror),
              "started": time.time()}
    # The worker's stderr is ours: its partial figures show up live, even if a time limit stops both of us.
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)],
                            stdout=subprocess.PIPE, text=True, timeout=3600,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if result.returncode != 0:
        raise SystemExit(f"the worker failed with exit code {result.returncode} (its errors are above)")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- one size ---

def run_size(size: int, args, work: Path, english, chinese, chars, raw_rate: float | None) -> dict:
    from assistant.store import IndexStore
    from assistant.sync import sync

    base = work / f"size-{size}"
    rng = random.Random(args.seed + size)
    n_documents = max(1, round(size / PASSAGES_PER_DOCUMENT))
    resumed = args.resume and (base / "corpus").is_dir()
    if not resumed:
        shutil.rmtree(base, ignore_errors=True)
        build_corpus(base / "corpus", n_documents, chars(), rng, english, chinese, show_progress=True)
    settings = make_settings(base)
    embedder = make_embedder(settings, args.model)

    first = sync(settings, embedder, IndexStore(settings, embedder.model_id), show_progress=True)
    rate = first.passages / first.seconds if first.seconds else None
    calls = embedder.calls
    noop = sync(settings, embedder, IndexStore(settings, embedder.model_id), show_progress=False)
    served = {} if args.ingest_only else run_worker(base, args.model, args.queries, args.seed, args.mirror)
    lexical = lexical_figures(size, work, english, chinese, rng, args.queries) if args.lexical and not args.ingest_only \
        else {}
    result = {
        "size": size, "model": args.model, "documents": n_documents, "passages": first.passages,
        "resumed": resumed,  # ingest figures then cover only what the earlier, stopped run left to do
        "failed": len(first.failed),
        "ingest_s": first.seconds, "ingest_passages_per_s": round(rate, 1) if rate else None,
        "model_raw_passages_per_s": round(raw_rate, 2) if raw_rate else None,
        "ingest_to_raw_model_ratio": round(rate / raw_rate, 2) if rate and raw_rate else None,
        "noop_sync_s": noop.seconds, "noop_sync_embedded": embedder.calls - calls,
        **served,
        "index_bytes": disk_bytes(settings.index_dir),
        **({"search_after_update_over_warm_p50": round(served["upload_to_answerable_s"] / served["search_s"]["p50"], 2)}
           if served else {}),
        **lexical,
    }
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return result


def summary_line(r: dict) -> str:
    ratio = f" ({r['ingest_to_raw_model_ratio']}× the model's raw rate)" if r["ingest_to_raw_model_ratio"] else ""
    line = (f"{r['passages']:>8} passages | ingest {r['ingest_passages_per_s']}/s{ratio} | no-op sync "
            f"{r['noop_sync_s']} s")
    if "search_s" in r:
        line += (f" | cold start→answer {r['cold_start_to_first_answer_s']} s | search p50/p95 {r['search_s']['p50']}/"
                 f"{r['search_s']['p95']} s | ask p50/p95 {r['ask_s']['p50']}/{r['ask_s']['p95']} s | upload→answerable "
                 f"{r['upload_to_answerable_s']} s (found: {r['upload_found']}, rank {r['upload_rank']}) | worker RSS "
                 f"{r['worker_rss_gb']} GB")
    line += f" | index {r['index_bytes'] / 2 ** 20:.0f} MiB"
    if "lexical_bytes" in r:
        line += (f" | lexical add {r['lexical_add_passages_per_s']}/s, search p50/p95 {r['lexical_search_s']['p50']}/"
                 f"{r['lexical_search_s']['p95']} s, {r['lexical_bytes'] / 2 ** 20:.0f} MiB")
    return line


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.mirror = (args.mirror or Path(os.environ.get("ASSISTANT_CORPUS_MIRROR") or REPO.parent / "shared" / "corpus"))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    english, chinese = sample_sentences(args.mirror)
    print(f"sampled {len(english)} English and {len(chinese)} Chinese sentences from {args.mirror}", file=sys.stderr)
    calibrated: list[int] = []

    def chars() -> int:
        if not calibrated:
            calibrated.append(chars_per_document(work, rng, english, chinese, args.model))
        return calibrated[0]

    from assistant.settings import Settings

    raw_rate = args.raw_rate
    if raw_rate is None and args.raw_sample:
        raw_rate = raw_encode_rate(Settings(), english, chinese, args.raw_sample, rng)
        print(f"model raw encode rate: {raw_rate:.1f} passages/s ({Settings().embedding_model}, "
              f"{Settings().device})", file=sys.stderr)
    results = []
    try:
        for size in sizes:
            started = time.perf_counter()
            result = run_size(size, args, work, english, chinese, chars, raw_rate)
            result["wall_s"] = round(time.perf_counter() - started, 1)
            results.append(result)
            print(summary_line(result), file=sys.stderr)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    output = {"model": args.model, "machine": {"cpus": os.cpu_count()}, "results": results}
    if args.out:
        args.out.write_text(json.dumps(output, indent=2))
    if args.json:
        print(json.dumps(output, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
