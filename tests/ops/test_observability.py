"""Prometheus rules checked by the real promtool; dashboards only use metrics we export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from prometheus_client import generate_latest

from ops import metrics

OPS = Path(__file__).resolve().parents[2] / "ops"
RULES = OPS / "prometheus" / "skillfund-rules.yml"
RULE_TESTS = OPS / "prometheus" / "skillfund-rules.test.yml"
DASHBOARD = OPS / "grafana" / "skillfund.json"


def test_promtool_checks_the_rules(promtool_bin):
    out = subprocess.run([promtool_bin, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_promtool_unit_tests_the_alerts(promtool_bin):
    out = subprocess.run(
        [promtool_bin, "test", "rules", RULE_TESTS.name], capture_output=True, text=True, timeout=60, cwd=RULE_TESTS.parent
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _exported_names() -> set[str]:
    metrics.RECORDS.labels(outcome="accepted", reason="").inc(0)
    metrics.ALERTS_OPEN.labels(kind="inflated_headcount", severity="high").set(0)
    metrics.FUND_BALANCE_YUAN.labels(fund_source="ui_surplus", region="320500").set(0)
    metrics.PROJECTION_POSITION.labels(projection="balances").set(0)
    text = generate_latest(metrics.REGISTRY).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def _referenced(expr: str) -> set[str]:
    return {m for m in re.findall(r"\b(skillfund_[a-z_]+)\b", expr)}


def test_dashboard_and_rules_only_use_exported_metrics():
    exported = _exported_names()
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += re.findall(r"expr: \|?\s*(.+)", RULES.read_text(encoding="utf-8"))
    used = set().union(*(_referenced(e) for e in exprs))
    assert used, "no metric referenced"
    missing = {m for m in used if m not in exported}
    assert not missing, f"referenced but not exported: {sorted(missing)}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_metric_labels_never_carry_a_resident_id():
    text = generate_latest(metrics.REGISTRY).decode()
    labels = re.findall(r"\{([^}]*)\}", text)
    assert labels, "no labelled series to check"
    assert not any(re.search(r"\d{17}[\dX]", ls) for ls in labels)


def test_promtool_checks_the_stack_config(promtool_bin):
    out = subprocess.run(
        [promtool_bin, "check", "config", "prometheus.yml"], capture_output=True, text=True, timeout=60, cwd=RULES.parent
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_mounts_files_that_exist():
    compose = (OPS / "compose.yaml").read_text(encoding="utf-8")
    mounts = re.findall(r"- (\./[\w./-]+):", compose)
    assert len(mounts) >= 4
    for m in mounts:
        assert (OPS / m).exists(), m
    assert "ops/Dockerfile" in compose and (OPS / "Dockerfile").exists()
    for name in ("skillfund serve", "skillfund consume", "skillfund relay"):
        assert name.split()[1] in compose
