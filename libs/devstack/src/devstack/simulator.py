"""The shop workload simulator: realistic OLTP changes in the source database plus user activity.

Every operation is one source transaction, as a web shop would commit it: sign-ups, profile
changes, new products, restocks, price/name/description changes, orders placed with their items
(decrementing stock in the same transaction), paid, shipped or cancelled (restoring stock),
occasional product deletes and re-creates. User-activity events go straight to the
``user-events`` topic. The simulator keeps a ledger of every row change it committed and a
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
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import orjson
import psycopg2
import psycopg2.extensions
import typer
from confluent_kafka import Producer

from devstack._broker import create_topics
from devstack._shop import _insert_customer, price, product_description, product_name
from devstack.truth import SENT_AT

USER_EVENTS_TOPIC = "user-events"
#: What a lying clock is asked for: ``(what) -> a time, or None for the real clock``, with
#: ``what`` one of ``STAMPED``.
LyingClock = Callable[[str], datetime | None]
STAMPED = (USER_EVENTS_TOPIC, "orders.created_at", "products.updated_at")
EVENT_TYPES = ("click", "view", "add_to_cart", "purchase")
_EVENT_WEIGHTS = (50, 30, 12, 8)

# (operation, weight): an order's life cycle dominates, as in a real shop.
_OPERATIONS: tuple[tuple[str, int], ...] = (
    ("signup", 5),
    ("update_customer", 2),
    ("new_product", 2),
    ("restock", 8),
    ("change_price", 5),
    ("rename_product", 4),
    ("place_order", 35),
    ("pay_order", 15),
    ("ship_order", 10),
    ("cancel_order", 6),
    ("delete_product", 1),
    ("recreate_product", 1),
)


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


class ShopSimulator:
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
        self._names, self._weights = zip(*_OPERATIONS, strict=True)
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

    # -- operations: each returns the row changes it made as (table, op, count) -------------

    def _pick(self, cur: psycopg2.extensions.cursor, sql: str) -> Any:
        cur.execute(sql + " ORDER BY random() LIMIT 1")
        row = cur.fetchone()
        return None if row is None else row

    def _op_signup(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        _insert_customer(cur, self.rng)
        return [("customers", "c", 1)]

    def _op_update_customer(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM customers")
        if row is None:
            return []
        cur.execute(
            "UPDATE customers SET country = %s WHERE id = %s",
            (self.rng.choice(("DE", "FR", "US", "GB", "ES")), row[0]),
        )
        return [("customers", "u", 1)]

    def _op_new_product(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        cur.execute(
            "INSERT INTO products (name, description, price, stock) VALUES (%s, %s, %s, %s)",
            (
                product_name(self.rng),
                product_description(self.rng, long=self.rng.random() < 0.05),
                price(self.rng),
                self.rng.randint(0, 100),
            ),
        )
        return [("products", "c", 1)]

    def _op_restock(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM products WHERE stock < 30")
        if row is None:
            return []
        cur.execute(
            "UPDATE products SET stock = stock + %s, updated_at = COALESCE(%s, now()) "
            "WHERE id = %s",
            (self.rng.randint(10, 100), self._lie("products.updated_at"), row[0]),
        )
        return [("products", "u", 1)]

    def _op_change_price(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM products")
        if row is None:
            return []
        cur.execute(
            "UPDATE products SET price = %s, updated_at = COALESCE(%s, now()) WHERE id = %s",
            (price(self.rng), self._lie("products.updated_at"), row[0]),
        )
        return [("products", "u", 1)]

    def _op_rename_product(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM products")
        if row is None:
            return []
        if self.rng.random() < 0.5:
            cur.execute(
                "UPDATE products SET name = %s, updated_at = COALESCE(%s, now()) WHERE id = %s",
                (product_name(self.rng), self._lie("products.updated_at"), row[0]),
            )
        else:
            cur.execute(
                "UPDATE products SET description = %s, updated_at = COALESCE(%s, now()) "
                "WHERE id = %s",
                (product_description(self.rng), self._lie("products.updated_at"), row[0]),
            )
        return [("products", "u", 1)]

    def _op_place_order(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        customer = self._pick(cur, "SELECT id FROM customers")
        if customer is None:
            return []
        cur.execute(
            "SELECT id, price, stock FROM products WHERE stock > 0 ORDER BY random() LIMIT %s",
            (self.rng.randint(1, 4),),
        )
        lines = [(pid, unit, self.rng.randint(1, min(3, stock))) for pid, unit, stock in cur]
        if not lines:
            return []
        total = sum((unit * qty for _, unit, qty in lines), Decimal("0.00"))
        cur.execute(
            "INSERT INTO orders (customer_id, status, total, created_at) "
            "VALUES (%s, 'pending', %s, COALESCE(%s, now())) RETURNING id",
            (customer[0], total, self._lie("orders.created_at")),
        )
        order_row = cur.fetchone()
        assert order_row is not None
        for pid, unit, qty in lines:
            cur.execute(
                "INSERT INTO order_items (order_id, product_id, quantity, unit_price) "
                "VALUES (%s, %s, %s, %s)",
                (order_row[0], pid, qty, unit),
            )
            cur.execute("UPDATE products SET stock = stock - %s WHERE id = %s", (qty, pid))
        return [("orders", "c", 1), ("order_items", "c", len(lines)), ("products", "u", len(lines))]

    def _set_status(
        self, cur: psycopg2.extensions.cursor, src: tuple[str, ...], dst: str
    ) -> list[tuple[str, str, int]]:
        cur.execute(
            "SELECT id FROM orders WHERE status = ANY(%s) ORDER BY random() LIMIT 1 FOR UPDATE",
            (list(src),),
        )
        row = cur.fetchone()
        if row is None:
            return []
        cur.execute("UPDATE orders SET status = %s WHERE id = %s", (dst, row[0]))
        changes = [("orders", "u", 1)]
        if dst == "cancelled":
            # Cancelling puts the items back on the shelf, in the same transaction. A product
            # deleted since the order was placed has nothing to restore.
            cur.execute(
                "UPDATE products p SET stock = p.stock + i.quantity FROM order_items i "
                "WHERE i.order_id = %s AND p.id = i.product_id",
                (row[0],),
            )
            if cur.rowcount:
                changes.append(("products", "u", cur.rowcount))
        return changes

    def _op_pay_order(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        return self._set_status(cur, ("pending",), "paid")

    def _op_ship_order(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        return self._set_status(cur, ("paid",), "shipped")

    def _op_cancel_order(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        return self._set_status(cur, ("pending", "paid"), "cancelled")

    def _op_delete_product(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM products")
        if row is None:
            return []
        cur.execute("DELETE FROM products WHERE id = %s", (row[0],))
        return [("products", "d", 1)]

    def _op_recreate_product(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        # A deleted product comes back under its old id (a shop re-listing an item).
        cur.execute(
            "SELECT i.product_id FROM order_items i LEFT JOIN products p "
            "ON p.id = i.product_id WHERE p.id IS NULL ORDER BY random() LIMIT 1"
        )
        row = cur.fetchone()
        if row is None:
            return []
        cur.execute(
            "INSERT INTO products (id, name, description, price, stock) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                row[0],
                product_name(self.rng),
                product_description(self.rng),
                price(self.rng),
                self.rng.randint(0, 50),
            ),
        )
        return [("products", "c", 1)]

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
