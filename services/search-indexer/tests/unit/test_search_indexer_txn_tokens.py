"""The tokens a transaction unit is built from are remembered for short texts
(``_txn.text_tokens``): the same tokens as ``document_tokens``, whatever the caller does with
them, and long texts are not kept."""

from __future__ import annotations

from search_indexer import document_tokens
from search_indexer._txn import _CACHED_TEXT_CHARS, _remembered_tokens, text_tokens


def test_remembered_tokens_equal_the_tokeniser_and_are_not_shared() -> None:
    _remembered_tokens.cache_clear()
    name, description = "Nordic Espresso Cups", "blue ceramic cups, handmade; the blue one"
    first = text_tokens(name, description)
    assert first == document_tokens(name, description)
    first[0].append("mutated")  # a caller changing its lists changes nothing remembered
    second = text_tokens(name, description)
    assert second == document_tokens(name, description)
    info = _remembered_tokens.cache_info()
    assert (info.hits, info.misses) == (1, 1)


def test_long_texts_are_tokenised_each_time_and_not_kept() -> None:
    _remembered_tokens.cache_clear()
    description = "word " * (_CACHED_TEXT_CHARS // 5 + 1)
    assert text_tokens("Lamp", description) == document_tokens("Lamp", description)
    assert _remembered_tokens.cache_info().currsize == 0
