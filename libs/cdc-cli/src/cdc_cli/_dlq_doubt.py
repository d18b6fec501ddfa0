"""Dead letters in doubt: a replay cut off between its claim and its outcome (``_dlq_topic``).

A dead letter left ``replaying`` may or may not have been produced again. The next replay reads
its original topic from shortly before the claim and looks for a record whose
``__cdc.replay.from`` names it (``find_replayed``). Found: it is marked ``replayed`` without being
produced again. Not found: it is replayed anew once the claim is older than the take-over delay
(``--takeover-after``, 5 minutes by default: a running replay holds a claim for seconds), and
left alone before that, since the claimant may still be at work (``triage``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from itertools import groupby

from consumer_runtime import KafkaAdmin

from cdc_cli._dlq_records import REPLAY_FROM, DeadLetterRecord, header_value, replay_reference
from cdc_cli._dlq_status import REPLAYING, Outcome, Skipped, StatusRecord

#: How long a claim without an outcome is left to its claimant before another replay takes it
#: over. A running replay holds a claim for one produce (the publisher gives up after 10 s), so
#: five minutes is long for a live one; a stalled one (SIGSTOP, a suspended laptop) that wakes
#: after a take-over would produce a second copy, hence not shorter.
TAKEOVER_AFTER_S = 300.0
#: An in-doubt record is looked for from this long before its claim's timestamp: the claim is
#: written before the produce, but clocks of two machines may differ.
_SCAN_BEFORE_CLAIM_MS = 5 * 60 * 1000

InDoubt = Sequence[tuple[DeadLetterRecord, StatusRecord]]


def find_replayed(admin: KafkaAdmin, in_doubt: InDoubt) -> dict[str, str]:
    """``__cdc.replay.from`` -> where it was found, over the original topics of ``in_doubt``,
    each read from shortly before its earliest claim."""
    found: dict[str, str] = {}
    ordered = sorted(in_doubt, key=lambda item: item[0].provenance.topic or "")
    for topic, group in groupby(ordered, key=lambda item: item[0].provenance.topic or ""):
        items = list(group)
        since = min(_claimed_at_ms(claim) for _, claim in items) - _SCAN_BEFORE_CLAIM_MS
        found.update(_replayed_since(admin, topic, since))
    return found


def triage(
    in_doubt: InDoubt,
    found: dict[str, str],
    dlq_topic: str,
    takeover_after_s: float,
    outcome: Outcome,
) -> tuple[list[tuple[DeadLetterRecord, str]], list[tuple[DeadLetterRecord, str | None]]]:
    """``(settled, takeovers)``: the dead letters found (with where) and those whose claim is old
    enough to take over (with the claim they supersede); the rest go to ``outcome.skipped``."""
    now_ms = time.time() * 1000
    settled: list[tuple[DeadLetterRecord, str]] = []
    takeovers: list[tuple[DeadLetterRecord, str | None]] = []
    for dead, claim in in_doubt:
        where = found.get(replay_reference(dlq_topic, dead.id))
        age_s = (now_ms - _claimed_at_ms(claim)) / 1000
        if where is not None:
            settled.append((dead, where))
        elif age_s >= takeover_after_s:
            takeovers.append((dead, claim.claim))
        else:
            outcome.skipped.append(
                Skipped(
                    str(dead.id),
                    REPLAYING,
                    f"claimed {age_s:.0f}s ago by a replay ({claim.by}) and not in "
                    f"{dead.provenance.topic} yet: it may still be running; another "
                    f"replay takes it over {takeover_after_s:.0f}s after the claim",
                )
            )
    return settled, takeovers


def _replayed_since(admin: KafkaAdmin, topic: str, since_ms: float) -> dict[str, str]:
    """``__cdc.replay.from`` -> ``topic[partition]@offset`` of the records of ``topic``
    from ``since_ms`` on (the first of each)."""
    if topic not in admin.topics():
        return {}
    partitions = admin.partitions([topic])
    starts = admin.offsets_for_times(partitions, int(max(0, since_ms)))
    out: dict[str, str] = {}
    wanted = {tp: o for tp, o in starts.items() if o is not None}
    for message in admin.read(wanted):
        ref = header_value(message.headers() or [], REPLAY_FROM)
        if ref is not None:
            where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
            out.setdefault(ref.decode("utf-8", errors="replace"), where)
    return out


def _claimed_at_ms(claim: StatusRecord) -> float:
    """When a claim was written: its record's timestamp, else its ``at``."""
    if claim.timestamp_ms > 0:
        return float(claim.timestamp_ms)
    try:
        return datetime.fromisoformat(claim.at).timestamp() * 1000
    except ValueError:
        return 0.0
