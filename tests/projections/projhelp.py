"""Helpers for the projection tests: a real Ledger fed through Submission.from_text,
and dumps of every view table for equality checks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec"
EXAMPLES = SPEC / "examples.jsonl"


def example_lines() -> list[str]:
    if not EXAMPLES.is_file():
        pytest.skip(f"contract examples not found at {EXAMPLES}")
    return [line for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


def lines_of(records: Iterable[dict[str, Any]]) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in records]


class Books:
    """A ledger and a view store on one configuration (SQLite or PostgreSQL)."""

    def __init__(self, settings: Any) -> None:
        from ledger.application import Ledger
        from projections.store import open_store

        self.settings = settings
        self.ledger = Ledger(env=settings.eventsourcing_env("LEDGER"))
        self.store = open_store(settings)

    def submit(self, lines: Iterable[str], batch: int = 1000) -> dict[str, int]:
        from ledger.application import Submission

        counts: dict[str, int] = {}
        pending: list[Any] = []

        def flush() -> None:
            for k, v in self.ledger.submit(pending).counts().items():
                counts[k] = counts.get(k, 0) + v
            pending.clear()

        for i, line in enumerate(lines, 1):
            pending.append(Submission.from_text(line, line=i))
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        return counts

    def catch_up(self, **kw: Any) -> Any:
        from projections.runner import all_projections, catch_up

        return catch_up(self.store, self.ledger.recorder, all_projections(), **kw)

    def rebuild(self, **kw: Any) -> Any:
        from projections.runner import all_projections, rebuild

        return rebuild(self.store, self.ledger.recorder, all_projections(), **kw)

    def close(self) -> None:
        self.store.close()
        self.ledger.close()


def dump_views(store: Any) -> dict[str, list[tuple]]:
    """Every view_* table's rows, sorted, for comparing two stores."""
    from projections.runner import all_projections

    out: dict[str, list[tuple]] = {}
    for p in all_projections():
        for table in p.tables:
            rows = store.query(f"SELECT * FROM {table}")
            out[table] = sorted((tuple(_norm(v) for v in r) for r in rows), key=repr)
    return out


def dump_views_without_positions(store: Any) -> dict[str, list[tuple]]:
    """Like dump_views, but log positions (which differ between two ledgers) left out."""
    from projections.runner import all_projections

    out: dict[str, list[tuple]] = {}
    for p in all_projections():
        for table in p.tables:
            with store.transaction() as tx:
                cols = tx.columns(table)
            keep = [c for c in cols if c != "position"]
            rows = store.query(f"SELECT {', '.join(keep)} FROM {table}")
            out[table] = sorted((tuple(_norm(v) for v in r) for r in rows), key=repr)
    return out


def _norm(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else v




PERSON = "320505199706010302"  # a trainee of the contract example (valid GB 11643)
PERSON2 = "320505200109138880"


def individual_lines() -> list[str]:
    """The contract example plus a skill-upgrade subsidy paid to a person, and a
    recovery whose free-text reason names that person's id."""
    at = "2024-08-{d:02d}T10:00:00+08:00"
    records = [
        {"type": "claim", "id": "clm-ind-1", "at": at.format(d=1), "claim_id": "claim-ind-1", "region": "320505",
         "claimant_id": PERSON, "claimant_kind": "individual", "subsidy_kind": "skill_upgrade",
         "trainee_ids": [PERSON], "amount": "1500.00", "handled_by": "officer-21"},
        {"type": "claim_reviewed", "id": "rev-ind-1", "at": at.format(d=2), "claim_id": "claim-ind-1",
         "reviewer_id": "officer-22", "decision": "approved", "approved_amount": "1500.00"},
        {"type": "payment", "id": "pay-ind-1", "at": at.format(d=12), "payment_id": "p-ind-1",
         "claim_id": "claim-ind-1", "fund_source": "ui_surplus", "region": "320505", "amount": "1500.00",
         "payee_id": PERSON, "payee_account": "6222020000999999999", "approved_by": "officer-23",
         "bank_ref": "BR-IND-1"},
        {"type": "recovery", "id": "rcv-ind-1", "at": at.format(d=20), "recovery_id": "rc-ind-1",
         "claim_id": "claim-ind-1", "amount": "500.00",
         "reason": f"certificate of {PERSON} <revoked> & re-examined"},
    ]
    return example_lines() + lines_of(records)
