"""The flow monitor (the live view's and the chaos run's count of records per topic and op)
outlives a broker that does not answer: a paused broker must not end the count."""

from __future__ import annotations

import time

from devstack._flow import FlowMonitor
from devstack._proc import free_port


def test_the_flow_monitor_keeps_running_while_the_broker_does_not_answer() -> None:
    # Nothing listens on this port: every metadata request times out, as while the broker is
    # SIGSTOPped in the chaos run.
    monitor = FlowMonitor(f"127.0.0.1:{free_port()}", ["dbserver1.public.orders"])
    monitor.start()
    try:
        time.sleep(7)  # past the first metadata request's 5 s timeout
        assert monitor.is_alive()
        assert monitor.total("dbserver1.public.orders") == 0
    finally:
        monitor.stop()
    assert not monitor.is_alive()
