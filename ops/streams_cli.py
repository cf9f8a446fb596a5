"""Operators' commands: the HTTP service and the Kafka workers."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from ops import metrics
from ops.settings import Settings


def _settings() -> Settings:
    from ops.runtime import load_settings

    return load_settings()


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    ) -> None:
        """HTTP service: POST /records (JSON Lines), GET /balances, /alerts, /metrics, /healthz."""
        import uvicorn

        from ops.http import create_app
        from ops.runtime import Services

        settings = _settings()
        services = Services(settings)
        services.after_ingest()
        try:
            uvicorn.run(create_app(settings, services), host=host, port=port, log_level="info",
                        timeout_keep_alive=5, limit_concurrency=64)
        finally:
            services.close()

    @app.command("consume")
    def consume(
        bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers, host:port.")],
        topic: Annotated[str, typer.Option(help="Topic of contract records, one per message.")] = "skillfund.records",
        group: Annotated[str, typer.Option(help="Consumer group.")] = "skillfund-ledger",
        seconds: Annotated[Optional[float], typer.Option(help="Stop after this many seconds (default: run until stopped).")] = None,
        idle_polls: Annotated[Optional[int], typer.Option(help="Stop after this many empty polls in a row.")] = None,
    ) -> None:
        """Consume records from Kafka into the ledger; offsets commit after each batch is durable."""
        from ops.runtime import Services
        from streams.kafka import KafkaIntake, KafkaOptions

        settings = _settings()
        services = Services(settings)
        intake = KafkaIntake(services.ledger, KafkaOptions(bootstrap), topic=topic, group_id=group,
                             max_poll_records=min(settings.batch_size, 1_000))
        started = [time.perf_counter()]

        def on_batch(result) -> None:
            metrics.observe_batch(result, time.perf_counter() - started[0])
            services.after_ingest()
            started[0] = time.perf_counter()

        try:
            stats = intake.run(idle_polls_max=idle_polls, seconds_max=seconds, on_batch=on_batch)
        finally:
            intake.close()
            services.close()
        typer.echo(f"batches {stats.batches} accepted {stats.accepted} duplicate {stats.duplicate} rejected {stats.rejected}")

    @app.command("relay")
    def relay(
        bootstrap: Annotated[str, typer.Option(help="Kafka bootstrap servers, host:port.")],
        topic: Annotated[str, typer.Option(help="Topic the feed is published to (one partition).")] = "skillfund.events",
    ) -> None:
        """Publish the ledger's feed (accepted records, postings) to Kafka, in order, from where it stopped."""
        from ops.runtime import open_ledger
        from projections.store import open_store
        from streams.kafka import KafkaOptions, Relay, ensure_topics

        settings = _settings()
        opts = KafkaOptions(bootstrap)
        ensure_topics(opts, {topic: 1})
        ledger = open_ledger(settings)
        views = open_store(settings)
        r = Relay(ledger.recorder, views, opts, topic=topic)
        try:
            sent = r.run()
        finally:
            r.close()
            views.close()
            ledger.close()
        typer.echo(f"published {sent} item(s); relay position {r.position()}")
