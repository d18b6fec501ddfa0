"""The flusher's pure core: fold decoded order / order-item changes (``_changes``) into
event-time windows per Kafka partition.

This module sits between the decoder and the S3 sink: it imports no I/O library. A change is
placed in the tumbling window of its source commit time (``source.ts_ms``). Each partition keeps
its own open windows; a window's accumulated state is a *part* (one per window, partition and
run of offsets), and a part is closed when the partition's watermark (max source time seen
minus the grace) passes the window's end, when the partition has too many open windows or
rows, when a part reaches ``MAX_PART_EVENTS``, or when the sink asks (idle time, revoke,
shutdown, the process's open windows past ``MAX_OPEN_BYTES``: each partition keeps the
estimated bytes of its rows, and adds them to a ``Held`` total the sink's partitions share).

Event times are not trusted past the processing clock: a change stamped more than
``max_clock_skew_ms`` ahead of it (a skewed source clock, a bogus ``ts_ms``) is still filed under
its own window, but does not move the watermark, which only the event times of changes within
the clock's reach advance (so neither a window on the processing clock nor the windows of a
backlog the lake is working off close early, and the changes after it are not late); and its
part, which no watermark can reach soon, is closed with the partition's next closing one
instead of holding its commits back. A change from long ago is simply late.

A row's image in a part is its newest change by ``cdc_events.source_version`` (the source's
position: the snapshot generation, then commit order, then the change's LSN), not the last read:
a dead letter replayed at a new offset is still the older change it was. Kafka offsets only
place records (the durable position, object keys).

A part also records the *sweeps* it folded: the last read of a table in a Debezium snapshot
carries ``cdc_events.sweep_version`` S (``OrderChange.sweep``), and every row of that table
whose newest version is below S is gone from the source (deleted while Debezium had no offsets:
a snapshot emits no deletes). The lake is append-only, so the sweep is a fact the part keeps
(``Part.sweeps``: per table, the highest S and the offset of the change that carried it) and
its image report writes; the current-state queries apply it (``queries``), to rows of that table
only, comparing versions as text. Being in the part's objects, it is durable before the part's
offsets are committed, and a redelivered marker writes it again, the same bytes under the same
key. Rows of the table whose reads of that snapshot are in other partitions not written yet
count as swept until they are (self-healing). The per-window summaries do not apply sweeps:
they are history. Each sweep is logged and counted when its part is written (``_metrics``).

Everything a closed part holds is a function of its records only (the partition's records in
``[first_offset, last_offset]`` whose event time falls in the window, plus late records filed
under it), so its objects can be named after the window and that offset range: a replay that
closes the same range writes the same bytes under the same key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Any

from analytics_flusher._changes import CANCELLED, ZERO, Change, ItemChange, OrderChange

#: The earliest event time the parser accepts (0001-01-01T00:00:00Z).
MIN_TS_MS = -62_135_596_800_000
NEW = "(new)"
UNKNOWN = "(unknown)"
DELETED = "(deleted)"

#: A part holding this many changes is closed. Its report columns are sized for it: a row's
#: ``changes`` count (int32) and every count (int64) fit, and with the amounts ``_encodable``
#: lets in (within decimal(18,2)) and quantities (int32), a money sum stays below 10^35, inside
#: the summaries' decimal(38,2). Billions of changes of one window and partition: never
#: reached in practice, but no data can make a part unwritable.
MAX_PART_EVENTS = 2**31 - 1

#: Money is added in this decimal context (the sink enters it, ``decimal.localcontext``, around
#: folding and report building): 40 digits, so every sum a part can reach (below 10^35, above)
#: is exact, where the default context (28 digits) would round a sum past 10^26 silently.
MONEY = Context(
    prec=40, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
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
class Held:
    """Estimated bytes held by the open windows of all the partitions sharing it (one per
    sink): what ``MAX_OPEN_BYTES`` bounds."""

    bytes: int = 0


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
    and incremental, so memory grows with distinct rows, not with events: ``held_bytes``
    estimates it (the ``held_bytes`` of the images). Money is added in the caller's decimal
    context: ``MONEY`` for exact sums.
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
    held_bytes: int = 0
    # table -> (the highest sweep version folded, the offset of the change that carried it):
    # at most one entry per table, so not counted in ``held_bytes``.
    sweeps: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add(self, change: Change, late_from: int | None, watermark: int) -> int:
        """Fold one change; returns how many bytes the part's estimate grew by."""
        ident = change.order_id if isinstance(change, OrderChange) else change.item_id
        prev = self.images.get(ident)
        # The row's image is its newest change by source version, not the last to arrive: an
        # older change read after a newer one (a replayed dead letter, a replayed snapshot
        # read) is folded (counted, summarised) but leaves the image as it was. Equal versions
        # are the same change (a redelivery, a re-emit): the later record replaces the image.
        stale = prev is not None and change.version < prev.version
        if change.sweep is not None:
            self._sweep(change.table, change.sweep, change.offset)
        grown = 0
        if not stale:
            self.images[ident] = change
            grown = change.held_bytes - (0 if prev is None else prev.held_bytes)
            self.held_bytes += grown
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
            return grown
        if stale:
            # Its previous state is not the newer image: it is summarised as the first change
            # of its row this part sees (its own ``before``, else the rule for an unknown one).
            if isinstance(change, OrderChange):
                self._add_order(change, None, prev if isinstance(prev, OrderChange) else None)
            else:
                self._add_item(change, None)
            return grown
        self.late_ids.discard(ident)
        if prev is not None and prev.event_id == change.event_id:
            return grown  # a Debezium re-emit of a change already counted in this part
        if isinstance(change, OrderChange):
            prev_order = prev if isinstance(prev, OrderChange) else None
            self._add_order(change, prev_order, prev_order)
        else:
            self._add_item(change, prev if isinstance(prev, ItemChange) else None)
        return grown

    def _sweep(self, table: str, version: str, offset: int) -> None:
        """Record a sweep of ``table``: the highest wins (only it deletes anything at query
        time); for equal ones (a redelivered marker) the later offset, as for images."""
        known = self.sweeps.get(table)
        if known is None or version >= known[0]:
            self.sweeps[table] = (version, offset)

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
    """The open windows of one partition, its watermark and its durable position.

    ``held_bytes`` estimates the memory of its open parts; ``held``, the total of every
    partition sharing it (the sink's), moves with it.
    """

    topic: str
    partition: int
    config: WindowConfig
    open: dict[int, Part] = field(default_factory=dict)
    max_ts: int | None = None
    position: int | None = None
    rows: int = 0
    held: Held = field(default_factory=Held)
    held_bytes: int = 0
    _next_close: int | None = None

    @property
    def watermark(self) -> int | None:
        return None if self.max_ts is None else self.max_ts - self.config.grace_ms

    def add(self, change: Change, closed: list[Part], now_ms: int) -> bool:
        """Fold one change; parts it closes (watermark, caps) are appended to ``closed``.

        ``now_ms`` is the processing clock (epoch ms). A change whose event time is more than
        ``max_clock_skew_ms`` ahead of it does not advance the watermark at all; True for such
        a change (it is still filed under its own window).
        """
        if self.position is not None and change.offset < self.position:
            return False  # already folded: the runtime retries a batch after a failed write
        cfg = self.config
        ts = change.source_ts_ms
        horizon = now_ms + cfg.max_clock_skew_ms
        skewed = ts > horizon
        if not skewed and (self.max_ts is None or ts > self.max_ts):
            # Only a change within the clock's reach moves the watermark. One ahead of it moves
            # nothing: bounding it to the clock instead would, while the lake works off a
            # backlog, put the watermark past every backlogged change after it (all late).
            self.max_ts = ts
            if self._next_close is not None and ts - cfg.grace_ms >= self._next_close:
                self._close_due(closed, horizon)
        start = cfg.window_of(ts)
        late_from: int | None = None
        watermark = ts if self.max_ts is None else self.max_ts - cfg.grace_ms
        if start + cfg.window_ms <= watermark:
            late_from = start
            start = cfg.window_of(watermark + cfg.grace_ms)
        part = self.open.get(start)
        if part is None:
            part = Part(self.topic, self.partition, start, start + cfg.window_ms, change.offset)
            self.open[start] = part
            if self._next_close is None or part.window_end < self._next_close:
                self._next_close = part.window_end
        before = len(part.images)
        grown = part.add(change, late_from, watermark)
        self.rows += len(part.images) - before
        if grown:
            self.held_bytes += grown
            self.held.bytes += grown
        self.position = change.offset + 1
        if part.events >= MAX_PART_EVENTS:
            self._close([start], closed)
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
            self.held_bytes -= part.held_bytes
            self.held.bytes -= part.held_bytes
            closed.append(part)
        self._next_close = min((p.window_end for p in self.open.values()), default=None)

    def close_all(self, closed: list[Part]) -> None:
        self._close(list(self.open), closed)

    def drop(self) -> None:
        """Forget the open windows (the partition was lost: its next owner reads them again)."""
        self.held.bytes -= self.held_bytes
        self.held_bytes = self.rows = 0
        self.open.clear()
        self._next_close = None

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
