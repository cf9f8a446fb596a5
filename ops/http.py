"""The HTTP service: JSON Lines in, balances/alerts/metrics out.

`skillfund serve` runs it with uvicorn. One ledger writer per process; request
bodies are bounded and ingested in the same bounded batches as files.
"""

from __future__ import annotations

import io
import threading
import time
from datetime import date
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ops import metrics
from ops.settings import Settings
from streams.intake import ingest_stream

BODY_BYTES_MAX = 64 * 1024 * 1024


def create_app(settings: Settings, services: Any) -> FastAPI:
    """``services`` is an ops.runtime.Services (ledger + downstream catch-up)."""
    app = FastAPI(title="skillfund", version="0.1.0")
    # One request at a time touches the stores: the ledger is a single writer and
    # the view store's connection is not shared concurrently. Reads are cheap.
    lock = threading.Lock()

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with lock:
            position = services.ledger.recorder.max_notification_id() or 0
        return {"status": "ok", "store": settings.store_kind, "ledger_position": position}

    @app.post("/records")
    async def post_records(request: Request) -> JSONResponse:
        """Ingest a JSON Lines body (records.md). Every line is accepted or rejected durably."""
        size = int(request.headers.get("content-length") or 0)
        if size > BODY_BYTES_MAX:
            raise HTTPException(413, f"body over {BODY_BYTES_MAX} bytes; split it")
        body = await request.body()
        if len(body) > BODY_BYTES_MAX:
            raise HTTPException(413, f"body over {BODY_BYTES_MAX} bytes; split it")
        outcomes: list[dict[str, Any]] = []

        def on_batch(result: Any) -> None:
            for o in result.outcomes:
                if o.status == "rejected":
                    outcomes.append({"line": o.line, "type": o.type, "id": o.id, "reason": o.reason, "detail": o.detail, "field": o.field})

        with lock:
            started = time.perf_counter()
            summary = ingest_stream(
                services.ledger, io.BytesIO(body), "http", batch_size=settings.batch_size,
                on_batch=lambda r: (metrics.observe_batch(r, time.perf_counter() - started), on_batch(r)),
            )
            services.after_ingest()
        return JSONResponse(
            {"accepted": summary.accepted, "duplicate": summary.duplicate, "rejected": summary.rejected, "rejections": outcomes[:1000]}
        )

    @app.get("/balances")
    def balances(as_of: str | None = None) -> JSONResponse:
        if as_of is not None:
            try:
                as_of = date.fromisoformat(as_of).isoformat()
            except ValueError:
                raise HTTPException(422, f"as_of must be a date YYYY-MM-DD, not {as_of!r}") from None
        with lock:
            return JSONResponse(services.balances(as_of=as_of))

    @app.get("/alerts")
    def alerts(kind: str | None = None, status: str | None = None, since: str | None = None) -> JSONResponse:
        with lock:
            return JSONResponse(services.alerts(kind=kind, status=status, since=since))

    @app.get("/metrics")
    def prometheus_metrics() -> PlainTextResponse:
        with lock:
            services.refresh_gauges()
        return PlainTextResponse(generate_latest(metrics.REGISTRY).decode(), media_type=CONTENT_TYPE_LATEST)

    return app
