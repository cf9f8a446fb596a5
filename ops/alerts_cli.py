"""``skillfund alerts`` and ``skillfund alert ACTION ALERT_ID``: the inspectors' commands.

    skillfund alerts [--format table|jsonl] [--kind K] [--since DATE] [--status S] [--no-refresh]
    skillfund alert ack|escalate|refer|dismiss ALERT_ID --by OFFICER --note TEXT

``alerts`` first catches detection up with the ledger (so the list reflects
every accepted record; ``--no-refresh`` reads the store as it is), then
prints. ``--format jsonl`` is the record contract's alert line, exactly its
keys (``--case`` adds status, detector and history after them), identity numbers in full
(inspectors have need to know); the table masks them.

Errors a user can fix (unknown alert id, empty note, officer or action, an
alert already dismissed, a bad option value) print one line on stderr and
exit with code 2.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any, Optional

import orjson
import typer

from detectors.alerts import ACTIONS, STATUSES, AlertNotFound, Alerts, AlertStateError, contract_view
from detectors.runner import DetectStats
from ledger.ids import mask_resident_id
from ledger.policy import ALERT_KINDS
from ops.settings import Settings

_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dX](?![0-9A-Za-z])")


# ------------------------------------------------------------------ wiring


def open_alerts(settings: Settings) -> Alerts:
    from ops.runtime import open_alerts as opener

    return opener(settings)


def _open_ledger(settings: Settings) -> Any:
    from ops.runtime import open_ledger

    return open_ledger(settings)


def run_detection(settings: Settings, ledger: Any = None, alerts: Alerts | None = None) -> DetectStats:
    """Catch the alert store up with the ledger (warm-up replay, then the new positions)."""
    ledger = ledger if ledger is not None else _open_ledger(settings)
    alerts = alerts if alerts is not None else open_alerts(settings)
    from ops.runtime import detection_session

    return detection_session(settings, ledger, alerts).catch_up()


def after_ingest(settings: Settings, ledger: Any, *, detect: bool, project: bool) -> None:
    """Hook for ``ops.cli._AFTER_INGEST``: run detection after an ingest unless --no-detect."""
    if not detect:
        return
    stats = run_detection(settings, ledger)
    typer.echo(f"alerts: {stats.new} new, {stats.updated} updated (ledger position {stats.position})")


# ------------------------------------------------------------------ printing


def mask_text(text: str) -> str:
    return _RESIDENT_ID.sub(lambda m: mask_resident_id(m.group(0)), text)


def _subject_text(subject: dict[str, str]) -> str:
    return " ".join(f"{k}={mask_resident_id(v)}" for k, v in sorted(subject.items()))


def _fail(message: str) -> typer.Exit:
    typer.echo(f"skillfund: {message}", err=True)
    return typer.Exit(2)


def _print_table(rows: list[dict[str, Any]]) -> None:
    typer.echo(f"{'alert_id':<36}  {'kind':<26} {'severity':<8} {'status':<12} {'raised_at':<25}  subject — summary")
    for a in rows:
        typer.echo(
            f"{a['alert_id']:<36}  {a['kind']:<26} {a['severity']:<8} {a['status']:<12} {a['raised_at']:<25}  "
            f"{_subject_text(a['subject'])} — {mask_text(a.get('summary') or '')}"
        )
    typer.echo(f"{len(rows)} alert(s)")


# ------------------------------------------------------------------ commands


def register(app: typer.Typer) -> None:
    @app.command("alerts")
    def alerts_command(
        format: Annotated[str, typer.Option("--format", help="table or jsonl (the record contract's alert lines)")] = "table",
        kind: Annotated[Optional[str], typer.Option("--kind", help="only alerts of this kind")] = None,
        since: Annotated[Optional[str], typer.Option("--since", help="only alerts raised on or after this date (YYYY-MM-DD)")] = None,
        status: Annotated[Optional[str], typer.Option("--status", help=f"only alerts in this status: {', '.join(STATUSES)}")] = None,
        refresh: Annotated[bool, typer.Option("--refresh/--no-refresh", help="catch detection up with the ledger first")] = True,
        case: Annotated[bool, typer.Option("--case", help="jsonl: add status, detector and the action history after the contract's keys")] = False,
    ) -> None:
        """List alerts with their evidence and policy citations."""
        if format not in ("table", "jsonl"):
            raise _fail("alerts: --format is table or jsonl")
        if kind is not None and kind not in ALERT_KINDS:
            raise _fail(f"alerts: unknown --kind {kind!r} (one of {', '.join(ALERT_KINDS)})")
        if status is not None and status not in STATUSES:
            raise _fail(f"alerts: unknown --status {status!r} (one of {', '.join(STATUSES)})")
        settings = _settings()
        store = open_alerts(settings)
        if refresh:
            run_detection(settings, alerts=store)
        try:
            rows = store.list(kind=kind, since=since, status=status)
        except ValueError as e:
            raise _fail(f"alerts: {e}") from None
        if format == "jsonl":
            out = sys.stdout.buffer
            for a in rows:
                out.write(orjson.dumps(contract_view(a, case=case)) + b"\n")
            out.flush()
            return
        _print_table(rows)

    @app.command("alert")
    def alert_command(
        action: Annotated[str, typer.Argument(help="ack, escalate, refer (移送) or dismiss")],
        alert_id: Annotated[str, typer.Argument(help="the alert's id (see `skillfund alerts`)")],
        by: Annotated[str, typer.Option("--by", help="the officer acting")] = "",
        note: Annotated[str, typer.Option("--note", help="what was done and why (required; for dismiss, the reason)")] = "",
    ) -> None:
        """Acknowledge, escalate, refer or dismiss an alert. Every action is recorded with who, when and why."""
        if action not in ACTIONS:
            raise _fail(f"alert: action must be one of {', '.join(ACTIONS)}, got {action!r}")
        settings = _settings()
        store = open_alerts(settings)
        try:
            a = store.act(alert_id, action, by=by, note=note)
        except AlertNotFound as e:
            raise _fail(f"alert: no alert with id {e.alert_id}") from None
        except (AlertStateError, ValueError) as e:
            raise _fail(f"alert: {e}") from None
        typer.echo(f"{a['alert_id']} {a['kind']} is now {a['status']}")


def _settings() -> Settings:
    from ops.runtime import load_settings

    return load_settings()
