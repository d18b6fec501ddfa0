"""Whatever stops the chaos driver half-way through a fault, nothing stays paused or stopped."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from devstack import ManagedProcess
from devstack.chaos import ChaosDriver, ChaosOptions, PlannedFault


class _Sink:
    """A stand-in for the sink PostgreSQL: a process stopped and started again."""

    def __init__(self, process: ManagedProcess) -> None:
        self.process = process
        self.starts = 0

    def stop(self) -> None:
        self.process.stop(timeout=5)

    def start(self) -> None:
        self.starts += 1
        self.process.start()


def _sleeper(tmp_path: Path, name: str) -> ManagedProcess:
    return ManagedProcess(
        name, [sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / f"{name}.log"
    ).start()


def _pipeline(tmp_path: Path) -> Any:
    stack = SimpleNamespace(
        broker=SimpleNamespace(process=_sleeper(tmp_path, "broker")),
        aws=SimpleNamespace(process=_sleeper(tmp_path, "aws")),
        sink=_Sink(_sleeper(tmp_path, "sink")),
        relay=None,
    )
    return SimpleNamespace(
        stack=stack, services=[], simulator_error=None, seed=1, simulator=object()
    )


def _fail_soon(pipeline: Any) -> threading.Timer:
    """The simulator 'fails' while the fault is on: the driver stops where it is."""
    timer = threading.Timer(0.5, setattr, (pipeline, "simulator_error", RuntimeError("boom")))
    timer.start()
    return timer


def _status(process: ManagedProcess) -> str:
    return str(psutil.Process(process.pid).status())


@pytest.mark.parametrize(("kind", "target"), [("broker_pause", "broker"), ("aws_pause", "aws")])
def test_a_paused_server_is_resumed_when_the_driver_fails(
    tmp_path: Path, kind: str, target: str
) -> None:
    pipeline = _pipeline(tmp_path)
    driver = ChaosDriver(pipeline, ChaosOptions(seed=1))
    process = getattr(pipeline.stack, target).process
    try:
        _fail_soon(pipeline)
        with pytest.raises(RuntimeError, match="simulator failed"):
            driver._inject(1, PlannedFault(0.0, kind, target, 30.0))
        driver._restore()
        assert _status(process) != psutil.STATUS_STOPPED
        assert driver.faults[0].error is not None
        assert driver.faults[0].duration_s < 5
    finally:
        for p in (pipeline.stack.broker.process, pipeline.stack.aws.process):
            p.stop(timeout=5)
        pipeline.stack.sink.process.stop(timeout=5)


def test_a_stopped_sink_database_is_started_again_when_the_driver_fails(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    driver = ChaosDriver(pipeline, ChaosOptions(seed=1))
    sink = pipeline.stack.sink
    try:
        _fail_soon(pipeline)
        with pytest.raises(RuntimeError, match="simulator failed"):
            driver._inject(1, PlannedFault(0.0, "sink_stop", "sink-postgres", 30.0))
        assert not sink.process.running
        driver._restore()
        assert sink.process.running
        assert sink.starts == 1
    finally:
        for p in (pipeline.stack.broker.process, pipeline.stack.aws.process, sink.process):
            p.stop(timeout=5)


def test_a_completed_fault_leaves_nothing_to_undo(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    driver = ChaosDriver(pipeline, ChaosOptions(seed=1))
    try:
        driver._inject(1, PlannedFault(0.0, "broker_pause", "broker", 0.3))
        driver._inject(2, PlannedFault(0.0, "sink_stop", "sink-postgres", 0.3))
        assert driver._undo == {}
        assert [f.done for f in driver.faults] == [True, True]
        assert _status(pipeline.stack.broker.process) != psutil.STATUS_STOPPED
        assert pipeline.stack.sink.process.running
    finally:
        for p in (
            pipeline.stack.broker.process,
            pipeline.stack.aws.process,
            pipeline.stack.sink.process,
        ):
            p.stop(timeout=5)
