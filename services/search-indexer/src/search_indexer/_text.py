"""Text normalisation of the search index: the one tokeniser that both indexes and queries.

Pure functions, no I/O. Indexing and searching must agree exactly, so every path (the sink
writing postings, ``ProductSearch`` parsing a query, the tests' reference computed from the
source table) goes through ``tokenize`` / ``document_tokens`` / ``normalize_name`` here.

Rules: Unicode case folding, accent folding (NFKD, combining marks dropped: "Crème" -> "creme",
"naïve" -> "naive"), words are runs of letters and digits (everything else separates), a small
English stop-word list, and a light plural stemmer ("cups" -> "cup", "batteries" -> "battery",
"glasses" -> "glass").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "MAX_TOKENS",
    "STOP_WORDS",
    "document_tokens",
    "fold",
    "normalize_name",
    "stem",
    "tokenize",
    "words",
]

#: Distinct tokens indexed per product (name first, then description, in text order). Bounds
#: the postings one change can write (at most twice this) and the size of the product item;
#: words of a very long description past this many distinct tokens are not searchable.
MAX_TOKENS = 64

STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
    }
)

# Letters and digits of any script; "_" is a word character for ``\w`` but a separator here.
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Case- and accent-folded text: ``"Crème Brûlée"`` -> ``"creme brulee"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The folded words of ``text``, in order, duplicates kept."""
    return _WORD.findall(fold(text))


def stem(word: str) -> str:
    """A light English plural stemmer: enough for "cups"/"cup", never clever."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Distinct search tokens of ``text`` in order of first appearance."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word in STOP_WORDS:
            continue
        seen.setdefault(stem(word), None)
    return list(seen)


def document_tokens(name: str, description: str) -> tuple[list[str], list[str]]:
    """(name tokens, description tokens) as indexed: together at most ``MAX_TOKENS`` distinct.

    Description tokens may repeat name tokens (ranking counts matches per field); only tokens
    not already taken count against the cap.
    """
    name_tokens = tokenize(name)[:MAX_TOKENS]
    taken = set(name_tokens)
    desc_tokens: list[str] = []
    for token in tokenize(description):
        if token not in taken:
            if len(taken) >= MAX_TOKENS:
                continue
            taken.add(token)
        desc_tokens.append(token)
    return name_tokens, desc_tokens


def all_tokens(name_tokens: Iterable[str], desc_tokens: Iterable[str]) -> frozenset[str]:
    return frozenset(name_tokens) | frozenset(desc_tokens)


def normalize_name(name: str) -> str:
    """The name as the ``by-name`` index sorts it: folded words joined by one space.

    No stemming and no stop words, so a prefix typed by a user ("the espresso c") matches.
    """
    return " ".join(words(name))
