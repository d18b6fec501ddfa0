"""parse_record (and parse_view) throughput next to a bare orjson.loads of the same bytes, in
one run.

Events: Debezium envelopes of the ``products`` table (the captured golden snapshot read), each
with its own id, price, timestamps, LSN and ``sequence``, in both converter forms:
schema-enabled as the JSON converter writes them (~1 KB of payload after a ~5 KB schema), and
schemaless (the bare ~900-byte envelope, ``schemas.enable=false``) decoded with a
``ColumnTypes`` registry for the decimal and the timestamps. Prints events/s of both, their
ratio (target for the schema-enabled form: parsing costs at most 3x a bare orjson.loads),
parse_record's p50/p99 latency per event and what ``source_version`` of a parsed view costs on
top. Figures only, no timing assertions: machines differ.
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal

import orjson
from cdc_events import ChangeEvent, ColumnTypes, DecimalColumn, Parser, source_version
from cdc_events._decimal import encode_decimal
from cdc_events.testing import golden

N_EVENTS = 20_000  # ~0.1-0.5 s per pass here; enough for a stable rate
ROUNDS = 3  # best of three passes: the machine is shared
# What a consumer of the schemaless form declares for this table: the precise decimal (base64
# without its scale) and the timestamp/date columns (epoch numbers or text without a type).
REGISTRY = ColumnTypes(
    {
        "public.products": {
            "price": DecimalColumn(scale=2),
            "updated_at": "timestamp",
            "listed_at": "timestamp",
            "release_date": "date",
        }
    }
)


def _events() -> tuple[str, list[bytes], list[bytes]]:
    record = golden("pg-schema-products-r")
    assert record.value is not None and record.key is not None
    doc = orjson.loads(record.value)
    schema = orjson.dumps(doc["schema"])
    key_schema = orjson.dumps(orjson.loads(record.key)["schema"])
    payload = doc["payload"]
    values, keys = [], []
    for i in range(N_EVENTS):
        after = dict(payload["after"])
        after.update(
            id=i,
            price=encode_decimal(Decimal(1000 + i) / 100, 2),
            stock=i % 200,
            updated_at=f"2024-01-02T03:{i // 60 % 60:02d}:{i % 60:02d}.123456Z",
            name=f"Product {i}",
        )
        lsn = 28_000_000 + i * 64
        # One transaction per event: the commit key is the previous one's commit LSN.
        source = dict(
            payload["source"],
            lsn=lsn,
            sequence=f'["{lsn - 8}","{lsn}"]',
            txId=700 + i,
            snapshot="false",
        )
        body = dict(payload, after=after, source=source, op="c", ts_ms=1_704_164_645_000 + i)
        values.append(b'{"schema":' + schema + b',"payload":' + orjson.dumps(body) + b"}")
        keys.append(b'{"schema":' + key_schema + b',"payload":' + orjson.dumps({"id": i}) + b"}")
    return record.topic, keys, values


def _rate(fn: object, values: list[bytes]) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for v in values:
            fn(v)
        best = min(best, time.perf_counter() - start)
    return len(values) / best


def _latencies(parse: object, pairs: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """p50 and p99 of one call, in microseconds."""
    assert callable(parse)
    latencies = []
    clock = time.perf_counter_ns
    for pair in pairs:
        start = clock()
        parse(pair)
        latencies.append(clock() - start)
    latencies.sort()
    return statistics.median(latencies) / 1000, latencies[int(len(latencies) * 0.99)] / 1000


def _report(title: str, values: list[bytes], keys: list[bytes], parser: Parser, topic: str) -> None:
    first = parser.parse_record(topic, 0, 0, keys[0], values[0])
    assert isinstance(first, ChangeEvent) and first.after is not None
    pairs = list(zip(keys, values, strict=True))

    def parse_pair(pair: tuple[bytes, bytes]) -> object:
        return parser.parse_record(topic, 0, 0, pair[0], pair[1])

    def view_pair(pair: tuple[bytes, bytes]) -> object:
        return parser.parse_view(topic, 0, 0, pair[0], pair[1])

    loads_rate = _rate(orjson.loads, values)
    parse_rate = _rate(parse_pair, pairs)  # type: ignore[arg-type]
    view_rate = _rate(view_pair, pairs)  # type: ignore[arg-type]
    p50, p99 = _latencies(parse_pair, pairs)
    views = [view_pair(pair) for pair in pairs]
    version_rate = _rate(source_version, views)  # type: ignore[arg-type]
    size = statistics.mean(len(v) for v in values)
    print(
        f"\ncdc_events benchmark: {N_EVENTS} {title}, {size:.0f} bytes each (best of {ROUNDS})\n"
        f"  orjson.loads        {loads_rate:>10,.0f} events/s (value bytes only)\n"
        f"  parse_record        {parse_rate:>10,.0f} events/s (key + value, decoded, event_id)\n"
        f"  parse_view          {view_rate:>10,.0f} events/s (the same, as a flat ChangeView)\n"
        f"  cost ratio          {loads_rate / parse_rate:>10.2f}x orjson.loads\n"
        f"  parse_record p50    {p50:>10.1f} us/event\n"
        f"  parse_record p99    {p99:>10.1f} us/event\n"
        f"  source_version      {1e6 / version_rate:>10.2f} us/event (of a parsed view)"
    )


def test_parse_record_vs_orjson_loads() -> None:
    topic, keys, values = _events()
    _report("schema-enabled envelopes", values, keys, Parser(), topic)


def test_parse_record_schemaless() -> None:
    topic, keys, values = _events()
    bare = [orjson.dumps(orjson.loads(v)["payload"]) for v in values]
    bare_keys = [orjson.dumps(orjson.loads(k)["payload"]) for k in keys]
    parser = Parser(column_types=REGISTRY)
    first = parser.parse_record(topic, 0, 0, bare_keys[0], bare[0])
    assert isinstance(first, ChangeEvent) and first.after is not None
    assert not isinstance(first.after["price"], str)  # the registry applies
    _report("schemaless envelopes with a ColumnTypes registry", bare, bare_keys, parser, topic)
