"""Step 4 of a batch (see ``domain``): the sweep after a new snapshot (pure, no I/O).

For each change of the batch carrying ``sweep`` S (``cdc_events.sweep_version``: the last read
of its table in a Debezium snapshot), after steps 1-3: every key of its table whose stored
state is live and whose version is below S (as text; a state stored before versions, NULL,
counts as below) is deleted by a synthesized delete with version S (``swept_delete``), through
steps 1-3 like any delete, ``SWEEP_CHUNK`` keys at a time. Such a row was neither read by that
snapshot nor changed after it: it was deleted at the source while Debezium had no offsets (a
snapshot emits no deletes). Deleted with version S, it stays deleted against any older change
arriving later (a lagging partition, a dead-letter replay) and comes back with the snapshot's
own read of it (above S) or any later change. S is then recorded for the table
(``SweepStore.save_sweep``): from the next batch on, ``domain.fold`` skips every change of the
table at or below it, also of keys not stored when the sweep ran (a partition lagging behind
the marker's would otherwise create, from the earlier generation, a row that snapshot did not
read). A redelivered marker finds nothing left below S: the sweep is idempotent.

This module knows which keys a sweep deletes, with which delete, in which rounds; applying a
round's deletes is the batch's path, passed in by ``domain.sweep``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from stats_aggregator._model import RowChange

#: Keys one round of a sweep deletes (one ``apply_changes`` of that many deletes).
SWEEP_CHUNK: Final = 1000
#: Below every key (``bigint``): where a sweep starts.
_FIRST_KEY: Final = -(2**63)


class SweepStore(Protocol):
    """What a sweep reads and records besides the batch's path (part of ``StateStore``)."""

    def live_keys_below(self, table: str, version: str, after: int, limit: int) -> list[int]:
        """Up to ``limit`` keys above ``after``, ascending, whose state is live (not deleted)
        and whose version is below ``version`` (byte-wise) or NULL (stored before versions)."""
        ...

    def load_sweeps(self) -> dict[str, str]:
        """Per table, the highest sweep version recorded by ``save_sweep``."""
        ...

    def save_sweep(self, table: str, version: str) -> None:
        """Record a sweep of ``table`` at ``version`` (a lower one than recorded: no-op)."""
        ...


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    """One sweep: the table, the sweep version and how many live keys it deleted."""

    table: str
    version: str
    deleted: int


#: Applies one round's deletes (all of the marker's table) through the batch's path; returns
#: how many it applied.
ApplyDeletes = Callable[[list[RowChange]], int]


def sweep_markers(changes: Mapping[str, Sequence[RowChange]]) -> list[RowChange]:
    """The batch's changes carrying a sweep version: one per table and version (a re-emitted
    marker sweeps once), lowest version first (a lower one's rows are a subset)."""
    markers: dict[tuple[str, str], RowChange] = {}
    for rows in changes.values():
        for change in rows:
            if change.sweep is not None:
                markers.setdefault((change.table, change.sweep), change)
    return [markers[k] for k in sorted(markers, key=lambda k: (k[1], k[0]))]


def swept_delete(marker: RowChange, key: int) -> RowChange:
    """The delete a sweep applies to ``key`` of the marker's table: version = the sweep version
    (no LSN: a state positioned by LSN alone keeps its own), at the marker's Kafka position."""
    assert marker.sweep is not None
    return RowChange(
        table=marker.table,
        key=key,
        op="d",
        values=None,
        version=marker.sweep,
        lsn=None,
        event_id=f"sweep:{marker.table}:{key}:{marker.sweep}",
        source_ts_ms=marker.source_ts_ms,
        partition=marker.partition,
        offset=marker.offset,
    )


def sweep_table(
    store: SweepStore, marker: RowChange, apply_deletes: ApplyDeletes, chunk: int = SWEEP_CHUNK
) -> SweepOutcome:
    """Delete every live key of ``marker.table`` whose version is below ``marker.sweep``,
    ``chunk`` keys per round (each round's deletes through ``apply_deletes``), then record the
    sweep version for the table."""
    assert marker.sweep is not None and chunk > 0
    deleted = 0
    after = _FIRST_KEY
    while keys := store.live_keys_below(marker.table, marker.sweep, after, chunk):
        deleted += apply_deletes([swept_delete(marker, key) for key in keys])
        if len(keys) < chunk:
            break
        after = keys[-1]
    store.save_sweep(marker.table, marker.sweep)
    return SweepOutcome(marker.table, marker.sweep, deleted)
