"""The alert store (events + tracking in one transaction) and the inspectors' CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from scenario import Scenario, shift, submit_all, ts
from typer.testing import CliRunner

from detectors.alerts import (
    CONTRACT_KEYS,
    AlertNotFound,
    Alerts,
    AlertStateError,
    PositionBehind,
    alert_id_for,
)
from detectors.base import AlertDraft
from ledger.application import Ledger
from ops.alerts_cli import register
from ops.settings import Settings

POLICY = ["苏府办〔2017〕372号 三(二)"]


def draft(kind: str = "proxy_sign_in", subject: dict[str, str] | None = None, *, severity: str = "medium",
          evidence: list[dict[str, Any]] | None = None, at: str = "2024-01-15T08:30:00+08:00", position: int = 1,
          score: float | None = None) -> AlertDraft:
    return AlertDraft(
        kind=kind, subject=subject or {"class_id": "class-1"}, severity=severity,
        evidence=evidence if evidence is not None else [{"attendance_id": "att-1", "face_score": 0.3}],
        policy=POLICY, raised_at=at, position=position, detector="test/1", score=score, summary="s",
    )


@pytest.fixture
def settings(store_env: Settings) -> Settings:
    return store_env


@pytest.fixture
def alerts(settings: Settings) -> Iterator[Alerts]:
    a = Alerts(env=settings.eventsourcing_env(Alerts.name))
    try:
        yield a
    finally:
        a.close()


# ------------------------------------------------------------------ configuration


def test_sqlite_alerts_live_in_their_own_file(tmp_path) -> None:
    s = Settings(data_dir=tmp_path, database_url=None)
    env = s.eventsourcing_env(Alerts.name)
    assert env["ALERTS_PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["ALERTS_SQLITE_DBNAME"] != s.eventsourcing_env("Ledger")["LEDGER_SQLITE_DBNAME"]


def test_alerts_refuse_to_run_in_memory_by_accident(monkeypatch) -> None:
    for k in ("PERSISTENCE_MODULE", "ALERTS_PERSISTENCE_MODULE"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ValueError, match="persistence module"):
        Alerts(env={})


# ------------------------------------------------------------------ record: exactly once


def test_record_new_updated_unchanged_and_position(alerts: Alerts) -> None:
    assert alerts.position() == 0
    assert alerts.record([draft()], 10) == (1, 0)
    assert alerts.position() == 10
    assert alerts.record([draft(position=12)], 12) == (0, 0)  # same content: nothing new
    assert alerts.position() == 12
    more = draft(evidence=[{"attendance_id": "att-1"}, {"attendance_id": "att-2"}], at="2024-01-16T08:00:00+08:00",
                 position=15, severity="high")
    assert alerts.record([more], 15) == (0, 1)
    (a,) = alerts.list()
    assert a["severity"] == "high" and len(a["evidence"]) == 2
    assert a["raised_at"] == "2024-01-15T08:30:00+08:00"  # when it first became true
    assert [h["event"] for h in a["history"]] == ["raised", "evidence_updated"]
    assert a["history"][1]["at"] == "2024-01-16T08:00:00+08:00"


def test_record_tracks_position_even_without_drafts_and_refuses_stale_positions(alerts: Alerts) -> None:
    assert alerts.record([], 7) == (0, 0)
    assert alerts.position() == 7
    assert alerts.record([], 7) == (0, 0)  # nothing changed, same position: no write
    with pytest.raises(PositionBehind):
        alerts.record([draft()], 3)
    assert alerts.list() == []


def test_record_at_the_stored_position_is_idempotent(alerts: Alerts) -> None:
    assert alerts.record([draft()], 5) == (1, 0)
    assert alerts.record([draft()], 5) == (0, 0)
    assert alerts.record([draft(severity="high")], 5) == (0, 1)
    assert alerts.position() == 5


def test_several_drafts_of_one_alert_in_one_call_make_one_alert(alerts: Alerts) -> None:
    d1 = draft(at="2024-01-15T08:30:00+08:00", position=3)
    d2 = draft(evidence=[{"attendance_id": "att-9"}], at="2024-01-15T09:00:00+08:00", position=4, severity="high")
    other = draft(subject={"class_id": "class-2"}, position=4)
    r = alerts.record_detailed([d1, other, d2], 4)
    assert (r.new, r.updated) == (2, 0) and r.per_kind == {"proxy_sign_in": {"new": 2, "updated": 0}}
    a = alerts.get(alert_id_for("proxy_sign_in", {"class_id": "class-1"}))
    assert a["evidence"] == [{"attendance_id": "att-9"}] and a["severity"] == "high"
    assert a["raised_at"] == "2024-01-15T08:30:00+08:00" and a["position"] == 3
    assert [x["subject"]["class_id"] for x in alerts.list()] == ["class-1", "class-2"]


def test_alert_events_and_tracking_are_one_transaction(alerts: Alerts, monkeypatch) -> None:
    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(alerts.recorder, "_insert_tracking", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        alerts.record([draft()], 9)
    monkeypatch.undo()
    assert alerts.position() == 0
    assert alerts.list() == []
    assert alerts.record([draft()], 9) == (1, 0)


def test_a_second_writer_is_fenced_by_the_tracking(alerts: Alerts, settings: Settings) -> None:
    other = Alerts(env=settings.eventsourcing_env(Alerts.name))
    try:
        assert alerts.record([draft()], 10) == (1, 0)
        with pytest.raises(PositionBehind):
            other.record([draft(subject={"class_id": "class-2"})], 8)
        assert other.record([draft()], 10) == (0, 0)
        assert len(other.list()) == 1
    finally:
        other.close()


def test_events_are_json_native(alerts: Alerts) -> None:
    alerts.record([draft(score=0.93)], 2)
    rows = alerts.recorder.select_notifications(start=1, limit=10)
    assert rows
    for n in rows:
        state = json.loads(n.state)
        assert isinstance(state["timestamp"], str)
    raised = json.loads(rows[0].state)
    assert raised["subject"] == {"class_id": "class-1"} and raised["score"] == 0.93
    assert raised["raised_at"] == "2024-01-15T08:30:00+08:00"


# ------------------------------------------------------------------ reading


def test_list_filters_and_contract_shape(alerts: Alerts) -> None:
    alerts.record([
        draft(at="2024-01-15T08:30:00+08:00"),
        draft("anomalous_class", {"class_id": "class-1"}, at="2024-02-01T00:30:00+08:00", score=0.875),
        draft("overlapping_enrollment", {"trainee_id": "320505199005170012"}, at="2024-03-01T10:00:00+08:00"),
    ], 3)
    everything = alerts.list()
    assert [a["kind"] for a in everything] == ["proxy_sign_in", "anomalous_class", "overlapping_enrollment"]
    first = everything[0]
    assert list(first)[:7] == [k for k in CONTRACT_KEYS if k != "score"]
    assert "score" not in first and everything[1]["score"] == 0.875
    assert list(everything[1])[:8] == list(CONTRACT_KEYS)
    assert first["status"] == "open" and first["detector"] == "test/1" and first["history"]
    assert [a["kind"] for a in alerts.list(kind="anomalous_class")] == ["anomalous_class"]
    assert [a["kind"] for a in alerts.list(since="2024-02-01")] == ["anomalous_class", "overlapping_enrollment"]
    assert [a["kind"] for a in alerts.list(since="2024-02-01T01:00:00+08:00")] == ["overlapping_enrollment"]
    alerts.act(first["alert_id"], "ack", by="officer-7", note="looking into it")
    assert [a["kind"] for a in alerts.list(status="acknowledged")] == ["proxy_sign_in"]
    assert len(alerts.list(status="open")) == 2
    with pytest.raises(ValueError):
        alerts.list(status="closed")
    with pytest.raises(ValueError):
        alerts.list(since="yesterday")


def test_get_unknown_alert(alerts: Alerts) -> None:
    with pytest.raises(AlertNotFound) as e:
        alerts.get("0d5e1f4e-2a9b-4c47-9a43-000000000000")
    assert e.value.alert_id == "0d5e1f4e-2a9b-4c47-9a43-000000000000"
    with pytest.raises(AlertNotFound):
        alerts.get("not-a-uuid")


# ------------------------------------------------------------------ lifecycle


def test_lifecycle_ack_escalate_refer(alerts: Alerts) -> None:
    alerts.record([draft()], 1)
    aid = alerts.list()[0]["alert_id"]
    a = alerts.act(aid, "ack", by="officer-7", note="assigned to team 2", at="2024-02-01T09:00:00+08:00")
    assert a["status"] == "acknowledged"
    with pytest.raises(AlertStateError, match="acknowledged"):
        alerts.act(aid, "ack", by="officer-8", note="again")
    assert alerts.act(aid, "escalate", by="officer-7", note="pattern across classes")["status"] == "escalated"
    a = alerts.act(aid, "refer", by="officer-9", note="移送纪检监察")
    assert a["status"] == "referred"
    assert [(h["event"], h.get("by")) for h in a["history"]] == [
        ("raised", None), ("acknowledged", "officer-7"), ("escalated", "officer-7"), ("referred", "officer-9"),
    ]
    assert a["history"][1]["at"] == "2024-02-01T09:00:00+08:00" and a["history"][1]["note"] == "assigned to team 2"
    with pytest.raises(AlertStateError):
        alerts.act(aid, "dismiss", by="officer-9", note="changed my mind")
    assert alerts.get(aid)["status"] == "referred"


def test_lifecycle_rejects_unknown_ids_and_empty_reasons(alerts: Alerts) -> None:
    alerts.record([draft()], 1)
    aid = alerts.list()[0]["alert_id"]
    with pytest.raises(AlertNotFound):
        alerts.act("0d5e1f4e-2a9b-4c47-9a43-000000000000", "ack", by="officer-7", note="x")
    with pytest.raises(ValueError, match="a reason is required"):
        alerts.act(aid, "dismiss", by="officer-7", note="   ")
    with pytest.raises(ValueError, match="a reason is required"):
        alerts.act(aid, "dismiss", by="officer-7", note="")
    with pytest.raises(ValueError, match="officer"):
        alerts.act(aid, "ack", by="", note="x")
    with pytest.raises(ValueError, match="action"):
        alerts.act(aid, "close", by="officer-7", note="x")
    with pytest.raises(ValueError, match="offset"):
        alerts.act(aid, "ack", by="officer-7", note="x", at="2024-02-01T09:00:00")
    assert alerts.get(aid)["status"] == "open" and len(alerts.get(aid)["history"]) == 1


def test_dismissed_ends_and_new_evidence_keeps_it_dismissed(alerts: Alerts) -> None:
    alerts.record([draft()], 1)
    aid = alerts.list()[0]["alert_id"]
    alerts.act(aid, "dismiss", by="officer-7", note="face camera fault on that day, confirmed")
    for action in ("ack", "escalate", "refer", "dismiss"):
        with pytest.raises(AlertStateError, match="dismissed"):
            alerts.act(aid, action, by="officer-7", note="x")
    assert alerts.record([draft(evidence=[{"attendance_id": "att-77"}], position=2)], 2) == (0, 1)
    a = alerts.get(aid)
    assert a["status"] == "dismissed" and a["evidence"] == [{"attendance_id": "att-77"}]
    assert [h["event"] for h in a["history"]] == ["raised", "dismissed", "evidence_updated"]


# ------------------------------------------------------------------ CLI


def fraud_scenario() -> tuple[Scenario, str, str]:
    """A class with a ghost trainee and proxies, and a trainee in two classes at once."""
    sc = Scenario()
    inst = sc.institution()
    proj = sc.project()
    cls = sc.class_opened(inst, proj, planned_headcount=5)
    people = [sc.enroll(cls) for _ in range(5)]
    for sid in sc.session_ids(cls):
        start = sc.session(cls, sid)["start"]
        for i, t in enumerate(people[:4]):
            sc.attend(cls, sid, t, sign_in=shift(start, minutes=-9, seconds=13 * i), face_score=0.3 if i < 2 else 0.9)
    other = sc.class_opened(sc.institution(), sc.project(standard_hours=4), days=["2024-01-15"], start="09:00",
                            end="12:00", planned_headcount=1)
    sc.enroll(other, people[3])
    sc.attend(other, "s-01", people[3])
    sc.claim(cls, people, at=ts("2024-01-26", "10:00"))
    return sc, cls, people[3]


@pytest.fixture
def cli(settings: Settings, monkeypatch) -> tuple[typer.Typer, CliRunner]:
    monkeypatch.setenv("SKILLFUND_DATA_DIR", str(settings.data_dir))
    if settings.database_url:
        monkeypatch.setenv("SKILLFUND_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("SKILLFUND_DATABASE_SCHEMA", settings.database_schema or "")
    app = typer.Typer()
    register(app)
    return app, CliRunner()


def test_cli_alerts_jsonl_table_and_actions(settings: Settings, cli) -> None:
    app, runner = cli
    sc, cls, both = fraud_scenario()
    ledger = Ledger(env=settings.eventsourcing_env("Ledger"))
    try:
        submit_all(ledger, sc)
    finally:
        ledger.close()
    r = runner.invoke(app, ["alerts", "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    by_kind = {a["kind"]: a for a in lines}
    assert set(by_kind) == {"inflated_headcount", "proxy_sign_in", "overlapping_enrollment"}
    for a in lines:
        keys = list(a)
        want = [k for k in CONTRACT_KEYS if k in a]
        assert keys == want  # exactly the contract keys (--case adds the workflow fields)
        assert a["severity"] in ("low", "medium", "high", "critical") and a["policy"] and a["evidence"]
    assert by_kind["overlapping_enrollment"]["subject"] == {"trainee_id": both}  # jsonl keeps the id
    assert by_kind["inflated_headcount"]["subject"] == {"class_id": cls}

    r = runner.invoke(app, ["alerts", "--no-refresh"])
    assert r.exit_code == 0 and "3 alert(s)" in r.stdout
    assert both not in r.stdout and both[:6] + "********" + both[14:] in r.stdout  # masked in the table

    aid = by_kind["proxy_sign_in"]["alert_id"]
    r = runner.invoke(app, ["alert", "ack", aid, "--by", "officer-7", "--note", "checking the camera logs"])
    assert r.exit_code == 0 and "acknowledged" in r.stdout
    r = runner.invoke(app, ["alerts", "--format", "jsonl", "--status", "acknowledged"])
    assert [json.loads(x)["alert_id"] for x in r.stdout.splitlines()] == [aid]
    r = runner.invoke(app, ["alerts", "--format", "jsonl", "--kind", "overlapping_enrollment", "--no-refresh"])
    assert [json.loads(x)["kind"] for x in r.stdout.splitlines()] == ["overlapping_enrollment"]

    r = runner.invoke(app, ["alert", "ack", "0d5e1f4e-2a9b-4c47-9a43-000000000000", "--by", "o", "--note", "x"])
    assert r.exit_code == 2 and "no alert with id 0d5e1f4e" in r.stderr
    r = runner.invoke(app, ["alert", "dismiss", aid, "--by", "officer-7", "--note", ""])
    assert r.exit_code == 2 and "a reason is required" in r.stderr
    r = runner.invoke(app, ["alert", "dismiss", aid, "--by", "officer-7"])
    assert r.exit_code == 2 and "a reason is required" in r.stderr
    r = runner.invoke(app, ["alert", "close", aid, "--by", "officer-7", "--note", "x"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["alerts", "--format", "xml"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["alert", "dismiss", aid, "--by", "officer-7", "--note", "camera fault confirmed"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["alert", "escalate", aid, "--by", "officer-7", "--note", "x"])
    assert r.exit_code == 2 and "dismissed" in r.stderr

    # running detection again over the same store raises nothing new, updates nothing
    store = Alerts(env=settings.eventsourcing_env(Alerts.name))
    try:
        before = store.list()
        r = runner.invoke(app, ["alerts", "--format", "jsonl"])
        assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
        assert store.list() == before
    finally:
        store.close()
