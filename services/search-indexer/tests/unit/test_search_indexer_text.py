from __future__ import annotations

from read_models.search import fold, stem
from search_indexer import MAX_TOKENS, document_tokens, normalize_name, tokenize


def test_folding_is_unicode_aware_and_drops_accents() -> None:
    assert fold("Crème Brûlée CAFÉ Straße") == "creme brulee cafe strasse"
    assert tokenize("Naïve café") == tokenize("naive CAFE") == ["naive", "cafe"]


def test_words_split_on_everything_but_letters_and_digits() -> None:
    assert tokenize("stainless-steel/ceramic_cup, 2x!") == [
        "stainless",
        "steel",
        "ceramic",
        "cup",
        "2x",
    ]


def test_stop_words_are_dropped_and_plurals_stemmed() -> None:
    assert tokenize("The cups of the Batteries and glasses") == ["cup", "battery", "glass"]
    assert stem("bus") == "bus" and stem("gas") == "gas" and stem("cups") == "cup"


def test_tokens_are_distinct_in_order_of_appearance() -> None:
    assert tokenize("Teapot teapots TEAPOT blue") == ["teapot", "blue"]


def test_document_tokens_cap_counts_distinct_tokens_only() -> None:
    name = "Espresso Cup"
    description = "cup " + " ".join(f"w{i}" for i in range(200))
    name_tokens, desc_tokens = document_tokens(name, description)
    assert name_tokens == ["espresso", "cup"]
    assert desc_tokens[0] == "cup"  # repeats a name token: counted per field for ranking
    assert len(set(name_tokens) | set(desc_tokens)) == MAX_TOKENS


def test_normalized_name_keeps_every_word_for_prefix_lookups() -> None:
    assert normalize_name("  The Crème   Espresso-Cups ") == "the creme espresso cups"
    assert normalize_name("!!!") == ""
