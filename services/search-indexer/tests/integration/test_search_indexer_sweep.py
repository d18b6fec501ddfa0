"""The sweep after a re-snapshot, against the AWS emulator through the real consumer loop
(``SinkHarness``, the service's own decoder).

Debezium lost its offsets and snapshotted again at ``C2``: products deleted in the source
meanwhile reach Kafka not at all (a snapshot emits no deletes). The last read of ``products``
in that snapshot carries a sweep version ``S`` (``cdc_events.sweep_version``); once it is
applied, every live product whose version is below ``S`` (neither read by the snapshot nor
changed after it) is deleted at ``S`` with its postings, and the index equals what the new
snapshot alone would give.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError
from cdc_events.testing import make_change
from consumer_runtime import RetryableError, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack import AwsEmulator
from search_indexer import (
    IndexTable,
    Product,
    ProductSearch,
    SearchIndexSink,
    document_tokens,
    prepare_table,
    verify,
)
from search_indexer._items import parse_product, posting_item, product_item
from search_indexer.domain import make_decoder
from search_indexer.settings import Settings
from search_indexer.sink import make_dynamodb_client
from search_indexer.store import SCAN_READ_TIMEOUT_S

TOPIC = "dbserver1.public.products"
SWEPT = "search_index_swept_products_total"

C1 = 1_000  # the first snapshot's point (LSN)
C2 = 5_000  # the re-snapshot's point
S2 = "q" + str(C2).zfill(20) + "0" + "0" * 40  # its sweep version
#: A product item of the release before generations (``p`` form, class first): below every
#: ``q`` version, so swept like one of an earlier generation.
P_FORM = "p1" + "9" * 40


def _row(pid: int, name: str, description: str, price: str = "10.00") -> dict[str, Any]:
    return {
        "id": pid,
        "name": name,
        "description": description,
        "price": Decimal(price),
        "stock": 5,
    }


def _read(row: dict[str, Any], lsn: int, snapshot: str = "true") -> bytes:
    """A snapshot read at the snapshot's point ``lsn`` (``sequence`` ``[null, "<lsn>"]``)."""
    record = make_change(
        "r", after=row, lsn=lsn, sequence=(None, lsn), snapshot=snapshot, with_schema=True
    )
    assert record.value is not None
    return record.value


def _streamed(op: str, row: dict[str, Any], lsn: int, commit: int) -> bytes:
    record = make_change(
        op,
        after=row if op != "d" else None,
        before=row if op == "d" else None,
        lsn=lsn,
        sequence=(commit, lsn),
        with_schema=True,
    )
    assert record.value is not None
    return record.value


# The first generation: a snapshot at C1 of products 1-6, then streamed changes.
GEN1 = {pid: _row(pid, f"Teapot {pid}", f"ceramic glaze{pid}") for pid in range(1, 7)}
GEN1_READS = [
    _read(row, C1, "last_in_data_collection" if pid == 6 else "true") for pid, row in GEN1.items()
]
CUP = _row(7, "Espresso Cup", "small porcelain")
GEN1_STREAMED = [
    _streamed("u", _row(2, "Teapot 2", "ceramic stoneware"), 1_200, 1_100),
    _streamed("c", CUP, 1_300, 1_200),
]
#: An update of product 5 streamed in the first generation, kept to be replayed later.
OLD_UPDATE_5 = _streamed("u", _row(5, "Teapot 5", "resurrected enamel"), 1_400, 1_300)

# The relay lost its offsets. Meanwhile products 4, 5, 6 and 8 were deleted in the source,
# product 3 was changed and product 9 created; none of it was streamed.
# The re-snapshot at C2 reads 1, 2, 3, 7 and 9; 9's read is the last of the table.
GEN2 = {
    1: GEN1[1],
    2: _row(2, "Teapot 2", "ceramic stoneware"),
    3: _row(3, "Teapot 3", "cast iron", "31.00"),
    7: CUP,
    9: _row(9, "Water Bottle", "stainless steel"),
}
#: Product 10, created after the re-snapshot's point (streamed, another partition).
LAMP = _row(10, "Desk Lamp", "brass steel", "49.90")
LAMP_CREATED = _streamed("c", LAMP, 5_200, 5_100)
GONE = (4, 5, 6, 8)


def _key(pid: int) -> bytes:
    return orjson.dumps({"id": pid})


@dataclass
class Member:
    """One indexer member: its sink over its own client, in the real consumer loop."""

    sink: SearchIndexSink
    harness: SinkHarness[Any]
    client: Any

    def send(self, pid: int, *values: bytes, partition: int = 0) -> None:
        self.harness.produce(TOPIC, values, key=_key(pid), partition=partition)

    def run(self) -> None:
        self.harness.run_until_idle()

    def swept(self) -> float:
        return self.sink.metrics.value(SWEPT)


@pytest.fixture
def member(index_table: IndexTable, aws_emulator: AwsEmulator) -> Iterator[Callable[..., Member]]:
    harnesses: list[SinkHarness[Any]] = []

    def _member(table: IndexTable = index_table) -> Member:
        client = make_dynamodb_client("us-east-1", aws_emulator.endpoint_url)
        sink = SearchIndexSink(IndexTable(client, table.name))
        harness = SinkHarness(sink, make_decoder())
        harnesses.append(harness)
        return Member(sink, harness, client)

    yield _member
    for harness in harnesses:
        harness.shutdown()


def _seed_p_form(table: IndexTable) -> None:
    """Product 8 as the release before generations wrote it (``p`` version), with postings."""
    product = Product(8, "Yoga Mat", "cork rubber", Decimal("25.00"), 2, None)
    name_tokens, desc_tokens = document_tokens(product.name, "cork rubber")
    item = product_item(
        product, "cork rubber", name_tokens, desc_tokens, P_FORM, partition=0, offset=0
    )
    table.client.put_item(TableName=table.name, Item=item)
    for token in {*name_tokens, *desc_tokens}:
        table.client.put_item(TableName=table.name, Item=posting_item(token, 8, P_FORM))


def _first_generation(m: Member) -> None:
    for pid, value in zip(GEN1, GEN1_READS, strict=True):
        m.send(pid, value)
    m.send(2, GEN1_STREAMED[0])
    m.send(7, GEN1_STREAMED[1])
    m.send(5, OLD_UPDATE_5)
    m.run()
    _seed_p_form(m.sink.table)


def _state(table: IndexTable) -> tuple[dict[int, Any], set[tuple[str, int]], set[int]]:
    """(live products: pid -> (name, description, price, tokens), live postings, deleted)."""
    products: dict[int, Any] = {}
    postings: set[tuple[str, int]] = set()
    deleted: set[int] = set()
    for item in table.scan_all():
        pk = item["pk"]["S"]
        if pk.startswith("PRODUCT#"):
            if "version" not in item:
                continue  # a stub: pending entries only, no product yet
            stored = parse_product(item)
            assert "pending_tokens" not in item, item
            if stored.deleted:
                deleted.add(stored.id)
            else:
                products[stored.id] = (
                    stored.name,
                    stored.description,
                    stored.price,
                    stored.tokens,
                )
        elif pk.startswith("TOKEN#") and not item.get("removed", {}).get("BOOL"):
            postings.add((pk.removeprefix("TOKEN#"), int(item["sk"]["S"])))
    return products, postings, deleted


def _expected(rows: dict[int, dict[str, Any]]) -> tuple[dict[int, Any], set[tuple[str, int]]]:
    products: dict[int, Any] = {}
    postings: set[tuple[str, int]] = set()
    for pid, row in rows.items():
        name_tokens, desc_tokens = document_tokens(row["name"], row["description"])
        tokens = frozenset(name_tokens) | frozenset(desc_tokens)
        products[pid] = (row["name"], row["description"], row["price"], tokens)
        postings |= {(t, pid) for t in tokens}
    return products, postings


def _version(table: IndexTable, pid: int) -> str:
    stored = table.read_product(pid)
    assert stored is not None
    return stored.version


def _verify(table: IndexTable, rows: dict[int, dict[str, Any]], monkeypatch: Any) -> list[Any]:
    """The verifier's checks (``cdc dev verify``) with ``rows`` as the source table."""
    docs = {pid: {**r, "in_stock": r["stock"] > 0, "updated_at": None} for pid, r in rows.items()}
    monkeypatch.setattr(verify.truth, "search_documents", lambda _conn: docs)
    return verify.compare(table, None)  # type: ignore[arg-type]


def test_the_sweep_deletes_what_the_new_snapshot_did_not_read(
    index_table: IndexTable,
    member: Callable[..., Member],
    aws_emulator: AwsEmulator,
    unique_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Products 4, 5, 6 (earlier generation) and 8 (``p`` form) were not read by the
    re-snapshot: deleted at S2 with their postings. 1 and 2 (read before the marker) and 10
    (created after the snapshot point, streamed in partition 1 before the marker) stay. 3 and
    7, whose reads sit in partition 2 behind the marker, are swept too (their versions are
    still below S2) and restored by their reads. The index then equals what the new snapshot
    alone gives, and a search no longer finds a gone product."""
    m = member()
    _first_generation(m)
    assert set(_state(index_table)[0]) == {1, 2, 3, 4, 5, 6, 7, 8}

    m.send(10, LAMP_CREATED, partition=1)
    m.run()
    m.send(1, _read(GEN2[1], C2))
    m.send(2, _read(GEN2[2], C2))
    m.send(9, _read(GEN2[9], C2, "last_in_data_collection"))  # the marker
    m.run()

    products, postings, deleted = _state(index_table)
    assert set(products) == {1, 2, 9, 10}
    assert deleted == {3, 4, 5, 6, 7, 8}
    assert {pid for _, pid in postings} == {1, 2, 9, 10}  # the gone products' postings too
    for pid in deleted:
        assert _version(index_table, pid) == S2  # deleted with the sweep's version
    assert m.swept() == 6
    assert m.harness.committed[TopicPartition(TOPIC, 0)] == len(GEN1_READS) + 6

    m.send(3, _read(GEN2[3], C2), partition=2)  # the reads of partition 2 arrive
    m.send(7, _read(GEN2[7], C2), partition=2)
    m.run()

    live = {**GEN2, 10: LAMP}
    want_products, want_postings = _expected(live)
    products, postings, deleted = _state(index_table)
    assert (products, postings) == (want_products, want_postings)
    assert deleted == set(GONE)
    assert all(check.ok for check in _verify(index_table, live, monkeypatch))
    search = ProductSearch(index_table)
    assert {h.id for h in search.search("ceramic")} == {1, 2}
    assert search.search("cork") == [] and search.search("glaze4") == []
    assert search.get(5) is None and search.get(8) is None
    assert {h.id for h in search.search("steel")} == {9, 10}

    # A fresh snapshot of the source (the reads of C2 and the change after it) into an empty
    # table gives the same index.
    client = make_dynamodb_client("us-east-1", aws_emulator.endpoint_url)
    fresh_table = IndexTable(client, f"psi-fresh-{unique_id}")
    prepare_table(client, fresh_table.name)
    fresh = member(fresh_table)
    for pid, row in GEN2.items():
        fresh.send(pid, _read(row, C2, "last_in_data_collection" if pid == 9 else "true"))
    fresh.send(10, LAMP_CREATED)
    fresh.run()
    assert _state(fresh_table)[:2] == _state(index_table)[:2]


def test_a_redelivered_marker_sweeps_nothing_and_an_old_change_stays_deleted(
    index_table: IndexTable, member: Callable[..., Member]
) -> None:
    """The marker delivered again (a redelivery after a crash, a dead-letter replay) re-runs
    the sweep: nothing changes, not a byte. Changes of the earlier generation replayed after
    the sweep (a dead letter, a lagging partition) are older than the sweep's deletion
    markers: product 5 and 4 stay deleted; a change after the snapshot point re-creates 4."""
    m = member()
    _first_generation(m)
    marker = _read(GEN2[9], C2, "last")
    for pid in (1, 2, 3, 7):
        m.send(pid, _read(GEN2[pid], C2))
    m.send(9, marker)
    m.run()
    assert m.swept() == 4  # 4, 5, 6, 8
    before = sorted(map(repr, index_table.scan_all()))

    m.send(9, marker)  # redelivered
    m.run()
    assert sorted(map(repr, index_table.scan_all())) == before
    assert m.swept() == 4

    m.send(5, OLD_UPDATE_5)  # replayed from the dead-letter topic
    m.send(4, GEN1_READS[3])  # the first snapshot's read of 4, re-produced
    m.run()
    assert sorted(map(repr, index_table.scan_all())) == before
    products, postings, deleted = _state(index_table)
    assert deleted == set(GONE)
    assert ("resurrected", 5) not in postings and ("glaze4", 4) not in postings

    again = _row(4, "Teapot 4", "glaze4 reborn")
    m.send(4, _streamed("c", again, 6_200, 6_100))  # re-created after the snapshot: wins
    m.run()
    products, postings, deleted = _state(index_table)
    assert products[4] == _expected({4: again})[0][4]
    assert deleted == {5, 6, 8}


def test_a_change_below_the_sweep_that_arrives_after_it_is_not_applied(
    index_table: IndexTable, member: Callable[..., Member]
) -> None:
    """A partition that lags by a whole re-snapshot delivers its first generation's changes
    after the sweep: product 11, created then and deleted while the relay had no offsets, was
    never seen by the sweep (no item, no deletion marker). The sweep's version is the table's
    floor from then on: a change below it is older than the snapshot that superseded it, and
    is not applied, by this member or another one."""
    m = member()
    _first_generation(m)
    for pid in (1, 2, 3, 7):
        m.send(pid, _read(GEN2[pid], C2))
    m.send(9, _read(GEN2[9], C2, "last"))
    m.run()
    kettle = _row(11, "Old Kettle", "copper")
    m.send(11, _streamed("c", kettle, 1_500, 1_450), partition=1)
    m.run()
    assert 11 not in _state(index_table)[0]
    other = member()  # another replica: it reads the floor from the table
    other.send(12, _streamed("c", _row(12, "Old Pan", "iron"), 1_600, 1_550), partition=2)
    other.run()
    products, postings, _ = _state(index_table)
    assert 11 not in products and 12 not in products
    assert not {pid for _, pid in postings} & {11, 12}
    # Above the floor: applied as ever.
    other.send(11, _streamed("c", kettle, 6_500, 6_400), partition=1)
    other.run()
    assert 11 in _state(index_table)[0]


def test_the_sweep_scans_through_its_own_client_with_a_long_read_timeout(
    index_table: IndexTable, aws_emulator: AwsEmulator, member: Callable[..., Member]
) -> None:
    """A sweep's scan pages read the whole table: the 2 s timeout of the writes' client would
    retry a sweep over a large table (or a loaded emulator) for ever. The service builds a
    scan client with ``SCAN_READ_TIMEOUT_S``, and the scans go through it."""
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9",
        dynamodb_table=index_table.name,
        aws_endpoint_url=aws_emulator.endpoint_url,
        aws_region="us-east-1",
        create_table=False,
    )
    sink = SearchIndexSink.from_settings(settings)
    try:
        assert sink.table.client.meta.config.read_timeout == 2
        assert sink.table.scan_client.meta.config.read_timeout == SCAN_READ_TIMEOUT_S >= 30
    finally:
        sink.close()
    # The scans use the scan client: one that cannot reach the table fails the sweep (retried
    # with its batch), while the writes' client works.
    m = member()
    _first_generation(m)
    dead = make_dynamodb_client("us-east-1", "http://127.0.0.1:9")
    table = IndexTable(index_table.client, index_table.name, scan_client=dead)
    with pytest.raises(RetryableError):
        table.scan_products_below(S2)
    assert IndexTable(index_table.client, index_table.name).scan_products_below(S2)


def _throttle(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


def test_throttling_during_the_sweep_is_retried_and_the_offset_waits_for_it(
    index_table: IndexTable, member: Callable[..., Member]
) -> None:
    """The sweep's scan is throttled three times, then its deletion transaction once: the
    batch is retried like any other write error, and the marker's offset is not committed
    before the sweep is done (at every throttled attempt it is still the one before)."""
    m = member()
    _first_generation(m)
    tp = TopicPartition(TOPIC, 0)
    done = m.harness.committed[tp]
    throttled: list[tuple[str, int | None]] = []
    # The scan's segments run on parallel threads: the count and the append are one step.
    counting = threading.Lock()

    def throttle_scans(**_: Any) -> None:
        with counting:
            if len(throttled) >= 3:
                return
            throttled.append(("Scan", m.harness.committed.get(tp)))
        raise _throttle("Scan")

    def throttle_the_sweep_once(params: dict[str, Any], **_: Any) -> None:
        product = params["TransactItems"][0]["Put"]["Item"]
        if product.get("deleted") and len(throttled) == 3:
            throttled.append(("TransactWriteItems", m.harness.committed.get(tp)))
            raise _throttle("TransactWriteItems")

    m.client.meta.events.register("before-call.dynamodb.Scan", throttle_scans)
    m.client.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", throttle_the_sweep_once
    )
    m.send(9, _read(GEN2[9], C2, "last"))
    m.run()

    assert throttled == [("Scan", done)] * 3 + [("TransactWriteItems", done)]
    # The scan's segments run in parallel: the three throttled scans may fail one attempt.
    assert m.harness.metric("cdc_retries_total", service="test-service") >= 2
    assert m.harness.committed[tp] == done + 1
    products, _, deleted = _state(index_table)
    assert set(products) == {9} and deleted == {1, 2, 3, 4, 5, 6, 7, 8}
    assert m.swept() == 8


def test_a_newer_write_during_the_sweep_wins(
    index_table: IndexTable, member: Callable[..., Member]
) -> None:
    """Another member writes a change of product 4 after the snapshot point (version above
    S2) between the sweep's scan and its deletion: the deletion's condition fails, product 4
    keeps the newer change, the sweep counts it as already newer (not an error), and the rest
    of the sweep is written."""
    m = member()
    _first_generation(m)
    other = member()
    newer = _row(4, "Teapot 4", "glaze4 repainted", "14.00")
    fired: list[bool] = []

    def the_other_member_writes_first(params: dict[str, Any], **_: Any) -> None:
        product = params["TransactItems"][0]["Put"]["Item"]
        if product.get("deleted") and not fired:
            fired.append(True)
            other.send(4, _streamed("u", newer, 5_400, 5_300))
            other.run()

    m.client.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", the_other_member_writes_first
    )
    for pid in (1, 2, 3, 7):
        m.send(pid, _read(GEN2[pid], C2))
    m.send(9, _read(GEN2[9], C2, "last_in_data_collection"))
    m.run()

    assert fired
    products, postings, deleted = _state(index_table)
    assert products[4] == _expected({4: newer})[0][4]
    assert {t for t, pid in postings if pid == 4} == products[4][3]
    assert deleted == {5, 6, 8}
    assert m.swept() == 3
    assert m.sink.metrics.value("search_index_products_total", outcome="stale") >= 1
    assert not m.harness.dead_letters


def test_only_live_products_are_swept_numeric_versions_included(
    index_table: IndexTable, member: Callable[..., Member]
) -> None:
    """An item of the release that versioned by Kafka offset (``N``: below every source
    version) is swept with its postings; a deletion marker of an earlier generation and a stub
    holding only pending entries (no product yet) are left as they are; postings are not
    product items."""
    table = index_table
    legacy = Product(11, "Candle", "white wax", Decimal("3.00"), 1, None)
    name_tokens, desc_tokens = document_tokens(legacy.name, "white wax")
    item = product_item(legacy, "white wax", name_tokens, desc_tokens, "", partition=0, offset=0)
    item["version"] = {"N": str(10**15 + 41)}
    table.client.put_item(TableName=table.name, Item=item)
    for token in {*name_tokens, *desc_tokens}:
        posting = posting_item(token, 11, "")
        posting["version"] = {"N": str(10**15 + 41)}
        table.client.put_item(TableName=table.name, Item=posting)
    old_marker = "q" + str(C1).zfill(20) + "2" + str(900).zfill(20) + str(1_100).zfill(20)
    m = member()
    m.send(12, _streamed("c", _row(12, "Chair", "oak"), 1_100, 900))
    m.send(12, _streamed("d", _row(12, "Chair", "oak"), 1_200, 1_100))
    m.run()
    stub = {
        "pk": {"S": "PRODUCT#13"},
        "sk": {"S": "PRODUCT"},
        "pending_tokens": {"SS": [f"stool@{old_marker}"]},
        "pending_rev": {"N": "1"},
    }
    table.client.put_item(TableName=table.name, Item=stub)
    before = {
        i["pk"]["S"]: i for i in table.scan_all() if i["pk"]["S"] in ("PRODUCT#12", "PRODUCT#13")
    }

    m.send(9, _read(GEN2[9], C2, "last"))
    m.run()

    products, postings, deleted = _state(table)
    assert set(products) == {9} and deleted == {11, 12}
    assert {pid for _, pid in postings} == {9}
    assert _version(table, 11) == S2
    after = {
        i["pk"]["S"]: i for i in table.scan_all() if i["pk"]["S"] in ("PRODUCT#12", "PRODUCT#13")
    }
    assert after == before
    assert m.swept() == 1


def _resnapshot(m: Member) -> None:
    """The re-snapshot at ``C2`` (reads of 1, 2, 3, 7 and 9; 9's the last): the sweep at S2."""
    for pid in (1, 2, 3, 7):
        m.send(pid, _read(GEN2[pid], C2))
    m.send(9, _read(GEN2[9], C2, "last"))
    m.run()


def test_a_change_below_the_floor_does_not_bring_back_a_product_over_its_deletion_marker(
    index_table: IndexTable, member: Callable[..., Member]
) -> None:
    """Product 6 was deleted (streamed) before the re-snapshot, which did not read it: its
    deletion marker is older than S2 and not live, so the sweep leaves it. An update of 6 that
    was made between that delete and the re-snapshot, delivered late by a lagging partition,
    is newer than the marker, so a version guard alone would write it and bring 6 back; it is
    below the floor, over no live product, and skipped."""
    m = member()
    _first_generation(m)
    m.send(6, _streamed("d", GEN1[6], 1_500, 1_450))
    m.run()
    _resnapshot(m)
    products, _, deleted = _state(index_table)
    assert 6 in deleted and 6 not in products
    other = member()
    other.send(6, _streamed("u", _row(6, "Teapot 6", "revived"), 1_600, 1_550), partition=1)
    other.run()
    products, postings, deleted = _state(index_table)
    assert 6 in deleted and 6 not in products
    assert 6 not in {pid for _, pid in postings}
    below = other.sink.metrics.value("search_index_products_total", outcome="below_sweep")
    assert below == 1


class _CountingTable(IndexTable):
    """The index table, counting the reads of its sweep floor."""

    floor_reads = 0

    def read_sweep_floor(self) -> str | None:
        self.floor_reads += 1
        return super().read_sweep_floor()


def test_only_a_batch_that_writes_over_no_live_product_reads_the_floor(
    index_table: IndexTable, aws_emulator: AwsEmulator, member: Callable[..., Member]
) -> None:
    """The floor is read (one consistent ``GetItem``) only by a batch holding a change over no
    live product, once per batch: a batch of price changes of live products, the commonest,
    reads none, and still lands."""
    m = member()
    _first_generation(m)
    _resnapshot(m)
    client = make_dynamodb_client("us-east-1", aws_emulator.endpoint_url)
    table = _CountingTable(client, index_table.name)
    harness = SinkHarness(SearchIndexSink(table), make_decoder())
    try:
        for k, pid in enumerate((1, 2, 3, 7, 9)):
            row = {**GEN2[pid], "price": Decimal("77.00")}
            harness.produce(TOPIC, [_streamed("u", row, 6_000 + k, 5_900)], key=_key(pid))
        harness.run_until_idle()
        assert table.floor_reads == 0
        assert {p.price for p in table.read_products([1, 2, 3, 7, 9]).values()} == {Decimal(77)}
        # A create and a create below the floor, in one batch: one read, one skipped.
        harness.produce(TOPIC, [LAMP_CREATED], key=_key(10))
        old = _streamed("c", _row(12, "Old Pan", "iron"), 1_600, 1_550)
        harness.produce(TOPIC, [old], key=_key(12))
        harness.run_until_idle()
        assert table.floor_reads == 1
        products, _, _ = _state(index_table)
        assert 10 in products and 12 not in products
    finally:
        harness.shutdown()
