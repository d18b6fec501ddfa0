"""The flusher's pure core: decode order / order-item changes and fold them into event-time
windows per Kafka partition.

This module sits between the runtime's decoder hook and the S3 sink: it imports no I/O library.
A change is placed in the tumbling window of its source commit time (``source.ts_ms``). Each
partition keeps its own open windows; a window's accumulated state is a *part* (one per window,
partition and run of offsets), and a part is closed when the partition's watermark (max source
time seen minus the grace) passes the window's end, when the partition has too many open
windows or rows, or when the sink asks (idle time, revoke, shutdown).

Event times are not trusted past the processing clock: a change stamped more than
``max_clock_skew_ms`` ahead of it (a skewed source clock, a bogus ``ts_ms``) is still filed under
its own window, but moves the watermark only to now + the skew - the grace (with the skew at
most the grace, never past now: no window closes before its end on the processing clock, and
the changes after it are not late); and its part, which no watermark can reach soon, is closed
with the partition's next closing one instead of holding its commits back. A change from long
ago is simply late.

A row's image in a part is its newest change by ``cdc_events.source_version`` (the source's
position: snapshot reads, then commit order, then the change's LSN), not the last record read:
a dead letter replayed at a new offset is still the older change it was. Kafka offsets only
place records (the durable position, object keys).

Everything a closed part holds is a function of its records only (the partition's records in
``[first_offset, last_offset]`` whose event time falls in the window, plus late records filed
under it), so its objects can be named after the window and that offset range: a replay that
closes the same range writes the same bytes under the same key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Protocol

from cdc_events import (
    UNCHANGED,
    ChangeView,
    ColumnTypes,
    DecimalColumn,
    ParseError,
    Parser,
    source_version,
)

#: The earliest event time the parser accepts (0001-01-01T00:00:00Z).
MIN_TS_MS = -62_135_596_800_000
CENTS = Decimal("0.01")
ZERO = Decimal("0.00")
NEW = "(new)"
UNKNOWN = "(unknown)"
DELETED = "(deleted)"
CANCELLED = "cancelled"

#: Schemaless topics carry no logical types: declare the money and time columns.
SHOP_COLUMN_TYPES = ColumnTypes(
    {
        "public.orders": {"total": DecimalColumn(scale=2), "created_at": "timestamp"},
        "public.order_items": {"unit_price": DecimalColumn(scale=2)},
    }
)


class MessageLike(Protocol):
    """The accessors of a consumed Kafka record the decoder needs (the runtime's ``Message``)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...


@dataclass(frozen=True, slots=True)
class OrderChange:
    """The image of an ``orders`` row after one change (a delete keeps only the id).

    ``version`` (``cdc_events.source_version``) is the change's place in its row's history: of
    a row's images, the one with the highest version is its current state. ``offset`` is only
    where the record sits in Kafka (commits, object keys): a dead letter replayed at a new
    offset is still the old change it was.
    """

    order_id: int
    customer_id: int | None
    status: str | None
    total: Decimal | None
    created_at: datetime | None
    deleted: bool
    op: str
    source_ts_ms: int
    offset: int
    version: str
    event_id: str
    before_status: str | None = None

    @property
    def order_day(self) -> date | None:
        return None if self.created_at is None else self.created_at.date()

    @property
    def live(self) -> bool:
        """Counts in sales: present and not cancelled."""
        return not self.deleted and self.status != CANCELLED and self.status is not None


@dataclass(frozen=True, slots=True)
class ItemChange:
    """The image of an ``order_items`` row after one change (``version``: as ``OrderChange``)."""

    item_id: int
    order_id: int | None
    product_id: int | None
    quantity: int | None
    unit_price: Decimal | None
    deleted: bool
    op: str
    source_ts_ms: int
    offset: int
    version: str
    event_id: str

    @property
    def revenue(self) -> Decimal:
        if self.deleted or self.quantity is None or self.unit_price is None:
            return Decimal("0.00")
        return (self.unit_price * self.quantity).quantize(CENTS)


Change = OrderChange | ItemChange


# -- decoding -----------------------------------------------------------------------------------


def _money(value: Any, column: str) -> Decimal | None:
    if value is None or value is UNCHANGED:
        return None
    try:
        if type(value) is Decimal:
            return value.quantize(CENTS, rounding=ROUND_HALF_EVEN)
        return Decimal(value).quantize(CENTS, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ParseError("bad_decimal", f"{column}={value!r} is not an amount") from exc


def _int(value: Any, column: str) -> int | None:
    if value is None or value is UNCHANGED:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError("type_mismatch", f"{column}={value!r} is not an integer")
    return value


def _timestamp(value: Any, column: str) -> datetime | None:
    if value is None or value is UNCHANGED:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ParseError("type_mismatch", f"{column}={value!r} is not a timestamp") from exc
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise ParseError("type_mismatch", f"{column}={value!r} is not a timestamp")


def _id(event: ChangeView) -> int:
    key = event.key
    ident = key.get("id") if key is not None else None
    if type(ident) is int:
        return ident
    row = event.row or {}
    value = (key or {}).get("id", row.get("id"))
    ident = _int(value, "id")
    if ident is None:
        raise ParseError("missing_field", f"{event.table} change without an id")
    return ident


class Decoder:
    """``decode(message) -> OrderChange | ItemChange | None`` for the runtime.

    Changes of ``orders`` and ``order_items`` are decoded; tombstones, heartbeats, transaction
    boundaries, truncates and other tables return ``None`` (skipped). Malformed records raise
    ``ParseError`` (dead-lettered). Records are read with ``Parser.parse_view``: the flat view
    of a change, without the ``Source`` / ``TransactionInfo`` objects the flusher never reads
    (the same checks and ids as ``parse_record``, in about half the time).
    """

    def __init__(
        self,
        parser: Parser | None = None,
        *,
        orders_table: str = "orders",
        items_table: str = "order_items",
    ) -> None:
        self._parser = parser or Parser(column_types=SHOP_COLUMN_TYPES)
        self._orders = orders_table
        self._items = items_table

    def __call__(self, message: MessageLike) -> Change | None:
        record = self._parser.parse_view(
            message.topic() or "",
            message.partition() or 0,
            message.offset() or 0,
            message.key(),
            message.value(),
            message.headers(),
        )
        if type(record) is not ChangeView or record.op not in ("c", "u", "r", "d"):
            return None
        table = record.table
        if table == self._orders:
            return self.order_change(record)
        if table == self._items:
            return self.item_change(record)
        return None

    @staticmethod
    def _event_time(event: ChangeView) -> int:
        ts = event.source_ts_ms if event.source_ts_ms is not None else event.ts_ms
        if ts is None:
            raise ParseError("missing_field", "change without source.ts_ms or ts_ms")
        return ts

    def order_change(self, event: ChangeView) -> OrderChange:
        deleted = event.op == "d"
        row = {} if deleted else (event.after or {})
        before = event.before if not event.before_is_key_only else None
        before_status = None
        if before is not None and isinstance(before.get("status"), str):
            before_status = before["status"]
        status = row.get("status")
        if not deleted and not isinstance(status, str):
            raise ParseError("missing_field", "orders change without a status")
        # The common types are taken as they are; anything else goes through the checks.
        customer = row.get("customer_id")
        if type(customer) is not int:
            customer = _int(customer, "customer_id")
        created = row.get("created_at")
        if type(created) is not datetime or created.tzinfo is None:
            created = _timestamp(created, "created_at")
        return OrderChange(
            order_id=_id(event),
            customer_id=customer,
            status=None if deleted else status,
            total=_money(row.get("total"), "total"),
            created_at=created,
            deleted=deleted,
            op=event.op,
            source_ts_ms=self._event_time(event),
            offset=event.offset,
            version=source_version(event),
            event_id=event.event_id,
            before_status=before_status,
        )

    def item_change(self, event: ChangeView) -> ItemChange:
        deleted = event.op == "d"
        row = {} if deleted else (event.after or {})
        order, product, quantity = row.get("order_id"), row.get("product_id"), row.get("quantity")
        if type(order) is not int:
            order = _int(order, "order_id")
        if type(product) is not int:
            product = _int(product, "product_id")
        if type(quantity) is not int:
            quantity = _int(quantity, "quantity")
        return ItemChange(
            item_id=_id(event),
            order_id=order,
            product_id=product,
            quantity=quantity,
            unit_price=_money(row.get("unit_price"), "unit_price"),
            deleted=deleted,
            op=event.op,
            source_ts_ms=self._event_time(event),
            offset=event.offset,
            version=source_version(event),
            event_id=event.event_id,
        )


# -- windows ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """How changes are windowed; all durations in milliseconds."""

    window_ms: int = 300_000
    grace_ms: int = 60_000
    max_open_windows: int = 12
    max_open_rows: int = 200_000
    max_clock_skew_ms: int = 60_000

    def window_of(self, ts_ms: int) -> int:
        # Not before the first instant a ``datetime`` holds (object keys are dated): only a
        # window length that does not divide a day could put year 1's first window in year 0.
        return max(ts_ms - ts_ms % self.window_ms, MIN_TS_MS)


@dataclass(slots=True)
class LateStats:
    """Late records of one event-time window, filed under a later part."""

    count: int = 0
    min_ts: int = 0
    max_ts: int = 0
    max_lateness_ms: int = 0


@dataclass(slots=True)
class Part:
    """What one partition accumulated for one window, from ``first_offset`` on.

    ``images`` holds the newest image per row id by source version (with how many changes it
    folds and whether the change that gave it was late); the summary accumulators are signed
    and incremental, so memory grows with distinct rows, not with events.
    """

    topic: str
    partition: int
    window_start: int
    window_end: int
    first_offset: int
    last_offset: int = -1
    events: int = 0
    images: dict[int, Change] = field(default_factory=dict)
    changes: dict[int, int] = field(default_factory=dict)
    late_ids: set[int] = field(default_factory=set)
    # orders: (day, customer) -> [placed, placed_revenue, cancelled, cancelled_revenue,
    #                            net_orders, net_revenue]
    customers: dict[tuple[date | None, int | None], list[Any]] = field(default_factory=dict)
    status_entered: dict[str, int] = field(default_factory=dict)
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)
    # items: product -> [lines, units, revenue]
    products: dict[int | None, list[Any]] = field(default_factory=dict)
    late: dict[int, LateStats] = field(default_factory=dict)

    def add(self, change: Change, late_from: int | None, watermark: int) -> None:
        ident = change.order_id if isinstance(change, OrderChange) else change.item_id
        prev = self.images.get(ident)
        # The row's image is its newest change by source version, not the last to arrive: an
        # older change read after a newer one (a replayed dead letter, a replayed snapshot
        # read) is folded (counted, summarised) but leaves the image as it was. Equal versions
        # are the same change (a redelivery, a re-emit): the later record replaces the image.
        stale = prev is not None and change.version < prev.version
        if not stale:
            self.images[ident] = change
        self.changes[ident] = self.changes.get(ident, 0) + 1
        self.last_offset = change.offset
        self.events += 1
        if late_from is not None:
            if not stale:
                self.late_ids.add(ident)
            stats = self.late.get(late_from)
            lateness = watermark - (late_from + self.window_end - self.window_start)
            if stats is None:
                self.late[late_from] = LateStats(
                    1, change.source_ts_ms, change.source_ts_ms, lateness
                )
            else:
                stats.count += 1
                stats.min_ts = min(stats.min_ts, change.source_ts_ms)
                stats.max_ts = max(stats.max_ts, change.source_ts_ms)
                stats.max_lateness_ms = max(stats.max_lateness_ms, lateness)
            return
        if stale:
            # Its previous state is not the newer image: it is summarised as the first change
            # of its row this part sees (its own ``before``, else the rule for an unknown one).
            if isinstance(change, OrderChange):
                self._add_order(change, None, prev if isinstance(prev, OrderChange) else None)
            else:
                self._add_item(change, None)
            return
        self.late_ids.discard(ident)
        if prev is not None and prev.event_id == change.event_id:
            return  # a Debezium re-emit of a change already counted in this part
        if isinstance(change, OrderChange):
            prev_order = prev if isinstance(prev, OrderChange) else None
            self._add_order(change, prev_order, prev_order)
        else:
            self._add_item(change, prev if isinstance(prev, ItemChange) else None)

    def _add_order(
        self, change: OrderChange, prev: OrderChange | None, row: OrderChange | None
    ) -> None:
        """Book ``change`` against ``prev``, its previous state if known; ``row`` is an image
        of the same order (for the day and customer of a delete, which carries only the id)."""
        to = DELETED if change.deleted else (change.status or UNKNOWN)
        total = change.total if change.total is not None else ZERO
        # The previous state: none for a new row; else the before image (REPLICA IDENTITY
        # FULL), else this part's earlier image. Without either (``before`` is null on updates
        # under the default replica identity) it is taken to be live with the same total: the
        # shop places orders live and never changes a total, so only a cancellation leaves.
        if change.op in ("c", "r"):
            src, old_n, old_rev = NEW, 0, ZERO
        elif change.before_status is not None:
            src = change.before_status
            old_n, old_rev = (0, ZERO) if src == CANCELLED else (1, total)
        elif prev is not None:
            src = DELETED if prev.deleted else (prev.status or UNKNOWN)
            old_n, old_rev = (1, prev.total or ZERO) if prev.live else (0, ZERO)
        else:
            src, old_n, old_rev = UNKNOWN, 1, total
        new_n, new_rev = (1, total) if change.live else (0, ZERO)
        self.status_entered[to] = self.status_entered.get(to, 0) + 1
        self.transitions[(src, to)] = self.transitions.get((src, to), 0) + 1
        if change.created_at is None and row is not None:
            key = (row.order_day, row.customer_id)  # a delete carries only the id
        else:
            key = (change.order_day, change.customer_id)
        acc = self.customers.get(key)
        if acc is None:
            acc = self.customers[key] = [0, ZERO, 0, ZERO, 0, ZERO]
        if src == NEW and new_n:
            acc[0] += 1
            acc[1] += new_rev
        if old_n and not new_n:
            acc[2] += 1
            acc[3] += old_rev
        acc[4] += new_n - old_n
        acc[5] += new_rev - old_rev

    def _add_item(self, change: ItemChange, prev: ItemChange | None) -> None:
        if change.op in ("c", "r"):
            self._product(change.product_id, 1, change.quantity or 0, change.revenue)
        elif prev is not None:
            # Only a change seen earlier in this part can be undone exactly.
            self._product(prev.product_id, -1, -(prev.quantity or 0), -prev.revenue)
            if not change.deleted:
                self._product(change.product_id, 1, change.quantity or 0, change.revenue)

    def _product(self, product: int | None, lines: int, units: int, revenue: Decimal) -> None:
        acc = self.products.get(product)
        if acc is None:
            acc = self.products[product] = [0, 0, Decimal("0.00")]
        acc[0] += lines
        acc[1] += units
        acc[2] += revenue


@dataclass(slots=True)
class PartitionWindows:
    """The open windows of one partition, its watermark and its durable position."""

    topic: str
    partition: int
    config: WindowConfig
    open: dict[int, Part] = field(default_factory=dict)
    max_ts: int | None = None
    position: int | None = None
    rows: int = 0
    _next_close: int | None = None

    @property
    def watermark(self) -> int | None:
        return None if self.max_ts is None else self.max_ts - self.config.grace_ms

    def add(self, change: Change, closed: list[Part], now_ms: int) -> bool:
        """Fold one change; parts it closes (watermark, caps) are appended to ``closed``.

        ``now_ms`` is the processing clock (epoch ms). The change's event time advances the
        watermark only up to ``now_ms + max_clock_skew_ms``; True if it was further ahead (it
        is still filed under its own window).
        """
        if self.position is not None and change.offset < self.position:
            return False  # already folded: the runtime retries a batch after a failed write
        cfg = self.config
        ts = change.source_ts_ms
        horizon = now_ms + cfg.max_clock_skew_ms
        skewed = ts > horizon
        bounded = horizon if skewed else ts
        if self.max_ts is None or bounded > self.max_ts:
            self.max_ts = bounded
            if self._next_close is not None and bounded - cfg.grace_ms >= self._next_close:
                self._close_due(closed, horizon)
        start = cfg.window_of(ts)
        late_from: int | None = None
        watermark = self.max_ts - cfg.grace_ms
        if start + cfg.window_ms <= watermark:
            late_from = start
            start = cfg.window_of(self.max_ts)
        part = self.open.get(start)
        if part is None:
            part = Part(self.topic, self.partition, start, start + cfg.window_ms, change.offset)
            self.open[start] = part
            if self._next_close is None or part.window_end < self._next_close:
                self._next_close = part.window_end
        before = len(part.images)
        part.add(change, late_from, watermark)
        self.rows += len(part.images) - before
        self.position = change.offset + 1
        if len(self.open) > cfg.max_open_windows:
            # Windows beyond the horizon go first (nothing on time will reach them), then the
            # oldest.
            ahead = sorted(s for s in self.open if s > horizon)
            order = ahead + sorted(s for s in self.open if s <= horizon)
            self._close(order[: len(self.open) - cfg.max_open_windows], closed)
        if self.rows > cfg.max_open_rows:
            self.close_all(closed)
        return skewed

    def _close_due(self, closed: list[Part], horizon: int) -> None:
        """Close the parts the watermark passed, and with them those of windows that start
        beyond ``horizon`` (the processing clock + the skew): only ahead-of-the-clock changes
        are in them, and the watermark will not reach them for as long as the clock is right,
        so left open they would hold the partition's commits back."""
        watermark = self.watermark
        assert watermark is not None
        self._close(
            [s for s, p in self.open.items() if p.window_end <= watermark or s > horizon],
            closed,
        )

    def _close(self, starts: list[int], closed: list[Part]) -> None:
        for start in sorted(starts):
            part = self.open.pop(start)
            self.rows -= len(part.images)
            closed.append(part)
        self._next_close = min((p.window_end for p in self.open.values()), default=None)

    def close_all(self, closed: list[Part]) -> None:
        self._close(list(self.open), closed)

    def advance(self, next_offset: int) -> None:
        """The runtime handed everything up to ``next_offset`` (skipped records included)."""
        if self.position is None or next_offset > self.position:
            self.position = next_offset

    def durable(self) -> int | None:
        """Next offset up to which every record is in a closed part (or was skipped)."""
        if self.open:
            return min(p.first_offset for p in self.open.values())
        return self.position


def iter_parts(windows: dict[Any, PartitionWindows]) -> Iterator[Part]:
    for state in windows.values():
        yield from state.open.values()
