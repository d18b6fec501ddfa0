#!/usr/bin/env python3
"""Write k8s/monitoring/prometheus-rules.yaml: the groups of the PrometheusRule
(k8s/monitoring/prometheusrule.yaml) as a plain Prometheus rules file, for a Prometheus without
the operator (docker compose) and for `promtool test rules`.

    .venv/bin/python scripts/render-prometheus-rules.py

tests/integration/deploy/test_prometheus_rules.py fails while the two differ.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MONITORING = Path(__file__).resolve().parent.parent / "k8s" / "monitoring"
HEADER = (
    "# Generated from prometheusrule.yaml by scripts/render-prometheus-rules.py: edit that file,\n"
    "# then run the script. The same groups as a plain Prometheus rules file (docker compose,\n"
    "# promtool). tests/ holds their unit tests.\n"
)


def render() -> str:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    body = yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False, width=100)
    return HEADER + body


if __name__ == "__main__":
    (MONITORING / "prometheus-rules.yaml").write_text(render())
