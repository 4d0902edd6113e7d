"""Grade answers claim by claim against the corpus, offline, with the evidence for every verdict.

For a batch of answers: split each into claims (assistant/claims.py), embed all claims of the batch in one call,
find each claim's nearest corpus sentences in the sentence index (across languages), and give a verdict:
``supported`` (a sentence close enough, stating no different fact), ``conflicting`` (a sentence about the same
thing with a different year, number, percentage, date, name or negation) or ``not_found``. Every quote an answer
cites is looked up: verbatim in the named document, verbatim elsewhere, near-verbatim (with what differs) or
absent, and whether it supports the claim it is cited for.

The thresholds are fitted on the dev split of eval/claims.jsonl by bench/grade.py --fit and saved, with their
metrics, in claims_calibration.json beside this module (one entry per embedding model).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.claims import CHECKS, Claim, SquashedText, conflicts, near_match, overlap, shared_facts, split_claims
from assistant.evaluate.models import ClaimResult, Evidence, GivenCitation, QuoteCheck
from assistant.schema import Document

log = logging.getLogger(__name__)

CALIBRATION = Path(__file__).with_name("claims_calibration.json")
NEAR_VERBATIM = 0.8  # character similarity from which a quote counts as a near-verbatim copy of a source passage


@dataclass(frozen=True)
class GradeParams:
    """How verdicts are reached; fitted on the dev split (bench/grade.py --fit), never hand-tuned per claim."""

    support: float = 0.6  # support score (cosine + agree × shared facts) from which a claim is supported
    conflict: float = 0.5  # closeness (cosine + lexical × overlap) from which a different value conflicts
    wording: float = 0.7  # closeness from which a different name or a negation conflicts (wording varies more)
    agree: float = 0.1  # weight of the share of the claim's facts that the sentence states too
    lexical: float = 0.0  # weight of the share of the claim's words the sentence has too
    checks: tuple[str, ...] = CHECKS  # kinds of facts compared
    prompt: str = "query"  # the model prompt claims are embedded with: "query" or "document"
    candidates: int = 8  # nearest sentences considered per claim

    @classmethod
    def for_model(cls, model_id: str, path: Path = CALIBRATION) -> "GradeParams":
        """The fitted parameters of an embedding model (by its name without the fingerprint), else defaults."""
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        name = model_id.split("@", 1)[0]
        entry = saved.get("models", {}).get(name)
        if entry is None:
            return cls()
        params = {k: v for k, v in entry.get("params", {}).items() if k in cls.__dataclass_fields__}
        if "checks" in params:
            params["checks"] = tuple(params["checks"])
        return cls(**params)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["checks"] = list(self.checks)
        return data


@dataclass
class Graded:
    """The grade of one answer."""

    claims: list[ClaimResult] = field(default_factory=list)
    cited: list[QuoteCheck] = field(default_factory=list)

    @property
    def faithfulness(self) -> float | None:
        if not self.claims:
            return None
        return round(sum(c.verdict == "supported" for c in self.claims) / len(self.claims), 4)


@dataclass(frozen=True)
class Candidate:
    """A corpus sentence near a claim: where it is, its text and cosine (``score``)."""

    document: str
    page: int | None
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Scored:
    """A candidate sentence with what the verdict needs: its cosine, the share of the claim's facts it states, and
    the conflicts of every kind (the parameters choose which kinds count)."""

    candidate: Candidate
    cosine: float
    shared: float
    conflicts: dict[str, str]
    overlap: float = 0.0


def score_candidates(claim: str, candidates: Sequence[Candidate]) -> list[Scored]:
    return [Scored(c, c.score, shared_facts(claim, c.text), {x.kind: x.describe() for x in conflicts(claim, c.text)},
                   overlap(claim, c.text)) for c in candidates]


_WORDING = ("name", "negation")


def decide(scored: Sequence[Scored], params: GradeParams) -> tuple[str, float, Candidate | None, list[str]]:
    """(verdict, score, evidence, conflicts) of a claim over its scored candidate sentences.

    A sentence's support score is its cosine plus ``agree`` × the share of the claim's facts it states plus
    ``lexical`` × the share of the claim's words it has. The claim is ``conflicting`` when a sentence about the same
    thing (cosine + lexical × overlap ≥ ``conflict``; ≥ ``wording`` for names and negation) states a different fact
    (of a kind in ``checks``) and ranks above every supporting sentence; ``supported`` when a sentence with no such
    conflict reaches ``support``; else ``not_found`` (with the nearest sentence as what came closest)."""
    best_support: Any = None
    best_conflict: Any = None
    best_any: Any = None
    for item in scored:
        close = item.cosine + params.lexical * item.overlap
        rank = close + params.agree * item.shared
        found = [text for kind, text in item.conflicts.items() if kind in params.checks
                 and close >= (params.wording if kind in _WORDING else params.conflict)]
        if best_any is None or rank > best_any[0]:
            best_any = (rank, item.candidate, [])
        if found:
            if best_conflict is None or rank > best_conflict[0]:
                best_conflict = (rank, item.candidate, found)
        elif rank >= params.support and (best_support is None or rank > best_support[0]):
            best_support = (rank, item.candidate, [])
    if best_conflict is not None and (best_support is None or best_conflict[0] > best_support[0]):
        return "conflicting", best_conflict[0], best_conflict[1], best_conflict[2]
    if best_support is not None:
        return "supported", best_support[0], best_support[1], []
    if best_any is not None:
        return "not_found", best_any[0], best_any[1], []
    return "not_found", 0.0, None, []


class ClaimGrader:
    """Grades answers against the corpus through the sentence index; one batch of answers per call.

    ``embedder``: the Embedder (claims with its query or document prompt); ``sentences``: the SentenceIndex;
    ``document``: doc id → cleaned Document; ``versions``: doc id → registered version (readers trust only those).
    """

    def __init__(self, embedder, sentences, document: Callable[[str], Document | None],
                 versions: Callable[[], dict[str, str]], params: GradeParams | None = None):
        self.embedder = embedder
        self.sentences = sentences
        self.document = document
        self.versions = versions
        self.params = params or GradeParams.for_model(embedder.model_id)
        self._squashed: dict[tuple[str, str | None], SquashedText] = {}

    @classmethod
    def for_assistant(cls, assistant, params: GradeParams | None = None) -> "ClaimGrader":
        store = assistant.store
        return cls(assistant.embedder, assistant.sentences, assistant.document,
                   lambda: {d: r.version for d, r in store.documents().items()}, params)

    # --- embedding ---
    def embed_claims(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), np.float32)
        if self.params.prompt == "document":
            return np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)
        return np.asarray(self.embedder.embed_queries(texts), dtype=np.float32)

    def embed_quotes(self, texts: list[str]) -> np.ndarray:
        """Quotes are corpus text: embedded as the index's sentences are (document prompt)."""
        if not texts:
            return np.zeros((0, 1), np.float32)
        return np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)

    def candidates(self, vector, versions: dict[str, str], n: int | None = None,
                   document: str | None = None) -> list[Candidate]:
        """The nearest sentences of registered document versions (of one document, when given)."""
        hits = self.sentences.query(vector, n or self.params.candidates,
                                    {"document": document} if document else None)
        return [Candidate(h.document, h.page, h.start, h.end, h.text, float(h.score)) for h in hits
                if versions.get(h.document) in (None, h.version) and h.document in versions]

    # --- grading ---
    def grade(self, answers: Sequence[tuple[str, Sequence[GivenCitation]]]) -> list[Graded]:
        """Grade each (answer text, cited quotes). All claims and quotes of the batch are embedded together."""
        versions = self.versions()
        split = [split_claims(text or "") for text, _ in answers]
        flat = [claim for claims in split for claim in claims]
        quotes = [citation for _, cited in answers for citation in cited]
        claim_vectors = self.embed_claims([c.plain for c in flat])
        quote_vectors = self.embed_quotes([q.quote for q in quotes])
        results, ci, qi = [], 0, 0
        for (_text, cited), claims in zip(answers, split):
            vectors = claim_vectors[ci:ci + len(claims)]
            ci += len(claims)
            graded = Graded(claims=[self._claim(c, v, versions) for c, v in zip(claims, vectors)])
            for citation in cited:
                graded.cited.append(self._quote(citation, quote_vectors[qi], claims, vectors, graded.claims, versions))
                qi += 1
            results.append(graded)
        return results

    def _claim(self, claim: Claim, vector, versions: dict[str, str]) -> ClaimResult:
        scored = score_candidates(claim.plain, self.candidates(vector, versions))
        verdict, score, evidence, found = decide(scored, self.params)
        return ClaimResult(text=claim.text, verdict=verdict, score=round(float(score), 4),
                           evidence=None if evidence is None else Evidence(
                               document=evidence.document, page=evidence.page, start=evidence.start,
                               end=evidence.end, quote=evidence.text),
                           start=claim.start, end=claim.end, markers=list(claim.markers), conflicts=found)

    # --- citations ---
    def _text(self, doc_id: str, versions: dict[str, str]) -> SquashedText | None:
        key = (doc_id, versions.get(doc_id))
        if key not in self._squashed:
            document = self.document(doc_id)
            if document is None:
                return None
            self._squashed[key] = SquashedText(document.text)
        return self._squashed[key]

    def resolve(self, name: str | None, versions: dict[str, str]) -> str | None:
        """The doc id an answer means by ``name``: the id itself, or a file name / path ending in it."""
        if not name:
            return None
        if name in versions:
            return name
        base = re.split(r"[\\/]", name.strip())[-1]
        matches = [d for d in versions if d == base or d.rsplit("/", 1)[-1] == base]
        return matches[0] if len(matches) == 1 else None

    def _quote(self, citation: GivenCitation, vector, claims: list[Claim], claim_vectors,
               claim_results: list[ClaimResult], versions: dict[str, str]) -> QuoteCheck:
        named = self.resolve(citation.document, versions)
        check = QuoteCheck(quote=citation.quote, document=citation.document, marker=citation.marker, status="absent")
        order = ([named] if named else []) + [d for d in versions if d != named]
        for doc_id in order:
            text = self._text(doc_id, versions)
            span = text.find(citation.quote) if text is not None else None
            if span is not None:
                document = self.document(doc_id)
                check.status = "verbatim" if doc_id == named or not citation.document else "wrong_document"
                check.found_document, (check.start, check.end) = doc_id, span
                check.page = document.page_at(span[0]) if document is not None else None
                check.similarity = 1.0
                break
        else:
            self._near(check, vector, versions, named)
        check.claim = self._claim_of(citation, vector, claims, claim_vectors)
        if check.claim is not None and check.status != "absent":
            claim = claims[check.claim]
            source = citation.quote
            cosine = float(np.dot(claim_vectors[check.claim], vector)) if len(claim_vectors) else 0.0
            rank = cosine + self.params.agree * shared_facts(claim.plain, source)
            check.supports_claim = rank >= self.params.support and not conflicts(claim.plain, source, self.params.checks)
        return check

    def _near(self, check: QuoteCheck, vector, versions: dict[str, str], named: str | None) -> None:
        """The nearest passage to a quote that is not in the corpus verbatim: around the sentences closest to it,
        in the named document and anywhere."""
        best = None
        nearby = self.candidates(vector, versions, n=3, document=named) if named else []
        for candidate in nearby + self.candidates(vector, versions, n=3):
            document = self.document(candidate.document)
            if document is None:
                continue
            margin = len(check.quote) + 40
            match = near_match(check.quote, document.text, max(0, candidate.start - margin),
                               min(len(document.text), candidate.end + margin))
            if match is not None and (best is None or match.ratio > best[1].ratio):
                best = (document, match)
        if best is None:
            return
        document, match = best
        check.similarity = match.ratio
        check.found_document = document.doc_id
        if match.ratio >= NEAR_VERBATIM:
            check.status = "near_verbatim"
            check.start, check.end, check.page = match.start, match.end, document.page_at(match.start)
            check.differences = list(match.differences)

    @staticmethod
    def _claim_of(citation: GivenCitation, vector, claims: list[Claim], claim_vectors) -> int | None:
        """The claim a citation is cited for: by its marker, else the claim quoting it, else the nearest claim."""
        if not claims:
            return None
        if citation.marker is not None:
            for i, claim in enumerate(claims):
                if citation.marker in claim.markers:
                    return i
        squashed = re.sub(r"\s+", "", citation.quote)
        for i, claim in enumerate(claims):
            if any(squashed in re.sub(r"\s+", "", q) or re.sub(r"\s+", "", q) in squashed for q in claim.quotes):
                return i
        return int(np.argmax(claim_vectors @ vector)) if len(claim_vectors) else None
