"""The embedded engine's own write ceiling: a plain Chroma collection, N random vectors, max-size batches.

The sync's ingest rate (bench/scale.py, bench/ingest.py --standin) is bounded by what Chroma itself can write on this
machine; this measures that bound with nothing of the assistant around it: random unit vectors, a minimal metadata
row (a document id and a version, the two keys the store filters on) or none, ``upsert`` or ``add`` in batches of the
client's ``get_max_batch_size()``, and the HNSW configuration given on the command line.

    python bench/chroma_ceiling.py --rows 20000 --json
    python bench/chroma_ceiling.py --rows 20000 --hnsw '{"space": "cosine", "batch_size": 5000}'
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--rows", type=int, default=20_000, help="rows to write (default 20,000)")
    parser.add_argument("--dimension", type=int, default=768, help="vector size (default 768, EmbeddingGemma's)")
    parser.add_argument("--metadata", choices=["minimal", "none", "passage"], default="minimal",
                        help="minimal: document and version keys; none: no metadata; passage: the store's passage "
                             "row (document, version, language, text of ~600 characters, one packed key)")
    parser.add_argument("--hnsw", default='{"space": "cosine", "ef_construction": 200, "ef_search": 200}',
                        help="the collection's HNSW configuration, as JSON (default: the store's)")
    parser.add_argument("--batch", type=int, help="rows per write (default: the client's max batch size)")
    parser.add_argument("--add", action="store_true", help="add instead of upsert")
    parser.add_argument("--workdir", type=Path, help="where the index goes (default: a temp dir, removed)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    work = args.workdir or Path(tempfile.mkdtemp(prefix="chroma-ceiling-"))
    try:
        client = chromadb.PersistentClient(path=str(work), settings=ChromaSettings(anonymized_telemetry=False))
        collection = client.create_collection("ceiling", configuration={"hnsw": json.loads(args.hnsw)})
        batch = args.batch or client.get_max_batch_size()
        rng = np.random.default_rng(11)
        text = "The plan sponsor shall act prudently. " * 16
        write = collection.add if args.add else collection.upsert
        cpu, started, spent = time.process_time(), time.perf_counter(), 0.0
        for first in range(0, args.rows, batch):
            n = min(batch, args.rows - first)
            vectors = rng.standard_normal((n, args.dimension), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = [f"doc{(first + i) // 20:07d}.md:v1:{(first + i) % 20}" for i in range(n)]
            metadatas = None
            if args.metadata != "none":
                metadatas = [{"document": i.split(":")[0], "version": "v1"} for i in ids]
            if args.metadata == "passage":
                for m in metadatas:
                    m.update(language="en", text=text, x=json.dumps({"s": 0, "e": 600, "p": None, "t": "Report",
                                                                    "c": "", "h": "0" * 32}))
            t0 = time.perf_counter()
            write(ids=ids, embeddings=vectors, metadatas=metadatas)
            spent += time.perf_counter() - t0
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        result = {"rows": args.rows, "dimension": args.dimension, "metadata": args.metadata, "batch": batch,
                  "hnsw": json.loads(args.hnsw), "write": "add" if args.add else "upsert",
                  "rows_per_s": round(args.rows / spent, 1), "rows_per_cpu_s": round(args.rows / cpu, 1),
                  "write_s": round(spent, 2), "wall_s": round(wall, 2), "cpus": os.cpu_count(),
                  "load_average": os.getloadavg()[0]}
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{result['rows']} rows of {args.dimension} dims ({args.metadata} metadata, {result['write']} × {batch}): "
          f"{result['rows_per_s']} rows/s, {result['rows_per_cpu_s']} rows per CPU second", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
