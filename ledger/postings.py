"""Double-entry transactions. Every money movement is one balanced Transaction.

Accounts (hledger-style names, pack region last):
- ``assets:fund:<fund_source>:<region>``       the special account's sub-ledgers
- ``equity:appropriation:<fund_source>:<region>`` where appropriated money came from
- ``expenses:subsidy:<subsidy_kind>:<region>``  what was paid out, by kind
- ``income:recovery:<subsidy_kind>:<region>``   money clawed back (追回)

Amounts are integer fen; debits positive, credits negative; a transaction
whose postings do not sum to zero is refused when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_POSTINGS = 16


class UnbalancedTransaction(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    fen: int


@dataclass(frozen=True, slots=True)
class Transaction:
    txn_id: str
    kind: str  # appropriation | payment | recovery
    date: str  # YYYY-MM-DD, the local date of the record's `at`
    at: str
    record_type: str
    record_id: str
    fund_source: str
    region: str
    postings: tuple[Posting, ...]
    subsidy_kind: str | None = None
    claim_id: str | None = None
    payee_id: str | None = None
    document: str | None = None

    def __post_init__(self) -> None:
        if not 2 <= len(self.postings) <= MAX_POSTINGS:
            raise UnbalancedTransaction(f"{self.txn_id}: {len(self.postings)} postings")
        total = 0
        for p in self.postings:
            if not isinstance(p.fen, int) or isinstance(p.fen, bool) or p.fen == 0:
                raise UnbalancedTransaction(f"{self.txn_id}: posting to {p.account} is {p.fen!r}")
            total += p.fen
        if total != 0:
            raise UnbalancedTransaction(f"{self.txn_id}: postings sum to {total} fen, not 0")

    @property
    def fund_account(self) -> str:
        return fund_account(self.fund_source, self.region)

    def fund_delta_fen(self) -> int:
        """What this transaction does to its fund account's balance."""
        acct = self.fund_account
        return sum(p.fen for p in self.postings if p.account == acct)

    def to_dict(self) -> dict[str, Any]:
        return {
            "txn_id": self.txn_id,
            "kind": self.kind,
            "date": self.date,
            "at": self.at,
            "record_type": self.record_type,
            "record_id": self.record_id,
            "fund_source": self.fund_source,
            "region": self.region,
            "subsidy_kind": self.subsidy_kind,
            "claim_id": self.claim_id,
            "payee_id": self.payee_id,
            "document": self.document,
            "postings": [{"account": p.account, "fen": p.fen} for p in self.postings],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transaction:
        return cls(
            txn_id=d["txn_id"],
            kind=d["kind"],
            date=d["date"],
            at=d["at"],
            record_type=d["record_type"],
            record_id=d["record_id"],
            fund_source=d["fund_source"],
            region=d["region"],
            subsidy_kind=d.get("subsidy_kind"),
            claim_id=d.get("claim_id"),
            payee_id=d.get("payee_id"),
            document=d.get("document"),
            postings=tuple(Posting(p["account"], p["fen"]) for p in d["postings"]),
        )


def fund_account(fund_source: str, region: str) -> str:
    return f"assets:fund:{fund_source}:{region}"


def appropriation_postings(fund_source: str, region: str, fen: int) -> tuple[Posting, ...]:
    return (
        Posting(fund_account(fund_source, region), fen),
        Posting(f"equity:appropriation:{fund_source}:{region}", -fen),
    )


def payment_postings(fund_source: str, region: str, subsidy_kind: str, fen: int) -> tuple[Posting, ...]:
    return (
        Posting(f"expenses:subsidy:{subsidy_kind}:{region}", fen),
        Posting(fund_account(fund_source, region), -fen),
    )


def recovery_postings(fund_source: str, region: str, subsidy_kind: str, fen: int) -> tuple[Posting, ...]:
    return (
        Posting(fund_account(fund_source, region), fen),
        Posting(f"income:recovery:{subsidy_kind}:{region}", -fen),
    )
