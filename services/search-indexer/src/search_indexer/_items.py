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
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from read_models.search import (
    LEGACY_VERSION,
    NAME_KEY_MAX_BYTES,
    PENDING_ATTR,
    PENDING_REV_ATTR,
    PRODUCT_SK,
    TOKENS_HASH_ATTR,
    Item,
    StoredProduct,
    indexed_text,
    name_key,
    normalize_name,
    parse_product,
    product_key,
)

from search_indexer.domain import Product, price_bucket

__all__ = [
    "DEFINITION_FILE",
    "LEGACY_VERSION",
    "NAME_KEY_MAX_BYTES",
    "PENDING_ATTR",
    "PENDING_REV_ATTR",
    "PRODUCT_SK",
    "SWEEP_FLOOR_ATTR",
    "SWEEP_FLOOR_KEY",
    "TOKENS_HASH_ATTR",
    "Item",
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

#: Package data: a copy of deploy/dynamodb/product-search-index.json (a unit test keeps them equal).
DEFINITION_FILE = "product-search-index.json"


def tokens_hash(tokens: Iterable[str]) -> str:
    """32 hex digits of SHA-256 over the sorted, distinct tokens (one per line: a token holds no
    newline). Equal hashes mean equal posting sets (128 bits: no collision in practice)."""
    text = "\n".join(sorted(set(tokens)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


#: The item holding the highest sweep version applied to the products (``floor_version``).
SWEEP_FLOOR_KEY: Item = {"pk": {"S": "SWEEP#products"}, "sk": {"S": "SWEEP"}}
SWEEP_FLOOR_ATTR = "floor_version"


def posting_key(token: str, product_id: int) -> Item:
    return {"pk": {"S": f"TOKEN#{token}"}, "sk": {"S": str(product_id)}}


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


def with_pending(item: Item, pending: Mapping[str, str]) -> Item:
    """``item`` carrying the pending entries ``pending`` (token -> version), if any; such an
    item has no ``tokens_hash``, so no write puts over it unread."""
    if not pending:
        return item
    out = {k: v for k, v in item.items() if k != TOKENS_HASH_ATTR}
    out[PENDING_ATTR] = {"SS": pending_entries(pending)}
    return out


def table_definition(table_name: str | None = None) -> dict[str, Any]:
    """The table's ``CreateTable`` input shipped with the package (identical to
    ``deploy/dynamodb/product-search-index.json``), under ``table_name`` if given."""
    text = resources.files("search_indexer").joinpath(DEFINITION_FILE).read_text("utf-8")
    definition: dict[str, Any] = json.loads(text)
    if table_name:
        definition["TableName"] = table_name
    return definition
