"""Kafka intake and relay against a real Kafka-protocol broker (tansu)."""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka import Consumer

from ops.runtime import open_ledger
from ops.settings import Settings
from projections import feed
from projections.store import open_store
from streams.kafka import (
    EVENTS_TOPIC, RECORDS_TOPIC, KafkaIntake, KafkaOptions, Relay, consume_events, decode_item, ensure_topics,
    idempotent_producer,
)

EXAMPLES = next(
    (p / "shared" / "spec" / "examples.jsonl" for p in Path(__file__).resolve().parents if (p / "shared" / "spec" / "examples.jsonl").exists()),
    Path("/work/shared/spec/examples.jsonl"),
)
FAST = dict(session_timeout_ms=2_000, heartbeat_interval_ms=500)


def example_lines() -> list[str]:
    return [x for x in EXAMPLES.read_text(encoding="utf-8").splitlines() if x.strip()]


def produce(opts: KafkaOptions, lines: list[str]) -> None:
    p = idempotent_producer(opts)
    for line in lines:
        p.send(RECORDS_TOPIC, value=line.encode("utf-8"), partition=0)
    p.flush(timeout=10)
    p.close(timeout=5)


def test_intake_commits_after_durable_and_redelivery_counts_nothing_twice(kafka_broker, tmp_path):
    opts = KafkaOptions(kafka_broker, **FAST)
    ensure_topics(opts, {RECORDS_TOPIC: 1})
    lines = example_lines()
    produce(opts, lines + ["{not json", lines[0]])
    settings = Settings(data_dir=tmp_path / "d")
    ledger = open_ledger(settings)

    intake = KafkaIntake(ledger, opts, max_poll_records=5)
    # take only the first poll, then "crash" without committing: close without commit
    polled = intake.consumer.poll(timeout_ms=5_000, max_records=5)
    while not polled:
        polled = intake.consumer.poll(timeout_ms=1_000, max_records=5)
    from streams.kafka import _submission
    first = [m for tp in polled for m in polled[tp]]
    ledger.submit([_submission(m) for m in first])  # durable, but the offsets never get committed
    intake.close()

    intake = KafkaIntake(ledger, opts, max_poll_records=5)
    stats = intake.run(idle_polls_max=3, seconds_max=60)
    intake.close()
    assert stats.duplicate == len(first) + 1  # the redelivered batch, plus the re-sent first line
    assert stats.accepted == len(lines) - len(first)
    assert stats.outcomes.get("rejected:malformed") == 1
    accounts = {(a.fund_source, a.region): a.balance_fen for a in ledger.fund_accounts()}
    assert accounts == {("ui_surplus", "320500"): 499970000}
    assert [r.source for r in ledger.open_rejections()] == [f"kafka:{RECORDS_TOPIC}/0"]


def test_relay_publishes_the_feed_in_order_once_per_position(kafka_broker, tmp_path):
    opts = KafkaOptions(kafka_broker, **FAST)
    ensure_topics(opts, {EVENTS_TOPIC: 1})
    settings = Settings(data_dir=tmp_path / "d")
    ledger = open_ledger(settings)
    from ledger.application import Submission

    lines = example_lines()
    ledger.submit([Submission.from_text(x, line=i) for i, x in enumerate(lines[:10], 1)])
    views = open_store(settings)
    relay = Relay(ledger.recorder, views, opts)
    assert relay.run() > 0
    ledger.submit([Submission.from_text(x, line=i) for i, x in enumerate(lines[10:], 11)])
    relay.close()
    # a restarted relay resumes from its stored position; simulate an at-least-once re-send
    relay = Relay(ledger.recorder, views, opts)
    relay.run()
    relay.close()

    want = [(i.position, type(i).__name__) for i in feed.read(ledger.recorder)]
    got = [(i.position, type(i).__name__) for i in consume_events(opts, group_id="t-detect", idle_polls_max=3)]
    assert got == want

    # a second client (librdkafka) reads the same bytes
    c = Consumer({"bootstrap.servers": kafka_broker, "group.id": "t-other", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000})
    c.subscribe([EVENTS_TOPIC])
    seen = []
    for _ in range(40):
        m = c.poll(1.0)
        if m is None:
            if seen:
                break
            continue
        assert m.error() is None, m.error()
        seen.append(decode_item(m.value()).position)
    c.close()
    assert seen == [p for p, _ in want]
    payment = next(i for i in feed.read(ledger.recorder) if isinstance(i, feed.Accepted) and i.type == "payment")
    assert json.loads(json.dumps(payment.record))["amount"] == "600.00"


def test_the_same_detectors_behind_kafka_raise_the_same_alerts(kafka_broker, tmp_path):
    """The relay's topic carries the feed faithfully: detection behind Kafka == in process."""
    from detectors.engine import DetectionEngine
    from detectors.registry import all_detectors
    from ledger.application import Submission
    from ops.simulate import simulate

    opts = KafkaOptions(kafka_broker, **FAST)
    ensure_topics(opts, {EVENTS_TOPIC: 1})
    settings = Settings(data_dir=tmp_path / "d")
    ledger = open_ledger(settings)
    lines = [json.dumps(r, ensure_ascii=False) for r in simulate(seed=4, classes=24, fraud_rate=0.3).records]
    for i in range(0, len(lines), 1000):
        ledger.submit([Submission.from_text(x, line=i + j + 1) for j, x in enumerate(lines[i : i + 1000])])
    views = open_store(settings)
    relay = Relay(ledger.recorder, views, opts)
    relay.run()
    relay.close()

    def keys(items) -> list[tuple[str, str, str]]:
        engine = DetectionEngine(all_detectors())
        drafts = {}
        for item in items:
            for d in engine.observe(item):
                drafts[d.key] = d
        return sorted((d.key, d.severity, json.dumps(d.evidence, sort_keys=True)) for d in drafts.values())

    in_process = keys(feed.read(ledger.recorder))
    behind_kafka = keys(consume_events(opts, group_id="t-detectors", idle_polls_max=3))
    assert len(in_process) >= 5
    assert behind_kafka == in_process
