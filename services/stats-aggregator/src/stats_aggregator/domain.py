"""The statistics as pure functions of per-key row states (no I/O).

Every statistic is a function of the latest row image of each ``customers``, ``products``,
``orders`` and ``order_items`` key. A batch is applied in three steps, then swept
(``apply_changes``; steps 2 and 3 live in ``_deltas``):

1. ``fold`` each table's changes per key, in Kafka order, against the stored state: a change
   whose source version is at or before the key's stored one is a re-emit (or a replay) and is
   skipped (``is_reemit``), and so is one at or below the table's last sweep version (step 4);
   the result is one ``Transition`` (image before the batch -> image after it) per changed key.
2. ``compute_deltas``: each statistic's change is its value over the new images minus its value
   over the old ones, per key. An order line contributes to its product only while its order
   exists and is not cancelled, so an order whose liveness flips also moves the contribution of
   its lines that the batch did not touch (the sink loads those), whatever order the two topics
   arrived in.
3. ``apply_*``: old statistic rows + deltas -> new rows (one upsert per key per batch).
4. ``sweep``, for each change of the batch carrying ``sweep`` S (the last read of its table in
   a Debezium snapshot), after the steps above: every key of its table whose stored state is
   live and whose version is below S is deleted with version S, through steps 1-3 like any
   delete; S is then recorded for the table, and ``fold`` skips every change of the table at or
   below it from the next batch on (the rule and why: ``_sweep``, where the sweep lives).

``apply_changes`` runs them against a ``StateStore``: the sink's is PostgreSQL inside the
batch's transaction (with the consumer offsets), the unit tests' is a few dicts.
User-activity statistics (sums of user events, the engagement score and churn risk as of the
activity watermark) live in ``_activity``; this module re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from cdc_events import UNCHANGED

from stats_aggregator._activity import (
    Scores,
    bounded_latest,
    first_occurrences,
    fold_user_events,
    scores,
)
from stats_aggregator._deltas import (
    CustomerDelta,
    DayDelta,
    Deltas,
    ProductDelta,
    apply_customer,
    apply_day,
    apply_product,
    apply_status_counts,
    average,
    compute_deltas,
    flipped_orders,
    is_live,
    order_ids_of_items,
)
from stats_aggregator._model import (
    IMAGE_TYPES,
    CustomerRow,
    DayRow,
    Item,
    LowStockAlert,
    Product,
    ProductRow,
    RowChange,
    Stored,
    Transition,
)
from stats_aggregator._sweep import (
    SWEEP_CHUNK,
    SweepOutcome,
    SweepStore,
    sweep_markers,
    sweep_table,
    swept_delete,
)

# -- 1. fold ----------------------------------------------------------------------------------


def is_reemit(
    version: str,
    stored_version: str | None,
    lsn: int | None = None,
    stored_lsn: int | None = None,
) -> bool:
    """A change at or before the key's last applied source version was applied already.

    Versions (``cdc_events.source_version``) order one row's changes as text: snapshot reads
    before streamed changes, then the commit key, then the change's LSN. They come from the
    source, so a Debezium re-emit, a redelivery and a dead-letter replay (the same bytes at a
    new offset) all carry the version they had. The change LSN alone is no order: a transaction
    open across the snapshot's consistent point wrote its changes below the snapshot's LSN and
    committed after it.

    A state stored before versions (``stored_version`` None, migration 0004) is compared by the
    rule that stored it, LSNs (right for every pair of changes but that one), until its next
    applied change gives it a version. Without any stored position nothing is skipped.
    """
    if stored_version is not None:
        return version <= stored_version
    return lsn is not None and stored_lsn is not None and lsn <= stored_lsn


def make_image(change: RowChange, previous: Any | None) -> Any:
    """The row image after a change; a column Debezium could not see keeps its previous value."""
    cls = IMAGE_TYPES[change.table]
    values = change.values
    assert values is not None
    if not change.partial:
        return cls._make(values)
    return cls._make(
        (None if previous is None else previous[i]) if v is UNCHANGED else v
        for i, v in enumerate(values)
    )


@dataclass(slots=True)
class Folded:
    """One table's batch, folded per key."""

    transitions: dict[int, Transition[Any]] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0


OnApply = Callable[[RowChange, Any, Any], None]


def fold(
    changes: Iterable[RowChange],
    stored: Mapping[int, Stored[Any]],
    on_apply: OnApply | None = None,
    floor: str | None = None,
) -> Folded:
    """Fold one table's changes (in Kafka order per key) into one transition per changed key.

    ``on_apply(change, image_before, image_after)`` sees every applied change in order (the
    low-stock crossings are detected per change, so batch boundaries do not change them).
    ``floor``: the table's last sweep version; a change at or below it is skipped whatever the
    key's state (step 4).
    """
    out = Folded()
    current: dict[int, tuple[Any, str, int | None]] = {}  # (image, version, lsn) so far
    first: dict[int, Any] = {}
    version: str | None
    for change in changes:
        key = change.key
        if key in current:
            image, version, lsn = current[key]
        else:
            state = stored.get(key)
            image, version, lsn = (
                (None, None, None) if state is None else (state.image, state.version, state.lsn)
            )
            first[key] = image
        if is_reemit(change.version, version, change.lsn, lsn) or (
            floor is not None and change.version <= floor
        ):
            out.skipped += 1
            continue
        new = None if change.values is None else make_image(change, image)
        if on_apply is not None:
            on_apply(change, image, new)
        current[key] = (new, change.version, change.lsn if change.lsn is not None else lsn)
        out.applied += 1
    # A delete of a key never seen is remembered too (deleted, with its version): an older
    # change replayed after it must not bring the row back.
    for key, (image, applied, lsn) in current.items():
        out.transitions[key] = Transition(key, first[key], image, applied, lsn)
    return out


def low_stock_detector(threshold: int, alerts: list[LowStockAlert]) -> OnApply:
    """An ``on_apply`` for products: one alert each time a product's stock crosses below
    ``threshold`` (a new or re-created product already below it counts); going back to or
    above the threshold, or a delete, re-arms it."""

    def on_apply(change: RowChange, before: Product | None, after: Product | None) -> None:
        if is_low(after, threshold) and not is_low(before, threshold):
            assert after is not None and after.stock is not None
            alerts.append(
                LowStockAlert(
                    product_id=change.key,
                    stock=after.stock,
                    threshold=threshold,
                    lsn=change.lsn,
                    version=change.version,
                    event_id=change.event_id,
                    source_ts_ms=change.source_ts_ms,
                )
            )

    return on_apply


def is_low(product: Product | None, threshold: int) -> bool:
    return product is not None and product.stock is not None and product.stock < threshold


# -- one batch, end to end --------------------------------------------------------------------


class StateStore(SweepStore, Protocol):
    """Where states and statistic rows live (PostgreSQL in the sink, dicts in tests); the
    sweeps' reads and records are ``_sweep.SweepStore``'s."""

    def load_states(self, table: str, keys: Collection[int]) -> dict[int, Stored[Any]]: ...
    def load_lines(self, order_ids: Collection[int]) -> dict[int, Item]: ...
    def save_states(self, table: str, transitions: Collection[Transition[Any]]) -> None: ...
    def load_customer_rows(self, keys: Collection[int]) -> dict[int, CustomerRow]: ...
    def save_customer_rows(self, rows: Collection[CustomerRow]) -> None: ...
    def recount_first_last(self, customers: Collection[int]) -> None: ...
    def load_product_rows(self, keys: Collection[int]) -> dict[int, ProductRow]: ...
    def save_product_rows(self, rows: Collection[ProductRow]) -> None: ...
    def load_day_rows(self, days: Collection[date]) -> dict[date, DayRow]: ...
    def save_day_rows(self, rows: Collection[DayRow]) -> None: ...
    def load_status_counts(self) -> dict[str, int]: ...
    def save_status_counts(self, counts: Mapping[str, int]) -> None: ...


@dataclass(slots=True)
class BatchOutcome:
    alerts: list[LowStockAlert] = field(default_factory=list)
    applied: int = 0
    skipped: int = 0
    products_changed: bool = False
    sweeps: list[SweepOutcome] = field(default_factory=list)


def apply_changes(
    store: StateStore,
    changes: Mapping[str, Sequence[RowChange]],
    threshold: int,
    *,
    sweep_chunk: int = SWEEP_CHUNK,
) -> BatchOutcome:
    """Apply one batch of row changes (per table, Kafka order per key) to ``store``, then the
    sweep of each sweep marker in it (``sweep``; ``sweep_chunk`` keys per round).

    Reads what the deltas need, then writes each changed state and statistic row once.
    """
    floors = store.load_sweeps() if any(changes.values()) else {}
    out = _apply(store, changes, threshold, floors)
    for marker in sweep_markers(changes):
        assert marker.sweep is not None
        swept = sweep(store, marker, threshold, sweep_chunk)
        out.sweeps.append(swept)
        out.products_changed |= marker.table == "products" and swept.deleted > 0
    return out


def sweep(
    store: StateStore, marker: RowChange, threshold: int, chunk: int = SWEEP_CHUNK
) -> SweepOutcome:
    """Delete every live key of ``marker.table`` whose version is below ``marker.sweep``, as
    deletes with that version through the batch's path (module docstring, step 4)."""

    def apply_deletes(deletes: list[RowChange]) -> int:
        return _apply(store, {marker.table: deletes}, threshold, {}).applied

    return sweep_table(store, marker, apply_deletes, chunk)


def _apply(
    store: StateStore,
    changes: Mapping[str, Sequence[RowChange]],
    threshold: int,
    floors: Mapping[str, str],
) -> BatchOutcome:
    out = BatchOutcome()
    folded: dict[str, Folded] = {}
    for table, rows in changes.items():
        if not rows:
            continue
        stored = store.load_states(table, {c.key for c in rows})
        detector = low_stock_detector(threshold, out.alerts) if table == "products" else None
        folded[table] = f = fold(rows, stored, detector, floors.get(table))
        out.applied += f.applied
        out.skipped += f.skipped
    empty = Folded()
    customers = folded.get("customers", empty).transitions
    products = folded.get("products", empty).transitions
    orders = folded.get("orders", empty).transitions
    items = folded.get("order_items", empty).transitions
    out.products_changed = bool(products)
    needed = order_ids_of_items(items) - set(orders)
    orders_before = {k: s.image for k, s in store.load_states("orders", needed).items()}
    lines = store.load_lines(flipped_orders(orders))
    deltas = compute_deltas(customers, products, orders, items, orders_before, lines)

    for table, f in folded.items():
        if f.transitions:
            store.save_states(table, list(f.transitions.values()))
    if keys := deltas.customer_keys():
        old_c = store.load_customer_rows(keys)
        store.save_customer_rows(
            [apply_customer(k, old_c.get(k), deltas.customers.get(k), deltas) for k in keys]
        )
        store.recount_first_last(deltas.recount_first_last)
    if keys := deltas.product_keys():
        old_p = store.load_product_rows(keys)
        store.save_product_rows(
            [
                apply_product(k, old_p.get(k), deltas.products.get(k), deltas, threshold)
                for k in keys
            ]
        )
    if deltas.days:
        old_d = store.load_day_rows(deltas.days)
        store.save_day_rows([apply_day(day, old_d.get(day), d) for day, d in deltas.days.items()])
    if deltas.statuses:
        store.save_status_counts(apply_status_counts(store.load_status_counts(), deltas.statuses))
    return out


__all__ = [
    "SWEEP_CHUNK",
    "BatchOutcome",
    "CustomerDelta",
    "DayDelta",
    "Deltas",
    "Folded",
    "ProductDelta",
    "Scores",
    "StateStore",
    "SweepOutcome",
    "apply_changes",
    "apply_customer",
    "apply_day",
    "apply_product",
    "apply_status_counts",
    "average",
    "bounded_latest",
    "compute_deltas",
    "first_occurrences",
    "flipped_orders",
    "fold",
    "fold_user_events",
    "is_live",
    "is_low",
    "is_reemit",
    "low_stock_detector",
    "make_image",
    "order_ids_of_items",
    "scores",
    "sweep",
    "sweep_markers",
    "swept_delete",
]
