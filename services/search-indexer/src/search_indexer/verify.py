"""Verification of the search index against ground truth (``cdc dev verify``).

Named by the service's descriptor (``service.SERVICE.verifier``). The truth is the source
``products`` table
(:func:`devstack.truth.search_documents`) run through the same tokeniser the index uses: at rest,
every live product has exactly one item equal to its row, every token of every live product has
a live posting, and no live posting points at a deleted product or a token the product no longer
has. Removal markers and deletion markers are allowed (they expire by TTL) but must carry one.
Every item's ``version`` is a source version (``S``): a numeric one is either an item of the
release that versioned by Kafka offset (replaced at the product's next change; none on a fresh
stack) or a writer storing the wrong type. Needs the ``verify`` extra (the dev stack).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2.extensions
from devstack import truth
from devstack.verify import Check, VerifyContext
from read_models.search import document_tokens, indexed_text
from sink_kit.aws import make_client

from search_indexer._items import parse_product
from search_indexer.store import IndexTable

SERVICE = "search-indexer"
DEFAULT_TABLE = "product-search-index"


def expected_index(
    conn: psycopg2.extensions.connection,
) -> tuple[dict[int, dict[str, Any]], set[tuple[str, int]]]:
    """What the index must hold: the products of the source table and their postings."""
    docs = truth.search_documents(conn)
    postings: set[tuple[str, int]] = set()
    for pid, doc in docs.items():
        # The index holds the text cut to its budgets (tokens come from that text too).
        doc["name"], doc["description"] = indexed_text(doc["name"], doc["description"])
        name_tokens, desc_tokens = document_tokens(doc["name"], doc["description"])
        doc["name_tokens"], doc["desc_tokens"] = name_tokens, desc_tokens
        postings.update((t, pid) for t in {*name_tokens, *desc_tokens})
    return docs, postings


def _want(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (
        doc["name"],
        doc["description"],
        doc["price"],
        doc["stock"],
        doc["in_stock"],
        doc["updated_at"],
        doc["name_tokens"],
        doc["desc_tokens"],
    )


def _have(got: Any) -> tuple[Any, ...]:
    return (
        got.name,
        got.description,
        got.price,
        got.stock,
        got.in_stock,
        datetime.fromisoformat(got.updated_at) if got.updated_at else None,
        list(got.name_tokens),
        list(got.desc_tokens),
    )


@dataclass
class IndexDiff:
    """The index's items held against the source table (what ``compare`` and the tests read)."""

    docs: dict[int, dict[str, Any]]
    expected_postings: set[tuple[str, int]]
    products: dict[int, Any] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    postings: set[tuple[str, int]] = field(default_factory=set)
    markers_without_ttl: list[str] = field(default_factory=list)
    versioned: int = 0
    numeric: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return sorted(set(self.docs) - set(self.products))

    @property
    def extra(self) -> list[int]:
        return sorted(set(self.products) - set(self.docs))

    @property
    def differ(self) -> list[int]:
        both = set(self.docs) & set(self.products)
        return sorted(p for p in both if self.want(p) != self.have(p))

    @property
    def orphans(self) -> list[tuple[str, int]]:
        return sorted(self.postings - self.expected_postings)

    @property
    def absent(self) -> list[tuple[str, int]]:
        return sorted(self.expected_postings - self.postings)

    def want(self, pid: int) -> tuple[Any, ...]:
        return _want(self.docs[pid])

    def have(self, pid: int) -> tuple[Any, ...]:
        return _have(self.products[pid])


def diff_index(table: IndexTable, conn: psycopg2.extensions.connection) -> IndexDiff:
    """Scan the index and set it against the source table."""
    docs, expected_postings = expected_index(conn)
    diff = IndexDiff(docs, expected_postings)
    for item in table.scan_all():
        pk = item["pk"]["S"]
        if "version" in item:
            diff.versioned += 1
            if "S" not in item["version"]:
                diff.numeric.append(f"{pk}/{item['sk']['S']}")
        if pk.startswith("PRODUCT#"):
            stored = parse_product(item)
            if stored.deleted:
                diff.deleted.add(stored.id)
            else:
                diff.products[stored.id] = stored
        elif pk.startswith("TOKEN#"):
            if not item.get("removed", {}).get("BOOL"):
                diff.postings.add((pk.removeprefix("TOKEN#"), int(item["sk"]["S"])))
            elif "ttl" not in item:
                diff.markers_without_ttl.append(f"{pk}/{item['sk']['S']}")
    return diff


def compare(table: IndexTable, conn: psycopg2.extensions.connection) -> list[Check]:
    """Products, postings and markers of the index against the source table."""
    diff = diff_index(table, conn)
    missing, extra, differ = diff.missing, diff.extra, diff.differ
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[:3]})")
    if extra:
        problems.append(f"{len(extra)} indexed but not in the source (e.g. {extra[:3]})")
    for pid in differ[:2]:
        problems.append(f"product {pid}: index {diff.have(pid)} != {diff.want(pid)}")
    if differ:
        problems.append(f"{len(differ)} differ")
    orphans, absent = diff.orphans, diff.absent
    posting_problems = []
    if orphans:
        posting_problems.append(f"{len(orphans)} extra (e.g. {orphans[:3]})")
    if absent:
        posting_problems.append(f"{len(absent)} missing (e.g. {absent[:3]})")
    markers, numeric, versioned = len(diff.markers_without_ttl), diff.numeric, diff.versioned
    return [
        Check(SERVICE, "products = source table", not problems, len(diff.docs),
              len(diff.products), "; ".join(problems)),
        Check(SERVICE, "postings = tokens of live products", not posting_problems,
              len(diff.expected_postings), len(diff.postings), "; ".join(posting_problems)),
        Check(SERVICE, "removal markers carry a TTL", not markers, 0, markers),
        Check(SERVICE, "versions are source versions (S)", not numeric, versioned,
              versioned - len(numeric),
              f"{len(numeric)} numeric (e.g. {numeric[:3]})" if numeric else ""),
    ]  # fmt: skip


def checks(ctx: VerifyContext) -> list[Check]:
    client = make_client("dynamodb", endpoint_url=ctx.info.aws_endpoint_url, env=ctx.info.aws_env)
    name = ctx.info.env_of(SERVICE).get("DYNAMODB_TABLE", DEFAULT_TABLE)
    with ctx.source() as conn:
        return compare(IndexTable(client, name), conn)
