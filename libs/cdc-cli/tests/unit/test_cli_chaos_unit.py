"""``cdc dev chaos``'s outcome table carries the clock check."""

from __future__ import annotations

from datetime import UTC, datetime

from cdc_cli._chaos import outcome_table
from devstack._chaos_clocks import ClockCheck, SkewObservation
from devstack.chaos import ChaosOptions, ChaosResult
from rich.console import Console


def _render(result: ChaosResult) -> str:
    console = Console(width=250, record=True, color_system=None)
    console.print(outcome_table(result))
    return console.export_text()


def test_the_outcome_shows_whether_a_clock_froze_anything() -> None:
    result = ChaosResult(
        seed=7,
        options=ChaosOptions(),
        planned=[],
        faults=[],
        unexpected_exits=[],
        events=[],
        flow=[],
        report=None,
        simulated_s=1.0,
        transactions=0,
        activity_events=0,
    )
    assert "clocks" in _render(result)
    obs = SkewObservation(
        started=datetime(2026, 1, 1, tzinfo=UTC),
        as_of_ahead=True,
        as_of_peak_ahead_s=86_390.0,
    )
    result.clocks = ClockCheck(ok=False, observation=obs, lake_late_on_time=0, problems=["x"])
    text = _render(result)
    assert "FAIL (as-of +86390s, frozen; lake 0 on-time late)" in text
    result.clocks = ClockCheck(ok=True, observation=SkewObservation(started=obs.started))
    assert "ok (-)" in _render(result)
