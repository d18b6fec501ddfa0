"""The product items of the ``product-search-index`` table as the readers parse them (pure):
their key, the ``by-name`` sort key, and ``StoredProduct`` from DynamoDB's typed JSON.

The whole item layout (postings, pending entries, markers, the sweep floor, the writes) is
``search_indexer._items``'s, which builds items with these keys; ``ProductSearch`` reads what
``parse_product`` parses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from read_models.search._text import utf8_prefix

__all__ = [
    "LEGACY_VERSION",
    "NAME_KEY_MAX_BYTES",
    "PENDING_ATTR",
    "PENDING_REV_ATTR",
    "PRODUCT_SK",
    "TOKENS_HASH_ATTR",
    "Item",
    "StoredProduct",
    "name_key",
    "parse_product",
    "product_key",
]

Item = dict[str, Any]

#: The version of whatever has no source version: a numeric (Kafka offset) version or pending
#: entry written by the previous release, or no version at all. Below every source version
#: (``""`` sorts first), so the next write of the product replaces or settles it.
LEGACY_VERSION: Final = ""

PRODUCT_SK = "PRODUCT"
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


def product_key(product_id: int) -> Item:
    return {"pk": {"S": f"PRODUCT#{product_id}"}, "sk": {"S": PRODUCT_SK}}


def name_key(name_norm: str) -> str:
    """The ``by-name`` sort key of a normalised name (or of a prefix searched for)."""
    return utf8_prefix(name_norm, NAME_KEY_MAX_BYTES)


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
