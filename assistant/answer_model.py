"""The answer model: one logistic regression over named features of a candidate sentence.

It gives, for each candidate sentence, the probability that the sentence answers the question. The best candidate's
probability is the answer's ``confidence``; below the threshold the assistant abstains. Weights and threshold are fit
on the DEV split of the eval set only, by one command, and saved with the metrics of the fit:

    python -m assistant.answer_model fit                       # eval/questions.jsonl, writes assistant/answer_model.json
    python -m assistant.answer_model fit --help

The threshold is the highest one that keeps false abstention on dev answerable questions at or below the target
(3%). The fit uses the assistant as configured (its embedding model and index), so fit with the model you serve.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.answer_types import QuestionAnalysis, pos_tags, sentence_types, type_match
from assistant.clean import detect_language
from assistant.retrieve import tokenize

MODEL_PATH = Path(__file__).with_name("answer_model.json")
FORMAT_VERSION = 1

FEATURES = (
    "cosine",  # query–sentence cosine, from the stored sentence vector
    "cosine_gap",  # cosine minus the best candidate's: how far behind the best sentence this one is
    "cosine_rank_inv",  # 1 / (1 + rank by cosine)
    "passage_score",  # dense score of the sentence's passage among the retrieved passages (0 when not retrieved)
    "passage_rank_inv",  # 1 / (1 + rank of its passage), 0 when its passage was not retrieved
    "top_passage_score",  # dense score of the best retrieved passage: how on-topic the corpus is at all
    "overlap",  # idf-weighted share of the question's words in the sentence (with its heading)
    "passage_overlap",  # the same over the whole passage and its title
    "type_asked",  # the question asks for a kind of fact (date, amount, share, name...)
    "type_match",  # share of the question's parts whose kind of fact the sentence holds
    "type_miss",  # a kind of fact is asked and the sentence holds none of it
    "numbers_missing",  # share of the question's numbers (years, section numbers...) absent from the evidence
    "names_missing",  # share of the question's names (capitalised words, acronyms, Chinese proper nouns) absent
    "position_inv",  # 1 / (1 + position of the sentence in its passage)
    "heading_like",  # short and without end punctuation: names a topic rather than stating a fact
    "cross_language",  # the sentence is in another language than the question
    "length",  # log length of the sentence
)

_END = tuple(".。!?！？;；:：")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LATIN_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b(?:[A-Z][a-zA-Z]+|[A-Z]{2,}[a-z]?)\b|\b\w*\d\w*\([a-z]\)")
_ZH_NAME_FLAGS = {"nr", "nrfg", "nrt", "ns", "nt", "nz"}


@dataclass
class Candidate:
    """A sentence that might answer the question, with where it came from."""

    sentence_id: str
    document: str
    chunk_id: str
    start: int
    end: int
    text: str
    language: str
    position: int
    context: str
    title: str
    cosine: float
    passage_text: str = ""  # "" when the sentence came from the sentence index and its passage was not retrieved
    passage_score: float = 0.0
    passage_rank: int | None = None
    features: dict[str, float] = field(default_factory=dict)
    types: set[str] = field(default_factory=set)
    probability: float = 0.0


def idf_overlap(query_tokens: set[str], text: str, idf: dict[str, float]) -> float:
    """idf-weighted share of the query's words that occur in ``text``."""
    if not query_tokens:
        return 0.0
    weight = (lambda t: max(idf.get(t, 1.0), 0.1)) if idf else (lambda t: 1.0)
    mass = sum(weight(t) for t in query_tokens) or 1.0
    return sum(weight(t) for t in query_tokens & set(tokenize(text))) / mass


def question_numbers(question: str) -> set[str]:
    return set(_NUMBER.findall(question))


def question_names(question: str) -> set[str]:
    """Names the question pins down: capitalised words not opening it, acronyms, "401(k)"-like codes; Chinese
    proper nouns (jieba's person, place, organisation and other proper-noun tags)."""
    names = {m.group(0) for m in _LATIN_NAME.finditer(question.strip())}
    if detect_language(question) == "zh":
        names |= {w for w, flag in pos_tags(question) if flag in _ZH_NAME_FLAGS and len(w) >= 2}
    return names


def missing_share(items: set[str], evidence: str) -> float:
    if not items:
        return 0.0
    low = evidence.lower()
    return sum(1 for item in items if item.lower() not in low) / len(items)


def featurize(analysis: QuestionAnalysis, question: str, candidates: list[Candidate], top_passage_score: float,
              idf: dict[str, float]) -> None:
    """Fill in ``features`` (and ``types``) of every candidate of one question."""
    if not candidates:
        return
    query_tokens = set(tokenize(question))
    numbers, names = question_numbers(question), question_names(question)
    reader = detect_language(question)
    best = max(c.cosine for c in candidates)
    by_cosine = {id(c): rank for rank, c in enumerate(sorted(candidates, key=lambda c: -c.cosine))}
    asked = bool(analysis.types)
    for c in candidates:
        c.types = sentence_types(c.text)
        match = type_match(analysis, c.types)
        evidence = f"{c.title}\n{c.context}\n{c.passage_text or c.text}"
        c.features = {
            "cosine": c.cosine,
            "cosine_gap": c.cosine - best,
            "cosine_rank_inv": 1.0 / (1 + by_cosine[id(c)]),
            "passage_score": c.passage_score,
            "passage_rank_inv": 0.0 if c.passage_rank is None else 1.0 / (1 + c.passage_rank),
            "top_passage_score": top_passage_score,
            "overlap": idf_overlap(query_tokens, f"{c.context}\n{c.text}", idf),
            "passage_overlap": idf_overlap(query_tokens, evidence, idf),
            "type_asked": float(asked),
            "type_match": match,
            "type_miss": float(asked and match == 0.0),
            "numbers_missing": missing_share(numbers, evidence),
            "names_missing": missing_share(names, evidence),
            "position_inv": 1.0 / (1 + c.position),
            "heading_like": float(len(c.text) < 60 and not c.text.rstrip().endswith(_END)),
            "cross_language": float(c.language != reader),
            "length": math.log1p(len(c.text)) / 6.0,
        }


@dataclass
class AnswerModel:
    """Logistic regression weights over FEATURES (standardised), the abstention threshold, and the fit's metrics."""

    weights: dict[str, float]
    bias: float
    mean: dict[str, float]
    scale: dict[str, float]
    threshold: float
    metrics: dict = field(default_factory=dict)
    version: int = FORMAT_VERSION

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(w * (features.get(name, 0.0) - self.mean.get(name, 0.0)) / (self.scale.get(name, 1.0) or 1.0)
                            for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def score(self, candidates: list[Candidate]) -> None:
        for c in candidates:
            c.probability = self.probability(c.features)

    @classmethod
    def unfitted(cls) -> AnswerModel:
        """Before the first fit: rank by cosine alone and never abstain (the fit replaces it)."""
        return cls(weights={"cosine": 1.0}, bias=0.0, mean={}, scale={}, threshold=0.0, metrics={"fitted": False})

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerModel:
        path = Path(path or MODEL_PATH)
        if not path.is_file():
            return cls.unfitted()
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: answer model format {data.get('version')}, expected {FORMAT_VERSION}; "
                             "re-fit it with `python -m assistant.answer_model fit`")
        return cls(weights=data["weights"], bias=data["bias"], mean=data["mean"], scale=data["scale"],
                   threshold=data["threshold"], metrics=data.get("metrics", {}), version=data["version"])

    def save(self, path: Path = MODEL_PATH) -> None:
        data = {"version": self.version, "features": list(self.weights), "weights": self.weights, "bias": self.bias,
                "mean": self.mean, "scale": self.scale, "threshold": self.threshold, "metrics": self.metrics}
        Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# --- fitting -----------------------------------------------------------------------------------------------------------


def answers_reference(text: str, contexts: Sequence[str]) -> bool:
    """Whether a sentence is (part of) the labelled answering text: one contains the other, or they share a long run."""
    from difflib import SequenceMatcher

    from assistant.evaluate.metrics import squash

    sentence = squash(text)
    for context in contexts:
        ref = squash(context)
        if not ref or not sentence:
            continue
        if ref in sentence or (len(sentence) >= 8 and sentence in ref):
            return True
        match = SequenceMatcher(None, sentence, ref, autojunk=False).find_longest_match()
        if match.size >= max(8, 0.5 * min(len(ref), len(sentence))):
            return True
    return False


def threshold_for(best_answerable: Sequence[float], max_false_abstention: float) -> float:
    """The highest threshold that abstains on at most ``max_false_abstention`` of the answerable questions."""
    if not best_answerable:
        return 0.5
    ranked = sorted(best_answerable)
    allowed = int(math.floor(max_false_abstention * len(ranked)))
    # abstaining means probability < threshold: the threshold may sit just above the ``allowed`` lowest ones
    return float(ranked[allowed]) - 1e-9 if allowed < len(ranked) else float(ranked[-1])


def fit(rows: list[tuple[list[dict[str, float]], list[bool], bool]], max_false_abstention: float = 0.03,
        c: float = 1.0) -> AnswerModel:
    """Fit on ``rows`` = (candidate features, labels, answerable) per question."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    X = np.array([[f[name] for name in FEATURES] for feats, _, _ in rows for f in feats], dtype=np.float64)
    y = np.array([label for _, labels, _ in rows for label in labels], dtype=int)
    if len(set(y.tolist())) < 2:
        raise ValueError("the fit needs both answering and non-answering candidate sentences")
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    lr.fit((X - mean) / scale, y)
    model = AnswerModel(weights={n: float(w) for n, w in zip(FEATURES, lr.coef_[0])}, bias=float(lr.intercept_[0]),
                        mean={n: float(v) for n, v in zip(FEATURES, mean)},
                        scale={n: float(v) for n, v in zip(FEATURES, scale)}, threshold=0.5)
    p = lr.predict_proba((X - mean) / scale)[:, 1]
    best = [max((model.probability(f) for f in feats), default=0.0) for feats, _, _ in rows]
    best_answerable = [b for b, (_, _, answerable) in zip(best, rows) if answerable]
    best_unanswerable = [b for b, (_, _, answerable) in zip(best, rows) if not answerable]
    model.threshold = threshold_for(best_answerable, max_false_abstention)
    top_correct = [labels[int(np.argmax([model.probability(f) for f in feats]))] if feats else False
                   for feats, labels, answerable in rows if answerable]
    model.metrics = {
        "split": "dev",
        "questions": len(rows),
        "answerable": len(best_answerable),
        "unanswerable": len(best_unanswerable),
        "candidates": int(len(y)),
        "positives": int(y.sum()),
        "sentence_auc": round(float(roc_auc_score(y, p)), 4),
        "sentence_log_loss": round(float(log_loss(y, p)), 4),
        "top_sentence_answers": round(sum(top_correct) / max(len(top_correct), 1), 4),
        "false_abstention_target": max_false_abstention,
        "false_abstention": round(sum(b < model.threshold for b in best_answerable) / max(len(best_answerable), 1), 4),
        "correct_abstention": round(sum(b < model.threshold for b in best_unanswerable) / max(len(best_unanswerable), 1),
                                    4),
        "C": c,
    }
    return model


def collect(assistant, items) -> list[tuple[list[dict[str, float]], list[bool], bool]]:
    """Candidate features and labels of each item, as the assistant would see them when answering."""
    from tqdm import tqdm

    rows = []
    for item in tqdm(items, desc="candidates", unit="question"):
        request = assistant.evidence(item.question, history=list(item.history))
        candidates = assistant.answerer.candidates(request)
        labels = [item.answerable and answers_reference(c.text, item.reference_contexts) for c in candidates]
        rows.append(([c.features for c in candidates], labels, item.answerable))
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m assistant.answer_model",
                                     description="Fit the answer model on the DEV split of an eval set.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit_parser = sub.add_parser("fit", help="fit weights and threshold on dev questions; write the model file")
    fit_parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"), help="eval set (JSONL)")
    fit_parser.add_argument("--out", type=Path, default=MODEL_PATH, help=f"model file (default {MODEL_PATH})")
    fit_parser.add_argument("--max-false-abstention", type=float, default=0.03,
                            help="false abstention allowed on dev answerable questions (default 0.03)")
    fit_parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength (default 1.0)")
    args = parser.parse_args(argv)

    from assistant.evaluate.loader import load_items
    from assistant.pipeline import Assistant

    items, malformed = load_items(args.questions)
    if malformed:
        parser.error(f"{args.questions}: {len(malformed)} malformed rows (first: line {malformed[0].line})")
    dev = [item for item in items if item.split == "dev"]
    if not dev:
        parser.error(f"{args.questions} has no dev questions")
    assistant = Assistant()
    model = fit(collect(assistant, dev), args.max_false_abstention, args.c)
    model.metrics["embedding_model"] = assistant.embedder.model_id
    model.metrics["questions_file"] = str(args.questions)
    model.save(args.out)
    print(json.dumps(model.metrics, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
