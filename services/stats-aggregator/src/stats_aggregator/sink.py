"""The PostgreSQL sink: one transaction per batch holding the per-key states, the statistics,
the alert outbox rows and the consumer offsets (the sink-managed commit strategy).

Batches of all replicas are serialised by a transaction-level advisory lock: the cross-topic
deltas read other keys' states (an order line reads its order), so two batches computing
deltas concurrently could each miss the other's uncommitted change. The statistic rows are hot
(every order touches its customer, its day and its status) and would serialise anyway.

A change carrying a sweep version (a Debezium snapshot's last read of a table, see
``domain``, step 4) sweeps its table after the batch's changes, in the same transaction: the
deletes are durable with the batch's offsets, so a crash before the commit redelivers the marker
and the sweep runs again (it is idempotent); a store error during it is retryable like any
other of the batch. Under the batch lock, replicas sweep one at a time. Each sweep is logged
(``table swept``) and its rows counted in ``stats_swept_rows_total{table}`` once committed.

After the commit the alert outbox is published (when a publisher is configured) and the
optional DynamoDB stock projection is brought up to date; both resume from PostgreSQL after a
crash (see ``_outbox``).

User events move the activity watermark (the scores' "as of") by their own timestamps, but
never past the processing clock (``clock``, wall-clock UTC) + ``max_clock_skew``: see
``domain.bounded_latest`` and ``_store.advance_watermark``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
import structlog
from consumer_runtime import (
    BaseSink,
    Batch,
    Offsets,
    RetryableError,
    TopicPartition,
    create_publisher,
)
from sink_kit.aws import ensure_table, make_client
from sink_kit.postgres import (
    OffsetStore,
    db_errors,
    engine_from_settings,
    make_engine,
    upgrade_schema,
)
from sqlalchemy.engine import Connection, Engine

from stats_aggregator import _store as store
from stats_aggregator._metrics import StatsMetrics
from stats_aggregator._model import TABLES, Record, RowChange, UserEvent
from stats_aggregator._outbox import (
    PAGE,
    AlertPublisher,
    InventoryProjection,
    RuntimePublisher,
    publish_alerts,
)
from stats_aggregator.domain import (
    BatchOutcome,
    apply_changes,
    bounded_latest,
    first_occurrences,
    fold_user_events,
)
from stats_aggregator.errors import StatsAggregatorError
from stats_aggregator.settings import DEFAULT_MAX_CLOCK_SKEW_S, SERVICE_NAME, Settings

MIGRATIONS: Final = Path(__file__).parent / "migrations"
# Serialises batches of all replicas (and the schema migration, under its own name).
BATCH_LOCK: Final = "stats-aggregator:batch"
MIGRATION_LOCK: Final = "stats-aggregator:schema"
# A database restarting together with the service (compose, a failover) gets a minute before
# the start fails and the orchestrator's restart back-off takes over.
STARTUP_DB_WAIT_S: Final = 60.0


def utc_now() -> datetime:
    """The processing clock: wall-clock time, UTC."""
    return datetime.now(UTC)


def inventory_table_definition() -> dict[str, Any]:
    """The ``inventory-realtime`` table definition shipped with the package (CreateTable input)."""
    text = resources.files("stats_aggregator").joinpath("inventory-realtime.json").read_text()
    definition: dict[str, Any] = json.loads(text)
    return definition


class StatsSink(BaseSink[Record]):
    """Applies batches of row changes and user events to the statistics, exactly once."""

    def __init__(
        self,
        engine: Engine,
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
        self.offsets = OffsetStore(sa.MetaData())
        self._log = structlog.get_logger("stats_aggregator").bind(service=SERVICE_NAME)
        # Pending after-commit work; True at start so leftovers of a crash are picked up.
        self._alerts_pending = publisher is not None
        self._projection_pending = projection is not None
        #: Counters since start (logged, and read by tests and the benchmark).
        self.stats: dict[str, int] = defaultdict(int)

    @classmethod
    def from_settings(cls, settings: Settings) -> StatsSink:
        engine = engine_from_settings(settings, SERVICE_NAME)
        deadline = time.monotonic() + STARTUP_DB_WAIT_S
        while True:
            try:
                upgrade_schema(
                    engine, MIGRATIONS, MIGRATION_LOCK, version_table="stats_alembic_version"
                )
                break
            except RetryableError as exc:
                if time.monotonic() > deadline:
                    raise
                structlog.get_logger("stats_aggregator").warning(
                    "database unavailable at start; retrying", error=str(exc)
                )
                time.sleep(2)
        projection = None
        if settings.inventory_table:
            client = make_client("dynamodb", settings.aws_region, settings.aws_endpoint_url)
            if settings.inventory_create_table:
                definition = inventory_table_definition() | {"TableName": settings.inventory_table}
                ensure_table(client, definition)
            projection = InventoryProjection(
                client, settings.inventory_table, settings.low_stock_threshold
            )
        return cls(
            engine,
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
        with db_errors("claim partitions"), self.engine.begin() as conn:
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
        with db_errors("write statistics batch"), self.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": BATCH_LOCK})
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
            with db_errors("health check"), self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except RetryableError:
            return False
        return True

    # -- one batch ----------------------------------------------------------------------------

    def _apply_changes(self, conn: Connection, changes: dict[str, list[RowChange]]) -> BatchOutcome:
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
        self, conn: Connection, events: list[UserEvent], bound: datetime
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
                with db_errors("publish alerts"), self.engine.begin() as conn:
                    sent = publish_alerts(conn, self.publisher, self.alerts_topic)
                self._alerts_pending = sent >= PAGE
            except Exception as exc:  # the batch is committed; retry after the next one
                self._log.warning("publishing low-stock alerts failed; will retry", error=str(exc))
        if self._projection_pending and self.projection is not None:
            try:
                with db_errors("project inventory"), self.engine.begin() as conn:
                    written = self.projection.sync(conn)
                self._projection_pending = written >= PAGE
                self.stats["projected"] += written
            except Exception as exc:  # the batch is committed; retry after the next one
                self._log.warning("inventory projection failed; will retry", error=str(exc))


class StatsReader:
    """Read access to the statistics for operators (the ``cdc stats`` commands)."""

    _VIEWS: Final = {
        "customer": ("customer_stats", "customer_id"),
        "product": ("product_stats", "product_id"),
        "user": ("user_stats", "user_id"),
    }

    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url, pool_size=1, max_overflow=0)

    def get(self, kind: str, key: int | str) -> dict[str, Any] | None:
        """The statistics row of one customer, product or user; None if it has none."""
        view, column = self._VIEWS[kind]
        try:
            with db_errors(f"read {view}"), self.engine.connect() as conn:
                row = store.read_one(conn, view, column, key)
                if row is not None and kind == "user":
                    row["as_of"] = store.read_watermark(conn)
                return row
        except RetryableError as exc:
            raise StatsAggregatorError(
                f"{exc}: check DATABASE_URL and that it is reachable"
            ) from exc
        except sa.exc.ProgrammingError as exc:
            raise StatsAggregatorError(
                f"{view} not found: is DATABASE_URL the aggregator's database (and schema)?"
            ) from exc
        finally:
            self.engine.dispose()
