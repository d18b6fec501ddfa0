"""The CdcConsumer operator: owns each consumer service's Deployment and scales it by
consumer-group lag, never above the partition count of the topics it reads.

Modules: ``_decision`` (the pure scaling rule), ``_lag`` (the only Kafka client),
``_deployment`` (the Deployment built from a spec), ``_reconcile`` (one handler run, without
kopf), ``_handlers`` (the kopf handlers, the only kopf importer), ``_kustomize`` (the kustomize
subset renderer used to test k8s/ without a kustomize binary).
"""

from __future__ import annotations

from cdc_operator._decision import Recommendation, ScalingDecision, ScalingInput, decide
from cdc_operator._deployment import (
    API_GROUP,
    API_VERSION,
    KIND,
    TERMINATION_GRACE_S,
    build_deployment,
    container_env,
)
from cdc_operator._errors import LagReadError, OperatorError, OwnershipError, SpecError
from cdc_operator._kube import ClusterApi, KubeApiError
from cdc_operator._kustomize import (
    KustomizeError,
    dump_manifests,
    render_kustomization,
    strategic_merge,
)
from cdc_operator._lag import GroupLag, KafkaLagReader, PartitionLag, resolve_topics
from cdc_operator._reconcile import Event, LagReader, Outcome, autoscale, ensure_deployment
from cdc_operator._spec import ConsumerSpec, parse_spec

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "KIND",
    "TERMINATION_GRACE_S",
    "ClusterApi",
    "ConsumerSpec",
    "Event",
    "GroupLag",
    "KafkaLagReader",
    "KubeApiError",
    "KustomizeError",
    "LagReadError",
    "LagReader",
    "OperatorError",
    "Outcome",
    "OwnershipError",
    "PartitionLag",
    "Recommendation",
    "ScalingDecision",
    "ScalingInput",
    "SpecError",
    "autoscale",
    "build_deployment",
    "container_env",
    "decide",
    "dump_manifests",
    "ensure_deployment",
    "parse_spec",
    "render_kustomization",
    "resolve_topics",
    "strategic_merge",
]
