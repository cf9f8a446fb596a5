"""Bank reconciliation report: a statement with a missing, an extra and a mismatched line."""

from __future__ import annotations

import json

from projhelp import example_lines, lines_of

from ledger.ids import make_credit_code
from projections.reconciliation import account_region, reconciliation, to_json, to_table

AT = "2024-04-{d:02d}T10:00:00+08:00"
ORG = make_credit_code("91320505MA1XYW00" + "7")


def _award(n: int, amount: str, *, bank_ref: str, account: str) -> list[dict]:
    cid = f"claim-aw-{n}"
    return [
        {"type": "claim", "id": f"clm-aw-{n}", "at": AT.format(d=n), "claim_id": cid, "region": "320505",
         "claimant_id": ORG, "claimant_kind": "enterprise", "subsidy_kind": "award", "trainee_ids": [],
         "amount": amount, "handled_by": "officer-01"},
        {"type": "claim_reviewed", "id": f"rev-aw-{n}", "at": AT.format(d=n + 1), "claim_id": cid,
         "reviewer_id": "officer-02", "decision": "approved", "approved_amount": amount},
        {"type": "payment", "id": f"pay-aw-{n}", "at": AT.format(d=n + 2), "payment_id": f"p-aw-{n}",
         "claim_id": cid, "fund_source": "employment_subsidy", "region": "320505", "amount": amount,
         "payee_id": ORG, "payee_account": account, "approved_by": "officer-03", "bank_ref": bank_ref},
    ]


def _bank(n: int, amount: str, *, bank_ref: str, account: str, day: int) -> dict:
    return {"type": "bank_statement", "id": f"bank-aw-{n}", "at": AT.format(d=day), "account": "SKILLFUND-320500",
            "amount": amount, "counterparty_account": account, "bank_ref": bank_ref, "value_date": f"2024-04-{day:02d}"}


def statement_lines() -> list[str]:
    records = [
        {"type": "appropriation", "id": "appr-es", "at": "2024-04-01T09:00:00+08:00", "fund_source": "employment_subsidy",
         "region": "320500", "amount": "100000.00", "document": "苏府办〔2017〕372号"},
    ]
    records += _award(1, "1000.00", bank_ref="BR-OK-1", account="6222000000000001")       # matched
    records += _award(4, "2000.00", bank_ref="BR-MISSING-4", account="6222000000000004")  # no bank line
    records += _award(7, "3000.00", bank_ref="BR-DIFF-7", account="6222000000000007")     # bank says 3100
    records += _award(10, "500.00", bank_ref="BR-CASH-10", account="6222000000000010")    # matched by amount
    records += [
        _bank(1, "-1000.00", bank_ref="BR-OK-1", account="6222000000000001", day=4),
        _bank(7, "-3100.00", bank_ref="BR-DIFF-7", account="6222000000000007", day=10),
        _bank(9, "-777.00", bank_ref="BR-NOBODY-9", account="6222999999999999", day=12),  # extra line
        _bank(10, "-500.00", bank_ref="UNKNOWN-REF", account="6222000000000010", day=13),
        _bank(11, "250.00", bank_ref="BR-IN-11", account="6222888888888888", day=14),  # an inflow
    ]
    return example_lines() + lines_of(records)


def test_missing_extra_and_mismatched_lines(books_factory, store_env):
    b = books_factory(store_env)
    counts = b.submit(statement_lines())
    assert counts == {"accepted": 21 + 1 + 12 + 5}
    b.catch_up()
    rep = reconciliation(b.store)
    s = rep["summary"]
    matched = {m["payment"]["payment_id"]: m["by"] for m in rep["matched"]}
    assert matched == {"pay-0001": "bank_ref", "p-aw-1": "bank_ref", "p-aw-10": "amount_account_date"}
    assert [p["payment_id"] for p in rep["payments_without_bank_line"]] == ["p-aw-4"]
    assert [ln["line_id"] for ln in rep["bank_lines_without_payment"]] == ["bank-aw-9"]
    [mm] = rep["amount_mismatches"]
    assert mm["payment"]["payment_id"] == "p-aw-7" and mm["difference"] == 10_000  # 100.00 more left the bank
    assert s["balanced"] is False
    assert (s["matched"], s["payments_without_bank_line"], s["bank_lines_without_payment"], s["amount_mismatches"]) == (3, 1, 1, 1)
    assert s["bank_lines_without_payment_amount"] == 77_700

    j = to_json(rep)
    json.dumps(j)  # serialisable
    assert j["summary"]["amount_mismatch_difference"] == "100.00"
    assert j["bank_lines_without_payment"][0]["amount"] == "-777.00"
    table = to_table(rep)
    for needle in ("p-aw-4", "bank-aw-9", "BR-DIFF-7", "NOT balanced"):
        assert needle in table


def test_region_filter(books_factory):
    b = books_factory()
    b.submit(statement_lines())
    b.catch_up()
    assert reconciliation(b.store, region="320500")["summary"] == reconciliation(b.store)["summary"]
    other = reconciliation(b.store, region="420100")["summary"]
    assert other["matched"] == 0 and other["bank_lines_without_payment"] == 0 and other["balanced"]


def test_the_contract_example_is_balanced(books_factory):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    rep = reconciliation(b.store)
    assert rep["summary"]["balanced"] and rep["summary"]["matched"] == 1


def test_account_region():
    assert account_region("SKILLFUND-320500") == "320500"
    assert account_region("6222020000123456789") is None
    assert account_region("") is None
