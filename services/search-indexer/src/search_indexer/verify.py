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

from datetime import datetime
from typing import Any

import boto3
import psycopg2.extensions
from devstack import truth
from devstack.verify import Check, VerifyContext

from search_indexer._items import parse_product
from search_indexer._table import IndexTable
from search_indexer._text import document_tokens, indexed_text

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


def compare(table: IndexTable, conn: psycopg2.extensions.connection) -> list[Check]:
    """Products, postings and markers of the index against the source table."""
    docs, expected_postings = expected_index(conn)
    products: dict[int, Any] = {}
    deleted: set[int] = set()
    postings: set[tuple[str, int]] = set()
    markers_without_ttl = 0
    versioned = 0
    numeric: list[str] = []
    for item in table.scan_all():
        pk = item["pk"]["S"]
        if "version" in item:
            versioned += 1
            if "S" not in item["version"]:
                numeric.append(f"{pk}/{item['sk']['S']}")
        if pk.startswith("PRODUCT#"):
            stored = parse_product(item)
            if stored.deleted:
                deleted.add(stored.id)
            else:
                products[stored.id] = stored
        elif pk.startswith("TOKEN#"):
            if not item.get("removed", {}).get("BOOL"):
                postings.add((pk.removeprefix("TOKEN#"), int(item["sk"]["S"])))
            elif "ttl" not in item:
                markers_without_ttl += 1
    missing = sorted(set(docs) - set(products))
    extra = sorted(set(products) - set(docs))
    differ = sorted(p for p in set(docs) & set(products) if _want(docs[p]) != _have(products[p]))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[:3]})")
    if extra:
        problems.append(f"{len(extra)} indexed but not in the source (e.g. {extra[:3]})")
    for pid in differ[:2]:
        problems.append(f"product {pid}: index {_have(products[pid])} != {_want(docs[pid])}")
    if differ:
        problems.append(f"{len(differ)} differ")
    orphans = sorted(postings - expected_postings)
    absent = sorted(expected_postings - postings)
    posting_problems = []
    if orphans:
        posting_problems.append(f"{len(orphans)} extra (e.g. {orphans[:3]})")
    if absent:
        posting_problems.append(f"{len(absent)} missing (e.g. {absent[:3]})")
    return [
        Check(SERVICE, "products = source table", not problems, len(docs), len(products),
              "; ".join(problems)),
        Check(SERVICE, "postings = tokens of live products", not posting_problems,
              len(expected_postings), len(postings), "; ".join(posting_problems)),
        Check(SERVICE, "removal markers carry a TTL", not markers_without_ttl, 0,
              markers_without_ttl),
        Check(SERVICE, "versions are source versions (S)", not numeric, versioned,
              versioned - len(numeric),
              f"{len(numeric)} numeric (e.g. {numeric[:3]})" if numeric else ""),
    ]  # fmt: skip


def checks(ctx: VerifyContext) -> list[Check]:
    env = ctx.info.aws_env
    client = boto3.client(
        "dynamodb",
        endpoint_url=ctx.info.aws_endpoint_url,
        region_name=env.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
    )
    name = ctx.info.env_of(SERVICE).get("DYNAMODB_TABLE", DEFAULT_TABLE)
    with ctx.source() as conn:
        return compare(IndexTable(client, name), conn)
