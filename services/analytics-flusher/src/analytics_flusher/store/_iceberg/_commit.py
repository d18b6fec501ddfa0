"""Exactly-once appends to the changes tables: ``ExactlyOnceCommitter``.

``append(table, rows, end_offsets, generation)`` loads the table, reads the positions its
current snapshot records (``_positions``: the rule, fenced / duplicate / new per partition),
drops the rows already in the table, and commits one snapshot holding the rest and the merged
positions **only if the table's current snapshot is still the one it checked**:

- The commit carries the catalog requirement ``AssertRefSnapshotId(main == checked snapshot)``
  (none yet: the branch must not exist). ``SqlCatalog.commit_table`` validates it against the
  metadata it loads and swaps the metadata location with ``UPDATE ... WHERE metadata_location =
  <the one it loaded>``: a commit that lands in between makes it fail with
  ``CommitFailedException``. The catalog applies the commit to the metadata it loads then, not
  to the one the transaction was built on, so a commit moving no snapshot (a claim: table
  properties only) would pass that check; ``_AssertClaims`` requires the claims to be those
  the append was checked against. The check and the commit are therefore atomic.
- pyiceberg's ``Transaction.commit_transaction`` retries a ``CommitFailedException`` on its own
  (``commit.retry.num-retries``, 4 by default): it refreshes the table and calls
  ``Transaction._rebuild_snapshot_updates``, which drops every ``AssertRefSnapshotId`` and
  rebases the append on the new head, past any check made on the old one. ``_PinnedTransaction``
  overrides that method to refuse, so the first failure ends the transaction (pyiceberg then
  deletes the attempt's manifests; this class deletes its data files).
- The committer then starts over: it loads the table again and applies the rule to what the
  new head records. A zombie (a writer of an older generation) is refused there with
  ``FencedCommitError``; a member of the same generation that committed other partitions
  meanwhile is merged with (its positions are kept), and the append commits on top of it.

So a snapshot's positions were always checked against the snapshot it replaces. Positions are
read from the newest snapshot of the current branch's ancestry that records them, so a snapshot
made by another tool (a compaction) on top does not hide them; a tool that expires every
snapshot recording them would (table maintenance is not part of this module yet).
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import structlog
from consumer_runtime import RetryableError, TopicPartition
from pydantic import Field
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io import FileIO
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import ancestors_of
from pyiceberg.table.update import AssertRefSnapshotId, ValidatableTableRequirement

from analytics_flusher.errors import FencedCommitError
from analytics_flusher.store._iceberg._catalog import transient
from analytics_flusher.store._iceberg._positions import (
    CLAIM_PREFIX,
    SUMMARY_GENERATION,
    SUMMARY_POSITIONS,
    Position,
    claim_key,
    decode_claims,
    decode_positions,
    encode_positions,
    plan_commit,
)

__all__ = ["CommitResult", "ExactlyOnceCommitter", "recorded_positions"]

_log = structlog.get_logger("analytics_flusher")


class _Overtaken(CommitFailedException):
    """Another commit landed on the table between the check and this commit."""


class _AssertClaims(ValidatableTableRequirement):
    """The table's claims (``cdc.owner.*`` properties) are still those the commit was checked
    against. A claim is a commit of properties only, which moves no snapshot, and the catalogs
    apply a commit to the metadata they load at commit time, not to the one it was built on:
    without this, a claim landing between a zombie's check and its commit would not stop it.
    Validated in process by the SQL and Glue catalogs (``Catalog._update_and_stage_table``)."""

    type: Literal["assert-cdc-claims"] = Field(default="assert-cdc-claims")
    claims: dict[str, str] = Field(default_factory=dict)

    def validate(self, base_metadata: TableMetadata | None) -> None:  # type: ignore[override]
        if base_metadata is None:
            raise CommitFailedException("Requirement failed: current table metadata is missing")
        now = _claim_properties(base_metadata.properties)
        if now != self.claims:
            raise CommitFailedException("Requirement failed: the partitions' claims changed")


def _claim_properties(properties: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in properties.items() if k.startswith(CLAIM_PREFIX)}


class _PinnedTransaction(Transaction):
    """A pyiceberg transaction committed once, on the snapshot and the claims it was built on,
    or not at all."""

    def __init__(self, table: Table, base_snapshot_id: int | None) -> None:
        super().__init__(table)
        self._base_snapshot_id = base_snapshot_id
        self._claims = _claim_properties(table.properties)

    def commit_transaction(self) -> Table:
        # The pin, whatever the producers staged: main must still be the checked snapshot, and
        # the claims those it was checked against.
        pin = AssertRefSnapshotId.model_validate(
            {"snapshot-id": self._base_snapshot_id, "ref": MAIN_BRANCH}
        )
        others = (
            r for r in self._requirements if not isinstance(r, AssertRefSnapshotId | _AssertClaims)
        )
        self._requirements = (*others, pin, _AssertClaims(claims=self._claims))  # type: ignore[arg-type]
        data_files = [
            data_file.file_path
            for producer in self._snapshot_producers
            for data_file in producer._added_data_files
        ]
        try:
            return super().commit_transaction()
        except CommitFailedException:
            # The commit did not land (the catalog refused it): nothing refers to these files.
            _delete_quietly(self._table.io, data_files)
            raise

    def _rebuild_snapshot_updates(self) -> None:
        """Called by ``commit_transaction``'s retry loop to rebase the append on the table's
        new head: refused, the append was checked against the old one."""
        name = ".".join(self._table.name())
        raise _Overtaken(
            f"{name}: the table moved past snapshot {self._base_snapshot_id} between the check "
            "and the commit"
        )


def _delete_quietly(io: FileIO, paths: list[str]) -> None:
    for path in paths:
        try:
            io.delete(path)
        except OSError as exc:  # an orphan file, read by nothing; table maintenance removes it
            _log.warning("could not delete a data file of a refused commit", path=path, error=exc)


def recorded_positions(table: Table) -> tuple[int | None, dict[TopicPartition, Position]]:
    """The table's current snapshot id (None: no snapshot) and the positions recorded by the
    newest snapshot of its ancestry that records them (empty when none does)."""
    current = table.current_snapshot()
    for snapshot in ancestors_of(current, table.metadata):
        text = snapshot.summary[SUMMARY_POSITIONS] if snapshot.summary is not None else None
        if text is not None:
            return (current.snapshot_id if current else None), decode_positions(text)
    return (current.snapshot_id if current else None), {}


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What ``append`` did: ``snapshot_id`` of its commit (None: nothing was committed, the
    append was a duplicate), ``written`` rows appended, ``already_recorded`` rows dropped
    because their offsets were in the table already."""

    snapshot_id: int | None
    written: int
    already_recorded: int

    @property
    def duplicate(self) -> bool:
        return self.snapshot_id is None


class ExactlyOnceCommitter:
    """Appends to the changes tables of one namespace, fenced and deduplicated by the positions
    their snapshots record (see the module docstring and ``_positions``).

    ``max_attempts`` bounds the commits that lose a race to another member's commit (each is
    checked again and tried again after a short, growing, jittered pause); past it the append
    raises ``RetryableError`` and the runtime retries the batch.
    """

    def __init__(
        self,
        catalog: Catalog,
        namespace: str,
        *,
        max_attempts: int = 10,
        backoff_s: float = 0.05,
    ) -> None:
        self.catalog = catalog
        self.namespace = namespace
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s

    def load(self, table: str) -> Table:
        """The table as the catalog holds it now."""
        return self._load(table)

    def _load(self, table: str) -> Table:
        with transient(f"loading {self.namespace}.{table}"):
            return self.catalog.load_table((self.namespace, table))

    def positions(self, table: str) -> dict[TopicPartition, Position]:
        """Every partition's position (next offset, generation) as the table records it now:
        where a writer resumes on assignment."""
        return recorded_positions(self._load(table))[1]

    def claim(
        self, table: str, partitions: Collection[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, Position]]:
        """Claim ``partitions`` of ``table`` for this writer (on assignment; ``_positions``,
        "Generations are claims"): one commit of the table's properties raising each claim to
        one above both the claim and the generation recorded for the partition. Returns the
        generations claimed and every partition's position as the claim's snapshot records it
        (from then on only this writer can move them). Retried from the start when another
        commit lands first, ``RetryableError`` past ``max_attempts``."""
        wanted = sorted(set(partitions))
        name = f"{self.namespace}.{table}"
        if not wanted:
            return {}, self.positions(table)
        for attempt in range(1, self.max_attempts + 1):
            loaded = self._load(table)
            base, recorded = recorded_positions(loaded)
            claims = decode_claims(loaded.properties)
            generations = {
                tp: 1 + max(claims.get(tp, 0), recorded[tp].generation if tp in recorded else 0)
                for tp in wanted
            }
            transaction = _PinnedTransaction(loaded, base)
            try:
                with transient(f"claiming partitions of {name}"):
                    transaction.set_properties(
                        {claim_key(tp): str(g) for tp, g in generations.items()}
                    )
                    transaction.commit_transaction()
            except CommitFailedException as exc:
                _log.info("table moved during a claim; claiming again", table=name, error=exc)
                time.sleep(self.backoff_s * attempt * (1 + random.random()))
                continue
            _log.info(
                "claimed partitions",
                table=name,
                generations={f"{tp.topic}[{tp.partition}]": g for tp, g in generations.items()},
            )
            return generations, recorded
        raise RetryableError(
            f"{name}: other commits kept landing first ({self.max_attempts} attempts)"
        )

    def append(
        self,
        table: str,
        rows: pa.Table,
        end_offsets: Mapping[TopicPartition, int],
        generation: int | Mapping[TopicPartition, int],
    ) -> CommitResult:
        """Append ``rows`` (of one topic: ``kafka_partition`` / ``kafka_offset`` say where each
        comes from) covering, per partition, the records before ``end_offsets[p]``, written by
        a writer of generation ``generation`` (the claims ``claim`` returned, per partition; one
        number for all of them is taken as is, for tests and tools).

        ``FencedCommitError`` if a newer generation has written one of the partitions; a
        duplicate (everything recorded already) commits nothing; ``ValueError`` if ``rows`` hold
        a partition the append does not cover or an offset at or past its end.
        """
        topics = {tp.topic for tp in end_offsets}
        if len(topics) > 1:
            raise ValueError(f"an append covers one topic, not {sorted(topics)}")
        _check_rows(rows, end_offsets)
        name = f"{self.namespace}.{table}"
        for attempt in range(1, self.max_attempts + 1):
            loaded = self._load(table)
            base, recorded = recorded_positions(loaded)
            plan = plan_commit(recorded, end_offsets, generation, decode_claims(loaded.properties))
            if plan.fenced:
                raise _fenced(name, plan.fenced, generation)
            if plan.duplicate:
                _log.info("append already recorded; skipped", table=name, rows=rows.num_rows)
                return CommitResult(None, 0, rows.num_rows)
            kept = _drop_recorded(rows, plan.keep_from)
            summary = {
                SUMMARY_POSITIONS: encode_positions(plan.positions),
                SUMMARY_GENERATION: str(
                    generation if isinstance(generation, int) else max(generation.values())
                ),
            }
            transaction = _PinnedTransaction(loaded, base)
            try:
                with transient(f"appending to {name}"):
                    transaction.append(kept, snapshot_properties=summary)
                    committed = transaction.commit_transaction()
            except CommitFailedException as exc:
                _log.info("table moved during the commit; checking again", table=name, error=exc)
                time.sleep(self.backoff_s * attempt * (1 + random.random()))
                continue
            snapshot = committed.current_snapshot()
            assert snapshot is not None
            return CommitResult(snapshot.snapshot_id, kept.num_rows, rows.num_rows - kept.num_rows)
        raise RetryableError(
            f"{name}: other commits kept landing first ({self.max_attempts} attempts)"
        )


def _fenced(
    name: str,
    fenced: Mapping[TopicPartition, Position],
    generation: int | Mapping[TopicPartition, int],
) -> FencedCommitError:
    mine = {tp: generation if isinstance(generation, int) else generation[tp] for tp in fenced}
    described = ", ".join(
        f"{tp} (this writer's generation {mine[tp]}; next offset {p.offset}, "
        f"generation {p.generation})"
        for tp, p in sorted(fenced.items())
    )
    return FencedCommitError(
        f"{name}: not written: a writer of a newer generation claimed or has written "
        f"{described}; this member missed a rebalance",
        {(tp.topic, tp.partition): (p.offset, p.generation) for tp, p in fenced.items()},
    )


def _check_rows(rows: pa.Table, end_offsets: Mapping[TopicPartition, int]) -> None:
    """Every row belongs to a covered partition, below its end offset."""
    ends = {tp.partition: end for tp, end in end_offsets.items()}
    partitions = rows.column("kafka_partition")
    for partition in pc.unique(partitions).to_pylist():
        if partition not in ends:
            raise ValueError(f"rows of partition {partition}, which the append does not cover")
        offsets = rows.column("kafka_offset").filter(pc.equal(partitions, partition))
        highest = pc.max(offsets).as_py()
        if highest is not None and highest >= ends[partition]:
            raise ValueError(
                f"a row of partition {partition} at offset {highest}, "
                f"at or past the append's end offset {ends[partition]}"
            )


def _drop_recorded(rows: pa.Table, keep_from: Mapping[TopicPartition, int]) -> pa.Table:
    """``rows`` without those at offsets the table records already."""
    recorded = None
    partitions, offsets = rows.column("kafka_partition"), rows.column("kafka_offset")
    for tp, first in keep_from.items():
        below = pc.and_(pc.equal(partitions, tp.partition), pc.less(offsets, first))
        recorded = below if recorded is None else pc.or_(recorded, below)
    return rows if recorded is None else rows.filter(pc.invert(recorded))
