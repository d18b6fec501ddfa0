"""Test kit of the parsing library: golden records and builders of hand-made records.

Shipped inside the package so every service's tests use the same records and stay short:

* ``golden(name)`` / ``golden_records()``: records captured byte for byte from the real Debezium
  PostgreSQL connector by ``scripts/capture_golden.py`` (``pg-*``), plus hand-written records
  following Debezium's documentation for forms the embedded stack cannot produce (``mysql-*``,
  ``unwrap-*``). Each is a ``KafkaRecord`` with a ``description``.
* ``make_change(...)``, ``make_tombstone``, ``make_heartbeat``, ``make_transaction``,
  ``make_user_activity``: build records the way the connector would encode them, from plain
  Python values (``Decimal`` -> base64 Connect Decimal, aware ``datetime`` -> ZonedTimestamp...).
"""

from __future__ import annotations

from cdc_events.testing._builders import (
    make_change,
    make_heartbeat,
    make_tombstone,
    make_transaction,
    make_user_activity,
)
from cdc_events.testing._golden import KafkaRecord, golden, golden_records
from cdc_events.testing._workload import Workload

__all__ = [
    "KafkaRecord",
    "Workload",
    "golden",
    "golden_records",
    "make_change",
    "make_heartbeat",
    "make_tombstone",
    "make_transaction",
    "make_user_activity",
]
