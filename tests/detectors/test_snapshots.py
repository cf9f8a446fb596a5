"""Detector snapshots: a new process starts from the saved state and gets the same alerts."""

from __future__ import annotations

import json

from detectors.alerts import Alerts
from detectors.runner import DetectionSession
from detectors.snapshots import FileSnapshots, Snapshot
from ledger.application import Ledger, Submission
from ops.simulate import simulate


def _apps(tmp_path, name):
    ledger = Ledger(env={"LEDGER_PERSISTENCE_MODULE": "eventsourcing.sqlite", "LEDGER_SQLITE_DBNAME": str(tmp_path / f"{name}-l.sqlite")})
    alerts = Alerts(env={"ALERTS_PERSISTENCE_MODULE": "eventsourcing.sqlite", "ALERTS_SQLITE_DBNAME": str(tmp_path / f"{name}-a.sqlite")})
    return ledger, alerts


def _ingest(ledger, records):
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    for i in range(0, len(lines), 1000):
        ledger.submit([Submission.from_text(x, line=i + j + 1) for j, x in enumerate(lines[i : i + 1000])])


def _alerts(alerts):
    return sorted((a["kind"], json.dumps(a["subject"], sort_keys=True), a["severity"], json.dumps(a["evidence"], sort_keys=True)) for a in alerts.list())


def test_restart_from_snapshot_equals_a_full_replay(tmp_path, monkeypatch):
    import detectors.runner as runner

    monkeypatch.setattr(runner, "SNAPSHOT_AFTER_ITEMS", 1)
    recs = simulate(seed=5, classes=30, fraud_rate=0.3).records
    half = len(recs) // 2
    snaps = FileSnapshots(tmp_path / "state.bin")

    ledger, alerts = _apps(tmp_path, "a")
    _ingest(ledger, recs[:half])
    first = DetectionSession(ledger.recorder, alerts, snapshots=snaps).catch_up()
    assert first.items > 0 and snaps.load() is not None and snaps.load().position == first.position

    _ingest(ledger, recs[half:])
    second = DetectionSession(ledger.recorder, alerts, snapshots=snaps).catch_up()  # a new process
    assert second.restored_from == first.position and second.replayed == 0 and second.items > 0

    ref_ledger, ref_alerts = _apps(tmp_path, "b")
    _ingest(ref_ledger, recs)
    DetectionSession(ref_ledger.recorder, ref_alerts).catch_up()
    assert _alerts(alerts) == _alerts(ref_alerts)
    assert len(_alerts(alerts)) > 5


def test_stale_or_foreign_snapshots_are_ignored(tmp_path):
    snaps = FileSnapshots(tmp_path / "state.bin")
    ledger, alerts = _apps(tmp_path, "c")
    _ingest(ledger, simulate(seed=2, classes=20, fraud_rate=0.2).records)
    snaps.save(Snapshot(10**9, "other-detectors/9", b"junk"))  # ahead of the store, and foreign
    s = DetectionSession(ledger.recorder, alerts, snapshots=snaps).catch_up()
    assert s.restored_from is None and s.items > 0
    (tmp_path / "state.bin").write_bytes(b"garbage")
    assert snaps.load() is None
