"""The row counter's decoder, and the platform finding it by its descriptor."""

from __future__ import annotations

from cdc_events.testing import KafkaRecord, make_change, make_heartbeat, make_tombstone
from consumer_runtime import CommitStrategy, InMemoryMessage, services
from row_counter.domain import count, decode
from row_counter.service import SERVICE


def _message(r: KafkaRecord) -> InMemoryMessage:
    return InMemoryMessage(r.topic, r.partition, r.offset, r.key, r.value)


def test_row_changes_count_for_their_table_other_records_are_skipped() -> None:
    assert (
        decode(_message(make_change("c", table="orders", key={"id": 1}, after={"id": 1})))
        == "orders"
    )
    assert (
        decode(_message(make_change("d", table="products", key={"id": 1}, before={"id": 1})))
        == "products"
    )
    assert decode(_message(make_tombstone({"id": 1}, table="orders"))) is None
    assert decode(_message(make_heartbeat())) is None
    assert count(["orders", "products", "orders"]) == [("orders", 2), ("products", 1)]


def test_the_platform_finds_it_by_its_descriptor() -> None:
    from cdc_cli._catalogue import catalogue

    assert services()["row-counter"] is SERVICE
    assert catalogue()["row-counter"] is SERVICE
    assert SERVICE.strategy is CommitStrategy.SINK_MANAGED
    assert SERVICE.subscribes_to("dbserver1.public.customers")
