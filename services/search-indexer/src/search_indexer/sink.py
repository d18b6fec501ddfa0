"""The runtime sink of the search indexer (``SearchIndexSink``): folds a batch per product and
writes each product change in one DynamoDB transaction with its postings (``_txn``), many
products per request; the rare change too large for one transaction goes through the
large-product protocol (``_large``). The table access is ``_table``.

Commit strategy ``commit-after-flush``: ``write_batch`` returns only when every change of the
batch is durable in DynamoDB (or known to be superseded), so the runtime commits the batch's
offsets after it. Redeliveries are harmless: every write is conditional on versions.

One batch, in rounds:

1. Fold to the last change per product (by source version). A deletion or a TOAST update needs
   the stored item: those are read (one consistent ``BatchGetItem``). An insert or snapshot read
   is planned as new (no item). Every other change is assumed to keep its tokens: a *fast* unit,
   the product item alone, conditional on the stored ``tokens_hash`` and an older version.
2. Plan a *diff* unit for each change with a known base: the product item conditional on that
   base (version and ``pending_rev``) and the posting diff (``domain.plan_postings``, pending
   entries of a large write included). A base already at this version or newer: skipped,
   counted ``duplicate`` or ``stale``.
3. Pack the units into ``TransactWriteItems`` requests (100 items, 4 MB) and send each, as
   soon as it is packed, on the write pool (``WRITE_CONCURRENCY``). A cancelled request says
   per item why (``_txn.outcomes_of_cancellation``): a product condition that failed returns
   the stored item, which becomes that change's base for the next round (superseded:
   dropped); a posting holding a newer version is left out; conflicts and throttling send
   the unit again; the units whose conditions held are sent again at once. A refused item
   (``ValidationError``) refuses its record; a request refused as a whole
   (``ValidationException``) is split into one transaction per product so that the refusal
   names its record.
4. When every unit is written or dropped, the large changes are written; then, if a record was
   refused, ``RejectedError`` names it and the runtime isolates and dead-letters it (the rest of
   the batch is written again, as duplicates).
5. The sweeps (``_sweep``): for each sweep version ``S`` the batch carries (on a snapshot's
   last read of ``products``), every live product stored at a version below ``S`` is found by
   a scan of the table and deleted at ``S`` by steps 2-4, as any deletion. A change that
   would write over no live product (step 2) is checked against the sweep floor (the highest
   sweep applied, read once per batch, only if needed): below it, it is skipped.
   The sweep is durable before ``write_batch`` returns (the batch's offsets are committed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from consumer_runtime import BaseSink, Batch, Offsets, RejectedError, RetryableError
from prometheus_client import CollectorRegistry
from sink_kit.aws import retry_at_start
from sink_kit.metrics import AwsCallMetrics

from search_indexer._items import StoredProduct, parse_product
from search_indexer._large import LargeProductWriter, plan_for
from search_indexer._metrics import IndexMetrics
from search_indexer._sweep import Floor, Sweeper
from search_indexer._txn import (
    MAX_ITEMS,
    Unit,
    UnitResult,
    diff_unit,
    fast_unit,
    needs_stored,
    outcomes_of_cancellation,
    pack,
    target,
)
from search_indexer.domain import Deletion, Folded, ProductChange, fold
from search_indexer.settings import Settings
from search_indexer.store import (
    POSTING_CONDITION,
    IndexTable,
    make_dynamodb_client,
    prepare_table,
    product_guard,
)

__all__ = [
    "POSTING_CONDITION",
    "IndexTable",
    "SearchIndexSink",
    "make_dynamodb_client",
    "prepare_table",
]

_log = structlog.get_logger("search_indexer")

# Each round settles every unit except those that lost a race or met a conflict; races on one
# product need two writers on one partition, so a handful of rounds settles them. Past this,
# the batch is retried by the runtime (with backoff).
_MAX_ROUNDS = 8
# /readyz asks often; one DescribeTable per this many seconds is plenty.
_HEALTH_CACHE_S = 5.0

_T = TypeVar("_T")


@dataclass(slots=True)
class _Todo:
    change: Folded
    known: bool  # False: the fast guess (tokens unchanged), no base read
    stored: StoredProduct | None = None
    skip: frozenset[str] = frozenset()


class SearchIndexSink(BaseSink[ProductChange]):
    """Folds each batch per product and writes it in transactions (see the module docstring)."""

    def __init__(
        self,
        table: IndexTable,
        *,
        write_concurrency: int = 8,
        deletion_marker_ttl_s: int = 7 * 24 * 3600,
        metrics: IndexMetrics | None = None,
        clock: Callable[[], float] = time.time,
        max_transaction_postings: int = MAX_ITEMS - 1,
        sweep_segments: int | None = None,
    ) -> None:
        self.table = table
        self.deletion_marker_ttl_s = deletion_marker_ttl_s
        self.metrics = metrics or IndexMetrics()
        # Served by the runtime on /metrics next to its own (consumer_runtime's Sink docs).
        self.metrics_registry = self.metrics.registry
        #: postings one transaction carries with its product item; more: the large protocol
        #: (tests lower it to drive that protocol with small products)
        self.max_transaction_postings = max_transaction_postings
        #: parallel scan segments of a sweep (default: ``write_concurrency``)
        self.sweep_segments = sweep_segments or write_concurrency
        self._clock = clock
        self._pool = ThreadPoolExecutor(write_concurrency, thread_name_prefix="index-write")
        self._large = LargeProductWriter(table, self.metrics, self._expires_at)
        self._sweeper = Sweeper(table, self.metrics, self._write, self._run_all)
        self._healthy_at = 0.0

    @classmethod
    def from_settings(
        cls, settings: Settings, registry: CollectorRegistry | None = None
    ) -> SearchIndexSink:
        metrics = IndexMetrics(registry)
        # Every DynamoDB call timed and throttled attempts counted, served with the rest.
        aws = AwsCallMetrics(metrics.registry, "search-indexer")
        client = aws.instrument(
            make_dynamodb_client(settings.aws_region, settings.aws_endpoint_url)
        )
        if settings.create_table:
            retry_at_start(
                lambda: prepare_table(client, settings.dynamodb_table),
                f"preparing table {settings.dynamodb_table}",
            )
        return cls(
            IndexTable(
                client,
                settings.dynamodb_table,
                aws.instrument(
                    make_dynamodb_client(settings.aws_region, settings.aws_endpoint_url, scans=True)
                ),
            ),
            write_concurrency=settings.write_concurrency,
            deletion_marker_ttl_s=settings.deletion_marker_ttl_s,
            metrics=metrics,
        )

    # -- Sink --------------------------------------------------------------------------------

    def write_batch(self, batch: Batch[ProductChange]) -> Offsets | None:
        changes = fold(batch)
        if not changes:
            return None
        # A change below the floor (the highest sweep applied) is older than the snapshot that
        # superseded it (a partition lagging by a whole re-snapshot, a replay): skipped where it
        # would write over no live product (``_sweep.Floor``, read only then).
        floor = self._sweeper.floor()
        outcomes = self._write(changes, floor=floor)
        floor.log()
        if outcomes.get("stale") or outcomes.get("duplicate"):
            _log.info("superseded changes skipped", **outcomes)
        # After the batch's writes, before its offsets are reported durable (by returning):
        # a marker whose sweep failed or did not finish is delivered again, and sweeps again.
        self._sweeper.sweep_batch(batch, self.sweep_segments)
        return None

    def healthy(self) -> bool:
        now = time.monotonic()
        if now - self._healthy_at < _HEALTH_CACHE_S:
            return True
        ok = self.table.reachable()
        if ok:
            self._healthy_at = now
        return ok

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- writes ------------------------------------------------------------------------------

    def _write(
        self,
        changes: Sequence[Folded],
        read: Mapping[int, StoredProduct] | None = None,
        *,
        floor: Floor | None = None,
    ) -> dict[str, int]:
        """Write folded changes (one per product): transactions, then the large ones. Returns
        the count of each outcome; raises ``RejectedError`` naming the records DynamoDB
        refused, after everything else is written. ``read``: the stored items, if the caller
        has them (else those the changes need are read); ``floor``: the sweep floor a change
        over no live product is checked against (none for the sweep's own deletions)."""
        outcomes: dict[str, int] = {}
        refused: dict[int, str] = {}
        large = self._write_transactions(changes, outcomes, refused, read, floor)
        futures = [self._pool.submit(self._large.apply, c, s) for c, s in large]
        for outcome in _wait_all(futures):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if refused:
            where = {c.product_id: c for c in changes}
            names = "; ".join(
                f"product {pid} (partition {where[pid].partition}, offset {where[pid].offset}): "
                f"{message}"
                for pid, message in sorted(refused.items())
            )
            raise RejectedError(f"DynamoDB refused {names}")
        return outcomes

    def _run_all(self, calls: Sequence[Callable[[], _T]]) -> list[_T]:
        """Run ``calls`` on the write pool (the sweep's scans): every result, as ``_wait_all``."""
        return _wait_all([self._pool.submit(call) for call in calls])

    # -- transactions --------------------------------------------------------------------------

    def _write_transactions(
        self,
        changes: Sequence[Folded],
        outcomes: dict[str, int],
        refused: dict[int, str],
        read: Mapping[int, StoredProduct] | None = None,
        floor: Floor | None = None,
    ) -> list[tuple[Folded, StoredProduct | None]]:
        """Write every change that fits in a transaction; return those that do not."""
        if read is None:
            read = self.table.read_products([c.product_id for c in changes if needs_stored(c)])
        todo: dict[int, _Todo] = {}
        for c in changes:
            if needs_stored(c):
                todo[c.product_id] = _Todo(c, True, read.get(c.product_id))
            else:
                todo[c.product_id] = _Todo(c, c.created)
        large: list[tuple[Folded, StoredProduct | None]] = []
        alone: set[int] = set()
        for _ in range(_MAX_ROUNDS):
            # Each transaction goes to the pool as soon as it is packed: the first requests are
            # serialised and answered while the rest of the round's units are built.
            batches: list[list[Unit]] = []
            futures: list[Future[list[UnitResult | None]]] = []
            try:
                for txn in pack(self._units(todo, outcomes, large, floor), alone=frozenset(alone)):
                    batches.append(txn)
                    futures.append(self._pool.submit(self._send, txn))
            except BaseException:
                wait(futures)  # no request of this batch outlives write_batch
                raise
            if not batches:
                return large
            for txn, results in zip(batches, _wait_all(futures), strict=True):
                for unit, result in zip(txn, results, strict=True):
                    self._settle(unit, result, todo, outcomes, refused, alone)
        raise RetryableError(
            f"{len(todo)} product(s) still conflicting after {_MAX_ROUNDS} transaction rounds"
        )

    def _units(
        self,
        todo: dict[int, _Todo],
        outcomes: dict[str, int],
        large: list[tuple[Folded, StoredProduct | None]],
        floor: Floor | None = None,
    ) -> Iterator[Unit]:
        """The units of this round, built one by one (``todo`` and ``large`` are updated as
        they are: a superseded change leaves ``todo``, a large one moves to ``large``, one
        below the sweep floor over no live product leaves ``todo``)."""
        expires = self._expires_at()
        name = self.table.name
        for pid, t in list(todo.items()):
            change, stored = t.change, t.stored
            if not t.known:
                yield fast_unit(change, name, target(change, None, expires)[0])
                continue
            if stored is not None and stored.version >= change.version:
                outcome = "duplicate" if stored.version == change.version else "stale"
                self._count(outcome, outcomes)
                del todo[pid]
                continue
            live = stored is not None and stored.exists and not stored.deleted
            if floor is not None and not live and floor.skips(change.version):
                outcomes["below_sweep"] = outcomes.get("below_sweep", 0) + 1
                del todo[pid]
                continue
            item, plan = plan_for(change, stored, expires)
            if len((plan.put | plan.remove) - t.skip) > self.max_transaction_postings:
                large.append((change, stored))
                del todo[pid]
                continue
            base = None if stored is None else stored.version_value
            guard = product_guard(base, 0 if stored is None else stored.pending_rev)
            yield diff_unit(change, name, item, guard, plan, expires, t.skip)

    def _send(self, txn: list[Unit]) -> list[UnitResult | None]:
        """One ``TransactWriteItems``; per unit ``None`` (written) or what the refusal says."""
        items = [entry for unit in txn for entry in unit.items]
        what = f"transact write {self.table.name} ({len(txn)} products)"
        try:
            cancelled = self.table.transact(items, what)
            if cancelled is not None:
                return list(outcomes_of_cancellation(cancelled, txn))
        except RejectedError as exc:  # ValidationException: the request as a whole
            if len(txn) > 1:
                return [UnitResult("split", message=str(exc)) for _ in txn]
            return [UnitResult("refused", message=str(exc))]
        return [None] * len(txn)

    def _settle(
        self,
        unit: Unit,
        result: UnitResult | None,
        todo: dict[int, _Todo],
        outcomes: dict[str, int],
        refused: dict[int, str],
        alone: set[int],
    ) -> None:
        pid = unit.change.product_id
        t = todo[pid]
        if result is None:
            deleted = isinstance(unit.change.state, Deletion)
            self._count("deleted" if deleted else "written", outcomes)
            for op, _ in unit.postings:
                self.metrics.posting(op, True)
            if unit.settled:
                self.metrics.repairs.inc(unit.settled)
            del todo[pid]
        elif result.reason == "reread":
            # The stored item came back with the cancellation: no read needed.
            (self.metrics.fast_misses if unit.fast else self.metrics.conflicts).inc()
            t.known = True
            t.stored = None if result.stored is None else parse_product(result.stored)
            t.skip = frozenset()
        elif result.reason == "refused":
            refused[pid] = result.message
            del todo[pid]
        elif result.reason == "skip_postings":
            for op, token in unit.postings:
                if token in result.tokens:
                    self.metrics.posting(op, False)
            t.skip |= result.tokens
        elif result.reason == "split":
            alone.add(pid)
        elif result.reason == "retry":
            self.metrics.txn_retries.inc()

    def _count(self, outcome: str, outcomes: dict[str, int]) -> None:
        self.metrics.product(outcome)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    # -- the large-product protocol (``_large``) -------------------------------------------------

    def _apply(self, change: Folded, stored: StoredProduct | None) -> str:
        """Write one change with the large-product protocol (its tests drive it directly)."""
        return self._large.apply(change, stored)

    def _expires_at(self) -> int:
        return int(self._clock()) + self.deletion_marker_ttl_s


def _wait_all(futures: Sequence[Future[Any]]) -> list[Any]:
    """Every future's result, after every one finished (even after a failure); then the first
    non-retryable error, or a retryable one if all are."""
    errors: list[BaseException] = []
    results: list[Any] = []
    for future in futures:
        exc = future.exception()
        if exc is not None:
            errors.append(exc)
        else:
            results.append(future.result())
    if errors:
        retryable = [e for e in errors if isinstance(e, RetryableError)]
        if len(retryable) == len(errors):
            raise retryable[0]
        raise next(e for e in errors if not isinstance(e, RetryableError))
    return results
