"""The large-product protocol: a product change whose posting writes do not fit in one
transaction with its product item (more than ``_txn.MAX_ITEMS - 1``: the tokens change almost
wholesale, up to 64 added and 64 removed, or an item of the release before source versions
states every posting again). Such a change is written with single-item conditional writes,
ordered by version through pending entries on the product item:

1. Record the planned tokens in ``pending_tokens`` at this version, unless entries of this
   version or a newer one already cover them (``ADD``, conditional on the stored version and
   ``pending_rev`` being the ones read; it adds 1 to ``pending_rev`` and removes the item's
   ``tokens_hash``, so no fast write puts over the entries unread).
2. Write the postings, each conditional on the posting's own version being older (a removal
   is a versioned marker with a TTL, so a late stale put cannot resurrect it).
3. Put the product item with the carried entries (those of newer versions), only if the stored
   version and ``pending_rev`` are still the ones read; otherwise re-read and start again.

Every posting write is covered, before it is sent, by a pending entry of its version or a newer
one; an entry is dropped only by a product put (a transaction's or this protocol's) of that
version or newer, whose writer stated the posting at its own version first. Any write an
unfinished attempt sent carries the entry's version or an older one, so it loses to that
statement, and the product's last change settles every older entry: at rest the postings are
exactly the last change's tokens. Entries of newer versions are carried, not settled (a
redelivery can fold to an older change than the attempt that crashed).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from consumer_runtime import RetryableError

from search_indexer._items import StoredProduct, with_pending
from search_indexer._metrics import IndexMetrics
from search_indexer._txn import target
from search_indexer.domain import Deletion, Folded, PostingPlan, plan_postings
from search_indexer.store import IndexTable

__all__ = ["LargeProductWriter", "plan_for"]

_log = structlog.get_logger("search_indexer")

# Races on one product need two writers on one partition; a handful of rounds settles them.
_MAX_ATTEMPTS = 5


def plan_for(
    change: Folded, stored: StoredProduct | None, expires_at: int
) -> tuple[dict[str, object], PostingPlan]:
    """(the item ``change`` writes, its posting plan over ``stored``)."""
    item, new_tokens = target(change, stored, expires_at)
    plan = plan_postings(
        stored.tokens if stored is not None else frozenset(),
        stored.pending_to_settle if stored is not None else {},
        new_tokens,
        change.version,
    )
    return item, plan


class LargeProductWriter:
    """Writes one product change with the protocol above (thread-safe: no state per call)."""

    def __init__(
        self, table: IndexTable, metrics: IndexMetrics, expires_at: Callable[[], int]
    ) -> None:
        self.table = table
        self.metrics = metrics
        self._expires_at = expires_at

    def apply(self, change: Folded, stored: StoredProduct | None) -> str:
        pid, version = change.product_id, change.version
        for attempt in range(_MAX_ATTEMPTS):
            # A stub (pending postings only) or an item of the previous release has the
            # version "", below every source version: written over.
            if stored is not None and stored.version >= version:
                outcome = "duplicate" if stored.version == version else "stale"
                self.metrics.product(outcome)
                return outcome
            if self._attempt(change, stored):
                outcome = "deleted" if isinstance(change.state, Deletion) else "written"
                self.metrics.product(outcome)
                return outcome
            self.metrics.conflicts.inc()
            _log.debug("lost a race on a product; re-reading", product=pid, attempt=attempt)
            stored = self.table.read_product(pid)
        raise RetryableError(f"product {pid}: still contended after {_MAX_ATTEMPTS} attempts")

    def _attempt(self, change: Folded, stored: StoredProduct | None) -> bool:
        """One write of ``change`` over the product as read; False when another writer changed
        the product item meanwhile (nothing this attempt wrote is then left unrecorded)."""
        pid, version = change.product_id, change.version
        item, plan = plan_for(change, stored, self._expires_at())
        base = None if stored is None else stored.version_value
        rev = 0 if stored is None else stored.pending_rev
        if plan.record:
            if not self.table.add_pending(pid, plan.record, version, base, rev):
                return False
            rev += 1
        self._write_postings(pid, version, plan)
        return self.table.put_product(with_pending(item, plan.carry), base, rev)

    def _write_postings(self, pid: int, version: str, plan: PostingPlan) -> None:
        for token in sorted(plan.put):
            self.metrics.posting("put", self.table.put_posting(token, pid, version))
        expires = self._expires_at()
        for token in sorted(plan.remove):
            self.metrics.posting("remove", self.table.remove_posting(token, pid, version, expires))
        if plan.settled:
            self.metrics.repairs.inc(len(plan.settled))
