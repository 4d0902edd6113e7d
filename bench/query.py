"""Latency of search and of ask (extractive), split into query embedding, retrieval and composition.

Target (issue 8): ask p50 at most 1.5x the time of one query embedding (the floor: every answer needs one).
Uses the index of the current settings (run `assistant index` first). Prints a table and, with --json, JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from assistant.pipeline import Assistant
from assistant.schema import ChatTurn
from assistant.stats import percentile

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=REPO / "eval" / "questions.jsonl")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    items = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()][: args.limit]
    assistant = Assistant()
    assistant.ask("warm up", history=[])  # load the model, open the index, build BM25
    embed, search, ask, parts = [], [], [], {"embed": [], "retrieve": [], "compose": []}
    for item in items:
        question = item["question"]
        history = [ChatTurn(**t) for t in item.get("history", [])]
        t0 = time.perf_counter()
        assistant.embedder.embed_queries([question])
        embed.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assistant.search(question)
        search.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        answer = assistant.ask(question, history=history)
        ask.append(time.perf_counter() - t0)
        for key in parts:
            parts[key].append(answer.timings.get(key, 0.0))

    def stats(values: list[float]) -> dict:
        return {"p50_ms": round(1000 * statistics.median(values), 1), "p95_ms": round(1000 * percentile(values, 95), 1)}

    result = {
        "questions": len(items),
        "query_embedding": stats(embed),
        "search": stats(search),
        "ask": stats(ask),
        "ask_parts": {key: stats(values) for key, values in parts.items()},
        "ask_p50_over_embedding_p50": round(statistics.median(ask) / statistics.median(embed), 2),
        "target_ratio": 1.5,
    }
    if not args.json:
        for key in ("query_embedding", "search", "ask"):
            print(f"{key:16s} p50 {result[key]['p50_ms']:8.1f} ms   p95 {result[key]['p95_ms']:8.1f} ms")
        for key, value in result["ask_parts"].items():
            print(f"  ask.{key:11s} p50 {value['p50_ms']:8.1f} ms   p95 {value['p95_ms']:8.1f} ms")
        print(f"ask p50 / embedding p50 = {result['ask_p50_over_embedding_p50']} (target <= 1.5)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
