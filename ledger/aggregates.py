"""Aggregates of the ledger. They hold the hard rules; storage is elsewhere.

- ``Fact``: one per accepted input record (id = uuid5 of ``type:id``), the
  canonical record as the event. Its version-1 uniqueness in the store is what
  makes re-sending a record a no-op rather than a double count.
- ``FundAccount``: a fund source in a pack region; money moves only through
  balanced transactions, and the balance never goes below zero.
- ``Claim``: review state, approved, paid and recovered amounts.
- ``Class``: sessions and roster, for references from attendance etc.
- ``Institution``, ``Project``: the catalogue (目录).
- ``EntityKey``: claims a business id (payment_id, recovery_id) once.
- ``Rejection``: a durable rejection of one input, replayable.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

from ledger.money import fen_to_yuan
from ledger.postings import Transaction, fund_account

NS = uuid5(NAMESPACE_URL, "https://skillfund.invalid/ledger")


class RuleViolation(Exception):
    """A hard rule of the contract refuses this record."""

    def __init__(self, reason: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.field = field


def fact_id(record_type: str, record_id: str) -> UUID:
    return uuid5(NS, f"fact:{record_type}:{record_id}")


class Fact(Aggregate):
    """An accepted input record. Created once, never changed."""

    class Recorded(Aggregate.Created):
        record_type: str
        record_id: str
        digest: str
        record: dict[str, Any]
        pack: str | None
        line: int | None
        source: str | None

    def __init__(
        self,
        record_type: str,
        record_id: str,
        digest: str,
        record: dict[str, Any],
        pack: str | None,
        line: int | None,
        source: str | None,
    ) -> None:
        self.record_type = record_type
        self.record_id = record_id
        self.digest = digest
        self.record = record
        self.pack = pack
        self.line = line
        self.source = source


FACT_TOPIC = f"{Fact.__module__}:{Fact.__qualname__}"
FACT_RECORDED_TOPIC = f"{Fact.__module__}:{Fact.__qualname__}.Recorded"


@lru_cache(maxsize=65_536)
def _cached_uuid5(name: str) -> UUID:
    return uuid5(NS, name)


def fact_stored_event(
    record_type: str,
    record_id: str,
    digest: str,
    record: dict[str, Any],
    pack: str | None,
    line: int | None,
    source: str | None,
    timestamp_iso: str,
) -> StoredEvent:
    """The stored form of ``Fact.Recorded``, built without the event object.

    Ingest makes one of these per input record, so it skips the generic
    mapper; ``Ledger.mapper.to_domain_event`` reads it back as a normal
    ``Fact.Recorded`` (tests/ledger check the round trip)."""
    state = orjson.dumps(
        {
            "timestamp": timestamp_iso,
            "originator_topic": FACT_TOPIC,
            "record_type": record_type,
            "record_id": record_id,
            "digest": digest,
            "record": record,
            "pack": pack,
            "line": line,
            "source": source,
        }
    )
    return StoredEvent(
        originator_id=fact_id(record_type, record_id),
        originator_version=1,
        topic=FACT_RECORDED_TOPIC,
        state=state,
    )


class FundAccount(Aggregate):
    """One fund source (资金来源) in one pack region: 分账核算."""

    @staticmethod
    def create_id(fund_source: str, region: str) -> UUID:
        return _cached_uuid5(f"fund:{fund_source}:{region}")

    @event("Opened")
    def __init__(self, fund_source: str, region: str) -> None:
        self.fund_source = fund_source
        self.region = region
        self.balance_fen = 0
        self.appropriated_fen = 0
        self.paid_fen = 0
        self.recovered_fen = 0

    def post(self, txn: Transaction) -> None:
        """Apply a balanced transaction touching this account; refuse overdraft."""
        if txn.fund_source != self.fund_source or txn.region != self.region:
            raise ValueError(f"{txn.txn_id} posts to {txn.fund_account}, not {fund_account(self.fund_source, self.region)}")
        delta = txn.fund_delta_fen()
        if delta == 0:
            raise ValueError(f"{txn.txn_id} does not move {fund_account(self.fund_source, self.region)}")
        if self.balance_fen + delta < 0:
            raise RuleViolation(
                "overdraft",
                f"payment of {fen_to_yuan(-delta)} exceeds the balance {fen_to_yuan(self.balance_fen)} of "
                f"{self.fund_source} in {self.region}",
                field="amount",
            )
        self._posted(txn.to_dict())

    @event("Posted")
    def _posted(self, txn: dict[str, Any]) -> None:
        t = Transaction.from_dict(txn)
        delta = t.fund_delta_fen()
        self.balance_fen += delta
        if t.kind == "appropriation":
            self.appropriated_fen += delta
        elif t.kind == "payment":
            self.paid_fen -= delta
        elif t.kind == "recovery":
            self.recovered_fen += delta
        if self.balance_fen < 0:
            raise RuntimeError(f"invariant broken: {self.fund_source}/{self.region} balance {self.balance_fen}")


class Claim(Aggregate):
    """补贴申领 and what became of it: review, payments, recoveries."""

    @staticmethod
    def create_id(claim_id: str) -> UUID:
        return _cached_uuid5(f"claim:{claim_id}")

    @event("Filed")
    def __init__(
        self,
        claim_id: str,
        region: str,
        pack: str,
        subsidy_kind: str,
        class_id: str | None,
        amount_fen: int,
        handled_by: str,
        claimant_id: str,
    ) -> None:
        self.claim_id = claim_id
        self.region = region
        self.pack = pack
        self.subsidy_kind = subsidy_kind
        self.class_id = class_id
        self.amount_fen = amount_fen
        self.handled_by = handled_by
        self.claimant_id = claimant_id
        self.decision: str | None = None
        self.approved_fen = 0
        self.paid_fen = 0
        self.recovered_fen = 0
        self.last_fund: tuple[str, str] | None = None

    @event("Reviewed")
    def review(self, decision: str, approved_fen: int, reviewer_id: str) -> None:
        self.decision = decision
        self.approved_fen = approved_fen if decision == "approved" else 0

    def check_payment(self, fen: int) -> None:
        if self.decision != "approved":
            raise RuleViolation(
                "claim_not_approved",
                f"claim {self.claim_id} is {self.decision or 'not reviewed'}, not approved",
                field="claim_id",
            )

    def check_within_approved(self, fen: int) -> None:
        if self.paid_fen + fen > self.approved_fen:
            raise RuleViolation(
                "exceeds_approved",
                f"payments on claim {self.claim_id} would total {fen_to_yuan(self.paid_fen + fen)}, "
                f"above the approved {fen_to_yuan(self.approved_fen)}",
                field="amount",
            )

    @event("Paid")
    def paid(self, payment_id: str, fen: int, fund_source: str, region: str) -> None:
        self.paid_fen += fen
        self.last_fund = (fund_source, region)

    def check_recovery(self, fen: int) -> None:
        if self.recovered_fen + fen > self.paid_fen:
            raise RuleViolation(
                "recovery_exceeds_paid",
                f"recoveries on claim {self.claim_id} would total {fen_to_yuan(self.recovered_fen + fen)}, "
                f"above the {fen_to_yuan(self.paid_fen)} paid",
                field="amount",
            )

    @event("Recovered")
    def recovered(self, recovery_id: str, fen: int) -> None:
        self.recovered_fen += fen


class Class(Aggregate):
    """开班: the schedule and the roster (花名册)."""

    @staticmethod
    def create_id(class_id: str) -> UUID:
        return _cached_uuid5(f"class:{class_id}")

    @event("Opened")
    def __init__(
        self,
        class_id: str,
        record_id: str,
        institution_id: str,
        project_id: str,
        venue_id: str,
        pack: str,
        session_ids: list[str],
    ) -> None:
        self.class_id = class_id
        self.record_id = record_id
        self.institution_id = institution_id
        self.project_id = project_id
        self.venue_id = venue_id
        self.pack = pack
        self.session_ids = set(session_ids)
        self.trainees: set[str] = set()
        self.decision: str | None = None

    @event("Reviewed")
    def review(self, decision: str, reviewer_id: str) -> None:
        self.decision = decision

    @event("Enrolled")
    def enroll(self, trainee_id: str) -> None:
        self.trainees.add(trainee_id)


class Institution(Aggregate):
    """培训机构目录 entry; later records update it."""

    @staticmethod
    def create_id(institution_id: str) -> UUID:
        return _cached_uuid5(f"institution:{institution_id}")

    @event("Listed")
    def __init__(self, institution_id: str, region: str, pack: str, status: str, venue_ids: list[str]) -> None:
        self.institution_id = institution_id
        self.region = region
        self.pack = pack
        self.status = status
        self.venue_ids = set(venue_ids)

    @event("Updated")
    def update(self, region: str, pack: str, status: str, venue_ids: list[str]) -> None:
        self.region = region
        self.pack = pack
        self.status = status
        self.venue_ids = set(venue_ids)


class Project(Aggregate):
    """培训项目目录 entry."""

    @staticmethod
    def create_id(project_id: str) -> UUID:
        return _cached_uuid5(f"project:{project_id}")

    @event("Listed")
    def __init__(self, project_id: str, region: str, pack: str) -> None:
        self.project_id = project_id
        self.region = region
        self.pack = pack

    @event("Updated")
    def update(self, region: str, pack: str) -> None:
        self.region = region
        self.pack = pack


class EntityKey(Aggregate):
    """Claims a business id (payment_id, recovery_id) for one record."""

    @staticmethod
    def create_id(kind: str, value: str) -> UUID:
        return uuid5(NS, f"key:{kind}:{value}")

    @event("Claimed")
    def __init__(self, kind: str, value: str, record_id: str) -> None:
        self.kind = kind
        self.value = value
        self.record_id = record_id


class Rejection(Aggregate):
    """One rejected input, kept with its raw text so it can be replayed."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return uuid5(NS, f"rejection:{key}")

    @event("Rejected")
    def __init__(
        self,
        key: str,
        reason: str,
        detail: str,
        field: str | None,
        record_type: str | None,
        record_id: str | None,
        line: int | None,
        source: str | None,
        raw: str | None,
    ) -> None:
        self.key = key
        self.reason = reason
        self.detail = detail
        self.field = field
        self.record_type = record_type
        self.record_id = record_id
        self.line = line
        self.source = source
        self.raw = raw
        self.resolved = False
        self.attempts = 0

    @event("Resolved")
    def resolve(self, outcome: str) -> None:
        self.resolved = True

    @event("Retried")
    def retried(self, reason: str, detail: str) -> None:
        self.attempts += 1
        self.reason = reason
        self.detail = detail
