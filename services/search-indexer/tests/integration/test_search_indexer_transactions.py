"""Transactional writes against the AWS emulator: atomicity, version guards under concurrent
writers, cancellations, refusals, and the large-product protocol's cut-over.

Faults are injected where botocore sends a request (``before-send``): a request is dropped as
if the member died before it reached the table. The emulator runs ``TransactWriteItems`` with
moto's own conditions and ``CancellationReasons`` (``devstack._moto_patches`` only makes its
rollback copy cheap).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
from cdc_events.testing import make_change
from consumer_runtime import Batch, RetryableError, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack import AwsEmulator
from search_indexer import IndexTable, SearchIndexSink, decode, document_tokens
from search_indexer._items import parse_product
from search_indexer.domain import Product, ProductChange
from search_indexer.sink import make_dynamodb_client

TOPIC = "dbserver1.public.products"
TP = TopicPartition(TOPIC, 0)


class _Died(RetryableError):
    """The member died before this request left it."""


def v(n: int) -> str:
    text = str(n).zfill(20)
    return "q" + text + "2" + text + text


def change(
    pid: int, n: int, description: str, *, price: str = "5.00", created: bool = False
) -> ProductChange:
    product = Product(pid, f"Teapot {pid}", description, Decimal(price), 3, None)
    return ProductChange(pid, product, v(n), TOPIC, 0, n, created=created)


def batch(*changes: ProductChange) -> Batch[ProductChange]:
    return Batch(records={TP: list(changes)}, next_offsets={TP: changes[-1].offset + 1})


def state(table: IndexTable) -> dict[str, Any]:
    """Products (version, tokens) and live postings, by key."""
    products: dict[int, tuple[str, frozenset[str]]] = {}
    postings: set[tuple[str, int]] = set()
    for item in table.scan_all():
        pk = item["pk"]["S"]
        if pk.startswith("PRODUCT#"):
            stored = parse_product(item)
            products[stored.id] = (stored.version, stored.tokens)
        elif not item.get("removed", {}).get("BOOL"):
            postings.add((pk.removeprefix("TOKEN#"), int(item["sk"]["S"])))
    return {"products": products, "postings": postings}


def expected(*changes: ProductChange) -> dict[str, Any]:
    products: dict[int, tuple[str, frozenset[str]]] = {}
    postings: set[tuple[str, int]] = set()
    for c in changes:
        assert isinstance(c.state, Product) and c.state.description is not None
        name_tokens, desc_tokens = document_tokens(c.state.name, c.state.description)
        tokens = frozenset(name_tokens) | frozenset(desc_tokens)
        products[c.product_id] = (c.version, tokens)
        postings |= {(t, c.product_id) for t in tokens}
    return {"products": products, "postings": postings}


@pytest.fixture
def new_sink(index_table: IndexTable, aws_emulator: AwsEmulator) -> Any:
    sinks: list[SearchIndexSink] = []

    def _new(**kwargs: Any) -> SearchIndexSink:
        client = make_dynamodb_client("us-east-1", aws_emulator.endpoint_url)
        sink = SearchIndexSink(IndexTable(client, index_table.name), **kwargs)
        sinks.append(sink)
        return sink

    yield _new
    for sink in sinks:
        sink.close()


def _die_from(sink: SearchIndexSink, k: int) -> list[str]:
    """From the ``k``-th write request on (1-based), the member is dead: nothing is sent."""
    seen: list[str] = []

    def before_send(request: Any, **_: Any) -> None:
        operation = request.headers.get("X-Amz-Target", b"").decode().split(".")[-1]
        if operation in ("PutItem", "UpdateItem", "TransactWriteItems", "DeleteItem"):
            seen.append(operation)
            if len(seen) >= k:
                raise _Died(f"member died before request {len(seen)} ({operation})")

    sink.table.client.meta.events.register("before-send.dynamodb", before_send)
    return seen


@pytest.mark.parametrize(
    ("old_description", "new_description"),
    [
        ("blue ceramic", "green glass jug"),  # postings added and removed
        ("blue ceramic", "blue ceramic"),  # a price change: no posting changes
    ],
)
def test_a_write_interrupted_at_any_point_leaves_the_old_or_the_new_product(
    new_sink: Callable[..., SearchIndexSink],
    index_table: IndexTable,
    old_description: str,
    new_description: str,
) -> None:
    old = change(1, 3, old_description, created=True)
    new = change(1, 5, new_description, price="6.00")
    new_sink().write_batch(batch(old))
    assert state(index_table) == expected(old)

    # How many write requests the change takes when nothing fails (from the old state).
    probe = new_sink()
    requests = _die_from(probe, 10_000)
    probe.write_batch(batch(new))
    assert state(index_table) == expected(new)
    total = len(requests)
    for k in range(1, total + 1):
        # Back to the old state, then the member dies before its k-th request.
        for item in index_table.scan_all():
            index_table.client.delete_item(
                TableName=index_table.name, Key={"pk": item["pk"], "sk": item["sk"]}
            )
        new_sink().write_batch(batch(old))
        dying = new_sink()
        _die_from(dying, k)
        with pytest.raises(RetryableError):
            dying.write_batch(batch(new))
        assert state(index_table) in (expected(old), expected(new)), f"died before request {k}"
        # The redelivery, by a fresh member, ends at the new product exactly.
        new_sink().write_batch(batch(new))
        assert state(index_table) == expected(new)


def test_concurrent_writers_end_at_the_newest_version_of_every_product(
    new_sink: Callable[..., SearchIndexSink], index_table: IndexTable
) -> None:
    """Two members write interleaved versions of the same 40 products at once (both believe
    they own the partition): the newest change of each product wins with exactly its
    postings, whatever order the transactions land in."""
    words = ("blue", "green", "glass", "steel", "oak", "linen", "matte", "gift")
    histories = {
        pid: [
            change(pid, 10 * step + pid % 7, f"{words[(pid + step) % 8]} {words[step % 8]}")
            for step in range(1, 7)
        ]
        for pid in range(1, 41)
    }
    first, second = new_sink(), new_sink()
    errors: list[BaseException] = []

    def run(sink: SearchIndexSink, steps: list[int]) -> None:
        try:
            for step in steps:
                sink.write_batch(batch(*(h[step] for h in histories.values())))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(first, [0, 2, 5, 1])),
        threading.Thread(target=run, args=(second, [1, 3, 4, 0, 2])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not [e for e in errors if not isinstance(e, RetryableError)]
    if errors:  # contention past the rounds of one batch: the runtime retries, as here
        first.write_batch(batch(*(h[5] for h in histories.values())))
    assert state(index_table) == expected(*(h[5] for h in histories.values()))


def test_a_cancelled_batch_drops_the_superseded_and_writes_the_rest(
    new_sink: Callable[..., SearchIndexSink], index_table: IndexTable
) -> None:
    """150 price changes (two transactions of up to 100 products): 20 products already hold a
    newer version, 10 are not in the index yet, 10 change their tokens. The superseded are
    dropped (stale), the others planned again from the item each cancellation returned."""
    sink = new_sink()
    base = [change(pid, 10, "blue ceramic", created=True) for pid in range(1, 151)]
    sink.write_batch(batch(*[c for c in base if c.product_id > 10]))
    newer = [change(pid, 30, "blue ceramic", price="9.00") for pid in range(11, 31)]
    sink.write_batch(batch(*newer))
    sink.metrics.products.clear()
    updates = [
        change(pid, 20, "green glass" if pid > 140 else "blue ceramic", price="7.00")
        for pid in range(1, 151)
    ]
    sink.write_batch(batch(*updates))
    assert sink.metrics.value("search_index_products_total", outcome="stale") == 20
    assert sink.metrics.value("search_index_products_total", outcome="written") == 130
    want = {u.product_id: u for u in updates} | {n.product_id: n for n in newer}
    assert state(index_table) == expected(*want.values())


def test_a_record_dynamodb_refuses_is_dead_lettered_and_the_rest_written(
    index_table: IndexTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item DynamoDB refuses (here a product item made larger than 400 KB) refuses the
    request it is in as a whole; the sink splits it per product, names the record, and the
    runtime dead-letters it while its neighbours in the batch are written."""
    from search_indexer import _large
    from search_indexer import sink as sink_module

    real_target = sink_module.target

    def oversized(change: Any, stored: Any, expires: int) -> Any:
        item, tokens = real_target(change, stored, expires)
        if change.product_id == 13:
            item = {**item, "blob": {"S": "x" * 500_000}}
        return item, tokens

    monkeypatch.setattr(sink_module, "target", oversized)
    monkeypatch.setattr(_large, "target", oversized)
    harness = SinkHarness(SearchIndexSink(index_table), decode)
    for pid in range(10, 17):
        row = {
            "id": pid,
            "name": f"Lamp {pid}",
            "description": "oak",
            "price": Decimal("3.00"),
            "stock": 1,
        }
        value = make_change("c", after=row, lsn=1000 + pid, with_schema=True).value
        harness.produce(TOPIC, [value or b""], key=orjson.dumps({"id": pid}))
    harness.run_until_idle()
    assert [d.code for d in harness.dead_letters] == ["store_rejected"]
    assert "product 13" in str(harness.dead_letters[0].message)
    ids = set(state(index_table)["products"])
    assert ids == {10, 11, 12, 14, 15, 16}
    harness.shutdown()


def test_a_change_past_one_transaction_takes_the_large_protocol(
    new_sink: Callable[..., SearchIndexSink], index_table: IndexTable
) -> None:
    """64 tokens replaced by 64 others: 128 posting writes do not fit in a transaction with
    the product item; the large protocol writes them, and the next price change (no token
    change) goes back to one unread transaction item."""
    sink = new_sink()
    first = change(1, 3, " ".join(f"alpha{i}" for i in range(70)), created=True)
    second = change(1, 5, " ".join(f"beta{i}" for i in range(70)))
    third = change(1, 7, " ".join(f"beta{i}" for i in range(70)), price="1.00")
    sink.write_batch(batch(first))
    sink.write_batch(batch(second))
    assert state(index_table) == expected(second)
    stored = index_table.read_product(1)
    assert stored is not None and not stored.pending and stored.tokens_hash is not None
    sizes: list[int] = []
    sink.table.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: sizes.append(len(params["TransactItems"])),
    )
    sink.write_batch(batch(third))
    assert sizes == [1]
    assert state(index_table) == expected(third)
