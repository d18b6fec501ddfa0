"""Wiring: a ``Runtime`` (loop + Kafka client + DLQ producer + metrics + health) and
``run_service``, the entry point every service's ``__main__`` calls.

``run_service`` owns process concerns: settings, logging, the health port, signals and the
shutdown watchdog. The first SIGTERM/SIGINT stops fetching and lets the current batch finish,
flush and commit; a second one exits at once. A watchdog bounds the whole shutdown (including
``close()``) by ``SHUTDOWN_GRACE_S``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Generic, TypeVar

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from consumer_runtime._client import ConsumerClient
from consumer_runtime._dlq import DlqProducer
from consumer_runtime._errors import SettingsError
from consumer_runtime._health import HealthServer, HealthState
from consumer_runtime._logging import configure_logging
from consumer_runtime._loop import ConsumerLoop
from consumer_runtime._metrics import Metrics
from consumer_runtime._retry import Backoff
from consumer_runtime._settings import RuntimeSettings
from consumer_runtime._sink import CommitStrategy, Decoder, Sink

T = TypeVar("T")
S = TypeVar("S", bound=RuntimeSettings)

# Exit codes: 1 = fatal error (the pod restarts), 2 = bad configuration, 70 = the shutdown
# overran its grace period, 128+N = a second signal N cut the shutdown short.
EXIT_FATAL = 1
EXIT_CONFIG = 2
EXIT_WATCHDOG = 70


class Runtime(Generic[T]):
    """One consumer instance. ``run()`` blocks until ``stop()``; a fatal error propagates."""

    def __init__(
        self,
        service: str,
        settings: RuntimeSettings,
        decoder: Decoder[T],
        sink: Sink[T],
        strategy: CommitStrategy,
        *,
        client: ConsumerClient | None = None,
        dlq: DlqProducer | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.sink = sink
        self.metrics = Metrics(service, registry)
        # A sink's own metrics (``metrics_registry`` attribute) are served on the same /metrics.
        sink_registry = getattr(sink, "metrics_registry", None)
        if isinstance(sink_registry, CollectorRegistry):
            self.metrics.registry.register(_RegistryCollector(sink_registry))
        self.health = HealthState(settings.liveness_timeout_s)
        if client is None or dlq is None:
            from consumer_runtime._kafka import (
                KafkaConsumerClient,
                KafkaDlqProducer,
            )

            client = client or KafkaConsumerClient(settings.consumer_config(service))
            dlq = dlq or KafkaDlqProducer(settings.producer_config(service))
        self.client = client
        self.dlq = dlq
        client.set_commit_failure_hook(lambda _reason: self.metrics.count_commit_failure())
        self.loop: ConsumerLoop[T] = ConsumerLoop(
            service=service,
            client=client,
            decoder=decoder,
            sink=sink,
            strategy=strategy,
            dlq=dlq,
            dlq_topic=settings.dead_letter_topic(service),
            batch_size=settings.batch_size,
            batch_max_wait_s=settings.batch_max_wait_ms / 1000.0,
            batch_max_bytes=settings.batch_max_bytes,
            decode_failure_limit=settings.decode_failure_limit,
            backoff=Backoff(settings.retry_initial_s, settings.retry_max_s),
            metrics=self.metrics,
            health=self.health,
            commit_interval_s=settings.commit_interval_ms / 1000.0,
            tick_interval_s=settings.sink_tick_interval_ms / 1000.0,
        )
        self._log = structlog.get_logger("consumer_runtime").bind(service=service)
        #: Called when ``run`` fails, before the consumer is closed (arms the watchdog).
        self.on_failure: list[Callable[[], None]] = []

    def run(self) -> None:
        # Process-wide: a sink's I/O thread gets the interpreter lock back within this long.
        sys.setswitchinterval(self.settings.gil_switch_interval_ms / 1000.0)
        self._log.info(
            "starting",
            topics=list(self.settings.kafka_topics),
            group=self.settings.group_id(self.service),
            dlq=self.settings.dead_letter_topic(self.service),
        )
        try:
            self.loop.subscribe(self.settings.kafka_topics)
            self.loop.run()
        except BaseException:
            for hook in self.on_failure:
                hook()
            raise
        finally:
            self._close()
        self._log.info("stopped cleanly")

    def stop(self) -> None:
        self.loop.request_stop()

    def _close(self) -> None:
        self.health.stopping = True
        # close() leaves the group; on a clean stop its revoke callback finds nothing new to
        # commit, after a fatal error the loop ignores it (nothing past the failure).
        for step, fn in (
            ("consumer", self.client.close),
            ("dlq producer", self.dlq.close),
            ("sink", self.sink.close),
        ):
            try:
                fn()
            except Exception as exc:
                self._log.warning(f"closing the {step} failed", error=str(exc))


class _Shutdown:
    """Signal handling and the watchdog that bounds a shutdown."""

    def __init__(self, runtime: Runtime[object], grace_s: float) -> None:
        self._runtime = runtime
        self._grace_s = grace_s
        self._signalled = False
        self._timer: threading.Timer | None = None
        self._log = structlog.get_logger("consumer_runtime").bind(service=runtime.service)

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._signalled:
            self._log.warning("second signal: exiting at once", signal=name)
            os._exit(128 + signum)
        self._signalled = True
        self._log.info("stopping: finishing the current batch", signal=name, grace_s=self._grace_s)
        self._runtime.stop()
        self.arm()

    def arm(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self._grace_s, self._expired)
            self._timer.daemon = True
            self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expired(self) -> None:
        self._log.error(
            "shutdown overran its grace period; exiting without a clean close",
            grace_s=self._grace_s,
        )
        sys.stderr.flush()
        os._exit(EXIT_WATCHDOG)


class _RegistryCollector(Collector):
    """Serves every metric of another registry (a sink's) from the runtime's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()

    def describe(self) -> Iterable[Metric]:
        return []  # no name clash checks: the sink owns its names


def run_service(
    name: str,
    settings: S | type[S],
    decoder: Decoder[T],
    sink_factory: Callable[[S], Sink[T]],
    *,
    strategy: CommitStrategy,
    install_signal_handlers: bool = True,
) -> int:
    """Run a consumer service until SIGTERM/SIGINT; returns the process exit code.

    ``settings`` is an instance, or a ``RuntimeSettings`` subclass to read from the environment.
    ``sink_factory(settings)`` builds the sink (its clients, engine, ...).
    """
    if isinstance(settings, type):
        try:
            settings = settings.load()
        except SettingsError as exc:
            print(f"{name}: {exc}", file=sys.stderr)  # logging is not configured yet
            return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format, service=name)
    log = structlog.get_logger("consumer_runtime").bind(service=name)
    try:
        sink = sink_factory(settings)
        runtime: Runtime[T] = Runtime(name, settings, decoder, sink, strategy)
    except Exception:
        log.exception("could not start")
        return EXIT_FATAL
    shutdown = _Shutdown(runtime, settings.shutdown_grace_s)  # type: ignore[arg-type]
    runtime.on_failure.append(shutdown.arm)  # the close after a failure is bounded too
    if install_signal_handlers:
        shutdown.install()
    server: HealthServer | None = None
    try:
        server = HealthServer(runtime.health, runtime.metrics.registry, settings.health_port)
        server.start()
        log.info("health and metrics listening", port=server.port)
        runtime.run()
        return 0
    except Exception:
        log.exception("fatal error; exiting so the orchestrator restarts the consumer")
        return EXIT_FATAL
    finally:
        shutdown.disarm()
        if server is not None:
            server.stop()
