"""Keeps per-customer, per-product and per-user statistics current in PostgreSQL, exactly once.

``python -m stats_aggregator`` runs the consumer; ``StatsSink`` and ``Decoder`` are its parts,
``domain`` the pure statistics logic, and ``cli.register`` adds ``cdc stats`` to the operator CLI.
"""

from __future__ import annotations

from stats_aggregator._decode import Decoder
from stats_aggregator._model import (
    CustomerRow,
    DayRow,
    LowStockAlert,
    ProductRow,
    RowChange,
    UserEvent,
)
from stats_aggregator.domain import Scores, scores
from stats_aggregator.errors import StatsAggregatorError
from stats_aggregator.settings import SERVICE_NAME, Settings
from stats_aggregator.sink import StatsSink
from stats_aggregator.store import AlertPublisher, InventoryProjection, inventory_table_definition

__all__ = [
    "SERVICE_NAME",
    "AlertPublisher",
    "CustomerRow",
    "DayRow",
    "Decoder",
    "InventoryProjection",
    "LowStockAlert",
    "ProductRow",
    "RowChange",
    "Scores",
    "Settings",
    "StatsAggregatorError",
    "StatsSink",
    "UserEvent",
    "inventory_table_definition",
    "scores",
]
