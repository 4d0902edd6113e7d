"""Claim grading: fit its thresholds, measure its quality and its speed.

    python bench/grade.py fit      # fit on the dev split of eval/claims.jsonl; save params + metrics (dev, test)
    python bench/grade.py sample   # grade eval/answers_sample.jsonl against its expected labels
    python bench/grade.py speed    # grade 1,000 answers of ~3 claims: claims/s against the model's raw encode rate

Uses the index of the current settings (ASSISTANT_* variables; `assistant index` first, or pass --sync). The fit
tries both model prompts for claims (query, document) and a grid of thresholds on the dev split only, then reports
precision and recall of conflicting, not_found and both together on dev and test separately, and counts supported
claims reported conflicting for a number written differently (kind format_variant: must be 0). It saves the
chosen parameters with those metrics in assistant/evaluate/claims_calibration.json under the model's name.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from itertools import product
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.claims import CHECKS  # noqa: E402
from assistant.evaluate.grade import CALIBRATION, ClaimGrader, GradeParams, decide, score_candidates  # noqa: E402

LABELS = ("supported", "conflicting", "not_found")


def _assistant(sync: bool):
    from assistant.pipeline import Assistant

    assistant = Assistant()
    if sync or not assistant.store.documents():
        assistant.sync(show_progress=True)
    return assistant


def metrics(predicted: list[str], labels: list[str]) -> dict:
    """Accuracy, precision and recall per verdict, and of conflicting + not_found taken together ("flagged")."""
    out: dict = {"n": len(labels), "accuracy": round(float(np.mean([p == g for p, g in zip(predicted, labels)])), 4)}

    def pr(pred_set, gold_set) -> dict:
        tp = sum(p in pred_set and g in gold_set for p, g in zip(predicted, labels))
        predicted_n = sum(p in pred_set for p in predicted)
        gold_n = sum(g in gold_set for g in labels)
        return {"precision": round(tp / predicted_n, 4) if predicted_n else None,
                "recall": round(tp / gold_n, 4) if gold_n else None, "support": gold_n}

    for label in LABELS:
        out[label] = pr({label}, {label})
    out["flagged"] = pr({"conflicting", "not_found"}, {"conflicting", "not_found"})
    out["confusion"] = {g: dict(Counter(p for p, gg in zip(predicted, labels) if gg == g)) for g in LABELS}
    return out


def objective(m: dict, format_conflicts: int = 0) -> float:
    """What the fit maximises: the worst of the precisions and recalls that the targets name, then their mean and
    accuracy; each supported claim reported conflicting for a number written differently costs 0.1."""
    values = [m[k][x] or 0.0 for k in ("conflicting", "not_found", "flagged") for x in ("precision", "recall")]
    return min(values) + 0.5 * sum(values) / len(values) + 0.25 * m["accuracy"] - 0.1 * format_conflicts


def _score(scored, rows, labels, indices, params) -> float:
    predicted = [decide(scored[i], params)[0] for i in indices]
    format_conflicts = sum(p == "conflicting" and rows[i]["kind"] == "format_variant" and labels[i] == "supported"
                           for p, i in zip(predicted, indices))
    return objective(metrics(predicted, [labels[i] for i in indices]), format_conflicts)


def _claim_vectors(grader: ClaimGrader, texts: list[str], cache: Path | None) -> tuple[np.ndarray, float]:
    """The claims' vectors with the grader's prompt; with ``cache``, kept in a file keyed by model, prompt and texts
    (so a fit can be rerun, or the claims embedded while the index is still being built)."""
    import hashlib

    key = hashlib.sha256(json.dumps([grader.embedder.model_id, grader.params.prompt, texts]).encode()).hexdigest()[:16]
    path = cache / f"claims-{key}.npy" if cache else None
    if path is not None and path.is_file():
        return np.load(path), 0.0
    started = time.perf_counter()
    vectors = grader.embed_claims(texts)
    seconds = time.perf_counter() - started
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors, seconds


def _features(grader: ClaimGrader, rows: list[dict], prompt: str, candidates: int, cache: Path | None = None):
    grader.params = GradeParams(prompt=prompt, candidates=candidates)
    versions = grader.versions()
    vectors, embed_s = _claim_vectors(grader, [r["claim"] for r in rows], cache)
    scored = [score_candidates(r["claim"], grader.candidates(v, versions)) for r, v in zip(rows, vectors)]
    return scored, embed_s


def _grid():
    for support, conflict, agree, lexical in product(np.arange(0.30, 0.86, 0.01), np.arange(0.30, 0.86, 0.03),
                                                     (0.0, 0.1, 0.2), (0.0, 0.15, 0.3)):
        yield round(float(support), 3), round(float(conflict), 3), agree, lexical


def fit(args) -> dict:
    rows = [json.loads(line) for line in args.claims.read_text(encoding="utf-8").splitlines() if line.strip()]
    dev = [i for i, r in enumerate(rows) if r["split"] == "dev"]
    test = [i for i, r in enumerate(rows) if r["split"] == "test"]
    labels = [r["label"] for r in rows]
    if args.embed_only:  # fill the cache of claim vectors; needs the model, not the index
        from assistant.embed import Embedder
        from assistant.settings import get_settings

        grader = ClaimGrader(Embedder(get_settings()), None, lambda _: None, dict)
        for prompt in ("query", "document"):
            grader.params = GradeParams(prompt=prompt)
            _claim_vectors(grader, [r["claim"] for r in rows], args.cache)
        return {"embedded": len(rows), "cache": str(args.cache)}
    assistant = _assistant(args.sync)
    grader = ClaimGrader.for_assistant(assistant)
    model = assistant.embedder.model_id.split("@", 1)[0]
    results = {}
    for prompt in ("query", "document"):
        scored, embed_s = _features(grader, rows, prompt, args.candidates, args.cache)
        best = None
        for support, conflict, agree, lexical in _grid():
            params = GradeParams(support=support, conflict=conflict, wording=conflict, agree=agree, lexical=lexical,
                                 prompt=prompt, candidates=args.candidates)
            score = _score(scored, rows, labels, dev, params)
            if best is None or score > best[0]:
                best = (score, params)
        # Then the closeness names and negation need (wording varies more than values), then drop any kind of fact
        # check whose removal improves the dev objective (greedy, one at a time).
        score, params = best
        for wording in np.arange(params.conflict, 1.0, 0.02):
            trial = GradeParams(**{**params.__dict__, "wording": round(float(wording), 3)})
            trial_score = _score(scored, rows, labels, dev, trial)
            if trial_score > score:
                score, params = trial_score, trial
        for kind in CHECKS:
            trial = GradeParams(**{**params.__dict__, "checks": tuple(k for k in params.checks if k != kind)})
            trial_score = _score(scored, rows, labels, dev, trial)
            if trial_score > score:
                score, params = trial_score, trial
        predicted = [decide(s, params)[0] for s in scored]
        results[prompt] = {
            "params": params.as_dict(), "objective_dev": round(score, 4),
            "dev": metrics([predicted[i] for i in dev], [labels[i] for i in dev]),
            "test": metrics([predicted[i] for i in test], [labels[i] for i in test]),
            "format_variants_reported_conflicting": sum(
                1 for r, p in zip(rows, predicted) if r["kind"] == "format_variant" and p == "conflicting"),
            "embed_seconds": round(embed_s, 2),
        }
        print(f"prompt={prompt}: dev objective {score:.4f}", json.dumps(results[prompt]["params"]), file=sys.stderr)
    chosen = max(results, key=lambda p: results[p]["objective_dev"])
    entry = {**results[chosen], "prompt_comparison": {p: r["objective_dev"] for p, r in results.items()},
             "claims_file": str(args.claims.relative_to(REPO) if args.claims.is_relative_to(REPO) else args.claims),
             "fitted_on": "dev split", "model_id": assistant.embedder.model_id,
             "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not args.dry_run:
        saved = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
        saved.setdefault("models", {})[model] = entry
        args.out.write_text(json.dumps(saved, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return {"model": model, "chosen_prompt": chosen, **entry,
            "other_prompt": {p: {k: r[k] for k in ("dev", "test", "params")} for p, r in results.items() if p != chosen}}


def _sentence_verdict(verdicts: list[str]) -> str:
    return "conflicting" if "conflicting" in verdicts else "not_found" if "not_found" in verdicts else "supported"


def sample(args) -> dict:
    """Grade the sample answers and compare with their expected per-sentence labels and citation statuses."""
    from assistant.evaluate import load_items, run_evaluation

    assistant = _assistant(args.sync)
    items, malformed = load_items(args.answers)
    run = run_evaluation(assistant, items)
    expected = {json.loads(line)["id"] if "id" in json.loads(line) else f"line-{n}": json.loads(line)["expected"]
                for n, line in enumerate(args.answers.read_text(encoding="utf-8").splitlines(), start=1) if line.strip()}
    predicted, gold, cite_predicted, cite_gold = [], [], [], []
    for result in run.results:
        want = expected.get(result.id)
        if want is None:
            continue
        for sentence in want["sentences"]:
            at = result.answer.find(sentence["text"].rstrip(".。"))
            inside = [c.verdict for c in result.claims
                      if at >= 0 and c.start < at + len(sentence["text"]) and c.end > at]
            predicted.append(_sentence_verdict(inside) if inside else "not_found")
            gold.append(sentence["label"])
        for check, citation in zip(result.cited, want.get("citations", [])):
            cite_predicted.append(check.status)
            cite_gold.append(citation["status"])
    cite_accuracy = float(np.mean([p == g for p, g in zip(cite_predicted, cite_gold)])) if cite_gold else None
    return {"answers": len(run.results), "malformed": len(malformed), "sentences": metrics(predicted, gold),
            "citations": {"n": len(cite_gold), "accuracy": cite_accuracy,
                          "confusion": {g: dict(Counter(p for p, gg in zip(cite_predicted, cite_gold) if gg == g))
                                        for g in sorted(set(cite_gold))}},
            "summary": run.summary.overall.model_dump(include={"claims", "claim_support", "conflicting_claims",
                                                                "citation_validity"})}


def speed(args) -> dict:
    """Grading rate against raw encoding: 1,000 answers of three claims each, built from the labelled claims."""
    from assistant.evaluate import run_evaluation
    from assistant.evaluate.models import EvalItem

    rows = [json.loads(line) for line in args.claims.read_text(encoding="utf-8").splitlines() if line.strip()]
    claims = [r["claim"].rstrip(".。") + ("。" if r["lang"] == "zh" else ".") for r in rows]
    items = []
    for n in range(args.answers):
        picked = [claims[(3 * n + j) % len(claims)] for j in range(3)]
        items.append(EvalItem(id=f"a{n}", question="", given_answer=" ".join(picked)))
    assistant = _assistant(args.sync)
    grader = ClaimGrader.for_assistant(assistant)
    embedder = assistant.embedder
    embedder.embed_queries(["warm-up"])
    from assistant.claims import split_claims

    texts = [c.plain for item in items for c in split_claims(item.given_answer or "")]
    prompt = embedder.query_prompt if grader.params.prompt == "query" else ""
    inputs = ([prompt + t for t in texts] if grader.params.prompt == "query"
              else [embedder.document_template.format(title="none", text=t) for t in texts])
    started = time.perf_counter()
    embedder.model.encode(inputs, batch_size=embedder.batch_size, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=False)
    raw_s = time.perf_counter() - started
    from tqdm import tqdm

    bar = tqdm(total=len(items), unit="answer", disable=not args.progress)
    started = time.perf_counter()
    run = run_evaluation(assistant, items, grader=grader, on_result=lambda r: bar.update(1))
    grade_s = time.perf_counter() - started
    bar.close()
    graded = sum(r.metrics.claims for r in run.results)
    return {"answers": len(items), "claims": graded, "prompt": grader.params.prompt,
            "raw_encode_claims_per_s": round(len(texts) / raw_s, 2), "grading_claims_per_s": round(graded / grade_s, 2),
            "ratio": round((graded / grade_s) / (len(texts) / raw_s), 3), "grading_seconds": round(grade_s, 1),
            "raw_encode_seconds": round(raw_s, 1), "model_id": embedder.model_id}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fit", "sample", "speed"):
        p = sub.add_parser(name)
        p.add_argument("--claims", type=Path, default=REPO / "eval" / "claims.jsonl")
        p.add_argument("--answers", type=Path if name == "sample" else int,
                       default=REPO / "eval" / "answers_sample.jsonl" if name == "sample" else 1000)
        p.add_argument("--sync", action="store_true", help="sync the index first")
        p.add_argument("--candidates", type=int, default=8, help="nearest sentences per claim")
        p.add_argument("--out", type=Path, default=CALIBRATION, help="where fit saves the parameters")
        p.add_argument("--dry-run", action="store_true", help="fit without saving")
        p.add_argument("--no-progress", dest="progress", action="store_false")
        p.add_argument("--cache", type=Path, default=None, help="fit: folder keeping the claims' vectors")
        p.add_argument("--embed-only", action="store_true", help="fit: only embed the claims into --cache")
    args = parser.parse_args()
    result = {"fit": fit, "sample": sample, "speed": speed}[args.command](args)
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
