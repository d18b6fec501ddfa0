from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cdc_events import ParseError
from cdc_events.testing import golden, make_change, make_heartbeat
from consumer_runtime import InMemoryMessage, PermanentError
from search_indexer import (
    Deletion,
    Product,
    ProductChange,
    decode,
    fold,
    price_bucket,
    price_buckets_between,
)
from search_indexer._items import (
    parse_product,
    pending_entries,
    posting_item,
    product_item,
    with_pending,
)
from search_indexer._versions import LEGACY_VERSION, below_sweep
from search_indexer.domain import plan_postings, posting_diff, rank_key

TOPIC = "dbserver1.public.products"


def _message(record, offset: int | None = None) -> InMemoryMessage:  # type: ignore[no-untyped-def]
    return InMemoryMessage(
        record.topic,
        record.partition,
        record.offset if offset is None else offset,
        record.key,
        record.value,
    )


def v(n: int) -> str:
    """A PostgreSQL source version (``cdc_events.source_version``'s layout) ordered by ``n``."""
    text = str(n).zfill(20)
    return "q" + text + "2" + text + text


@pytest.mark.parametrize("variant", ["pg-schema", "pg-noschema", "pg-connect"])
def test_decodes_the_real_connector_records(variant: str) -> None:
    record = golden(f"{variant}-products-r")
    read = decode(_message(record))
    assert read is not None and read.version.startswith("q")  # PostgreSQL, with generations
    point = read.version[1:21]  # a snapshot read: its generation is the snapshot's point ...
    assert read.version[21] == "1"  # ... and its class a read's
    # The golden read is the snapshot's last: it carries the snapshot's sweep version, below
    # the read itself.
    assert read.sweep == "q" + point + "0" + "0" * 40 and read.sweep < read.version
    assert read == ProductChange(
        1,
        Product(
            1,
            "Espresso Cup",
            "Small ceramic cup",
            Decimal("12.50"),
            10,
            datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        ),
        read.version,
        TOPIC,
        0,
        0,
        read.source_ts_ms,
        created=True,  # a snapshot read: written as a new product, unread
        sweep=read.sweep,
    )
    update = decode(_message(golden(f"{variant}-products-u")))
    assert update is not None and isinstance(update.state, Product)
    assert update.state.description is None  # TOAST: the description was not sent
    assert not update.created
    assert update.state.price == Decimal("13.99")
    delete = decode(_message(golden(f"{variant}-products-d")))
    assert delete is not None and delete.state == Deletion(1)
    assert read.version < update.version < delete.version  # the capture's order
    assert update.sweep is None and delete.sweep is None  # only a snapshot's last read
    # A tombstone has no source position to order it by: consumed, not applied.
    assert decode(_message(golden(f"{variant}-products-tombstone"))) is None


def test_below_sweep_takes_older_versions_of_comparable_forms_only() -> None:
    """A sweep ``S`` deletes a product stored below it in its own form or in the same
    connector's form before generations, or at a numeric version (``LEGACY_VERSION``); never
    one of this snapshot (its reads, the changes after it), nor of another form."""
    point = 5_000
    sweep = "q" + str(point).zfill(20) + "0" + "0" * 40
    read = decode(_message(make_change("r", after=_ROW, lsn=point, snapshot="last")))
    assert read is not None and read.sweep == sweep
    earlier = str(1_000).zfill(20)
    earlier_read = "q" + earlier + "1" + earlier + earlier  # a read of an earlier snapshot
    assert below_sweep(v(4_999), sweep) and below_sweep(earlier_read, sweep)
    assert below_sweep(v(point - 1), sweep)
    assert below_sweep("p1" + "9" * 40, sweep)  # the form before generations
    assert below_sweep(LEGACY_VERSION, sweep)  # an item of the release before source versions
    assert not below_sweep(read.version, sweep)  # the snapshot's own read
    assert not below_sweep(v(point), sweep) and not below_sweep(v(9_000), sweep)
    assert not below_sweep(sweep, sweep)  # deleted by this sweep already
    mysql = "n" + "0" * 20 + "0" * 20 + "2" + "0" * 20  # another connector: never compared
    assert not below_sweep(mysql, sweep) and not below_sweep("t" + "0" * 60, sweep)
    mysql_sweep = "n" + "3".zfill(20) + "900".zfill(20) + "0" + "0" * 20
    assert below_sweep("m1" + "0" * 60, mysql_sweep) and below_sweep(mysql, mysql_sweep)
    assert not below_sweep(v(1), mysql_sweep)


_ROW = {"id": 1, "name": "Teapot", "description": "blue", "price": Decimal("1.00"), "stock": 1}


def test_the_version_is_the_source_version_wherever_the_record_is_read() -> None:
    """A redelivery, a dead-letter replay (new offset) and a re-created topic (offset 0 again)
    give a change the version it had."""
    record = golden("pg-schema-products-u")
    versions = {decode(_message(record, offset)).version for offset in (5, 900, 0)}  # type: ignore[union-attr]
    assert len(versions) == 1


def test_side_records_are_skipped_and_garbage_dead_lettered() -> None:
    assert decode(_message(make_heartbeat())) is None
    assert decode(_message(golden("pg-schema-transaction-begin"))) is None
    with pytest.raises(ParseError):
        decode(InMemoryMessage(TOPIC, 0, 0, b'{"id": 1}', b"not json"))
    with pytest.raises(PermanentError) as info:
        decode(_message(make_change("c", after={"id": 3, "name": "x"})))
    assert info.value.code == "missing_field"


def test_truncate_is_dead_lettered_for_an_operator() -> None:
    with pytest.raises(PermanentError) as info:
        decode(_message(golden("pg-schema-scratch-t")))
    assert info.value.code == "unsupported_truncate"


def _change(
    pid: int, n: int, description: str | None = "d", name: str = "n", offset: int | None = None
) -> ProductChange:
    """A change at version ``v(n)``, read at offset ``n`` unless ``offset`` says otherwise."""
    product = Product(pid, name, description, Decimal("1.00"), 1, None)
    return ProductChange(pid, product, v(n), TOPIC, 0, n if offset is None else offset)


def test_fold_keeps_the_last_change_per_product_with_its_version() -> None:
    folded = {
        f.product_id: f
        for f in fold([_change(1, 5, name="a"), _change(2, 6), _change(1, 9, name="b")])
    }
    assert folded[1].version == v(9)
    assert isinstance(folded[1].state, Product) and folded[1].state.name == "b"
    assert folded[1].offset == 9


def test_fold_keeps_the_highest_version_not_the_highest_offset() -> None:
    """A dead letter replayed (the original bytes at a new offset) after a newer change."""
    replayed = _change(1, 5, name="old", offset=12)
    (f,) = fold([_change(1, 5, name="old"), _change(1, 9, name="new", offset=10), replayed])
    assert isinstance(f.state, Product) and f.state.name == "new"
    assert (f.version, f.offset) == (v(9), 10)


def test_fold_fills_a_toast_description_from_an_earlier_change_of_the_batch() -> None:
    (f,) = fold([_change(1, 1, "fresh text"), _change(1, 2, None)])
    assert isinstance(f.state, Product) and f.state.description == "fresh text"
    deleted_between = [
        _change(1, 1, "old"),
        ProductChange(1, Deletion(1), v(2), TOPIC, 0, 2),
        _change(1, 3, None),
    ]
    (g,) = fold(deleted_between)
    assert isinstance(g.state, Product) and g.state.description is None


def test_fold_orders_by_version_not_by_arrival() -> None:
    (f,) = fold([ProductChange(1, Deletion(1), v(7), TOPIC, 0, 7), _change(1, 3)])
    assert f.state == Deletion(1) and f.offset == 7
    # A TOAST change takes the description of the change before it in the source's order.
    (g,) = fold([_change(1, 4, None, offset=20), _change(1, 2, "fresh", offset=21)])
    assert isinstance(g.state, Product) and g.state.description == "fresh"


def test_posting_diff_touches_only_changed_tokens() -> None:
    add, remove = posting_diff(frozenset({"a", "b", "c"}), frozenset({"b", "c", "d"}))
    assert (add, remove) == ({"d"}, {"a"})


def test_plan_without_pending_is_the_diff_recorded_at_its_version() -> None:
    plan = plan_postings(frozenset({"teapot", "blue"}), {}, frozenset({"teapot", "green"}), v(9))
    assert (plan.put, plan.remove) == ({"green"}, {"blue"})
    assert plan.record == {"green", "blue"}
    assert (dict(plan.carry), plan.settled) == ({}, set())


def test_plan_settles_pending_entries_of_its_version_or_older() -> None:
    """An unfinished attempt may have left these postings in any state: state them again,
    live if the target has the token, removed otherwise, and record them at this version."""
    pending = {"green": v(5), "blue": v(7), "teapot": v(7)}
    target = frozenset({"teapot", "blue"})
    plan = plan_postings(frozenset({"teapot", "blue"}), pending, target, v(7))
    assert (plan.put, plan.remove) == ({"teapot", "blue"}, {"green"})
    assert plan.record == {"green"}  # blue and teapot are covered by entries of version 7
    assert plan.settled == {"teapot", "blue", "green"}
    assert dict(plan.carry) == {}


def test_plan_carries_pending_entries_of_newer_versions() -> None:
    """A newer attempt's posting beats this write's version: only a write of that version or
    a newer one can vouch for it, so the entry stays (the old protocol dropped it)."""
    pending = {"green": v(9), "blue": v(3)}
    target = frozenset({"teapot", "red"})
    plan = plan_postings(frozenset({"teapot", "blue"}), pending, target, v(5))
    assert (plan.put, plan.remove) == ({"red"}, {"blue"})
    assert plan.record == {"red", "blue"}
    assert dict(plan.carry) == {"green": v(9)}
    # A diff token already covered by a newer entry needs no new record.
    plan = plan_postings(frozenset({"teapot"}), {"red": v(9)}, frozenset({"teapot", "red"}), v(5))
    assert (plan.put, plan.record, dict(plan.carry)) == ({"red"}, set(), {"red": v(9)})


def test_plan_settles_entries_of_the_previous_release() -> None:
    """An entry with a numeric version (Kafka offsets) or none is older than any source
    version: the next write states its posting again and records it at its own version."""
    pending = {"green": LEGACY_VERSION, "blue": LEGACY_VERSION}
    plan = plan_postings(frozenset({"blue"}), pending, frozenset({"blue"}), v(1))
    assert (plan.put, plan.remove, plan.record) == ({"blue"}, {"green"}, {"blue", "green"})
    assert dict(plan.carry) == {}


# -- versions in the items ------------------------------------------------------------------------


def test_versions_are_stored_as_text_and_pending_entries_parse_back() -> None:
    """Versions are S attributes; ``<token>@<version>`` splits at the last ``@`` (a hashed
    token holds ``~`` and hex, never ``@``)."""
    product = Product(1, "Teapot", "blue", Decimal("1.00"), 1, None)
    item = product_item(product, "blue", ["teapot"], ["blue"], v(7), partition=0, offset=3)
    assert item["version"] == {"S": v(7)} and posting_item("blue", 1, v(7))["version"] == {
        "S": v(7)
    }
    hashed = "a" * 223 + "~" + "0" * 32
    pending = {"green": v(9), hashed: v(8)}
    item = with_pending(item, pending)
    assert item["pending_tokens"]["SS"] == pending_entries(pending)
    stored = parse_product(item)
    assert (stored.version, dict(stored.pending), stored.legacy_version) == (v(7), pending, None)
    assert stored.version_value == {"S": v(7)}


def test_an_item_of_the_previous_release_reads_as_older_than_any_version() -> None:
    """Version N (a Kafka offset), entries ``<token>@<number>`` or ``<token>``: the version is
    ``LEGACY_VERSION`` (below every source version) and the guard matches the stored number."""
    product = Product(1, "Teapot", "blue", Decimal("1.00"), 1, None)
    item = product_item(product, "blue", ["teapot"], ["blue"], v(7), partition=0, offset=3)
    item["version"] = {"N": "1000000000000041"}
    item["pending_tokens"] = {"SS": ["green@1000000000000042", "red", f"blue@{v(2)}"]}
    stored = parse_product(item)
    assert stored.exists and not stored.deleted
    snapshot_read = decode(_message(golden("pg-schema-products-r")))
    assert snapshot_read is not None
    assert stored.version == LEGACY_VERSION < snapshot_read.version
    assert stored.legacy_version == 10**15 + 41
    assert stored.version_value == {"N": "1000000000000041"}
    assert dict(stored.pending) == {"green": LEGACY_VERSION, "red": LEGACY_VERSION, "blue": v(2)}
    stub = parse_product({"pk": {"S": "PRODUCT#1"}, "sk": {"S": "PRODUCT"}, "pending_tokens": {
        "SS": [f"blue@{v(2)}"]}})  # fmt: skip
    assert not stub.exists and stub.version_value is None


def test_price_buckets() -> None:
    assert price_bucket(Decimal("0.50")) == "P0-0"
    assert price_bucket(Decimal("5")) == "P1-5"
    assert price_bucket(Decimal("25.00")) == "P2-2"
    assert price_bucket(Decimal("199.99")) == "P3-1"
    assert price_bucket(Decimal("1234567890")) == "P9-0"
    assert price_buckets_between(Decimal(20), Decimal(50)) == ["P2-2", "P2-3", "P2-4", "P2-5"]
    assert price_buckets_between(Decimal("19.99"), Decimal(20)) == ["P2-1", "P2-2"]
    assert price_buckets_between(None, Decimal("0.99")) == ["P0-0"]
    every = price_buckets_between(None, None)
    assert len(every) == 1 + 8 * 9 + 1 and len(set(every)) == len(every)
    for cents in range(0, 100_000, 37):  # every price lands in a bucket its range query reads
        price = Decimal(cents) / 100
        assert price_bucket(price) in price_buckets_between(price, price)


def test_rank_prefers_name_matches_then_description_then_name() -> None:
    q = ["espresso", "cup"]
    in_name = rank_key(q, ["espresso", "cup"], [], "B")
    half = rank_key(q, ["espresso"], ["cup"], "A")
    in_desc = rank_key(q, [], ["espresso", "cup"], "A")
    assert sorted([in_desc, half, in_name]) == [in_name, half, in_desc]
    assert rank_key(q, ["cup"], [], "Alpha") < rank_key(q, ["cup"], [], "beta")


class _FloorTable:
    """What ``Floor`` asks of the table: the floor, counting the reads."""

    def __init__(self, floor: str | None) -> None:
        self.floor = floor
        self.reads = 0

    def read_sweep_floor(self) -> str | None:
        self.reads += 1
        return self.floor


def test_the_floor_is_read_once_when_first_asked_and_counts_what_it_skips() -> None:
    from search_indexer._metrics import IndexMetrics
    from search_indexer._sweep import Floor

    sweep = "q" + "5000".zfill(20) + "0" + "0" * 40
    table = _FloorTable(sweep)
    metrics = IndexMetrics()
    floor = Floor(table, metrics)  # type: ignore[arg-type]
    assert table.reads == 0  # nothing asked: nothing read
    assert floor.skips(v(4_000)) and not floor.skips(v(6_000)) and floor.skips(LEGACY_VERSION)
    assert table.reads == 1 and floor.skipped == 2
    assert metrics.value("search_index_products_total", outcome="below_sweep") == 2
    never = Floor(_FloorTable(None), IndexMetrics())  # type: ignore[arg-type]
    assert not never.skips(v(1)) and never.skipped == 0
