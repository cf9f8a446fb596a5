"""Wiring: build the applications and stores from settings. The only place that does."""

from __future__ import annotations

import hashlib
from typing import Any

from detectors.alerts import Alerts, contract_view
from detectors.registry import all_detectors
from detectors.runner import DetectionSession
from detectors.snapshots import FileSnapshots
from ledger.application import Ledger
from ops import metrics
from ops.settings import Settings
from projections.runner import all_projections, catch_up
from projections.store import ViewStore, open_store


def load_settings() -> Settings:
    """Settings from the environment; a bad environment is the user's to fix: say what, exit 2."""
    import typer

    try:
        return Settings()
    except Exception as e:
        typer.echo(f"skillfund: bad configuration: {e}", err=True)
        raise typer.Exit(2) from e


def open_ledger(settings: Settings) -> Ledger:
    return Ledger(env=settings.eventsourcing_env(Ledger.name))


def open_alerts(settings: Settings) -> Alerts:
    # One SQLite file per application (see Settings.sqlite_path_for).
    return Alerts(env=settings.eventsourcing_env(Alerts.name))


def detector_snapshots(settings: Settings) -> FileSnapshots:
    """Detector state cache beside the store (a cache only: see detectors/snapshots.py)."""
    if settings.store_kind == "sqlite":
        return FileSnapshots(settings.data_dir / "detector-state.bin")
    tag = hashlib.sha256(f"{settings.database_url}|{settings.database_schema}".encode()).hexdigest()[:12]
    return FileSnapshots(settings.data_dir / f"detector-state-{tag}.bin")


def detection_session(settings: Settings, ledger: Ledger, alerts: Alerts) -> DetectionSession:
    """Detectors with their model kept in <data dir>/models and their state snapshotted."""
    model_dir = settings.data_dir / "models"
    return DetectionSession(
        ledger.recorder, alerts, lambda: all_detectors(model_dir), snapshots=detector_snapshots(settings)
    )


class Services:
    """A long-lived process's applications, kept warm between requests.

    The HTTP service holds one: the ledger (single writer), the detection
    session (detector state stays in memory, so each catch-up reads only the
    new positions) and the view store.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger = open_ledger(settings)
        self.alerts_app = open_alerts(settings)
        self.views: ViewStore = open_store(settings)
        self.detection = detection_session(settings, self.ledger, self.alerts_app)
        self.projections = all_projections()

    def after_ingest(self) -> None:
        catch_up(self.views, self.ledger.recorder, self.projections)
        self.detection.catch_up()

    def balances(self, as_of: str | None = None) -> list[dict[str, Any]]:
        from projections import balances as bal

        catch_up(self.views, self.ledger.recorder, self.projections)
        return bal.to_json(bal.balances(self.views, as_of=as_of))

    def alerts(self, *, kind: str | None, status: str | None, since: str | None) -> list[dict[str, Any]]:
        return [contract_view(a, case=True) for a in self.alerts_app.list(kind=kind, since=since, status=status)]

    def refresh_gauges(self) -> None:
        metrics.LEDGER_POSITION.set(self.ledger.recorder.max_notification_id() or 0)
        metrics.DETECTOR_POSITION.set(self.alerts_app.position())
        for name, (pos, _ver) in self.views.tracking().items():
            metrics.PROJECTION_POSITION.labels(projection=name).set(pos)
        metrics.ALERTS_OPEN.clear()
        counts: dict[tuple[str, str], int] = {}
        for a in self.alerts_app.list():
            if a["status"] != "dismissed":
                key = (a["kind"], a["severity"])
                counts[key] = counts.get(key, 0) + 1
        for (kind, severity), n in counts.items():
            metrics.ALERTS_OPEN.labels(kind=kind, severity=severity).set(n)
        metrics.FUND_BALANCE_YUAN.clear()
        # From the balances view (one indexed query), not by scanning the ledger's log.
        for row in self.balances():
            # display only: Prometheus gauges are floats; the books stay in fen
            metrics.FUND_BALANCE_YUAN.labels(fund_source=row["fund_source"], region=row["region"]).set(float(row["balance"]))

    def close(self) -> None:
        self.views.close()
        self.alerts_app.close()
        self.ledger.close()
