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
    version_of,
)
from search_indexer.domain import VERSION_STRIDE, plan_postings, posting_diff, rank_key

TOPIC = "dbserver1.public.products"


def _message(record, offset: int | None = None) -> InMemoryMessage:  # type: ignore[no-untyped-def]
    return InMemoryMessage(
        record.topic,
        record.partition,
        record.offset if offset is None else offset,
        record.key,
        record.value,
    )


@pytest.mark.parametrize("variant", ["pg-schema", "pg-noschema", "pg-connect"])
def test_decodes_the_real_connector_records(variant: str) -> None:
    read = decode(_message(golden(f"{variant}-products-r")))
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
        TOPIC,
        0,
        0,
        read.source_ts_ms if read else None,
    )
    update = decode(_message(golden(f"{variant}-products-u")))
    assert update is not None and isinstance(update.state, Product)
    assert update.state.description is None  # TOAST: the description was not sent
    assert update.state.price == Decimal("13.99")
    for name in ("d", "tombstone"):
        change = decode(_message(golden(f"{variant}-products-{name}")))
        assert change is not None and change.state == Deletion(1)


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


def _change(pid: int, offset: int, description: str | None = "d", name: str = "n") -> ProductChange:
    return ProductChange(
        pid, Product(pid, name, description, Decimal("1.00"), 1, None), TOPIC, 0, offset
    )


def test_fold_keeps_the_last_change_per_product_with_its_version() -> None:
    folded = {
        f.product_id: f
        for f in fold([_change(1, 5, name="a"), _change(2, 6), _change(1, 9, name="b")], epoch=2)
    }
    assert folded[1].version == 2 * VERSION_STRIDE + 9 == version_of(9, 2)
    assert isinstance(folded[1].state, Product) and folded[1].state.name == "b"
    assert folded[1].offset == 9


def test_fold_fills_a_toast_description_from_an_earlier_change_of_the_batch() -> None:
    (f,) = fold([_change(1, 1, "fresh text"), _change(1, 2, None)])
    assert isinstance(f.state, Product) and f.state.description == "fresh text"
    deleted_between = [
        _change(1, 1, "old"),
        ProductChange(1, Deletion(1), TOPIC, 0, 2),
        _change(1, 3, None),
    ]
    (g,) = fold(deleted_between)
    assert isinstance(g.state, Product) and g.state.description is None


def test_fold_orders_by_offset_not_by_arrival() -> None:
    (f,) = fold([ProductChange(1, Deletion(1), TOPIC, 0, 7), _change(1, 3)])
    assert f.state == Deletion(1) and f.offset == 7


def test_posting_diff_touches_only_changed_tokens() -> None:
    add, remove = posting_diff(frozenset({"a", "b", "c"}), frozenset({"b", "c", "d"}))
    assert (add, remove) == ({"d"}, {"a"})


def test_plan_without_pending_is_the_diff_recorded_at_its_version() -> None:
    plan = plan_postings(frozenset({"teapot", "blue"}), {}, frozenset({"teapot", "green"}), 9)
    assert (plan.put, plan.remove) == ({"green"}, {"blue"})
    assert plan.record == {"green", "blue"}
    assert (dict(plan.carry), plan.settled) == ({}, set())


def test_plan_settles_pending_entries_of_its_version_or_older() -> None:
    """An unfinished attempt may have left these postings in any state: state them again,
    live if the target has the token, removed otherwise, and record them at this version."""
    pending = {"green": 5, "blue": 7, "teapot": 7}
    plan = plan_postings(frozenset({"teapot", "blue"}), pending, frozenset({"teapot", "blue"}), 7)
    assert (plan.put, plan.remove) == ({"teapot", "blue"}, {"green"})
    assert plan.record == {"green"}  # blue and teapot are covered by entries of version 7
    assert plan.settled == {"teapot", "blue", "green"}
    assert dict(plan.carry) == {}


def test_plan_carries_pending_entries_of_newer_versions() -> None:
    """A newer attempt's posting beats this write's version: only a write of that version or
    a newer one can vouch for it, so the entry stays (the old protocol dropped it)."""
    pending = {"green": 9, "blue": 3}
    plan = plan_postings(frozenset({"teapot", "blue"}), pending, frozenset({"teapot", "red"}), 5)
    assert (plan.put, plan.remove) == ({"red"}, {"blue"})
    assert plan.record == {"red", "blue"}
    assert dict(plan.carry) == {"green": 9}
    # A diff token already covered by a newer entry needs no new record.
    plan = plan_postings(frozenset({"teapot"}), {"red": 9}, frozenset({"teapot", "red"}), 5)
    assert (plan.put, plan.record, dict(plan.carry)) == ({"red"}, set(), {"red": 9})


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
