"""Products indexed per second next to the emulator's raw BatchWriteItem rate, measured in the
same run against the same moto server, and the read side's latencies. These are emulator
figures: moto is single-process Python, far slower than DynamoDB; the ratio between the write
rates and the raw rate is what carries over.

    .venv/bin/pytest services/search-indexer/benchmarks -m benchmark -s -q
"""

from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal
from typing import Any

import orjson
import psutil
from cdc_events.testing import make_change
from consumer_runtime import CommitStrategy, InMemoryMessage, WriteBehind
from consumer_runtime.testing import SinkHarness
from devstack import AwsEmulator
from search_indexer import (
    IndexTable,
    ProductSearch,
    SearchIndexSink,
    decode,
    document_tokens,
    prepare_table,
)
from search_indexer._items import product_item
from search_indexer.domain import Product
from search_indexer.sink import make_dynamodb_client
from sink_kit.aws import make_client

TOPIC = "dbserver1.public.products"
PRODUCTS = 1000
# Batches of 250 products: several transactions of up to 100 items per batch for the write pool
# (8) to overlap, and enough batches (4 per phase) for a per-batch latency.
BATCH_PRODUCTS = 250
# Rounds of price changes of every product.
PRICE_ROUNDS = 6
# Items of each raw BatchWriteItem measurement (one before the indexing, one after): about a
# second each, so a pause of either process does not decide the ratio.
RAW_ITEMS = 5000
# ... and of the one before each round of price changes (about a third of a second).
RAW_ROUND_ITEMS = 2000
# Searches timed per kind (p50/p99 over these).
SEARCHES = 20
_WORDS = ("ceramic", "handmade", "blue", "stainless", "steel", "gift", "travel", "matte", "eco")
_NOUNS = ("Espresso Cup", "Teapot", "Water Bottle", "Desk Lamp", "Candle", "Yoga Mat")


def _row(rng: random.Random, pid: int, price: Decimal | None = None) -> dict[str, Any]:
    return {
        "id": pid,
        "name": f"{rng.choice(('Classic', 'Nordic', 'Smart'))} {rng.choice(_NOUNS)}",
        "description": " ".join(rng.choice(_WORDS) for _ in range(12)),
        "price": price if price is not None else Decimal(rng.randint(100, 20000)) / 100,
        "stock": rng.randint(0, 100),
    }


class _Cpu:
    """CPU seconds of the emulator's process and of this one (the consumer) over a phase: on
    two cores both share, the wall-clock rates depend on the machine's load, the CPU each side
    spends per item much less."""

    def __init__(self, emulator: AwsEmulator) -> None:
        self._procs = (psutil.Process(emulator.process.pid), psutil.Process())
        self.spent: dict[str, tuple[float, float]] = {}

    def _now(self) -> tuple[float, float]:
        times = [p.cpu_times() for p in self._procs]
        return times[0].user + times[0].system, times[1].user + times[1].system

    def measure(self, phase: str, run: Any) -> Any:
        before = self._now()
        try:
            return run()
        finally:
            after = self._now()
            prev = self.spent.get(phase, (0.0, 0.0))
            self.spent[phase] = (
                prev[0] + after[0] - before[0],
                prev[1] + after[1] - before[1],
            )

    def per_item_us(self, phase: str, items: int) -> tuple[float, float]:
        emulator, consumer = self.spent[phase]
        return emulator / items * 1e6, consumer / items * 1e6


def _raw_batch_write_rate(client: Any, table: str, n: int) -> float:
    items = [
        {"pk": {"S": f"RAW#{i}"}, "sk": {"S": "x"}, "price": {"N": "1.00"}, "name": {"S": "x" * 60}}
        for i in range(n)
    ]
    started = time.perf_counter()
    for start in range(0, n, 25):  # BatchWriteItem takes 25 items per request
        request = {table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return n / (time.perf_counter() - started)


def _raw_product_item_rate(client: Any, table: str, rows: list[dict[str, Any]]) -> float:
    """The same raw ``BatchWriteItem`` with the product items the indexer writes (15 scalar
    attributes) instead of 4-attribute ones: what the emulator can take of these items at
    all, with no condition and no transaction. Into a table of its own, so the read side's
    queries do not see them."""
    items = []
    for r in rows:
        name_tokens, desc_tokens = document_tokens(r["name"], r["description"])
        product = Product(r["id"], r["name"], r["description"], r["price"], r["stock"], None)
        items.append(
            product_item(
                product, r["description"], name_tokens, desc_tokens, "p0", partition=0, offset=0
            )
        )
    started = time.perf_counter()
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return len(items) / (time.perf_counter() - started)


def _parse_rate(values: list[tuple[int, bytes]], rounds: int = 20) -> float:
    """The raw limit of the same records: parse + decode only, no sink, no emulator."""
    messages = [
        InMemoryMessage(TOPIC, 0, i, orjson.dumps({"id": pid}), value)
        for i, (pid, value) in enumerate(values)
    ]
    started = time.perf_counter()
    for _ in range(rounds):
        for m in messages:
            decode(m)
    return rounds * len(messages) / (time.perf_counter() - started)


def _timed_writes(sink: SearchIndexSink) -> list[float]:
    """Record how long each ``write_batch`` (reads, conditional writes, product puts) takes."""
    samples: list[float] = []
    write = sink.write_batch

    def timed(batch: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return write(batch)
        finally:
            samples.append(time.perf_counter() - t0)

    sink.write_batch = timed  # type: ignore[method-assign]
    return samples


def _pct(samples: list[float]) -> str:
    if len(samples) < 2:
        return f"{len(samples)} batch(es)"
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms over {len(samples)} batches"


def _index(harness: SinkHarness[Any], values: list[tuple[int, bytes]]) -> float:
    """Append to the same in-memory log (offsets keep growing, so every change is newer)."""
    for pid, value in values:
        harness.produce(TOPIC, [value], key=orjson.dumps({"id": pid}))
    started = time.perf_counter()
    harness.run_until_idle()
    harness.sink.flush()  # the last batch's write (in the background): within the time
    return len(values) / (time.perf_counter() - started)


def test_products_per_second_next_to_raw_batch_writes(
    aws_emulator: AwsEmulator, aws_env: dict[str, str], unique_id: str
) -> None:
    client = make_dynamodb_client("us-east-1", aws_emulator.endpoint_url)
    table = f"bench-{unique_id}"
    prepare_table(client, table)
    rng = random.Random(1)
    rows = [_row(rng, pid) for pid in range(1, PRODUCTS + 1)]
    postings = 0
    for r in rows:
        name_tokens, desc_tokens = document_tokens(r["name"], r["description"])
        postings += len({*name_tokens, *desc_tokens})

    cpu = _Cpu(aws_emulator)
    raw = cpu.measure("raw", lambda: _raw_batch_write_rate(client, table, RAW_ITEMS))
    prepare_table(client, f"{table}-raw")
    raw_products = _raw_product_item_rate(client, f"{table}-raw", rows)
    sink = SearchIndexSink(IndexTable(client, table), write_concurrency=8)
    # Each change at its own source position (versions come from it): the creates, then the
    # price changes in later transactions.
    creates = [
        (r["id"], make_change("c", after=r, lsn=10_000 + r["id"], with_schema=True).value or b"")
        for r in rows
    ]
    parse_rate = _parse_rate(creates)
    # As the service runs it (``WRITE_BEHIND``): each batch written while the next is decoded.
    harness = SinkHarness(
        WriteBehind(sink),
        decode,
        strategy=CommitStrategy.COMMIT_AFTER_FLUSH,
        batch_size=BATCH_PRODUCTS,
    )
    latencies = _timed_writes(sink)
    create_rate = _index(harness, creates)
    create_latencies = list(latencies)
    latencies.clear()
    # Price changes in rounds (each a newer version of every product): a phase long enough
    # that a pause of the emulator (its garbage collector on a table of ~12,000 items) does not
    # decide the figure; latencies over every batch of every round.
    update_rates = []
    # Each round also paired with a raw measurement just before it: on a shared machine a
    # neighbour's burst lands on one phase and not the other, so the ratio of a pair measured
    # within a second of each other, taken as the median over the rounds, swings far less
    # than the ratio of the whole phase to two raw measurements seconds away.
    paired: list[float] = []
    for k in range(PRICE_ROUNDS):
        updates = [
            (
                r["id"],
                make_change(
                    "u",
                    after={**r, "price": Decimal(f"9.9{k}")},
                    lsn=1_000_000 * (k + 1) + r["id"],
                    sequence=(1_000_000 * (k + 1) - 1, 1_000_000 * (k + 1) + r["id"]),
                    with_schema=True,
                ).value
                or b"",
            )
            for r in rows
        ]
        raw_k = cpu.measure("raw", lambda: _raw_batch_write_rate(client, table, RAW_ROUND_ITEMS))
        update_rates.append(cpu.measure("price", lambda u=updates: _index(harness, u)))
        paired.append(update_rates[-1] / raw_k)
    update_rate = PRICE_ROUNDS / sum(1 / r for r in update_rates)  # over the whole phase
    written = sink.metrics.value("search_index_products_total", outcome="written")
    assert written == (1 + PRICE_ROUNDS) * PRODUCTS, written  # every change written, none skipped
    # The raw rate again, on the table as the price changes found it (12,000 items, not empty):
    # the ratio is to the mean of both measurements.
    raw_after = cpu.measure("raw", lambda: _raw_batch_write_rate(client, table, RAW_ITEMS))
    raw_before, raw = raw, (raw + raw_after) / 2
    harness.shutdown()

    print()
    print("search-indexer benchmark (moto server emulator figures, 2-core dev machine)")
    print(f"  parse + decode only (no sink)          {parse_rate:8.0f} products/s")
    print(
        f"  emulator raw BatchWriteItem            {raw:8.0f} items/s"
        f" (mean of {raw_before:.0f} before and {raw_after:.0f} after)"
    )
    print(
        f"    the same with the product items        {raw_products:8.0f} items/s"
        f" = {raw_products / raw:.0%} (no condition, no transaction)"
    )
    per = postings / PRODUCTS
    items = create_rate * (1 + per)
    print(f"  index new products ({per:.1f} postings each)  {create_rate:8.1f} products/s")
    print(f"    = {items:.0f} items/s written = {items / raw:.0%} of the raw item rate")
    print(f"    {_pct(create_latencies)}")
    print(f"    cost on AWS: {2 * (1 + per) + 2:.1f} units per new product (2 per item, 2 index)")
    print(f"  index price changes (no token change)  {update_rate:8.1f} products/s")
    print(f"    = {update_rate / raw:.0%} of the raw item rate; {_pct(latencies)}")
    print(
        f"    paired with a raw measurement just before each round: median"
        f" {statistics.median(paired):.0%} of the raw item rate"
        f" (rounds: {', '.join(f'{r:.0%}' for r in paired)})"
    )
    print(
        "    cost on AWS: 5 write units per price change (2 transactional + 3 in the two indexes)"
    )
    raw_cpu = cpu.per_item_us("raw", 2 * RAW_ITEMS + PRICE_ROUNDS * RAW_ROUND_ITEMS)
    price_cpu = cpu.per_item_us("price", PRICE_ROUNDS * PRODUCTS)
    print(
        f"  CPU per item, emulator / consumer: raw {raw_cpu[0]:.0f} / {raw_cpu[1]:.0f} us;"
        f" price change {price_cpu[0]:.0f} / {price_cpu[1]:.0f} us"
        f" (emulator {price_cpu[0] / raw_cpu[0]:.2f}x a raw item's)"
    )
    # The emulator answers GSI and posting queries by walking the table: give reads the
    # generic client's 10 s timeout instead of the writer's 2 s.
    reads = _read_latencies(
        IndexTable(make_client("dynamodb", "us-east-1", aws_emulator.endpoint_url), table), rng
    )
    for what, samples in reads.items():
        print(f"  search: {what:<34} {_pct_ms(samples)}")


def _pct_ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:6.1f} ms, p99 {q[98] * 1000:6.1f} ms ({len(samples)} queries)"


def _read_latencies(table: IndexTable, rng: random.Random) -> dict[str, list[float]]:
    """Time the read side over the indexed catalogue: a two-token full-text search, a
    name-prefix search, a price-range listing (20-50), and a get by id."""
    search = ProductSearch(table)
    queries: dict[str, Any] = {
        "two-token full text": lambda: search.search(
            f"{rng.choice(_WORDS)} {rng.choice(_NOUNS).split()[0]}"
        ),
        "name prefix": lambda: search.by_name(rng.choice(("classic es", "nordic t", "smart d"))),
        "price range 20-50": lambda: search.search("", min_price=20, max_price=50),
        "by id": lambda: search.get(rng.randint(1, PRODUCTS)),
    }
    out: dict[str, list[float]] = {}
    for what, run in queries.items():
        samples = []
        for _ in range(SEARCHES):
            t0 = time.perf_counter()
            run()
            samples.append(time.perf_counter() - t0)
        out[what] = samples
    return out
