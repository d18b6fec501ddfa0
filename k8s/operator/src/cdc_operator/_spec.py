"""The CdcConsumer spec as typed, validated values (the CRD in k8s/crds is its schema).

The API server applies the CRD's defaults and checks; this model checks again so the operator
never acts on a spec it does not understand (a hand-edited CRD, an older API server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cdc_operator._errors import SpecError


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "AWS_MSK_IAM"]


class KafkaSpec(_Model):
    bootstrap_servers: str = Field(
        "cdc-platform-kafka-bootstrap.kafka.svc.cluster.local:9093", alias="bootstrapServers"
    )
    security_protocol: str | None = Field(None, alias="securityProtocol")
    # The services' KAFKA_SASL_MECHANISM values. AWS_MSK_IAM: OAUTHBEARER with a token signed
    # by the pod's IAM role (EKS Pod Identity), for the consumers and the lag reader alike.
    sasl_mechanism: SaslMechanism | None = Field(None, alias="saslMechanism")
    # The AWS region of an MSK cluster (AWS_MSK_IAM signs for it); the consumers get it as
    # AWS_REGION unless the sink names its own.
    region: str | None = None
    # SCRAM on the in-cluster Kafka: the Secret with the consumer's `password` and the cluster
    # CA `ca.crt` (k8s/base/kafka-credentials.yaml); the user name defaults to the consumer's.
    credentials_secret: str | None = Field(None, alias="credentialsSecret")
    username: str | None = None

    @model_validator(mode="after")
    def _msk_iam_needs(self) -> KafkaSpec:
        if self.sasl_mechanism == "AWS_MSK_IAM" and self.security_protocol != "SASL_SSL":
            raise ValueError("saslMechanism AWS_MSK_IAM needs securityProtocol SASL_SSL")
        scram = self.sasl_mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
        if scram and not self.credentials_secret:
            raise ValueError(f"saslMechanism {self.sasl_mechanism} needs credentialsSecret")
        return self


class SecretRef(_Model):
    name: str
    key: str = "url"


class SinkSpec(_Model):
    type: Literal["postgres", "dynamodb", "s3"] | None = None
    database_url_secret: SecretRef | None = Field(None, alias="databaseUrlSecret")
    table: str | None = None
    bucket: str | None = None
    region: str | None = None
    endpoint_url: str | None = Field(None, alias="endpointUrl")


class ConsumerSpec(_Model):
    image: str = Field(min_length=1)
    command: tuple[str, ...] = ()
    topics: tuple[str, ...] = Field(min_length=1)
    group_id: str = Field(alias="groupId", min_length=1)
    min_replicas: int = Field(1, alias="minReplicas", ge=0)
    max_replicas: int = Field(6, alias="maxReplicas", ge=1)
    lag_threshold: int = Field(1000, alias="lagThreshold", ge=1)
    activation_lag: int = Field(0, alias="activationLag", ge=0)
    scale_down_stabilization_s: int = Field(300, alias="scaleDownStabilizationSeconds", ge=0)
    autoscale: bool = True
    kafka: KafkaSpec = KafkaSpec()  # type: ignore[call-arg]
    env: dict[str, str] = Field(default_factory=dict)
    sink: SinkSpec = SinkSpec()  # type: ignore[call-arg]
    service_account_name: str | None = Field(None, alias="serviceAccountName")
    resources: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _replica_bounds(self) -> ConsumerSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


def parse_spec(spec: Mapping[str, Any]) -> ConsumerSpec:
    """Validate a CdcConsumer ``spec``; raise :class:`SpecError` naming the bad fields."""
    try:
        return ConsumerSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SpecError(f"invalid CdcConsumer spec: {problems}") from exc
