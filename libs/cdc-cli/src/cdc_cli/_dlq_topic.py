"""A service's DLQ topic and its status topic: read, replay, discard (the Kafka side of
``cdc dlq`` for services that keep their dead letters only in ``<service>.dlq``).

Reading goes through ``consumer_runtime.KafkaAdmin.read`` (no consumer group, nothing
committed), writing through ``consumer_runtime.create_publisher`` (idempotent, ``acks=all``,
the Java client's partitioner; ``send`` returns once the broker acknowledged every record).

**Replay, step by step** (chunks of ``CHUNK`` dead letters, in id order):

1. claim: write ``replaying`` (this run's claim token) for each dead letter, wait for the ack;
2. read the status topic back and fold it: only the dead letters this claim holds go on (a
   concurrent replay or discard that claimed one first keeps it; see ``_dlq_status``);
3. produce their original records to their original topics, with the ``__cdc.replay.*``
   headers (``__cdc.replay.from``: which dead letter, ``__cdc.replay.claim``: this claim), and
   wait for the acks;
4. write ``replayed`` for them.

A dead letter left ``replaying`` (the run was cut off between 1 and 4) is *in doubt*. The next
replay settles it (``_dlq_doubt``): found in its original topic, it is marked ``replayed``
without being produced again; not found, it is replayed anew once the claim is older than the
take-over delay, and left alone before that.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from itertools import groupby
from typing import TypeVar

from consumer_runtime import (
    ConsumerRuntimeError,
    KafkaAdmin,
    OutgoingRecord,
    Publisher,
    TopicPartition,
)

from cdc_cli._dlq_doubt import TAKEOVER_AFTER_S, find_replayed, triage
from cdc_cli._dlq_records import DeadLetterRecord, DlqId, dead_letter_of, replay_record
from cdc_cli._dlq_status import (
    DISCARDED,
    REPLAYED,
    REPLAYING,
    STATUS_TOPIC_CONFIG,
    Outcome,
    Selection,
    Skipped,
    StatusBook,
    StatusRecord,
    now_iso,
    plan_discard,
    plan_replay,
    restatement,
    status_topic,
)

#: Dead letters claimed, produced and marked together: one status write, one produce per
#: original topic and one more status write per chunk; a cut-off run leaves at most this many
#: in doubt.
CHUNK = 100


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TopicDlq:
    """One DLQ topic (``dlq_topic``) and its status topic, on one cluster."""

    def __init__(
        self,
        admin: KafkaAdmin,
        dlq_topic: str,
        publisher: Callable[[], Publisher],
        changed_by: str,
        *,
        claim: str | None = None,
    ) -> None:
        self.admin = admin
        self.dlq_topic = dlq_topic
        self.status_topic = status_topic(dlq_topic)
        self.changed_by = changed_by
        self.claim = claim or uuid.uuid4().hex
        self.book = StatusBook()
        self._new_publisher = publisher
        self._publisher: Publisher | None = None
        self._status_next: dict[TopicPartition, int] = {}

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    # -- reading ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.dlq_topic in self.admin.topics()

    def records(self) -> list[DeadLetterRecord]:
        """Every dead letter of the topic (none if the topic does not exist yet)."""
        if not self.exists():
            return []
        starts = dict.fromkeys(self.admin.partitions([self.dlq_topic]), 0)
        return [dead_letter_of(m) for m in self.admin.read(starts)]

    def record(self, dead_id: DlqId) -> DeadLetterRecord | None:
        if not self.exists():
            return None
        tp = TopicPartition(self.dlq_topic, dead_id.partition)
        if tp not in self.admin.partitions([self.dlq_topic]):
            return None
        found = self.admin.read({tp: dead_id.offset}, max_per_partition=1)
        if not found or found[0].offset() != dead_id.offset:
            return None
        return dead_letter_of(found[0])

    def load_statuses(self) -> StatusBook:
        """Fold the status records written since the last call (all of them the first time)."""
        if self.status_topic not in self.admin.topics():
            return self.book
        partitions = self.admin.partitions([self.status_topic])
        starts = {tp: self._status_next.get(tp, 0) for tp in partitions}
        for message in self.admin.read(starts):
            tp = TopicPartition(message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            self._status_next[tp] = offset + 1
            self.book.apply_all(
                [
                    StatusRecord.decode(
                        message.key(), message.value(), offset, message.timestamp()[1]
                    )
                ]
            )
        return self.book

    # -- writing ---------------------------------------------------------------------------

    def _publisher_(self) -> Publisher:
        if self._publisher is None:
            self._publisher = self._new_publisher()
        return self._publisher

    def _ensure_status_topic(self) -> None:
        self.admin.create_topic(self.status_topic, partitions=1, config=STATUS_TOPIC_CONFIG)

    def _write(self, records: Sequence[StatusRecord]) -> None:
        """Write status records and wait for the broker's acknowledgement."""
        if records:
            out = [OutgoingRecord(*r.encode()) for r in records]
            self._publisher_().send(self.status_topic, out)

    def _status(
        self,
        dead_id: DlqId,
        state: str,
        *,
        reason: str | None = None,
        supersedes: str | None = None,
    ) -> StatusRecord:
        return StatusRecord(
            dead_id,
            state,
            self.claim,
            self.changed_by,
            now_iso(),
            reason=reason,
            supersedes=supersedes,
        )

    def _restate_losers(
        self, lost: Sequence[DeadLetterRecord], outcome: Outcome, verb: str
    ) -> None:
        """Skip the dead letters another command took first; re-write its record for each so
        the latest record of the key (what compaction keeps) is the one that holds."""
        holding = [self.book.current[d.id] for d in lost if d.id in self.book.current]
        for dead in lost:
            now = self.book.current.get(dead.id)
            who = "?" if now is None else f"{now.state} by {now.by} at {now.at}"
            outcome.skipped.append(
                Skipped(
                    str(dead.id),
                    self.book.state(dead.id),
                    f"taken by another command meanwhile ({who}): not {verb}",
                )
            )
        try:
            self._write([restatement(r) for r in holding])
        except ConsumerRuntimeError as exc:
            outcome.warnings.append(f"could not re-write the status of {len(holding)}: {exc}")

    # -- replay ----------------------------------------------------------------------------

    def replay(
        self,
        selection: Selection,
        *,
        execute: bool,
        takeover_after_s: float = TAKEOVER_AFTER_S,
        chunk: int = CHUNK,
    ) -> Outcome:
        records = self.records()
        self.load_statuses()
        plan = plan_replay(records, self.book, selection)
        outcome = Outcome(execute=execute, skipped=list(plan.skipped))
        if not execute:
            outcome.done = plan.act
            for dead, claim in plan.in_doubt:
                outcome.skipped.append(
                    Skipped(
                        str(dead.id),
                        REPLAYING,
                        f"in doubt: claimed by a replay ({claim.by} at {claim.at}) that has not "
                        f"said how it ended; --execute looks for it in {dead.provenance.topic}",
                    )
                )
            return outcome
        if not plan.act and not plan.in_doubt:
            return outcome
        self._ensure_status_topic()
        in_flight: list[DeadLetterRecord] = []
        try:
            work = self._settle(plan.in_doubt, outcome, takeover_after_s)
            work += [(dead, None) for dead in plan.act]
            work.sort(key=lambda item: item[0].id)
            for part in _chunks(work, chunk):
                in_flight = [dead for dead, _ in part]
                if not self._replay_chunk(part, outcome):
                    break
                in_flight = []
        except KeyboardInterrupt:
            outcome.interrupted = True
            outcome.failed = in_flight
            outcome.in_doubt = bool(in_flight)
            outcome.error = "interrupted"
        except ConsumerRuntimeError as exc:  # reading the statuses back, settling
            outcome.failed = in_flight
            outcome.in_doubt = bool(in_flight)
            outcome.error = str(exc)
        return outcome

    def _replay_chunk(
        self, part: Sequence[tuple[DeadLetterRecord, str | None]], outcome: Outcome
    ) -> bool:
        """Claim, produce and mark one chunk; False (``outcome.failed`` set) to stop."""
        deads = [dead for dead, _ in part]
        claims = [self._status(dead.id, REPLAYING, supersedes=old) for dead, old in part]
        try:
            self._write(claims)
        except ConsumerRuntimeError as exc:
            outcome.failed, outcome.in_doubt = deads, False
            outcome.error = f"the claims were not acknowledged: {exc}"
            return False
        self.load_statuses()
        won = [d for d in deads if self.book.holds(d.id, self.claim, REPLAYING)]
        lost = [d for d in deads if not self.book.holds(d.id, self.claim, REPLAYING)]
        if lost:
            self._restate_losers(lost, outcome, "replayed")
        by_topic = groupby(sorted(won, key=lambda d: (d.provenance.topic or "", d.id)), _topic)
        groups = [(topic, list(items)) for topic, items in by_topic]
        for index, (topic, items) in enumerate(groups):
            out = [replay_record(d, self.dlq_topic, self.claim) for d in items]
            try:
                self._publisher_().send(topic, out)
            except ConsumerRuntimeError as exc:
                outcome.failed = [d for _, rest in groups[index:] for d in rest]
                outcome.in_doubt = True
                outcome.error = f"producing to {topic!r} failed: {exc}"
                return False
            try:
                self._write([self._status(d.id, REPLAYED) for d in items])
            except ConsumerRuntimeError as exc:
                outcome.failed = [d for _, rest in groups[index:] for d in rest]
                outcome.in_doubt = True
                outcome.error = (
                    f"{len(items)} records were produced to {topic!r} but their status was not "
                    f"acknowledged: {exc}"
                )
                return False
            outcome.done += items
        return True

    def _settle(
        self,
        in_doubt: Sequence[tuple[DeadLetterRecord, StatusRecord]],
        outcome: Outcome,
        takeover_after_s: float,
    ) -> list[tuple[DeadLetterRecord, str | None]]:
        """Settle dead letters left ``replaying``: those found in their topic are marked
        replayed; those not found whose claim is old enough are returned for a take-over."""
        if not in_doubt:
            return []
        found = find_replayed(self.admin, in_doubt)
        settled, takeovers = triage(in_doubt, found, self.dlq_topic, takeover_after_s, outcome)
        if settled:
            holders = {dead.id: self.book.current[dead.id].claim for dead, _ in settled}
            marks = [
                StatusRecord(
                    dead.id,
                    REPLAYED,
                    holders[dead.id],
                    self.changed_by,
                    now_iso(),
                    note=f"settled: found in {where}",
                )
                for dead, where in settled
            ]
            self._write(marks)
            self.load_statuses()
            outcome.recovered += [
                (dead, where) for dead, where in settled if self.book.state(dead.id) == REPLAYED
            ]
        return takeovers

    # -- discard ---------------------------------------------------------------------------

    def discard(self, selection: Selection, *, execute: bool, reason: str | None) -> Outcome:
        records = self.records()
        self.load_statuses()
        plan = plan_discard(records, self.book, selection)
        outcome = Outcome(execute=execute, skipped=list(plan.skipped))
        if not execute:
            outcome.done = plan.act
            return outcome
        if not plan.act:
            return outcome
        self._ensure_status_topic()
        for part in _chunks(plan.act, CHUNK):
            try:
                self._write([self._status(d.id, DISCARDED, reason=reason) for d in part])
            except ConsumerRuntimeError as exc:
                outcome.failed = list(part)
                outcome.error = f"the status was not acknowledged: {exc}"
                return outcome
            self.load_statuses()
            won = [d for d in part if self.book.holds(d.id, self.claim, DISCARDED)]
            lost = [d for d in part if not self.book.holds(d.id, self.claim, DISCARDED)]
            if lost:
                self._restate_losers(lost, outcome, "discarded")
            outcome.done += won
        return outcome


def _topic(dead: DeadLetterRecord) -> str:
    return dead.provenance.topic or ""
