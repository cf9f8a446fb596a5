"""ledger.reconciliation: bank lines against payments, batch and incremental."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest

from ledger.money import MoneyError
from ledger.reconciliation import (
    BY_AMOUNT,
    BY_REF,
    BankLine,
    PaymentRef,
    Reconciler,
    ReconResult,
    reconcile,
)

ACC_A = "6222020000123456789"
ACC_B = "6222020000987654321"


def pay(pid: str, amount: str, ref: str, day: str = "2024-02-08", account: str = ACC_A,
        at_time: str = "10:00:00+08:00") -> dict[str, Any]:
    return {
        "type": "payment", "id": f"rec-{pid}", "at": f"{day}T{at_time}", "payment_id": pid,
        "claim_id": f"claim-{pid}", "fund_source": "ui_surplus", "region": "320505", "amount": amount,
        "payee_id": "91320505DC4MTWLHWT", "payee_account": account, "approved_by": "officer-15",
        "bank_ref": ref,
    }


def line(lid: str, amount: str, ref: str, value_date: str = "2024-02-09",
         counterparty: str = ACC_A) -> dict[str, Any]:
    return {
        "type": "bank_statement", "id": lid, "at": f"{value_date}T00:00:00+08:00",
        "account": "SKILLFUND-320500", "amount": amount, "counterparty_account": counterparty,
        "bank_ref": ref, "value_date": value_date,
    }


def ids(result: ReconResult) -> dict[str, Any]:
    return {
        "matched": sorted((m.line.line_id, m.payment.payment_id, m.by) for m in result.matched),
        "mismatched": sorted((m.line.line_id, m.payment.payment_id, m.difference) for m in result.amount_mismatches),
        "payments_without_line": [p.payment_id for p in result.payments_without_line],
        "lines_without_payment": [ln.line_id for ln in result.lines_without_payment],
        "inflows": [ln.line_id for ln in result.inflows],
    }


# ------------------------------------------------------------------ value types


def test_records_parse_to_fen_and_local_dates() -> None:
    p = PaymentRef.from_record(pay("p1", "1800.5", "BR-1", day="2024-02-08", at_time="23:30:00-05:00"))
    assert p.amount == 180050 and p.pay_date == date(2024, 2, 8)  # local date, not UTC's 02-09
    ln = BankLine.from_record(line("b1", "-1800.50", "BR-1"))
    assert ln.amount == -180050 and ln.outflow == 180050 and ln.value_date == date(2024, 2, 9)
    assert BankLine.from_record(line("b2", "25", "X")).outflow == 0
    with pytest.raises(MoneyError):
        BankLine.from_record(line("b3", "-1.005", "X"))  # never float, never three decimals


# ------------------------------------------------------------------ batch


def test_reconcile_missing_extra_and_mismatched_lines() -> None:
    payments = [
        pay("p1", "600.00", "BR-1"),
        pay("p2", "1200.00", "BR-2"),
        pay("p3", "300.00", "BR-3"),  # missing: the bank never shows it
    ]
    lines = [
        line("b1", "-600.00", "BR-1"),
        line("b2", "-1250.00", "BR-2"),  # mismatched: 50.00 more than the payment
        line("b9", "-777.00", "BR-9", counterparty=ACC_B),  # extra: no payment at all
        line("b-in", "5000.00", "APPR-1"),  # an inflow
    ]
    r = reconcile(payments, lines)
    assert ids(r) == {
        "matched": [("b1", "p1", BY_REF)],
        "mismatched": [("b2", "p2", 5000)],
        "payments_without_line": ["p3"],
        "lines_without_payment": ["b9"],
        "inflows": ["b-in"],
    }
    assert not r.balanced
    assert reconcile(payments[:1], lines[:1]).balanced


def test_reconcile_fallback_by_amount_account_and_window() -> None:
    payments = [
        pay("p1", "300.00", "T-1", day="2024-02-01"),
        pay("p2", "300.00", "T-2", day="2024-02-03"),
        pay("p3", "300.00", "T-3", day="2024-02-03", account=ACC_B),
        pay("p4", "400.00", "T-4", day="2024-02-01"),
    ]
    lines = [
        line("b2", "-300.00", "BANK-2", value_date="2024-02-04"),  # p1 (FIFO), p2 both fit
        line("b1", "-300.00", "BANK-1", value_date="2024-02-02"),  # only p1 fits: judged first
        line("b3", "-300.00", "BANK-3", value_date="2024-02-09", counterparty=ACC_B),  # p3 + 6 days: too late
        line("b4", "-400.00", "BANK-4", value_date="2024-01-31"),  # before p4: too early
    ]
    r = reconcile(payments, lines)
    assert ids(r) == {
        "matched": [("b1", "p1", BY_AMOUNT), ("b2", "p2", BY_AMOUNT)],
        "mismatched": [],
        "payments_without_line": ["p3", "p4"],
        "lines_without_payment": ["b3", "b4"],
        "inflows": [],
    }
    # a line whose reference names a payment is never matched by amount
    r = reconcile(payments[:1], [line("b5", "-300.00", "T-9", value_date="2024-02-02")] + [])
    assert ids(r)["matched"] == [("b5", "p1", BY_AMOUNT)]
    r = reconcile(
        payments[:1] + [pay("p9", "999.00", "T-9", day="2024-03-01")],
        [line("b5", "-300.00", "T-9", value_date="2024-02-02")],
    )
    assert ids(r)["mismatched"] == [("b5", "p9", -69900)] and ids(r)["payments_without_line"] == ["p1"]


def test_reference_beats_amount_matching() -> None:
    payments = [pay("p1", "300.00", "T-1", day="2024-02-01"), pay("p2", "300.00", "T-2", day="2024-02-02")]
    lines = [
        line("bx", "-300.00", "BANK-X", value_date="2024-02-03"),  # would take p1 by amount...
        line("b1", "-300.00", "T-1", value_date="2024-02-04"),  # ...but p1's own line claims it
    ]
    r = reconcile(payments, lines)
    assert ids(r)["matched"] == [("b1", "p1", BY_REF), ("bx", "p2", BY_AMOUNT)]
    assert r.balanced


def test_reconcile_counts_a_record_seen_twice_once() -> None:
    r = reconcile([pay("p1", "300.00", "BR-1")] * 2, [line("b1", "-300.00", "BR-1")] * 2)
    assert ids(r)["matched"] == [("b1", "p1", BY_REF)] and r.balanced


def test_two_lines_on_one_reference_one_is_extra() -> None:
    r = reconcile([pay("p1", "300.00", "BR-1")], [line("b1", "-300.00", "BR-1"), line("b2", "-300.00", "BR-1")])
    assert ids(r)["matched"] == [("b1", "p1", BY_REF)] and ids(r)["lines_without_payment"] == ["b2"]


# ------------------------------------------------------------------ incremental


def test_incremental_reference_pair_is_judged_at_once_either_order() -> None:
    r = Reconciler()
    assert r.add_payment(pay("p1", "600.00", "BR-1")) == []
    [v] = r.add_bank_line(line("b1", "-600.00", "BR-1"))
    assert (v.status, v.payment.payment_id, v.by) == ("matched", "p1", BY_REF)
    assert r.add_bank_line(line("b2", "-90.00", "BR-2")) == []  # waits for p2 or the window
    [v] = r.add_payment(pay("p2", "80.00", "BR-2"))
    assert (v.line.line_id, v.status) == ("b2", "amount_mismatch")
    assert r.waiting == 0


def test_incremental_waits_until_the_window_has_closed() -> None:
    r = Reconciler(window_days=5)
    r.add_payment(pay("p1", "300.00", "T-1", day="2024-02-01"))
    assert r.add_bank_line(line("b1", "-300.00", "BANK-1", value_date="2024-02-03")) == []
    assert r.add_bank_line(line("b2", "-500.00", "BANK-2", value_date="2024-02-03")) == []
    assert r.settle(date(2024, 2, 8)) == []  # value_date + 5: still open
    verdicts = r.settle(date(2024, 2, 9))
    assert [(v.line.line_id, v.status, v.by, v.reason) for v in verdicts] == [
        ("b1", "matched", BY_AMOUNT, ""),
        ("b2", "unmatched", None, "no_payment"),
    ]
    assert r.waiting == 0 and r.settle(None) == []


def test_incremental_undoes_an_amount_pair_when_the_reference_line_arrives() -> None:
    r = Reconciler()
    r.add_payment(pay("p1", "300.00", "T-1", day="2024-02-01"))
    r.add_bank_line(line("bx", "-300.00", "BANK-X", value_date="2024-02-02"))
    [v] = r.settle(date(2024, 2, 10))
    assert (v.status, v.payment.payment_id) == ("matched", "p1")
    verdicts = r.add_bank_line(line("b1", "-300.00", "T-1", value_date="2024-02-03"))
    assert [(v.line.line_id, v.status, v.by) for v in verdicts] == [
        ("b1", "matched", BY_REF),
        ("bx", "unmatched", None),
    ]


def test_incremental_settle_none_judges_everything_left() -> None:
    r = Reconciler()
    r.add_bank_line(line("b1", "-300.00", "BANK-1", value_date="2024-02-02"))
    [v] = r.settle(None)
    assert (v.line.line_id, v.status) == ("b1", "unmatched")


def test_results_from_the_reconciler_equal_the_batch_function() -> None:
    rnd = random.Random(7)
    payments, lines = [], []
    start = date(2024, 1, 1)
    for i in range(300):
        day = start + timedelta(days=rnd.randrange(60))
        amount = f"{rnd.choice([300, 600, 1200, 45000])}.00"
        acct = rnd.choice([ACC_A, ACC_B])
        payments.append(pay(f"p{i}", amount, f"T-{i}", day=day.isoformat(), account=acct))
        kind = rnd.random()
        vd = (day + timedelta(days=rnd.randrange(4))).isoformat()
        if kind < 0.6:
            lines.append(line(f"b{i}", f"-{amount}", f"T-{i}", value_date=vd, counterparty=acct))
        elif kind < 0.8:
            lines.append(line(f"b{i}", f"-{amount}", f"BANK-{i}", value_date=vd, counterparty=acct))
        elif kind < 0.9:
            lines.append(line(f"b{i}", "-1.00", f"T-{i}", value_date=vd, counterparty=acct))
    r = Reconciler()
    for p in payments:
        r.add_payment(p)
    for ln in lines:
        r.add_bank_line(ln)
    r.settle(None)
    assert ids(r.results()) == ids(reconcile(payments, lines))
    res = r.results()
    assert len(res.matched) + len(res.amount_mismatches) + len(res.lines_without_payment) == len(lines)
    assert len(res.matched) + len(res.amount_mismatches) + len(res.payments_without_line) == len(payments)
    assert len(res.amount_mismatches) >= 20 and len(res.payments_without_line) >= 20


def test_retain_days_bounds_memory() -> None:
    r = Reconciler(window_days=5, retain_days=30)
    start = date(2024, 1, 1)
    for i in range(400):
        day = start + timedelta(days=i)
        r.add_payment(pay(f"p{i}", "300.00", f"T-{i}", day=day.isoformat()))
        r.add_bank_line(line(f"b{i}", "-300.00", f"T-{i}", value_date=(day + timedelta(days=1)).isoformat()))
        r.settle(day + timedelta(days=1))
    kept = r.results()
    assert 30 <= len(kept.matched) <= 45 and kept.balanced
    with pytest.raises(ValueError):
        Reconciler(window_days=5, retain_days=3)


def test_account_region_reads_pack_codes_only() -> None:
    from ledger.reconciliation import account_region

    assert account_region("SKILLFUND-320500") == "320500"
    assert account_region("420100-专账") == "420100"
    assert account_region("6222020000123456789") is None  # digits of a longer number
    assert account_region("SKILLFUND-320505") is None  # a district, not a pack code
    assert account_region("") is None
