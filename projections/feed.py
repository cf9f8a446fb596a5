"""The feed: the ledger's notification log as plain items, in global order.

Everything downstream (projections, detectors, the Kafka relay) reads this,
never the aggregates. Stored state is decoded straight from JSON (no domain
event objects), which is what lets a rebuild run at tens of thousands of
events a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Union

import orjson

FACT_TOPIC = "ledger.aggregates:Fact.Recorded"
POSTED_TOPIC = "ledger.aggregates:FundAccount.Posted"
REJECTED_TOPIC = "ledger.aggregates:Rejection.Rejected"
RETRIED_TOPIC = "ledger.aggregates:Rejection.Retried"
RESOLVED_TOPIC = "ledger.aggregates:Rejection.Resolved"
FEED_TOPICS = (FACT_TOPIC, POSTED_TOPIC)
REJECTION_TOPICS = (REJECTED_TOPIC, RETRIED_TOPIC, RESOLVED_TOPIC)
PAGE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted input record: ``record`` is its canonical contract form."""

    position: int
    type: str
    id: str
    record: dict[str, Any]
    pack: str | None
    line: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Posted:
    """A balanced money movement (see ledger.postings.Transaction.to_dict)."""

    position: int
    txn: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RejectionItem:
    position: int
    event: str  # rejected | retried | resolved
    rejection_id: str
    state: dict[str, Any]


Item = Union[Accepted, Posted, RejectionItem]


def decode(notification: Any) -> Item | None:
    """One notification to an item; None for topics the feed does not carry."""
    topic = notification.topic
    if topic == FACT_TOPIC:
        s = orjson.loads(notification.state)
        return Accepted(
            position=notification.id,
            type=s["record_type"],
            id=s["record_id"],
            record=s["record"],
            pack=s["pack"],
            line=s.get("line"),
            source=s.get("source"),
        )
    if topic == POSTED_TOPIC:
        return Posted(position=notification.id, txn=orjson.loads(notification.state)["txn"])
    if topic in REJECTION_TOPICS:
        return RejectionItem(
            position=notification.id,
            event=topic.rsplit(".", 1)[1].lower(),
            rejection_id=str(notification.originator_id),
            state=orjson.loads(notification.state),
        )
    return None


def read(
    recorder: Any,
    *,
    after: int = 0,
    upto: int | None = None,
    topics: tuple[str, ...] = FEED_TOPICS,
    page: int = 1_000,
) -> Iterator[Item]:
    """Items with position in (after, upto], in order, fetched a page at a time."""
    if not 1 <= page <= PAGE_MAX:
        raise ValueError(f"page must be within 1..{PAGE_MAX}")
    position = after + 1
    while True:
        rows = recorder.select_notifications(start=position, limit=page, stop=upto, topics=list(topics))
        if not rows:
            return
        for n in rows:
            item = decode(n)
            if item is not None:
                yield item
        position = rows[-1].id + 1
        if upto is not None and position > upto:
            return


def head(recorder: Any) -> int:
    """The last position in the log (0 when empty)."""
    return recorder.max_notification_id() or 0
