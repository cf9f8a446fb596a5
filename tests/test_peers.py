"""The real peers the suite relies on answer: PostgreSQL, tansu, hledger, promtool.

In strict mode (SKILLFUND_TEST_STRICT=1, as in CI) a missing peer fails here
first, with a reason, rather than deep inside some other test.
"""

from __future__ import annotations

import subprocess

import pytest


def test_postgres_select_1(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, connect_timeout=3) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_pg_schema_is_fresh_and_dropped(pg_url: str, pg_schema: tuple[str, str]) -> None:
    import psycopg

    url, schema = pg_schema
    assert url == pg_url and schema.startswith("sf_test_")
    with psycopg.connect(url, connect_timeout=3) as conn:
        count = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
        assert count == (0,)


def test_hledger_runs(hledger_bin: str) -> None:
    out = subprocess.run([hledger_bin, "--version"], capture_output=True, text=True, timeout=30, check=True)
    assert "hledger" in out.stdout


def test_promtool_runs(promtool_bin: str) -> None:
    out = subprocess.run([promtool_bin, "--version"], capture_output=True, text=True, timeout=30, check=True)
    assert "promtool" in (out.stdout + out.stderr)


def test_tansu_broker_answers_kafka_admin(kafka_broker: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_broker, request_timeout_ms=5000)
    try:
        assert admin.list_topics() == []  # a fresh broker per test
        admin.create_topics([NewTopic("skillfund.peers", num_partitions=1, replication_factor=1)])
        assert "skillfund.peers" in admin.list_topics()
    finally:
        admin.close()


@pytest.mark.slow
def test_tansu_round_trip_with_both_clients(tansu_broker) -> None:
    """kafka-python produces idempotently, confluent-kafka reads it back."""
    from confluent_kafka import Consumer
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = "skillfund.roundtrip"
    admin = KafkaAdminClient(bootstrap_servers=tansu_broker.bootstrap, request_timeout_ms=5000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()

    producer = KafkaProducer(
        bootstrap_servers=tansu_broker.bootstrap,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=5000,
    )
    try:
        for i in range(3):
            producer.send(topic, f"record-{i}".encode()).get(timeout=10)
    finally:
        producer.close(timeout=5)

    consumer = Consumer(
        {
            "bootstrap.servers": tansu_broker.bootstrap,
            "group.id": "peers-test",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    got: list[bytes] = []
    try:
        consumer.subscribe([topic])
        import time

        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    assert got == [b"record-0", b"record-1", b"record-2"]
