"""The item layout of the ``product-search-index`` table, in DynamoDB's typed JSON form.

Pure mapping, no client: the sink writes what this builds, ``ProductSearch`` reads what it
parses, and the tests assert on it. Within the table's key schema (``pk``/``sk``):

- product: pk ``PRODUCT#<id>``, sk ``PRODUCT``; name, description (the indexed text:
  ``_text.indexed_text``), price (N, exact), stock, updated_at, name_tokens and desc_tokens
  (each one S, the tokens separated by single spaces: a token is letters, digits and ``~``;
  absent when there are none), version (S: ``cdc_events.source_version``), ``kafka_position``
  (``<partition>:<offset>`` where the change was read; informational);
  ``gsi_name_pk`` = ``NAME#<first char of name_norm>`` + ``name_norm`` (``by-name``; the
  normalised name cut to ``NAME_KEY_MAX_BYTES``: ``name_key``), ``price_bucket`` + ``price``
  (``by-price``). The id is the key's (``PRODUCT#<id>``); whether it is in stock, its stock.
  Every attribute is one scalar: an item costs what its bytes cost (1 KB per write unit on
  AWS), and no list of typed values is rebuilt per token on every price change.
- deletion marker: the same key; deleted=true, version, ``ttl`` (epoch seconds),
  ``kafka_position``. It has no GSI keys, so a deleted product leaves both indexes.
- ``pending_tokens`` (string set, elements ``<token>@<version>``; a token is letters, digits
  and ``~``, a version letters and digits: neither holds an ``@``) and ``pending_rev`` (N) on
  the product key: the postings unfinished writes may touch, each with the newest version it
  may carry, recorded before those postings are written. A write settles (states again) every
  entry of its version or older and drops it; entries of newer versions stay on the item it
  puts. ``pending_rev`` counts the recordings since the last put: a put is conditional on it,
  so an entry recorded after the writer read the item is never dropped unseen. Before a
  product's first put the item holds only these attributes (no version: read as "no product").
- ``tokens_hash`` (S) on a product item: ``tokens_hash`` of its tokens (the set its postings
  hold). A change whose tokens hash the same needs no posting write, so it is put conditional
  on this hash and its version alone, without reading the item first (``_txn``). An item
  carrying pending entries has none (they must be seen by the next write).
- posting: pk ``TOKEN#<token>``, sk ``<id>``; version (S). Nothing else: the token and the
  product are its key, and a new product writes one posting per token.
- sweep floor: pk ``SWEEP#products``, sk ``SWEEP``; ``floor_version`` (S): the highest sweep
  version applied (``cdc_events.sweep_version``). No change below it is applied any more.
- removed posting: the same key; removed=true, version (S), ``ttl``. A removal is a versioned
  marker, not a delete, so a stale write arriving late (a zombie, or a request applied after
  its client timed out) cannot bring the posting back; TTL deletes the marker later.

Items of earlier releases are read as well: token lists as lists (``L`` of ``S``), ``id``,
``kind``, ``in_stock`` and the Kafka position as two numbers; the next write of the product
replaces them with this layout.

Items of the release that versioned by Kafka offset carry ``version`` as a number (N) and
pending entries ``<token>@<number>`` (or ``<token>`` alone, older still). They are read as
``LEGACY_VERSION``, below every source version, so the next change of the product replaces the
item and states those postings again (the sink's conditions let an S version replace an N one).

DynamoDB's limits, in UTF-8 bytes: a partition key at most 2,048, a sort key at most 1,024 (both
also for GSI key attributes), an item at most 400 KB. Every key built here from text is within
them for any text: ``TOKEN#<token>`` is at most 6 + ``TOKEN_MAX_BYTES`` (256), ``name_norm`` at
most ``NAME_KEY_MAX_BYTES`` (1,024), ``NAME#<char>`` at most 9; the product item holds at most
``NAME_MAX_BYTES`` + ``DESCRIPTION_MAX_BYTES`` of text, ``NAME_KEY_MAX_BYTES`` of key and
``MAX_TOKENS`` tokens of at most ``TOKEN_MAX_BYTES`` in each list and in its pending entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from search_indexer._text import indexed_text, normalize_name, utf8_prefix
from search_indexer._versions import LEGACY_VERSION
from search_indexer.domain import Product, price_bucket

__all__ = [
    "DEFINITION_FILE",
    "NAME_KEY_MAX_BYTES",
    "PENDING_ATTR",
    "PENDING_REV_ATTR",
    "PRODUCT_SK",
    "SWEEP_FLOOR_ATTR",
    "SWEEP_FLOOR_KEY",
    "TOKENS_HASH_ATTR",
    "StoredProduct",
    "marker_item",
    "name_key",
    "parse_product",
    "pending_entries",
    "posting_item",
    "posting_key",
    "product_item",
    "product_key",
    "removed_posting_item",
    "table_definition",
    "tokens_hash",
    "with_pending",
]

Item = dict[str, Any]

PRODUCT_SK = "PRODUCT"
#: Package data: a copy of deploy/dynamodb/product-search-index.json (a unit test keeps them equal).
DEFINITION_FILE = "product-search-index.json"
#: The ``by-name`` sort key (``name_norm``) in UTF-8 bytes: DynamoDB's sort key limit, so a prefix
#: search is exact for any prefix of up to this many bytes (341 CJK characters, 1,024 ASCII).
#: Longer normalised names are cut at a character boundary; ``ProductSearch.by_name`` checks a
#: longer prefix against the stored name.
NAME_KEY_MAX_BYTES = 1024
#: The pending postings of a product (string set of ``<token>@<version>``) and the number of
#: recordings since its last put.
PENDING_ATTR = "pending_tokens"
PENDING_REV_ATTR = "pending_rev"
#: The hash of the product's token set (``tokens_hash``): the fast path's condition.
TOKENS_HASH_ATTR = "tokens_hash"


@dataclass(frozen=True, slots=True)
class StoredProduct:
    """A product item (or deletion marker) as read back from the table.

    ``version`` is its source version; ``LEGACY_VERSION`` for an item of the previous release
    (then ``legacy_version`` holds its numeric version, which a guard must match) or for a stub
    holding only pending postings (neither: no product)."""

    id: int
    version: str
    deleted: bool
    name: str = ""
    description: str = ""
    price: Decimal = Decimal(0)
    stock: int = 0
    updated_at: str | None = None
    name_tokens: tuple[str, ...] = ()
    desc_tokens: tuple[str, ...] = ()
    #: token -> newest version an unfinished write of that posting may carry
    pending: Mapping[str, str] = field(default_factory=dict)
    pending_rev: int = 0
    #: the numeric ``version`` of an item written by the previous release (Kafka offsets)
    legacy_version: int | None = None
    #: ``tokens_hash`` of the stored tokens, if the item carries one
    tokens_hash: str | None = None

    @property
    def exists(self) -> bool:
        """False for a stub holding only pending postings (no version of either kind)."""
        return self.version != LEGACY_VERSION or self.legacy_version is not None

    @property
    def version_value(self) -> Item | None:
        """The stored ``version`` as DynamoDB holds it (``S``, or ``N`` for an item of the
        previous release); ``None`` when there is none (a stub). A guard matches this exactly."""
        if self.legacy_version is not None:
            return {"N": str(self.legacy_version)}
        if self.version == LEGACY_VERSION:
            return None
        return {"S": self.version}

    @property
    def pending_to_settle(self) -> Mapping[str, str]:
        """``pending``, and for an item of the previous release every token of its postings too,
        at ``LEGACY_VERSION``: the product's next write states each of them again at its own
        version, so none of the product's items keeps a numeric version (and no late write of
        the old release can win over one of them)."""
        if self.legacy_version is None:
            return self.pending
        return {**dict.fromkeys(self.tokens, LEGACY_VERSION), **self.pending}

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def tokens(self) -> frozenset[str]:
        """The tokens whose postings point at this product (none for a deletion marker)."""
        if self.deleted:
            return frozenset()
        return frozenset(self.name_tokens) | frozenset(self.desc_tokens)


def tokens_hash(tokens: Iterable[str]) -> str:
    """32 hex digits of SHA-256 over the sorted, distinct tokens (one per line: a token holds no
    newline). Equal hashes mean equal posting sets (128 bits: no collision in practice)."""
    text = "\n".join(sorted(set(tokens)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def product_key(product_id: int) -> Item:
    return {"pk": {"S": f"PRODUCT#{product_id}"}, "sk": {"S": PRODUCT_SK}}


#: The item holding the highest sweep version applied to the products (``floor_version``).
SWEEP_FLOOR_KEY: Item = {"pk": {"S": "SWEEP#products"}, "sk": {"S": "SWEEP"}}
SWEEP_FLOOR_ATTR = "floor_version"


def posting_key(token: str, product_id: int) -> Item:
    return {"pk": {"S": f"TOKEN#{token}"}, "sk": {"S": str(product_id)}}


def name_key(name_norm: str) -> str:
    """The ``by-name`` sort key of a normalised name (or of a prefix searched for)."""
    return utf8_prefix(name_norm, NAME_KEY_MAX_BYTES)


def _num(value: int | Decimal) -> dict[str, str]:
    return {"N": format(value, "f") if isinstance(value, Decimal) else str(value)}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _position(partition: int, offset: int) -> Item:
    return {"S": f"{partition}:{offset}"}


def product_item(
    product: Product,
    description: str,
    name_tokens: list[str],
    desc_tokens: list[str],
    version: str,
    *,
    partition: int,
    offset: int,
) -> Item:
    name, description = indexed_text(product.name, description)
    item: Item = {
        **product_key(product.id),
        "name": {"S": name},
        "description": {"S": description},
        "price": _num(product.price),
        "price_bucket": {"S": price_bucket(product.price)},
        "stock": _num(product.stock),
        "version": {"S": version},
        "kafka_position": _position(partition, offset),
        TOKENS_HASH_ATTR: {"S": tokens_hash([*name_tokens, *desc_tokens])},
    }
    if name_tokens:
        item["name_tokens"] = {"S": " ".join(name_tokens)}
    if desc_tokens:
        item["desc_tokens"] = {"S": " ".join(desc_tokens)}
    name_norm = name_key(normalize_name(name))
    if name_norm:  # key attributes of a GSI cannot be empty: an unnamed product is not listed
        item["gsi_name_pk"] = {"S": f"NAME#{name_norm[0]}"}
        item["name_norm"] = {"S": name_norm}
    updated = _iso(product.updated_at)
    if updated is not None:
        item["updated_at"] = {"S": updated}
    return item


def marker_item(
    product_id: int, version: str, expires_at: int, *, partition: int, offset: int
) -> Item:
    return {
        **product_key(product_id),
        "deleted": {"BOOL": True},
        "version": {"S": version},
        "ttl": _num(expires_at),
        "kafka_position": _position(partition, offset),
    }


def posting_item(token: str, product_id: int, version: str) -> Item:
    return {**posting_key(token, product_id), "version": {"S": version}}


def removed_posting_item(token: str, product_id: int, version: str, expires_at: int) -> Item:
    return {
        **posting_key(token, product_id),
        "removed": {"BOOL": True},
        "version": {"S": version},
        "ttl": _num(expires_at),
    }


def pending_entries(pending: Mapping[str, str]) -> list[str]:
    """The ``pending_tokens`` elements of ``pending`` (token -> version)."""
    return sorted(f"{token}@{version}" for token, version in pending.items())


def _parse_pending(elements: Iterable[str]) -> dict[str, str]:
    """token -> newest version. The version follows the last ``@`` (``rpartition``: a token is
    letters, digits and ``~``, a version letters and digits, so either way one ``@`` splits
    them). An element of the previous release (a numeric version, or none at all) counts as
    ``LEGACY_VERSION``: older than any source version, so the next write settles it."""
    out: dict[str, str] = {}
    for element in elements:
        token, at, version = element.rpartition("@")
        if not at:
            token, version = element, LEGACY_VERSION
        elif version.isdigit():
            version = LEGACY_VERSION
        out[token] = max(out.get(token, LEGACY_VERSION), version)
    return out


def _version(attribute: Mapping[str, str]) -> tuple[str, int | None]:
    """(source version, numeric version of the previous release) of a ``version`` attribute."""
    if "S" in attribute:
        return attribute["S"], None
    return LEGACY_VERSION, int(attribute["N"])


def with_pending(item: Item, pending: Mapping[str, str]) -> Item:
    """``item`` carrying the pending entries ``pending`` (token -> version), if any; such an
    item has no ``tokens_hash``, so no write puts over it unread."""
    if not pending:
        return item
    out = {k: v for k, v in item.items() if k != TOKENS_HASH_ATTR}
    out[PENDING_ATTR] = {"SS": pending_entries(pending)}
    return out


def _tokens(attribute: Mapping[str, Any] | None) -> tuple[str, ...]:
    """A token list: one S of space-separated tokens, or (earlier releases) an L of S."""
    if not attribute:
        return ()
    if "S" in attribute:
        return tuple(attribute["S"].split(" ")) if attribute["S"] else ()
    return tuple(v["S"] for v in attribute.get("L", []))


def parse_product(item: Item) -> StoredProduct:
    pending = _parse_pending(item.get(PENDING_ATTR, {}).get("SS", ()))
    rev = int(item.get(PENDING_REV_ATTR, {}).get("N", "0"))
    pid = int(item["pk"]["S"].removeprefix("PRODUCT#"))
    if "version" not in item:
        return StoredProduct(pid, LEGACY_VERSION, True, pending=pending, pending_rev=rev)
    version, legacy = _version(item["version"])
    if item.get("deleted", {}).get("BOOL"):
        return StoredProduct(
            pid, version, True, pending=pending, pending_rev=rev, legacy_version=legacy
        )
    updated = item.get("updated_at", {}).get("S")
    return StoredProduct(
        id=pid,
        version=version,
        deleted=False,
        name=item["name"]["S"],
        description=item.get("description", {}).get("S", ""),
        price=Decimal(item["price"]["N"]),
        stock=int(item["stock"]["N"]),
        updated_at=updated,
        name_tokens=_tokens(item.get("name_tokens")),
        desc_tokens=_tokens(item.get("desc_tokens")),
        pending=pending,
        pending_rev=rev,
        legacy_version=legacy,
        tokens_hash=item.get(TOKENS_HASH_ATTR, {}).get("S"),
    )


def table_definition(table_name: str | None = None) -> dict[str, Any]:
    """The table's ``CreateTable`` input shipped with the package (identical to
    ``deploy/dynamodb/product-search-index.json``), under ``table_name`` if given."""
    text = resources.files("search_indexer").joinpath(DEFINITION_FILE).read_text("utf-8")
    definition: dict[str, Any] = json.loads(text)
    if table_name:
        definition["TableName"] = table_name
    return definition
