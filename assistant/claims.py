"""Claims of an answer, and the language-neutral facts in them: the domain logic of claim grading.

An answer is split into claims (sentences; a sentence joining two facts becomes two claims) in English and Chinese,
each keeping its citation markers ([1], [2, 3]) and quoted strings. The facts a claim states — years, dates,
percentages, numbers, names, negation — are read into one language-neutral form, so "1950 年" and "in 1950",
"35%", "35 percent" and "百分之三十五", "8 月 7 日" and "August 7", "1,000" and "1000", "9000 万" and "90 million"
compare equal. Two texts that speak of the same thing conflict when they state different values of the same kind
of fact ("35%" against "53%", 1974 against 1947). Quotes are located verbatim (whitespace-insensitively) or
near-verbatim, with the difference spelled out.

Pure Python, no model: the grader (assistant/evaluate/grade.py) brings the embeddings and the sentence index.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache

# ----------------------------------------------------------------------------------------------------- claims

_MARKER = re.compile(r"\s*[\[【](\d+(?:\s*[,，、]\s*\d+)*)[\]】]")
_ANY_MARKER = re.compile(r"[\[【]\d+(?:\s*[,，、]\s*\d+)*[\]】]")
_QUOTE = re.compile(r"“([^”]{2,})”|\"([^\"]{2,})\"|「([^」]{2,})」|‘([^’]{4,})’")
# A sentence ends at 。！？ or at . ! ? before whitespace — not after an abbreviation, an initial or inside a number.
_END = re.compile(r"[。！？!?]+[”」’\"]?|\.(?=[\s\"”’)\[【]|$)[”’\"]?|\n+")
_ABBREVIATION = re.compile(r"(?:\b[A-Z]|\b(?:Sec|No|Vol|Mr|Ms|Mrs|Dr|Inc|Corp|Co|Ltd|U\.S|e\.g|i\.e|etc|vs|Pub|L|Stat|"
                           r"U\.S\.C|v|St|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|approx|cf|Fig|pp?))\.$")
# Clause joints at which one sentence holds two facts: "…; …", "…, and …", "…，并…", "…，而…".
_JOINT = re.compile(r"\s*[;；]\s*|,\s+(?:and|while|whereas|but)\s+|，\s*(?:并且|并|而且|而|同时|但|但是)\s*")
_MIN_CLAUSE_TOKENS = 4


@dataclass(frozen=True)
class Claim:
    """One checkable statement of an answer: its text as written (markers kept) and where it stands."""

    text: str
    start: int  # offsets into the answer
    end: int
    markers: tuple[int, ...] = ()
    quotes: tuple[str, ...] = ()

    @property
    def plain(self) -> str:
        """The claim without its citation markers: what is embedded and checked."""
        text = re.sub(r"\s+", " ", _ANY_MARKER.sub("", self.text)).strip()
        return re.sub(r"\s+([.。!?！？,，;；])", r"\1", text)


def _markers(text: str) -> tuple[int, ...]:
    found: list[int] = []
    for match in _ANY_MARKER.finditer(text):
        for number in re.findall(r"\d+", match.group(0)):
            if int(number) not in found:
                found.append(int(number))
    return tuple(found)


def _quotes(text: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g) for m in _QUOTE.finditer(text))


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence (start, end) offsets of an answer: English and Chinese boundaries; quoted text is never cut, and
    the citation markers that follow a sentence's full stop ("… 1950. [1]") stay with that sentence."""
    protected = [(m.start(), m.end()) for m in _QUOTE.finditer(text)]
    spans, begin, pos = [], 0, 0
    while True:
        match = _END.search(text, pos)
        if match is None:
            break
        end = match.end()
        pos = end
        if any(s < match.start() and match.end() < e for s, e in protected):
            continue
        if match.group(0).startswith(".") and _ABBREVIATION.search(text[max(begin, match.start() - 12):match.start() + 1]):
            continue
        while (marker := _MARKER.match(text, end)) is not None:
            end = pos = marker.end()
        spans.append((begin, end))
        begin = end
    spans.append((begin, len(text)))
    out = []
    for start, end in spans:
        piece = text[start:end]
        lead, trail = len(piece) - len(piece.lstrip()), len(piece.rstrip())
        if piece.strip() and _MEANINGFUL.search(piece):
            out.append((start + lead, start + trail))
    return out


_MEANINGFUL = re.compile(r"[^\W_]", re.U)


def _token_count(text: str) -> int:
    text = _ANY_MARKER.sub("", text)
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    return len(re.findall(r"[^\W\d_\u3400-\u9fff]+|\d+", text)) + cjk // 2


def clause_spans(text: str, start: int = 0) -> list[tuple[int, int]]:
    """A sentence split at its clause joints (";", ", and", "，并"…) where both sides are long enough to state a
    fact each (at least four words, or eight Chinese characters); quoted text is never split."""
    protected = [(m.start(), m.end()) for m in _QUOTE.finditer(text)]
    cuts = [(m.start(), m.end()) for m in _JOINT.finditer(text) if not any(s < m.start() < e for s, e in protected)]
    spans, begin = [], 0
    for cut_start, cut_end in cuts:
        if _token_count(text[begin:cut_start]) >= _MIN_CLAUSE_TOKENS and _token_count(text[cut_end:]) >= _MIN_CLAUSE_TOKENS:
            spans.append((begin, cut_start))
            begin = cut_end
    spans.append((begin, len(text)))
    return [(start + s, start + e) for s, e in spans]


def split_claims(answer: str, clauses: bool = True) -> list[Claim]:
    """The claims of an answer, in order. Markers at the end of a sentence apply to every clause of it."""
    claims = []
    for s_start, s_end in _sentence_spans(answer or ""):
        sentence = answer[s_start:s_end]
        tail = re.search(r"(?:\s*[\[【]\d+(?:\s*[,，、]\s*\d+)*[\]】])+\s*[.。]?\s*$", sentence)
        shared = _markers(tail.group(0)) if tail else ()
        parts = clause_spans(sentence, s_start) if clauses else [(s_start, s_end)]
        for start, end in parts:
            text = answer[start:end].strip(" \t\n,，;；")
            if not text or not _MEANINGFUL.search(_ANY_MARKER.sub("", text)):
                continue
            offset = answer.find(text, start)
            markers = tuple(dict.fromkeys(_markers(text) + shared))
            claims.append(Claim(text=text, start=offset, end=offset + len(text), markers=markers,
                                quotes=_quotes(text)))
    return claims


# ----------------------------------------------------------------------------------------------------- facts

_CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000, "万亿": 1_000_000_000_000}
_CN_NUM = "零〇○一二两三四五六七八九十百千点"
# what a scale word multiplies by ("5 trillion", "5000 亿", "3 bn"; a unit heading's "(millions)" in the singular)
SCALES = {"thousand": 1e3, "million": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12, "tn": 1e12,
          "千": 1e3, "万": 1e4, "百万": 1e6, "千万": 1e7, "亿": 1e8, "十亿": 1e9, "百亿": 1e10, "千亿": 1e11, "万亿": 1e12}
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90})
_MONTHS = {m: i + 1 for i, m in enumerate("january february march april may june july august september october "
                                          "november december".split())}
_MONTHS.update({m[:3]: n for m, n in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_MONTH_RE = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|" \
            r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?"

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
DIGITS = _NUM  # a number in digits, commas as thousands separators: what ``number_value`` reads
_CNN = f"[{_CN_NUM}]+"
# An English count in words, compounds included ("twenty one", "thirty-five"); zero and one are left to the
# patterns that read them, where a bare "one" is a pronoun as often as a count.
WORD_NUMBER = r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[-\s](?:one|two|three|four|five|six|" \
            r"seven|eight|nine))?|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|" \
            r"fifteen|sixteen|seventeen|eighteen|nineteen)"

# Patterns in priority order: an earlier pattern's match hides later ones over the same characters.
_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("section", re.compile(r"(?<![A-Za-z0-9])\d+[a-z]?\s?\([a-z0-9]{1,3}\)(?:\(\d{1,2}\))*", re.I)),  # 401(k), 2(a)(1): names
    ("date", re.compile(rf"\b(?P<m>{_MONTH_RE})\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<y>\d{{4}})\b)?")),
    ("date", re.compile(rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m>{_MONTH_RE})(?:,?\s+(?P<y>\d{{4}})\b)?")),
    ("date", re.compile(r"\b(?P<y>\d{4})-(?P<mn>\d{1,2})-(?P<d>\d{1,2})\b")),
    ("date", re.compile(rf"(?:(?P<y>\d{{4}}|[{_CN_NUM}]{{4}})\s*年\s*)?(?P<mn>\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*月\s*"
                        rf"(?P<d>\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*[日号]")),
    ("month", re.compile(rf"(?:(?P<y>\d{{4}}|[{_CN_NUM}]{{4}})\s*年\s*)(?P<mn>\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*月")),
    ("month", re.compile(rf"\b(?P<m>{_MONTH_RE})(?:\s+(?:of\s+)?(?P<y>\d{{4}}))\b")),
    ("percent", re.compile(rf"(?<![A-Za-z0-9_.,])(?P<n>{_NUM}|{WORD_NUMBER})\s*(?:%|％|percent\b|per\s+cent\b|"
                           r"percentage\s+points?\b)", re.I)),
    ("percent", re.compile(rf"百分之\s*(?P<n>{_NUM}|{_CNN})")),
    ("percent", re.compile(rf"(?P<n>{_NUM}|{_CNN})\s*个?百分点")),
    ("decade", re.compile(r"\b(?P<n>1[6-9]\d0|20\d0)s\b|(?P<c>1[6-9]\d0|20\d0|[2-9]0)\s*年代")),
    ("year", re.compile(rf"(?P<n>\d{{4}}|[{_CN_NUM}]{{4}})\s*年(?!代)")),
    ("number", re.compile(rf"(?P<cur>\$|US\$|USD\s?)?(?P<n>{_NUM})\s*(?P<s>thousand|million|billion|trillion|万亿|亿|万|千)"
                          rf"(?:\s*(?:美元|元|dollars?))?", re.I)),
    ("number", re.compile(rf"(?P<n>{_CNN})(?P<s>万亿|亿|万)")),
    ("year", re.compile(r"(?<![A-Za-z0-9_,.$])(?P<n>1[6-9]\d\d|20\d\d)(?![A-Za-z0-9_]|[,.]\d|\s*(?:%|percent))")),
    ("number", re.compile(rf"(?<![A-Za-z0-9_.])(?P<cur>\$|US\$)?(?P<n>{_NUM})(?![\d])(?:\s*(?:美元|元|dollars?))?")),
    ("number", re.compile(rf"(?P<n>{_CNN})\s*(?=[个名家项条位人次倍岁座所份种])")),
    ("number", re.compile(rf"\b(?P<n>{WORD_NUMBER})\b(?=\s+[a-z])", re.I)),
]
_NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|cannot|without|prohibit\w*|forbid\w*)\b|n't\b|"
                       r"不|没有|没|未|无须|无需|并非|禁止")  # 非 alone is mostly a prefix (非政府, 而非)
# A bound is no negation: "no more than 60 days", "do not exceed 3 percent", "不超过 20%" state a limit.
_BOUND = re.compile(r"\b(?:no|not)\s+(?:more|less|fewer|greater|later|earlier|higher|lower)\s+than\b|"
                    r"\b(?:do|does|did|shall|may|must|will|can)?\s*not\s+exceed\w*|不超过|不得超过|不少于|不低于|不高于|"
                    r"不迟于|不早于|不多于", re.I)
_NAME_TOKEN = r"(?:[A-Z][a-zA-Z'’\-]+|[A-Z]{2,}|[A-Z]\.)"
_NAME = re.compile(rf"{_NAME_TOKEN}(?:\s+(?:(?:of|for|and|the|de|on)\s+)?{_NAME_TOKEN})*")
_LEADING = set("the a an this that these those in on at by for under its their our his her it as of and".split())
_NOT_NAMES = {m.capitalize() for m in _MONTHS} | {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                                                   "Sunday"}


@dataclass(frozen=True)
class Fact:
    """A fact stated in a text, in a language-neutral form: ``kind`` is year, decade, date, month, percent, number,
    name or negation; ``value`` compares across languages (a float, (month, day), a name's head word)."""

    kind: str
    value: object
    text: str
    precision: float = 0.0  # for numbers: half the unit of the last digit written ("35" → 0.5, "3.5" → 0.05)

    def describe(self) -> str:
        return self.text.strip()


def cn_number(text: str) -> float | None:
    """A number written in Chinese numerals: 三十五 → 35, 一九七四 → 1974, 两千 → 2000, 三点五 → 3.5."""
    text = text.strip()
    if not text:
        return None
    if all(c in "0123456789." for c in text):
        try:
            return float(text)
        except ValueError:
            return None
    if "点" in text:
        whole, _, frac = text.partition("点")
        base = cn_number(whole) if whole else 0.0
        digits = "".join(str(_CN_DIGITS.get(c, "")) for c in frac)
        if base is None or not digits:
            return None
        return base + float("0." + digits)
    if not any(c in _CN_UNITS for c in text):
        if any(c not in _CN_DIGITS for c in text):
            return None
        return float("".join(str(_CN_DIGITS[c]) for c in text))  # read digit by digit: 一九七四
    total, current = 0, 0
    for char in text:
        if char in _CN_DIGITS:
            current = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[char]
            current = 0
        else:
            return None
    return float(total + current)


def _number(text: str) -> tuple[float, float] | None:
    """(value, precision) of a number in digits (commas as thousands), Chinese numerals or English words."""
    raw = text.strip()
    low = raw.lower().replace("-", " ")
    if low in _WORDS:
        return float(_WORDS[low]), 0.5
    if " " in low:
        tens, _, unit = low.partition(" ")
        if tens in _WORDS and unit in _WORDS:
            return float(_WORDS[tens] + _WORDS[unit]), 0.5
    if re.fullmatch(_NUM, raw):
        digits = raw.replace(",", "")
        decimals = len(digits.partition(".")[2])
        return float(digits), 0.5 * 10 ** -decimals
    value = cn_number(raw)
    if value is None:
        return None
    decimals = len(raw.partition("点")[2])
    return value, 0.5 * 10 ** -decimals


def number_value(text: str) -> float | None:
    """The value of a number written in digits, English words ("five", "twenty one") or Chinese numerals ("十五")."""
    parsed = _number(text)
    return None if parsed is None else parsed[0]


def scaled_value(number: str, scale: str | None = None) -> float | None:
    """A number (``number_value``) times its scale word: ("5000", "亿") → 5e11, ("1.5", "trillion") → 1.5e12."""
    value = number_value(number)
    if value is None:
        return None
    return value * SCALES[scale.lower()] if scale else value


def _month(match: re.Match) -> int | None:
    groups = match.groupdict()
    if groups.get("m"):
        key = groups["m"].rstrip(".").lower()
        return 9 if key.startswith("sept") else _MONTHS.get(key, _MONTHS.get(key[:3]))
    if groups.get("mn"):
        value = _number(groups["mn"])
        return int(value[0]) if value and 1 <= value[0] <= 12 else None
    return None


def _fact(kind: str, match: re.Match) -> list[Fact]:
    text = match.group(0)
    groups = match.groupdict()
    if kind == "section":
        return []
    if kind in ("date", "month"):
        month = _month(match)
        out = []
        if month is not None:
            day = None
            if groups.get("d"):
                parsed = _number(groups["d"])
                day = int(parsed[0]) if parsed else None
            out.append(Fact("date", (month, day), text))
        if groups.get("y"):
            parsed = _number(groups["y"])
            if parsed:
                out.append(Fact("year", parsed[0], groups["y"]))
        return out
    if kind == "decade":
        value = groups.get("n") or groups.get("c")
        assert value is not None  # the pattern matches one of the two groups
        number = float(value)
        if number < 100:  # 70 年代: the century goes unsaid
            number += 1900
        return [Fact("decade", number, text)]
    parsed = _number(groups["n"])
    if parsed is None:
        return []
    value, precision = parsed
    if kind == "number" and groups["n"] == "一" and not groups.get("s"):
        return []  # 一次, 一项: "a", "once" far more often than the number one
    if kind == "number" and groups.get("s"):
        scale = SCALES[groups["s"].lower()]
        value, precision = value * scale, precision * scale
    if kind == "year" and not 1000 <= value <= 2200:
        return []
    return [Fact(kind, value, text, precision)]


def _names(text: str) -> list[Fact]:
    """Proper names: runs of capitalised words (not one capitalised word opening a sentence), acronyms, titles of
    works in 《》, and in Chinese the organisation and place names jieba tags. The value is the head word."""
    found = []
    for match in _NAME.finditer(text):
        words = [_plain_word(w) for w in match.group(0).split()]
        while words and words[0].lower() in _LEADING:
            words = words[1:]
        cut = next((i for i, w in enumerate(words) if w.rstrip(".") in _NOT_NAMES), None)
        words = words[:cut] if cut is not None else words  # "Statement of December 21": the date is no name
        while words and words[-1].lower() in _LEADING:
            words = words[:-1]
        if not words:
            continue
        name = " ".join(words)
        before = text[:match.start()].rstrip()
        opens = not before or before[-1] in ".!?。:：\n\"“(-•*" or _ANY_MARKER.search(before[-6:] or "") is not None
        if len(words) == 1 and (opens and not name.isupper()) or name in _NOT_NAMES:
            continue
        if len(words) == 1 and len(name) < 2:
            continue
        found.append(Fact("name", words[-1].rstrip(".").lower(), name))
    for title in re.findall(r"《([^》]{2,})》", text):
        found.append(Fact("name", title, title))
    if re.search(r"[\u4e00-\u9fff]", text):
        for word, flag in _posseg(text):
            # Organisations, and places named as such (…州, …省): jieba's person and place tags fire on ordinary
            # words (顾问, 养老金, 加密, 之日起) and miss transliterated names (奥巴马 is tagged a place).
            if (flag == "nt" and len(word) >= 3) or (flag == "ns" and len(word) >= 3 and word[-1] in "州省市县国"):
                found.append(Fact("name", word, word))
    return found


def _plain_word(word: str) -> str:
    """A name's word without a possessive ("Labor's", "Labor’s" → "Labor")."""
    return re.sub(r"['’]s$", "", word)


def _posseg(text: str) -> list[tuple[str, str]]:
    import jieba.posseg

    return [(p.word, p.flag) for p in jieba.posseg.cut(text)]


@lru_cache(maxsize=65536)
def facts(text: str) -> tuple[Fact, ...]:
    """Every fact stated in ``text`` (citation markers ignored), language-neutral."""
    text = _ANY_MARKER.sub(" ", text or "")
    taken = [False] * len(text)
    out: list[Fact] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if start == end or any(taken[start:end]):
                continue
            got = _fact(kind, match)
            if got or kind == "section":
                for i in range(start, end):
                    taken[i] = True
                out.extend(got)
    out.extend(_names(text))
    negation = _NEGATION.search(_BOUND.sub(" ", text))
    if negation:
        out.append(Fact("negation", True, negation.group(0)))
    return tuple(out)


# ----------------------------------------------------------------------------------------------------- conflicts

CHECKS = ("year", "decade", "date", "percent", "number", "name", "negation")


def _same(kind: str, a: Fact, b: Fact) -> bool:
    if kind == "date":
        (am, ad), (bm, bd) = a.value, b.value  # type: ignore[misc,has-type]
        return am == bm and (ad is None or bd is None or ad == bd)  # type: ignore[has-type]
    if kind in ("year", "decade", "percent", "number"):
        tolerance = max(a.precision, b.precision, 1e-9)
        x, y = float(a.value), float(b.value)  # type: ignore[arg-type]
        if abs(x - y) <= tolerance + 1e-9 * max(abs(x), 1.0):
            return True
        # Tables give counts in thousands or millions ("81,626" under "thousands" is 81.6 million).
        return kind == "number" and any(abs(x - y * scale) <= max(a.precision, b.precision * scale) + 1e-9 * abs(x)
                                        for scale in (1e3, 1e6))
    return a.value == b.value


_TITLES = {"president", "secretary", "senator", "governor", "chairman", "chair", "mr", "ms", "mrs", "dr", "judge",
           "justice", "vice", "commissioner", "director", "administrator"}


def _name_present(name: Fact, text: str) -> bool:
    """A name is in a text when all its words are (possessives and case aside), or — after a title such as
    "President" — its head word is ("President Trump" matches "Donald J. Trump"); an acronym matches the name it
    abbreviates, either way ("DOL" ~ "Department of Labor", "Securities and Exchange Commission" ~ "SEC")."""
    low = text.lower().replace("’", "'")
    words = [w.lower().rstrip(".") for w in name.text.split() if w.lower() not in _LEADING]
    if not words or name.text.lower() in low:
        return True
    if words[0] in _TITLES and str(name.value) in low:
        return True
    if " ".join(_plain_word(w) for w in name.text.split()).lower() in re.sub(r"'s\b", "", low):
        return True
    capitals = [w for w in name.text.split() if w[:1].isupper()]
    if len(capitals) >= 2 and re.search(rf"\b{re.escape(''.join(w[0] for w in capitals))}\b", text):
        return True
    if name.text.isupper() and len(name.text) >= 2:
        for other in _NAME.finditer(text):
            words = other.group(0).split()
            while words and words[0].lower() in _LEADING:
                words = words[1:]
            if not words:
                continue
            if name.text in ("".join(w[0] for w in words if w[0].isupper()), "".join(w[0].upper() for w in words)):
                return True
    return False


@dataclass(frozen=True)
class Conflict:
    kind: str
    claim: str  # the value as the claim writes it
    evidence: str  # the values of that kind in the evidence

    def describe(self) -> str:
        return f"{self.kind}: {self.claim!r} in the claim, {self.evidence!r} in the evidence"


def conflicts(claim: str, evidence: str, checks: tuple[str, ...] | frozenset[str] = CHECKS) -> list[Conflict]:
    """How ``evidence`` contradicts ``claim`` on facts of the same kind: a value of the claim that the evidence
    does not state, where the evidence states another value of that kind that the claim does not. A kind the
    evidence does not mention is no conflict (it is simply not evidence for that part)."""
    claim_facts, evidence_facts = facts(claim), facts(evidence)
    out = []
    for kind in checks:
        if kind == "negation":
            # Only the clause of the evidence that says what the claim says counts ("caps the supply at 21 million,
            # and has never been hacked": the cap is stated affirmatively).
            clause_facts = facts(closest_clause(claim, evidence))
            if any(f.kind == "negation" for f in claim_facts) != any(f.kind == "negation" for f in clause_facts):
                side = next((f.text for f in claim_facts if f.kind == "negation"), "")
                other = next((f.text for f in clause_facts if f.kind == "negation"), "")
                out.append(Conflict("negation", side or "(affirmative)", other or "(affirmative)"))
            continue
        if kind == "name":
            if _language(claim) != _language(evidence):
                continue  # across languages a name is written differently (拜登 / Biden): nothing to compare
            ours = [f for f in claim_facts if f.kind == "name"]
            theirs = [f for f in evidence_facts if f.kind == "name"]
            missing = [f for f in ours if not _name_present(f, evidence)]
            extra = [f for f in theirs if not _name_present(f, claim)]
            if missing and extra and _comparable_names(missing, extra):
                out.append(Conflict("name", ", ".join(f.text for f in missing), ", ".join(f.text for f in extra)))
            continue
        ours = [f for f in claim_facts if f.kind == kind]
        theirs = [f for f in evidence_facts if f.kind == kind]
        if not ours or not theirs:
            continue
        missing = [f for f in ours if not any(_same(kind, f, g) for g in theirs)]
        extra = [g for g in theirs if not any(_same(kind, f, g) for f in ours)]
        if missing and extra:
            out.append(Conflict(kind, ", ".join(f.text.strip() for f in missing),
                                ", ".join(g.text.strip() for g in extra)))
    return out


def _language(text: str) -> str:
    from assistant.clean import detect_language

    return detect_language(text)


_CLAUSE = re.compile(r"[,;，；:：]\s*|\s+(?:and|but|while|whereas)\s+|(?:并且|而且|但是|但|而)")


def closest_clause(claim: str, evidence: str) -> str:
    """The clause of ``evidence`` that shares the most with ``claim``: words, then facts (across languages)."""
    clauses = [c for c in _CLAUSE.split(evidence or "") if c and c.strip()]
    if len(clauses) <= 1:
        return evidence
    return max(clauses, key=lambda c: (overlap(claim, c) + shared_facts(claim, c), -clauses.index(c)))


def _comparable_names(missing: list[Fact], extra: list[Fact]) -> bool:
    """Names can only be compared within one script: a Latin name against a Latin one, Chinese against Chinese."""
    def script(f: Fact) -> bool:
        return bool(re.search(r"[\u4e00-\u9fff]", f.text))

    return any(script(a) == script(b) for a in missing for b in extra)


def shared_facts(claim: str, evidence: str) -> float:
    """Share of the claim's facts (numbers, dates, names) that the evidence states too: 0–1, 0 when it has none."""
    ours = [f for f in facts(claim) if f.kind != "negation"]
    if not ours:
        return 0.0
    theirs = facts(evidence)
    hit = 0
    for f in ours:
        if f.kind == "name":
            hit += _name_present(f, evidence)
        else:
            hit += any(g.kind == f.kind and _same(f.kind, f, g) for g in theirs)
    return hit / len(ours)


_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]|[^\W_\u3400-\u4dbf\u4e00-\u9fff]+", re.U)


def overlap(claim: str, evidence: str) -> float:
    """Share of the claim's tokens (words; each Chinese character alone) that the evidence has too: 0–1. Within a
    language it tells a close rewording (a changed number and all else the same) from another topic."""
    ours = {t.lower() for t in _TOKEN.findall(_ANY_MARKER.sub(" ", claim or ""))}
    if not ours:
        return 0.0
    theirs = {t.lower() for t in _TOKEN.findall(evidence or "")}
    return len(ours & theirs) / len(ours)


# ----------------------------------------------------------------------------------------------------- quotes

_WS = re.compile(r"\s+")


@dataclass
class SquashedText:
    """A text without whitespace, with the offset of each remaining character in the original: quotes are found
    whitespace-insensitively (PDF line breaks, double spaces) and reported at their true offsets."""

    text: str
    squashed: str = field(init=False)
    offsets: list[int] = field(init=False)

    def __post_init__(self) -> None:
        keep = [(i, c) for i, c in enumerate(self.text) if not c.isspace()]
        self.squashed = "".join(c for _, c in keep)
        self.offsets = [i for i, _ in keep]

    def find(self, needle: str) -> tuple[int, int] | None:
        squashed = _WS.sub("", needle)
        if not squashed:
            return None
        at = self.squashed.find(squashed)
        if at < 0:
            return None
        return self.offsets[at], self.offsets[at + len(squashed) - 1] + 1

    def locate(self, start: int) -> int:
        """Index in ``squashed`` of the first kept character at or after ``start``."""
        return bisect_left(self.offsets, start)


@dataclass(frozen=True)
class NearMatch:
    start: int
    end: int
    ratio: float
    differences: tuple[str, ...]

    def describe(self) -> str:
        return "; ".join(self.differences)


def near_match(quote: str, text: str, start: int = 0, end: int | None = None) -> NearMatch | None:
    """The passage of ``text[start:end]`` that best aligns with ``quote``, with its similarity (0–1) and what
    differs ("'35%' → '53%'", "missing 'not'"). None when nothing aligns."""
    end = len(text) if end is None else end
    window = text[start:end]
    q = _WS.sub(" ", quote).strip()
    if not q or not window:
        return None
    matcher = difflib.SequenceMatcher(None, q, window, autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size >= 3]
    if not blocks:
        return None
    # The densest run of aligned blocks: start at the block opening the best-scoring stretch of quote length.
    best = None
    for i, first in enumerate(blocks):
        covered, last = 0, first
        for block in blocks[i:]:
            if block.b + block.size - first.b > len(q) * 1.5:
                break
            covered, last = covered + block.size, block
        lo = max(0, first.b - first.a)
        hi = min(len(window), last.b + last.size + (len(q) - last.a - last.size))
        if best is None or covered > best[0]:
            best = (covered, lo, hi)
    assert best is not None
    _, lo, hi = best
    segment = window[lo:hi]
    seg = _WS.sub(" ", segment)
    aligned = difflib.SequenceMatcher(None, q, seg, autojunk=False)
    differences = [_describe(q, seg, *region) for region in _regions(aligned.get_opcodes(), q, seg)]
    return NearMatch(start + lo, start + hi, round(aligned.ratio(), 4), tuple(differences[:8]))


def _regions(opcodes, a: str, b: str) -> list[tuple[int, int, int, int]]:
    """Differing regions of two aligned strings: neighbouring edits (less than three equal characters apart)
    merged, each widened to whole words, so "53" against "35" reads as one change, not two."""
    regions: list[list[int]] = []
    for op, a1, a2, b1, b2 in opcodes:
        if op == "equal":
            continue
        if regions and a1 - regions[-1][1] < 3 and b1 - regions[-1][3] < 3:
            regions[-1][1], regions[-1][3] = a2, b2
        else:
            regions.append([a1, a2, b1, b2])
    out = []
    for a1, a2, b1, b2 in regions:
        while a1 > 0 and b1 > 0 and a[a1 - 1].isalnum() and a[a1 - 1] == b[b1 - 1]:
            a1, b1 = a1 - 1, b1 - 1
        while a2 < len(a) and b2 < len(b) and a[a2].isalnum() and a[a2] == b[b2]:
            a2, b2 = a2 + 1, b2 + 1
        out.append((a1, a2, b1, b2))
    return out


def _describe(quote: str, source: str, a1: int, a2: int, b1: int, b2: int) -> str:
    if a1 == a2:
        return f"{source[b1:b2]!r} left out"
    if b1 == b2:
        return f"{quote[a1:a2]!r} not in the source"
    return f"{quote[a1:a2]!r} where the source has {source[b1:b2]!r}"
