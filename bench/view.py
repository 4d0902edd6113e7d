"""Time to build a document view (GET /documents/{id}/view without HTTP) and a citation's links, per corpus document.

Each manifest document found in the corpus mirror is loaded and cleaned as the sync does (no model, no index), then viewed around
``--spans`` random sentence-sized spans (centred views, three spans at once) and paged through part by part.
Prints a table and, with --json, JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from api.routers.view import VIEW_CHARS, build_view, part_bounds
from assistant.cite import make_citation
from assistant.settings import Settings
from assistant.sources import read_manifest
from assistant.sync import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", type=Path, default=None, help="corpus folder (default: settings.corpus_mirror)")
    parser.add_argument("--spans", type=int, default=50, help="random spans viewed per document")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    settings = Settings()
    mirror = args.mirror or settings.corpus_mirror
    files = {s.file: mirror / s.file for s in read_manifest(settings) if (mirror / s.file).is_file()}
    rng = random.Random(0)
    rows = []
    for doc_id, path in sorted(files.items()):
        try:
            document, _ = prepare(path, doc_id, settings)
        except Exception:  # noqa: BLE001 - files the sync would refuse are not viewed either
            continue
        n = len(document.text)
        spans = []
        for _ in range(args.spans):
            start = rng.randrange(0, max(1, n - 200))
            spans.append((start, min(n, start + rng.randint(40, 200))))
        views, cites = [], []
        for i in range(0, len(spans) - 2, 1):
            t0 = time.perf_counter()
            build_view(document, spans[i:i + 3], 0, None, VIEW_CHARS)
            views.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            make_citation(document, 1, *spans[i])
            cites.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        parts = len(part_bounds(document.text, VIEW_CHARS)) - 1
        for part in range(parts):
            build_view(document, [], None, part, VIEW_CHARS)
        paging = (time.perf_counter() - t0) / max(parts, 1)
        rows.append({"document": doc_id, "chars": n, "parts": parts,
                     "view_p50_ms": round(statistics.median(views) * 1000, 2),
                     "view_max_ms": round(max(views) * 1000, 2),
                     "part_mean_ms": round(paging * 1000, 2),
                     "citation_p50_ms": round(statistics.median(cites) * 1000, 3)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'document':60} {'chars':>8} {'parts':>5} {'view p50':>9} {'max':>7} {'part':>7} {'cite p50':>9}  (ms)")
    for r in rows:
        print(f"{r['document'][:60]:60} {r['chars']:>8} {r['parts']:>5} {r['view_p50_ms']:>9} {r['view_max_ms']:>7} "
              f"{r['part_mean_ms']:>7} {r['citation_p50_ms']:>9}")


if __name__ == "__main__":
    main()
