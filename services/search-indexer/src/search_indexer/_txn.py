"""Pure: what one product change writes in a transaction, how units are packed into
``TransactWriteItems`` requests, and what a cancellation says about each unit. No client here;
the sink sends what this builds.

A *unit* is one product change: the product item (or deletion marker) and the postings it adds
and removes, each item with its own condition, all in one transaction, so a product and its
postings change together or not at all. Units of different products share a transaction (up
to ``MAX_ITEMS`` items, ``MAX_REQUEST_BYTES``): a transaction is atomic for all of them, and a
cancellation says which item's condition failed, so the other units are sent again.

Two kinds of unit:

- *fast*: a product whose tokens hash as the stored ones (price and stock changes). Only the
  product item is put, conditional on ``tokens_hash = :h AND version < :v``: no read first. If
  the condition fails, the cancellation returns the stored item (``ReturnValuesOnCondition
  CheckFailure=ALL_OLD``) and the change is planned again from it as a diff unit (or dropped as
  superseded). The hash is compared first: an item without one (a deletion marker, an item
  carrying pending entries, an item of the release before source versions with an ``N``
  version) fails there, before an ``S`` is compared with an ``N``.
- *diff*: the product item conditional on the version (and ``pending_rev``) read
  (``product_guard``), plus one put per posting added (or stated again) and one removal marker
  per posting removed, each conditional on the posting's own version being older
  (``POSTING_CONDITION``). A posting whose condition fails holds a newer version (an unfinished
  large write of a newer change, whose pending entry the product carries): the unit is sent
  again without it, as the large protocol skips it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson
from read_models.search import document_tokens

from search_indexer._items import (
    TOKENS_HASH_ATTR,
    Item,
    StoredProduct,
    marker_item,
    posting_item,
    product_item,
    removed_posting_item,
    with_pending,
)
from search_indexer.domain import Deletion, Folded, PostingPlan

__all__ = [
    "MAX_ITEMS",
    "MAX_REQUEST_BYTES",
    "Unit",
    "UnitResult",
    "diff_unit",
    "fast_unit",
    "needs_stored",
    "outcomes_of_cancellation",
    "pack",
    "target",
]

#: TransactWriteItems takes at most 100 items (a DynamoDB limit).
MAX_ITEMS: Final = 100
#: ... and at most 4 MB of items; a margin for the request's own structure and conditions.
MAX_REQUEST_BYTES: Final = 3_500_000
#: A posting write's condition (``_table.POSTING_CONDITION``, repeated: this module is pure).
POSTING_CONDITION: Final = "attribute_not_exists(#v) OR attribute_type(#v, :n) OR #v < :v"
#: The fast path's condition: the stored tokens are these, and the stored version is older.
FAST_CONDITION: Final = "#h = :h AND #v < :v"

Reason = Literal["reread", "refused", "skip_postings", "retry", "resend", "split"]


@dataclass(frozen=True, slots=True)
class Unit:
    """One product change's items, in transaction order: the product item first, then the
    postings (``postings[i]`` is item ``i + 1``: ``("put" | "remove", token)``)."""

    change: Folded
    items: tuple[dict[str, Any], ...]
    fast: bool
    postings: tuple[tuple[str, str], ...] = ()
    settled: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class UnitResult:
    """What a cancellation says about one unit: ``reread`` (its product condition failed;
    ``stored`` is the item returned, ``None`` when there is none), ``refused`` (DynamoDB refused
    an item: ``message``), ``skip_postings`` (those postings hold a newer version), ``retry``
    (conflict, throttling), ``resend`` (its own conditions held), ``split`` (the request was
    refused as a whole: send the unit alone to learn whether it is the one)."""

    reason: Reason
    stored: Item | None = None
    message: str = ""
    tokens: frozenset[str] = field(default_factory=frozenset)


def target(
    change: Folded, stored: StoredProduct | None, expires_at: int
) -> tuple[Item, frozenset[str]]:
    """The product item (or deletion marker) ``change`` writes and the tokens its postings must
    hold. A TOAST-unchanged description keeps the stored one (``None`` if unknown: see
    ``needs_stored``)."""
    state = change.state
    if isinstance(state, Deletion):
        marker = marker_item(
            change.product_id,
            change.version,
            expires_at,
            partition=change.partition,
            offset=change.offset,
        )
        return marker, frozenset()
    if state.description is None:
        live = stored is not None and not stored.deleted
        description = stored.description if stored is not None and live else ""
    else:
        description = state.description
    name_tokens, desc_tokens = document_tokens(state.name, description)
    item = product_item(
        state,
        description,
        name_tokens,
        desc_tokens,
        change.version,
        partition=change.partition,
        offset=change.offset,
    )
    return item, frozenset(name_tokens) | frozenset(desc_tokens)


def needs_stored(change: Folded) -> bool:
    """A change that cannot be written without the stored item: a deletion (its postings) and
    a TOAST update (its description)."""
    return isinstance(change.state, Deletion) or change.state.description is None


def _size(items: Sequence[Mapping[str, Any]]) -> int:
    return sum(len(orjson.dumps(i)) for i in items)


def fast_unit(change: Folded, table: str, item: Item) -> Unit:
    op = {
        "TableName": table,
        "Item": item,
        "ConditionExpression": FAST_CONDITION,
        "ExpressionAttributeNames": {"#h": TOKENS_HASH_ATTR, "#v": "version"},
        "ExpressionAttributeValues": {":h": item[TOKENS_HASH_ATTR], ":v": item["version"]},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    entries = ({"Put": op},)
    return Unit(change, entries, fast=True, size=_size(entries))


def diff_unit(
    change: Folded,
    table: str,
    item: Item,
    guard: Mapping[str, Any],
    plan: PostingPlan,
    expires_at: int,
    skip: frozenset[str] = frozenset(),
) -> Unit:
    """The product item (with the carried pending entries) under ``guard``, and the planned
    postings except ``skip`` (postings a newer version holds)."""
    product = {
        "TableName": table,
        "Item": with_pending(item, plan.carry),
        **guard,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    entries: list[dict[str, Any]] = [{"Put": product}]
    postings: list[tuple[str, str]] = []
    pid, version = change.product_id, change.version
    for op, tokens in (("put", plan.put), ("remove", plan.remove)):
        for token in sorted(tokens - skip):
            posting = (
                posting_item(token, pid, version)
                if op == "put"
                else removed_posting_item(token, pid, version, expires_at)
            )
            entries.append(
                {
                    "Put": {
                        "TableName": table,
                        "Item": posting,
                        "ConditionExpression": POSTING_CONDITION,
                        "ExpressionAttributeNames": {"#v": "version"},
                        "ExpressionAttributeValues": {":v": {"S": version}, ":n": {"S": "N"}},
                    }
                }
            )
            postings.append((op, token))
    settled = len(plan.settled - skip)
    return Unit(change, tuple(entries), False, tuple(postings), settled, _size(entries))


def pack(units: Iterable[Unit], *, alone: frozenset[int] = frozenset()) -> Iterator[list[Unit]]:
    """Units into transactions of at most ``MAX_ITEMS`` items and ``MAX_REQUEST_BYTES``, in
    order (first fit), each yielded as soon as it is full, so the caller can send it while the
    next is built. Units of the products in ``alone`` get a transaction each (a request
    refused as a whole is split so that the refusal names its record)."""
    current: list[Unit] = []
    count = size = 0
    for unit in units:
        if unit.change.product_id in alone:
            yield [unit]
            continue
        n = len(unit.items)
        if current and (count + n > MAX_ITEMS or size + unit.size > MAX_REQUEST_BYTES):
            yield current
            current, count, size = [], 0, 0
        current.append(unit)
        count += n
        size += unit.size
    if current:
        yield current


def outcomes_of_cancellation(
    response: Mapping[str, Any], units: Sequence[Unit]
) -> list[UnitResult]:
    """Per unit, what a ``TransactionCanceledException`` response (``ClientError.response``)
    says, from its ``CancellationReasons`` (one per item, in request order)."""
    reasons: list[Mapping[str, Any]] = list(response.get("CancellationReasons") or [])
    out: list[UnitResult] = []
    index = 0
    for unit in units:
        mine = reasons[index : index + len(unit.items)]
        index += len(unit.items)
        codes = [str(r.get("Code") or "None") for r in mine]
        if not mine:  # no reasons at all: nothing to tell the units apart by
            out.append(UnitResult("retry"))
        elif codes[0] == "ConditionalCheckFailed":
            out.append(UnitResult("reread", stored=mine[0].get("Item")))
        elif "ValidationError" in codes:
            message = next(
                str(r.get("Message", "")) for r in mine if r.get("Code") == "ValidationError"
            )
            out.append(UnitResult("refused", message=message))
        elif "ConditionalCheckFailed" in codes:
            skipped = frozenset(
                unit.postings[i - 1][1]
                for i, code in enumerate(codes)
                if i > 0 and code == "ConditionalCheckFailed"
            )
            out.append(UnitResult("skip_postings", tokens=skipped))
        elif any(code != "None" for code in codes):
            out.append(UnitResult("retry", message=",".join(sorted(set(codes) - {"None"}))))
        else:
            out.append(UnitResult("resend"))
    return out
