"""The Grafana dashboards and the alert rules of k8s/monitoring against the code: every
dashboard is well formed, and every metric a panel, a variable or an alert names is one the
code registers (collected here from the runtime's, sink-kit's and each service's collectors, in
process), so a renamed metric fails here instead of showing an empty panel or a silent alert.
The plain rules file holds the PrometheusRule's groups (promtool runs them in
tests/integration/deploy/test_prometheus_rules.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "k8s" / "monitoring"
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
SERVICES = ("event-store-writer", "stats-aggregator", "search-indexer", "analytics-flusher")
# Series that other exporters serve (kube-state-metrics) or Prometheus itself.
FOREIGN = re.compile(r"^(kube_|up$|ALERTS)")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
    "unknown": ("",),
}


def _series(families: Iterable[Metric]) -> set[str]:
    return {f.name + suffix for f in families for suffix in _SUFFIXES.get(f.type, ("",))}


def _registered() -> set[str]:
    """Every series name the processes serve: the runtime's, sink-kit's and the services'
    collectors, built as the services build them (no server needed)."""
    from analytics_flusher._metrics import Buffered, LakeMetrics, SinkGauges
    from analytics_flusher.store import LakeJobs
    from analytics_flusher.store._iceberg._metrics import WriterMetrics
    from consumer_runtime import Metrics
    from event_store_writer._metrics import StoreMetrics
    from search_indexer._metrics import IndexMetrics
    from sink_kit.metrics import AwsCallMetrics, PoolCollector
    from stats_aggregator._metrics import StatsMetrics
    from stats_aggregator.store import StoreGauges

    registries = [
        Metrics("svc").registry,
        StoreMetrics().registry,
        StatsMetrics().registry,
        IndexMetrics().registry,
        LakeMetrics().registry,
    ]
    lake = CollectorRegistry()
    WriterMetrics(lake)
    LakeJobs(
        None,  # type: ignore[arg-type]
        lambda: False,
        window_ms=1,
        top_n=1,
        reports_interval_s=0,
        maintain_interval_s=0,
        registry=lake,
    )
    aws = CollectorRegistry()
    AwsCallMetrics(aws, "svc")
    registries += [lake, aws]
    names: set[str] = set()
    for registry in registries:
        names |= _series(registry.collect())
    # Read-at-scrape collectors: their families from describe() (no database, no sink).
    engine = sa.create_engine("postgresql+psycopg2://cdc@127.0.0.1:1/none")  # never connects
    http = SimpleNamespace(sent=0, rejected=0, failed=0)
    collectors: list[Collector] = [
        PoolCollector(engine, "svc"),
        StoreGauges(engine, projection=True),
        SinkGauges(lambda: [Buffered("parquet_windows", 0, 0, 0)], http),
    ]
    for collector in collectors:
        names |= _series(collector.describe())
    engine.dispose()
    return names


REGISTERED = _registered()

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression (label matchers, ranges, grouping clauses,
    strings and functions taken out; what remains as identifiers are metrics)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[m.end() :].lstrip()[:1]
        if following == "(" or m.group(0).lower() in _KEYWORDS:
            continue
        if m.start() and text[m.start() - 1].isdigit():
            continue  # a unit of a number (1e-9, 5m)
        names.add(m.group(0))
    return names


def test_the_name_extraction_sees_metrics_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (service, le) (rate(cdc_x_bucket{service=~"$service"}'
        "[$__rate_interval]))) / clamp_min(sum by (service) (cdc_y), 1e-9) > 0.05 and on(service)"
        " cdc_z offset 5m"
    )
    assert metric_names(expr) == {"cdc_x_bucket", "cdc_y", "cdc_z"}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return out


def _dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_there_is_an_overview_and_one_dashboard_per_service() -> None:
    uids = {_dashboard(p)["uid"] for p in DASHBOARDS}
    assert uids == {"cdc-consumers", *(f"cdc-{s}" for s in SERVICES)}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    d = _dashboard(path)
    for key in ("uid", "title", "panels", "templating", "schemaVersion", "time"):
        assert key in d, key
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in _panels(d)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    occupied: set[tuple[int, int]] = set()
    for panel in _panels(d):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                 for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            # A per-service dashboard names its service; the overview filters by $service.
            used = set(re.findall(r'service(?:=~|=)"([^"]+)"', target["expr"]))
            assert used <= {"$service", *SERVICES}, used


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_metric_is_registered_by_the_code(path: Path) -> None:
    d = _dashboard(path)
    exprs = [t["expr"] for p in _panels(d) for t in p.get("targets", [])]
    for variable in d["templating"]["list"]:
        query = variable.get("definition", "")
        exprs += re.findall(r"label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)", query)
    used = set().union(*(metric_names(e) for e in exprs))
    assert used, path.name
    unknown = {m for m in used if m not in REGISTERED and not FOREIGN.match(m)}
    assert not unknown, f"{path.name} names metrics no collector registers: {sorted(unknown)}"


def _rule_groups(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    groups: list[dict[str, Any]] = data["spec"]["groups"] if "spec" in data else data["groups"]
    return groups


def test_every_alert_metric_is_registered_by_the_code() -> None:
    rules = [r for g in _rule_groups(MONITORING / "prometheusrule.yaml") for r in g["rules"]]
    assert len(rules) >= 15
    for rule in rules:
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        unknown = {m for m in used if m not in REGISTERED and not FOREIGN.match(m)}
        assert not unknown, f"{rule['alert']} names metrics no collector registers: {unknown}"
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_the_plain_rules_file_holds_the_prometheusrule_s_groups() -> None:
    assert _rule_groups(MONITORING / "prometheus-rules.yaml") == _rule_groups(
        MONITORING / "prometheusrule.yaml"
    ), "regenerate it: .venv/bin/python scripts/render-prometheus-rules.py"


def test_the_registered_names_include_every_figure_of_the_platform() -> None:
    """The collection above is not vacuous: it sees the runtime's and the new figures."""
    for name in (
        "cdc_messages_total",
        "cdc_end_to_end_latency_seconds_bucket",
        "cdc_aws_call_duration_seconds_bucket",
        "cdc_aws_throttles_total",
        "cdc_db_pool_checked_out",
        "cdc_db_pool_size",
        "cdc_outbox_backlog",
        "cdc_low_stock_products",
        "cdc_sink_open_windows",
        "cdc_sink_buffered_bytes",
        "cdc_sink_buffered_rows",
        "cdc_http_sink_requests_total",
        "lake_iceberg_job_seconds_bucket",
        "search_index_products_total",
    ):
        assert name in REGISTERED, name
