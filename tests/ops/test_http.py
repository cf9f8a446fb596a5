"""The HTTP service against a real store: records in, balances, alerts and metrics out."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from ops.http import create_app
from ops.runtime import Services
from ops.settings import Settings

EXAMPLES = next(
    (p / "shared" / "spec" / "examples.jsonl" for p in Path(__file__).resolve().parents if (p / "shared" / "spec" / "examples.jsonl").exists()),
    Path("/work/shared/spec/examples.jsonl"),
)


def test_post_records_then_read_balances_alerts_and_metrics(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    services = Services(settings)
    try:
        client = TestClient(create_app(settings, services))
        body = EXAMPLES.read_bytes() + b'{"type": "payment", "id": "bad"}\n'
        r = client.post("/records", content=body, headers={"content-type": "application/x-ndjson"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["accepted"] == 21 and out["rejected"] == {"malformed": 1}
        assert out["rejections"][0]["line"] == 22 and out["rejections"][0]["reason"] == "malformed"

        again = client.post("/records", content=EXAMPLES.read_bytes()).json()
        assert again["accepted"] == 0 and again["duplicate"] == 21

        balances = client.get("/balances").json()
        assert balances == [{"fund_source": "ui_surplus", "region": "320500", "appropriated": "5000000.00",
                             "paid": "600.00", "recovered": "300.00", "balance": "4999700.00"}]
        assert client.get("/balances", params={"as_of": "2024-02-08"}).json()[0]["balance"] == "4999400.00"
        assert client.get("/balances", params={"as_of": "soon"}).status_code == 422
        assert client.get("/alerts").json() == []  # the contract's example raises nothing

        metrics = client.get("/metrics").text
        assert 'skillfund_records_total{outcome="accepted",reason=""} 21.0' in metrics
        assert 'skillfund_records_total{outcome="duplicate",reason=""} 21.0' in metrics
        assert 'skillfund_fund_balance_yuan{fund_source="ui_surplus",region="320500"} 4.9997e+06' in metrics
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["ledger_position"] > 0
        assert json.dumps(health)
    finally:
        services.close()
