"""Builders for the flusher's unit tests: Debezium records of orders / order_items and an
in-memory object store."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from cdc_events.testing import make_change
from consumer_runtime import RetryableError

ORDERS = "dbserver1.public.orders"
ITEMS = "dbserver1.public.order_items"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CREATED = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)


def order(
    oid: int,
    status: str = "pending",
    *,
    op: str = "c",
    total: str = "10.00",
    customer: int = 1,
    ts: int = T0,
    created: datetime = CREATED,
    lsn: int | None = None,
    sequence: tuple[int | None, int | None] | str = "auto",
    snapshot: str = "false",
) -> bytes:
    """An ``orders`` change; ``lsn``, ``sequence`` and ``snapshot`` give its source position
    (``cdc_events.source_version``); by default the LSN is ``ts``, so versions follow time."""
    row = {
        "id": oid,
        "customer_id": customer,
        "status": status,
        "total": Decimal(total),
        "created_at": created,
    }
    if op == "d":
        rec = make_change(
            "d",
            table="orders",
            before={"id": oid},
            source_ts_ms=ts,
            with_schema=True,
            lsn=lsn or ts,
            sequence=sequence,
            snapshot=snapshot,
        )
    else:
        rec = make_change(
            op,
            table="orders",
            after=row,
            source_ts_ms=ts,
            with_schema=True,
            lsn=lsn or ts,
            sequence=sequence,
            snapshot=snapshot,
        )
    assert rec.value is not None
    return rec.value


def item(
    iid: int,
    oid: int,
    product: int,
    qty: int = 1,
    price: str = "5.00",
    *,
    ts: int = T0,
    op: str = "c",
    lsn: int | None = None,
    sequence: tuple[int | None, int | None] | str = "auto",
    snapshot: str = "false",
) -> bytes:
    """An ``order_items`` change (the same source position arguments as ``order``)."""
    row = {
        "id": iid,
        "order_id": oid,
        "product_id": product,
        "quantity": qty,
        "unit_price": Decimal(price),
    }
    rec = make_change(
        op,
        table="order_items",
        after=row,
        source_ts_ms=ts,
        with_schema=True,
        lsn=lsn or ts,
        sequence=sequence,
        snapshot=snapshot,
    )
    assert rec.value is not None
    return rec.value


class MemoryStore:
    """An object store in a dictionary; ``fail_next(n)`` fails the next ``n`` puts."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[tuple[str, bytes]] = []
        self._failures = 0

    def fail_next(self, n: int) -> None:
        self._failures = n

    def put(self, key: str, body: bytes, content_type: str) -> None:
        if self._failures > 0:
            self._failures -= 1
            raise RetryableError("S3 unavailable (simulated)")
        self.objects[key] = body
        self.puts.append((key, body))

    def healthy(self) -> bool:
        return self._failures == 0

    def dump(self, root: Path) -> Path:
        for key, body in self.objects.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        return root / "reports"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def cdc() -> SimpleNamespace:
    """The record builders and constants above, for the test modules."""
    return SimpleNamespace(
        order=order, item=item, ORDERS=ORDERS, ITEMS=ITEMS, T0=T0, CREATED=CREATED
    )


@pytest.fixture
def make_store() -> type[MemoryStore]:
    return MemoryStore
