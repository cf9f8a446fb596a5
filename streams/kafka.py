"""Kafka: records in (a consumer group feeding the ledger), events out (the relay).

Intake: each message on ``skillfund.records`` is one contract record (one JSON
line). A poll of at most ``max_poll_records`` messages becomes one ledger
batch — one transaction — and the offsets are committed only after it is
durable. A crash between the two re-delivers the batch: every record is then
a duplicate (a no-op) and every bad line finds its rejection already stored
(rejections are keyed by topic/partition/offset), so nothing is counted twice.

Relay: the ledger's notification log is the source of truth; the relay
publishes it, in order, to ``skillfund.events`` (one partition, so order is
global) with an idempotent producer (acks=all), and remembers how far it got
in the view store after the broker acknowledged. It is at-least-once; every
message carries its ledger position, so consumers drop what they have seen.

Options are passed explicitly (TIGER_STYLE): kafka-python's defaults are not
what a ledger wants (acks=1 silently disables idempotence).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from ledger.application import BatchResult, Ledger, Submission
from ledger.records import RecordError
from projections import feed
from projections.store import TRACKING_TABLE, ViewStore

RECORDS_TOPIC = "skillfund.records"
EVENTS_TOPIC = "skillfund.events"
POLL_RECORDS_MAX = 1_000
MESSAGE_BYTES_MAX = 1024 * 1024
RELAY_CHUNK_MAX = 5_000
REQUEST_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class KafkaOptions:
    bootstrap: str
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    max_poll_interval_ms: int = 300_000
    request_timeout_ms: int = REQUEST_TIMEOUT_MS


def ensure_topics(opts: KafkaOptions, topics: dict[str, int], replication: int = 1) -> None:
    """Create topics explicitly (brokers may auto-create with other partition counts)."""
    admin = KafkaAdminClient(bootstrap_servers=opts.bootstrap, request_timeout_ms=opts.request_timeout_ms)
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(name, partitions, replication) for name, partitions in topics.items() if name not in existing]
        if new:
            try:
                admin.create_topics(new, timeout_ms=opts.request_timeout_ms)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def idempotent_producer(opts: KafkaOptions) -> KafkaProducer:
    """acks=all with idempotence: a retried send is written once, in order."""
    return KafkaProducer(
        bootstrap_servers=opts.bootstrap,
        acks="all",
        enable_idempotence=True,
        retries=5,
        linger_ms=5,
        max_in_flight_requests_per_connection=5,
        request_timeout_ms=opts.request_timeout_ms,
        max_request_size=MESSAGE_BYTES_MAX + 4096,
    )


def manual_commit_consumer(opts: KafkaOptions, topic: str, group_id: str, max_poll_records: int) -> KafkaConsumer:
    """Offsets are committed by us, after the effects are durable; topics are never auto-created;
    a new group starts from the earliest offset ("latest" would skip records)."""
    return KafkaConsumer(
        topic,
        bootstrap_servers=opts.bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        allow_auto_create_topics=False,
        max_poll_records=max_poll_records,
        max_poll_interval_ms=opts.max_poll_interval_ms,
        session_timeout_ms=opts.session_timeout_ms,
        heartbeat_interval_ms=opts.heartbeat_interval_ms,
        request_timeout_ms=max(opts.request_timeout_ms, opts.session_timeout_ms + 5_000),
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=MESSAGE_BYTES_MAX * 8,
    )


# ---------------------------------------------------------------- intake


def _submission(msg: Any) -> Submission:
    source = f"kafka:{msg.topic}/{msg.partition}"
    value = msg.value
    if value is None or len(value) > MESSAGE_BYTES_MAX:
        return Submission(line=msg.offset, source=source, raw=None,
                          error=RecordError("malformed", f"message at offset {msg.offset} is empty or over {MESSAGE_BYTES_MAX} bytes"))
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as e:
        return Submission(line=msg.offset, source=source, raw=value.decode("utf-8", "replace"),
                          error=RecordError("malformed", f"message at offset {msg.offset} is not UTF-8: {e.reason}"))
    return Submission.from_text(text.strip(), line=msg.offset, source=source)


@dataclass
class IntakeStats:
    batches: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        for k, v in result.counts().items():
            self.outcomes[k] = self.outcomes.get(k, 0) + v
            if k == "accepted":
                self.accepted += v
            elif k == "duplicate":
                self.duplicate += v
            else:
                self.rejected += v


class KafkaIntake:
    """A consumer-group member that feeds one ledger."""

    def __init__(self, ledger: Ledger, opts: KafkaOptions, *, topic: str = RECORDS_TOPIC,
                 group_id: str = "skillfund-ledger", max_poll_records: int = POLL_RECORDS_MAX) -> None:
        if not 1 <= max_poll_records <= POLL_RECORDS_MAX:
            raise ValueError(f"max_poll_records must be within 1..{POLL_RECORDS_MAX}")
        self.ledger = ledger
        self.max_poll_records = max_poll_records
        self.consumer = manual_commit_consumer(opts, topic, group_id, max_poll_records)

    def poll_once(self, timeout_ms: int = 1_000, on_batch: Callable[[BatchResult], None] | None = None) -> BatchResult | None:
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_poll_records)
        msgs = [m for tp in sorted(polled, key=lambda t: (t.topic, t.partition)) for m in polled[tp]]
        if not msgs:
            return None
        result = self.ledger.submit([_submission(m) for m in msgs])
        if on_batch is not None:
            on_batch(result)
        # Durable first, then acknowledged: commit the next offset per partition.
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for m in msgs:
            offsets[TopicPartition(m.topic, m.partition)] = OffsetAndMetadata(m.offset + 1, "", -1)
        self.consumer.commit(offsets)
        return result

    def run(self, *, idle_polls_max: int | None = None, seconds_max: float | None = None,
            on_batch: Callable[[BatchResult], None] | None = None) -> IntakeStats:
        """Consume until ``idle_polls_max`` empty polls in a row or ``seconds_max`` passed."""
        stats, idle = IntakeStats(), 0
        deadline = None if seconds_max is None else time.monotonic() + seconds_max
        while True:
            result = self.poll_once(on_batch=on_batch)
            if result is None:
                idle += 1
                if idle_polls_max is not None and idle >= idle_polls_max:
                    return stats
            else:
                idle = 0
                stats.add(result)
            if deadline is not None and time.monotonic() > deadline:
                return stats

    def close(self) -> None:
        self.consumer.close(autocommit=False)


# ---------------------------------------------------------------- relay


def encode_item(item: feed.Item) -> tuple[bytes, bytes]:
    if isinstance(item, feed.Accepted):
        key = f"{item.type}:{item.id}"
        body = {"position": item.position, "kind": "accepted", "type": item.type, "id": item.id, "record": item.record, "pack": item.pack}
    elif isinstance(item, feed.Posted):
        key = item.txn["txn_id"]
        body = {"position": item.position, "kind": "posted", "txn": item.txn}
    else:
        raise TypeError(f"the relay carries accepted records and postings, not {type(item).__name__}")
    return key.encode(), orjson.dumps(body)


def decode_item(value: bytes) -> feed.Item:
    d = orjson.loads(value)
    if d["kind"] == "accepted":
        return feed.Accepted(position=d["position"], type=d["type"], id=d["id"], record=d["record"], pack=d["pack"])
    if d["kind"] == "posted":
        return feed.Posted(position=d["position"], txn=d["txn"])
    raise ValueError(f"unknown event kind {d['kind']!r}")


class Relay:
    """Publishes the ledger's feed to Kafka, in order, at least once."""

    def __init__(self, ledger_recorder: Any, views: ViewStore, opts: KafkaOptions, *, topic: str = EVENTS_TOPIC) -> None:
        self.recorder = ledger_recorder
        self.views = views
        self.topic = topic
        self.name = f"relay:{topic}"
        views.ensure_tracking()
        with views.transaction() as tx:
            tx.execute(
                f"INSERT INTO {TRACKING_TABLE} (projection, position, version) VALUES (?, 0, ?) "
                "ON CONFLICT (projection) DO NOTHING",
                (self.name, "relay/1"),
            )
        self.producer = idempotent_producer(opts)

    def position(self) -> int:
        return self.views.position(self.name)

    def run_once(self, chunk: int = RELAY_CHUNK_MAX) -> int:
        """Publish up to ``chunk`` positions past the stored one; return items sent."""
        if not 1 <= chunk <= RELAY_CHUNK_MAX:
            raise ValueError(f"chunk must be within 1..{RELAY_CHUNK_MAX}")
        start = self.position()
        upto = min(feed.head(self.recorder), start + chunk)
        if upto <= start:
            return 0
        sent = 0
        for item in feed.read(self.recorder, after=start, upto=upto):
            key, value = encode_item(item)
            self.producer.send(self.topic, key=key, value=value, partition=0)
            sent += 1
        self.producer.flush(timeout=REQUEST_TIMEOUT_MS / 1000)
        with self.views.transaction() as tx:
            self.views.set_position(tx, self.name, start, upto)
        return sent

    def run(self) -> int:
        total = 0
        while True:
            n = self.run_once()
            if n == 0 and self.position() >= feed.head(self.recorder):
                return total
            total += n

    def close(self) -> None:
        self.producer.close(timeout=5)


def consume_events(opts: KafkaOptions, *, topic: str = EVENTS_TOPIC, group_id: str, after: int = 0,
                   idle_polls_max: int = 3, max_poll_records: int = POLL_RECORDS_MAX) -> Iterator[feed.Item]:
    """Feed items from Kafka, deduplicated by position (the relay is at-least-once)."""
    consumer = manual_commit_consumer(opts, topic, group_id, max_poll_records)
    last, idle = after, 0
    try:
        while idle < idle_polls_max:
            polled = consumer.poll(timeout_ms=1_000, max_records=max_poll_records)
            msgs = [m for tp in polled for m in polled[tp]]
            if not msgs:
                idle += 1
                continue
            idle = 0
            for m in sorted(msgs, key=lambda m: m.offset):
                item = decode_item(m.value)
                if item.position <= last:
                    continue  # a re-send after a relay restart
                last = item.position
                yield item
            consumer.commit()
    finally:
        consumer.close(autocommit=False)
