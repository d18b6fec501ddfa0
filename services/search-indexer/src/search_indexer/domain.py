"""The search indexer's pure logic: decoding product changes, folding, the postings diff, price
buckets and ranking. No I/O library is imported here (``.importlinter``); the sink
(`sink.py`) turns these decisions into DynamoDB calls.

Versions and sweeps. Every change carries its source version (``cdc_events.source_version``:
the order of one row's changes, from the source, never from Kafka) and a snapshot's last read
of ``products`` its sweep version too: what they are and how they compare is ``_versions``
(``LEGACY_VERSION`` and ``below_sweep`` are re-exported here).

Tombstones carry no source position (only a key and a Kafka position), so they cannot be
ordered against versions and are not applied: Debezium writes each one right after its delete
event, which carries the position and writes the deletion marker. (A tombstone with an offset
of its own was a deletion at "now": a replay of the topic through it would delete a product
re-created since.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cdc_events import (
    SHOP_COLUMN_TYPES,
    UNCHANGED,
    ChangeEvent,
    Parser,
    Versions,
    integer_id,
    source_version,
    sweep_version,
)
from consumer_runtime import Message, PermanentError
from read_models.search import (
    MAX_PRICE_DIGITS,
    price_bucket,
    price_buckets_between,
    rank_key,
)

from search_indexer._versions import LEGACY_VERSION, below_sweep

__all__ = [
    "LEGACY_VERSION",
    "MAX_PRICE_DIGITS",
    "Deletion",
    "Folded",
    "PostingPlan",
    "Product",
    "ProductChange",
    "below_sweep",
    "decode",
    "fold",
    "plan_postings",
    "posting_diff",
    "price_bucket",
    "price_buckets_between",
    "rank_key",
]


@dataclass(frozen=True, slots=True)
class Product:
    """A product row as the index holds it. ``description`` is ``None`` when Debezium could not
    see it (a TOASTed value the update did not touch): the sink keeps the indexed description.
    (The source column is NOT NULL, so ``None`` never stands for a real value.)"""

    id: int
    name: str
    description: str | None
    price: Decimal
    stock: int
    updated_at: datetime | None

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


@dataclass(frozen=True, slots=True)
class Deletion:
    id: int


@dataclass(frozen=True, slots=True)
class ProductChange:
    """One decoded change of the products topic: the new state (or a deletion), its version
    (``cdc_events.source_version``) and where it was read (kept on the item for operators)."""

    product_id: int
    state: Product | Deletion
    version: str
    topic: str
    partition: int
    offset: int
    source_ts_ms: int | None = None
    #: an insert or a snapshot read: the index most likely has no item yet (the sink writes it
    #: as new, without reading first; a wrong guess costs one cancelled transaction)
    created: bool = False
    #: ``cdc_events.sweep_version`` on a snapshot's last read of ``products``: products whose
    #: version is below it were neither read by that snapshot nor changed after it (gone)
    sweep: str | None = None


# -- decoding --------------------------------------------------------------------------------

# Schemaless records carry the price as Debezium's encoding of the column and the timestamp
# as ISO text; with schemas the field's own logical type wins over this registry.
_PARSER = Parser(column_types=SHOP_COLUMN_TYPES)


def decode(message: Message, versions: Versions | None = None) -> ProductChange | None:
    """Message -> ``ProductChange``; ``None`` for tombstones (see the module docstring),
    heartbeats, transaction markers and the like. ``versions``: the process's
    ``cdc_events.Versions`` (``make_decoder``); without it a version lacks what the first
    transaction after a snapshot needs.

    Malformed records raise ``ParseError`` / ``PermanentError`` (dead-lettered). A truncate
    cannot be applied per product: it is dead-lettered so an operator sees it (re-index).
    """
    topic = message.topic() or ""
    partition = message.partition() or 0
    offset = message.offset() or 0
    record = _PARSER.parse_record(
        topic, partition, offset, message.key(), message.value(), message.headers()
    )
    if not isinstance(record, ChangeEvent):
        return None
    if record.op == "m":
        return None
    if record.op == "t":
        raise PermanentError(
            "products table truncated: the index still holds every product; re-index from a "
            "fresh snapshot",
            code="unsupported_truncate",
        )
    version = source_version(record) if versions is None else versions.of(record)
    ts_ms = record.source.ts_ms
    if record.op == "d":
        pid = integer_id("products", record.key, record.before)
        return ProductChange(pid, Deletion(pid), version, topic, partition, offset, ts_ms)
    product = _product(record.after)
    created = record.op in ("c", "r")
    return ProductChange(
        product.id,
        product,
        version,
        topic,
        partition,
        offset,
        ts_ms,
        created,
        sweep_version(record) if record.op == "r" else None,
    )


def make_decoder() -> Callable[[Message], ProductChange | None]:
    """The runtime's decoder: ``decode`` with one ``Versions`` for the process."""
    return functools.partial(decode, versions=Versions())


def _as_int(value: Any, column: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PermanentError(
            f"products.{column} is not an integer: {value!r}", code="type_mismatch"
        )
    return value


def _product(row: dict[str, Any] | None) -> Product:
    if row is None:
        raise PermanentError("product change without a row", code="missing_field")
    for column in ("id", "name", "price", "stock"):
        if column not in row or row[column] is UNCHANGED:
            raise PermanentError(f"products.{column} missing", code="missing_field")
    name, price, updated = row["name"], row["price"], row.get("updated_at")
    raw_description = row.get("description", "")
    if not isinstance(name, str):
        raise PermanentError(f"products.name is not text: {name!r}", code="type_mismatch")
    description: str | None
    if raw_description is UNCHANGED:
        description = None
    elif raw_description is None:
        description = ""
    elif isinstance(raw_description, str):
        description = raw_description
    else:
        raise PermanentError("products.description is not text", code="type_mismatch")
    if isinstance(price, int) and not isinstance(price, bool):
        price = Decimal(price)
    if not isinstance(price, Decimal) or not price.is_finite():
        raise PermanentError(f"products.price is not a decimal: {price!r}", code="bad_decimal")
    if updated is UNCHANGED or not isinstance(updated, datetime):
        updated = None
    elif updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    return Product(
        id=_as_int(row["id"], "id"),
        name=name,
        description=description,
        price=price,
        stock=_as_int(row["stock"], "stock"),
        updated_at=updated,
    )


# -- folding ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Folded:
    """The last change of one product in a batch, with its version and Kafka position."""

    product_id: int
    state: Product | Deletion
    version: str
    partition: int
    offset: int
    #: the first change of the product in the batch was an insert or a snapshot read and no
    #: deletion follows it: the product is most likely new to the index
    created: bool = False


def fold(changes: Iterable[ProductChange]) -> list[Folded]:
    """Changes of the same product folded to the last one: the highest version, wherever it
    sits in the batch (a replayed older change can follow a newer one).

    A TOAST-unchanged description takes the description of an earlier change (by version) of
    the same batch when there is one (no deletion in between); otherwise the sink keeps the
    stored one. Changes of equal versions are one change delivered twice.
    """
    by_id: dict[int, list[ProductChange]] = {}
    for change in changes:
        by_id.setdefault(change.product_id, []).append(change)
    out: list[Folded] = []
    for pid, group in by_id.items():
        group.sort(key=lambda c: c.version)  # stable: equal versions keep their arrival order
        current: Product | Deletion | None = None
        for change in group:
            state = change.state
            if (
                isinstance(state, Product)
                and state.description is None
                and isinstance(current, Product)
                and current.description is not None
            ):
                state = replace(state, description=current.description)
            current = state
        assert current is not None
        last = group[-1]
        created = group[0].created and not any(isinstance(c.state, Deletion) for c in group)
        out.append(Folded(pid, current, last.version, last.partition, last.offset, created))
    return out


def posting_diff(
    stored: frozenset[str], new: frozenset[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """(tokens whose posting must be written, tokens whose posting must be removed)."""
    return new - stored, stored - new


@dataclass(frozen=True, slots=True)
class PostingPlan:
    """The posting writes of one product write at one version, and its pending bookkeeping.

    ``put`` / ``remove``: the postings written (live / removal marker) at this version.
    ``record``: tokens to record as pending *at this version* before any posting is written:
    every posting write must be covered by a pending entry of its version or a newer one,
    so that whoever drops the entry has overridden whatever the write (or a late copy of it)
    left. ``carry``: pending entries of newer attempts, which this write cannot settle (their
    postings may hold a newer version than its own); the product item keeps them until a
    write of that version or a newer one settles them. ``settled``: tokens written only
    because a pending entry named them (an interrupted, timed-out or concurrent attempt).
    """

    put: frozenset[str]
    remove: frozenset[str]
    record: frozenset[str]
    carry: Mapping[str, str] = field(default_factory=dict)
    settled: frozenset[str] = frozenset()


def plan_postings(
    stored: frozenset[str], pending: Mapping[str, str], target: frozenset[str], version: str
) -> PostingPlan:
    """Plan the postings of a write at ``version`` from the stored tokens to ``target``.

    ``pending`` maps each token an unfinished attempt may have written to the newest version it
    may carry (``LEGACY_VERSION`` for an entry of the previous release). The diff covers what
    the stored item implies; the pending entries of this version or older are settled too
    (stated again: live if in ``target``, removed otherwise), because their attempts may have
    left the posting in any state and the diff alone would never look at it again. Entries of
    newer versions are carried, not settled: a posting a newer attempt wrote beats this write's
    version, so only a write of that version or a newer one can vouch for it.
    """
    add, remove = posting_diff(stored, target)
    due = frozenset(t for t, v in pending.items() if v <= version)
    put = add | (due & target)
    drop = remove | (due - target)
    record = frozenset(t for t in put | drop if t not in pending or pending[t] < version)
    carry = {t: v for t, v in pending.items() if v > version}
    return PostingPlan(put, drop, record, carry, due - add - remove)
