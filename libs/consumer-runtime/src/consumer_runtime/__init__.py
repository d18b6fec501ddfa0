"""The consumer runtime every CDC consumer service runs on.

A service provides a decoder (``Message -> record``) and a ``Sink``; the runtime polls batches,
dead-letters what cannot be decoded, hands the rest to the sink, commits offsets according to
the ``CommitStrategy``, handles rebalances, retries, shutdown, health and metrics. Each service
publishes a ``ServiceDescriptor`` (``cdc.services`` entry point, found with ``services()``)
whose ``run()`` its ``__main__`` calls; their tests use ``consumer_runtime.testing``. Operators'
tools use ``KafkaAdmin`` (consumer groups, committed offsets, watermarks).
"""

from consumer_runtime._admin import KafkaAdmin
from consumer_runtime._admin_types import (
    GroupActiveError,
    GroupDescription,
    GroupListing,
    GroupMember,
    GroupState,
    KafkaUnreachableError,
    Watermarks,
)
from consumer_runtime._behind import WriteBehind
from consumer_runtime._descriptor import SERVICES_GROUP, ServiceDescriptor, services
from consumer_runtime._dlq import (
    HEADER_CLASS,
    HEADER_CODE,
    HEADER_MESSAGE,
    HEADER_OFFSET,
    HEADER_ORIGINAL_SHA256,
    HEADER_ORIGINAL_SIZE,
    HEADER_PARTITION,
    HEADER_SERVICE,
    HEADER_TOPIC,
    HEADER_TRUNCATED,
    DlqProducer,
    dlq_headers,
    dlq_record,
)
from consumer_runtime._errors import (
    CommitFailedError,
    ConsumerRuntimeError,
    DecoderBrokenError,
    FencedError,
    KafkaClientError,
    PermanentError,
    RecordError,
    RejectedError,
    RetryableError,
    SettingsError,
)
from consumer_runtime._health import HealthServer, HealthState
from consumer_runtime._logging import configure_logging
from consumer_runtime._message import InMemoryMessage, Message, TopicPartition
from consumer_runtime._metrics import Metrics
from consumer_runtime._publish import (
    InMemoryPublisher,
    OutgoingRecord,
    Publisher,
    create_publisher,
)
from consumer_runtime._runtime import Runtime, run_service
from consumer_runtime._settings import THROUGHPUT_DEFAULTS, RuntimeSettings
from consumer_runtime._sink import (
    BaseSink,
    Batch,
    CommitStrategy,
    DeadLetter,
    Decoder,
    Offsets,
    Sink,
    source_timestamp_ms,
)

__all__ = [
    "HEADER_CLASS",
    "HEADER_CODE",
    "HEADER_MESSAGE",
    "HEADER_OFFSET",
    "HEADER_ORIGINAL_SHA256",
    "HEADER_ORIGINAL_SIZE",
    "HEADER_PARTITION",
    "HEADER_SERVICE",
    "HEADER_TOPIC",
    "HEADER_TRUNCATED",
    "SERVICES_GROUP",
    "THROUGHPUT_DEFAULTS",
    "BaseSink",
    "Batch",
    "CommitFailedError",
    "CommitStrategy",
    "ConsumerRuntimeError",
    "DeadLetter",
    "Decoder",
    "DecoderBrokenError",
    "DlqProducer",
    "FencedError",
    "GroupActiveError",
    "GroupDescription",
    "GroupListing",
    "GroupMember",
    "GroupState",
    "HealthServer",
    "HealthState",
    "InMemoryMessage",
    "InMemoryPublisher",
    "KafkaAdmin",
    "KafkaClientError",
    "KafkaUnreachableError",
    "Message",
    "Metrics",
    "Offsets",
    "OutgoingRecord",
    "PermanentError",
    "Publisher",
    "RecordError",
    "RejectedError",
    "RetryableError",
    "Runtime",
    "RuntimeSettings",
    "ServiceDescriptor",
    "SettingsError",
    "Sink",
    "TopicPartition",
    "Watermarks",
    "WriteBehind",
    "configure_logging",
    "create_publisher",
    "dlq_headers",
    "dlq_record",
    "run_service",
    "services",
    "source_timestamp_ms",
]
