"""The PostgreSQL sink: one transaction per batch holding the per-key states, the statistics,
the alert outbox rows and the consumer offsets (the sink-managed commit strategy).

Batches of all replicas are serialised by a transaction-level advisory lock
(``store.batch_transaction``): the cross-topic deltas read other keys' states (an order line
reads its order), so two batches computing deltas concurrently could each miss the other's
uncommitted change. The statistic rows are hot (every order touches its customer, its day and
its status) and would serialise anyway. The SQL, the engine and the DynamoDB client are
``store``'s.

A change carrying a sweep version (a Debezium snapshot's last read of a table, see
``domain``, step 4) sweeps its table after the batch's changes, in the same transaction: the
deletes are durable with the batch's offsets, so a crash before the commit redelivers the marker
and the sweep runs again (it is idempotent); a store error during it is retryable like any
other of the batch. Under the batch lock, replicas sweep one at a time. Each sweep is logged
(``table swept``) and its rows counted in ``stats_swept_rows_total{table}`` once committed.

After the commit the alert outbox is published (when a publisher is configured) and the
optional DynamoDB stock projection is brought up to date; both resume from PostgreSQL after a
crash (see ``store._outbox``).

User events move the activity watermark (the scores' "as of") by their own timestamps, but
never past the processing clock (``clock``, wall-clock UTC) + ``max_clock_skew``: see
``domain.bounded_latest`` and ``store.advance_watermark``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from consumer_runtime import (
    BaseSink,
    Batch,
    Offsets,
    RetryableError,
    TopicPartition,
    create_publisher,
)
from sink_kit.metrics import AwsCallMetrics

from stats_aggregator import store
from stats_aggregator._metrics import StatsMetrics
from stats_aggregator._model import TABLES, Record, RowChange, UserEvent
from stats_aggregator.domain import (
    BatchOutcome,
    apply_changes,
    bounded_latest,
    first_occurrences,
    fold_user_events,
)
from stats_aggregator.settings import DEFAULT_MAX_CLOCK_SKEW_S, SERVICE_NAME, Settings
from stats_aggregator.store import PAGE, AlertPublisher, InventoryProjection, RuntimePublisher


def utc_now() -> datetime:
    """The processing clock: wall-clock time, UTC."""
    return datetime.now(UTC)


class StatsSink(BaseSink[Record]):
    """Applies batches of row changes and user events to the statistics, exactly once."""

    def __init__(
        self,
        engine: store.Engine,
        *,
        group: str,
        threshold: int = 10,
        projection: InventoryProjection | None = None,
        publisher: AlertPublisher | None = None,
        alerts_topic: str = "alerts.low-stock",
        max_clock_skew: timedelta = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_S),
        clock: Callable[[], datetime] = utc_now,
        metrics: StatsMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.group = group
        self.threshold = threshold
        self.projection = projection
        self.publisher = publisher
        self.alerts_topic = alerts_topic
        self.max_clock_skew = max_clock_skew
        self.clock = clock
        self.metrics = metrics or StatsMetrics()
        # Served by the runtime on /metrics next to its own (consumer_runtime's Sink docs).
        self.metrics_registry = self.metrics.registry
        self.offsets = store.offset_store()
        self._log = structlog.get_logger("stats_aggregator").bind(service=SERVICE_NAME)
        # Pending after-commit work; True at start so leftovers of a crash are picked up.
        self._alerts_pending = publisher is not None
        self._projection_pending = projection is not None
        #: Counters since start (logged, and read by tests and the benchmark).
        self.stats: dict[str, int] = defaultdict(int)

    @classmethod
    def from_settings(cls, settings: Settings) -> StatsSink:
        metrics = StatsMetrics()
        engine = store.connect(settings)
        projection = store.open_projection(settings, AwsCallMetrics(metrics.registry, SERVICE_NAME))
        # Outbox backlogs, low-stock products and pool use: read from the store when scraped.
        metrics.registry.register(store.StoreGauges(engine, projection=projection is not None))
        return cls(
            engine,
            metrics=metrics,
            group=settings.group_id(SERVICE_NAME),
            threshold=settings.low_stock_threshold,
            projection=projection,
            publisher=RuntimePublisher(create_publisher(settings, SERVICE_NAME)),
            alerts_topic=settings.alerts_topic,
            max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
        )

    # -- the runtime's hooks ------------------------------------------------------------------

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        # Claimed, not only read: from now on a write by the partitions' previous owner (a
        # zombie) is fenced (``OffsetStore``).
        with store.transaction(self.engine, "claim partitions") as conn:
            return self.offsets.claim(conn, self.group, partitions)

    def write_batch(self, batch: Batch[Record]) -> Offsets | None:
        changes: dict[str, list[RowChange]] = {t: [] for t in TABLES}
        events: list[UserEvent] = []
        # One processing-clock reading per batch: no watermark goes past it + the skew.
        bound = self.clock() + self.max_clock_skew
        skewed: dict[str, list[UserEvent]] = {}
        for tp, records in batch.records.items():
            for r in records:
                if isinstance(r, RowChange):
                    changes[r.table].append(r)
                else:
                    events.append(r)
                    if r.timestamp > bound:
                        skewed.setdefault(tp.topic, []).append(r)
        with store.batch_transaction(self.engine) as conn:
            outcome = self._apply_changes(conn, changes)
            if events:
                self._apply_user_events(conn, events, bound)
            self.offsets.save(conn, self.group, batch.next_offsets)
        self.stats["batches"] += 1
        for swept in outcome.sweeps:
            self.metrics.count_swept(swept.table, swept.deleted)
            self.stats["swept"] += swept.deleted
            self._log.info(
                "table swept",
                table=swept.table,
                sweep_version=swept.version,
                deleted=swept.deleted,
            )
        for topic, ahead in skewed.items():
            self.metrics.count_skewed(topic, len(ahead))
            self.stats["clock_skewed"] += len(ahead)
            self._log.warning(
                "user events ahead of the clock; the activity watermark stops at the bound",
                topic=topic,
                count=len(ahead),
                latest=max(e.timestamp for e in ahead).isoformat(),
                bound=bound.isoformat(),
            )
        if outcome.alerts:
            self._alerts_pending = self.publisher is not None
        if changes["products"] or outcome.products_changed:
            self._projection_pending = self.projection is not None
        self._after_commit()
        return None

    def flush(self) -> Offsets | None:
        self._after_commit()
        return None

    def close(self) -> None:
        close = getattr(self.publisher, "close", None)
        if close is not None:
            close()
        self.engine.dispose()

    def healthy(self) -> bool:
        try:
            store.ping(self.engine)
        except RetryableError:
            return False
        return True

    # -- one batch ----------------------------------------------------------------------------

    def _apply_changes(
        self, conn: store.Connection, changes: dict[str, list[RowChange]]
    ) -> BatchOutcome:
        outcome = apply_changes(store.PgStore(conn), changes, self.threshold)
        self.stats["applied"] += outcome.applied
        self.stats["reemits_skipped"] += outcome.skipped
        if outcome.skipped:
            self._log.info("re-emitted changes skipped", count=outcome.skipped)
        if outcome.alerts:
            store.insert_alerts(conn, outcome.alerts)
            self.stats["alerts"] += len(outcome.alerts)
        return outcome

    def _apply_user_events(
        self, conn: store.Connection, events: list[UserEvent], bound: datetime
    ) -> None:
        unique = first_occurrences(events)
        new_ids = store.new_event_ids(conn, [e.event_id for e in unique])
        fresh = [e for e in unique if e.event_id in new_ids]
        self.stats["user_events"] += len(fresh)
        self.stats["user_events_duplicate"] += len(events) - len(fresh)
        if not fresh:
            return
        store.add_user_totals(conn, fold_user_events(fresh).values())
        latest = bounded_latest((e.timestamp for e in fresh), bound)
        assert latest is not None  # ``fresh`` is not empty
        store.advance_watermark(conn, latest, bound)

    def _after_commit(self) -> None:
        """Publish pending alerts and projection writes; failures wait for the next batch."""
        if self._alerts_pending and self.publisher is not None:
            try:
                with store.transaction(self.engine, "publish alerts") as conn:
                    sent = store.publish_alerts(conn, self.publisher, self.alerts_topic)
                self._alerts_pending = sent >= PAGE
            except Exception as exc:  # the batch is committed; retry after the next one
                self._log.warning("publishing low-stock alerts failed; will retry", error=str(exc))
        if self._projection_pending and self.projection is not None:
            try:
                with store.transaction(self.engine, "project inventory") as conn:
                    written = self.projection.sync(conn)
                self._projection_pending = written >= PAGE
                self.stats["projected"] += written
            except Exception as exc:  # the batch is committed; retry after the next one
                self._log.warning("inventory projection failed; will retry", error=str(exc))
