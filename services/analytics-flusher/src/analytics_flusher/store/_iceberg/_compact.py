"""Compaction of the changes tables: the small data files of a partition rewritten as a few
large ones, in one snapshot that replaces exactly those files.

The flusher commits every ~15 s (``LAKE_COMMIT_INTERVAL_SECONDS``), so each day partition it
writes gains one small data file per commit, and every read opens all of them.

**Plan** (``plan_compaction``), on the table's current snapshot: per partition of the current
spec, the data files smaller than ``target_file_bytes``. A partition with at least
``min_input_files`` of them is compacted: its small files are packed (largest first, each into
the first group it fits) into groups of at most ``target_file_bytes`` on disk, and every group
of two files or more is rewritten as one file. A partition with a delete file against one of
its files is left alone (the flusher writes none; rewriting would drop or resurrect the rows it
deletes), as are files of an older partition spec.

**Commit**: one ``overwrite`` snapshot (pyiceberg 0.12 cannot write a ``replace`` one: its
summary code refuses the operation) that removes the input files *by file*
(``delete_data_file``; a row filter could match rows a concurrent writer appended) and adds the
rewritten ones, which hold the same rows (the same multiset; the order within a file is not
kept). Its summary carries every ``cdc.`` key (``cdc.positions``, ``cdc.generation``) of the
newest snapshot of the ancestry that records positions, so the positions stay on the newest
snapshot whatever expiry later removes.

**Safety against the writer**, which keeps committing while a compaction rewrites:

- The commit is a ``_commit._PinnedTransaction``: the catalog applies it only if ``main`` is
  still the snapshot it was checked on, and pyiceberg's own retry, which would rebase it on a
  newer head, is refused. Rebased, the overwrite keeps the summary given when it was staged:
  under the tables' default ``serializable`` isolation the rebase fails on any file the writer
  added (``ValidationException``: the rewrite lost for nothing), and under ``snapshot``
  isolation it lands, recording the positions of the snapshot it was built on *on top of* the
  writer's newer ones: the writer's next check would read older positions and append again
  what it had already written, and a zombie the newer generation fenced would pass.
- Rewriting takes longer than the writer's commit interval, so the check is made after the
  files are written: the table is loaded again; if it moved past the planned snapshot, the
  plan is checked against the new head. If every input file is still live there (and no
  delete file applies to one), replacing them is still exact: the same files are replaced on
  the new head, with its ``cdc.`` keys (what the writer appended is in other files, kept).
  Otherwise (another compaction replaced them) the written files are deleted and the
  compaction plans again from the new head.
- A commit overtaken inside the catalog is refused (the transaction deletes the written
  files) and the compaction plans again; after ``max_attempts`` plans it gives up without
  error (``CompactionResult.gave_up``): maintenance is best effort, the next run tries again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa  # type: ignore[import-untyped]
import structlog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table, TableProperties
from pyiceberg.table.snapshots import ancestors_of

from analytics_flusher.errors import AnalyticsFlusherError
from analytics_flusher.store._iceberg._catalog import transient
from analytics_flusher.store._iceberg._commit import _delete_quietly, _PinnedTransaction
from analytics_flusher.store._iceberg._positions import SUMMARY_POSITIONS

__all__ = [
    "CompactionGroup",
    "CompactionPlan",
    "CompactionResult",
    "compact",
    "plan_compaction",
]

_log = structlog.get_logger("analytics_flusher")

#: Iceberg's default target file size: large enough that a day of changes is a few files,
#: small enough that one group's rows fit in memory while they are rewritten.
DEFAULT_TARGET_FILE_BYTES = 128 * 1024 * 1024
#: A partition is compacted once it has this many small files: a handful of files costs a
#: reader little, and compacting a partition on every second commit would rewrite its data
#: again and again.
DEFAULT_MIN_INPUT_FILES = 5
#: Plans tried before giving up: each lost race means the table moved twice within one
#: rewrite, which a writer committing every 15 s does not do for long.
DEFAULT_MAX_ATTEMPTS = 5

#: The prefix of the summary keys the flusher's commits record (``_positions``).
_CDC_PREFIX = "cdc."


@dataclass(frozen=True, slots=True)
class CompactionGroup:
    """Small files of one partition (``partition``: its path, ``event_day=2026-01-01``)
    rewritten as one."""

    partition: str
    inputs: tuple[DataFile, ...]

    @property
    def bytes(self) -> int:
        return sum(f.file_size_in_bytes for f in self.inputs)

    @property
    def rows(self) -> int:
        return sum(f.record_count for f in self.inputs)


@dataclass(frozen=True, slots=True)
class CompactionPlan:
    """What compacting the table's snapshot ``snapshot_id`` rewrites (no group: nothing)."""

    snapshot_id: int | None
    groups: tuple[CompactionGroup, ...]

    @property
    def inputs(self) -> tuple[DataFile, ...]:
        return tuple(f for group in self.groups for f in group.inputs)

    @property
    def partitions(self) -> tuple[str, ...]:
        return tuple(sorted({group.partition for group in self.groups}))


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What ``compact`` did to ``table``: ``snapshot_id`` of its commit (None: nothing
    committed), the partitions and files it replaced, ``files_added`` and the bytes before and
    after (the planned output files when ``dry_run``), ``attempts`` (plans made) and
    ``gave_up`` (every plan was overtaken; nothing of them remains)."""

    table: str
    snapshot_id: int | None
    partitions: tuple[str, ...] = ()
    files_removed: int = 0
    files_added: int = 0
    rows: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    attempts: int = 0
    gave_up: bool = False
    dry_run: bool = False


def plan_compaction(
    table: Table,
    *,
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
    min_input_files: int = DEFAULT_MIN_INPUT_FILES,
) -> CompactionPlan:
    """The plan of the module docstring, on ``table``'s current snapshot (as loaded)."""
    if target_file_bytes < 1:
        raise ValueError(f"target file size {target_file_bytes} is not positive")
    if min_input_files < 2:
        raise ValueError(f"min_input_files {min_input_files}: compacting needs two files")
    snapshot = table.current_snapshot()
    if snapshot is None:
        return CompactionPlan(None, ())
    spec, schema = table.spec(), table.schema()
    small: dict[str, list[DataFile]] = defaultdict(list)
    with_deletes: set[str] = set()
    for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files():
        data_file = task.file
        if data_file.spec_id != spec.spec_id:
            continue
        partition = spec.partition_to_path(data_file.partition, schema) or "(unpartitioned)"
        if task.delete_files:
            with_deletes.add(partition)
        if data_file.file_size_in_bytes < target_file_bytes:
            small[partition].append(data_file)
    groups = [
        CompactionGroup(partition, tuple(files))
        for partition, candidates in sorted(small.items())
        if partition not in with_deletes and len(candidates) >= min_input_files
        for files in _pack(candidates, target_file_bytes)
        if len(files) > 1
    ]
    return CompactionPlan(snapshot.snapshot_id, tuple(groups))


def _pack(files: Sequence[DataFile], target: int) -> list[list[DataFile]]:
    """First fit decreasing: each file, largest first, into the first group it fits."""
    groups: list[list[DataFile]] = []
    sizes: list[int] = []
    for data_file in sorted(files, key=lambda f: (-f.file_size_in_bytes, f.file_path)):
        size = data_file.file_size_in_bytes
        for i, used in enumerate(sizes):
            if used + size <= target:
                groups[i].append(data_file)
                sizes[i] += size
                break
        else:
            groups.append([data_file])
            sizes.append(size)
    return groups


def compact(
    table: Table,
    *,
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
    min_input_files: int = DEFAULT_MIN_INPUT_FILES,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    dry_run: bool = False,
    after_plan: Callable[[CompactionPlan], None] | None = None,
) -> CompactionResult:
    """Compact ``table`` (loaded again from its catalog first) as the module docstring says.

    ``dry_run``: plan only. ``after_plan`` is a test seam: called after each plan's files are
    written and before the commit is checked, so a commit made there by a writer lands
    between the plan and the commit. A catalog or warehouse outage is the runtime's
    ``RetryableError`` (``transient``).
    """
    name = ".".join(table.name())
    for attempt in range(1, max_attempts + 1):
        with transient(f"planning the compaction of {name}"):
            table.refresh()
            plan = plan_compaction(
                table, target_file_bytes=target_file_bytes, min_input_files=min_input_files
            )
        if not plan.groups:
            return CompactionResult(name, None, attempts=attempt, dry_run=dry_run)
        if dry_run:
            return _result(name, None, plan, (), attempt, dry_run=True)
        outputs = _rewrite(table, plan, name)
        if after_plan is not None:
            try:
                after_plan(plan)
            except BaseException:
                _delete_quietly(table.io, [f.file_path for f in outputs])
                raise
        committed = _commit(table, plan, outputs, name)
        if committed is not None:
            result = _result(name, committed, plan, outputs, attempt)
            _log.info(
                "table compacted",
                table=name,
                snapshot=committed,
                partitions=list(result.partitions),
                files_removed=result.files_removed,
                files_added=result.files_added,
                rows=result.rows,
                bytes_before=result.bytes_before,
                bytes_after=result.bytes_after,
                attempts=attempt,
            )
            return result
        _log.info("table moved during the compaction; planning again", table=name)
    _log.warning("compaction gave up: the table kept moving", table=name, attempts=max_attempts)
    return CompactionResult(name, None, attempts=max_attempts, gave_up=True)


def _result(
    name: str,
    snapshot_id: int | None,
    plan: CompactionPlan,
    outputs: Sequence[DataFile],
    attempts: int,
    *,
    dry_run: bool = False,
) -> CompactionResult:
    return CompactionResult(
        name,
        snapshot_id,
        partitions=plan.partitions,
        files_removed=len(plan.inputs),
        files_added=len(plan.groups) if dry_run else len(outputs),
        rows=sum(group.rows for group in plan.groups),
        bytes_before=sum(group.bytes for group in plan.groups),
        bytes_after=sum(f.file_size_in_bytes for f in outputs),
        attempts=attempts,
        dry_run=dry_run,
    )


def _rewrite(table: Table, plan: CompactionPlan, name: str) -> list[DataFile]:
    """Each group's rows read and written as one file; every file written is deleted again
    if a later group fails."""
    outputs: list[DataFile] = []
    try:
        with transient(f"rewriting the small files of {name}"):
            for group in plan.groups:
                outputs.extend(_rewrite_group(table, group, name))
    except BaseException:
        _delete_quietly(table.io, [f.file_path for f in outputs])
        raise
    return outputs


def _rewrite_group(table: Table, group: CompactionGroup, name: str) -> list[DataFile]:
    metadata = table.metadata
    scan = ArrowScan(metadata, table.io, metadata.schema(), AlwaysTrue())
    rows: pa.Table = scan.to_table([FileScanTask(f) for f in group.inputs])
    if rows.num_rows != group.rows:
        raise AnalyticsFlusherError(
            f"{name} {group.partition}: read {rows.num_rows} rows from files recording "
            f"{group.rows}; not compacted"
        )
    if rows.num_rows == 0:
        return []
    # One output file per group: pyiceberg cuts files at the target size in *in-memory* Arrow
    # bytes, which the group's rows stay below at twice their size.
    target = str(max(2 * rows.nbytes, 1))
    properties = {**metadata.properties, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: target}
    written = list(
        _dataframe_to_data_files(
            metadata.model_copy(update={"properties": properties}),
            rows,
            table.io,
            write_uuid=uuid.uuid4(),
        )
    )
    if sum(f.record_count for f in written) != group.rows:
        _delete_quietly(table.io, [f.file_path for f in written])
        raise AnalyticsFlusherError(f"{name} {group.partition}: the rewritten rows differ")
    return written


def _commit(
    table: Table, plan: CompactionPlan, outputs: Sequence[DataFile], name: str
) -> int | None:
    """The replacement committed on the table's head if the plan still holds there (the
    new snapshot's id), else None with ``outputs`` deleted."""
    try:
        with transient(f"checking the compaction of {name}"):
            table.refresh()
            head = table.current_snapshot()
            head_id = head.snapshot_id if head is not None else None
            if head_id != plan.snapshot_id and not _still_live(table, head_id, plan.inputs):
                _log.info("compacted files replaced meanwhile", table=name, head=head_id)
                _delete_quietly(table.io, [f.file_path for f in outputs])
                return None
            summary = _carried_summary(table)
            transaction = _PinnedTransaction(table, head_id)
            with transaction.update_snapshot(snapshot_properties=summary).overwrite() as rewrite:
                for data_file in plan.inputs:
                    rewrite.delete_data_file(data_file)
                for data_file in outputs:
                    rewrite.append_data_file(data_file)
    except BaseException:
        # Nothing reached the catalog: the written files are referenced by nothing.
        _delete_quietly(table.io, [f.file_path for f in outputs])
        raise
    try:
        # Not inside the cleanup above: a commit that failed otherwise (a dropped connection)
        # may have landed, and then its files are the table's.
        with transient(f"committing the compaction of {name}"):
            committed = transaction.commit_transaction()
    except CommitFailedException:
        return None  # overtaken in the catalog; the transaction deleted the written files
    snapshot = committed.current_snapshot()
    assert snapshot is not None
    return snapshot.snapshot_id


def _still_live(table: Table, head_id: int | None, inputs: Iterable[DataFile]) -> bool:
    """Every input is a data file of snapshot ``head_id``, with no delete file against it."""
    if head_id is None:
        return False
    live = {
        task.file.file_path: not task.delete_files
        for task in table.scan(snapshot_id=head_id).plan_files()
    }
    return all(live.get(f.file_path, False) for f in inputs)


def _carried_summary(table: Table) -> dict[str, str]:
    """The ``cdc.`` keys of the newest snapshot of the current ancestry recording positions."""
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        summary = snapshot.summary
        if summary is not None and summary[SUMMARY_POSITIONS] is not None:
            return {
                key: value
                for key, value in summary.additional_properties.items()
                if key.startswith(_CDC_PREFIX)
            }
    return {}
