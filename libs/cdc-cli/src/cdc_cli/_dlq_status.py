"""The status of topic-based dead letters, kept in a compacted topic (pure).

A DLQ topic is append-only, so what an operator decided about each dead letter is kept beside
it, in ``<dlq topic>.status`` (one partition, ``cleanup.policy=compact``): one record per change,
keyed by the dead letter's id (``<partition>:<offset>``), whose JSON value says the new state,
who (``user@host``), when, why (``--reason``) and under which *claim* (a random token per
command run). Every command reads the whole topic first and folds it, in log order, into the
current state of each dead letter (``StatusBook``); a dead letter without a record is ``new``.

States: ``new`` -> ``replaying`` (claimed by a replay) -> ``replayed``; ``new`` ->
``discarded``. ``replayed`` and ``discarded`` are final. The fold is a compare-and-set in log
order, so two commands racing for the same dead letter agree on the winner: a claim counts only
if the dead letter was ``new`` (or, for a take-over, still held by the claim it names in
``supersedes``); ``replayed`` counts only from the claim that holds it; ``discard`` only from
``new``. A command that lost re-writes the winning record (``restated``) so that the latest
record of each key, the one compaction keeps, is always the state that holds. When history was
compacted away, the surviving record is taken as the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from cdc_cli._dlq_records import DeadLetterRecord, DlqId

NEW, REPLAYING, REPLAYED, DISCARDED = "new", "replaying", "replayed", "discarded"
STATES = (NEW, REPLAYING, REPLAYED, DISCARDED)
FINAL = frozenset({REPLAYED, DISCARDED})

#: Status topic settings: compacted (one record per dead letter survives forever, never expired
#: by time) with every record kept uncompacted for 7 days, so a race between two commands is
#: always decided on full history (a command takes seconds; a week is far beyond any of them).
STATUS_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000),
}


def status_topic(dlq_topic: str) -> str:
    return f"{dlq_topic}.status"


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One change of a dead letter's state (a record of the status topic)."""

    id: DlqId
    state: str  # replaying, replayed or discarded
    claim: str
    by: str
    at: str  # ISO-8601, UTC, the writer's clock
    reason: str | None = None
    supersedes: str | None = None  # the stale claim a take-over replaces
    note: str | None = None
    restated: bool = False
    #: Where it was read from (not part of the value): the status topic's offset and timestamp.
    offset: int = -1
    timestamp_ms: int = 0

    def encode(self) -> tuple[bytes, bytes]:
        value: dict[str, Any] = {
            "id": str(self.id),
            "state": self.state,
            "claim": self.claim,
            "by": self.by,
            "at": self.at,
        }
        for name in ("reason", "supersedes", "note"):
            if getattr(self, name) is not None:
                value[name] = getattr(self, name)
        if self.restated:
            value["restated"] = True
        return str(self.id).encode(), orjson.dumps(value)

    @classmethod
    def decode(
        cls, key: bytes | None, value: bytes | None, offset: int = -1, timestamp_ms: int = 0
    ) -> StatusRecord | None:
        """The record, or None for one this version cannot read (or a tombstone)."""
        if key is None or value is None:
            return None
        try:
            data = orjson.loads(value)
            dead_id = DlqId.parse(key.decode())
            state = data["state"]
            if state not in (REPLAYING, REPLAYED, DISCARDED):
                return None
            return cls(
                id=dead_id,
                state=state,
                claim=str(data["claim"]),
                by=str(data.get("by", "?")),
                at=str(data.get("at", "")),
                reason=data.get("reason"),
                supersedes=data.get("supersedes"),
                note=data.get("note"),
                restated=bool(data.get("restated", False)),
                offset=offset,
                timestamp_ms=timestamp_ms,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "claim": self.claim,
            "by": self.by,
            "at": self.at,
            "reason": self.reason,
            "supersedes": self.supersedes,
            "note": self.note,
            "restated": self.restated,
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class StatusBook:
    """The state of every dead letter that has a status record, folded in log order."""

    current: dict[DlqId, StatusRecord] = field(default_factory=dict)
    history: dict[DlqId, list[StatusRecord]] = field(default_factory=dict)
    unreadable: int = 0

    def apply(self, record: StatusRecord) -> bool:
        """Fold one record in; True if it changed the state (the compare-and-set held)."""
        self.history.setdefault(record.id, []).append(record)
        now = self.current.get(record.id)
        if now is None:
            accepted = True  # the first record, or the one compaction kept
        elif now.state in FINAL:
            accepted = False
        elif record.state == REPLAYING:
            accepted = record.supersedes is not None and record.supersedes == now.claim
        elif record.state == REPLAYED:
            accepted = record.claim == now.claim
        else:  # discarded: only from new
            accepted = False
        if accepted:
            self.current[record.id] = record
        return accepted

    def apply_all(self, records: Iterable[StatusRecord | None]) -> None:
        for record in records:
            if record is None:
                self.unreadable += 1
            else:
                self.apply(record)

    def state(self, dead_id: DlqId) -> str:
        record = self.current.get(dead_id)
        return NEW if record is None else record.state

    def holds(self, dead_id: DlqId, claim: str, state: str) -> bool:
        record = self.current.get(dead_id)
        return record is not None and record.claim == claim and record.state == state


# -- selections and plans --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command works on: ids (if any) narrowed by the filters."""

    ids: tuple[DlqId, ...] = ()
    status: str | None = None
    topic: str | None = None
    code: str | None = None

    def matches(self, dead: DeadLetterRecord, book: StatusBook) -> bool:
        if self.ids and dead.id not in self.ids:
            return False
        if self.topic is not None and dead.provenance.topic != self.topic:
            return False
        if self.code is not None and dead.provenance.error_code != self.code:
            return False
        return self.status is None or book.state(dead.id) == self.status


def check_status(status: str) -> str | None:
    """``--status``: one of the states, or ``all`` (None)."""
    value = status.strip().lower()
    if value == "all":
        return None
    if value not in STATES:
        raise ValueError(f"{status!r} is not one of {', '.join(STATES)}, all")
    return value


@dataclass(frozen=True, slots=True)
class Skipped:
    """A selected dead letter a command left alone, and why."""

    id: str
    status: str | None  # None: no such dead letter
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "reason": self.reason}


@dataclass
class Plan:
    """What a replay or discard will do, before it claims anything."""

    act: list[DeadLetterRecord] = field(default_factory=list)
    #: Replay only: claimed by a replay that has not said how it ended (crashed, or running).
    in_doubt: list[tuple[DeadLetterRecord, StatusRecord]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _who(record: StatusRecord) -> str:
    return f"{record.by} at {record.at}"


def select(
    records: Sequence[DeadLetterRecord], book: StatusBook, selection: Selection
) -> tuple[list[DeadLetterRecord], list[Skipped]]:
    """The records a replay/discard selection names, in id order, and the ids not found."""
    chosen = sorted((r for r in records if selection.matches(r, book)), key=lambda r: r.id)
    found = {r.id for r in records}
    missing = [
        Skipped(str(i), None, "no such dead letter") for i in selection.ids if i not in found
    ]
    return chosen, missing


def plan_replay(
    records: Sequence[DeadLetterRecord], book: StatusBook, selection: Selection
) -> Plan:
    """Sort the selected dead letters into: to replay, in doubt, and skipped (with why).

    A source record (topic, partition, offset) is replayed at most once per DLQ topic: the
    same record dead-lettered twice (re-read after ``cdc replay``) is skipped as a copy.
    """
    chosen, missing = select(records, book, selection)
    plan = Plan(skipped=missing)
    taken: dict[tuple[str, int, int], str] = {}
    for dead in records:
        state = book.state(dead.id)
        if dead.source is not None and state in (REPLAYING, REPLAYED):
            taken.setdefault(dead.source, f"{dead.id} ({state})")
    for dead in chosen:
        state = book.state(dead.id)
        record = book.current.get(dead.id)
        if state in FINAL:
            plan.skipped.append(Skipped(str(dead.id), state, f"already {state}"))
        elif state == REPLAYING and record is not None:
            plan.in_doubt.append((dead, record))
        elif (why := dead.not_replayable()) is not None:
            plan.skipped.append(Skipped(str(dead.id), state, why))
        elif dead.source is not None and dead.source in taken:
            other = taken[dead.source]
            plan.skipped.append(
                Skipped(str(dead.id), state, f"the same source record as {other}: replayed once")
            )
        else:
            if dead.source is not None:
                taken[dead.source] = f"{dead.id} (in this replay)"
            plan.act.append(dead)
    return plan


def plan_discard(
    records: Sequence[DeadLetterRecord], book: StatusBook, selection: Selection
) -> Plan:
    chosen, missing = select(records, book, selection)
    plan = Plan(skipped=missing)
    for dead in chosen:
        state = book.state(dead.id)
        record = book.current.get(dead.id)
        if state in FINAL:
            plan.skipped.append(Skipped(str(dead.id), state, f"already {state}"))
        elif state == REPLAYING and record is not None:
            plan.skipped.append(
                Skipped(
                    str(dead.id),
                    state,
                    f"claimed by a replay ({_who(record)}) that has not finished: run "
                    "`cdc dlq replay` on it to settle it first",
                )
            )
        else:
            plan.act.append(dead)
    return plan


def restatement(record: StatusRecord) -> StatusRecord:
    """A copy of the record that holds, written by a command that lost a race for it."""
    return replace(record, restated=True, offset=-1, timestamp_ms=0)


@dataclass
class Outcome:
    """What a replay or a discard did (or, dry run, would do)."""

    execute: bool
    done: list[DeadLetterRecord] = field(default_factory=list)
    #: Replay only: dead letters an earlier, cut-off replay had produced (found in their topic
    #: by their ``__cdc.replay.from`` header), now marked replayed without producing them again.
    recovered: list[tuple[DeadLetterRecord, str]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: Claimed but not known to be produced/marked when the command stopped (error or Ctrl-C).
    failed: list[DeadLetterRecord] = field(default_factory=list)
    error: str | None = None
    #: True when the failed records may have been produced (the next replay settles them).
    in_doubt: bool = False
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``done`` lists the dead letters changed (``execute``) or that would be (dry run)."""
        return {
            "execute": self.execute,
            "done": [r.summary() for r in self.done],
            "recovered": [{**r.summary(), "found_at": where} for r, where in self.recovered],
            "skipped": [s.to_dict() for s in self.skipped],
            "failed": [r.summary() for r in self.failed],
            "error": self.error,
            "in_doubt": self.in_doubt,
            "interrupted": self.interrupted,
            "warnings": self.warnings,
        }
