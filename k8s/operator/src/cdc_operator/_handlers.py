"""kopf handlers for CdcConsumer resources: the only module of the operator importing kopf.

Run with ``python -m cdc_operator`` (all namespaces) or ``kopf run -m cdc_operator._handlers``.
The handlers translate kopf's keyword arguments into calls of ``_reconcile`` and write its
outcome back as status fields and Kubernetes events. Collaborators (Kubernetes API, lag reader,
clock, event sink) live in ``RUNTIME`` and are replaced in tests through ``configure``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from cdc_operator._admission import AdmissionPolicy
from cdc_operator._deployment import API_GROUP, API_VERSION
from cdc_operator._errors import AdmissionError, OperatorError, OwnershipError, SpecError
from cdc_operator._kafka_auth import lag_reader_config
from cdc_operator._kube import ClusterApi, KubernetesApi
from cdc_operator._lag import KafkaLagReader
from cdc_operator._reconcile import Event, LagReader, Outcome, autoscale, ensure_deployment
from cdc_operator._spec import ConsumerSpec, parse_spec

PLURAL = "cdcconsumers"
# The lag is read and the decision taken every 30 s: fast enough to follow a burst, slow
# enough that a scale step (one rebalance, a few seconds) settles before the next reading.
AUTOSCALE_INTERVAL_S = 30.0
# Kafka API errors are retried by kopf after this delay.
RETRY_DELAY_S = 15.0

EventSink = Callable[[Mapping[str, Any], Event], None]
LagReaderFactory = Callable[[ConsumerSpec], LagReader]


def _kopf_event(body: Mapping[str, Any], event: Event) -> None:
    emit = kopf.info if event.type == "Normal" else kopf.warn
    emit(cast(kopf.Body, body), reason=event.reason, message=event.message)


def _kafka_lag_reader(spec: ConsumerSpec) -> LagReader:
    return KafkaLagReader(spec.kafka.bootstrap_servers, lag_reader_config(spec.kafka))


@dataclass(slots=True)
class Runtime:
    api: ClusterApi | None = None
    lag_reader: LagReaderFactory = _kafka_lag_reader
    clock: Callable[[], float] = time.time
    events: EventSink = _kopf_event
    policy: AdmissionPolicy = field(default_factory=AdmissionPolicy.from_env)

    def cluster(self) -> ClusterApi:
        if self.api is None:
            self.api = KubernetesApi()
        return self.api


RUNTIME = Runtime()


def configure(
    *,
    api: ClusterApi | None = None,
    lag_reader: LagReaderFactory | None = None,
    clock: Callable[[], float] | None = None,
    events: EventSink | None = None,
    policy: AdmissionPolicy | None = None,
) -> None:
    """Replace collaborators (tests, or embedding the operator in another process)."""
    if policy is not None:
        RUNTIME.policy = policy
    if api is not None:
        RUNTIME.api = api
    if lag_reader is not None:
        RUNTIME.lag_reader = lag_reader
    if clock is not None:
        RUNTIME.clock = clock
    if events is not None:
        RUNTIME.events = events


def _spec(spec: Mapping[str, Any]) -> ConsumerSpec:
    try:
        return parse_spec(spec)
    except SpecError as exc:
        raise kopf.PermanentError(str(exc)) from exc


def _condition(status: str, reason: str, message: str) -> dict[str, str]:
    """The ``Admitted`` condition, in the Kubernetes conditions convention."""
    return {
        "type": "Admitted",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": datetime.fromtimestamp(RUNTIME.clock(), UTC).isoformat(),
    }


def _publish(outcome: Outcome, body: Mapping[str, Any], patch: kopf.Patch) -> None:
    for key, value in outcome.status.items():
        patch.status[key] = value
    for event in outcome.events:
        RUNTIME.events(body, event)


@kopf.on.startup()
def configure_operator(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Events and status are the operator's output; its own bookkeeping goes to annotations.
    settings.posting.level = 20  # logging.INFO
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=API_GROUP)


@kopf.on.create(API_GROUP, API_VERSION, PLURAL)
@kopf.on.update(API_GROUP, API_VERSION, PLURAL, field="spec")
@kopf.on.resume(API_GROUP, API_VERSION, PLURAL)
def reconcile(
    *,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    uid: str,
    body: kopf.Body,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    consumer = _spec(spec)
    try:
        RUNTIME.policy.check(name, consumer)
    except AdmissionError as exc:
        patch.status["conditions"] = [_condition("False", exc.reason, str(exc))]
        RUNTIME.events(body, Event("Warning", exc.reason, str(exc)))
        raise kopf.PermanentError(str(exc)) from exc
    patch.status["conditions"] = [
        _condition("True", "Admitted", "image and ServiceAccount allowed")
    ]
    try:
        outcome = ensure_deployment(RUNTIME.cluster(), name, namespace or "default", uid, consumer)
    except OwnershipError as exc:
        RUNTIME.events(body, Event("Warning", "NotOwner", str(exc)))
        raise kopf.PermanentError(str(exc)) from exc
    except OperatorError as exc:
        raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY_S) from exc
    _publish(outcome, body, patch)


@kopf.timer(
    API_GROUP,
    API_VERSION,
    PLURAL,
    interval=AUTOSCALE_INTERVAL_S,
    initial_delay=AUTOSCALE_INTERVAL_S / 2,
)
def scale_by_lag(
    *,
    spec: kopf.Spec,
    status: kopf.Status,
    name: str,
    namespace: str | None,
    body: kopf.Body,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    consumer = _spec(spec)
    reader = RUNTIME.lag_reader(consumer)
    try:
        outcome = autoscale(
            RUNTIME.cluster(),
            reader,
            name=name,
            namespace=namespace or "default",
            spec=consumer,
            status=status,
            now=RUNTIME.clock(),
        )
    except OperatorError as exc:
        raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY_S) from exc
    _publish(outcome, body, patch)


def run(namespace: str | None = None, liveness: str | None = None) -> None:
    """Run the operator until it is stopped: all namespaces, or only ``namespace``. One replica
    (``standalone``: no kopf peering), so two operators never scale the same Deployment."""
    if namespace:
        kopf.run(namespaces=[namespace], standalone=True, liveness_endpoint=liveness)
    else:
        kopf.run(clusterwide=True, standalone=True, liveness_endpoint=liveness)
