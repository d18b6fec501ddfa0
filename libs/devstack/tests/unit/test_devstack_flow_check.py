from __future__ import annotations

from collections import Counter

import orjson
from devstack import Ledger, expected_flow, flow_checks, op_of


def _ledger() -> Ledger:
    ledger = Ledger()
    ledger.add("products", "u", 5)
    ledger.add("products", "d", 2)
    ledger.add("orders", "c", 3)
    ledger.activity_events = 4
    return ledger


def test_expected_flow_counts_snapshot_changes_and_one_tombstone_per_delete() -> None:
    flow = expected_flow({"products": 10, "customers": 2}, _ledger())
    assert flow["dbserver1.public.products"] == Counter(r=10, u=5, d=2, tombstone=2)
    assert flow["dbserver1.public.orders"] == Counter(c=3)
    assert flow["dbserver1.public.customers"] == Counter(r=2)
    assert flow["dbserver1.public.order_items"] == Counter()


def test_flow_checks_flag_a_missing_change_and_an_unexpected_op() -> None:
    seen = {
        "dbserver1.public.products": Counter(r=10, u=4, d=2, tombstone=2),  # one update lost
        "dbserver1.public.orders": Counter(c=3, r=1),  # an op nobody committed
        "user-events": Counter(other=4),
    }
    checks = {(c.topic, c.op): c for c in flow_checks({"products": 10}, _ledger(), seen)}
    assert not checks[("dbserver1.public.products", "u")].ok
    assert checks[("dbserver1.public.products", "u")].actual == 4
    assert checks[("dbserver1.public.products", "r")].ok
    assert not checks[("dbserver1.public.orders", "r")].ok
    assert checks[("user-events", "event")].ok


def test_op_of_reads_both_converter_forms_and_tombstones() -> None:
    assert op_of(None) == "tombstone"
    assert op_of(orjson.dumps({"schema": {}, "payload": {"op": "u"}})) == "u"
    assert op_of(orjson.dumps({"op": "d", "before": {}})) == "d"
    assert op_of(b"not json") == "other"
    assert op_of(b"[1]") == "other"
