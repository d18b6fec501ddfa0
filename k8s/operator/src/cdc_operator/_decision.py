"""The scaling decision: how many replicas a consumer should run, from its lag. Pure: no I/O,
no clock (the caller passes ``now``), so every rule is a unit test.

    recommended = clamp(ceil(total lag / lag threshold), floor, ceiling)
    ceiling     = min(maxReplicas, partition count)    -- more members than partitions idle
    floor       = minReplicas, at least 1 while lag > activationLag
    (a lag at or below activationLag counts as no lag)

Scaling up is immediate. Scaling down uses the highest recommendation of the stabilisation
window (like the HorizontalPodAutoscaler), so a consumer that just caught up is not scaled down
and then up again on the next burst; every scale-down is a rebalance of the whole group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One past recommendation, kept in the CdcConsumer status between runs."""

    at: float
    replicas: int


@dataclass(frozen=True, slots=True)
class ScalingInput:
    total_lag: int
    partitions: int
    current_replicas: int
    min_replicas: int
    max_replicas: int
    lag_threshold: int
    activation_lag: int = 0
    stabilization_s: float = 300.0
    now: float = 0.0
    history: tuple[Recommendation, ...] = ()


@dataclass(frozen=True, slots=True)
class ScalingDecision:
    current_replicas: int
    desired_replicas: int
    recommended_replicas: int
    floor: int
    ceiling: int
    reason: str
    history: tuple[Recommendation, ...]

    @property
    def scales(self) -> bool:
        return self.desired_replicas != self.current_replicas


def decide(inp: ScalingInput) -> ScalingDecision:
    """The replica count for ``inp``; see the module docstring for the rules."""
    if inp.lag_threshold < 1:
        raise ValueError("lag_threshold must be at least 1")
    lag = max(inp.total_lag, 0)
    floor = inp.min_replicas
    if lag > inp.activation_lag:
        floor = max(floor, 1)
    # No partitions yet (the topics do not exist): nothing to share out, keep the floor.
    ceiling = min(inp.max_replicas, inp.partitions) if inp.partitions > 0 else floor
    floor = min(floor, ceiling)
    # At or below the activation lag the backlog is treated as none (a trickle of heartbeats
    # must not keep a scaled-to-zero consumer awake).
    needed = math.ceil(lag / inp.lag_threshold) if lag > inp.activation_lag else 0
    recommended = min(max(needed, floor), ceiling)

    window = _window(inp.history, inp.now, inp.stabilization_s, recommended)
    current = inp.current_replicas
    if recommended >= current:
        desired = recommended
    else:
        desired = min(current, max(r.replicas for r in window), ceiling)

    reason = _reason(
        inp,
        lag=lag,
        needed=needed,
        recommended=recommended,
        desired=desired,
        floor=floor,
        ceiling=ceiling,
    )
    return ScalingDecision(
        current_replicas=current,
        desired_replicas=desired,
        recommended_replicas=recommended,
        floor=floor,
        ceiling=ceiling,
        reason=reason,
        history=window,
    )


def _window(
    history: tuple[Recommendation, ...], now: float, span: float, recommended: int
) -> tuple[Recommendation, ...]:
    """Recommendations of the last ``span`` seconds that can still be the window's maximum:
    an entry followed by a later one at least as high never decides anything again."""
    kept: list[Recommendation] = []
    for rec in sorted((*history, Recommendation(now, recommended)), key=lambda r: r.at):
        if now - rec.at >= span and rec.at != now:
            continue
        while kept and kept[-1].replicas <= rec.replicas:
            kept.pop()
        kept.append(rec)
    return tuple(kept)


def _reason(
    inp: ScalingInput,
    *,
    lag: int,
    needed: int,
    recommended: int,
    desired: int,
    floor: int,
    ceiling: int,
) -> str:
    base = f"lag {lag} / threshold {inp.lag_threshold} -> {needed}"
    if needed > ceiling:
        limit = "partitions" if inp.partitions <= inp.max_replicas else "maxReplicas"
        base += f", capped at {ceiling} ({limit})"
    elif needed < floor:
        base += f", raised to {floor} (minReplicas/activation)"
    if desired > inp.current_replicas:
        return f"scale up {inp.current_replicas} -> {desired}: {base}"
    if desired < inp.current_replicas:
        return f"scale down {inp.current_replicas} -> {desired}: {base}"
    if recommended < inp.current_replicas:
        return (
            f"hold {desired}: {base}; scale-down waits for the "
            f"{inp.stabilization_s:.0f} s stabilisation window"
        )
    return f"hold {desired}: {base}"
