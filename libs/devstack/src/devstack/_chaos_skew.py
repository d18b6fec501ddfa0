"""The ``clock_skew`` chaos fault (``ChaosOptions.overlap``): clocks that lie, far into the
future and far into the past, while normal traffic flows. The guarantee under test: a far-future
or far-past time freezes neither the statistics' recency scores nor the lake's lateness, and
every read model still equals the source.

For ``ChaosOptions.skew_window_s``, alongside the simulator's normal traffic:

* **user events** are stamped by a lying front-end clock: every fourth event the simulator
  sends carries 2099-06-15, a clock 400 days ahead, 1970-01-01 or year 1 in turn (produced,
  acknowledged and logged like any other; the log adds the real send time, ``truth.SENT_AT``).
  The statistics keep an event-time watermark over them (the scores' as-of);
* **source rows** are stamped by a lying application clock, written through the source
  PostgreSQL (Debezium captures them): every fourth new order's ``created_at`` and product
  change's ``updated_at`` is 2099-06-15 or 1970-01-01. No consumer takes event time from a row
  (the statistics and the lake group orders by the day of ``created_at``, the search index
  carries ``updated_at``); these check that far days pass through every read model. The columns
  have no CHECK and ``timestamptz`` holds them. Year 1 is left to the two other streams: it is
  not a value an application clock gives, and its trip through Debezium's calendar conversions
  is not what this fault is about;
* **the source's own clock**: Debezium stamps a change with the commit time of the source
  PostgreSQL (``source.ts_ms``), which is the lake's event time (its windows) and the event
  store's partition month. That clock cannot be set per transaction, so it is played by copies:
  the latest change of each partition of ``orders`` and ``order_items`` is produced again to
  its own partition with ``source.ts_ms`` set to 2099-06-15, 400 days ahead, 1970-01-01 and
  year 1 (at the start and at the end of the window). A copy has the change's position, hence
  its id and version: to every consumer the same change, as a Debezium re-emit is (the event
  store keeps the first, the statistics skip it; the lake files it under the window of its
  lying time, or as late, and its image is the change's own). Copies carry the headers
  ``cdc.injected: clock_skew`` and ``cdc.injected.id``.

The fault first waits (up to ``_CATCH_UP_S``) for the statistics to catch up, so what it
measures is the skew, not a backlog under it (the lake's reported lag counts what its open
windows hold, a window and its grace of records whether it keeps up or not, so it cannot be
waited for that way); then, after the window, it watches the
as-of until on-time events have moved it on (budget ``ChaosOptions.clock_heal_s``), so the
reference of the as-of (``truth.activity_watermark``) is exact when verification runs. What it
saw is judged after verification (``_chaos_clocks.judge``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import orjson
import psycopg2
from confluent_kafka import Producer, TopicPartition

from devstack._chaos_clocks import (
    ClockCheck,
    SkewObservation,
    judge,
    latest_on_time,
    libpq_dsn,
    metric_total,
    read_as_of,
    read_late_windows,
    stats_reading,
)
from devstack._kafka_io import reader_consumer
from devstack._stack import TOPIC_PREFIX
from devstack.badinput import HEADER_ID, HEADER_KIND
from devstack.simulator import USER_EVENTS_TOPIC
from devstack.verify import VerifyContext

if TYPE_CHECKING:
    from devstack._chaos_plan import ChaosOptions, PlannedFault
    from devstack._pipeline import Pipeline

FUTURE: Final = datetime(2099, 6, 15, 12, tzinfo=UTC)
EPOCH: Final = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
YEAR_ONE: Final = datetime(1, 1, 1, 12, tzinfo=UTC)  # noon: still year 1 in every time zone
AHEAD: Final = timedelta(days=400)  # a clock set a year (and a bit) ahead
# One stamp in this many is a lie: the rest of the traffic stays on time around them.
EVERY: Final = 4
COPIED_TOPICS: Final = (f"{TOPIC_PREFIX}.public.orders", f"{TOPIC_PREFIX}.public.order_items")
STATS: Final = "stats-aggregator"
LAKE: Final = "analytics-flusher"
SKEW_KIND: Final = "clock_skew"
# Before lying, wait this long at most for the statistics to catch up (a previous outage's
# backlog).
_CATCH_UP_S: Final = 30.0
_POLL_S: Final = 0.5
# A copy is made from the last records of each partition (the newest change with a row).
_TAIL: Final = 50


def lying_times(now: datetime) -> dict[str, tuple[datetime, ...]]:
    """What each lying clock answers in turn, by ``simulator.STAMPED`` name."""
    events = (FUTURE, EPOCH, now + AHEAD, YEAR_ONE)
    rows = (FUTURE, EPOCH)
    return {USER_EVENTS_TOPIC: events, "orders.created_at": rows, "products.updated_at": rows}


def source_times_ms(now: datetime) -> tuple[int, ...]:
    """The lying ``source.ts_ms`` of the copies: two ahead, then two behind."""
    return tuple(_ms(t) for t in (FUTURE, now + AHEAD, EPOCH, YEAR_ONE))


class RotatingLies:
    """The simulator's lying clock: every ``every``-th time asked of each kind is the next of
    that kind's ``times`` in turn, the others the real one (None). Counts what it stamped."""

    def __init__(self, times: Mapping[str, Sequence[datetime]], every: int = EVERY) -> None:
        self._times = {k: tuple(v) for k, v in times.items()}
        self._every = every
        self._asked: Counter[str] = Counter()
        self.stamped: Counter[str] = Counter()

    def __call__(self, what: str) -> datetime | None:
        times = self._times.get(what)
        if not times:
            return None
        n = self._asked[what]
        self._asked[what] += 1
        if n % self._every != self._every - 1:
            return None
        self.stamped[what] += 1
        return times[(self.stamped[what] - 1) % len(times)]


def skewed_copy(value: bytes, ts_ms: int) -> bytes | None:
    """``value`` (a change event with a row) with ``source.ts_ms`` (and ``ts_us``/``ts_ns``,
    optional fields, null where a 64-bit integer cannot hold them: year 1 in microseconds) set
    to ``ts_ms``; None for anything else (a tombstone, a delete)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    payload = doc.get("payload", doc) if isinstance(doc, dict) else None
    if not isinstance(payload, dict) or payload.get("op") not in ("c", "u"):
        return None
    source = payload.get("source")
    if not isinstance(source, dict) or not isinstance(payload.get("after"), dict):
        return None
    source["ts_ms"] = ts_ms
    for name, scale in (("ts_us", 1_000), ("ts_ns", 1_000_000)):
        if isinstance(source.get(name), int):
            scaled = ts_ms * scale
            source[name] = scaled if -(2**63) <= scaled < 2**63 else None
    return orjson.dumps(doc)


def latest_changes(
    bootstrap: str, topic: str, timeout: float = 10.0
) -> dict[int, tuple[Any, bytes]]:
    """Per partition, the key and value of its newest change with a row (op c/u)."""
    consumer = reader_consumer(bootstrap, "devstack-clock-skew")
    found: dict[int, tuple[Any, bytes]] = {}
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        ends: dict[int, int] = {}
        assignment = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
            assignment.append(TopicPartition(topic, p, max(low, high - _TAIL)))
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout
        reached = {tp.partition for tp in assignment if tp.offset >= ends[tp.partition]}
        while len(reached) < len(partitions) and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                value, p, offset = msg.value(), msg.partition(), msg.offset()
                if msg.error() or value is None or p is None or offset is None:
                    continue
                if skewed_copy(value, 0) is not None:
                    found[p] = (msg.key(), value)
                if offset + 1 >= ends[p]:
                    reached.add(p)
    finally:
        consumer.close()
    return found


def produce_copies(bootstrap: str, times_ms: Sequence[int], tag: str) -> int:
    """Copies of the newest change of every partition of ``COPIED_TOPICS``, one per lying
    time, each to its original's partition; returns how many the broker acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    errors: list[str] = []
    sent = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for topic in COPIED_TOPICS:
        for partition, (key, value) in sorted(latest_changes(bootstrap, topic).items()):
            for i, ts_ms in enumerate(times_ms):
                copy = skewed_copy(value, ts_ms)
                assert copy is not None  # latest_changes keeps only changes it can copy
                ident = f"{tag}-{topic.rsplit('.', 1)[-1]}-{partition}-{i}"
                producer.produce(
                    topic,
                    key=key,
                    value=copy,
                    partition=partition,
                    headers=[(HEADER_KIND, SKEW_KIND.encode()), (HEADER_ID, ident.encode())],
                    on_delivery=on_delivery,
                )
                sent += 1
    if producer.flush(30) or errors:
        raise RuntimeError(f"clock-skewed copies not acknowledged: {errors[:3]}")
    return sent


class _AsOfWatch:
    """Samples the statistics' as-of against the clock: seen ahead of it, how far, and when
    on-time events moved it on past the furthest point the far-future ones had left it."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg2.connect(dsn)
        self.conn.set_session(readonly=True, autocommit=True)
        self.ahead = False
        self.peak_ahead_s: float | None = None
        self.clamp: datetime | None = None
        self.moved_on_at: float | None = None

    def sample(self, lying: bool) -> None:
        try:
            as_of = read_as_of(self.conn)
        except psycopg2.Error:
            return  # a restart of the sink database: the next sample
        if as_of is None:
            return
        ahead_s = (as_of - datetime.now(UTC)).total_seconds()
        if ahead_s > 0:
            self.ahead = True
            self.peak_ahead_s = max(self.peak_ahead_s or 0.0, ahead_s)
            self.clamp = as_of if self.clamp is None else max(self.clamp, as_of)
        elif not lying and self.clamp is not None and as_of > self.clamp:
            self.moved_on_at = self.moved_on_at or time.monotonic()

    def close(self) -> None:
        self.conn.close()


class ClockSkewFault:
    """The ``clock_skew`` fault, mixed into ``ChaosDriver`` (which provides these)."""

    pipeline: Pipeline
    options: ChaosOptions
    _undo: dict[str, Callable[[], None]]
    clock_observation: SkewObservation | None = None

    def _sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def _running(self, name: str) -> list[Any]:
        return [s for s in self.pipeline.services if s.spec.name == name]

    def _skewed_counts(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, metric in ((STATS, "stats"), (LAKE, "lake")):
            for svc in self._running(name):
                value = metric_total(svc.metrics_url, f"{metric}_clock_skewed_records_total")
                out[name] = out.get(name, 0.0) + (value or 0.0)
        return out

    def _wait_caught_up(self) -> float | None:
        """Seconds until the statistics lag by at most a few seconds of traffic (their lag is
        what they have not yet committed); None if they did not within ``_CATCH_UP_S``."""
        limit = max(200.0, 5 * self.options.rate)  # records: ~1-2 s of this run's traffic
        started = time.monotonic()
        while time.monotonic() - started < _CATCH_UP_S:
            lags = [svc.status().lag for svc in self._running(STATS)]
            if all(lag <= limit for lag in lags):
                return time.monotonic() - started
            self._sleep(1.0)
        return None

    def _fault_clock_skew(self, planned: PlannedFault) -> str:
        p = self.pipeline
        sim = p.simulator
        if sim is None:
            raise RuntimeError("clock_skew needs the simulator running")
        waited = self._wait_caught_up()
        now = datetime.now(UTC)
        obs = SkewObservation(started=now)
        if waited is None:
            obs.notes.append(f"the statistics still lagged after {_CATCH_UP_S:g}s")
        url = p.info().databases.get(STATS)
        watch = _AsOfWatch(libpq_dsn(url)) if url and self._running(STATS) else None
        counted = self._skewed_counts()
        lies = RotatingLies(lying_times(now))
        bootstrap = p.stack.broker.bootstrap
        self._undo[SKEW_KIND] = lambda: setattr(sim, "lying_clock", None)
        sim.lying_clock = lies
        try:
            try:
                obs.copies += produce_copies(bootstrap, source_times_ms(now), f"{now:%H%M%S}a")
                self._watch(watch, time.monotonic() + planned.duration_s, lying=True)
                obs.copies += produce_copies(bootstrap, source_times_ms(now), f"{now:%H%M%S}b")
            finally:
                sim.lying_clock = None
                self._undo.pop(SKEW_KIND, None)
            stopped = time.monotonic()
            self._watch(watch, stopped + self.options.clock_heal_s, lying=False)
        finally:
            if watch is not None:
                watch.close()
        obs.stamped = dict(lies.stamped)
        if watch is not None:
            obs.as_of_ahead = watch.ahead
            obs.as_of_peak_ahead_s = watch.peak_ahead_s
            if watch.moved_on_at is not None:
                obs.as_of_back_after_s = round(watch.moved_on_at - stopped, 1)
        after = self._skewed_counts()
        obs.skewed_counted = {k: after.get(k, 0.0) - v for k, v in counted.items()}
        self.clock_observation = obs
        stamped = ", ".join(f"{k} {n}" for k, n in sorted(obs.stamped.items()))
        seen = ", ".join(f"{k} {n:g}" for k, n in sorted(obs.skewed_counted.items()))
        back = obs.as_of_back_after_s
        return (
            f"stamped far ahead/behind: {stamped}; {obs.copies} order changes copied with a "
            f"lying source.ts_ms; counted as ahead of the clock: {seen or '-'}; as-of "
            + (
                "not watched"
                if watch is None
                else f"up to {obs.as_of_peak_ahead_s or 0:.0f}s ahead, "
                + ("not moved on" if back is None else f"moved on {back:.0f}s after")
            )
        )

    def _watch(self, watch: _AsOfWatch | None, until: float, *, lying: bool) -> None:
        if watch is None and not lying:
            return  # no statistics: nothing to wait for
        while time.monotonic() < until:
            if watch is not None:
                watch.sample(lying)
                if not lying and watch.moved_on_at is not None:
                    return
            self._sleep(_POLL_S)

    def _clock_check(self) -> ClockCheck | None:
        """The verdict on what ``clock_skew`` saw, read once verification is done."""
        obs = self.clock_observation
        if obs is None:
            return None
        info = self.pipeline.info()
        stats = bool(self._running(STATS))
        as_of: datetime | None = None
        users_ahead: int | None = None
        errors: list[str] = []
        url = info.databases.get(STATS)
        if stats and url:
            try:
                as_of, users_ahead = stats_reading(libpq_dsn(url))
            except psycopg2.Error as exc:
                errors.append(f"the statistics' as-of not readable: {exc}")
        late = None
        if self._running(LAKE):
            env = info.env_of(LAKE)
            s3 = self.pipeline.stack.aws.client("s3")
            try:
                late = read_late_windows(s3, env["S3_BUCKET"], env.get("S3_PREFIX", "reports"))
            except Exception as exc:  # the emulator or an object unreadable: a failed check
                errors.append(f"the lake's late report not readable: {type(exc).__name__}: {exc}")
        return judge(
            obs,
            budget_s=self.options.clock_heal_s,
            stats=stats,
            as_of=as_of,
            latest_on_time=latest_on_time(VerifyContext(info).activity_events()),
            users_ahead=users_ahead,
            late=late,
            errors=errors,
        )


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)
