"""Bank reconciliation report (银行对账): the fund account's statement vs payments.

The matching itself is ``ledger.reconciliation`` (shared with the
``unreconciled_outflow`` detector, so the report and the alerts never
disagree): bank reference first, then amount + counterparty account + date
window. This module only keeps the bank lines as a view
(``view_bank_line``), reads payments from the 台账 view
(``view_ledger_payment``) and lays the result out:

* matched: a bank line and a payment of the same amount;
* payments without a bank line (paid in the books, not seen at the bank);
* bank lines without a payment (money out that no payment explains);
* amount mismatches: paired by reference, amounts differ.

A bank line belongs to a region when its pack region code appears in the
account name (e.g. ``SKILLFUND-320500``) or, failing that, when it is paired
with a payment of that region.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from ledger.money import fen_to_yuan, parse_fen
from ledger.policy import PACK_CODES
from ledger.reconciliation import WINDOW_DAYS_DEFAULT, BankLine, Match, PaymentRef, ReconResult, reconcile
from projections import feed
from projections.runner import Projection
from projections.store import Tx, ViewStore

_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


class BankStatementProjection(Projection):
    name = "bank_statement"
    version = "1"
    tables = ("view_bank_line",)
    accepted_types = frozenset({"bank_statement"})

    def __init__(self) -> None:
        self.reset()

    def ddl(self, store: ViewStore) -> list[str]:
        b = store.bigint
        return [
            "CREATE TABLE IF NOT EXISTS view_bank_line (record_id TEXT PRIMARY KEY, account TEXT, "
            f"amount {b} NOT NULL, counterparty_account TEXT, bank_ref TEXT, value_date TEXT NOT NULL, "
            f"memo TEXT, at TEXT NOT NULL, position {b} NOT NULL)"
        ]

    def reset(self) -> None:
        self._rows: list[tuple] = []

    def on_accepted(self, item: feed.Accepted) -> None:
        r = item.record
        self._rows.append(
            (item.id, r.get("account", ""), parse_fen(r["amount"], signed=True), r.get("counterparty_account", ""),
             r.get("bank_ref", ""), r["value_date"], r.get("memo"), r["at"], item.position)
        )

    def flush(self, tx: Tx) -> None:
        tx.executemany(
            "INSERT INTO view_bank_line (record_id, account, amount, counterparty_account, bank_ref, value_date, memo, "
            "at, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self._rows,
        )


def account_region(account: str) -> str | None:
    """The pack region named in a bank account label, if any."""
    for code in _CODE.findall(account or ""):
        if code in PACK_CODES:
            return code
    return None


def load(store: ViewStore) -> tuple[list[PaymentRef], list[BankLine]]:
    """Payments and bank lines from the views, in log (arrival) order."""
    with store.transaction() as tx:
        pays = tx.query(
            "SELECT payment_id, record_id, claim_id, amount, payee_id, payee_account, bank_ref, at, region, fund_source "
            "FROM view_ledger_payment ORDER BY position"
        )
        lines = tx.query(
            "SELECT record_id, account, amount, counterparty_account, bank_ref, value_date, at "
            "FROM view_bank_line ORDER BY position"
        )
    payments = [
        PaymentRef(
            payment_id=pid, record_id=rid, claim_id=cid, amount=int(amt), payee_id=payee or "",
            payee_account=acct or "", bank_ref=bref or "", pay_date=datetime.fromisoformat(at).date(), at=at,
            region=rg, fund_source=fs,
        )
        for pid, rid, cid, amt, payee, acct, bref, at, rg, fs in pays
    ]
    bank = [
        BankLine(
            line_id=rid, account=acct or "", amount=int(amt), counterparty_account=cp or "", bank_ref=bref or "",
            value_date=date.fromisoformat(vd), at=at,
        )
        for rid, acct, amt, cp, bref, vd, at in lines
    ]
    return payments, bank


def reconciliation(
    store: ViewStore, *, region: str | None = None, window_days: int = WINDOW_DAYS_DEFAULT
) -> dict[str, Any]:
    """The report as plain data (money in int fen). ``region``: a pack region code."""
    payments, lines = load(store)
    res: ReconResult = reconcile(payments, lines, window_days=window_days)

    def line_in(ln: BankLine, paired: PaymentRef | None = None) -> bool:
        if region is None:
            return True
        named = account_region(ln.account)
        if named is not None:
            return named == region
        return paired is not None and paired.region == region

    def pay_in(p: PaymentRef) -> bool:
        return region is None or p.region == region

    matched = [m for m in res.matched if pay_in(m.payment) or line_in(m.line, m.payment)]
    mismatched = [m for m in res.amount_mismatches if pay_in(m.payment) or line_in(m.line, m.payment)]
    no_line = [p for p in res.payments_without_line if pay_in(p)]
    no_pay = [ln for ln in res.lines_without_payment if line_in(ln)]
    return {
        "region": region,
        "window_days": window_days,
        "matched": [_match(m) for m in matched],
        "payments_without_bank_line": [_payment(p) for p in no_line],
        "bank_lines_without_payment": [_line(ln) for ln in no_pay],
        "amount_mismatches": [_match(m) for m in mismatched],
        "summary": {
            "matched": len(matched),
            "matched_amount": sum(m.payment.amount for m in matched),
            "payments_without_bank_line": len(no_line),
            "payments_without_bank_line_amount": sum(p.amount for p in no_line),
            "bank_lines_without_payment": len(no_pay),
            "bank_lines_without_payment_amount": sum(ln.outflow for ln in no_pay),
            "amount_mismatches": len(mismatched),
            "amount_mismatch_difference": sum(m.difference for m in mismatched),
            "balanced": not (no_line or no_pay or mismatched),
        },
    }


def _payment(p: PaymentRef) -> dict[str, Any]:
    return {
        "payment_id": p.payment_id, "claim_id": p.claim_id, "date": p.pay_date.isoformat(), "amount": p.amount,
        "bank_ref": p.bank_ref, "region": p.region, "fund_source": p.fund_source,
    }


def _line(ln: BankLine) -> dict[str, Any]:
    return {
        "line_id": ln.line_id, "account": ln.account, "value_date": ln.value_date.isoformat(), "amount": ln.amount,
        "bank_ref": ln.bank_ref, "counterparty_account": ln.counterparty_account,
    }


def _match(m: Match) -> dict[str, Any]:
    return {"by": m.by, "difference": m.difference, "payment": _payment(m.payment), "bank_line": _line(m.line)}


_MONEY = {"amount", "difference", "matched_amount", "payments_without_bank_line_amount",
          "bank_lines_without_payment_amount", "amount_mismatch_difference"}


def to_json(obj: Any) -> Any:
    """Money (int fen under the money keys) as yuan strings, recursively."""
    if isinstance(obj, dict):
        return {k: (fen_to_yuan(v) if k in _MONEY and isinstance(v, int) and not isinstance(v, bool) else to_json(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    return obj


def to_table(rep: dict[str, Any]) -> str:
    s = rep["summary"]
    y = fen_to_yuan
    out = [
        f"银行对账 bank reconciliation{' — region ' + rep['region'] if rep['region'] else ''} "
        f"(amount/account/date window {rep['window_days']} days)",
        "",
        f"  已对平 matched                         {s['matched']:>6}  {y(s['matched_amount']):>16}",
        f"  未达(银行无) payments without bank line {s['payments_without_bank_line']:>6}  {y(s['payments_without_bank_line_amount']):>16}",
        f"  未达(账无) bank lines without payment   {s['bank_lines_without_payment']:>6}  {y(s['bank_lines_without_payment_amount']):>16}",
        f"  金额不符 amount mismatches              {s['amount_mismatches']:>6}  {y(s['amount_mismatch_difference']):>16}",
        f"  结论 result: {'balanced 已平' if s['balanced'] else 'NOT balanced 未平: see below'}",
    ]
    if rep["payments_without_bank_line"]:
        out += ["", "付款无银行流水 payments without a bank line:",
                f"  {'date':<10} {'payment_id':<20} {'claim_id':<20} {'bank_ref':<22} {'amount':>14}"]
        for p in rep["payments_without_bank_line"]:
            out.append(f"  {p['date']:<10} {p['payment_id']:<20} {p['claim_id']:<20} {p['bank_ref']:<22} {y(p['amount']):>14}")
    if rep["bank_lines_without_payment"]:
        out += ["", "银行流水无付款 bank lines without a payment:",
                f"  {'value_date':<10} {'line':<20} {'account':<20} {'bank_ref':<22} {'amount':>14}"]
        for ln in rep["bank_lines_without_payment"]:
            out.append(f"  {ln['value_date']:<10} {ln['line_id']:<20} {ln['account']:<20} {ln['bank_ref']:<22} {y(ln['amount']):>14}")
    if rep["amount_mismatches"]:
        out += ["", "金额不符 amount mismatches (bank outflow vs payment):",
                f"  {'bank_ref':<22} {'payment_id':<20} {'payment':>14} {'bank':>14} {'difference':>14}"]
        for m in rep["amount_mismatches"]:
            out.append(
                f"  {m['bank_line']['bank_ref']:<22} {m['payment']['payment_id']:<20} {y(m['payment']['amount']):>14} "
                f"{y(-m['bank_line']['amount']):>14} {y(m['difference']):>14}"
            )
    return "\n".join(out) + "\n"
