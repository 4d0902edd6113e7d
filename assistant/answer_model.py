"""The answer model: two logistic regressions over named features, one to choose sentences, one to decide.

The sentence model gives, for each candidate sentence, the probability that it answers the question; it ranks the
candidates. The question model looks at the whole evidence the sentence model chose (its best probability and the
gap to the next, the best passage score, whether the asked kind of fact is in the evidence, how much of what the
question pins down — numbers, names, its rarest words — the evidence lacks...) and gives the probability that the
evidence answers the question: the answer's ``confidence``. Below its threshold the assistant abstains. Both are fit
on the DEV split of the eval set only, by one command, and saved with the metrics of the fit:

    python -m assistant.answer_model fit                       # eval/questions.jsonl, writes assistant/answer_model.json
    python -m assistant.answer_model fit --help

The question model is fit on out-of-fold sentence probabilities (each dev question scored by a sentence model fit
without it), and its threshold is the highest one that keeps false abstention on dev answerable questions at or
below the target (3%), measured on out-of-fold question probabilities. The fit uses the assistant as configured (its embedding model and index), so fit with the model you serve.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.answer_types import (
    YEAR_DIGITS,
    QuestionAnalysis,
    asks_for_name,
    personal_names,
    pos_tags,
    question_focus,
    sentence_types,
    type_match,
)
from assistant.bilingual import matched_words
from assistant.clean import detect_language
from assistant.retrieve import tokenize
from assistant.sentences import SentenceHit
from assistant.table_query import without_operation

MODEL_PATH = Path(__file__).with_name("answer_model.json")
FORMAT_VERSION = 4  # 3: the sentence model's threshold is the near-tie ratio; 4: the on-topic floor is fit with them

FEATURES = (
    "cosine",  # query–sentence cosine, from the stored sentence vector
    "cosine_gap",  # cosine minus the best candidate's: how far behind the best sentence this one is
    # the same gap measured from the question alone: a follow-up's query carries the previous question too, and the
    # sentence that answered that one stays close to the query while the follow-up asks something else
    "question_cosine_gap",
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
    "years_missing",  # share of the question's years absent from the sentence itself (a table row of another year)
    "names_missing",  # share of the question's names (capitalised words, acronyms, Chinese proper nouns) absent
    "position_inv",  # 1 / (1 + position of the sentence in its passage)
    "heading_like",  # short and without end punctuation: names a topic rather than stating a fact
    "cross_language",  # the sentence is in another language than the question
    "length",  # log length of the sentence
)

QUESTION_FEATURES = (
    "best_probability",  # the sentence model's probability of the best candidate
    "probability_gap",  # best minus second best: one clear answer or several equally weak ones
    "best_cosine",  # the highest query–sentence cosine among the candidates
    "top_passage_score",  # dense score of the best retrieved passage
    "type_asked",  # the question asks for a kind of fact
    "type_present",  # share of the question's parts whose kind of fact the best sentence holds
    "numbers_missing",  # share of the question's numbers absent from the best sentence and its passage
    "names_missing",  # share of the question's names absent from the best sentence and its passage
    "keyword_coverage",  # idf-weighted share of the question's words in the best sentence (with its heading)
    "passage_keyword_coverage",  # the same over all retrieved passages
    "max_missing_idf",  # idf of the rarest question word that no retrieved passage holds (0: none missing)
    # idf of the rarest question word the best sentence (with its heading) lacks: a near-topic question the corpus
    # does not answer shares its topic words with the best sentence but not the word that names what it asks
    "best_missing_idf",
    "passage_score_drop",  # best retrieved passage's score minus the last one's: one passage stands out, or none
    "cross_language",  # the best sentence is in another language than the question
    "chinese_question",  # the question is in Chinese
    "name_absent",  # the question asks for a name and the best sentence gives no personal name
    "focus_missing",  # share of the question's focus ("which company", "州长是谁") the best sentence lacks
)
EVIDENCE_SENTENCES = 3  # the answer length of a sentence model saved without its "sentence_limit"

_END = tuple(".。!?！？;；:：")
# a number: thousands in groups of three ("1,000"; "1950,35%" is two numbers, as a Chinese question may write them),
# and not the digits of an identifier such as a table's label ("表 E1,2023 年" names 2023, not "1,2023")
_NUMBER = re.compile(r"(?<![A-Za-z\d])\d+(?:,\d{3}(?!\d))*(?:\.\d+)?")
# four digits not inside a longer number (a thousands group has three digits, so "E1,2023" still names 2023), nor a
# share ("2020%") or a decade ("1950s")
YEAR = re.compile(rf"(?<![\d.]){YEAR_DIGITS}(?!\d|,\d{{3}}(?!\d)|%|s\b|['’]s)")
# "1930s", "1930’s", "1930 年代"; "上世纪 30 年代" and a bare "30 年代" (the 20th century unless 本世纪 says otherwise);
# "the '30s", "the 30s" (an age is "their 30s", not "the 30s")
DECADE_PATTERN = (r"(?<![\d.])(?<!\d,)(?P<full>1[6-9]\d|20\d)0(?:\s*年代|['’]?s\b)"
                  r"|(?:(?P<this_century>本世纪|21\s*世纪)|上个?世纪|20\s*世纪)?\s*(?<![\d.])(?P<short_zh>[1-9])0\s*年代"
                  r"|\bthe\s+['’]?(?P<short_en>[1-9])0s\b")
_DECADE = re.compile(DECADE_PATTERN, re.I)
_DECADE_ITEM = re.compile(r"(?:1[6-9]|20)\d0s")
_LATIN_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b(?:[A-Z][a-zA-Z]+|[A-Z]{2,}[a-z]?)\b|\b\w*\d\w*\([a-z]\)")
# a code such as "401(k)", "401k", "403b", "457(b)": the name of a plan or a provision, not a number the question
# pins down. Users write "401k" as often as the statutes write "401(k)", so both are the name "401(k)". A trailing
# "s" is a plural ("their 30s"), not a code.
_CODE = re.compile(r"(?<![\w.,])(\d+)(?:\(([a-z])\)|([a-rt-z]))(?![\w(])", re.I)
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
    question_cosine: float | None = None  # cosine to the question alone when the query added history; None: = cosine
    computed: bool = False  # a table row the question's computation picked (assistant/table_query.py), not the model
    features: dict[str, float] = field(default_factory=dict)
    types: frozenset[str] = frozenset()
    probability: float = 0.0

    @classmethod
    def of(cls, row: SentenceHit, cosine: float, **found) -> Candidate:
        """A stored sentence as a candidate: where it stands and what the index keeps with it, its cosine to the
        query, and what else was found with it (its passage, the cosine to the question alone)."""
        return cls(sentence_id=row.sentence_id, document=row.document, chunk_id=row.chunk_id, start=row.start,
                   end=row.end, text=row.text, language=row.language, position=row.position, context=row.context,
                   title=row.title, cosine=cosine, **found)


def idf_overlap(query_tokens: set[str], text: str | Sequence[str], idf: dict[str, float]) -> float:
    """idf-weighted share of the query's words that occur in ``text`` (one text or several)."""
    return idf_share(query_tokens, matched_words(query_tokens, text), idf) if query_tokens else 0.0


def idf_share(query_tokens: set[str], found: set[str], idf: dict[str, float]) -> float:
    """idf-weighted share of the query's words that are in ``found``."""
    if not query_tokens:
        return 0.0
    weight = (lambda t: max(idf.get(t, 1.0), 0.1)) if idf else (lambda t: 1.0)
    mass = sum(weight(t) for t in query_tokens) or 1.0
    return sum(weight(t) for t in found) / mass


def question_decades(question: str) -> tuple[set[str], str]:
    """The decades a question names, as "1930s" ("1930s", "1930’s", "1930 年代", "上世纪 30 年代", "the '30s"), and the
    question with them blanked out, so that "1930s" is not also read as the year 1930 or "30 年代" as the number 30."""
    decades: set[str] = set()

    def found(match: re.Match) -> str:
        decades.add(decade_of(match))
        return " "

    return decades, _DECADE.sub(found, question)


def decade_of(match: re.Match) -> str:
    """The decade a match of ``DECADE_PATTERN`` names, as "1930s" (a bare "30 年代" is of the 20th century)."""
    full, short_zh, short_en = match.group("full", "short_zh", "short_en")
    century = "20" if match.group("this_century") else "19"
    return f"{full}0s" if full else f"{century}{short_zh or short_en}0s"


def question_numbers(question: str) -> set[str]:
    """The numbers a question pins down, its decades as "1930s" (``holds_number``); not the digits of a code such as
    "401(k)" or "401k", which is a name (``question_names``)."""
    decades, rest = question_decades(question)
    return set(_NUMBER.findall(_CODE.sub(" ", rest))) | decades


def question_codes(question: str) -> set[str]:
    """The codes a question names, written as the statutes write them: "401k" and "401(K)" are "401(k)"."""
    return {f"{m.group(1)}({(m.group(2) or m.group(3)).lower()})" for m in _CODE.finditer(question)}


def question_years(question: str) -> set[str]:
    """The years a question pins down ("in 1984", "1990 年"), its decades as "1930s"; not amounts such as "1,984"."""
    decades, rest = question_decades(question)
    return set(YEAR.findall(rest)) | decades


def explicit_years(text: str) -> list[str]:
    """The years a text names, in order and once each ("in 1995", "2010 年"); not its decades, nor amounts such as
    "1,984" or shares such as "2020%"."""
    return list(dict.fromkeys(YEAR.findall(question_decades(text)[1])))


def holds_number(item: str, text: str) -> bool:
    """Whether ``text`` (lower case) holds a number, name or decade the question pins down. A decade is held by any
    year of it: "in the 1930s" is answered by "1935 年"; the end of the 1920s by 1929."""
    if _DECADE_ITEM.fullmatch(item):
        return re.search(rf"(?<![\d.,]){item[:3]}\d(?![\d%])", text) is not None
    return item.lower() in text


def question_names(question: str) -> set[str]:
    """Names the question pins down: capitalised words not opening it, acronyms, "401(k)"-like codes; Chinese
    proper nouns (jieba's person, place, organisation and other proper-noun tags)."""
    names = {m.group(0) for m in _LATIN_NAME.finditer(question.strip())} | question_codes(question)
    if detect_language(question) == "zh":
        names |= {w for w, flag in pos_tags(question) if flag in _ZH_NAME_FLAGS and len(w) >= 2}
    return names


def gives_a_name(text: str) -> bool:
    """Whether a sentence gives a personal name (``answer_types.personal_names``, English or Chinese)."""
    return bool(personal_names(text))


def missing_share(items: set[str], evidence: str) -> float:
    if not items:
        return 0.0
    low = evidence.lower()
    return sum(1 for item in items if not holds_number(item, low)) / len(items)


def missing_word_share(words: frozenset[str], texts: str | Sequence[str]) -> float:
    """Share of ``words`` that ``texts`` lack, in any number or translated (``bilingual.matched_words``)."""
    if not words:
        return 0.0
    return len(words - matched_words(words, texts)) / len(words)


def featurize(analysis: QuestionAnalysis, question: str, candidates: list[Candidate], top_passage_score: float,
              idf: dict[str, float]) -> None:
    """Fill in ``features`` (and ``types``) of every candidate of one question."""
    if not candidates:
        return
    query_tokens = set(tokenize(question))
    numbers, names, years = question_numbers(question), question_names(question), question_years(question)
    # a table row computed to answer "first exceed 800,000" or "the fewest" is past the bound or the lowest, without
    # holding 800,000 or "fewest"
    computed = without_operation(question) if any(c.computed for c in candidates) else question
    computed_tokens, computed_numbers = set(tokenize(computed)), question_numbers(computed)
    reader = detect_language(question)
    best = max(c.cosine for c in candidates)
    own = {id(c): c.cosine if c.question_cosine is None else c.question_cosine for c in candidates}
    best_own = max(own.values())
    by_cosine = {id(c): rank for rank, c in enumerate(sorted(candidates, key=lambda c: -c.cosine))}
    asked = bool(analysis.types)
    roles = not asks_for_name(question)  # "who opposed it?" is answered by 精算师, "what is the author's name?" is not
    for c in candidates:
        tokens = computed_tokens if c.computed else query_tokens
        c.types = sentence_types(c.text, roles)
        match = type_match(analysis, c.types)
        evidence = f"{c.title}\n{c.context}\n{c.passage_text or c.text}"
        c.features = {
            "cosine": c.cosine,
            "cosine_gap": c.cosine - best,
            "question_cosine_gap": own[id(c)] - best_own,
            "cosine_rank_inv": 1.0 / (1 + by_cosine[id(c)]),
            "passage_score": c.passage_score,
            "passage_rank_inv": 0.0 if c.passage_rank is None else 1.0 / (1 + c.passage_rank),
            "top_passage_score": top_passage_score,
            "overlap": idf_overlap(tokens, f"{c.context}\n{c.text}", idf),
            "passage_overlap": idf_overlap(tokens, evidence, idf),
            "type_asked": float(asked),
            "type_match": match,
            "type_miss": float(asked and match == 0.0),
            "numbers_missing": missing_share(computed_numbers if c.computed else numbers, evidence),
            "years_missing": missing_share(years, c.text),
            "names_missing": missing_share(names, evidence),
            "position_inv": 1.0 / (1 + c.position),
            "heading_like": float(len(c.text) < 60 and not c.text.rstrip().endswith(_END)),
            "cross_language": float(c.language != reader),
            "length": math.log1p(len(c.text)) / 6.0,
        }


class Evidence(list):
    """Scored candidate sentences, best first, with the question-level features and probability (``confidence``)."""

    def __init__(self, candidates: Sequence[Candidate] = (), features: dict[str, float] | None = None,
                 confidence: float = 0.0):
        super().__init__(candidates)
        self.features = features or {}
        self.confidence = confidence


def question_features(analysis: QuestionAnalysis, question: str, ranked: Sequence[Candidate],
                      passages: Sequence[str], idf: dict[str, float]) -> dict[str, float]:
    """Named features of the whole evidence of one question: ``ranked`` are its candidates scored by the sentence
    model, best first; ``passages`` the retrieved passages' texts. The chosen evidence is the best sentence, the one
    the answer leads with: read over the near-tie set the answer quotes, or over the best three, the features
    separate answered from unanswered questions less well out-of-fold on dev (more sentences, more chance that
    some word or type the question asks for turns up in one that does not answer it). What ``featurize`` already
    found in that sentence and its passage (type match, numbers and names missing, language) is read, not redone."""
    best = ranked[0] if ranked else None
    # a computed row's words: the question's but the operation's, which the computation answered (see featurize)
    asked_of_evidence = without_operation(question) if best is not None and best.computed else question
    query_tokens = set(tokenize(asked_of_evidence))
    own = best.features if best else {}  # what featurize found in the best sentence and its passage
    sentence = f"{best.title}\n{best.context}\n{best.text}" if best else ""  # with its headings
    in_sentence = matched_words(query_tokens, sentence)
    rarest = max(idf.values(), default=1.0)  # a word idf does not know is at least as rare as the rarest it knows
    missing = query_tokens - matched_words(query_tokens, passages)
    probabilities = [c.probability for c in ranked[:2]] + [0.0, 0.0]
    reader = detect_language(question)
    passage_scores = dict(sorted({c.passage_rank: c.passage_score for c in ranked if c.passage_rank is not None}.items()))
    scores = list(passage_scores.values())
    return {
        "best_probability": probabilities[0],
        "probability_gap": probabilities[0] - probabilities[1],
        "best_cosine": max((c.cosine for c in ranked), default=0.0),
        "top_passage_score": own.get("top_passage_score", 0.0),
        "type_asked": float(bool(analysis.types)),
        "type_present": own.get("type_match", 0.0),
        "numbers_missing": own.get("numbers_missing", 1.0),
        "names_missing": own.get("names_missing", 1.0),
        "keyword_coverage": idf_share(query_tokens, in_sentence, idf),
        "passage_keyword_coverage": idf_overlap(query_tokens, passages, idf),
        "max_missing_idf": max((idf.get(t, rarest) for t in missing), default=0.0),
        "best_missing_idf": max((idf.get(t, rarest) for t in query_tokens - in_sentence), default=0.0),
        "passage_score_drop": scores[0] - scores[-1] if len(scores) > 1 else 0.0,
        "cross_language": own.get("cross_language", 0.0),
        "chinese_question": float(reader == "zh"),
        "name_absent": float(asks_for_name(question) and not (best and gives_a_name(best.text))),
        "focus_missing": missing_word_share(question_focus(asked_of_evidence), sentence),
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
    def from_dict(cls, data: dict) -> AnswerModel:
        return cls(weights=data["weights"], bias=data["bias"], mean=data["mean"], scale=data["scale"],
                   threshold=data["threshold"], metrics=data.get("metrics", {}))

    def to_dict(self) -> dict:
        return {"features": list(self.weights), "weights": self.weights, "bias": self.bias, "mean": self.mean,
                "scale": self.scale, "threshold": self.threshold, "metrics": self.metrics}


@dataclass
class OnTopicFloor:
    """The retrieval score below which a question is about nothing the corpus covers, so no sentence is considered.

    It reads ``answer.best_match_score`` (a cosine: it belongs to one embedding model), and is fit on dev between the
    off-topic questions and the answerable ones (``fit_floor``)."""

    value: float
    metrics: dict = field(default_factory=dict)

    @classmethod
    def unfitted(cls, reason: str = "") -> OnTopicFloor:
        """No floor: every question reaches the models."""
        return cls(-1.0, {"fitted": False, **({"reason": reason} if reason else {})})


@dataclass
class AnswerModels:
    """The sentence model (chooses sentences), the question model (answer or abstain, ``confidence``) and the
    on-topic floor in front of both."""

    sentence: AnswerModel
    question: AnswerModel
    floor: OnTopicFloor = field(default_factory=OnTopicFloor.unfitted)

    @classmethod
    def unfitted(cls) -> AnswerModels:
        return cls(AnswerModel.unfitted(), AnswerModel(weights={"best_probability": 1.0}, bias=0.0, mean={}, scale={},
                                                       threshold=0.0, metrics={"fitted": False}))

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerModels:
        path = Path(path or MODEL_PATH)
        if not path.is_file():
            return cls.unfitted()
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: answer model format {data.get('version')}, expected {FORMAT_VERSION}; "
                             "re-fit it with `python -m assistant.answer_model fit`")
        return cls(AnswerModel.from_dict(data["sentence"]), AnswerModel.from_dict(data["question"]),
                   OnTopicFloor(data["floor"]["value"], data["floor"].get("metrics", {})))

    def save(self, path: Path = MODEL_PATH) -> None:
        data = {"version": FORMAT_VERSION, "sentence": self.sentence.to_dict(), "question": self.question.to_dict(),
                "floor": {"value": self.floor.value, "metrics": self.floor.metrics}}
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


def fit_floor(off_topic: Sequence[float], answerable: Sequence[float]) -> OnTopicFloor:
    """The on-topic floor between the match scores of off-topic and of answerable questions: of the cut points
    between neighbouring scores, one with the fewest questions on the wrong side (off-topic at or above it,
    answerable below), and of those the one in the widest gap (the floor sits mid-way, as far from both as the data
    allow)."""
    if not off_topic or not answerable:
        return OnTopicFloor.unfitted("needs off-topic and answerable dev questions")
    scores = sorted(set(off_topic) | set(answerable))
    cuts = [((a + b) / 2, b - a) for a, b in zip(scores, scores[1:])] or [(scores[0], 0.0)]

    def errors(cut: float) -> int:
        return sum(s >= cut for s in off_topic) + sum(s < cut for s in answerable)

    value, _ = min(cuts, key=lambda cut: (errors(cut[0]), -cut[1]))
    return OnTopicFloor(round(value, 4), {
        "split": "dev",
        "off_topic": len(off_topic),
        "answerable": len(answerable),
        "highest_off_topic": round(max(off_topic), 4),
        "lowest_answerable": round(min(answerable), 4),
        "off_topic_refused": round(sum(s < value for s in off_topic) / len(off_topic), 4),
        "answerable_refused": round(sum(s < value for s in answerable) / len(answerable), 4),
    })


def threshold_for(best_answerable: Sequence[float], max_false_abstention: float) -> float:
    """The highest threshold that abstains on at most ``max_false_abstention`` of the answerable questions."""
    if not best_answerable:
        return 0.5
    ranked = sorted(best_answerable)
    allowed = int(math.floor(max_false_abstention * len(ranked)))
    # abstaining means probability < threshold: the threshold may sit just above the ``allowed`` lowest ones
    return float(ranked[allowed]) - 1e-9 if allowed < len(ranked) else float(ranked[-1])


def _fit_lr(X: np.ndarray, y: np.ndarray, names: Sequence[str], c: float) -> AnswerModel:
    """Standardised, class-balanced logistic regression over ``names``; threshold left at 0.5 for the caller."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    lr.fit((X - mean) / scale, y)
    return AnswerModel(weights={n: float(w) for n, w in zip(names, lr.coef_[0])}, bias=float(lr.intercept_[0]),
                       mean={n: float(v) for n, v in zip(names, mean)},
                       scale={n: float(v) for n, v in zip(names, scale)}, threshold=0.5)


def _matrix(features: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    return np.array([[f[name] for name in names] for f in features], dtype=np.float64).reshape(len(features), len(names))


def fit(rows: list[tuple[list[dict[str, float]], list[bool], bool]], c: float = 1.0) -> AnswerModel:
    """Fit the sentence model on ``rows`` = (candidate features, labels, answerable) per question."""
    from sklearn.metrics import log_loss, roc_auc_score

    X = _matrix([f for feats, _, _ in rows for f in feats], FEATURES)
    y = np.array([label for _, labels, _ in rows for label in labels], dtype=int)
    if len(set(y.tolist())) < 2:
        raise ValueError("the fit needs both answering and non-answering candidate sentences")
    model = _fit_lr(X, y, FEATURES, c)
    p = np.array([model.probability(f) for feats, _, _ in rows for f in feats])
    answerable_count = sum(1 for _, _, answerable in rows if answerable)
    # the best sentence alone: fit_both replaces this with the near-tie ratio fitted on out-of-fold scores
    model.threshold = 1.0
    top_correct = [labels[int(np.argmax([model.probability(f) for f in feats]))] if feats else False
                   for feats, labels, answerable in rows if answerable]
    model.metrics = {
        "split": "dev",
        "questions": len(rows),
        "answerable": answerable_count,
        "unanswerable": len(rows) - answerable_count,
        "candidates": int(len(y)),
        "positives": int(y.sum()),
        "sentence_auc": round(float(roc_auc_score(y, p)), 4),
        "sentence_log_loss": round(float(log_loss(y, p)), 4),
        "top_sentence_answers": round(sum(top_correct) / max(len(top_correct), 1), 4),
        "C": c,
    }
    return model


RATIO_GRID = tuple(round(1.0 - 0.05 * i, 2) for i in range(21))  # 1.00, 0.95, ... 0.00


def near_tie_set(probabilities: Sequence[float], ratio: float, limit: int) -> int:
    """How many of the best-first ``probabilities`` are shown: the best, and each further one the model rates at
    least ``ratio`` times as likely to answer (one it cannot tell from the best), up to ``limit``."""
    if not probabilities:
        return 0
    bar = ratio * probabilities[0]
    return max(1, min(limit, sum(1 for p in probabilities if p >= bar)))


def quoted_count(probabilities: Sequence[float], sentence_model: AnswerModel) -> int:
    """How many of the best-first candidates an answer quotes, by the sentence model's fitted near-tie ratio and the
    answer length it was fit for: what the question model's label reads (ASSISTANT_EXTRA_SENTENCE_RATIO, which may
    change the answer shown, does not change it)."""
    return near_tie_set(probabilities, sentence_model.threshold,
                        sentence_model.metrics.get("sentence_limit", EVIDENCE_SENTENCES))


def fit_near_tie_ratio(ranked: Sequence[tuple[Sequence[float], Sequence[bool]]], limit: int) -> tuple[float, dict]:
    """The near-tie ratio: the largest one (fewest sentences) whose answers hold the labelled answer for as many
    answerable questions as the best ratio, less one question (the resolution of the data). ``ranked`` is, per
    answerable question, its candidates' out-of-fold probabilities best first and their labels."""
    if not ranked:
        return 1.0, {}
    curve = []
    for ratio in RATIO_GRID:
        shown = [near_tie_set(p, ratio, limit) for p, _ in ranked]
        found = [any(labels[:k]) for k, (_, labels) in zip(shown, ranked)]
        curve.append((ratio, sum(found) / len(ranked), sum(shown) / len(ranked)))
    best = max(recall for _, recall, _ in curve)
    ratio, recall, sentences = next(point for point in curve if point[1] >= best - 1.0 / len(ranked))
    alone = curve[0]
    return ratio, {"near_tie_ratio": ratio, "answer_holds_label": round(recall, 4),
                   "mean_sentences": round(sentences, 3), "best_alone_holds_label": round(alone[1], 4),
                   "sentence_limit": limit}


@dataclass
class QuestionRecord:
    """What the fit keeps of one dev question: its candidates (with their sentence features), their labels, whether
    it is answerable, the retrieved passages' texts and the idf of its words."""

    question: str
    candidates: list[Candidate]
    labels: list[bool]
    answerable: bool
    passages: list[str]
    idf: dict[str, float]
    match_score: float = 0.0  # answer.best_match_score of its retrieved passages: what the on-topic floor reads
    off_topic: bool = False  # about nothing the corpus covers (category "off_topic")


def rank(record: QuestionRecord, sentence_model: AnswerModel) -> list[int]:
    """A record's candidates' indices best first, as scored by ``sentence_model`` (the scores stay on them)."""
    sentence_model.score(record.candidates)
    return sorted(range(len(record.candidates)), key=lambda i: -record.candidates[i].probability)


def describe(record: QuestionRecord, order: Sequence[int]) -> dict[str, float]:
    """The question features of a record whose candidates were ranked in ``order``."""
    return question_features(analyse_question(record.question), record.question,
                             [record.candidates[i] for i in order], record.passages, record.idf)


def analyse_question(question: str) -> QuestionAnalysis:
    from assistant.answer_types import analyse

    return analyse(question)


LABELS = {
    "evidence": "answerable and the chosen evidence holds the labelled answer",
    "answerable": "answerable",
}


QUESTION_C_GRID = (0.1, 0.3, 1.0, 3.0)  # the question model's regularisation strengths tried (inverse, as sklearn's C)


def _out_of_fold(X: np.ndarray, y: np.ndarray, features: list[dict[str, float]], fold_of: list[int], folds: int,
                 c: float) -> np.ndarray:
    """Each question's probability from a question model fit without its fold."""
    oof = np.zeros(len(features))
    for k in range(folds):
        in_fold = np.array([f != k for f in fold_of])
        train = in_fold if len(set(y[in_fold].tolist())) > 1 else np.ones(len(y), dtype=bool)  # one class: all rows
        model_k = _fit_lr(X[train], y[train], QUESTION_FEATURES, c)
        oof[~in_fold] = [model_k.probability(f) for f, t in zip(features, in_fold) if not t]
    return oof


def fit_both(records: list[QuestionRecord], max_false_abstention: float = 0.03, c: float = 1.0,
             folds: int = 5, label: str = "evidence", sentence_limit: int = 3,
             question_c: float | None = None) -> AnswerModels:
    """Fit the sentence model on all dev records, and the question model on out-of-fold sentence scores.

    The question model's label is by default "answerable and the chosen evidence holds the labelled answer", so
    its probability says how likely the answer shown is right (``label="answerable"``: whether the corpus answers
    it at all). Its threshold keeps false abstention on the answerable
    dev questions within ``max_false_abstention``, judged on out-of-fold question probabilities (scores the final
    model would give questions it was not fit on). The sentence model's threshold is the near-tie ratio
    (``fit_near_tie_ratio``) on out-of-fold sentence probabilities, for answers of at most ``sentence_limit``
    sentences. ``c`` regularises the sentence model; the question model's is ``question_c``, or by default the one of
    ``QUESTION_C_GRID`` with the lowest out-of-fold Brier score."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    rows = [([c_.features for c_ in r.candidates], r.labels, r.answerable) for r in records]
    sentence = fit(rows, c)
    # out-of-fold: each question's candidates scored by a sentence model fit without its fold
    fold_of = [i % folds for i in range(len(records))]
    orders: list[list[int]] = [[] for _ in records]
    ranked: list[tuple[list[float], list[bool]]] = []
    for k in range(folds):
        train = [row for row, f in zip(rows, fold_of) if f != k]
        X = _matrix([f for feats, _, _ in train for f in feats], FEATURES)
        y = np.array([label for _, ls, _ in train for label in ls], dtype=int)
        model_k = _fit_lr(X, y, FEATURES, c)
        for i, record in enumerate(records):
            if fold_of[i] == k:
                order = orders[i] = rank(record, model_k)
                if record.answerable:
                    ranked.append(([record.candidates[j].probability for j in order],
                                   [record.labels[j] for j in order]))
    sentence.threshold, near_tie = fit_near_tie_ratio(ranked, sentence_limit)
    sentence.metrics.update(near_tie)
    # the label reads the sentences an answer would quote: it waits for the near-tie ratio
    quoted = [quoted_count([record.candidates[j].probability for j in order], sentence)
              for record, order in zip(records, orders)]
    features = [describe(record, order) for record, order in zip(records, orders)]
    labels = [record.answerable and (label == "answerable" or any(record.labels[j] for j in order[:n]))
              for record, order, n in zip(records, orders, quoted)]
    Xq = _matrix(features, QUESTION_FEATURES)
    yq = np.array(labels, dtype=int)
    if len(set(yq.tolist())) < 2:
        raise ValueError("the question model needs questions answered and not answered by their evidence")
    # the question model has one row per question (a few hundred), so its regularisation is chosen on dev: the C
    # whose out-of-fold probabilities have the lowest Brier score (a proper score: calibration and separation both)
    grid = (question_c,) if question_c is not None else QUESTION_C_GRID
    briers = {}
    for candidate_c in grid:
        oof_c = _out_of_fold(Xq, yq, features, fold_of, folds, candidate_c)
        briers[candidate_c] = (float(brier_score_loss(yq, oof_c)), oof_c)
    question_c = min(grid, key=lambda value: (briers[value][0], -value))
    oof = briers[question_c][1]
    question = _fit_lr(Xq, yq, QUESTION_FEATURES, question_c)
    answerable = np.array([r.answerable for r in records])
    floor = fit_floor([r.match_score for r in records if r.off_topic], [r.match_score for r in records if r.answerable])
    question.threshold = threshold_for(oof[answerable].tolist(), max_false_abstention)
    abstains = (oof < question.threshold) | np.array([r.match_score < floor.value for r in records])
    question.metrics = {
        "split": "dev",
        "questions": len(records),
        "answerable": int(answerable.sum()),
        "unanswerable": int((~answerable).sum()),
        "label": LABELS[label],
        "positives": int(yq.sum()),
        "out_of_fold_auc": round(float(roc_auc_score(yq, oof)), 4),
        "out_of_fold_brier": round(float(brier_score_loss(yq, oof)), 4),
        "false_abstention_target": max_false_abstention,
        "false_abstention": round(float(abstains[answerable].mean()), 4) if answerable.any() else 0.0,
        "correct_abstention": round(float(abstains[~answerable].mean()), 4) if (~answerable).any() else 0.0,
        "folds": folds,
        "C": question_c,
        "out_of_fold_brier_by_C": {str(value): round(b, 4) for value, (b, _) in briers.items()},
        "on_topic_floor": floor.value,
    }
    return AnswerModels(sentence, question, floor)


def collect(assistant, items) -> list[QuestionRecord]:
    """Candidates, labels and evidence of each item, as the assistant sees them when answering."""
    from tqdm import tqdm

    from assistant.answer import best_match_score

    records = []
    for item in tqdm(items, desc="candidates", unit="question"):
        request = assistant.evidence(item.question, history=list(item.history))
        candidates = list(assistant.extractive.candidates(request))
        labels = [item.answerable and answers_reference(c.text, item.reference_contexts) for c in candidates]
        passages = [f"{h.title}\n{h.context}\n{h.text}" for h in request.hits]
        # the question as the answer model read it: a relative year named ("and that year? (1995)")
        records.append(QuestionRecord(request.question, candidates, labels, item.answerable, passages,
                                      assistant.store.idf(tokenize(request.question)),
                                      best_match_score(request.hits, request.nearest_sentences or ()), item.category == "off_topic"))
    return records


def main(argv: list[str] | None = None) -> int:
    import argparse
    import pickle

    parser = argparse.ArgumentParser(prog="python -m assistant.answer_model",
                                     description="Fit the answer models (sentence and question) on the DEV split of "
                                                 "an eval set.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit_parser = sub.add_parser("fit", help="fit weights and thresholds on dev questions; write the model file")
    fit_parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"), help="eval set (JSONL)")
    fit_parser.add_argument("--out", type=Path, default=MODEL_PATH, help=f"model file (default {MODEL_PATH})")
    fit_parser.add_argument("--max-false-abstention", type=float, default=0.03,
                            help="false abstention allowed on dev answerable questions (default 0.03)")
    fit_parser.add_argument("--c", type=float, default=1.0,
                            help="inverse regularisation strength of the sentence model (default 1.0)")
    fit_parser.add_argument("--question-c", type=float, default=None,
                            help="inverse regularisation strength of the question model (default: the one of "
                                 f"{QUESTION_C_GRID} with the lowest out-of-fold Brier score on dev)")
    fit_parser.add_argument("--label", choices=sorted(LABELS), default="evidence",
                            help="what the question model predicts: " + "; ".join(f"{k}: {v}" for k, v in LABELS.items()))
    fit_parser.add_argument("--sentences", type=int, default=None,
                            help="most sentences in an answer, for the near-tie ratio (default: the assistant's "
                                 "max_answer_sentences)")
    fit_parser.add_argument("--folds", type=int, default=5, help="folds of the out-of-fold scores (default 5)")
    fit_parser.add_argument("--cache", type=Path, default=None,
                            help="reuse (or write) the collected dev candidates here, to refit without re-running "
                                 "retrieval (a pickle; delete it after changing features or the index)")
    args = parser.parse_args(argv)

    from assistant.evaluate.loader import EvalInputError, load_split
    from assistant.pipeline import Assistant

    try:
        dev = load_split(args.questions)
    except EvalInputError as error:
        parser.error(str(error))
    from assistant.settings import get_settings

    # candidates do not depend on the fitted models, and the file to be replaced may be of an older format
    assistant = Assistant(get_settings().model_copy(update={"answer_model_path": args.out.with_suffix(".refit")}))
    if args.cache is not None and args.cache.is_file():
        records = pickle.loads(args.cache.read_bytes())
    else:
        records = collect(assistant, dev)
        if args.cache is not None:
            args.cache.write_bytes(pickle.dumps(records))
    for record in records:  # features may have changed since the cache was written
        featurize(analyse_question(record.question), record.question, record.candidates,
                  max((c.features.get("top_passage_score", 0.0) for c in record.candidates), default=0.0), record.idf)
    models = fit_both(records, args.max_false_abstention, args.c, args.folds, args.label,
                      args.sentences or assistant.settings.max_answer_sentences, args.question_c)
    for model in (models.sentence, models.question):
        model.metrics["embedding_model"] = assistant.embedder.model_id
        model.metrics["questions_file"] = str(args.questions)
    models.save(args.out)
    print(json.dumps({"sentence": models.sentence.metrics, "question": models.question.metrics}, indent=1))
    return 0


if __name__ == "__main__":
    # run the imported module's main, so the --cache pickle names assistant.answer_model's classes, not __main__'s
    from assistant.answer_model import main as _main

    raise SystemExit(_main())
