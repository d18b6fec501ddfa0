"""The sweep after a re-snapshot (step 5 of a batch, ``sink``), and the sweep floor every batch
is read against.

For each sweep version ``S`` the batch carries (``ProductChange.sweep``, on a snapshot's last
read of ``products``), lowest first, every live product stored at a version below ``S``
(``_versions.below_sweep``: neither read by that snapshot nor changed after it, so gone from the
source) is found by a scan of the table (``IndexTable.scan_products_below``, parallel segments
on the sink's write pool, every page) and deleted at ``S`` through the sink's transaction rounds
(steps 2-4), as any deletion: the deletion marker under the version read and the removal of its
postings, in one transaction. A product written at ``S`` or later meanwhile fails that condition
and is dropped as superseded (the newer write wins; not an error). A product whose read is in
another partition not consumed yet is swept too and re-created by that read (its version is
above ``S``). One log line and ``search_index_swept_products_total`` per sweep.

Before its scan a sweep raises the table's sweep floor to ``S``, so no member applies a change
below it any more where that could bring back a product the scan does not see (``Floor``).

The sweep is part of ``write_batch``: it is durable before the batch's offsets are reported
durable (``write_batch`` returns), so a marker whose sweep failed (a ``RetryableError``: the
batch is retried) or did not finish (a crash) is delivered again and sweeps again. A sweep run
again deletes nothing (what it deleted holds ``S``): a redelivered marker writes nothing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import structlog
from consumer_runtime import Batch

from search_indexer._items import StoredProduct
from search_indexer._metrics import IndexMetrics
from search_indexer._versions import below_sweep
from search_indexer.domain import Deletion, Folded, ProductChange
from search_indexer.store import IndexTable

__all__ = ["Floor", "Sweeper", "sweeps_of"]

_log = structlog.get_logger("search_indexer")

# Products deleted per round of transactions in a sweep (bounds what one round holds).
_SWEEP_CHUNK = 1000

#: The sink's writes of folded changes with the stored items they replace
#: (``SearchIndexSink._write``): the count of each outcome.
Write = Callable[[Sequence[Folded], Mapping[int, StoredProduct]], dict[str, int]]
#: The sink's write pool running calls in parallel: every result, after every call finished.
Scans = Sequence[Callable[[], list[StoredProduct]]]
RunAll = Callable[[Scans], list[list[StoredProduct]]]


class Floor:
    """The sweep floor (the highest sweep applied) as one batch sees it: read from the table
    (one consistent ``GetItem``) the first time the batch asks, never if it does not.

    The sink asks only for a change that would write over no live product: no item, or a
    deletion marker (a create, a snapshot read, a price change whose fast write found no
    product). A change below the floor is older than the snapshot that superseded it; over no
    live product it could bring back one the sweep deleted or never saw, so it is skipped
    (``search_index_products_total{outcome="below_sweep"}``). A change over a live product
    needs no floor: the sweep deletes every live product below ``S`` under the version it
    read, so such a change either lands before that deletion (whose condition then fails, and
    which is planned again over it) or finds the deletion marker at ``S`` and is stale. A batch
    of price and stock changes of live products, the commonest, reads no floor."""

    def __init__(self, table: IndexTable, metrics: IndexMetrics) -> None:
        self._table = table
        self._metrics = metrics
        self.skipped = 0

    @functools.cached_property
    def value(self) -> str | None:
        return self._table.read_sweep_floor()

    def skips(self, version: str) -> bool:
        """True (and counted) if a change at ``version`` over no live product is below it."""
        floor = self.value
        if floor is None or not below_sweep(version, floor):
            return False
        self.skipped += 1
        self._metrics.products.labels("below_sweep").inc()
        return True

    def log(self) -> None:
        if self.skipped:
            _log.info(
                "changes below the sweep floor skipped", skipped=self.skipped, floor=self.value
            )


class Sweeper:
    """The sweep floor and the sweeps of a batch, for ``SearchIndexSink.write_batch``."""

    def __init__(
        self, table: IndexTable, metrics: IndexMetrics, write: Write, run_all: RunAll
    ) -> None:
        self.table = table
        self.metrics = metrics
        self._write = write
        self._run_all = run_all

    def floor(self) -> Floor:
        """The floor for one batch, read when the batch first needs it (``Floor``)."""
        return Floor(self.table, self.metrics)

    def sweep_batch(self, batch: Batch[ProductChange], segments: int) -> None:
        """Every sweep the batch carries, lowest first (after the batch's writes)."""
        for sweep, marker in sweeps_of(batch):
            self.sweep(sweep, marker, segments)

    def sweep(self, sweep: str, marker: ProductChange, segments: int) -> None:
        """Delete every live product stored at a version below ``sweep`` (see the module
        docstring), at ``sweep``, through the deletion path of any change."""
        started = time.monotonic()
        # First the floor: from now on no member applies a change below the sweep, so none can
        # bring back a product the scan below does not see yet.
        self.table.raise_sweep_floor(sweep)
        scans = [
            partial(self.table.scan_products_below, sweep, segment=i, segments=segments)
            for i in range(segments)
        ]
        gone = {
            stored.id: stored
            for found in self._run_all(scans)
            for stored in found
            if stored.exists and not stored.deleted and below_sweep(stored.version, sweep)
        }
        ids = sorted(gone)
        deleted = newer = 0
        for start in range(0, len(ids), _SWEEP_CHUNK):
            chunk = ids[start : start + _SWEEP_CHUNK]
            deletions = [
                Folded(pid, Deletion(pid), sweep, marker.partition, marker.offset) for pid in chunk
            ]
            outcomes = self._write(deletions, {pid: gone[pid] for pid in chunk})
            # A product changed at ``sweep`` or later since the scan: its condition failed and
            # the item returned holds the newer version (not an error).
            newer += outcomes.get("stale", 0) + outcomes.get("duplicate", 0)
            deleted += outcomes.get("deleted", 0)
            self.metrics.swept.inc(outcomes.get("deleted", 0))
        _log.info(
            "swept products the snapshot did not read",
            table="products",
            sweep_version=sweep,
            deleted=deleted,
            already_newer=newer,
            topic=marker.topic,
            partition=marker.partition,
            offset=marker.offset,
            seconds=round(time.monotonic() - started, 3),
        )


def sweeps_of(batch: Batch[ProductChange]) -> list[tuple[str, ProductChange]]:
    """The sweep versions the batch's changes carry, lowest first, each with the first change
    carrying it (where its deletion markers say they were read)."""
    found: dict[str, ProductChange] = {}
    for change in batch:
        if change.sweep is not None:
            found.setdefault(change.sweep, change)
    return sorted(found.items())
