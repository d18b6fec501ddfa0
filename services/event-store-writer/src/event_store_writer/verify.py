"""Verification of the event store against ground truth (``cdc dev verify``).

Named by the service's descriptor (``service.SERVICE.verifier``). Three sources of truth, three
kinds of check:

- **the broker**: every change and tombstone record in the CDC topics (decoded with the
  writer's own decoder, so a Debezium re-emit counts once) is stored exactly once, and every
  record that cannot be parsed is in ``dead_letter_queue`` once;
- **the source database**: the state of every row rebuilt from its events equals the row;
- **the simulator's log**: every acknowledged user event is in ``user_events`` once.

The integration tests use the same functions. Needs the ``verify`` extra (the dev stack).
"""

from __future__ import annotations

from typing import Any

import orjson
from cdc_events import ParseError
from consumer_runtime import InMemoryMessage
from devstack import SHOP_TABLES, USER_EVENTS_TOPIC, read_topic
from devstack.verify import Check, VerifyContext, diff_maps
from read_models.events import StoredEvent, normalise_row, rebuild_state
from sink_kit.postgres import make_engine

from event_store_writer.domain import ChangeRow, EventDecoder
from event_store_writer.store import (
    Engine,
    SourceConnection,
    read_histories,
    source_rows,
    stored_event_kinds,
    user_events_and_dead_letters,
)

SERVICE = "event-store-writer"
SHOP_TOPICS = [f"dbserver1.public.{t}" for t in SHOP_TABLES]
Key = tuple[str, str]  # (table, canonical key JSON)


def _key(table: str, key: Any) -> Key:
    return table, orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()


def store_state(engine: Engine) -> dict[Key, dict[str, Any]]:
    """Every shop row rebuilt from the store, as ``cdc state`` rebuilds it now: its events in
    version order, its table's highest sweep applied (rows whose last event is a delete, and
    rows swept, are absent)."""
    histories: dict[Key, list[StoredEvent]] = {}
    sweeps, events = read_histories(engine, SHOP_TABLES)
    for table, key, event in events:
        histories.setdefault(_key(table, key), []).append(event)
    out = {}
    for key, events_of_row in histories.items():
        row = rebuild_state(events_of_row, sweeps.get(key[0]))
        if row is not None:
            out[key] = row
    return out


def source_state(conn: SourceConnection) -> dict[Key, dict[str, Any]]:
    """Every shop row of the source database, in the store's normalised form."""
    out = {}
    for table, values in source_rows(conn, SHOP_TABLES):
        row = normalise_row(values)
        out[_key(table, {"id": row["id"]})] = row
    return out


def state_diff(store: dict[Key, Any], source: dict[Key, Any], limit: int = 8) -> str:
    """A readable difference ('' when equal)."""
    lines = []
    for key in sorted(source.keys() - store.keys())[:limit]:
        lines.append(f"missing in the store: {key} {source[key]}")
    for key in sorted(store.keys() - source.keys())[:limit]:
        lines.append(f"not in the source:    {key} {store[key]}")
    for key in sorted(k for k in source.keys() & store.keys() if source[k] != store[k])[:limit]:
        lines.append(f"differs: {key}\n  store:  {store[key]}\n  source: {source[key]}")
    return "\n".join(lines)


# devstack.badinput marks the records it injects; ``store_refused`` ones parse, but the store
# cannot hold them (a NUL in their text): they belong in the DLQ table, not in cdc_events.
_INJECTED_KIND = "cdc.injected"
_STORE_REFUSED = b"store_refused"


def expected_ids(
    bootstrap: str, topics: list[str] | None = None
) -> tuple[set[str], set[str], set[tuple[str, int, int]]]:
    """(change ids, tombstone ids, positions of records that belong in the DLQ table: the
    unparseable ones and those injected as refused by the store) in the topics."""
    decode = EventDecoder()
    changes: set[str] = set()
    tombstones: set[str] = set()
    malformed: set[tuple[str, int, int]] = set()
    records = read_topic(bootstrap, topics or SHOP_TOPICS, idle=1.5, timeout=120)
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        if (_INJECTED_KIND, _STORE_REFUSED) in r.headers:
            malformed.add((r.topic, r.partition, r.offset))
            continue
        try:
            row = decode(
                InMemoryMessage(
                    r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp_ms
                )
            )
        except ParseError:
            malformed.add((r.topic, r.partition, r.offset))
            continue
        if isinstance(row, ChangeRow):
            (tombstones if row.values[2] == "tombstone" else changes).add(row.event_id)
    return changes, tombstones, malformed


def stored_ids(engine: Engine) -> tuple[list[str], list[str]]:
    """(change ids, tombstone ids) of the shop tables as stored, with repeats if any."""
    rows = stored_event_kinds(engine, SHOP_TABLES)
    return [i for i, k in rows if k == "change"], [i for i, k in rows if k == "tombstone"]


def _ids_check(name: str, want: set[str], have: list[str]) -> Check:
    doubled = len(have) - len(set(have))
    missing = want - set(have)
    extra = set(have) - want
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {sorted(missing)[:2]})")
    if extra:
        problems.append(f"{len(extra)} not in the broker (e.g. {sorted(extra)[:2]})")
    if doubled:
        problems.append(f"{doubled} stored twice")
    return Check(SERVICE, name, not problems, len(want), len(have), "; ".join(problems))


def compare(
    engine: Engine,
    source: SourceConnection,
    bootstrap: str,
    activity: list[dict[str, Any]],
) -> list[Check]:
    topics = [*SHOP_TOPICS, USER_EVENTS_TOPIC]
    want_changes, want_tombs, malformed = expected_ids(bootstrap, topics)
    have_changes, have_tombs = stored_ids(engine)
    checks = [
        _ids_check("change events = broker, once", want_changes, have_changes),
        _ids_check("tombstones = broker, once", want_tombs, have_tombs),
    ]
    store, src = store_state(engine), source_state(source)
    diff = state_diff(store, src, limit=3)
    checks.append(
        Check(SERVICE, "rows rebuilt = source tables", not diff, len(src), len(store), diff)
    )
    users, dlq = user_events_and_dead_letters(engine)
    logged = {e["event_id"] for e in activity}
    checks.append(_ids_check("user events = acknowledged, once", logged, users))
    checks.append(
        diff_maps(
            SERVICE,
            "dead-letter rows = malformed and refused records",
            dict.fromkeys(malformed, 1),
            {pos: dlq.count(pos) for pos in set(dlq)},
        )
    )
    return checks


def checks(ctx: VerifyContext) -> list[Check]:
    engine = make_engine(ctx.info.databases[SERVICE])
    try:
        with ctx.source() as source:
            return compare(engine, source, ctx.info.bootstrap, ctx.activity_events())
    finally:
        engine.dispose()
