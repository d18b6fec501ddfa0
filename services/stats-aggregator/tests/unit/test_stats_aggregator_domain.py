"""The statistics logic against a reference computed from the final source state.

A random shop history (sign-ups, products created/restocked/re-priced/deleted/re-created,
orders placed, paid, shipped, cancelled, removed, back-dated) is turned into per-table,
per-partition change logs as Debezium emits them (a snapshot taken while a transaction is open,
then the streamed transactions, each change with its source version; optionally Debezium loses
its offsets, the transactions committed meanwhile are never streamed, and a new snapshot, whose
last read of each table carries its sweep version, is followed by more streaming), re-emits are
spliced in, and the logs are consumed with random batch cuts and random interleavings of the
topics through ``domain.apply_changes`` over an in-memory store. Whatever the order, every
statistic must equal the reference.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from cdc_events import UNCHANGED, ChangeView, Parser, source_version, sweep_version
from cdc_events.testing import make_change
from stats_aggregator._model import (
    IMAGE_TYPES,
    CustomerRow,
    DayRow,
    Item,
    Product,
    ProductRow,
    RowChange,
    Stored,
    Transition,
    UserEvent,
)
from stats_aggregator.domain import (
    BatchOutcome,
    apply_changes,
    average,
    bounded_latest,
    first_occurrences,
    fold,
    fold_user_events,
    is_reemit,
    low_stock_detector,
    scores,
)

ZERO = Decimal("0.00")
T0 = datetime(2024, 3, 1, 22, 0, tzinfo=UTC)


class MemoryStore:
    """``domain.StateStore`` in dicts, with the same visibility rules as the SQL store."""

    def __init__(self) -> None:
        self.states: dict[str, dict[int, Stored[Any]]] = defaultdict(dict)
        self.customers: dict[int, CustomerRow] = {}
        self.products: dict[int, ProductRow] = {}
        self.days: dict[date, DayRow] = {}
        self.statuses: dict[str, int] = {}
        self.sweeps: dict[str, str] = {}

    def load_states(self, table: str, keys: Collection[int]) -> dict[int, Stored[Any]]:
        return {k: self.states[table][k] for k in keys if k in self.states[table]}

    def live_keys_below(self, table: str, version: str, after: int, limit: int) -> list[int]:
        return sorted(
            k
            for k, s in self.states[table].items()
            if k > after and s.image is not None and (s.version is None or s.version < version)
        )[:limit]

    def load_sweeps(self) -> dict[str, str]:
        return dict(self.sweeps)

    def save_sweep(self, table: str, version: str) -> None:
        self.sweeps[table] = max(version, self.sweeps.get(table, version))

    def load_lines(self, order_ids: Collection[int]) -> dict[int, Item]:
        return {
            k: s.image
            for k, s in self.states["order_items"].items()
            if s.image is not None and s.image.order_id in order_ids
        }

    def save_states(self, table: str, transitions: Collection[Transition[Any]]) -> None:
        for t in transitions:
            self.states[table][t.key] = Stored(t.new, t.version, t.lsn)

    def load_customer_rows(self, keys: Collection[int]) -> dict[int, CustomerRow]:
        return {k: self.customers[k] for k in keys if k in self.customers}

    def save_customer_rows(self, rows: Collection[CustomerRow]) -> None:
        for r in rows:
            if r.visible:
                self.customers[r.customer_id] = r
            else:
                self.customers.pop(r.customer_id, None)

    def recount_first_last(self, customers: Collection[int]) -> None:
        for c in customers:
            if c not in self.customers:
                continue
            times = [
                s.image.created_at
                for s in self.states["orders"].values()
                if s.image is not None and s.image.customer_id == c
            ]
            self.customers[c] = dataclasses.replace(
                self.customers[c],
                first_order_at=min(times, default=None),
                last_order_at=max(times, default=None),
            )

    def load_product_rows(self, keys: Collection[int]) -> dict[int, ProductRow]:
        return {k: self.products[k] for k in keys if k in self.products}

    def save_product_rows(self, rows: Collection[ProductRow]) -> None:
        for r in rows:
            if r.visible:
                self.products[r.product_id] = r
            else:
                self.products.pop(r.product_id, None)

    def load_day_rows(self, days: Collection[date]) -> dict[date, DayRow]:
        return {d: self.days[d] for d in days if d in self.days}

    def save_day_rows(self, rows: Collection[DayRow]) -> None:
        for r in rows:
            if r.orders > 0:
                self.days[r.day] = r
            else:
                self.days.pop(r.day, None)

    def load_status_counts(self) -> dict[str, int]:
        return dict(self.statuses)

    def save_status_counts(self, counts: Mapping[str, int]) -> None:
        for s, n in counts.items():
            if n > 0:
                self.statuses[s] = n
            else:
                self.statuses.pop(s, None)


# -- a random shop history -------------------------------------------------------------------


class Shop:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lsn = 1000
        self.tables: dict[str, dict[int, dict[str, Any]]] = {
            t: {} for t in ("customers", "products", "orders", "order_items")
        }
        self.ids: dict[str, int] = defaultdict(int)
        self.log: list[RowChange] = []  # as Debezium emits it: snapshot, then commit order
        # The commit LSN of the transaction emitted before the current one (Debezium's
        # ``source.sequence[0]``); None for the first transaction after the snapshot.
        self.commit_key: int | None = None
        self.point: int | None = None  # the consistent point of the latest snapshot

    def transaction(self) -> None:
        """One shop operation as one source transaction, then its commit record."""
        self.step()
        self.lsn += self.rng.randint(1, 50)
        self.commit_key = self.lsn

    def snapshot(self, open_steps: int) -> int:
        """Debezium's initial snapshot, taken while a transaction is open (not yet emitted
        changes are dropped: they happened before the connector). The open transaction's changes
        have LSNs below the snapshot's consistent point, but the snapshot does not see them, and
        they are streamed after its reads, first, with a null commit key (their version takes
        the point as generation key: ``Versions``). The last read of each table carries the
        sweep version. Returns how many of them change a row the snapshot read."""
        self.log.clear()
        return self._snapshot(open_steps)

    def resnapshot(self, gap: int, open_steps: int) -> set[tuple[str, int]]:
        """Debezium lost its offsets: ``gap`` transactions (and a few order and product
        removals) commit and are never streamed, then it snapshots again (a new generation) and
        streams on. Returns the rows deleted meanwhile that existed before (only the sweep can
        delete them: no snapshot reports a delete)."""
        before = {(t, k) for t, rows in self.tables.items() for k in rows}
        mark = len(self.log)
        for _ in range(gap):
            self.transaction()
        for _ in range(3):
            self.step("remove_order")
            self.step("delete_product")
            self.transaction()
        # A table emptied meanwhile has no read in the new snapshot, so no last read and no
        # sweep (a limit of the sweep, in the README): not what this history is about.
        for table, op in (("products", "product"), ("orders", "order")):
            if not self.tables[table]:
                self.step(op)
        del self.log[mark:]
        self._snapshot(open_steps)
        return before - {(t, k) for t, rows in self.tables.items() for k in rows}

    def _snapshot(self, open_steps: int) -> int:
        mark = len(self.log)
        seen = {t: {k: dict(row) for k, row in rows.items()} for t, rows in self.tables.items()}
        self.commit_key = None
        for _ in range(open_steps):
            self.step()
        open_tx = self.log[mark:]
        del self.log[mark:]
        point = self.point = self.lsn + self.rng.randint(1, 50)
        snapshot_version = _version(point, snapshot=True)
        for table, rows in seen.items():
            reads = [
                _change(table, key, "r", row, point, f"r:{table}:{key}:{point}", snapshot_version)
                for key, row in rows.items()
            ]
            if reads:  # the last read of the table
                reads[-1] = dataclasses.replace(reads[-1], sweep=_sweep(point))
            self.log.extend(reads)
        self.log.extend(
            dataclasses.replace(c, version=_version(c.lsn or 0, point=point)) for c in open_tx
        )
        self.lsn = point + self.rng.randint(1, 50)  # it commits after the consistent point
        self.commit_key = self.lsn
        return sum(1 for c in open_tx if c.key in seen[c.table])

    def _emit(self, table: str, key: int, op: str, row: dict[str, Any] | None) -> None:
        self.lsn += self.rng.randint(1, 50)
        self.log.append(self._change(table, key, op, row))

    def _change(self, table: str, key: int, op: str, row: dict[str, Any] | None) -> RowChange:
        return _change(
            table, key, op, None if row is None else dict(row), self.lsn,
            f"{table}:{key}:{self.lsn}", _version(self.lsn, self.commit_key),
        )  # fmt: skip

    def insert(self, table: str, row: dict[str, Any], key: int | None = None) -> int:
        if key is None:
            self.ids[table] += 1
            key = self.ids[table]
        self.tables[table][key] = row
        self._emit(table, key, "c", row)
        return key

    def update(self, table: str, key: int, **changes: Any) -> None:
        self.tables[table][key].update(changes)
        self._emit(table, key, "u", self.tables[table][key])

    def delete(self, table: str, key: int) -> None:
        del self.tables[table][key]
        self._emit(table, key, "d", None)

    def step(self, op: str | None = None) -> None:
        rng, t = self.rng, self.tables
        op = op or rng.choices(
            ["signup", "country", "product", "restock", "price", "delete_product", "recreate",
             "order", "pay", "ship", "cancel", "remove_order", "backdate", "toast"],
            [5, 2, 3, 6, 4, 1, 1, 30, 12, 8, 6, 1, 1, 2],
        )[0]  # fmt: skip
        if op == "signup" or not t["customers"]:
            self.insert("customers", {"country": rng.choice("ABC")})
        elif op == "country":
            self.update("customers", rng.choice(list(t["customers"])), country=rng.choice("ABC"))
        elif op == "product" or not t["products"]:
            self.insert(
                "products",
                {"name": f"p{rng.random():.3f}", "price": _money(rng), "stock": rng.randint(0, 30)},
            )
        elif op == "restock":
            pid = rng.choice(list(t["products"]))
            self.update("products", pid, stock=t["products"][pid]["stock"] + rng.randint(1, 20))
        elif op == "price":
            self.update("products", rng.choice(list(t["products"])), price=_money(rng))
        elif op == "toast":
            # An update whose unchanged TOASTed column arrives as the placeholder.
            pid = rng.choice(list(t["products"]))
            self.tables["products"][pid]["stock"] += 1
            row = dict(self.tables["products"][pid], name=UNCHANGED)
            self.lsn += 1
            self.log.append(self._change("products", pid, "u", row))
        elif op == "delete_product":
            self.delete("products", rng.choice(list(t["products"])))
        elif op == "recreate":
            gone = {i["product_id"] for i in t["order_items"].values()} - set(t["products"])
            if gone:
                row = {"name": "again", "price": _money(rng), "stock": rng.randint(0, 15)}
                self.insert("products", row, key=rng.choice(sorted(gone)))
        elif op == "order":
            cid = rng.choice(list(t["customers"]))
            pids = rng.sample(sorted(t["products"]), min(len(t["products"]), rng.randint(1, 3)))
            lines = [(p, t["products"][p]["price"], rng.randint(1, 3)) for p in pids]
            total = sum((u * q for _, u, q in lines), ZERO)
            at = T0 + timedelta(minutes=rng.randint(0, 6 * 60))
            oid = self.insert(
                "orders",
                {"customer_id": cid, "status": "pending", "total": total, "created_at": at},
            )
            for p, unit, qty in lines:
                self.insert(
                    "order_items",
                    {"order_id": oid, "product_id": p, "quantity": qty, "unit_price": unit},
                )
                self.update("products", p, stock=max(0, t["products"][p]["stock"] - qty))
        elif op in ("pay", "ship", "cancel", "remove_order", "backdate"):
            src = {"pay": ("pending",), "ship": ("paid",), "cancel": ("pending", "paid")}.get(
                op, ("pending", "paid", "shipped", "cancelled")
            )
            cands = [k for k, o in t["orders"].items() if o["status"] in src]
            if not cands:
                return
            oid = rng.choice(cands)
            if op == "remove_order":
                for iid in [k for k, i in t["order_items"].items() if i["order_id"] == oid]:
                    self.delete("order_items", iid)
                self.delete("orders", oid)
            elif op == "backdate":
                at = t["orders"][oid]["created_at"] - timedelta(hours=rng.randint(1, 30))
                self.update("orders", oid, created_at=at)
            else:
                dst = {"pay": "paid", "ship": "shipped", "cancel": "cancelled"}[op]
                self.update("orders", oid, status=dst)


def _money(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(100, 5000)) / 100


def reference(shop: Shop, threshold: int) -> dict[str, Any]:
    """The statistics by their definitions (what ``devstack.truth`` computes in SQL)."""
    t = shop.tables
    customers = {}
    for cid, c in t["customers"].items():
        orders = [o for o in t["orders"].values() if o["customer_id"] == cid]
        live = [o for o in orders if o["status"] != "cancelled"]
        spent = sum((o["total"] for o in live), ZERO)
        customers[cid] = (
            c["country"], len(orders),
            sum(o["status"] in ("paid", "shipped") for o in orders),
            sum(o["status"] == "cancelled" for o in orders), spent, average(spent, len(live)),
            min((o["created_at"] for o in orders), default=None),
            max((o["created_at"] for o in orders), default=None),
        )  # fmt: skip
    products: dict[int, Any] = {}
    for pid in set(t["products"]) | {i["product_id"] for i in t["order_items"].values()}:
        p = t["products"].get(pid)
        sold = [
            i
            for i in t["order_items"].values()
            if i["product_id"] == pid
            and i["order_id"] in t["orders"]
            and t["orders"][i["order_id"]]["status"] != "cancelled"
        ]
        stock = None if p is None else p["stock"]
        products[pid] = (
            None if p is None else p["name"], None if p is None else p["price"], stock,
            sum(i["quantity"] for i in sold),
            sum((i["quantity"] * i["unit_price"] for i in sold), ZERO),
            stock is not None and stock < threshold, p is None,
        )  # fmt: skip
    statuses: dict[str, int] = defaultdict(int)
    days: dict[date, list[Any]] = defaultdict(lambda: [0, ZERO])
    for o in t["orders"].values():
        statuses[o["status"]] += 1
        if o["status"] != "cancelled":
            d = days[o["created_at"].astimezone(UTC).date()]
            d[0] += 1
            d[1] += o["total"]
    return {
        "customers": customers,
        "products": products,
        "statuses": dict(statuses),
        "days": {k: tuple(v) for k, v in days.items()},
    }


def observed(store: MemoryStore) -> dict[str, Any]:
    return {
        "customers": {
            k: (r.country, r.orders_count, r.paid_or_shipped_count, r.cancelled_count,
                r.total_spent, r.avg_order_value, r.first_order_at, r.last_order_at)
            for k, r in store.customers.items()
        },
        "products": {
            k: (r.name, r.price, r.stock, r.units_sold, r.revenue, r.low_stock, r.deleted)
            for k, r in store.products.items()
        },
        "statuses": store.statuses,
        "days": {k: (r.orders, r.revenue) for k, r in store.days.items()},
    }  # fmt: skip


def partition_logs(shop: Shop, rng: random.Random, partitions: int) -> list[list[RowChange]]:
    """Per (table, partition) logs in commit order, with re-emitted ranges spliced in."""
    logs: dict[tuple[str, int], list[RowChange]] = defaultdict(list)
    events = list(shop.log)
    # A connector restart re-sends everything since its last flushed position.
    for _ in range(3):
        cut = rng.randint(0, len(events))
        back = rng.randint(1, 40)
        events[cut:cut] = events[max(0, cut - back) : cut]
    for e in events:
        logs[(e.table, e.key % partitions)].append(e)
    return list(logs.values())


def consume(
    store: MemoryStore,
    logs: list[list[RowChange]],
    rng: random.Random,
    threshold: int,
    sweep_chunk: int = 1000,
) -> BatchOutcome:
    """Every log to its end in random batches; the outcomes' counts summed (sweeps listed)."""
    pos = [0] * len(logs)
    total = BatchOutcome()
    while any(p < len(log) for p, log in zip(pos, logs, strict=True)):
        changes: dict[str, list[RowChange]] = defaultdict(list)
        for i, log in enumerate(logs):
            if pos[i] >= len(log) or rng.random() < 0.5:
                continue  # this partition lags behind in this batch
            n = rng.randint(1, 30)
            for change in log[pos[i] : pos[i] + n]:
                changes[change.table].append(change)
            pos[i] += n
        out = apply_changes(store, changes, threshold, sweep_chunk=sweep_chunk)
        total.applied += out.applied
        total.skipped += out.skipped
        total.sweeps.extend(out.sweeps)
    return total


@pytest.mark.parametrize("seed", range(12))
def test_every_statistic_equals_the_reference_whatever_the_arrival_order(seed: int) -> None:
    rng = random.Random(seed)
    shop = Shop(rng)
    for _ in range(100):
        shop.transaction()  # before the connector
    # Changes the snapshot also read, with LSNs below its point: by LSN they look older.
    assert shop.snapshot(open_steps=5) > 0
    for _ in range(300):
        shop.transaction()
    store = MemoryStore()
    skipped = consume(store, partition_logs(shop, rng, partitions=3), rng, threshold=10).skipped
    assert skipped > 0  # re-emits were there and were absorbed
    want, got = reference(shop, 10), observed(store)
    for name in want:
        assert got[name] == want[name], name


@pytest.mark.parametrize("seed", range(12))
def test_a_new_snapshot_after_lost_offsets_sweeps_the_rows_deleted_meanwhile(seed: int) -> None:
    # What a read model built from the source after the whole history holds, whatever the
    # arrival order: rows deleted while Debezium had no offsets are swept (with their orders'
    # lines, spend, days, statuses and units sold), rows read again or changed after the new
    # snapshot stay, rows swept because their own partition's reads had not arrived yet come
    # back with them, re-emitted markers sweep nothing more, older changes replayed after the
    # sweep resurrect nothing.
    rng = random.Random(1000 + seed)
    shop = Shop(rng)
    for _ in range(50):
        shop.transaction()  # before the connector
    shop.snapshot(open_steps=3)
    for _ in range(150):
        shop.transaction()
    gone = shop.resnapshot(gap=40, open_steps=3)
    assert gone  # rows no snapshot reports deleted
    for _ in range(100):
        shop.transaction()
    store = MemoryStore()
    chunk = rng.randint(1, 7)  # many rounds per sweep
    out = consume(store, partition_logs(shop, rng, partitions=3), rng, 10, sweep_chunk=chunk)
    assert sum(s.deleted for s in out.sweeps) > 0
    want, got = reference(shop, 10), observed(store)
    for name in want:
        assert got[name] == want[name], name
    # The states are those of the source: every live state is a row of it (a key of a lagging
    # partition that was not stored when its table was swept is not created by its older
    # changes either: the table's sweep version stops them).
    for table, states in store.states.items():
        live = {k for k, s in states.items() if s.image is not None}
        assert live == set(shop.tables[table]), table


def test_a_sweep_deletes_live_keys_below_its_version_in_chunks_and_once() -> None:
    s = 50_000
    store = MemoryStore()
    read = _version(s, snapshot=True)
    p = {"name": "x", "price": Decimal("1.00"), "stock": 20}
    store.states["products"] = {
        1: Stored(Product("x", Decimal("1.00"), 20), _version(s - 900, s - 950), s - 900),
        2: Stored(Product("x", Decimal("1.00"), 20), None, s - 800),  # stored before versions
        3: Stored(Product("x", Decimal("1.00"), 20), "p1" + "0" * 40, s - 700),  # old form
        4: Stored(None, _version(s - 600, s - 650), s - 600),  # deleted already
        5: Stored(Product("x", Decimal("1.00"), 20), read, s),  # read by the snapshot
        6: Stored(Product("x", Decimal("1.00"), 20), _version(s + 90, s + 50), s + 90),
        7: Stored(Product("x", Decimal("1.00"), 4), _version(s - 500, s - 550), s - 500),
    }
    store.products = {
        k: ProductRow(k, "x", Decimal("1.00"), 20, False, False, 0, ZERO, 0) for k in range(1, 8)
    }
    store.products[4] = ProductRow(4, None, None, None, False, True, 0, ZERO, 1)
    marker = dataclasses.replace(
        _change("products", 5, "r", p, s, "r5", read), sweep=_sweep(s), partition=2, offset=40
    )
    out = apply_changes(store, {"products": [marker]}, 10, sweep_chunk=2)
    assert [(o.table, o.version, o.deleted) for o in out.sweeps] == [("products", _sweep(s), 4)]
    assert out.products_changed and out.skipped == 1  # the marker itself: a re-emit here
    live = {k for k, st in store.states["products"].items() if st.image is not None}
    assert live == {5, 6}
    for k in (1, 2, 3, 7):
        assert store.states["products"][k].version == _sweep(s)
    assert store.states["products"][2].lsn == s - 800  # its own LSN: a swept delete has none
    assert sorted(store.products) == [4, 5, 6]  # 4: still referenced by a line
    # The marker again (a redelivery, a re-emit): nothing left to sweep.
    again = apply_changes(store, {"products": [marker]}, 10)
    assert [o.deleted for o in again.sweeps] == [0]
    # An older change, of a swept key or of one never seen, arriving later: skipped.
    late = [
        _change("products", 1, "u", p, s - 100, "late1", _version(s - 100, s - 150)),
        _change("products", 8, "c", p, s - 90, "late8", _version(s - 90, s - 150)),
    ]
    assert apply_changes(store, {"products": late}, 10).skipped == 2
    assert 8 not in store.states["products"] and 8 not in store.products
    # The snapshot's own read of a swept key, and a later change, bring it back.
    back = [
        _change("products", 1, "r", p, s, "r1", read),
        _change("products", 8, "c", p, s + 100, "new8", _version(s + 100, s + 95)),
    ]
    apply_changes(store, {"products": back}, 10)
    live = {k for k, st in store.states["products"].items() if st.image is not None}
    assert live == {1, 5, 6, 8}


def test_an_order_cancelled_before_its_lines_arrive_never_counts_them() -> None:
    store = MemoryStore()
    order = {"customer_id": 1, "status": "pending", "total": Decimal("9.00"), "created_at": T0}
    line = {"order_id": 7, "product_id": 3, "quantity": 2, "unit_price": Decimal("4.50")}
    apply_changes(store, {"orders": [_rc("orders", 7, "c", order, 10)]}, 10)
    apply_changes(
        store, {"orders": [_rc("orders", 7, "u", order | {"status": "cancelled"}, 30)]}, 10
    )
    apply_changes(store, {"order_items": [_rc("order_items", 70, "c", line, 20)]}, 10)
    assert store.products[3].units_sold == 0
    assert store.products[3].deleted  # referenced, never seen in products
    # Reinstated: the line counts again.
    apply_changes(store, {"orders": [_rc("orders", 7, "u", order | {"status": "paid"}, 40)]}, 10)
    assert (store.products[3].units_sold, store.products[3].revenue) == (2, Decimal("9.00"))
    assert store.customers[1].total_spent == Decimal("9.00")
    assert store.days[T0.date()].orders == 1


def test_a_reemit_at_or_before_the_stored_version_is_skipped() -> None:
    stored = {5: Stored(Product("a", Decimal("1.00"), 3), _version(100), 100)}
    changes = [
        _rc("products", 5, "u", {"name": "old", "price": Decimal("1"), "stock": 1}, 90),
        _rc("products", 5, "u", {"name": "same", "price": Decimal("1"), "stock": 1}, 100),
        _rc("products", 5, "u", {"name": "new", "price": Decimal("2"), "stock": 2}, 101),
    ]
    folded = fold(changes, stored)
    assert (folded.applied, folded.skipped) == (1, 2)
    t = folded.transitions[5]
    assert t.old == Product("a", Decimal("1.00"), 3)
    assert t.new == Product("new", Decimal("2"), 2)
    assert (t.version, t.lsn) == (_version(101), 101)


def test_versions_order_a_row_where_lsns_do_not() -> None:
    # The snapshot read at its consistent point S; a transaction open at S changed the row at
    # S - 100 and committed after S (the first one streamed: no commit key); the next one's
    # commit key is that transaction's commit LSN.
    s = 50_000
    read = _version(s, snapshot=True)
    open_tx = _version(s - 100, point=s)  # the first transaction after the snapshot
    later = _version(s + 20, commit=s + 10)
    assert read < open_tx < later
    assert not is_reemit(open_tx, read, s - 100, s)  # by LSN alone it would be skipped
    assert is_reemit(open_tx, later) and is_reemit(read, open_tx) and is_reemit(read, read)
    # A state stored before versions is compared by its LSN until its next change.
    assert is_reemit(later, None, s + 20, s + 20)
    assert not is_reemit(later, None, s + 20, s + 19)
    assert not is_reemit(later, None, s + 20, None)


def test_a_change_of_the_transaction_open_across_the_snapshot_is_applied_after_its_read() -> None:
    s = 50_000
    cup = {"name": "cup", "price": Decimal("2.00")}
    read = _change("products", 5, "r", cup | {"stock": 20}, s, "r", _version(s, snapshot=True))
    sold_version = _version(s - 100, point=s)
    sold = _change("products", 5, "u", cup | {"stock": 4}, s - 100, "u", sold_version)
    alerts: list[Any] = []
    folded = fold([read, sold, read], {}, low_stock_detector(10, alerts))  # and a re-emit
    assert (folded.applied, folded.skipped) == (2, 1)
    assert folded.transitions[5].new == Product("cup", Decimal("2.00"), 4)
    assert folded.transitions[5].version == sold_version
    # Across batches: the stored read, then the streamed change.
    first = fold([read], {}).transitions[5]
    stored = {5: Stored(first.new, first.version, first.lsn)}
    assert fold([sold], stored).transitions[5].new == Product("cup", Decimal("2.00"), 4)
    assert [(a.stock, a.lsn, a.version) for a in alerts] == [(4, s - 100, sold_version)]


def test_a_state_stored_before_versions_is_compared_by_lsn_until_its_next_change() -> None:
    stored = {5: Stored(Product("a", Decimal("1.00"), 3), None, 100)}
    changes = [
        _rc("products", 5, "u", {"name": "old", "price": Decimal("1"), "stock": 1}, 90),
        _rc("products", 5, "u", {"name": "new", "price": Decimal("2"), "stock": 2}, 101),
        _rc("products", 5, "u", {"name": "old", "price": Decimal("1"), "stock": 1}, 90),
    ]
    folded = fold(changes, stored)
    assert (folded.applied, folded.skipped) == (1, 2)
    assert folded.transitions[5].new == Product("new", Decimal("2"), 2)
    assert folded.transitions[5].version == _version(101)


def test_a_delete_of_a_key_never_seen_is_remembered() -> None:
    # An older change replayed after the delete must not bring the row back.
    folded = fold([_rc("products", 5, "d", None, 100)], {})
    t = folded.transitions[5]
    assert (t.old, t.new, t.version) == (None, None, _version(100))
    stored = {5: Stored(None, t.version, t.lsn)}
    replay = _rc("products", 5, "c", {"name": "x", "price": Decimal(1), "stock": 1}, 90)
    assert fold([replay], stored).skipped == 1


def test_an_unchanged_toast_column_keeps_the_previous_value() -> None:
    stored = {5: Stored(Product("kept", Decimal("1.00"), 3), _version(100), 100)}
    change = _rc("products", 5, "u", {"name": UNCHANGED, "price": Decimal("1.00"), "stock": 9}, 101)
    assert fold([change], stored).transitions[5].new == Product("kept", Decimal("1.00"), 9)


def test_low_stock_alerts_fire_once_per_crossing_and_rearm() -> None:
    alerts: list[Any] = []
    stocks = [15, 9, 5, 12, 8, 8]
    changes = [
        _rc("products", 1, "u", {"name": "x", "price": Decimal(1), "stock": s}, 10 + i)
        for i, s in enumerate(stocks)
    ]
    changes.append(_rc("products", 1, "d", None, 50))
    changes.append(_rc("products", 1, "c", {"name": "x", "price": Decimal(1), "stock": 2}, 60))
    fold(changes, {}, low_stock_detector(10, alerts))
    assert [(a.stock, a.lsn) for a in alerts] == [(9, 11), (8, 14), (2, 60)]
    assert alerts[0].to_message()["source"] == {
        "lsn": 11,
        "version": _version(11),
        "event_id": "products-1-11",
        "ts_ms": 11,
    }


def test_user_events_are_folded_per_user_once_per_event_id() -> None:
    def ev(i: str, user: str, kind: str, minute: int, amount: str | None = None,
           duration: str | None = None) -> UserEvent:  # fmt: skip
        return UserEvent(i, user, kind, T0 + timedelta(minutes=minute),
                         None if amount is None else Decimal(amount),
                         None if duration is None else Decimal(duration), 0, 0)  # fmt: skip

    events = [
        ev("a", "u1", "view", 1, duration="10.5"),
        ev("b", "u1", "purchase", 5, amount="19.99"),
        ev("b", "u1", "purchase", 5, amount="19.99"),
        ev("c", "u1", "click", 3, duration="1.5"),
        ev("d", "u2", "click", 2),
    ]
    totals = fold_user_events(first_occurrences(events))
    u1 = totals["u1"]
    assert (u1.total_events, u1.total_purchases, u1.total_spent) == (3, 1, Decimal("19.99"))
    assert u1.last_active == T0 + timedelta(minutes=5)
    assert (u1.duration_sum, u1.duration_count) == (Decimal("12.0"), 2)
    assert totals["u2"].total_events == 1


def test_scores_follow_the_documented_formula() -> None:
    # Active right now, 100 events, 500 spent: fully engaged, no churn risk.
    top = scores(100, Decimal(500), T0, T0)
    assert (top.engagement_score, top.churn_risk) == (Decimal("100.0"), Decimal("0.000"))
    # Idle 15 days (R = 0.5), 10 events (F = 0.1), 50 spent (M = 0.1).
    mid = scores(10, Decimal(50), T0, T0 + timedelta(days=15))
    assert mid.engagement_score == Decimal("30.0")  # 100 * (0.25 + 0.03 + 0.02)
    assert mid.churn_risk == Decimal("0.620")  # 1 - (0.35 + 0.03)
    # Idle beyond the horizon, nothing else: no engagement, full churn risk.
    gone = scores(0, Decimal(0), T0, T0 + timedelta(days=90))
    assert (gone.engagement_score, gone.churn_risk) == (Decimal("0.0"), Decimal("1.000"))


def test_the_watermark_takes_no_event_time_past_the_clock_plus_the_skew() -> None:
    bound = T0 + timedelta(minutes=5)  # the processing clock T0, 5 minutes of skew
    ahead = datetime(2099, 1, 1, tzinfo=UTC)
    assert bounded_latest([T0 - timedelta(hours=1), ahead], bound) == bound
    assert bounded_latest([T0 - timedelta(hours=1), T0 + timedelta(minutes=4)], bound) == (
        T0 + timedelta(minutes=4)  # within the skew: believed
    )
    assert bounded_latest([datetime(1970, 1, 1, tzinfo=UTC)], bound) == datetime(
        1970, 1, 1, tzinfo=UTC
    )
    assert bounded_latest([], bound) is None


_PARSER = Parser()


def _view(lsn: int, commit: int | None, snapshot: str) -> ChangeView:
    r = make_change(
        "u" if snapshot == "false" else "r",
        after={"id": 1},
        lsn=lsn,
        sequence=(commit, lsn),
        snapshot=snapshot,
    )
    view = _PARSER.parse_view(r.topic, r.partition, r.offset, r.key, r.value)
    assert isinstance(view, ChangeView)
    return view


def _version(
    lsn: int, commit: int | None = None, *, snapshot: bool = False, point: int | None = None
) -> str:
    """``cdc_events.source_version`` of a PostgreSQL change at ``lsn`` whose
    ``source.sequence`` is ``[commit, lsn]`` (a snapshot read when ``snapshot``); ``point``:
    the consistent point of the snapshot read before it (what ``Versions`` gives the first
    transaction after a snapshot)."""
    return source_version(_view(lsn, commit, "true" if snapshot else "false"), point)


def _sweep(point: int) -> str:
    """``cdc_events.sweep_version`` of the last read of a table in the snapshot at ``point``."""
    version = sweep_version(_view(point, None, "last_in_data_collection"))
    assert version is not None
    return version


def _rc(table: str, key: int, op: str, values: dict[str, Any] | None, lsn: int) -> RowChange:
    """A streamed change at ``lsn``, the first of its transaction after the snapshot."""
    return _change(table, key, op, values, lsn, f"{table}-{key}-{lsn}", _version(lsn))


def _change(
    table: str,
    key: int,
    op: str,
    values: dict[str, Any] | None,
    lsn: int,
    event_id: str,
    version: str,
) -> RowChange:
    """A change as the decoder builds it (values in the image's column order)."""
    row = None
    if values is not None:
        row = tuple(values.get(f) for f in IMAGE_TYPES[table]._fields)
    partial = row is not None and any(v is UNCHANGED for v in row)
    return RowChange(table, key, op, row, version, lsn, event_id, lsn, 0, 0, partial)
