"""The verification driver: retries until converged, isolates failing verifiers, reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from devstack.verify import (
    Check,
    StackInfo,
    Verifier,
    VerifyContext,
    diff_maps,
    report_table,
    run_checks,
    verify,
)
from rich.console import Console

INFO = StackInfo(
    bootstrap="127.0.0.1:1",
    source_dsn="dbname=none",
    aws_endpoint_url="http://127.0.0.1:1",
    groups={"a": "a-group", "b": "b-group"},
)


def test_stack_info_round_trips(tmp_path: Path) -> None:
    info = StackInfo(**{**INFO.__dict__, "databases": {"a": "postgresql://x/a"}})
    info.save(tmp_path / "stack.json")
    assert StackInfo.load(tmp_path / "stack.json") == info


def test_missing_stack_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make up"):
        StackInfo.load(tmp_path / "stack.json")


def test_diff_maps_names_the_differing_keys() -> None:
    check = diff_maps("svc", "totals", {1: "x", 2: "y", 3: "z"}, {1: "x", 2: "Y", 4: "w"})
    assert not check.ok
    assert (check.expected, check.actual) == (3, 3)
    assert check.detail.startswith("3 differ")
    assert "2: expected 'y', got 'Y'" in check.detail
    assert diff_maps("svc", "totals", {1: 2}, {1: 2}).ok


def test_a_verifier_that_raises_or_is_missing_is_a_failed_check() -> None:
    def broken(ctx: VerifyContext) -> list[Check]:
        raise ConnectionError("sink down")

    results = run_checks(INFO, {"a": broken}, ["a", "b"])
    assert [(c.name, c.ok) for c in results["a"]] == [("read model readable", False)]
    assert "ConnectionError: sink down" in results["a"][0].detail
    assert [(c.name, c.ok) for c in results["b"]] == [("verifier installed", False)]


def test_verify_retries_until_converged_and_stops_checking_passed_services() -> None:
    calls = {"a": 0, "b": 0}

    def converges_third(ctx: VerifyContext) -> list[Check]:
        calls["a"] += 1
        return [Check("a", "equal", calls["a"] >= 3, 1, 1)]

    def always(ctx: VerifyContext) -> list[Check]:
        calls["b"] += 1
        return [Check("b", "equal", True, 1, 1)]

    report = verify(
        INFO,
        timeout_s=30,
        interval_s=0.01,
        services=["a", "b"],
        verifiers={"a": converges_third, "b": always},
        gate_on_lag=False,
    )
    assert report.ok
    assert report.attempts == 3
    assert calls == {"a": 3, "b": 1}
    assert [c.service for c in report.checks] == ["a", "b"]


def test_verify_gives_up_at_the_deadline_with_the_last_failures() -> None:
    def never(ctx: VerifyContext) -> list[Check]:
        return [Check("a", "equal", False, 2, 1, "1 missing")]

    report = verify(
        INFO,
        timeout_s=0.05,
        interval_s=0.01,
        services=["a"],
        verifiers={"a": never},
        gate_on_lag=False,
    )
    assert not report.ok
    assert report.attempts >= 2
    assert report.to_dict()["checks"][0]["detail"] == "1 missing"


def test_no_checks_is_not_a_pass() -> None:
    report = verify(INFO, timeout_s=0, services=[], verifiers={})
    assert not report.ok


def test_report_table_shows_verdict_and_failures() -> None:
    def never(ctx: VerifyContext) -> list[Check]:
        return [Check("a", "equal", False, 2, 1, "1 missing")]

    report = verify(INFO, timeout_s=0, services=["a"], verifiers={"a": never}, gate_on_lag=False)
    console = Console(record=True, width=200)
    console.print(report_table(report))
    text = console.export_text()
    assert "FAIL" in text and "1 missing" in text


def test_a_read_model_is_compared_only_once_its_group_caught_up() -> None:
    from devstack.verify import LAG

    lag_passes = {"n": 0}
    calls = {"a": 0, "b": 0}

    def lag(ctx: VerifyContext) -> list[Check]:
        lag_passes["n"] += 1
        a_caught = lag_passes["n"] >= 3  # a-group has records left for two passes
        return [
            Check(LAG, "a-group caught up", a_caught, 0, 0 if a_caught else 5),
            Check(LAG, "b-group caught up", True, 0, 0),
        ]

    def model(name: str) -> Verifier:
        def check(ctx: VerifyContext) -> list[Check]:
            calls[name] += 1
            return [Check(name, "equal", True, 1, 1)]

        return check

    seen: list[list[tuple[str, str, bool]]] = []
    report = verify(
        INFO,
        timeout_s=30,
        interval_s=0.01,
        verifiers={LAG: lag, "a": model("a"), "b": model("b")},
        on_attempt=lambda _n, checks: seen.append([(c.service, c.name, c.ok) for c in checks]),
    )
    assert report.ok
    assert report.attempts == 3
    # b's model was compared at once; a's only after its group caught up, and once.
    assert calls == {"a": 1, "b": 1}
    assert ("a", "read model compared", False) in seen[0]
    assert ("a", "read model compared", False) in seen[1]
    assert ("a", "equal", True) in seen[2]
    assert all(ok for _s, _n, ok in seen[2])


def test_a_group_that_never_catches_up_fails_with_its_read_model_not_compared() -> None:
    from devstack.verify import LAG

    def lag(ctx: VerifyContext) -> list[Check]:
        return [
            Check(LAG, "a-group caught up", False, 0, 7),
            Check(LAG, "b-group caught up", True, 0, 0),
        ]

    def never_called(ctx: VerifyContext) -> list[Check]:
        raise AssertionError("compared while its group had lag")

    def fine(ctx: VerifyContext) -> list[Check]:
        return [Check("b", "equal", True, 1, 1)]

    report = verify(
        INFO, timeout_s=0.05, interval_s=0.01, verifiers={LAG: lag, "a": never_called, "b": fine}
    )
    assert not report.ok
    failing = {(c.service, c.name) for c in report.checks if not c.ok}
    assert failing == {(LAG, "a-group caught up"), ("a", "read model compared")}


def test_asking_for_one_service_still_waits_for_its_group() -> None:
    from devstack.verify import LAG

    lag_passes = {"n": 0}
    compared: list[int] = []

    def lag(ctx: VerifyContext) -> list[Check]:
        lag_passes["n"] += 1
        return [
            Check(LAG, "a-group caught up", lag_passes["n"] >= 2, 0, 0),
            Check(LAG, "b-group caught up", False, 0, 9),  # not asked for: neither shown nor waited
        ]

    def a(ctx: VerifyContext) -> list[Check]:
        compared.append(lag_passes["n"])
        return [Check("a", "equal", True, 1, 1)]

    report = verify(
        INFO, timeout_s=30, interval_s=0.01, services=["a"], verifiers={LAG: lag, "a": a}
    )
    assert report.ok and report.attempts == 2
    assert compared == [2], "compared before its group caught up"
    assert [(c.service, c.name) for c in report.checks] == [
        (LAG, "a-group caught up"),
        ("a", "equal"),
    ]
