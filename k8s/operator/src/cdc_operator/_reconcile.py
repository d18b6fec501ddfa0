"""What the operator does for one CdcConsumer, without kopf: keep its Deployment in line with
the spec, and once per timer tick read the lag, decide and scale. The kopf handlers
(``_handlers``) only translate between kopf's arguments and these functions, so the logic is
tested with a fake ``ClusterApi`` and a fake lag reader."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from cdc_operator._decision import Recommendation, ScalingInput, decide
from cdc_operator._deployment import build_deployment, is_owned_by
from cdc_operator._errors import LagReadError, OwnershipError
from cdc_operator._kube import ClusterApi
from cdc_operator._lag import GroupLag
from cdc_operator._spec import ConsumerSpec

EventType = Literal["Normal", "Warning"]


class LagReader(Protocol):
    def read(self, group_id: str, topics: list[str]) -> GroupLag: ...


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(slots=True)
class Outcome:
    """The status fields to write and the events to emit after one handler run."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


def ensure_deployment(
    api: ClusterApi, name: str, namespace: str, uid: str, spec: ConsumerSpec
) -> Outcome:
    """Create the Deployment, or patch it to the spec without touching its replica count."""
    owner = {"name": name, "uid": uid}
    current = api.read_deployment(namespace, name)
    if current is None:
        api.create_deployment(
            namespace, build_deployment(name, namespace, spec, owner, replicas=spec.min_replicas)
        )
        return Outcome(
            status={"deployment": name},
            events=[
                Event(
                    "Normal",
                    "Created",
                    f"created Deployment {name} ({spec.min_replicas} replicas, image {spec.image})",
                )
            ],
        )
    if not is_owned_by(current, uid):
        raise OwnershipError(
            f"Deployment {namespace}/{name} exists and is not owned by this CdcConsumer. "
            "Delete it (or rename the CdcConsumer) to let the operator manage the service."
        )
    desired = build_deployment(name, namespace, spec, owner)  # no replicas: the scaler's
    api.patch_deployment(namespace, name, desired)
    return Outcome(
        status={"deployment": name},
        events=[Event("Normal", "Updated", f"updated Deployment {name} (image {spec.image})")],
    )


def autoscale(
    api: ClusterApi,
    reader: LagReader,
    *,
    name: str,
    namespace: str,
    spec: ConsumerSpec,
    status: Mapping[str, Any],
    now: float,
) -> Outcome:
    """One tick: read the lag, record it, and scale the Deployment when the decision says so."""
    out = Outcome()
    try:
        lag = reader.read(spec.group_id, list(spec.topics))
    except LagReadError as exc:
        # Never scale on an unknown lag; warn once per distinct error, not every tick.
        out.status["lastError"] = str(exc)
        if status.get("lastError") != str(exc):
            out.events.append(Event("Warning", "LagUnavailable", str(exc)))
        return out

    deployment = api.read_deployment(namespace, name)
    if deployment is None:
        out.status.update(_lag_status(lag))
        out.status["lastError"] = f"Deployment {name} not found; waiting for it to be created"
        return out
    current = int(deployment.get("spec", {}).get("replicas", 1))
    history = tuple(
        Recommendation(float(r["at"]), int(r["replicas"]))
        for r in status.get("recommendations", [])
    )
    decision = decide(
        ScalingInput(
            total_lag=lag.total,
            partitions=lag.partition_count,
            current_replicas=current,
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            lag_threshold=spec.lag_threshold,
            activation_lag=spec.activation_lag,
            stabilization_s=float(spec.scale_down_stabilization_s),
            now=now,
            history=history,
        )
    )
    out.status.update(_lag_status(lag))
    out.status.update(
        {
            "currentReplicas": current,
            "desiredReplicas": decision.desired_replicas,
            "recommendedReplicas": decision.recommended_replicas,
            "lastDecision": decision.reason,
            "recommendations": [{"at": r.at, "replicas": r.replicas} for r in decision.history],
            "lastError": None,
        }
    )
    if not spec.autoscale:
        out.status["desiredReplicas"] = current
        out.status["lastDecision"] = f"autoscale off (would be: {decision.reason})"
        return out
    if decision.scales:
        api.scale_deployment(namespace, name, decision.desired_replicas)
        out.status["currentReplicas"] = decision.desired_replicas
        out.status["lastScaleTime"] = datetime.fromtimestamp(now, UTC).isoformat()
        out.events.append(Event("Normal", "Scaled", decision.reason))
    return out


def _lag_status(lag: GroupLag) -> dict[str, Any]:
    return {
        "totalLag": lag.total,
        "partitions": lag.partition_count,
        "lagByTopic": lag.by_topic(),
    }
