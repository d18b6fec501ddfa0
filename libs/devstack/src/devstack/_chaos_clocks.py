"""The chaos run's clock check: after records stamped far in the future and far in the past went
through the pipeline (the ``clock_skew`` fault, ``_chaos_skew``), did anything that keeps event
time against our clock freeze? Verification already says whether every read model equals the
source; this says whether time still moves.

Two consumers keep event time against the processing clock (``libs/consumer-runtime/README.md``,
"Clocks lie"):

* the statistics' activity as-of (``activity_watermark.max_event_at`` in the aggregator's
  database; the engagement and churn scores are computed as of it). A far-future user event
  may push it at most ``MAX_CLOCK_SKEW_SECONDS`` ahead of the aggregator's clock, and on-time
  events must move it on again. The fault watches it (ahead of the clock, then moved on by
  on-time events within ``ChaosOptions.clock_heal_s``); at the end it must be the time of the
  latest on-time user event (within ``FINAL_TOLERANCE_S``);
* the lake's windows: a far-future ``source.ts_ms`` must not close windows before their end,
  so no on-time record is in the lake's ``late`` report, except one in flight at a window's end
  (late by at most ``LATE_SLACK_S``). A far-past record is late itself, which is right.

Users whose ``last_active`` is past the as-of (a far-future event of their own) are counted and
shown: the aggregator keeps every event's own time, so their recency stays 1 until that date;
that is the service's documented rule (verification agrees with it), not a frozen as-of.

:func:`judge` is pure (unit tested); the readers below it fetch what it needs.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg2
from prometheus_client.parser import text_string_to_metric_families

from devstack.truth import SENT_AT

# The as-of at the end equals the latest on-time event's time (both come from the same stamp);
# a second covers the millisecond rounding of the events' ISO times.
FINAL_TOLERANCE_S: Final = 1.0
# A record committed just before a window's end and consumed just after the watermark passed
# it is late by about its delivery time; the devstack delivers within a second or two when the
# consumer keeps up. Later than this, a watermark ran ahead of the data.
LATE_SLACK_S: Final = 5.0
# On-time records' windows start after this much before the fault; the far-past ones (1970,
# year 1) long before.
_ON_TIME_SINCE: Final = timedelta(days=1)


@dataclass
class SkewObservation:
    """What the ``clock_skew`` fault did, and what it saw of the statistics' as-of."""

    started: datetime  # wall clock (UTC) when the clocks started lying
    #: What the simulator stamped with a lying clock, by what (``simulator.STAMPED``).
    stamped: dict[str, int] = field(default_factory=dict)
    #: Order changes produced again with a lying ``source.ts_ms`` (see ``_chaos_skew``).
    copies: int = 0
    #: The as-of was seen ahead of the clock (the far-future events reached it).
    as_of_ahead: bool = False
    #: How far ahead of the clock it was seen at most, in seconds.
    as_of_peak_ahead_s: float | None = None
    #: Seconds from the end of the lying until on-time events moved it on past where the
    #: far-future ones had left it; None: not within the budget (frozen).
    as_of_back_after_s: float | None = None
    #: Increase of each service's ``*_clock_skewed_records_total`` during the fault.
    skewed_counted: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LateWindow:
    """One row of the lake's ``late`` report: records of ``window_start`` filed later."""

    window_start: datetime
    late_events: int
    max_lateness_s: float


@dataclass
class ClockCheck:
    ok: bool
    observation: SkewObservation
    #: Final as-of minus the latest on-time user event's time, in seconds.
    as_of_final_vs_events_s: float | None = None
    users_ahead_of_as_of: int | None = None
    #: On-time records in the lake's late report, and the largest lateness among them.
    lake_late_on_time: int | None = None
    lake_max_lateness_s: float | None = None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        obs = self.observation
        parts = []
        if obs.as_of_peak_ahead_s is not None:
            back = obs.as_of_back_after_s
            parts.append(
                f"as-of +{obs.as_of_peak_ahead_s:.0f}s, "
                + ("frozen" if back is None else f"moved on after {back:.0f}s")
            )
        if self.lake_late_on_time is not None:
            parts.append(f"lake {self.lake_late_on_time} on-time late")
        return "; ".join(parts) or "-"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["observation"]["started"] = self.observation.started.isoformat()
        return out


def judge(
    obs: SkewObservation,
    *,
    budget_s: float,
    stats: bool,
    as_of: datetime | None,
    latest_on_time: datetime | None,
    users_ahead: int | None,
    late: Sequence[LateWindow] | None,
    late_slack_s: float = LATE_SLACK_S,
    errors: Sequence[str] = (),
) -> ClockCheck:
    """The verdict. ``stats``: the statistics ran (the as-of is judged); ``late``: the lake's
    late report (None: not read, without pyarrow or without the lake; a note, not a failure);
    ``errors``: what could not be read (each a failure)."""
    check = ClockCheck(ok=True, observation=obs, users_ahead_of_as_of=users_ahead)
    problems = check.problems
    problems.extend(errors)
    if stats:
        peak = obs.as_of_peak_ahead_s
        if not obs.as_of_ahead or peak is None:
            problems.append(
                "the far-future user events never showed in the statistics' as-of "
                f"within {budget_s:g}s (lagging? see the aggregator's log)"
            )
        elif peak > budget_s:
            problems.append(
                f"the statistics' as-of went {peak:.0f}s ahead of the clock "
                f"(more than {budget_s:g}s): is MAX_CLOCK_SKEW_SECONDS in force?"
            )
        if obs.as_of_ahead and obs.as_of_back_after_s is None:
            problems.append(
                f"the statistics' as-of froze: on-time events did not move it on within "
                f"{budget_s:g}s after the clocks stopped lying"
            )
        if as_of is None or latest_on_time is None:
            problems.append("no activity as-of, or no on-time user event, to compare at the end")
        else:
            diff = (as_of - latest_on_time).total_seconds()
            check.as_of_final_vs_events_s = round(diff, 3)
            if abs(diff) > FINAL_TOLERANCE_S:
                where = "ahead of" if diff > 0 else "behind"
                problems.append(
                    f"the statistics' as-of ends {abs(diff):.1f}s {where} the latest on-time "
                    f"user event ({as_of.isoformat()} vs {latest_on_time.isoformat()})"
                )
    if late is None:
        obs.notes.append("the lake's late report was not read")
    else:
        since = obs.started - _ON_TIME_SINCE
        on_time = [w for w in late if w.window_start >= since]
        check.lake_late_on_time = sum(w.late_events for w in on_time)
        check.lake_max_lateness_s = max((w.max_lateness_s for w in on_time), default=0.0)
        frozen = [w for w in on_time if w.max_lateness_s > late_slack_s]
        if frozen:
            windows = ", ".join(w.window_start.strftime("%H:%M:%S") for w in frozen[:5])
            problems.append(
                f"the lake counted {sum(w.late_events for w in frozen)} on-time records late "
                f"by up to {check.lake_max_lateness_s:.0f}s (windows {windows}): a watermark "
                "ran ahead of the data"
            )
    check.ok = not problems
    return check


# -- readers ------------------------------------------------------------------------------------


def libpq_dsn(sqlalchemy_url: str) -> str:
    """A libpq URI from the SQLAlchemy URL the devstack gives a service (psycopg2 driver)."""
    return sqlalchemy_url.replace("postgresql+psycopg2://", "postgresql://", 1)


def read_as_of(conn: Any) -> datetime | None:
    """The statistics' activity as-of (``activity_watermark``), None before any user event."""
    with conn.cursor() as cur:
        cur.execute("SELECT max_event_at FROM activity_watermark WHERE id = 1")
        row = cur.fetchone()
    return None if row is None else row[0]


def read_users_ahead(conn: Any) -> int:
    """Users whose last activity is past the as-of (their recency is 1 until then)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM user_activity_stats u, activity_watermark w "
            "WHERE w.id = 1 AND u.last_active > w.max_event_at"
        )
        row = cur.fetchone()
    return 0 if row is None else int(row[0])


def stats_reading(dsn: str) -> tuple[datetime | None, int]:
    """(the as-of, users ahead of it) from the aggregator's database."""
    conn = psycopg2.connect(dsn)
    try:
        conn.set_session(readonly=True, autocommit=True)
        return read_as_of(conn), read_users_ahead(conn)
    finally:
        conn.close()


def latest_on_time(events: Iterable[dict[str, Any]]) -> datetime | None:
    """The latest time of the user events stamped by the real clock (not ``SENT_AT``)."""
    latest: datetime | None = None
    for event in events:
        if SENT_AT in event:
            continue
        ts = datetime.fromisoformat(event["timestamp"])
        ts = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
        latest = ts if latest is None or ts > latest else latest
    return latest


def read_late_windows(s3: Any, bucket: str, prefix: str = "reports") -> list[LateWindow] | None:
    """Every row of the lake's ``late`` report objects (Parquet; pyarrow comes with the
    analytics flusher). None without pyarrow."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        return None
    out: list[LateWindow] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix.strip('/')}/late/"
    ):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".parquet"):
                continue
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            for row in pq.read_table(io.BytesIO(body)).to_pylist():
                out.append(
                    LateWindow(
                        window_start=row["event_window_start"],
                        late_events=int(row["late_events"] or 0),
                        max_lateness_s=(row["max_lateness_ms"] or 0) / 1000,
                    )
                )
    return out


def metric_total(metrics_url: str, name: str) -> float | None:
    """Sum of a counter over its labels on a service's ``/metrics``; None if it does not
    answer."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=1) as resp:  # noqa: S310
            text = resp.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total
