"""The alert rules through promtool: both files (the PrometheusRule's groups and the plain rules
file generated from it) pass `promtool check rules`, and the unit tests in
k8s/monitoring/tests (input series, expected alerts with their rendered annotations) pass
`promtool test rules`. promtool comes from Debian's `prometheus` package (.ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

MONITORING = ROOT / "k8s" / "monitoring"
TESTS = sorted((MONITORING / "tests").glob("*.test.yaml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not found: apt-get install prometheus")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=MONITORING)


def test_both_rule_files_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    groups = tmp_path / "from-prometheusrule.yaml"
    groups.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    for path in (groups, MONITORING / "prometheus-rules.yaml"):
        result = _run(promtool, "check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {sum(len(g['rules']) for g in rule['spec']['groups'])} rules found" in (
            result.stdout + result.stderr
        )


def test_every_alert_has_a_promtool_test(promtool: str) -> None:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    tested = {
        case["alertname"]
        for path in TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    # Those two read kube-state-metrics' series, which need a cluster to mean anything.
    assert alerts - tested <= {"CdcConsumerNotReady", "CdcConsumerRestarting"}, alerts - tested


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(promtool: str, path: Path) -> None:
    result = _run(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_a_wrong_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """The promtool tests can fail: the same test expecting another service does."""
    case = yaml.safe_load(TESTS[0].read_text())
    case["rule_files"] = [str(MONITORING / "prometheus-rules.yaml")]
    first = next(c for t in case["tests"] for c in t["alert_rule_test"] if c.get("exp_alerts"))
    first["exp_alerts"][0]["exp_labels"]["service"] = "no-such-service"
    wrong = tmp_path / "wrong.test.yaml"
    wrong.write_text(yaml.safe_dump(case))
    result = _run(promtool, "test", "rules", str(wrong))
    assert result.returncode != 0


def test_the_compose_prometheus_config_loads_the_rules(promtool: str, tmp_path: Path) -> None:
    """docker compose's Prometheus configuration, its rules glob pointed at the rules file it
    mounts, passes `promtool check config` (which loads the rules too)."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    config["rule_files"] = [str(MONITORING / "prometheus-rules.yaml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = _run(promtool, "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    count = sum(len(g["rules"]) for g in rule["spec"]["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout + result.stderr
