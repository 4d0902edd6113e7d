#!/usr/bin/env python3
"""Validate eval/questions.jsonl against the corpus.

Usage: python eval/check_questions.py [--corpus /work/shared/corpus] [--questions eval/questions.jsonl]

Checks
  * every line is a JSON object with the required fields and allowed values;
  * ids are unique; category/lang/kind/answerable/history are consistent;
  * split follows the hash rule: dev if sha256(id) is even, else test;
  * kind is "<question lang>_to_<document lang>" for answerable items (the Chinese
    article is zh, every other document en) and "none" for unanswerable ones;
  * must_include_mode is "all" (every string required, one per part: compound
    questions) or "any" (alternative forms of one fact);
  * every reference_contexts snippet occurs, whitespace-insensitively, in at least
    one of the referenced documents (PDF text from pypdf with "-\\n" hyphen breaks
    joined), and every referenced document contains at least one snippet;
  * snippet lengths: 6-25 words (English) or 10-40 non-space characters (Chinese);
    snippets from the DOL table file only need to lie within one line;
  * every must_include string occurs (whitespace- and case-insensitively) in at least one
    referenced document; for cross-language categories it must contain no CJK.
Prints counts per category/split and all failures (and warnings); exits 1 on failure.
Needs only the standard library and pypdf.
"""
import argparse
import hashlib
import json
import os
import re
import sys
from collections import Counter

CATEGORIES = {"en_to_zh", "zh_to_en", "en_to_en", "zh_to_zh", "followup", "table", "unanswerable",
              "compound", "paraphrase", "why_how", "doc_fact", "topic_shift", "off_topic",
              "keyword"}
CAT_LANG = {"en_to_zh": "en", "zh_to_en": "zh", "en_to_en": "en", "zh_to_zh": "zh"}
CROSS_LANG = {"en_to_zh", "zh_to_en"}
KINDS = {"en_to_zh", "zh_to_en", "en_to_en", "zh_to_zh", "none"}
UNANSWERABLE = {"unanswerable", "off_topic"}       # near-topic and off-topic questions the corpus cannot answer
HISTORY_REQUIRED = {"followup", "topic_shift"}     # topic_shift: self-contained question after an unrelated turn
HISTORY_ALLOWED = HISTORY_REQUIRED | UNANSWERABLE
FIELDS = ["id", "question", "category", "lang", "split", "answerable", "reference",
          "reference_contexts", "reference_sources", "must_include", "history",
          "kind", "must_include_mode"]
CHINESE_DOC = "000_489c7a1c63214d85.txt"
TABLE_DOC_PREFIX = "dol-ebsa_"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")
WS = re.compile(r"\s+")
# A PDF's running header ("Federal Register / Vol. 90 ... / Tuesday, August 12, 2025") carries document facts
# and is citable; the print-job line (VerDate ...) and markup are not.
MARKUP = re.compile(r"<[^>]+>|\\\(|\\\)|\*\*|VerDate")
SHORT_LINE_TOKENS = 15  # a header, signature or front-matter line this short may be quoted in part


def hash_split(qid):
    """The split rule of INTERFACES.md, shared with eval/claims.jsonl."""
    return "dev" if int(hashlib.sha256(qid.encode()).hexdigest(), 16) % 2 == 0 else "test"


def doc_lang(name):
    return "zh" if name == CHINESE_DOC else "en"


def squash(s):
    return WS.sub("", s)


def load_doc(path):
    if path.lower().endswith(".pdf"):
        try:
            import pypdf
        except ImportError:
            sys.exit("pypdf is required to read the PDF documents (pip install pypdf)")
        import logging
        logging.getLogger("pypdf").setLevel(logging.ERROR)
        reader = pypdf.PdfReader(path)
        text = "\n".join((p.extract_text() or "") for p in reader.pages)
        text = text.replace("\r\n", "\n")
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    return text


def read_jsonl(path, failures):
    """(line number, object) of every JSON-object line of ``path``; a bad line is reported in ``failures``."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                failures.append(f"line {ln}: invalid JSON: {e}")
                continue
            if not isinstance(row, dict):
                failures.append(f"line {ln}: not a JSON object")
                continue
            rows.append((ln, row))
    return rows


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="/work/shared/corpus")
    ap.add_argument("--questions", default=os.path.join(here, "questions.jsonl"))
    args = ap.parse_args()

    failures, warnings = [], []
    docs_raw, docs_sq, docs_unjoined = {}, {}, {}

    def doc(name):
        if name not in docs_sq:
            p = os.path.join(args.corpus, name)
            if not os.path.isfile(p):
                docs_sq[name] = docs_raw[name] = docs_unjoined[name] = None
            else:
                text = load_doc(p)
                docs_unjoined[name] = squash(text)
                if name.lower().endswith(".pdf"):
                    text = text.replace("-\n", "")  # join hyphenated line breaks
                docs_raw[name] = text
                docs_sq[name] = squash(text)
        return docs_sq[name]

    items = read_jsonl(args.questions, failures)

    seen = set()
    counts = Counter()
    langs = Counter()
    for ln, q in items:
        qid = q.get("id", f"<line {ln}>")

        def fail(msg, qid=qid):
            failures.append(f"{qid}: {msg}")

        def warn(msg, qid=qid):
            warnings.append(f"{qid}: {msg}")

        missing = [k for k in FIELDS if k not in q]
        if missing:
            fail(f"missing fields {missing}")
            continue
        extra = set(q) - set(FIELDS)
        if extra:
            warn(f"extra fields {sorted(extra)}")
        if not isinstance(q["id"], str) or not q["id"]:
            fail("id must be a non-empty string")
        if q["id"] in seen:
            fail("duplicate id")
        seen.add(q["id"])
        cat = q["category"]
        if cat not in CATEGORIES:
            fail(f"bad category {cat!r}")
            continue
        if q["lang"] not in ("en", "zh"):
            fail(f"bad lang {q['lang']!r}")
        if q["split"] not in ("dev", "test"):
            fail(f"bad split {q['split']!r}")
        elif isinstance(q["id"], str) and q["split"] != hash_split(q["id"]):
            fail(f"split {q['split']} breaks the hash rule (want {hash_split(q['id'])})")
        if q["kind"] not in KINDS:
            fail(f"bad kind {q['kind']!r}")
        if q["must_include_mode"] not in ("all", "any"):
            fail(f"bad must_include_mode {q['must_include_mode']!r}")
        counts[(cat, q["split"])] += 1
        langs[(cat, q["lang"])] += 1
        if cat in CAT_LANG and q["lang"] != CAT_LANG[cat]:
            fail(f"lang {q['lang']} does not match category {cat}")
        for k in ("question", "reference"):
            if not isinstance(q[k], str) or not q[k].strip():
                fail(f"{k} must be a non-empty string")
        if q["lang"] == "zh" and not CJK.search(q["question"]):
            fail("lang zh but question has no Chinese characters")
        if q["lang"] == "en" and len(CJK.findall(q["question"])) > 6:
            warn("lang en but question contains many CJK characters")
        if q["lang"] == "zh" and not CJK.search(q["reference"]):
            fail("reference should be in Chinese for a zh question")
        for k in ("reference_contexts", "reference_sources", "must_include", "history"):
            if not isinstance(q[k], list):
                fail(f"{k} must be a list")
        if not all(isinstance(q[k], list) for k in
                   ("reference_contexts", "reference_sources", "must_include", "history")):
            continue
        if not isinstance(q["answerable"], bool):
            fail("answerable must be a boolean")
        if (cat in UNANSWERABLE) == bool(q["answerable"]):
            fail(f"answerable must be false exactly for categories {sorted(UNANSWERABLE)}")
        if cat in CAT_LANG and q["kind"] != cat:
            fail(f"kind {q['kind']} must equal category {cat}")
        if cat in UNANSWERABLE and q["kind"] != "none":
            fail("kind must be 'none' for an unanswerable question")
        if cat not in UNANSWERABLE and q["kind"] != "none" and not q["kind"].startswith(q["lang"] + "_to_"):
            fail(f"kind {q['kind']} does not start with the question language {q['lang']}")
        if cat == "compound" and (q["must_include_mode"] != "all" or len(q["must_include"]) < 2):
            fail("compound questions need must_include_mode 'all' and one must_include string per part (>= 2)")

        # history
        hist = q["history"]
        if cat in HISTORY_ALLOWED:
            if cat in HISTORY_REQUIRED and not hist:
                fail(f"{cat} needs a non-empty history")
            for i, turn in enumerate(hist):
                want = "user" if i % 2 == 0 else "assistant"
                if not isinstance(turn, dict) or turn.get("role") != want \
                        or not isinstance(turn.get("content"), str) or not turn["content"].strip():
                    fail(f"history[{i}] must be {{'role': '{want}', 'content': <text>}}")
            if hist and hist[-1].get("role") != "assistant":
                fail("history should end with an assistant turn")
        elif hist:
            fail(f"history must be [] outside the categories {sorted(HISTORY_ALLOWED)}")

        ctxs, srcs, musts = q["reference_contexts"], q["reference_sources"], q["must_include"]
        if cat in UNANSWERABLE:
            if ctxs or srcs or musts:
                fail("unanswerable items must have empty reference_contexts/sources/must_include")
            continue
        if not 1 <= len(ctxs) <= (4 if cat == "compound" else 3):
            fail(f"need 1-3 (compound: 1-4) reference_contexts, got {len(ctxs)}")
        if not srcs:
            fail("reference_sources is empty")
        if not 1 <= len(musts) <= (4 if cat == "compound" else 3):
            fail(f"need 1-3 (compound: 2-4) must_include strings, got {len(musts)}")
        want_kind = {doc_lang(s) for s in srcs}
        if len(want_kind) == 1 and q["kind"] != f"{q['lang']}_to_{want_kind.pop()}":
            fail(f"kind {q['kind']} does not match question language and sources {srcs}")
        if cat == "en_to_zh" and CHINESE_DOC not in srcs:
            fail("en_to_zh must be answered by the Chinese article")
        if cat in ("zh_to_en", "en_to_en") and CHINESE_DOC in srcs:
            fail(f"{cat} must be answered by English documents")
        if cat == "zh_to_zh" and srcs != [CHINESE_DOC]:
            fail("zh_to_zh must be answered by the Chinese article")
        if cat == "table" and not all(s.startswith(TABLE_DOC_PREFIX) for s in srcs):
            fail("table questions must cite the DOL tables file")

        texts = {}
        for s in srcs:
            t = doc(s)
            if t is None:
                fail(f"reference source not found in corpus: {s}")
            else:
                texts[s] = t
        doc_hits = Counter()
        for c in ctxs:
            if not isinstance(c, str) or not c.strip():
                fail("empty reference_contexts snippet")
                continue
            if MARKUP.search(c):
                fail(f"snippet contains markup/header text: {c!r}")
            is_table = all(s.startswith(TABLE_DOC_PREFIX) for s in srcs)
            short_line = any(squash(c) in squash(line) and len(line.split()) <= SHORT_LINE_TOKENS
                             for s in srcs if docs_raw.get(s) for line in docs_raw[s].splitlines())
            if short_line and not CJK.search(c) and len(c.split()) >= 3:
                pass  # part of a short header, signature or front-matter line: short, but the fact itself
            elif is_table:
                if "\n" in c or len(c.split()) < 3:
                    fail(f"table snippet should be >=3 tokens within one row line: {c!r}")
            elif CJK.search(c):
                n = len(squash(c))
                if not 10 <= n <= 40:
                    fail(f"Chinese snippet has {n} non-space characters (want 10-40): {c!r}")
            else:
                n = len(c.split())
                if not 6 <= n <= 25:
                    fail(f"English snippet has {n} words (want 6-25): {c!r}")
            sc = squash(c)
            found = [s for s, t in texts.items() if sc in t]
            if not found:
                fail(f"snippet not found in {srcs}: {c!r}")
            for s in found:
                doc_hits[s] += 1
                if s.lower().endswith(".pdf") and sc not in docs_unjoined[s]:
                    fail(f"snippet crosses a hyphenated line break in {s}: {c!r}")
            if is_table:
                for s in found:
                    if not any(sc in squash(line) for line in docs_raw[s].splitlines()):
                        fail(f"table snippet spans lines: {c!r}")
        for s in texts:
            if doc_hits[s] == 0:
                fail(f"no reference_contexts snippet found in cited source {s}")

        in_ctx = False
        for m in musts:
            if not isinstance(m, str) or not m.strip():
                fail("empty must_include string")
                continue
            if q["kind"] in CROSS_LANG and CJK.search(m):
                fail(f"must_include must be language-neutral for {q['kind']}: {m!r}")
            if q["lang"] == "en" and CJK.search(m):
                fail(f"must_include for an English question contains CJK: {m!r}")
            sm = squash(m).lower()  # the evaluator matches must_include case-insensitively
            if not any(sm in t.lower() for t in texts.values()):
                fail(f"must_include not found in referenced documents: {m!r}")
            if any(sm in squash(c).lower() for c in ctxs if isinstance(c, str)):
                in_ctx = True
        if musts and not in_ctx:
            warn("no must_include string occurs inside the reference_contexts snippets")

    # report
    print(f"questions: {len(items)}")
    cats = sorted(CATEGORIES)
    print(f"{'category':<14}{'dev':>5}{'test':>6}{'total':>7}   en  zh")
    for c in cats:
        d, t = counts[(c, 'dev')], counts[(c, 'test')]
        print(f"{c:<14}{d:>5}{t:>6}{d + t:>7}  {langs[(c, 'en')]:>3} {langs[(c, 'zh')]:>3}")
    dv = sum(v for (c, s), v in counts.items() if s == "dev")
    ts = sum(v for (c, s), v in counts.items() if s == "test")
    print(f"{'all':<14}{dv:>5}{ts:>6}{dv + ts:>7}")
    kinds = Counter((q.get("kind"), q.get("split")) for _, q in items)
    print("\nkind        dev  test")
    for k in sorted(KINDS):
        print(f"{k:<10}{kinds[(k, 'dev')]:>5}{kinds[(k, 'test')]:>6}")
    for c in cats:
        d, t = counts[(c, 'dev')], counts[(c, 'test')]
        if d + t >= 10 and min(d, t) < 0.3 * (d + t):
            warnings.append(f"category {c}: dev/test unbalanced by the hash rule ({d}/{t})")
    if warnings:
        print(f"\nwarnings ({len(warnings)}):")
        for w in warnings:
            print("  " + w)
    if failures:
        print(f"\nFAILURES ({len(failures)}):")
        for x in failures:
            print("  " + x)
        return 1
    print("\nOK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
