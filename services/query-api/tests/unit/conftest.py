"""The API in process (``create_app`` called through httpx's ``ASGITransport``) over in-memory
readers.

Only the storage readers are stand-ins: objects with the methods of ``StatsReader``,
``InventoryReader``, ``EventStoreReader``, ``ProductSearch`` and ``LakeReports`` answering
fixed data (the read library's own value types: ``SearchHit``, ``Availability``,
``StoredEvent``, ``DeadLetterRow``, ``ReportPage``). Each can be told to fail instead
(``fail``: raise that exception, or sleep that many seconds), so the app, its keys, routing,
validation, problems, ETags, cursors, metrics and ``Backends.call`` are the real code.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from query_api import Settings, create_app
from query_api.auth import KeyStore
from query_api.backends import Backends
from read_models import NotFoundError
from read_models.events import DeadLetterRow, Selection, StoredEvent
from read_models.lake import ReportPage
from read_models.search import SearchHit
from read_models.stats import Availability

READ_KEY = "read-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
#: A small budget, so a reader that sleeps past it makes a 504 quickly.
TIMEOUT_S = 0.2
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Stub:
    """What every stand-in shares: ``fail`` (an exception raised, or seconds slept, before a
    read answers), a ``ping`` that honours it, and ``close``."""

    fail: BaseException | float | None = None
    closed: bool = False

    def _maybe_fail(self) -> None:
        if isinstance(self.fail, BaseException):
            raise self.fail
        if isinstance(self.fail, float):
            time.sleep(self.fail)

    def ping(self) -> None:
        self._maybe_fail()

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeStats(Stub):
    rows: dict[tuple[str, Any], dict[str, Any]] = field(default_factory=dict)
    low: list[dict[str, Any]] = field(default_factory=list)

    def get(self, kind: str, key: int | str) -> dict[str, Any] | None:
        self._maybe_fail()
        return self.rows.get((kind, key))

    def low_stock(self, limit: int = 100) -> list[dict[str, Any]]:
        self._maybe_fail()
        return self.low[:limit]


@dataclass
class FakeInventory(Stub):
    items: dict[int, Availability] = field(default_factory=dict)

    def availability(self, product_id: int) -> Availability | None:
        self._maybe_fail()
        return self.items.get(product_id)


@dataclass
class FakeTable:
    up: bool = True

    def reachable(self) -> bool:
        return self.up


@dataclass
class FakeSearch(Stub):
    """Products in price order; ``search`` keeps those whose name or description holds every
    word of ``q`` (the ranking itself is the library's, not under test here)."""

    products: list[SearchHit] = field(default_factory=list)
    table: FakeTable = field(default_factory=FakeTable)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def search(
        self,
        q: str,
        min_price: Decimal | None = None,
        max_price: Decimal | None = None,
        in_stock: bool | None = None,
        *,
        limit: int = 20,
    ) -> list[SearchHit]:
        self._maybe_fail()
        self.calls.append(("search", (q, min_price, max_price, in_stock, limit)))
        words = q.lower().split()
        hits = [
            p
            for p in self.products
            if all(w in f"{p.name} {p.description}".lower() for w in words)
            and (min_price is None or p.price >= min_price)
            and (max_price is None or p.price <= max_price)
            and (in_stock is None or p.in_stock == in_stock)
        ]
        return hits[:limit]

    def by_name(self, prefix: str, *, exact: bool = False, limit: int = 20) -> list[SearchHit]:
        self._maybe_fail()
        self.calls.append(("by_name", (prefix, exact, limit)))
        name = prefix.lower()
        hits = [
            p
            for p in sorted(self.products, key=lambda p: p.name)
            if (p.name.lower() == name if exact else p.name.lower().startswith(name))
        ]
        return hits[:limit]

    def get(self, product_id: int) -> SearchHit | None:
        self._maybe_fail()
        return next((p for p in self.products if p.id == product_id), None)


@dataclass
class FakeEvents(Stub):
    events: dict[tuple[str, str], list[StoredEvent]] = field(default_factory=dict)
    counts: list[tuple[str, str, int]] = field(default_factory=list)
    dead: list[DeadLetterRow] = field(default_factory=list)
    selections: list[tuple[Selection, int | None]] = field(default_factory=list)

    def key_columns(self, table: str) -> list[str]:
        self._maybe_fail()
        return ["id"] if any(t == table for t, _ in self.events) else []

    def _of(self, table: str, key: dict[str, Any], at: datetime | None) -> list[StoredEvent]:
        found = self.events.get((table, str(sorted(key.items()))), [])
        return [e for e in found if at is None or e.event_time <= at]

    def history(
        self, table: str, key: dict[str, Any], *, at: datetime | None = None
    ) -> list[StoredEvent]:
        self._maybe_fail()
        return self._of(table, key, at)

    def state(
        self, table: str, key: dict[str, Any], at: datetime
    ) -> tuple[dict[str, Any] | None, int]:
        self._maybe_fail()
        events = self._of(table, key, at)
        return (events[-1].after if events else None), len(events)

    def dead_letter_counts(self, selection: Selection) -> list[tuple[str, str, int]]:
        self._maybe_fail()
        self.selections.append((selection, None))
        return [c for c in self.counts if selection.status in (None, c[1])]

    def dead_letters(self, selection: Selection, limit: int | None) -> list[DeadLetterRow]:
        self._maybe_fail()
        self.selections.append((selection, limit))
        rows = [r for r in self.dead if selection.status in (None, r.status)]
        return rows[:limit]


@dataclass
class FakeLake(Stub):
    pages: dict[str, ReportPage] = field(default_factory=dict)
    reads: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> list[str]:
        self._maybe_fail()
        return sorted(self.pages)

    def read(
        self,
        name: str,
        *,
        window_from: datetime | None = None,
        window_to: datetime | None = None,
        limit: int | None = None,
    ) -> ReportPage:
        self._maybe_fail()
        self.reads.append({"from": window_from, "to": window_to, "limit": limit})
        page = self.pages.get(name)
        if page is None:
            raise NotFoundError(f"no report table {name!r} in the lake")
        rows = page.rows[:limit] if limit else page.rows
        return ReportPage(page.table, page.columns, rows, page.snapshot_id)


def hit(pid: int, name: str, price: str, stock: int = 5, description: str = "") -> SearchHit:
    return SearchHit(
        id=pid,
        name=name,
        description=description or f"a {name.lower()}",
        price=Decimal(price),
        stock=stock,
        in_stock=stock > 0,
        updated_at="2026-12-01T12:00:00Z",
        version=f"v{pid}",
    )


def event(offset: int, after: dict[str, Any] | None, op: str, minutes: int) -> StoredEvent:
    return StoredEvent(
        event_id=f"e{offset}",
        kind="change",
        op=op,
        key={"id": 7},
        before=None,
        after=after,
        unchanged_columns=(),
        source_ts=T0.replace(minute=minutes),
        event_time=T0.replace(minute=minutes),
        position=offset,
        lsn=1000 + offset,
        tx_id=str(offset),
        snapshot=False,
        topic="shop.public.products",
        kafka_partition=0,
        kafka_offset=offset,
        version=f"{offset:020d}",
    )


def dead_letter(row_id: int, status: str) -> DeadLetterRow:
    return DeadLetterRow(
        id=row_id,
        created_at=T0,
        topic="shop.public.orders",
        partition=1,
        offset=40 + row_id,
        key=b"k",
        value=b"0123456789",
        headers=(),
        error_type="PoisonRecord",
        error_code="bad_json",
        error_message="not JSON",
        retry_count=0,
        status=status,
    )


@dataclass
class Readers:
    stats: FakeStats
    inventory: FakeInventory
    events: FakeEvents
    search: FakeSearch
    lake: FakeLake


@pytest.fixture
def readers() -> Readers:
    customer = {
        "customer_id": 1,
        "known": True,
        "country": "FR",
        "orders_count": 3,
        "total_spent": Decimal("120.50"),
        "last_order_at": T0,
    }
    product = {"product_id": 3, "name": "Mug", "price": Decimal("9.90"), "stock": 2}
    user = {"user_id": "u1", "total_events": 12, "engagement_score": Decimal("0.75")}
    stats = FakeStats(
        rows={("customer", 1): customer, ("product", 3): product, ("user", "u1"): user},
        low=[{**product, "low_stock": True}, {"product_id": 4, "stock": 3, "low_stock": True}],
    )
    inventory = FakeInventory(items={3: Availability(3, 2, True, False, "v3")})
    search = FakeSearch(
        products=[
            hit(i, f"{kind} {i}", f"{i}.00", stock=i % 3)
            for i, kind in enumerate(["Cup", "Mug", "Cup", "Bowl", "Cup", "Cup", "Mug"] * 2, 1)
        ]
    )
    events = FakeEvents(
        events={
            ("public.products", str([("id", 7)])): [
                event(1, {"id": 7, "stock": 5}, "c", 0),
                event(2, {"id": 7, "stock": 4}, "u", 30),
            ]
        },
        counts=[("bad_json", "new", 2), ("schema", "discarded", 1)],
        dead=[dead_letter(2, "new"), dead_letter(1, "new")],
    )
    lake = FakeLake(
        pages={
            "daily_sales": ReportPage(
                "daily_sales",
                ["window_start", "revenue"],
                [
                    {"window_start": T0, "revenue": Decimal("10.00")},
                    {"window_start": T0.replace(day=2), "revenue": Decimal("12.50")},
                ],
                42,
            )
        }
    )
    return Readers(stats, inventory, events, search, lake)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serve(readers: Readers | None, **backends: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app over ``readers`` (None: no backend configured; ``backends`` replace
    some), sending the read key unless a request says otherwise."""
    given: dict[str, Any] = {} if readers is None else dict(vars(readers))
    given.update(backends)
    found = Backends(timeout_s=TIMEOUT_S, threads=4, **given)
    keys = KeyStore(None, f"dash:read:{READ_KEY}, ops:admin:{ADMIN_KEY}")
    app = create_app(Settings(backend_timeout_s=TIMEOUT_S), backends=found, keys=keys)
    # An unhandled error is answered (500) as a server would, not raised into the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers={"X-API-Key": READ_KEY}
        ) as api:
            yield api
    finally:
        found.close()


@pytest.fixture
async def client(readers: Readers) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(readers) as api:
        yield api
