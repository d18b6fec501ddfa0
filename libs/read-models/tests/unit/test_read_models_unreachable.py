"""The readers' failures as the library's errors, without a store: the SQL readers against a
local port nothing listens on (the connection is refused at once), the inventory reader over a
client answering as DynamoDB does, and the checks made before any read."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from read_models import InvalidQueryError, UnavailableError
from read_models.events import EventStoreReader, Selection, dead_letter_filter, store_errors
from read_models.stats import InventoryReader, StatsReader
from sqlalchemy import exc as sa_exc

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://reader:s3cret-pw@127.0.0.1:{port}/store"


def test_every_event_store_read_of_an_unreachable_store_is_unavailable() -> None:
    reader = EventStoreReader(_closed_url(), statement_timeout_ms=1000)
    reads: list[Callable[[], Any]] = [
        reader.ping,
        lambda: reader.key_columns("public.orders"),
        lambda: reader.history("orders", {"id": 1}),
        lambda: reader.state("public.orders", {"id": 1}, NOW),
        lambda: reader.dead_letters(Selection(status="new"), 5),
        lambda: reader.dead_letter_counts(Selection()),
        lambda: reader.dead_letter(1),
    ]
    try:
        for read in reads:
            with pytest.raises(UnavailableError, match="cannot reach the event store") as info:
                read()
            assert "s3cret-pw" not in str(info.value)  # the URL is named without its password
            assert "reader:***@127.0.0.1" in str(info.value)
    finally:
        reader.close()


def test_an_event_store_url_that_is_not_one_is_unavailable() -> None:
    with pytest.raises(UnavailableError, match="not a database URL"):
        EventStoreReader("store on the third floor")


def test_a_missing_event_store_table_says_to_run_the_migrations() -> None:
    missing = sa_exc.ProgrammingError("SELECT", {}, Exception('relation "cdc_events" missing'))
    expected = pytest.raises(UnavailableError, match="has the writer run its migrations")
    with expected as info, store_errors("postgresql://h/db"):
        raise missing
    assert 'relation "cdc_events" missing' in str(info.value)


def test_a_dead_letter_selection_becomes_one_condition_per_criterion() -> None:
    assert dead_letter_filter(Selection()) == []
    selection = Selection(ids=(1, 2), status="new", topic="t", code="bad_json", since=NOW)
    where = [str(c) for c in dead_letter_filter(selection)]
    assert where == [
        "dead_letter_queue.id IN (__[POSTCOMPILE_id_1])",
        "dead_letter_queue.status = :status_1",
        "dead_letter_queue.topic = :topic_1",
        "dead_letter_queue.error_code = :error_code_1",
        "dead_letter_queue.created_at >= :created_at_1",
    ]
    compiled = sa.and_(*dead_letter_filter(selection)).compile(
        compile_kwargs={"literal_binds": True}
    )
    assert "'bad_json'" in str(compiled)


def test_statistics_of_an_unreachable_database_are_unavailable() -> None:
    reader = StatsReader(_closed_url(), statement_timeout_ms=1000)
    try:
        for read in (reader.ping, lambda: reader.get("customer", 1), reader.low_stock):
            with pytest.raises(UnavailableError, match="check DATABASE_URL"):
                read()
        # What cannot be asked is said before any connection is tried.
        with pytest.raises(InvalidQueryError, match="no statistics of kind 'shop'"):
            reader.get("shop", 1)
        with pytest.raises(InvalidQueryError, match="at least 1"):
            reader.low_stock(0)
    finally:
        reader.close()


class _Projection:
    """A DynamoDB client's ``get_item``/``describe_table`` over items, or failing with
    ``error``."""

    def __init__(self, items: dict[str, dict[str, Any]], error: Exception | None = None) -> None:
        self.items = items
        self.error = error
        self.asked: list[dict[str, Any]] = []

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.asked.append(kwargs)
        if self.error:
            raise self.error
        found = self.items.get(kwargs["Key"]["pk"]["S"])
        return {} if found is None else {"Item": found}

    def describe_table(self, **kwargs: Any) -> dict[str, Any]:
        if self.error:
            raise self.error
        return {"Table": {"TableName": kwargs["TableName"]}}


def test_availability_is_read_from_the_projections_item() -> None:
    items = {
        "3": {
            "pk": {"S": "3"},
            "product_id": {"N": "3"},
            "stock": {"N": "2"},
            "low_stock": {"BOOL": True},
            "version": {"S": "000123"},
        },
        "4": {"pk": {"S": "4"}, "product_id": {"N": "4"}, "deleted": {"BOOL": True}},
    }
    client = _Projection(items)
    reader = InventoryReader(client, "inventory-realtime")
    three = reader.availability(3)
    assert three is not None and three.to_dict() == {
        "product_id": 3,
        "stock": 2,
        "low_stock": True,
        "deleted": False,
        "available": True,
        "version": "000123",
    }
    four = reader.availability(4)
    assert four is not None and (four.stock, four.deleted, four.available) == (None, True, False)
    assert reader.availability(5) is None
    assert client.asked[0] == {"TableName": "inventory-realtime", "Key": {"pk": {"S": "3"}}}
    reader.ping()


def test_an_unreadable_projection_is_unavailable() -> None:
    error = ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "GetItem")
    reader = InventoryReader(_Projection({}, error), "inventory-realtime")
    with pytest.raises(UnavailableError, match="read inventory-realtime"):
        reader.availability(1)
    with pytest.raises(UnavailableError, match="describe inventory-realtime"):
        reader.ping()
