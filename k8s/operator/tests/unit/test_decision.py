"""The scaling rule as a pure function: examples first, then properties over random inputs."""

from __future__ import annotations

import math

from cdc_operator import Recommendation, ScalingInput, decide
from hypothesis import given
from hypothesis import strategies as st


def _inp(**kw: object) -> ScalingInput:
    base: dict[str, object] = {
        "total_lag": 0,
        "partitions": 6,
        "current_replicas": 1,
        "min_replicas": 1,
        "max_replicas": 10,
        "lag_threshold": 1000,
        "now": 1000.0,
    }
    base.update(kw)
    return ScalingInput(**base)  # type: ignore[arg-type]


def test_lag_over_threshold_scales_up_at_once() -> None:
    d = decide(_inp(total_lag=3500))
    assert d.desired_replicas == 4
    assert d.scales
    assert d.reason.startswith("scale up 1 -> 4")


def test_never_above_partition_count() -> None:
    d = decide(_inp(total_lag=1_000_000, partitions=3))
    assert d.desired_replicas == 3
    assert "capped at 3 (partitions)" in d.reason


def test_never_above_max_replicas() -> None:
    d = decide(_inp(total_lag=1_000_000, partitions=24, max_replicas=5))
    assert d.desired_replicas == 5
    assert "(maxReplicas)" in d.reason


def test_min_replicas_is_the_floor() -> None:
    assert decide(_inp(total_lag=0, min_replicas=2, current_replicas=2)).desired_replicas == 2


def test_scale_to_zero_only_at_or_below_activation_lag() -> None:
    idle = decide(_inp(total_lag=50, min_replicas=0, activation_lag=100, current_replicas=0))
    assert idle.desired_replicas == 0
    woken = decide(_inp(total_lag=101, min_replicas=0, activation_lag=100, current_replicas=0))
    assert woken.desired_replicas == 1


def test_scale_down_waits_for_the_stabilisation_window() -> None:
    history = (Recommendation(900.0, 4),)
    held = decide(
        _inp(total_lag=0, current_replicas=4, history=history, now=1000.0, stabilization_s=300)
    )
    assert held.desired_replicas == 4
    assert "stabilisation window" in held.reason
    later = decide(
        _inp(total_lag=0, current_replicas=4, history=held.history, now=1201.0, stabilization_s=300)
    )
    assert later.desired_replicas == 1
    assert later.reason.startswith("scale down 4 -> 1")


def test_fewer_partitions_cap_applies_at_once_despite_the_window() -> None:
    d = decide(
        _inp(
            total_lag=10_000, partitions=2, current_replicas=6, history=(Recommendation(990.0, 6),)
        )
    )
    assert d.desired_replicas == 2


def test_missing_topics_keep_the_floor() -> None:
    d = decide(_inp(total_lag=0, partitions=0, min_replicas=1, current_replicas=1))
    assert d.desired_replicas == 1
    assert not d.scales


def test_history_is_pruned_to_entries_that_can_still_matter() -> None:
    history = (Recommendation(100.0, 9), Recommendation(800.0, 2), Recommendation(900.0, 5))
    d = decide(_inp(total_lag=1000, current_replicas=5, history=history, now=1000.0))
    # 100 s is outside the window; 2 at 800 s is dominated by 5 at 900 s.
    assert d.history == (Recommendation(900.0, 5), Recommendation(1000.0, 1))


inputs = st.builds(
    ScalingInput,
    total_lag=st.integers(0, 10**7),
    partitions=st.integers(0, 64),
    current_replicas=st.integers(0, 80),
    min_replicas=st.integers(0, 10),
    max_replicas=st.integers(10, 80),
    lag_threshold=st.integers(1, 10**5),
    activation_lag=st.integers(0, 1000),
    stabilization_s=st.floats(0, 3600),
    now=st.just(10_000.0),
    history=st.lists(
        st.builds(Recommendation, at=st.floats(5000, 10_000), replicas=st.integers(0, 80)),
        max_size=20,
    ).map(tuple),
)


@given(inputs)
def test_properties(inp: ScalingInput) -> None:
    d = decide(inp)
    if inp.partitions > 0:
        assert d.desired_replicas <= min(inp.max_replicas, inp.partitions)
        if inp.total_lag > inp.activation_lag:
            assert d.desired_replicas >= 1
    needed = (
        math.ceil(inp.total_lag / inp.lag_threshold) if inp.total_lag > inp.activation_lag else 0
    )
    if d.recommended_replicas > inp.current_replicas:
        assert d.desired_replicas == d.recommended_replicas  # scale up is immediate
    if d.desired_replicas < inp.current_replicas:
        # a scale-down goes no lower than the recommendation (never below what the lag needs)
        assert d.desired_replicas >= d.recommended_replicas
        assert d.recommended_replicas >= min(needed, d.ceiling)
    assert all(
        10_000.0 - r.at < max(inp.stabilization_s, 1e-9) or r.at == 10_000.0 for r in d.history
    )


@given(inputs, st.integers(0, 10**6))
def test_more_lag_never_means_fewer_replicas(inp: ScalingInput, extra: int) -> None:
    more = ScalingInput(
        **{
            **{f: getattr(inp, f) for f in inp.__slots__},  # type: ignore[arg-type]
            "total_lag": inp.total_lag + extra,
        }
    )
    assert decide(more).desired_replicas >= decide(inp).desired_replicas
