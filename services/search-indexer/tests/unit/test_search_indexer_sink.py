from __future__ import annotations

import itertools
import threading
from decimal import Decimal
from typing import Any

import orjson
import pytest
from cdc_events import Parser, source_version
from cdc_events.testing import make_change, make_tombstone
from consumer_runtime import CommitStrategy, RetryableError, TopicPartition
from consumer_runtime.testing import SinkHarness
from search_indexer import IndexTable, SearchIndexSink, decode
from search_indexer._items import parse_product, posting_item, product_item
from search_indexer.domain import Folded, Product
from sink_kit.aws import put_if_newer

TOPIC = "dbserver1.public.products"
TP = TopicPartition(TOPIC, 0)
# Each change built here is a newer one in the source: its own transaction, at a higher LSN.
_LSNS = itertools.count(30_000_000, 1000)


def v(n: int) -> str:
    """A PostgreSQL source version (``cdc_events.source_version``'s layout) ordered by ``n``."""
    text = str(n).zfill(20)
    return "q" + text + "2" + text + text


def _version(value: bytes | None) -> str:
    assert value is not None
    event = Parser().parse_record(TOPIC, 0, 0, b"{}", value)
    return source_version(event)  # type: ignore[arg-type]


def _row(
    pid: int, name: str, description: str, price: str = "10.00", stock: int = 5
) -> dict[str, Any]:
    return {
        "id": pid,
        "name": name,
        "description": description,
        "price": Decimal(price),
        "stock": stock,
    }


def _toast(pid: int, name: str, price: str = "10.00", stock: int = 5) -> bytes:
    """An update whose description Debezium did not see (TOAST placeholder)."""
    lsn = next(_LSNS)
    after = _row(pid, name, "PLACEHOLDER", price, stock)
    record = make_change("u", after=after, lsn=lsn, sequence=(lsn - 1, lsn), with_schema=True)
    assert record.value is not None
    return record.value.replace(b'"PLACEHOLDER"', b'"__debezium_unavailable_value"')


def _value(op: str, row: dict[str, Any]) -> bytes:
    lsn = next(_LSNS)
    record = make_change(
        op,
        after=row if op != "d" else None,
        before=row if op == "d" else None,
        lsn=lsn,
        sequence=(lsn - 1, lsn),
        with_schema=True,
    )
    assert record.value is not None
    return record.value


def _key(pid: int) -> bytes:
    return orjson.dumps({"id": pid})


def _tombstone(pid: int) -> bytes | None:
    return make_tombstone({"id": pid}).value


class Index:
    """The harness, the sink and the fake table, with readable accessors."""

    def __init__(self, fake: Any, **sink_args: Any) -> None:
        self.fake = fake
        self.sink = SearchIndexSink(IndexTable(fake, "idx"), clock=lambda: 1_000_000.0, **sink_args)
        self.harness = SinkHarness(self.sink, decode, strategy=CommitStrategy.COMMIT_AFTER_FLUSH)

    def send(self, pid: int, value: bytes | None) -> None:
        self.harness.produce(TOPIC, [value], key=_key(pid))

    def run(self) -> None:
        self.harness.run_until_idle()

    def product(self, pid: int) -> Any:
        item = self.fake.products().get(pid)
        return None if item is None else parse_product(item)

    def postings(self) -> dict[str, set[int]]:
        return self.fake.postings()

    def counter(self, name: str, **labels: str) -> float:
        return self.sink.metrics.value(name, **labels)


def test_create_update_delete_keep_items_and_postings_exact(fake_dynamodb: Any) -> None:
    index = Index(fake_dynamodb)
    create = _value("c", _row(1, "Espresso Cup", "Small ceramic cup", "12.50"))
    index.send(1, create)
    index.send(2, _value("c", _row(2, "Teapot", "Blue ceramic teapot")))
    index.run()
    assert index.postings() == {
        "espresso": {1},
        "cup": {1},
        "small": {1},
        "ceramic": {1, 2},
        "teapot": {2},
        "blue": {2},
    }
    stored = index.product(1)
    assert (stored.name, stored.price, stored.in_stock, stored.version) == (
        "Espresso Cup",
        Decimal("12.50"),
        True,
        _version(create),
    )
    item = fake_dynamodb.products()[1]
    assert item["version"] == {"S": _version(create)}  # compared as text in the conditions
    assert item["price"] == {"N": "12.50"} and item["price_bucket"] == {"S": "P2-1"}
    assert item["gsi_name_pk"] == {"S": "NAME#e"} and item["name_norm"] == {"S": "espresso cup"}

    update = _value("u", _row(1, "Espresso Mug", "Small ceramic mug", "9.00", stock=0))
    delete = _value("d", _row(2, "Teapot", ""))
    index.send(1, update)
    index.send(2, delete)
    index.send(2, _tombstone(2))  # no source position: consumed, not applied (the delete is)
    index.run()
    assert index.postings() == {"espresso": {1}, "mug": {1}, "small": {1}, "ceramic": {1}}
    assert index.product(1).in_stock is False and index.product(1).version == _version(update)
    marker = fake_dynamodb.products()[2]
    assert marker["deleted"] == {"BOOL": True} and marker["version"] == {"S": _version(delete)}
    assert marker["ttl"] == {"N": str(1_000_000 + 7 * 24 * 3600)}
    assert "gsi_name_pk" not in marker and "price_bucket" not in marker
    assert index.harness.committed == {TP: 5}


def test_changes_are_folded_per_product_within_a_batch(fake_dynamodb: Any) -> None:
    index = Index(fake_dynamodb)
    sizes: list[int] = []
    fake_dynamodb.hooks.append(
        lambda op, request: (
            sizes.append(len(request["TransactItems"])) if op == "transact_write_items" else None
        )
    )
    for stock in range(10):
        index.send(1, _value("u", _row(1, "Teapot", "Blue teapot", stock=stock)))
    index.run()
    # An update is first tried as a token-preserving write (one item, unread); the product is
    # not there, so it is written once more with its postings: one product item, two postings.
    assert sizes == [1, 1 + 2]
    assert index.product(1).stock == 9


def test_a_replay_changes_nothing_and_is_counted(fake_dynamodb: Any) -> None:
    index = Index(fake_dynamodb)
    values = [
        _value("c", _row(1, "Teapot", "Blue teapot")),
        _value("u", _row(1, "Teapot", "Green teapot")),
    ]
    for v in values:
        index.send(1, v)
    index.run()
    before = dict(fake_dynamodb.items)
    replay = Index(fake_dynamodb)
    for v in values:
        replay.send(1, v)
        replay.run()  # one batch per record: the first is stale, the second a duplicate
    assert fake_dynamodb.items == before
    assert replay.counter("search_index_products_total", outcome="stale") == 1
    assert replay.counter("search_index_products_total", outcome="duplicate") == 1


def test_a_late_older_update_never_resurrects_a_deleted_product(fake_dynamodb: Any) -> None:
    index = Index(fake_dynamodb)
    create = _value("c", _row(7, "Candle", "Green candle"))
    index.send(7, create)
    index.send(7, _value("d", _row(7, "Candle", "")))
    index.run()
    assert index.postings() == {}
    zombie = Index(fake_dynamodb)
    zombie.send(7, create)  # its version is below the delete's
    zombie.run()
    assert index.product(7).deleted and index.postings() == {}
    # A tombstone alone changes nothing (it has no version); a re-create (newer) brings it back.
    index.send(7, _tombstone(7))
    index.run()
    assert index.product(7).deleted
    index.send(7, _value("c", _row(7, "Candle", "Red candle")))
    index.run()
    assert not index.product(7).deleted
    assert index.postings() == {"candle": {7}, "red": {7}}


def test_toast_unchanged_description_keeps_description_and_postings(fake_dynamodb: Any) -> None:
    index = Index(fake_dynamodb)
    long_text = "Handmade stoneware teapot. " * 100
    index.send(2, _value("c", _row(2, "Teapot", long_text)))
    index.run()
    index.send(2, _toast(2, "Teapot", price="13.99"))
    index.run()
    stored = index.product(2)
    assert stored.description == long_text and stored.price == Decimal("13.99")
    assert index.postings() == {"handmade": {2}, "stoneware": {2}, "teapot": {2}}


def test_throttling_is_retried_and_nothing_is_lost(fake_dynamodb: Any, throttling: Any) -> None:
    index = Index(fake_dynamodb)
    fake_dynamodb.fail_next = [throttling() for _ in range(3)]
    index.send(1, _value("c", _row(1, "Teapot", "Blue teapot")))
    index.run()
    assert index.harness.metric("cdc_retries_total", service="test-service") >= 1
    assert index.postings() == {"teapot": {1}, "blue": {1}}
    assert index.harness.committed == {TP: 1}


def _folded(pid: int, n: int, name: str, description: str) -> Folded:
    """A folded change at version ``v(n)``, read at offset ``n``."""
    return Folded(pid, Product(pid, name, description, Decimal("1.00"), 1, None), v(n), 0, n)


def test_a_newer_writer_settles_the_postings_of_an_older_writer_that_loses(
    fake_dynamodb: Any,
) -> None:
    """Two writers read the same base; the older one records and writes its postings, then the
    newer one (a price-only change that read the item before that record) must not put over
    it blindly: its put fails, it re-reads, and it states the older one's postings again so
    they match its own tokens. The older one then finds a newer version and stops."""
    table = IndexTable(fake_dynamodb, "idx")
    older = SearchIndexSink(table)
    newer = SearchIndexSink(table)
    older._apply(_folded(1, 3, "Teapot", "blue"), None)
    assert fake_dynamodb.postings() == {"teapot": {1}, "blue": {1}}
    base = table.read_product(1)

    fired = threading.Event()

    def newer_wins_just_before_the_older_product_put(op: str, request: dict[str, Any]) -> None:
        if op == "put_item" and request["Item"]["pk"]["S"] == "PRODUCT#1" and not fired.is_set():
            fired.set()
            assert (
                newer._apply(_folded(1, 5, "Teapot", "blue"), base) == "written"
            )  # price-only change

    fake_dynamodb.hooks.append(newer_wins_just_before_the_older_product_put)
    # The older change (version 4) turned "blue" into "green": it wrote those postings first.
    assert older._apply(_folded(1, 4, "Teapot", "green"), base) == "stale"
    assert fake_dynamodb.postings() == {"teapot": {1}, "blue": {1}}
    assert parse_product(fake_dynamodb.products()[1]).version == v(5)
    assert "pending_tokens" not in fake_dynamodb.products()[1]
    assert newer.metrics.value("search_index_posting_repairs_total") == 2  # blue, green
    assert newer.metrics.value("search_index_conflicts_total") == 1
    older.close()
    newer.close()


def test_a_newer_writer_losing_a_race_retries_against_the_new_base(fake_dynamodb: Any) -> None:
    table = IndexTable(fake_dynamodb, "idx")
    sink = SearchIndexSink(table)
    other = SearchIndexSink(table)
    sink._apply(_folded(1, 3, "Teapot", "blue"), None)
    base = table.read_product(1)
    fired = threading.Event()

    def older_wins_first(op: str, request: dict[str, Any]) -> None:
        if op == "put_item" and request["Item"]["pk"]["S"] == "PRODUCT#1" and not fired.is_set():
            fired.set()
            other._apply(_folded(1, 4, "Teapot", "red"), base)

    fake_dynamodb.hooks.append(older_wins_first)
    assert sink._apply(_folded(1, 5, "Teapot", "green"), base) == "written"
    assert fake_dynamodb.postings() == {"teapot": {1}, "green": {1}}
    assert sink.metrics.value("search_index_conflicts_total") == 1
    sink.close()
    other.close()


def test_a_late_stale_posting_write_cannot_resurrect_a_removed_posting(fake_dynamodb: Any) -> None:
    """A request applied after its client gave up (or a zombie's) carries an old version: the
    removal left a versioned marker, so the old put fails instead of re-adding the posting."""
    table = IndexTable(fake_dynamodb, "idx")
    sink = SearchIndexSink(table)
    sink._apply(_folded(1, 3, "Teapot", "blue"), None)
    sink._apply(_folded(1, 5, "Teapot", "green"), table.read_product(1))
    assert fake_dynamodb.postings() == {"teapot": {1}, "green": {1}}
    assert table.put_posting("blue", 1, v(3)) is False  # the late copy of the first write
    assert fake_dynamodb.postings() == {"teapot": {1}, "green": {1}}
    sink.close()


def test_a_redelivery_folded_differently_cleans_up_an_interrupted_attempt(
    fake_dynamodb: Any, throttling: Any
) -> None:
    """Attempt 1 writes the postings of change A (D0 -> D1) and dies before its product put.
    After a restart the batch folds A and B together (D0 -> D2): the postings A wrote for D1
    must not survive, and the ones it removed must come back if D2 has them."""
    table = IndexTable(fake_dynamodb, "idx")
    sink = SearchIndexSink(table)
    sink._apply(_folded(1, 3, "Teapot", "blue ceramic"), None)
    base = table.read_product(1)

    def die_at_product_put(op: str, request: dict[str, Any]) -> None:
        if op == "put_item" and request["Item"]["pk"]["S"] == "PRODUCT#1":
            raise throttling()

    fake_dynamodb.hooks.append(die_at_product_put)
    with pytest.raises(RetryableError):
        sink._apply(_folded(1, 5, "Teapot", "green glass"), base)
    fake_dynamodb.hooks.clear()
    assert fake_dynamodb.postings() == {"teapot": {1}, "green": {1}, "glass": {1}}  # half done
    assert sink._apply(_folded(1, 7, "Teapot", "blue steel"), table.read_product(1)) == "written"
    assert fake_dynamodb.postings() == {"teapot": {1}, "blue": {1}, "steel": {1}}
    assert "pending_tokens" not in fake_dynamodb.products()[1]
    sink.close()


def test_a_redelivery_folded_to_an_older_change_carries_the_newer_pending_postings(
    fake_dynamodb: Any, throttling: Any
) -> None:
    """Attempt 1 folded up to version 9 (green live, blue removed) and died before its product
    put; the redelivery ends at version 5, whose statements of green and blue lose to version
    9. Its product item keeps those entries, so the next change (version 11) settles them."""
    table = IndexTable(fake_dynamodb, "idx")
    sink = SearchIndexSink(table)
    sink._apply(_folded(1, 3, "Teapot", "blue"), None)

    def die_at_product_put(op: str, request: dict[str, Any]) -> None:
        if op == "put_item" and request["Item"]["pk"]["S"] == "PRODUCT#1":
            raise throttling()

    fake_dynamodb.hooks.append(die_at_product_put)
    with pytest.raises(RetryableError):
        sink._apply(_folded(1, 9, "Teapot", "green"), table.read_product(1))
    fake_dynamodb.hooks.clear()

    assert sink._apply(_folded(1, 5, "Teapot", "blue red"), table.read_product(1)) == "written"
    entries = [f"blue@{v(9)}", f"green@{v(9)}"]
    assert fake_dynamodb.products()[1]["pending_tokens"] == {"SS": entries}
    assert fake_dynamodb.postings() == {"teapot": {1}, "green": {1}, "red": {1}}  # for now
    assert sink._apply(_folded(1, 11, "Teapot", "blue yellow"), table.read_product(1)) == "written"
    assert fake_dynamodb.postings() == {"teapot": {1}, "blue": {1}, "yellow": {1}}
    assert "pending_tokens" not in fake_dynamodb.products()[1]
    sink.close()


def test_an_item_of_the_previous_release_is_replaced_once_and_its_late_writes_lose(
    fake_dynamodb: Any,
) -> None:
    """Items of the release that versioned by Kafka offset hold ``version`` as an N. The first
    change after the upgrade replaces the product item and states every one of its postings
    again (an S never compares with an N: ``attribute_type`` lets it through); afterwards a
    late write of the old release (``#v < :v`` or ``#v = :b`` with an N) is refused."""
    legacy = 10**15 + 41
    product = Product(1, "Teapot", "blue", Decimal("10.00"), 5, None)
    item = product_item(product, "blue", ["teapot"], ["blue"], "", partition=0, offset=41)
    item["version"] = {"N": str(legacy)}
    item["pending_tokens"] = {"SS": [f"red@{legacy + 1}"]}  # a newer attempt died after it
    old = [item] + [posting_item(t, 1, "") for t in ("teapot", "blue", "red")]
    for seeded in old:
        seeded["version"] = item["version"]
        fake_dynamodb.items[seeded["pk"]["S"], seeded["sk"]["S"]] = seeded

    index = Index(fake_dynamodb)
    update = _value("u", _row(1, "Teapot", "green", "11.00"))
    index.send(1, update)
    index.run()
    assert index.postings() == {"teapot": {1}, "green": {1}}
    assert index.product(1).price == Decimal("11.00")
    assert "pending_tokens" not in fake_dynamodb.products()[1]
    assert all(i["version"] == {"S": _version(update)} for i in fake_dynamodb.items.values())

    late = {**posting_item("blue", 1, ""), "version": {"N": str(legacy + 100)}}
    assert put_if_newer(fake_dynamodb, "idx", late) is False  # the old release's posting put
    table = IndexTable(fake_dynamodb, "idx")
    assert table.put_product(item, {"N": str(legacy)}, 0) is False  # its product put
    assert index.postings() == {"teapot": {1}, "green": {1}}
    assert index.product(1).version == _version(update)
