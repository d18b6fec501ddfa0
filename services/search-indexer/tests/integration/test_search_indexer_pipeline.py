"""The indexer against the real Debezium relay and the shop simulator: the index equals what the
source table implies, with two indexers that both believe they own every partition, and a
replay from the start with a new group changes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from devstack import AwsEmulator, ShopSimulator, read_topic, wait_until
from search_indexer import ProductSearch, document_tokens, tokenize
from search_indexer.domain import rank_key


def reference_search(
    docs: dict[int, dict[str, Any]],
    query: str,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    in_stock: bool | None = None,
    limit: int = 20,
) -> list[int]:
    """The search answer computed from the source rows with the same tokeniser."""
    q = tokenize(query)
    if query.strip() and not q:
        return []
    ranked = []
    for pid, doc in docs.items():
        name_tokens, desc_tokens = document_tokens(doc["name"], doc["description"])
        if not set(q) <= {*name_tokens, *desc_tokens}:
            continue
        if min_price is not None and doc["price"] < min_price:
            continue
        if max_price is not None and doc["price"] > max_price:
            continue
        if in_stock is not None and doc["in_stock"] != in_stock:
            continue
        if q:
            ranked.append(((*rank_key(q, name_tokens, desc_tokens, doc["name"]), pid), pid))
        else:  # a listing: by price, lowest first, then by id
            ranked.append(((doc["price"], pid), pid))
    return [pid for _, pid in sorted(ranked)[:limit]]


QUERIES: list[dict[str, Any]] = [
    {"query": "espresso cup"},
    {"query": "espresso cups", "max_price": Decimal(30)},
    {"query": "CAFE"},
    {"query": "crème teapot", "in_stock": True},
    {"query": "naive ceramic", "min_price": Decimal(20), "max_price": Decimal(50)},
    {"query": "blue", "in_stock": False, "limit": 5},
    {"query": "", "min_price": Decimal(20), "max_price": Decimal(50)},
    {"query": "", "max_price": Decimal("9.99"), "in_stock": True},
    {"query": "the of"},
    {"query": "no-such-word-anywhere"},
]


def test_index_equals_source_with_two_owners_then_replay_changes_nothing(
    index_table: Any,
    products_topic: str,
    shop_conn: Any,
    shop_simulator: ShopSimulator,
    start_indexer: Any,
    kafka_bootstrap: str,
    aws_emulator: AwsEmulator,
    unique_id: str,
    helpers: Any,
) -> None:
    helpers.add_products(shop_conn, 60)
    # Two indexers in different groups: each believes it owns every partition and writes
    # every change, at its own pace, into the same table.
    first = start_indexer(f"si-a-{unique_id}", index_table.name)
    second = start_indexer(f"si-b-{unique_id}", index_table.name, WRITE_CONCURRENCY="3")
    shop_simulator.rate = 150
    shop_simulator.run(duration=12)
    ledger = shop_simulator.ledger.changes.get("products", {})
    print(f"simulated product changes: {dict(ledger)}")
    assert ledger.get("d", 0) >= 1 or ledger.get("u", 0) >= 100  # the workload did real work

    helpers.wait_for_truth(index_table, shop_conn)
    handled = [p.metric("cdc_messages_total", outcome="processed") for p in (first, second)]
    assert all(handled), handled  # both owners really consumed (and wrote) the changes

    # Search answers equal the reference computed from the source rows.
    docs, _ = helpers.expected_index(shop_conn)
    search = ProductSearch(index_table)
    for case in QUERIES:
        args = dict(case)
        got = [h.id for h in search.search(**args)]
        assert got == reference_search(docs, **args), args
    some = next(iter(docs.values()))
    hit = search.get(some["id"])
    assert hit is not None and hit.name == some["name"] and hit.price == some["price"]
    prefix = [h.id for h in search.by_name("crème esp", limit=100)]
    assert sorted(prefix) == sorted(
        pid for pid, d in docs.items() if d["name"].startswith("Crème Espresso")
    )
    assert all(search.get(pid) is None for pid in range(1, 40) if pid not in docs)  # deleted

    # Replay from the start with a new group: nothing is written, the index is unchanged.
    snapshot = sorted(map(repr, index_table.scan_all()))
    total = len(read_topic(kafka_bootstrap, products_topic))
    replay = helpers.InProcessIndexer(
        kafka_bootstrap, f"si-replay-{unique_id}", index_table.name, aws_emulator
    )
    replay.start()
    try:
        wait_until(lambda: replay.handled() >= total, 120, message="replay consumed the topic")
    finally:
        replay.stop()
    metrics = replay.sink.metrics
    assert metrics.value("search_index_products_total", outcome="written") == 0
    assert metrics.value("search_index_products_total", outcome="deleted") == 0
    assert metrics.value("search_index_postings_total", op="put", outcome="written") == 0
    assert metrics.value("search_index_postings_total", op="delete", outcome="written") == 0
    assert sorted(map(repr, index_table.scan_all())) == snapshot
