"""Offset reset plans: what ``--to`` means and where each partition would move (pure logic).

A plan row holds a partition's current offsets (the group's committed offset in Kafka and,
for a sink-managed service, the offset stored in its database), its range (first offset, end
offset) and the new offset. Targets: ``earliest``, ``latest``, an ISO-8601 time (the first
record at or after it, by record timestamp; the end when there is none) or an absolute offset
(clamped to the partition's range, as ``kafka-consumer-groups`` does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from consumer_runtime import TopicPartition, Watermarks


class TargetKind(StrEnum):
    EARLIEST = "earliest"
    LATEST = "latest"
    TIME = "time"
    OFFSET = "offset"


@dataclass(frozen=True)
class ResetTarget:
    kind: TargetKind
    timestamp_ms: int | None = None
    offset: int | None = None

    @classmethod
    def parse(cls, text: str) -> ResetTarget:
        """``earliest``, ``latest``, a non-negative offset, or an ISO-8601 time."""
        value = text.strip()
        lowered = value.lower()
        if lowered in ("earliest", "beginning"):
            return cls(TargetKind.EARLIEST)
        if lowered in ("latest", "end"):
            return cls(TargetKind.LATEST)
        if re.fullmatch(r"\d+", value):
            return cls(TargetKind.OFFSET, offset=int(value))
        return cls(TargetKind.TIME, timestamp_ms=to_millis(parse_time(value)))

    def describe(self) -> str:
        if self.kind is TargetKind.TIME and self.timestamp_ms is not None:
            return f"time {format_millis(self.timestamp_ms)}"
        if self.kind is TargetKind.OFFSET:
            return f"offset {self.offset}"
        return str(self.kind)


def parse_time(text: str) -> datetime:
    """An ISO-8601 date or time; without a zone it is UTC (``2026-11-21``,
    ``2026-11-21T12:00:00Z``, ``2026-11-21 12:00:00+01:00``)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not earliest, latest, an offset or an ISO-8601 time "
            "(e.g. 2026-11-21T12:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_millis(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded up: record timestamps are whole milliseconds, and
    the first record "at or after" 12:00:00.0005 is one at .001 or later. Exact arithmetic
    (no float rounding of ``timestamp()``)."""
    return -((_EPOCH - moment) // _MS)


def format_millis(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PlanRow:
    partition: TopicPartition
    kafka: int | None  # the group's committed offset in Kafka (None: none committed)
    sink: int | None  # the offset stored in the sink database (None: none, or no database)
    low: int
    high: int
    new: int
    note: str = ""

    @property
    def changes(self) -> bool:
        return self.kafka != self.new or (self.sink is not None and self.sink != self.new)

    def to_dict(self, with_sink: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "topic": self.partition.topic,
            "partition": self.partition.partition,
            "current": self.kafka,
        }
        if with_sink:
            out["sink_current"] = self.sink
        out.update({"new": self.new, "first": self.low, "end": self.high})
        if self.note:
            out["note"] = self.note
        return out


def build_plan(
    partitions: Sequence[TopicPartition],
    target: ResetTarget,
    marks: Mapping[TopicPartition, Watermarks],
    kafka: Mapping[TopicPartition, int],
    sink: Mapping[TopicPartition, int] | None = None,
    times: Mapping[TopicPartition, int | None] | None = None,
) -> list[PlanRow]:
    """One row per partition. ``times`` (for a TIME target): the first offset at or after the
    time per partition, ``None`` where no record is that recent."""
    rows = []
    for tp in sorted(partitions):
        mark = marks[tp]
        note = ""
        if target.kind is TargetKind.EARLIEST:
            new = mark.low
        elif target.kind is TargetKind.LATEST:
            new = mark.high
        elif target.kind is TargetKind.TIME:
            found = (times or {}).get(tp)
            if found is None:
                new, note = mark.high, "none at or after the time: end"
            else:
                new = found
        else:
            wanted = int(target.offset or 0)
            new = min(max(wanted, mark.low), mark.high)
            if wanted < mark.low:
                note = f"{wanted} is before the first offset: first"
            elif wanted > mark.high:
                note = f"{wanted} is past the end: end"
        rows.append(
            PlanRow(
                partition=tp,
                kafka=kafka.get(tp),
                sink=None if sink is None else sink.get(tp),
                low=mark.low,
                high=mark.high,
                new=new,
                note=note,
            )
        )
    return rows
