"""Prometheus metrics. Labels carry kinds and reasons, never a person's id."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECORDS = Counter(
    "skillfund_records_total",
    "Input records by outcome (accepted, duplicate, rejected) and rejection reason.",
    ["outcome", "reason"],
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "skillfund_ingest_batch_seconds",
    "Time to decide and durably store one batch of input records.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
LEDGER_POSITION = Gauge(
    "skillfund_ledger_position",
    "Last position of the ledger's notification log.",
    registry=REGISTRY,
)
DETECTOR_POSITION = Gauge(
    "skillfund_detector_position",
    "Last ledger position the detectors have processed.",
    registry=REGISTRY,
)
PROJECTION_POSITION = Gauge(
    "skillfund_projection_position",
    "Last ledger position each projection has applied.",
    ["projection"],
    registry=REGISTRY,
)
ALERTS_OPEN = Gauge(
    "skillfund_alerts_open",
    "Alerts not dismissed, by kind and severity.",
    ["kind", "severity"],
    registry=REGISTRY,
)
FUND_BALANCE_YUAN = Gauge(
    "skillfund_fund_balance_yuan",
    "Balance of each fund account (display only; the books are in integer fen).",
    ["fund_source", "region"],
    registry=REGISTRY,
)


def observe_batch(result, seconds: float) -> None:
    """Count one ledger batch's outcomes (ledger.application.BatchResult)."""
    BATCH_SECONDS.observe(seconds)
    for o in result.outcomes:
        RECORDS.labels(outcome=o.status, reason=o.reason or "").inc()
    if result.last_position is not None:
        LEDGER_POSITION.set(result.last_position)
