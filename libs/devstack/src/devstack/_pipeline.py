"""The whole pipeline on the embedded stack, headless: servers, the real Debezium relay, the four
services as processes, the simulator; stop, drain and verify.

``make up`` (:mod:`devstack._devup`) draws a live view over it; the e2e and chaos tests drive it
directly. Order of start: broker, PostgreSQL (source, sink), AWS emulator, seed rows, relay
(snapshot), services, simulator. Order of stop: simulator, services (SIGTERM once: final flush
and commit), relay, servers.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from devstack._aws_faults import ThrottlingProxy
from devstack._broker import GROUP_SETTINGS
from devstack._flow import FlowMonitor
from devstack._query_api import QueryApiProcess
from devstack._services import (
    DATA_LAKE_BUCKET,
    SEARCH_TABLE,
    SERVICES,
    ServiceProcess,
    ServiceSpec,
)
from devstack._shop import SHOP_TABLES
from devstack._stack import TOPIC_PREFIX, Stack
from devstack.simulator import USER_EVENTS_TOPIC, Ledger, ShopSimulator
from devstack.verify import STACK_FILE, StackInfo, VerifyReport, verify

# After the simulator stops, Debezium needs a moment to stream the tail; 60 s is generous.
DRAIN_TIMEOUT_S = 60.0
CDC_TOPICS = tuple(f"{TOPIC_PREFIX}.public.{t}" for t in SHOP_TABLES)


@dataclass(frozen=True)
class FlowCheck:
    topic: str
    op: str
    expected: int
    actual: int

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


def expected_flow(seeded: dict[str, int], ledger: Ledger) -> dict[str, Counter[str]]:
    """Per CDC topic, the Debezium ops the committed changes must produce: one ``r`` per seeded
    row, one ``c``/``u``/``d`` per committed row change, one tombstone per delete."""
    out: dict[str, Counter[str]] = {}
    for table in SHOP_TABLES:
        ops = Counter({"r": seeded.get(table, 0)})
        ops.update(ledger.changes.get(table, Counter()))
        ops["tombstone"] = ops["d"]
        out[f"{TOPIC_PREFIX}.public.{table}"] = +ops
    return out


def flow_checks(
    seeded: dict[str, int], ledger: Ledger, seen: dict[str, Counter[str]]
) -> list[FlowCheck]:
    checks = []
    for topic, ops in expected_flow(seeded, ledger).items():
        got = seen.get(topic, Counter())
        for op in sorted(set(ops) | set(got)):
            checks.append(FlowCheck(topic, op, ops.get(op, 0), got.get(op, 0)))
    checks.append(
        FlowCheck(
            USER_EVENTS_TOPIC,
            "event",
            ledger.activity_events,
            sum(seen.get(USER_EVENTS_TOPIC, Counter()).values()),
        )
    )
    return checks


class Pipeline:
    """Start, disturb, stop and verify the whole pipeline. Not thread-safe: one driver."""

    def __init__(
        self,
        work_dir: Path,
        *,
        rate: float = 100.0,
        seed: int | None = None,
        services: tuple[ServiceSpec, ...] = SERVICES,
        consumer_extra: Mapping[str, str | int] | None = None,
        aws_faults: bool = False,
        query_api: bool = False,
    ) -> None:
        """``consumer_extra``: librdkafka settings for every service (``KAFKA_CONSUMER_EXTRA``),
        over the embedded broker's ``GROUP_SETTINGS`` (chaos sets its own session timeout, so
        a stalled member is replaced within seconds).
        ``aws_faults``: the services reach the AWS emulator through a ``ThrottlingProxy``
        (``self.aws_proxy``) that can answer with AWS's throttling errors. ``query_api``: the
        read API and its dashboard start after the services (``self.query_api``), when
        installed."""
        self.work_dir = work_dir
        self.consumer_extra = {**GROUP_SETTINGS, **(consumer_extra or {})}
        self.aws_faults = aws_faults
        self.aws_proxy: ThrottlingProxy | None = None
        self.rate = rate
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.stack = Stack(work_dir, rng=random.Random(self.seed))
        self.specs = tuple(spec for spec in services if spec.available)
        self.missing = tuple(spec.name for spec in services if not spec.available)
        self.topics = [*CDC_TOPICS, USER_EVENTS_TOPIC]
        self.seeded: dict[str, int] = {}
        self.monitor: FlowMonitor | None = None
        self.services: list[ServiceProcess] = []
        self.simulator: ShopSimulator | None = None
        self._sim_thread: threading.Thread | None = None
        self._env: dict[str, dict[str, str]] = {}
        self._replicas: Counter[str] = Counter()
        self.simulator_error: BaseException | None = None
        self.with_query_api = query_api
        self.query_api: QueryApiProcess | None = None

    # -- start ---------------------------------------------------------------------------------

    def start_servers(self) -> dict[str, int]:
        """Broker, source and sink PostgreSQL, AWS emulator; seed the source."""
        self.stack.start_servers()
        self.seeded = self.stack.seed_source()
        return self.seeded

    def start_relay(self) -> None:
        self.stack.launch_relay()
        self.monitor = FlowMonitor(self.stack.broker.bootstrap, self.topics)
        self.monitor.start()

    def snapshot_progress(self) -> tuple[int, int]:
        """(snapshot rows seen in the broker, rows seeded)."""
        assert self.monitor is not None
        seen = self.monitor.snapshot()
        done = sum(seen.get(topic, Counter())["r"] for topic in CDC_TOPICS)
        return done, sum(self.seeded.values())

    def snapshot_done(self) -> bool:
        done, total = self.snapshot_progress()
        return done >= total and self.stack.relay is not None and self.stack.relay.ready()

    def wait_snapshot(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.snapshot_done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Debezium snapshot incomplete: {self.snapshot_progress()}")
            time.sleep(0.2)

    def start_services(self) -> list[ServiceProcess]:
        # Every CDC topic exists before a consumer subscribes: the relay creates a table's topic
        # only with its first change, and a pattern subscription (the event store's
        # ``dbserver1.public.*``) sees a topic created later only at its next metadata refresh
        # (librdkafka: every 5 minutes), which a short run never reaches.
        self.stack.broker.create_topics(list(CDC_TOPICS), partitions=self.stack.partitions)
        env = self.stack.service_env()
        if self.consumer_extra:
            env["KAFKA_CONSUMER_EXTRA"] = orjson.dumps(self.consumer_extra).decode()
        if self.aws_faults:
            self.aws_proxy = ThrottlingProxy(self.stack.aws.endpoint_url, seed=self.seed).start()
            env["AWS_ENDPOINT_URL"] = self.aws_proxy.url
        self._create_data_lake()
        for spec in self.specs:
            spec_env = dict(env)
            if spec.database:
                spec_env["DATABASE_URL"] = self.stack.sink.create_database(spec.database)
            if spec.catalog_database:
                catalog = self.stack.sink.create_database(spec.catalog_database)
                spec_env["LAKE_CATALOG_URI"] = catalog
            self._env[spec.name] = spec_env
            self.services.append(ServiceProcess(spec, spec_env, self.work_dir).start())
        if self.with_query_api and QueryApiProcess.available():
            self.query_api = QueryApiProcess(
                self._query_api_backends(env),
                {svc.name: svc.metrics_url for svc in self.services},
                self.work_dir,
            ).start()
        self.info().save(self.work_dir / STACK_FILE)
        return self.services

    def _query_api_backends(self, env: Mapping[str, str]) -> dict[str, str]:
        """The read API's backend settings: every read model the services write here."""
        backends = {k: v for k, v in env.items() if k.startswith("AWS_")}
        backends["AWS_ENDPOINT_URL"] = self.stack.aws.endpoint_url  # never the fault proxy
        stats = self._env.get("stats-aggregator", {})
        store = self._env.get("event-store-writer", {})
        lake = self._env.get("analytics-flusher", {})
        if "DATABASE_URL" in stats:
            backends["DATABASE_URL"] = stats["DATABASE_URL"]
        if "DATABASE_URL" in store:
            backends["EVENT_STORE_URL"] = store["DATABASE_URL"]
        if any(spec.name == "search-indexer" for spec in self.specs):
            backends["DYNAMODB_TABLE"] = SEARCH_TABLE
        if "LAKE_CATALOG_URI" in lake:
            backends["LAKE_CATALOG_URI"] = lake["LAKE_CATALOG_URI"]
            backends["S3_BUCKET"] = DATA_LAKE_BUCKET
        return backends

    def _create_data_lake(self) -> None:
        """The bucket, versioned as Terraform makes it in production: every rewrite of a key is
        kept, so verification can check that a replay rewrote the same bytes."""
        s3 = self.stack.aws.client("s3")
        s3.create_bucket(Bucket=DATA_LAKE_BUCKET)
        s3.put_bucket_versioning(
            Bucket=DATA_LAKE_BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )

    def start_simulator(self) -> ShopSimulator:
        self.simulator = ShopSimulator(
            self.stack.source_dsn,
            self.stack.broker.bootstrap,
            rate=self.rate,
            seed=self.seed,
            activity_log=self.activity_log,
        )
        self._sim_thread = threading.Thread(
            target=self._run_simulator, name="simulator", daemon=True
        )
        self._sim_thread.start()
        return self.simulator

    def start(self, snapshot_timeout: float = 120.0) -> None:
        """Everything, in order, without a view (tests, chaos)."""
        self.start_servers()
        self.start_relay()
        self.wait_snapshot(snapshot_timeout)
        self.start_services()
        self.start_simulator()

    @property
    def activity_log(self) -> Path:
        return self.work_dir / "user-events.jsonl"

    def _run_simulator(self) -> None:
        assert self.simulator is not None
        try:
            self.simulator.run()
        except Exception as exc:  # surfaced by the driver; the run then fails its checks
            self.simulator_error = exc

    # -- observe -------------------------------------------------------------------------------

    def info(self) -> StackInfo:
        s = self.stack
        groups: dict[str, str] = {}
        databases: dict[str, str] = {}
        service_env: dict[str, dict[str, str]] = {}
        for svc in self.services:
            groups[svc.spec.name] = svc.group_id
            service_env[svc.spec.name] = dict(svc.spec.env)
            catalog = self._env.get(svc.spec.name, {}).get("LAKE_CATALOG_URI")
            if catalog:  # the lake's Iceberg catalog: the verifier and `cdc lake` read it
                service_env[svc.spec.name]["LAKE_CATALOG_URI"] = catalog
            url = self._env.get(svc.spec.name, {}).get("DATABASE_URL")
            if svc.spec.database and url:
                databases[svc.spec.name] = url
        api = self.query_api
        return StackInfo(
            api_url=api.url if api else None,
            api_docs_url=api.docs_url if api else None,
            dashboard_url=api.dashboard_url if api else None,
            api_key=api.key if api else None,
            bootstrap=s.broker.bootstrap,
            source_dsn=s.source_dsn,
            aws_endpoint_url=s.aws.endpoint_url,
            aws_env=s.aws.env,
            databases=databases,
            groups=groups,
            service_env=service_env,
            activity_log=str(self.activity_log),
            work_dir=str(self.work_dir),
        )

    def replicas(self, name: str) -> list[ServiceProcess]:
        return [svc for svc in self.services if svc.spec.name == name]

    # -- disturb -------------------------------------------------------------------------------

    def spec(self, name: str) -> ServiceSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(f"no such service: {name}")

    def add_replica(self, name: str) -> ServiceProcess:
        """Another process in the same consumer group (a rebalance), like ``kubectl scale``."""
        self._replicas[name] += 1
        svc = ServiceProcess(
            self.spec(name), self._env[name], self.work_dir, replica=self._replicas[name]
        )
        self.services.append(svc.start())
        return svc

    def remove_replica(self, svc: ServiceProcess, timeout: float = 35.0) -> int | None:
        """Scale down: SIGTERM (final flush, commit, leave the group), then forget it."""
        svc.request_stop()
        rc = svc.wait_stopped(timeout)
        self.services.remove(svc)
        return rc

    # -- stop ----------------------------------------------------------------------------------

    def stop_simulator(self) -> Ledger:
        assert self.simulator is not None
        self.simulator.stop()
        if self._sim_thread is not None:
            self._sim_thread.join(timeout=30)
        self.simulator.flush()
        if self.simulator_error is not None:
            raise RuntimeError(f"the simulator failed: {self.simulator_error!r}")
        return self.simulator.ledger

    def drain(self, ledger: Ledger, timeout: float = DRAIN_TIMEOUT_S) -> list[FlowCheck]:
        """Wait until every committed change is in the broker; the per-topic/op comparison."""
        assert self.monitor is not None
        deadline = time.monotonic() + timeout
        while True:
            checks = flow_checks(self.seeded, ledger, self.monitor.snapshot())
            if all(ch.ok for ch in checks) or time.monotonic() > deadline:
                return checks
            time.sleep(0.5)

    def verify(self, timeout_s: float = 180.0) -> VerifyReport:
        return verify(self.info(), timeout_s=timeout_s)

    def close(self) -> list[str]:
        """Stop everything in order; keeps going past failures. Returns what went wrong."""
        problems: list[str] = []
        if self.simulator is not None:
            self.simulator.stop()
            try:
                self.simulator.close()
            except Exception as exc:
                problems.append(f"simulator close: {exc!r}")
        if self.monitor is not None:
            self.monitor.stop()
        if self.query_api is not None:  # first: it reads what the services write
            rc = self.query_api.stop()
            if rc not in (0, None):
                problems.append(f"query-api exited with {rc}")
        for svc in self.services:  # SIGTERM once: each flushes and commits before exiting
            svc.request_stop()
        for svc in self.services:
            rc = svc.wait_stopped()
            if rc not in (0, None):
                problems.append(f"{svc.name} exited with {rc}")
        if self.aws_proxy is not None:
            self.aws_proxy.stop()
        self.stack.stop()
        return problems
