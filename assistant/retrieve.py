"""Step 6, retrieve: dense search in Chroma fused with the passages' nearest sentences (and, optionally, BM25 over
jieba tokens), near-duplicates folded together.

A passage is scored ``dense cosine + sentence_weight × the cosine of its best sentence among the query's nearest
sentences`` (0 when none of its sentences is among them): a short passage that holds one exactly matching sentence (a
Federal Register head, a table row) rises, and the sentence index brings in passages the passage search missed. The
weight is fit on the eval set's dev split (``python -m assistant.retrieve fit``; saved with its metrics in
assistant/retrieval_fit.json).

A question that names a document's identifier (an executive order's number, a Federal Register page, a code
section: ``named_documents``) is searched within the documents whose titles carry it, unless the caller filters.

Dense retrieval (EmbeddingGemma) carries cross-language questions; BM25 only helps where query and passage share
words (same language, or numbers and names). Equal-weight rank fusion lets BM25's misses outvote dense hits, so we
fuse scores instead: ``dense cosine + lexical_weight × BM25 normalised to the best candidate``, with the weight tuned
on the eval set's dev split (see README). BM25 comes from the on-disk FTS5 index of assistant/lexical.py, kept only
while the weight is above 0 (the default is 0). A search reads only the store: a query, and the registered versions
of its candidates' documents (once per revision).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.answer_types import YEAR_DIGITS
from assistant.embed import TextEmbedder
from assistant.glossary import aligned_words
from assistant.lexical import tokenize  # one tokenizer for BM25, word statistics and the answer model
from assistant.schema import Document, Passage, SearchHit
from assistant.sentences import SentenceHit
from assistant.settings import Settings
from assistant.store import IndexStore, hit_from
from assistant.table_query import (
    TableAnswer,
    answer_rows,
    choose_column,
    heading_match,
    series_question,
    table_answer,
    table_says_none,
)
from assistant.tables import TableSeries, table_series

_NORMALISE = re.compile(r"[\W_]+", re.U)
FIT_PATH = Path(__file__).with_name("retrieval_fit.json")
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
# Chroma searches outside the GIL: the sentence search runs here while this thread searches passages and BM25.
_SENTENCE_SEARCHES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sentence-search")


def fitted_sentence_weight(path: Path = FIT_PATH) -> float:
    """The sentence weight fit on dev (0, dense passages alone, before the first fit)."""
    return float(json.loads(path.read_text(encoding="utf-8"))["sentence_weight"]) if path.is_file() else 0.0


def passage_terms(passages: Iterable[Passage]) -> Counter:
    """How many of these passages contain each word (the document frequencies behind idf)."""
    counts: Counter = Counter()
    for p in passages:
        counts.update(set(tokenize(f"{p.context}\n{p.text}" if p.context else p.text)))
    return counts


@lru_cache(maxsize=1024)  # the same top passages come back query after query; this was a quarter of a search
def shingles(text: str, n: int = 5) -> frozenset[str]:
    flat = _NORMALISE.sub("", text.lower())
    return frozenset(flat[i:i + n] for i in range(max(1, len(flat) - n + 1)))


def near_duplicate(a: str, b: str, threshold: float = 0.6) -> bool:
    sa, sb = shingles(a), shingles(b)
    return bool(sa and sb) and len(sa & sb) / min(len(sa), len(sb)) >= threshold


@dataclass
class TableFinding:
    """The rows a table computation picked (the answering row first, as stored sentences) and what it found; or
    that the table the question is about shows that no year answers it (a bound never passed, a rise never seen)."""

    rows: list[SentenceHit] = field(default_factory=list)
    answer: TableAnswer | None = None
    says_none: bool = False


@dataclass
class Retrieval:
    hits: list[SearchHit]
    sentences: list[SentenceHit] | None  # nearest sentences, best first; None: the sentence index was not searched
    # What a table computed for a question that describes a row by its values (assistant/table_query.py); the
    # computed rows' passages lead ``hits``.
    table: TableFinding = field(default_factory=TableFinding)


@dataclass
class View:
    """What one request reads: the index revision (and, asked for, the registered versions of documents at it)."""

    revision: str
    store: IndexStore

    @property
    def versions(self) -> dict[str, str]:
        """Every document's registered version (one paged registry read per revision, shared by the store)."""
        return self.store.document_versions(self.revision)

    def version_of(self, doc_id: str) -> str | None:
        return self.store.versions_of([doc_id], self.revision).get(doc_id)


class Retriever:
    """Dense search through the store, fused with BM25 from the on-disk lexical index when ``lexical_weight`` > 0."""

    def __init__(self, settings: Settings, embedder: TextEmbedder, store: IndexStore,
                 glossary: Callable[[], list[tuple[str, str]]] = list):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self._glossary = glossary  # the corpus's bilingual term pairs, read when a table's column is named
        self._view: View | None = None
        self._lock = threading.Lock()
        self._column_vectors: dict[tuple[str, str, str], np.ndarray] = {}  # (content hash, table, title) -> columns
        self._identifiers: tuple[str, dict[str, list[str]]] = ("", {})  # (revision, identifier -> doc ids)
        configured = settings.sentence_weight
        self.sentence_weight = fitted_sentence_weight() if configured is None else configured

    def view(self, refresh: bool = True) -> View:
        """The current revision; nothing else is read until asked (see View).

        ``refresh=False`` reuses the view the last search saw, without asking the store for its revision: the rest
        of a request (quoting, verifying) then reads the same document versions its retrieval did.
        """
        if not refresh and self._view is not None:
            return self._view
        revision = self.store.revision()
        view = self._view
        if view is None or view.revision != revision:
            with self._lock:
                if self._view is None or self._view.revision != revision:
                    lexical = self._lexical_index()
                    if lexical is not None:
                        # This node's copy catches up with the registry: cost proportional to what changed.
                        lexical.reconcile(self.store.document_versions(revision), self.store.passages_of)
                    self._view = View(revision, self.store)
                view = self._view
        return view

    def _identifier_index(self, revision: str) -> dict[str, list[str]]:
        """Identifier → the documents whose titles carry it, built once per index revision."""
        cached_revision, index = self._identifiers
        if cached_revision != revision:
            index = identifier_index(self.store.document_titles(revision))
            self._identifiers = (revision, index)
        return index

    def _lexical_index(self):
        return self.store.open_lexical() if self.settings.lexical_weight > 0 else None

    def versions_of(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """Registered versions of these documents at the revision the last search saw (only their rows are read)."""
        return self.store.versions_of(list(doc_ids), self.view(refresh=False).revision)

    def search(self, query: str, k: int | None = None, documents: list[str] | None = None,
               language: str | None = None, query_vector: np.ndarray | None = None,
               sentence_weight: float | None = None) -> list[SearchHit]:
        return self.retrieve(query, k, documents, language, query_vector, sentence_weight).hits

    def retrieve(self, query: str, k: int | None = None, documents: list[str] | None = None,
                 language: str | None = None, query_vector: np.ndarray | None = None,
                 sentence_weight: float | None = None) -> Retrieval:
        """The top ``k`` passages, and the query's nearest sentences that scored them (none when the sentence weight
        is 0): the answerer takes its direct sentence candidates from them instead of searching again."""
        k = k or self.settings.top_k
        weight = self.sentence_weight if sentence_weight is None else sentence_weight
        view = self.view()
        if not documents:
            documents = named_documents(query, lambda: self._identifier_index(view.revision)) or None
        vector = query_vector if query_vector is not None else self.embedder.embed_queries([query])[0]
        where = filter_where(documents, language)
        n = max(self.settings.candidates, k * 4)
        sentence_search = _SENTENCE_SEARCHES.submit(self.store.sentences.query, vector, n, where) if weight > 0 else None
        found = self.store.query(vector, n, where)
        lexical = self._lexical_index()
        ranked = lexical.search(query, n, documents=documents, language=language) if lexical is not None else []
        sentences = sentence_search.result() if sentence_search is not None else None
        sentence_scores: dict[str, float] = {}
        for row in sentences or []:  # each passage's best sentence among the nearest
            sentence_scores[row.chunk_id] = max(sentence_scores.get(row.chunk_id, -1.0), row.score)
        if sentence_scores:
            dense_ids = {p.chunk_id for p, _ in found}
            found += [(p, float(np.dot(v, vector)))
                      for p, v in self.store.passages_by_id([c for c in sentence_scores if c not in dense_ids])]
        lexical_scores: dict[str, float] = {}
        if ranked and ranked[0][1] > 0:
            top = ranked[0][1]
            lexical_scores = {chunk_id: score / top for chunk_id, score in ranked}
            known = {p.chunk_id for p, _ in found}
            found += [(p, float(np.dot(v, vector)))
                      for p, v in self.store.passages_by_id([c for c, _ in ranked if c not in known])]
        versions = self.store.versions_of({p.document for p, _ in found}, view.revision)
        # Trust only the registered version of each document (an update in flight stores passages early).
        candidates = {p.chunk_id: (p, score) for p, score in found if versions.get(p.document) == p.version}
        ranked_hits = sorted(
            (
                hit_from(p, dense + self.settings.lexical_weight * lexical_scores.get(cid, 0.0)
                         + weight * sentence_scores.get(cid, 0.0),
                         dense_score=round(dense, 4), lexical_score=round(lexical_scores.get(cid, 0.0), 4),
                         sentence_score=round(sentence_scores[cid], 4) if cid in sentence_scores else None)
                for cid, (p, dense) in candidates.items()
            ),
            key=lambda h: h.score, reverse=True,
        )
        hits = fold_duplicates(ranked_hits, k)
        finding = self.table_finding(query, vector, hits, view.revision)
        rows = finding.rows
        if rows:  # the computed rows' passages lead, whatever their similarity
            lead = {r.chunk_id for r in rows}
            by_id = {h.chunk_id: h for h in ranked_hits}
            missing = [c for c in dict.fromkeys(r.chunk_id for r in rows) if c not in by_id]
            for p, v in self.store.passages_by_id(missing):
                by_id[p.chunk_id] = hit_from(p, float(np.dot(v, vector)), dense_score=round(float(np.dot(v, vector)), 4))
            top = hits[0].score if hits else 0.0
            first = [by_id[c].model_copy(update={"score": max(top, by_id[c].score)})
                     for c in dict.fromkeys(r.chunk_id for r in rows) if c in by_id]
            hits = fold_duplicates(first + [h for h in ranked_hits if h.chunk_id not in lead], k)
        return Retrieval(hits, sentences, finding)

    def table_finding(self, query: str, vector: np.ndarray, hits: list[SearchHit], revision: str) -> TableFinding:
        """For a question that describes a row by its values ("the first year … above 800,000", "the year with the
        most …"), the rows of a table that answer it: the row, and for a crossing the year before it (see
        assistant/table_query.py), or that the column never passes the bound asked about.

        Only the tables the retrieval points to: those of the documents it points to (``table_candidates``), and a
        table one of whose rows was retrieved (``retrieved_rows``), where the question names the column whole: a
        Chinese question about a table finds the Chinese article first, the table's rows after it. And only where
        the question names the column (a word of its heading, as it is, translated, or by the corpus's own glossary):
        "when did unemployment peak during the depression?" can find the table's rows first (they are full of
        years), but asks nothing of them."""
        asked = series_question(query)
        if asked is None or not hits:
            return TableFinding()
        documents: list[Document] = []
        tables: list[TableSeries] = []
        vectors: list[np.ndarray] = []
        pointed_to = table_candidates(hits)
        for doc_id in dict.fromkeys(pointed_to + [h.document for h in hits]):
            record = self.store.record(doc_id)  # its registry row says whether it has tables; its text is read if so
            document = self.store.document(doc_id) if record is not None and record.metadata.get("tables") else None
            if document is None:
                continue
            for series in table_series(document.text, document.metadata["tables"]):
                if doc_id in pointed_to or retrieved_rows(series, doc_id, hits):
                    documents.append(document)
                    tables.append(series)
                    vectors.append(self._columns(document, series))
        if not tables:
            return TableFinding()
        words = aligned_words(tuple(self._glossary()))
        choice = choose_column(query, vector, tables, vectors, words, asked)
        if choice is None:
            return TableFinding()
        table, column = choice
        left_out, named = heading_match(query, tables[table].columns[column], words)
        # The question must name the column: a question that only shares an extreme with a table ("when did
        # unemployment peak?") asks nothing of it. One the table was found by a row of must name it whole.
        if not named or (left_out and documents[table].doc_id not in pointed_to):
            return TableFinding()
        if table_says_none(asked, tables[table], column):
            return TableFinding(says_none=True)
        rows = answer_rows(asked, tables[table], column)
        document = documents[table]
        if not rows or self.store.versions_of([document.doc_id], revision).get(document.doc_id) != document.version:
            return TableFinding()
        found = self.store.sentences.within(document.doc_id, document.version, min(r.start for r in rows),
                                            max(r.end for r in rows))
        # each row's sentences, the answering row's first
        return TableFinding([s for r in rows for s in found if r.start <= s.start and s.end <= r.end],
                            table_answer(asked, tables[table], column, rows))

    def _columns(self, document: Document, series: TableSeries) -> np.ndarray:
        """A table's columns embedded with its title, once per document text."""
        key = (document.content_hash, series.label, series.title)
        if key not in self._column_vectors:
            inputs = [self.embedder.document_input(series.title, heading) for heading in series.columns]
            self._column_vectors[key] = np.asarray(self.embedder.embed_document_inputs(inputs), dtype=np.float32)
        return self._column_vectors[key]


# A number of four digits or more in a document's title that is not a year: an executive order's number, a Federal
# Register page, a code section. Dense embeddings barely tell 14233 from 14330, so a question that names one is
# searched within the documents whose titles carry it ("who signed EO 14233?" found EO 14330's fact sheet first).
_IDENTIFIER = re.compile(r"(?<![\d.,$])\d{4,}(?![\d%]|[.,]\d)")
_YEAR = re.compile(YEAR_DIGITS)


def identifiers(text: str) -> set[str]:
    """The long numbers of ``text`` that may identify a document: not years, amounts, shares or decimals."""
    return {n for n in _IDENTIFIER.findall(text) if not _YEAR.fullmatch(n)}


def identifier_index(titles: dict[str, str]) -> dict[str, list[str]]:
    """Identifier → the documents (doc id → title) whose titles carry it."""
    index: dict[str, list[str]] = {}
    for doc_id, title in titles.items():
        for number in identifiers(title):
            index.setdefault(number, []).append(doc_id)
    return index


def named_documents(query: str, index: Callable[[], dict[str, list[str]]]) -> list[str]:
    """The documents whose titles carry an identifier the query names ([] when it names none). ``index``
    (``identifier_index`` of the registered titles) is only read when the query holds a candidate number, so most
    questions cost nothing."""
    asked = identifiers(query)
    if not asked:
        return []
    found = index()
    return list(dict.fromkeys(doc_id for number in sorted(asked) for doc_id in found.get(number, [])))


def retrieved_rows(series: TableSeries, doc_id: str, hits: list[SearchHit]) -> bool:
    """Whether a retrieved passage of the document overlaps the table's yearly rows."""
    if not series.rows:
        return False
    first, last = series.rows[0].start, series.rows[-1].end
    return any(h.document == doc_id and h.start < last and first < h.end for h in hits)


def table_candidates(hits: list[SearchHit]) -> list[str]:
    """The documents a retrieval points to: the top passage's, and one that holds more than half of the passages
    (a question on 401(k) contributions can find the article's definition of a 401(k) first, and the table's rows
    after it)."""
    if not hits:
        return []
    counts = Counter(h.document for h in hits)
    most, n = counts.most_common(1)[0]
    return list(dict.fromkeys([hits[0].document] + ([most] if n * 2 > len(hits) else [])))


def fold_duplicates(ranked: list[SearchHit], k: int, threshold: float = 0.6) -> list[SearchHit]:
    """Keep the best of near-identical passages; the others' documents are listed as its alternatives."""
    kept: list[SearchHit] = []
    for hit in ranked:  # shingles are cached per text, so each passage's are computed once
        twin = next((k_ for k_ in kept if k_.document != hit.document and near_duplicate(k_.text, hit.text, threshold)),
                    None)
        if twin is not None:
            if hit.document not in twin.alternatives:
                twin.alternatives.append(hit.document)
            continue
        if len(kept) < k:
            kept.append(hit)
    return kept


def filter_where(documents: list[str] | None, language: str | None) -> dict | None:
    """The Chroma ``where`` clause of a search kept to some documents and/or one language (None: no filter)."""
    clauses: list[dict] = []
    if documents:
        clauses.append({"document": {"$in": list(documents)}})
    if language:
        clauses.append({"language": language})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


# --- fitting the sentence weight ----------------------------------------------------------------------------------------


def fit_sentence_weight(assistant, items, k: int, grid=WEIGHT_GRID) -> tuple[float, dict]:
    """The weight with the best hit@k on the answerable ``items`` (MRR breaks ties, then the smaller weight), and the
    figures of every weight tried. Each item is searched with the query the assistant builds for it (a follow-up's
    chain of questions included)."""
    from tqdm import tqdm

    from assistant.evaluate.metrics import hit_at_k, passage_matches, reciprocal_rank

    relevance: dict[float, list[list[bool]]] = {w: [] for w in grid}
    for item in tqdm(items, desc="retrieval", unit="question"):
        request = assistant.evidence(item.question, history=list(item.history))
        for w in grid:
            hits = assistant.retriever.search(request.query, k=k, query_vector=request.query_vector, sentence_weight=w)
            relevance[w].append([passage_matches(h.text, h.document, h.alternatives, item.reference_contexts,
                                                 item.reference_sources) for h in hits])
    curve = []
    for w in grid:
        rows = relevance[w]
        hit = sum(hit_at_k(r) for r in rows) / max(len(rows), 1)
        mrr = sum(reciprocal_rank(r) for r in rows) / max(len(rows), 1)
        curve.append({"weight": w, "hit_at_k": round(hit, 4), "mrr": round(mrr, 4)})
    best = max(curve, key=lambda p: (p["hit_at_k"], p["mrr"], -p["weight"]))
    return best["weight"], {"split": "dev", "questions": len(items), "k": k, "curve": curve,
                            "hit_at_k": best["hit_at_k"], "mrr": best["mrr"]}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m assistant.retrieve",
                                     description="Fit retrieval's sentence weight on the DEV split of an eval set.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit_parser = sub.add_parser("fit", help="try each weight on the dev questions; write the best with its metrics")
    fit_parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"), help="eval set (JSONL)")
    fit_parser.add_argument("--out", type=Path, default=FIT_PATH, help=f"fit file (default {FIT_PATH})")
    fit_parser.add_argument("--k", type=int, default=None, help="hits per question (default: top_k)")
    args = parser.parse_args(argv)

    from assistant.evaluate.loader import EvalInputError, load_split
    from assistant.pipeline import Assistant

    try:
        dev = load_split(args.questions, answerable_only=True)
    except EvalInputError as error:
        parser.error(str(error))
    assistant = Assistant()
    weight, metrics = fit_sentence_weight(assistant, dev, args.k or assistant.settings.top_k)
    metrics.update(embedding_model=assistant.embedder.model_id, questions_file=str(args.questions))
    args.out.write_text(json.dumps({"sentence_weight": weight, "metrics": metrics}, indent=1) + "\n",
                        encoding="utf-8")
    print(json.dumps({"sentence_weight": weight, "metrics": metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
