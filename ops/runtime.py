"""Wiring: build the applications from settings. The only place that does."""

from __future__ import annotations

from ledger.application import Ledger
from ops.settings import Settings


def open_ledger(settings: Settings) -> Ledger:
    return Ledger(env=settings.eventsourcing_env(Ledger.name))
