"""Property tests: whatever the sequence of money records, fund balances never
go negative, every transaction balances, and the ledger agrees with a small
independent model of the contract's hard rules."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger, Submission
from ledger.ids import make_credit_code
from ledger.money import fen_to_yuan
from ledger.policy import pack_code_for, pack_for
from projections import feed

REGIONS = ("320500", "320506", "420106")
FUNDS = ("ui_surplus", "employment_subsidy", "ui_fund", "local_talent")
KINDS = ("award", "skill_upgrade")
ENTERPRISE = make_credit_code("91320505MA1ABCDE1")
TRAINEE = "320505199706010302"
AT = "2024-03-01T09:00:00+08:00"

amount = st.integers(min_value=1, max_value=50_000)
op = st.one_of(
    st.tuples(st.just("appropriation"), st.sampled_from(FUNDS), st.sampled_from(REGIONS), amount),
    st.tuples(st.just("claim"), st.sampled_from(KINDS), st.sampled_from(REGIONS), amount),
    st.tuples(st.just("review"), st.integers(0, 5), st.sampled_from(("approved", "rejected", "returned")), amount),
    st.tuples(st.just("payment"), st.integers(0, 5), st.sampled_from(FUNDS), st.sampled_from(REGIONS), amount),
    st.tuples(st.just("recovery"), st.integers(0, 5), amount),
)


class Model:
    """The hard rules of records.md, written independently of ledger/."""

    def __init__(self) -> None:
        self.funds: dict[tuple[str, str], int] = {}
        self.claims: dict[str, dict] = {}

    def apply(self, rec: dict) -> str | None:
        t = rec["type"]
        fen = lambda s: round(float(s) * 100)  # noqa: E731 — test oracle only; values are small
        if t == "appropriation":
            key = (rec["fund_source"], pack_code_for(rec["region"]))
            self.funds[key] = self.funds.get(key, 0) + fen(rec["amount"])
            return None
        if t == "claim":
            self.claims[rec["claim_id"]] = {"kind": rec["subsidy_kind"], "approved": None, "paid": 0, "recovered": 0, "fund": None}
            return None
        c = self.claims.get(rec["claim_id"])
        if c is None:
            return "unknown_reference"
        if t == "claim_reviewed":
            c["approved"] = fen(rec["approved_amount"]) if rec["decision"] == "approved" else None
            return None
        if t == "payment":
            key = (rec["fund_source"], pack_code_for(rec["region"]))
            amt = fen(rec["amount"])
            if c["approved"] is None:
                return "claim_not_approved"
            if not pack_for(rec["region"]).may_pay(rec["fund_source"], c["kind"]):
                return "fund_not_permitted"
            if c["paid"] + amt > c["approved"]:
                return "exceeds_approved"
            if self.funds.get(key, 0) < amt:
                return "overdraft"
            self.funds[key] -= amt
            c["paid"] += amt
            c["fund"] = key
            return None
        if t == "recovery":
            amt = fen(rec["amount"])
            if c["recovered"] + amt > c["paid"]:
                return "recovery_exceeds_paid"
            c["recovered"] += amt
            self.funds[c["fund"]] += amt
            return None
        raise AssertionError(t)


def to_records(ops: list[tuple]) -> list[dict]:
    recs, claims = [], []
    for i, o in enumerate(ops):
        base = {"id": f"r{i}", "at": AT}
        if o[0] == "appropriation":
            recs.append({**base, "type": "appropriation", "fund_source": o[1], "region": o[2], "amount": fen_to_yuan(o[3] * 100), "document": "苏府办〔2017〕372号"})
        elif o[0] == "claim":
            cid = f"c{len(claims)}"
            claims.append(cid)
            recs.append({**base, "type": "claim", "claim_id": cid, "region": o[2], "claimant_id": ENTERPRISE, "claimant_kind": "enterprise",
                         "subsidy_kind": o[1], "trainee_ids": [] if o[1] == "award" else [TRAINEE], "amount": fen_to_yuan(o[3] * 100), "handled_by": "officer-1"})
        elif not claims:
            continue
        elif o[0] == "review":
            approved = fen_to_yuan(o[3] * 100) if o[2] == "approved" else "0"
            recs.append({**base, "type": "claim_reviewed", "claim_id": claims[o[1] % len(claims)], "reviewer_id": "officer-2", "decision": o[2], "approved_amount": approved})
        elif o[0] == "payment":
            recs.append({**base, "type": "payment", "payment_id": f"p{i}", "claim_id": claims[o[1] % len(claims)], "fund_source": o[2], "region": o[3],
                         "amount": fen_to_yuan(o[4] * 100), "payee_id": ENTERPRISE, "payee_account": "6222020000123456789", "approved_by": "officer-3", "bank_ref": f"BR{i}"})
        elif o[0] == "recovery":
            recs.append({**base, "type": "recovery", "recovery_id": f"rc{i}", "claim_id": claims[o[1] % len(claims)], "amount": fen_to_yuan(o[2] * 100), "reason": "audit"})
    return recs


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=40), cut=st.integers(1, 7))
def test_ledger_agrees_with_the_model_and_books_balance(ops, cut):
    recs = to_records(ops)
    with tempfile.TemporaryDirectory() as d:
        env = {"LEDGER_PERSISTENCE_MODULE": "eventsourcing.sqlite", "LEDGER_SQLITE_DBNAME": str(Path(d) / "l.sqlite")}
        ledger = Ledger(env=env)
        model = Model()
        got, want = [], []
        for start in range(0, len(recs), cut):
            chunk = recs[start : start + cut]
            result = ledger.submit([Submission.from_text(json.dumps(r), line=i) for i, r in enumerate(chunk)])
            got += [o.reason for o in result.outcomes]
            want += [model.apply(r) for r in chunk]
        assert got == want
        balances = {(a.fund_source, a.region): a for a in ledger.fund_accounts()}
        for key, acct in balances.items():
            assert acct.balance_fen >= 0
            assert acct.balance_fen == acct.appropriated_fen - acct.paid_fen + acct.recovered_fen
            assert acct.balance_fen == model.funds.get(key, 0)
        txns = [item.txn for item in feed.read(ledger.recorder) if isinstance(item, feed.Posted)]
        for t in txns:
            assert sum(p["fen"] for p in t["postings"]) == 0
        # every fund account's postings add up to its balance
        for key, acct in balances.items():
            name = f"assets:fund:{key[0]}:{key[1]}"
            assert sum(p["fen"] for t in txns for p in t["postings"] if p["account"] == name) == acct.balance_fen
        ledger.close()
