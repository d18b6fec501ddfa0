"""Start-up calls during an outage: retried within a budget, not fatal at once."""

from __future__ import annotations

import pytest
from consumer_runtime import RetryableError
from sink_kit.aws import retry_at_start


def test_a_start_up_call_waits_out_a_short_outage() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetryableError("SlowDown from AWS")
        return "ready"

    assert retry_at_start(flaky, "checking the bucket", budget_s=10) == "ready"
    assert len(calls) == 3


def test_a_start_up_call_gives_up_after_its_budget() -> None:
    def down() -> None:
        raise RetryableError("endpoint unreachable")

    with pytest.raises(RetryableError, match="unreachable"):
        retry_at_start(down, "checking the bucket", budget_s=0.2)


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        retry_at_start(broken, "checking the bucket", budget_s=10)
    assert calls == [1]
