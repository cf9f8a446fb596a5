"""补贴资金发放台账: rows, officers, masking, CSV (BOM) and xlsx."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

from projhelp import PERSON, example_lines, individual_lines

from projections.disbursements import COLUMNS, csv_bytes, ledger_rows, write_xlsx

RESIDENT = re.compile(r"\b\d{17}[\dX]\b")


def test_contract_example_row_carries_claim_class_project_institution_and_officers(books_factory):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    pay, rec = ledger_rows(b.store)
    assert pay == {
        "date": "2024-02-08", "entry": "payment", "region": "320500", "fund_source": "ui_surplus",
        "reference_id": "pay-0001", "claim_id": "claim-0001", "subsidy_kind": "training",
        "claimed_amount": 60_000, "approved_amount": 60_000, "paid_amount": 60_000, "recovered_amount": None,
        "class_id": "class-0001", "occupation": "养老护理员", "level": "5", "institution": "苏州市高新区某职业培训学校",
        "trainees": 2, "payee": "91320505DC4MTWLHWT", "bank_ref": "BR20240208000117", "handled_by": "officer-04",
        "reviewer_id": "officer-09", "approved_by": "officer-15", "note": None,
    }
    assert rec["entry"] == "recovery" and rec["reference_id"] == "rc-0001" and rec["claim_id"] == "claim-0001"
    assert rec["recovered_amount"] == 30_000 and rec["paid_amount"] is None
    assert (rec["fund_source"], rec["region"], rec["date"]) == ("ui_surplus", "320500", "2024-03-20")
    assert rec["institution"] == "苏州市高新区某职业培训学校"


def test_person_payee_is_masked(books_factory):
    b = books_factory()
    b.submit(individual_lines())
    b.catch_up()
    rows = ledger_rows(b.store)
    ind = [r for r in rows if r["claim_id"] == "claim-ind-1"]
    assert [r["entry"] for r in ind] == ["payment", "recovery"]
    assert ind[0]["payee"] == "320505********0302"
    assert ind[0]["subsidy_kind"] == "skill_upgrade" and ind[0]["institution"] is None
    assert all(PERSON not in str(v) for r in rows for v in r.values())
    assert ind[1]["note"] == "certificate of 320505********0302 <revoked> & re-examined"


def test_filters_by_region_and_dates(books_factory):
    b = books_factory()
    b.submit(individual_lines())
    b.catch_up()
    assert len(ledger_rows(b.store)) == 4
    assert [r["reference_id"] for r in ledger_rows(b.store, date_from="2024-02-08", date_to="2024-03-20")] == [
        "pay-0001", "rc-0001"]
    assert [r["reference_id"] for r in ledger_rows(b.store, date_from="2024-08-01")] == ["p-ind-1", "rc-ind-1"]
    assert ledger_rows(b.store, region="420100") == []
    assert len(ledger_rows(b.store, region="320500")) == 4


def test_csv_has_bom_and_bilingual_headers(books_factory):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    data = csv_bytes(ledger_rows(b.store))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "日期 date" and "支付金额 paid_amount" in rows[0] and "经办人 handled_by" in rows[0]
    assert len(rows) == 3
    row = dict(zip(rows[0], rows[1]))
    assert row["支付金额 paid_amount"] == "600.00" and row["类型 entry"] == "拨付 payment"
    assert row["批准人 approved_by"] == "officer-15" and row["审核人 reviewer_id"] == "officer-09"
    rec = dict(zip(rows[0], rows[2]))
    assert rec["追回金额 recovered_amount"] == "300.00" and rec["支付金额 paid_amount"] == ""


def test_xlsx_round_trip(books_factory, tmp_path):
    from openpyxl import load_workbook

    b = books_factory()
    b.submit(individual_lines())
    b.catch_up()
    rows = ledger_rows(b.store)
    path = tmp_path / "台账.xlsx"
    assert write_xlsx(rows, path) == 4
    ws = load_workbook(path, read_only=True).active
    got = [list(r) for r in ws.iter_rows(values_only=True)]
    assert got[0] == [h for _, h in COLUMNS]
    paid = got[0].index("支付金额 paid_amount")
    assert Decimal(str(got[1][paid])) == Decimal("600.00")
    payee = got[0].index("收款人 payee")
    assert got[3][payee] == "320505********0302"
    cells = [str(c) for r in got for c in r if c is not None]
    assert not any(RESIDENT.search(c) for c in cells)
