"""Text normalisation of the search index: the one tokeniser that both indexes and queries.

Pure functions, no I/O. Indexing and searching must agree exactly, so every path (the sink
writing postings, ``ProductSearch`` parsing a query, the tests' reference computed from the
source table) goes through ``tokenize`` / ``document_tokens`` / ``normalize_name`` here.

Rules: Unicode case folding, accent folding (NFKD, combining marks dropped: "Crème" -> "creme",
"naïve" -> "naive"), words are runs of letters and digits (everything else separates), a small
English stop-word list, and a light plural stemmer ("cups" -> "cup", "batteries" -> "battery",
"glasses" -> "glass").

Byte budgets (DynamoDB limits keys and items by UTF-8 bytes, the source's ``text`` columns have
no limit): a token is at most ``TOKEN_MAX_BYTES`` (a longer one is replaced by a readable prefix
and a hash of the whole token, the same on the write and the query side, so it stays searchable
and its posting key ``TOKEN#<token>`` stays far below the 2,048-byte partition key limit); the
indexed text is the name cut to ``NAME_MAX_BYTES`` and the description to
``DESCRIPTION_MAX_BYTES`` (``indexed_text``), each at a character boundary, and tokens are taken
from that indexed text only, so every path computes the same tokens from the source row.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "DESCRIPTION_MAX_BYTES",
    "MAX_TOKENS",
    "NAME_MAX_BYTES",
    "STOP_WORDS",
    "TOKEN_MAX_BYTES",
    "bound_token",
    "document_tokens",
    "fold",
    "indexed_text",
    "normalize_name",
    "stem",
    "tokenize",
    "utf8_prefix",
    "words",
]

#: Distinct tokens indexed per product (name first, then description, in text order). Bounds
#: the postings one change can write (at most twice this) and the size of the product item;
#: words of a very long description past this many distinct tokens are not searchable.
MAX_TOKENS = 64

#: A token's longest form in UTF-8 bytes (85 CJK characters, 256 ASCII letters). A longer word
#: (an unsegmented CJK sentence, a pasted serial) is indexed as ``<prefix>~<hash>``: searchable
#: by the whole word, its posting key at most 6 + 256 bytes, and the product item's token lists
#: and pending entries bounded (see ``_items``).
TOKEN_MAX_BYTES = 256
_HASH_HEX = 32  # 128 bits of SHA-256: no collision between two words in practice
#: The indexed (stored and tokenised) name and description, in UTF-8 bytes. Longer text is cut
#: at a character boundary: the name is shown in full for any real product (16 KiB), the
#: description keeps the first 64 KiB, which is all a result shows; together they keep the
#: product item far below DynamoDB's 400 KB (a unit test adds up the largest item).
NAME_MAX_BYTES = 16 * 1024
DESCRIPTION_MAX_BYTES = 64 * 1024

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


def utf8_prefix(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` of at most ``max_bytes`` UTF-8 bytes: never half a
    character (a character cut by the budget is dropped whole)."""
    if len(text) * 4 <= max_bytes:  # no character is longer than 4 bytes
        return text
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", "ignore")


def bound_token(token: str) -> str:
    """``token`` if it fits ``TOKEN_MAX_BYTES``, else ``<prefix>~<hash of the whole token>``
    (at most ``TOKEN_MAX_BYTES``). Words are letters and digits, so ``~`` marks a hashed token
    unambiguously and a query can only reach it through the same word."""
    raw = token.encode()
    if len(raw) <= TOKEN_MAX_BYTES:
        return token
    digest = hashlib.sha256(raw).hexdigest()[:_HASH_HEX]
    return f"{utf8_prefix(token, TOKEN_MAX_BYTES - _HASH_HEX - 1)}~{digest}"


def tokenize(text: str) -> list[str]:
    """Distinct search tokens of ``text`` in order of first appearance (each within
    ``TOKEN_MAX_BYTES``: see ``bound_token``)."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word in STOP_WORDS:
            continue
        seen.setdefault(bound_token(stem(word)), None)
    return list(seen)


def indexed_text(name: str, description: str) -> tuple[str, str]:
    """(name, description) as the index stores and tokenises them: cut to ``NAME_MAX_BYTES`` and
    ``DESCRIPTION_MAX_BYTES`` at a character boundary. Idempotent."""
    return utf8_prefix(name, NAME_MAX_BYTES), utf8_prefix(description, DESCRIPTION_MAX_BYTES)


def document_tokens(name: str, description: str) -> tuple[list[str], list[str]]:
    """(name tokens, description tokens) as indexed: together at most ``MAX_TOKENS`` distinct,
    taken from the indexed text (``indexed_text``: the same for the full and the cut text).

    Description tokens may repeat name tokens (ranking counts matches per field); only tokens
    not already taken count against the cap.
    """
    name, description = indexed_text(name, description)
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
