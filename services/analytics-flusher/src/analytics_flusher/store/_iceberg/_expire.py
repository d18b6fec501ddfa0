"""Snapshot expiry of the changes tables, and the removal of the files only expired snapshots
referenced.

A commit every ~15 s is ~6,000 snapshots a day per table, every one of them in the table's
metadata file, which every commit rewrites. pyiceberg 0.12 expires snapshots with
``ExpireSnapshots`` (``table.maintenance.expire_snapshots()``: ``by_id``, ``by_ids``,
``older_than``): it removes them from the metadata and never deletes a file, and it protects
only the heads of branches and tags. It does not know what the flusher needs:

- ``recorded_positions`` (``_commit``) walks the current snapshot's ancestry down to the newest
  snapshot recording ``cdc.positions``; and removing a snapshot makes its child a root
  (``RemoveSnapshotsUpdate`` clears the child's parent), which ends that walk. So not only
  that snapshot is kept but **every snapshot from the current one down to it**; otherwise the
  writer would find no positions and append everything again.
- Its commit would land whatever the writer committed meanwhile.

What ``plan_expiry`` keeps: the heads of every branch and tag (the current snapshot among
them); the newest ``retain_last`` snapshots of the current ancestry; the current ancestry
down to the newest snapshot recording positions; every snapshot taken at or after
``older_than``. The rest is expired. The commit is a ``_commit._PinnedTransaction``: applied
only if ``main`` is still the snapshot planned on; if the writer committed in between, the
expiry plans again (bounded; then it gives up without error, as compaction does).

Files: the files the expired snapshots name (manifest lists, manifests, the data files of
their manifests' entries) that no remaining snapshot references are deleted after the commit;
a data file is referenced by a snapshot when an entry of its manifests holds it live (added or
existing; an entry recording its deletion is read by nobody, as in Iceberg's own expiry), so
the small files a compaction replaced go once the snapshots that read them are expired. Why
no remaining or later snapshot can need one: every snapshot
after the commit is built on a remaining one (the head was kept, and a commit pinned to an
older head fails, as do the flusher's appends and compactions), so it references the
remaining snapshots' files or new ones; snapshots that landed on other refs between the plan
and the commit are read after it and their files spared. A reader still scanning an expired
snapshot fails (the reason for ``older_than``). Files no snapshot ever referenced (a crashed
writer's) are not looked for: finding them takes a listing and a guess at their age, not a
proof.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io import FileIO
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of
from pyiceberg.table.update.snapshot import ExpireSnapshots
from pyiceberg.utils.datetime import datetime_to_millis

from analytics_flusher.store._iceberg._catalog import transient
from analytics_flusher.store._iceberg._commit import _PinnedTransaction
from analytics_flusher.store._iceberg._positions import SUMMARY_POSITIONS

__all__ = ["ExpiryPlan", "ExpiryResult", "expire_snapshots", "plan_expiry"]

_log = structlog.get_logger("analytics_flusher")

#: Iceberg's own default (``history.expire.min-snapshots-to-keep``): the age bound does the
#: work; the positions are kept whatever this is.
DEFAULT_RETAIN_LAST = 1
#: Plans tried before giving up: an expiry's commit is metadata only, so losing it to the
#: writer's commit (every ~15 s) twice in a row is rare.
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ExpiryPlan:
    """Expiring at ``snapshot_id`` (the current snapshot): the snapshots ``expire``; the
    newest snapshot of the current ancestry recording positions is ``positions_snapshot``."""

    snapshot_id: int | None
    expire: tuple[int, ...]
    kept: int
    positions_snapshot: int | None


@dataclass(frozen=True, slots=True)
class ExpiryResult:
    """What ``expire_snapshots`` did: ``expired`` snapshot ids (those it would expire when
    ``dry_run``), ``kept`` snapshots, ``files_deleted`` (would be deleted when ``dry_run``),
    ``attempts`` and ``gave_up`` as for compaction."""

    table: str
    expired: tuple[int, ...] = ()
    kept: int = 0
    positions_snapshot: int | None = None
    files_deleted: int = 0
    attempts: int = 0
    gave_up: bool = False
    dry_run: bool = False


def plan_expiry(table: Table, *, older_than: datetime, retain_last: int) -> ExpiryPlan:
    """The snapshots of ``table`` (as loaded) to expire, by the rule of the module docstring."""
    if retain_last < 1:
        raise ValueError(f"retain_last {retain_last}: the current snapshot is always kept")
    metadata = table.metadata
    current = table.current_snapshot()
    keep = {ref.snapshot_id for ref in metadata.refs.values()}
    ancestry = list(ancestors_of(current, metadata))
    keep.update(s.snapshot_id for s in ancestry[:retain_last])
    positions_snapshot = None
    for depth, snapshot in enumerate(ancestry):
        if snapshot.summary is not None and snapshot.summary[SUMMARY_POSITIONS] is not None:
            positions_snapshot = snapshot.snapshot_id
            keep.update(s.snapshot_id for s in ancestry[: depth + 1])
            break
    cutoff = datetime_to_millis(older_than)
    expire = tuple(
        s.snapshot_id
        for s in metadata.snapshots
        if s.snapshot_id not in keep and s.timestamp_ms < cutoff
    )
    return ExpiryPlan(
        current.snapshot_id if current is not None else None,
        expire,
        len(metadata.snapshots) - len(expire),
        positions_snapshot,
    )


def expire_snapshots(
    table: Table,
    *,
    older_than: datetime,
    retain_last: int = DEFAULT_RETAIN_LAST,
    delete_files: bool = True,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    dry_run: bool = False,
) -> ExpiryResult:
    """Expire the snapshots of ``table`` (loaded again from its catalog first) that
    ``plan_expiry`` names, then (``delete_files``) delete the files only they referenced.
    A catalog or warehouse outage is the runtime's ``RetryableError`` (``transient``)."""
    name = ".".join(table.name())
    for attempt in range(1, max_attempts + 1):
        with transient(f"planning the snapshot expiry of {name}"):
            table.refresh()
            plan = plan_expiry(table, older_than=older_than, retain_last=retain_last)
            if not plan.expire:
                return ExpiryResult(
                    name, (), plan.kept, plan.positions_snapshot, 0, attempt, dry_run=dry_run
                )
            before = table.metadata
            doomed: set[str] = set()
            if delete_files:
                # Read before the commit: once it lands, nothing leads to these files.
                expiring = set(plan.expire)
                doomed = _files(
                    table.io, (s for s in before.snapshots if s.snapshot_id in expiring)
                ) - _files(
                    table.io,
                    (s for s in before.snapshots if s.snapshot_id not in expiring),
                    live_only=True,
                )
        if dry_run:
            return ExpiryResult(
                name,
                plan.expire,
                plan.kept,
                plan.positions_snapshot,
                len(doomed),
                attempt,
                dry_run=True,
            )
        transaction = _PinnedTransaction(table, plan.snapshot_id)
        ExpireSnapshots(transaction).by_ids(list(plan.expire)).commit()
        try:
            with transient(f"expiring the snapshots of {name}"):
                committed = transaction.commit_transaction()
        except CommitFailedException:
            _log.info("table moved during the snapshot expiry; planning again", table=name)
            continue
        deleted = 0
        if delete_files:
            with transient(f"reading the snapshots of {name}"):
                known = {s.snapshot_id for s in before.snapshots}
                landed = [s for s in committed.metadata.snapshots if s.snapshot_id not in known]
                doomed -= _files(table.io, landed, live_only=True)
            deleted = _delete(table.io, doomed, name)
        _log.info(
            "snapshots expired",
            table=name,
            expired=len(plan.expire),
            kept=plan.kept,
            positions_snapshot=plan.positions_snapshot,
            files_deleted=deleted,
            attempts=attempt,
        )
        return ExpiryResult(name, plan.expire, plan.kept, plan.positions_snapshot, deleted, attempt)
    _log.warning("snapshot expiry gave up: the table kept moving", table=name)
    return ExpiryResult(name, attempts=max_attempts, gave_up=True)


def _files(io: FileIO, snapshots: Iterable[Snapshot], *, live_only: bool = False) -> set[str]:
    """The manifest lists and manifests of ``snapshots``, and the data and delete files of
    their manifests' entries (``live_only``: of the entries holding a file live)."""
    files: set[str] = set()
    for snapshot in snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in files:
                continue  # manifests are immutable: read once
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=live_only):
                files.add(entry.data_file.file_path)
    return files


def _delete(io: FileIO, paths: set[str], name: str) -> int:
    deleted = 0
    for path in sorted(paths):
        try:
            io.delete(path)
            deleted += 1
        except OSError as exc:
            # Referenced by nothing now, and no later run will find it again: say so.
            _log.warning("could not delete an expired file", table=name, path=path, error=exc)
    return deleted
