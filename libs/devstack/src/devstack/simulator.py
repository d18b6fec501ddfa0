"""The shop workload simulator: realistic OLTP changes in the source database plus user activity.

Every operation is one source transaction, as a web shop would commit it: sign-ups, profile
changes, new products, restocks, price/name/description changes, orders placed with their items
(decrementing stock in the same transaction), paid, shipped or cancelled (restoring stock),
occasional product deletes and re-creates (``_shop_ops``). User-activity events go straight to
the ``user-events`` topic. The simulator keeps a ledger of every row change it committed and a
log of every activity event the broker acknowledged, so checks can compare sinks with truth.

Clocks can be made to lie (``lying_clock``, set by the chaos run's ``clock_skew`` fault): while
set, it is asked for the time of every user event, new order (``orders.created_at``) and product
change (``products.updated_at``) and may answer one far from now; the real clock is used when it
answers None. An event stamped so is logged with the simulator's own clock at the send
(``devstack.truth.SENT_AT``): no consumer can have seen it earlier.

Run standalone: ``python -m devstack.simulator --dsn ... --bootstrap ... --rate 100``.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import orjson
import psycopg2
import psycopg2.extensions
import typer
from confluent_kafka import Producer

from devstack._broker import create_topics
from devstack._shop import price
from devstack._shop_ops import OPERATIONS, ShopOperations
from devstack.truth import SENT_AT

USER_EVENTS_TOPIC = "user-events"
#: What a lying clock is asked for: ``(what) -> a time, or None for the real clock``, with
#: ``what`` one of ``STAMPED``.
LyingClock = Callable[[str], datetime | None]
STAMPED = (USER_EVENTS_TOPIC, "orders.created_at", "products.updated_at")
EVENT_TYPES = ("click", "view", "add_to_cart", "purchase")
_EVENT_WEIGHTS = (50, 30, 12, 8)


@dataclass
class Ledger:
    """Row changes committed per table and op (``c``, ``u``, ``d``), as Debezium will see them."""

    changes: dict[str, Counter[str]] = field(default_factory=dict)
    operations: Counter[str] = field(default_factory=Counter)
    activity_events: int = 0

    def add(self, table: str, op: str, n: int = 1) -> None:
        self.changes.setdefault(table, Counter())[op] += n

    def merge(self, other: Ledger) -> None:
        for table, ops in other.changes.items():
            self.changes.setdefault(table, Counter()).update(ops)
        self.operations.update(other.operations)
        self.activity_events += other.activity_events

    def total(self, table: str) -> int:
        return sum(self.changes.get(table, Counter()).values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": {t: dict(c) for t, c in self.changes.items()},
            "operations": dict(self.operations),
            "activity_events": self.activity_events,
        }


class ShopSimulator(ShopOperations):
    """Drives the workload at ``rate`` source transactions per second."""

    def __init__(
        self,
        dsn: str,
        bootstrap: str | None,
        *,
        rate: float = 100.0,
        activity_rate: float | None = None,
        seed: int | None = None,
        activity_log: Path | None = None,
        user_events_topic: str = USER_EVENTS_TOPIC,
        users: int = 200,
    ) -> None:
        self.dsn = dsn
        self.rate = rate
        self.activity_rate = rate / 2 if activity_rate is None else activity_rate
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        # Derived, so a stack seeded with the same number does not replay the same rows.
        self.rng = random.Random(f"simulator-{self.seed}")
        self.ledger = Ledger()
        self.users = users
        self.user_events_topic = user_events_topic
        self.activity_log = activity_log
        self._conn: psycopg2.extensions.connection | None = None
        self._stop = threading.Event()
        self._producer: Producer | None = None
        self._pending_events: list[bytes] = []
        self._acked: list[bytes] = []
        self._errors: list[str] = []
        if bootstrap is not None and self.activity_rate > 0:
            create_topics(bootstrap, [user_events_topic], partitions=3)
            self._producer = Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "enable.idempotence": True,
                    "linger.ms": 5,
                    "partitioner": "murmur2_random",
                }
            )
        self._names, self._weights = zip(*OPERATIONS, strict=True)
        #: While set, asked for event and row times (chaos ``clock_skew``; see the docstring).
        self.lying_clock: LyingClock | None = None

    def _lie(self, what: str) -> datetime | None:
        clock = self.lying_clock
        return None if clock is None else clock(what)

    @property
    def conn(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(self.dsn)
        return self._conn

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration: float | None = None) -> Ledger:
        """Run until ``stop()`` or ``duration`` seconds; returns the ledger."""
        start = time.monotonic()
        done_ops = 0
        done_events = 0
        while not self._stop.is_set():
            elapsed = time.monotonic() - start
            if duration is not None and elapsed >= duration:
                break
            due_ops = int(elapsed * self.rate) - done_ops
            due_events = int(elapsed * self.activity_rate) - done_events
            for _ in range(max(0, min(due_ops, 1000))):
                self.step()
                done_ops += 1
            if due_events > 0:
                self.emit_activity(min(due_events, 5000))
                done_events += min(due_events, 5000)
            if due_ops <= 0 and due_events <= 0:
                time.sleep(0.005)
        self.flush()
        return self.ledger

    def close(self) -> None:
        self.flush()
        self._producer = None  # destroyed now, before the broker goes away
        if self._conn is not None:
            self._conn.close()

    def step(self) -> str:
        """One operation, one committed transaction; returns the operation's name."""
        name = self.rng.choices(self._names, self._weights)[0]
        conn = self.conn
        try:
            with conn.cursor() as cur:
                changes = getattr(self, f"_op_{name}")(cur)
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        if changes:
            for table, op, n in changes:
                self.ledger.add(table, op, n)
            self.ledger.operations[name] += 1
        return str(name)

    # -- user activity ----------------------------------------------------------------------

    def emit_activity(self, n: int) -> None:
        if self._producer is None:
            return
        for _ in range(n):
            lie = self._lie(USER_EVENTS_TOPIC)
            event = self.activity_event(lie)
            value = orjson.dumps(event)
            # Logged as sent, plus, for an event stamped by a lying clock, the real clock.
            logged = value if lie is None else orjson.dumps({**event, SENT_AT: _now_iso()})
            while True:
                try:
                    self._producer.produce(
                        self.user_events_topic,
                        key=str(event["user_id"]).encode(),
                        value=value,
                        on_delivery=partial(self._on_delivery, logged),
                    )
                    break
                except BufferError:
                    self._producer.poll(0.05)
        self._producer.poll(0)
        self._write_acked()

    def activity_event(self, timestamp: datetime | None = None) -> dict[str, Any]:
        """One user event, stamped ``timestamp`` (default: now)."""
        event_type = self.rng.choices(EVENT_TYPES, _EVENT_WEIGHTS)[0]
        event: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "user_id": f"user-{self.rng.randint(1, self.users)}",
            "event_type": event_type,
            "timestamp": (timestamp or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        }
        if event_type == "purchase":
            event["amount"] = float(price(self.rng))
        if event_type in ("view", "click") and self.rng.random() < 0.7:
            event["duration"] = round(self.rng.uniform(0.5, 300.0), 3)
        event["metadata"] = {
            "page": self.rng.choice(("/", "/search", "/product", "/cart")),
            "product_id": self.rng.randint(1, 150),
        }
        return event

    def _on_delivery(self, logged: bytes, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))
        else:
            self._acked.append(logged)

    def _write_acked(self) -> None:
        if not self._acked:
            return
        acked, self._acked = self._acked, []
        self.ledger.activity_events += len(acked)
        if self.activity_log is not None:
            with self.activity_log.open("ab") as fh:
                fh.write(b"\n".join(acked) + b"\n")

    def flush(self) -> None:
        if self._producer is not None:
            if self._producer.flush(60):
                raise RuntimeError("user-events not acknowledged by the broker within 60 s")
            self._write_acked()
            if self._errors:
                raise RuntimeError(f"user-events delivery failed: {self._errors[:3]}")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


app = typer.Typer(add_completion=False, help="Shop workload simulator (source DB + user-events).")


@app.command()
def main(
    dsn: Annotated[str, typer.Option(envvar="SOURCE_DSN", help="libpq DSN of the shop DB")],
    bootstrap: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS")] = "localhost:9092",
    rate: Annotated[float, typer.Option(help="source transactions per second")] = 100.0,
    activity_rate: Annotated[float | None, typer.Option(help="user events per second")] = None,
    duration: Annotated[float | None, typer.Option(help="seconds; default: until Ctrl-C")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed, printed for replay")] = None,
    activity_log: Annotated[Path | None, typer.Option(help="JSON-lines log of sent events")] = None,
    ledger_file: Annotated[Path | None, typer.Option(help="write the ledger here at exit")] = None,
) -> None:
    sim = ShopSimulator(
        dsn, bootstrap, rate=rate, activity_rate=activity_rate, seed=seed, activity_log=activity_log
    )
    typer.echo(f"simulator seed={sim.seed} rate={rate}/s")
    signal.signal(signal.SIGTERM, lambda *_: sim.stop())
    try:
        sim.run(duration)
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
        if ledger_file is not None:
            ledger_file.write_bytes(orjson.dumps(sim.ledger.to_dict()))


if __name__ == "__main__":
    app()
