"""Price buckets of the ``by-price`` index and the ranking of full-text hits (pure).

The indexer writes each product under ``price_bucket(price)``; a price listing reads the
buckets ``price_buckets_between`` names, in ascending order. ``rank_key`` orders full-text hits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

from read_models.search._text import normalize_name

__all__ = ["MAX_PRICE_DIGITS", "price_bucket", "price_buckets_between", "rank_key"]

#: Integer digits of the largest price bucketed one by one (``numeric(10,2)`` holds 8);
#: prices from 10^MAX_PRICE_DIGITS up share one overflow bucket.
MAX_PRICE_DIGITS: Final = 8


# -- price buckets (the ``by-price`` index) --------------------------------------------------


def price_bucket(price: Decimal) -> str:
    """``P<integer digits>-<leading digit>``: 25.00 -> ``P2-2``, 0.50 -> ``P0-0``, 199.99 ->
    ``P3-1``. A range query reads the few buckets it overlaps; splitting each decade by its
    leading digit spreads a catalogue over ~70 partition keys instead of a handful."""
    integer = int(price)
    if integer <= 0:
        return "P0-0"
    digits = len(str(integer))
    if digits > MAX_PRICE_DIGITS:
        return f"P{MAX_PRICE_DIGITS + 1}-0"
    return f"P{digits}-{str(integer)[0]}"


def _bucket_range(digits: int, lead: int) -> tuple[Decimal, Decimal | None]:
    if digits == 0:
        return Decimal(0), Decimal(1)
    if digits > MAX_PRICE_DIGITS:
        return Decimal(10) ** MAX_PRICE_DIGITS, None
    unit = Decimal(10) ** (digits - 1)
    return lead * unit, (lead + 1) * unit


def price_buckets_between(low: Decimal | None, high: Decimal | None) -> list[str]:
    """Every bucket that can hold a price in [low, high] (either bound may be open)."""
    candidates = [(0, 0)]
    candidates += [(d, lead) for d in range(1, MAX_PRICE_DIGITS + 1) for lead in range(1, 10)]
    candidates.append((MAX_PRICE_DIGITS + 1, 0))
    out = []
    for digits, lead in candidates:
        start, end = _bucket_range(digits, lead)
        if high is not None and start > high:
            continue
        if low is not None and end is not None and end <= low:
            continue
        out.append(f"P{digits}-{lead}")
    return out


# -- ranking ---------------------------------------------------------------------------------


def rank_key(
    query_tokens: Sequence[str], name_tokens: Iterable[str], desc_tokens: Iterable[str], name: str
) -> tuple[int, int, str]:
    """Sort key: more query tokens in the name first, then more in the description, then by
    normalised name."""
    in_name = set(name_tokens)
    in_desc = set(desc_tokens)
    return (
        -sum(1 for t in query_tokens if t in in_name),
        -sum(1 for t in query_tokens if t in in_desc),
        normalize_name(name),
    )
