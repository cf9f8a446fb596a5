"""A real Prometheus scrapes the real HTTP service and loads the real rules."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import uvicorn

from ops.http import create_app
from ops.runtime import Services
from ops.settings import Settings

EXAMPLES = next(
    (p / "shared" / "spec" / "examples.jsonl" for p in Path(__file__).resolve().parents if (p / "shared" / "spec" / "examples.jsonl").exists()),
    Path("/work/shared/spec/examples.jsonl"),
)
RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "skillfund-rules.yml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return json.loads(r.read())


def _prometheus_bin() -> str:
    found = shutil.which("prometheus")
    if found is None:
        why = "prometheus missing: Debian package prometheus (make deps-debian)"
        if os.environ.get("SKILLFUND_TEST_STRICT") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return found


def test_prometheus_scrapes_skillfund_and_loads_its_rules(tmp_path):
    prometheus = _prometheus_bin()
    settings = Settings(data_dir=tmp_path / "d")
    services = Services(settings)
    app_port, prom_port = _free_port(), _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=app_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    proc = None
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "skillfund HTTP service did not start"
        from ops import metrics

        # The registry is the process's: other tests may have counted records already.
        before = metrics.RECORDS.labels(outcome="accepted", reason="")._value.get()
        req = urllib.request.Request(f"http://127.0.0.1:{app_port}/records", data=EXAMPLES.read_bytes(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback only
            assert json.loads(r.read())["accepted"] == 21

        shutil.copy(RULES, tmp_path / RULES.name)
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {RULES.name}\n"
            "scrape_configs:\n  - job_name: skillfund\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n",
            encoding="utf-8",
        )
        proc = subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
        )
        base = f"http://127.0.0.1:{prom_port}/api/v1"
        query = urllib.parse.quote('skillfund_records_total{outcome="accepted"}')
        value = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and value is None:
            time.sleep(0.5)
            try:
                got = _get(f"{base}/query?query={query}")
            except OSError:
                continue
            result = got.get("data", {}).get("result", [])
            if result:
                value = float(result[0]["value"][1])
        assert value == before + 21.0, f"prometheus did not scrape skillfund: {value!r} (before {before})"
        balance = _get(f"{base}/query?query=" + urllib.parse.quote("skillfund_fund_balance_yuan"))["data"]["result"]
        assert [(r["metric"]["fund_source"], r["metric"]["region"], float(r["value"][1])) for r in balance] == [
            ("ui_surplus", "320500", 4999700.0)
        ]
        groups = _get(f"{base}/rules")["data"]["groups"]
        names = {rule["name"] for g in groups for rule in g["rules"]}
        assert {"SkillfundRejectionRateHigh", "SkillfundDetectorsLagging", "SkillfundCriticalFraudAlertOpen"} <= names
        assert all(rule["health"] in ("ok", "unknown") for g in groups for rule in g["rules"])
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.should_exit = True
        thread.join(timeout=10)
        services.close()
