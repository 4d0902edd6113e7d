#!/usr/bin/env python3
"""Validate eval/claims.jsonl, the labelled claim set that calibrates the claim checker.

Usage: python eval/check_claims.py [--corpus DIR] [--claims eval/claims.jsonl] [--min-rows N]
                                  [--answers eval/answers_sample.jsonl]

Each line: {"id", "claim", "lang", "split", "label", "kind", "evidence", "note"} with
  label    supported | conflicting | not_found
  kind     paraphrase | number | year | date | name | negation | unaddressed | format_variant | cross_language
  evidence {"document": <corpus file name>, "quote": <verbatim snippet>}, null exactly for not_found
  note     what was changed (required for conflicting rows)
Checks: fields and values; ids unique and of the form cl-<lang>-NNN; split by the shared hash rule
(sha256(id) even -> dev); every evidence quote occurs whitespace-insensitively in its document (PDF text
from pypdf with "-\\n" hyphen breaks joined); label/kind consistency; cross_language rows really cross
languages; every corpus document is the evidence of at least one row. Prints counts per label, lang, kind
and split; exits 1 on failure. Needs only the standard library and pypdf.

It also checks eval/answers_sample.jsonl (answers "from another system", in the native shape
{id, question, answer, citations, must_include} or RAGAS's {user_input, response, retrieved_contexts,
reference}): each row's "expected" labels every sentence of the answer, and every cited quote really has
the status "expected" gives it (verbatim in the named document, wrong_document, near_verbatim or absent).
"""
import argparse
import json
import os
import re
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_questions import hash_split, load_doc, read_jsonl, squash  # noqa: E402  (the questions' rules)

FIELDS = ["id", "claim", "lang", "split", "label", "kind", "evidence", "note"]
LABELS = ("supported", "conflicting", "not_found")
KINDS_BY_LABEL = {
    "supported": {"paraphrase", "format_variant", "cross_language", "number", "year", "date", "name"},
    "conflicting": {"number", "year", "date", "name", "negation"},
    "not_found": {"unaddressed"},
}
KINDS = set().union(*KINDS_BY_LABEL.values())
CHINESE_DOC = "000_489c7a1c63214d85.txt"
NOT_DOCUMENTS = {"SOURCES.md"}
ID_RE = re.compile(r"^cl-(en|zh)-\d{3}$")
CITATION_STATUSES = ("verbatim", "wrong_document", "near_verbatim", "absent")
MARKER = re.compile(r"\s?\[\d+\]")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
MARKUP = re.compile(r"<[^>]+>|\\\(|\\\)|\*\*|VerDate|Federal Register /")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="/work/shared/corpus")
    ap.add_argument("--claims", default=os.path.join(here, "claims.jsonl"))
    ap.add_argument("--min-rows", type=int, default=260, help="fail below this many claims")
    ap.add_argument("--answers", default=os.path.join(here, "answers_sample.jsonl"),
                    help="sample answer file to check as well ('' to skip)")
    args = ap.parse_args()

    failures = []
    docs = {}

    def doc(name):
        """Squashed text of a corpus file, hyphen breaks of PDFs joined; None if absent."""
        if name not in docs:
            p = os.path.join(args.corpus, name)
            if name in NOT_DOCUMENTS or not os.path.isfile(p):
                docs[name] = None
            else:
                text = load_doc(p)
                if name.lower().endswith(".pdf"):
                    text = text.replace("-\n", "")
                docs[name] = squash(text)
        return docs[name]

    rows = read_jsonl(args.claims, failures)

    seen_ids, seen_claims = set(), {}
    counts = {k: Counter() for k in ("label", "lang", "kind", "split")}
    cross = Counter()
    evidence_docs = Counter()
    for ln, r in rows:
        rid = r.get("id", f"<line {ln}>")

        def fail(msg, rid=rid):
            failures.append(f"{rid}: {msg}")

        missing = [k for k in FIELDS if k not in r]
        extra = sorted(set(r) - set(FIELDS))
        if missing or extra:
            fail(f"missing fields {missing}, unknown fields {extra}")
            continue
        if not isinstance(rid, str) or not ID_RE.match(rid):
            fail("id must look like cl-en-001 / cl-zh-001")
            continue
        if rid in seen_ids:
            fail("duplicate id")
        seen_ids.add(rid)
        if rid.split("-")[1] != r["lang"]:
            fail(f"id prefix does not match lang {r['lang']!r}")
        claim = r["claim"]
        if not isinstance(claim, str) or not claim.strip():
            fail("claim must be a non-empty string")
            continue
        if squash(claim) in seen_claims:
            fail(f"same claim text as {seen_claims[squash(claim)]}")
        seen_claims[squash(claim)] = rid
        if r["lang"] not in ("en", "zh"):
            fail(f"bad lang {r['lang']!r}")
        elif r["lang"] == "zh" and not CJK.search(claim):
            fail("lang zh but the claim has no Chinese characters")
        elif r["lang"] == "en" and len(CJK.findall(claim)) > 4:
            fail("lang en but the claim is mostly Chinese")
        if r["split"] != hash_split(rid):
            fail(f"split must be {hash_split(rid)!r} by the hash rule")
        label, kind = r["label"], r["kind"]
        if label not in LABELS:
            fail(f"bad label {label!r}")
            continue
        if kind not in KINDS_BY_LABEL[label]:
            fail(f"kind {kind!r} not allowed for label {label!r} (allowed: {sorted(KINDS_BY_LABEL[label])})")
        if not isinstance(r["note"], str):
            fail("note must be a string")
        elif label == "conflicting" and not r["note"].strip():
            fail("conflicting rows need a note saying what was changed")
        for k, v in (("label", label), ("lang", r["lang"]), ("kind", kind), ("split", r["split"])):
            counts[k][v] += 1
        cross[(label, r["lang"], r["split"])] += 1

        ev = r["evidence"]
        if label == "not_found":
            if ev is not None:
                fail("not_found rows must have evidence null")
            continue
        if not isinstance(ev, dict) or set(ev) != {"document", "quote"}:
            fail('evidence must be {"document": ..., "quote": ...}')
            continue
        name, quote = ev["document"], ev["quote"]
        text = doc(name) if isinstance(name, str) else None
        if text is None:
            fail(f"evidence document not in the corpus: {name!r}")
            continue
        if not isinstance(quote, str) or len(squash(quote)) < 8:
            fail("evidence quote must be a string of at least 8 non-space characters")
            continue
        if MARKUP.search(quote):
            fail(f"quote contains markup or page-header text: {quote!r}")
        if squash(quote) not in text:
            fail(f"quote not found in {name}: {quote!r}")
        evidence_docs[name] += 1
        if kind == "cross_language":
            zh_evidence = name == CHINESE_DOC
            if (r["lang"] == "zh") == zh_evidence:
                fail("cross_language: the claim and its evidence must be in different languages")

    corpus_docs = sorted(n for n in os.listdir(args.corpus)
                         if n not in NOT_DOCUMENTS and os.path.isfile(os.path.join(args.corpus, n)))
    for n in corpus_docs:
        if evidence_docs[n] == 0:
            failures.append(f"document {n} is the evidence of no claim")
    if len(rows) < args.min_rows:
        failures.append(f"only {len(rows)} claims (want at least {args.min_rows})")

    print(f"claims: {len(rows)}")
    for k in ("label", "lang", "kind", "split"):
        print(f"  {k:<6} " + "  ".join(f"{v}={n}" for v, n in sorted(counts[k].items())))
    print(f"\n{'label':<12}{'en/dev':>8}{'en/test':>9}{'zh/dev':>8}{'zh/test':>9}{'total':>7}")
    for lab in LABELS:
        cells = [cross[(lab, lg, sp)] for lg in ("en", "zh") for sp in ("dev", "test")]
        print(f"{lab:<12}{cells[0]:>8}{cells[1]:>9}{cells[2]:>8}{cells[3]:>9}{sum(cells):>7}")
    print("\nevidence rows per document:")
    for n in corpus_docs:
        print(f"  {evidence_docs[n]:>4}  {n}")
    if args.answers:
        failures.extend(check_answers(args.answers, doc, corpus_docs))
    if failures:
        print(f"\nFAILURES ({len(failures)}):")
        for x in failures:
            print("  " + x)
        return 1
    print("\nOK: all checks passed")
    return 0


def check_answers(path, doc, corpus_docs):
    """Check the hand-labelled sample answers; return failure messages and print their counts."""
    failures, shapes, labels, statuses = [], Counter(), Counter(), Counter()
    with open(path, encoding="utf-8") as f:
        lines = [(ln, line) for ln, line in enumerate(f, 1) if line.strip()]
    for ln, line in lines:
        where = f"{os.path.basename(path)} line {ln}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            failures.append(f"{where}: invalid JSON: {e}")
            continue
        if "answer" in row and "question" in row:
            shapes["native"] += 1
            answer = row["answer"]
        elif "response" in row and "user_input" in row:
            shapes["ragas"] += 1
            answer = row["response"]
            if not isinstance(row.get("retrieved_contexts", []), list):
                failures.append(f"{where}: retrieved_contexts must be a list")
        else:
            failures.append(f"{where}: needs question+answer or user_input+response")
            continue
        expected = row.get("expected")
        if not isinstance(expected, dict) or not isinstance(expected.get("sentences"), list) \
                or not expected["sentences"]:
            failures.append(f"{where}: expected.sentences must be a non-empty list")
            continue
        plain = squash(MARKER.sub("", answer))
        for sent in expected["sentences"]:
            if sent.get("label") not in LABELS:
                failures.append(f"{where}: bad sentence label {sent.get('label')!r}")
            labels[sent.get("label")] += 1
            if squash(sent.get("text", "")) not in plain:
                failures.append(f"{where}: expected sentence not in the answer: {sent.get('text')!r}")
        cits, exp_cits = row.get("citations", []), expected.get("citations", [])
        if len(cits) != len(exp_cits):
            failures.append(f"{where}: expected.citations must describe each of the {len(cits)} citations")
            continue
        for c, e in zip(cits, exp_cits):
            quote, named = squash(c.get("quote", "")), c.get("document")
            found_in = [n for n in corpus_docs if quote and quote in (doc(n) or "")]
            status = e.get("status")
            statuses[status] += 1
            actual = ("verbatim" if (named in found_in if named else found_in) else
                      "wrong_document" if found_in else "near_verbatim/absent")
            if status not in CITATION_STATUSES or (actual != status and not (
                    actual == "near_verbatim/absent" and status in ("near_verbatim", "absent"))):
                failures.append(f"{where}: citation status {status!r}, but the quote is {actual}: {c.get('quote')!r}")
            if not isinstance(e.get("sentence"), int) or not 0 <= e["sentence"] < len(expected["sentences"]):
                failures.append(f"{where}: citation 'sentence' must index expected.sentences (0-based)")
    print(f"\nanswers sample: {len(lines)} rows  " + "  ".join(f"{k}={v}" for k, v in sorted(shapes.items())))
    print("  sentence labels: " + "  ".join(f"{k}={v}" for k, v in sorted(labels.items(), key=str)))
    print("  citation statuses: " + "  ".join(f"{k}={v}" for k, v in sorted(statuses.items(), key=str)))
    return failures


if __name__ == "__main__":
    sys.exit(main())
