"""Runtime settings from the environment (pydantic-settings), read once at the entry point.

Services subclass ``RuntimeSettings`` to add their own fields (``DATABASE_URL``, ...). Secrets
are ``SecretStr``; the model is frozen; invalid values fail at start with ``SettingsError``
naming the variable. Nothing here reads the environment at import time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from consumer_runtime._errors import SettingsError

S = TypeVar("S", bound="RuntimeSettings")

ConfigValue = str | int | float | bool

# Throughput defaults for librdkafka. Each can be overridden through KAFKA_CONSUMER_EXTRA.
THROUGHPUT_DEFAULTS: dict[str, ConfigValue] = {
    # Up to 1 MiB per partition and 50 MiB per fetch request: large batches for a backlog.
    "max.partition.fetch.bytes": 1_048_576,
    "fetch.max.bytes": 52_428_800,
    # Let the broker wait up to 100 ms to fill a fetch: fewer, fuller round trips.
    "fetch.wait.max.ms": 100,
    # The pre-fetch queue is bounded (32 MiB, 20k records) so memory stays flat under a backlog
    # instead of growing to librdkafka's 64 MiB/100k default per consumer.
    "queued.max.messages.kbytes": 32_768,
    "queued.min.messages": 20_000,
    # When the queue is over those bounds librdkafka postpones the next fetch by this much
    # (default 1 s): a consumer that drains 20k records in 100 ms would then idle for 900 ms.
    "fetch.queue.backoff.ms": 20,
}


class RuntimeSettings(BaseSettings):
    """Settings every consumer service shares; environment names are the field names upper-cased."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = Field(min_length=1)
    kafka_group_id: str | None = None
    kafka_topics: Annotated[tuple[str, ...], NoDecode] = Field(min_length=1)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "AWS_MSK_IAM"] | None
    ) = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    aws_region: str | None = None
    kafka_consumer_extra: Annotated[dict[str, ConfigValue], NoDecode] = Field(default_factory=dict)
    kafka_producer_extra: Annotated[dict[str, ConfigValue], NoDecode] = Field(default_factory=dict)
    kafka_assignment_strategy: str = "cooperative-sticky"
    # With a pattern in KAFKA_TOPICS (``^dbserver1\.public\..*``), a topic created later (a new
    # table's first change) is subscribed at librdkafka's next metadata refresh: every 5 min by
    # default, every 30 s with this.
    kafka_pattern_refresh_ms: int = Field(default=30_000, ge=1000, le=3_600_000)
    batch_size: int = Field(default=500, ge=1, le=100_000)
    # Upper bound on how long a partial batch waits for more records: adds up to this much to
    # every record's latency whenever batches are cut by time (low and usual traffic), nothing
    # under a backlog (batches fill at once). librdkafka's batch consume waits out the whole
    # timeout unless the batch fills; at 500 ms the event store's p50 was 1.0 s at 5 tx/s.
    batch_max_wait_ms: int = Field(default=100, ge=1, le=60_000)
    # A batch is also cut at this many bytes of keys and values: a backlog of large rows
    # (100 KB each) then makes batches of ~80 records, not 500 (50 MB raw, several times that
    # decoded, and a pipelined sink holds two batches), so memory stays well inside the pod
    # limit (k8s/base: 512Mi) whatever the row size. A record past the bound goes alone.
    batch_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=1024**3)
    # A decoder raising unexpected errors (not typed parse errors) on this many records in a
    # row is broken (a bad deploy), not fed bad records: the service stops without committing
    # instead of dead-lettering the whole stream. 100 is far above any run of odd records a
    # source produces and a few batches of a broken one. 0 disables the check.
    decode_failure_limit: int = Field(default=100, ge=0)
    # Asynchronous commits at most once a second: each is a broker round trip, and revokes and
    # shutdowns commit synchronously anyway, so this only bounds redelivery after a crash.
    commit_interval_ms: int = Field(default=1000, ge=0, le=60_000)
    # How often the sink gets its wall-clock turn (``Sink.tick``: idle windows close there).
    sink_tick_interval_ms: int = Field(default=1000, ge=10, le=600_000)
    dlq_topic: str | None = None
    health_port: int = Field(default=8080, ge=0, le=65_535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    # Kubernetes sends SIGKILL 30 s after SIGTERM by default; 25 s leaves margin for exit.
    shutdown_grace_s: float = Field(default=25.0, gt=0, le=600)
    # A retry starts at 0.5 s and doubles up to 30 s: quick for blips, gentle for outages.
    retry_initial_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)
    # /livez fails when the loop has not polled for this long (a sink call hung); well above
    # the slowest legitimate batch write.
    liveness_timeout_s: float = Field(default=120.0, gt=0)
    # How long the loop's thread keeps the interpreter lock while another thread waits for it
    # (process-wide, set when the runtime starts). A sink's I/O thread (the event store's
    # pipelined write, the flusher's uploads) needs the lock back after every database or
    # network round trip; with Python's 5 ms default each of them waits that long while the
    # loop decodes the next batch. The switch costs nothing when no other thread wants the lock.
    gil_switch_interval_ms: float = Field(default=0.1, gt=0, le=100)

    @field_validator("kafka_topics", mode="before")
    @classmethod
    def _split_topics(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @field_validator("kafka_consumer_extra", "kafka_producer_extra", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        if isinstance(value, str | bytes):
            if not value.strip():
                return {}
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc}") from exc
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_auth(self) -> RuntimeSettings:
        mech = self.kafka_sasl_mechanism
        if mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and (
            not self.kafka_sasl_username or self.kafka_sasl_password is None
        ):
            raise ValueError(
                f"KAFKA_SASL_MECHANISM={mech} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if mech is not None and not self.kafka_security_protocol.startswith("SASL_"):
            raise ValueError(
                f"KAFKA_SASL_MECHANISM={mech} needs KAFKA_SECURITY_PROTOCOL=SASL_SSL "
                "(or SASL_PLAINTEXT)"
            )
        if mech == "AWS_MSK_IAM" and not self.aws_region:
            raise ValueError("KAFKA_SASL_MECHANISM=AWS_MSK_IAM needs AWS_REGION")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("RETRY_MAX_S must be at least RETRY_INITIAL_S")
        return self

    @classmethod
    def load(cls: type[S], **overrides: Any) -> S:
        """Read the environment; raise ``SettingsError`` naming each bad variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise SettingsError(describe_validation_error(exc)) from exc

    # -- derived values ---------------------------------------------------------------------

    def group_id(self, service: str) -> str:
        return self.kafka_group_id or f"{service}-group"

    def dead_letter_topic(self, service: str) -> str:
        return self.dlq_topic or f"{service}.dlq"

    def common_kafka_config(self) -> dict[str, Any]:
        """Connection and authentication settings shared by the consumer and the DLQ producer."""
        cfg: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_ssl_ca_location:
            cfg["ssl.ca.location"] = self.kafka_ssl_ca_location
        mech = self.kafka_sasl_mechanism
        if mech == "AWS_MSK_IAM":
            from consumer_runtime._auth import msk_iam_oauth_cb

            cfg["sasl.mechanism"] = "OAUTHBEARER"
            cfg["oauth_cb"] = msk_iam_oauth_cb(self.aws_region or "")
        elif mech is not None:
            cfg["sasl.mechanism"] = mech
            if self.kafka_sasl_username:
                cfg["sasl.username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                cfg["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        return cfg

    def consumer_config(self, service: str) -> dict[str, Any]:
        cfg = self.common_kafka_config()
        cfg.update(THROUGHPUT_DEFAULTS)
        cfg.update(
            {
                "group.id": self.group_id(service),
                "client.id": service,
                "partition.assignment.strategy": self.kafka_assignment_strategy,
                # The runtime commits explicitly, only what the sink made durable.
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # A new group starts from the beginning: a read model must see every change.
                "auto.offset.reset": "earliest",
            }
        )
        if any(topic.startswith("^") for topic in self.kafka_topics):
            cfg["topic.metadata.refresh.interval.ms"] = self.kafka_pattern_refresh_ms
        cfg.update(self.kafka_consumer_extra)
        return cfg

    def producer_config(self, service: str) -> dict[str, Any]:
        cfg = self.common_kafka_config()
        cfg["client.id"] = f"{service}-dlq"
        cfg.update(self.kafka_producer_extra)
        return cfg


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["invalid settings:"]
    for err in exc.errors():
        loc = err.get("loc") or ()
        name = str(loc[0]).upper() if loc else "(settings)"
        value = err.get("input")
        shown = (
            ""
            if loc == () or "password" in name.lower() or "secret" in name.lower()
            else (f" (got {value!r})" if not isinstance(value, dict) else "")
        )
        lines.append(f"  {name}: {err.get('msg')}{shown}")
    return "\n".join(lines)
