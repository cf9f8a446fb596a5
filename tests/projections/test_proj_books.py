"""The exported journal, checked by the real hledger (and bean-check when installed)."""

from __future__ import annotations

import csv
import io
import re
import os
import shutil
import sys
import subprocess
from pathlib import Path

import pytest
from projhelp import example_lines, individual_lines

from projections.balances import account_balances, balances
from projections.books import beancount_account, beancount_component, description, export

HLEDGER_TIMEOUT_S = 120
RESIDENT = re.compile(r"\b\d{17}[\dX]\b")


def _fen(text: str) -> int:
    amount = text.replace("CNY", "").replace(",", "").strip()
    neg = amount.startswith("-")
    whole, _, frac = amount.lstrip("-").partition(".")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    return -fen if neg else fen


def hledger(bin_: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_, *args], capture_output=True, text=True, timeout=HLEDGER_TIMEOUT_S)


def hledger_balances(bin_: str, journal: Path, query: str = "assets:fund") -> dict[str, int]:
    out = hledger(bin_, "-f", str(journal), "balance", query, "--flat", "-O", "csv")
    assert out.returncode == 0, out.stderr
    got = {}
    for row in csv.reader(io.StringIO(out.stdout)):
        if len(row) == 2 and row[0] not in ("account", "total"):
            got[row[0]] = _fen(row[1])
    return got


def _write(store, path: Path, fmt: str = "hledger", **kw) -> dict[str, int]:
    with open(path, "w", encoding="utf-8") as fh:
        return export(store, fh, fmt=fmt, **kw)


def test_hledger_checks_the_journal_and_agrees_to_the_fen(books_factory, store_env, sim_lines, hledger_bin, tmp_path):
    b = books_factory(store_env)
    b.submit(sim_lines(seed=4, classes=8, region="420100"))
    b.catch_up()
    journal = tmp_path / "books.journal"
    asserted = _write(b.store, journal)
    for args in (["check"], ["check", "-s"], ["check", "accounts", "commodities"]):
        out = hledger(hledger_bin, "-f", str(journal), *args)
        assert out.returncode == 0, (args, out.stderr)
    # balance assertions are on by default: `balance` runs them
    out = hledger(hledger_bin, "-f", str(journal), "balance")
    assert out.returncode == 0, out.stderr
    ours = {f"assets:fund:{r['fund_source']}:{r['region']}": r["balance"] for r in balances(b.store)}
    assert ours and asserted == ours
    assert hledger_balances(hledger_bin, journal) == ours
    # every account of the journal, not just the funds
    theirs_all = hledger_balances(hledger_bin, journal, query="")
    ours_all = {a: f for a, f in account_balances(b.store).items() if f != 0}
    assert {a: f for a, f in theirs_all.items() if f != 0} == ours_all


def test_hledger_refuses_a_wrong_assertion(books_factory, hledger_bin, tmp_path):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    journal = tmp_path / "books.journal"
    _write(b.store, journal)
    text = journal.read_text(encoding="utf-8")
    assert "0.00 CNY = 4999700.00 CNY" in text
    journal.write_text(text.replace("= 4999700.00 CNY", "= 4999700.01 CNY"), encoding="utf-8")
    out = hledger(hledger_bin, "-f", str(journal), "check")
    assert out.returncode != 0 and "assertion" in (out.stderr + out.stdout).lower()


def test_journal_lines_and_masking(books_factory, hledger_bin, tmp_path):
    b = books_factory()
    b.submit(individual_lines())
    b.catch_up()
    journal = tmp_path / "books.journal"
    _write(b.store, journal)
    text = journal.read_text(encoding="utf-8")
    assert "2024-02-08 payment pay-rec-0001 | payee 91320505DC4MTWLHWT" in text
    assert re.search(r"^    assets:fund:ui_surplus:320500 +-600\.00 CNY$", text, re.M)
    assert "payee 320505********0302" in text
    assert not RESIDENT.search(text)
    assert hledger(hledger_bin, "-f", str(journal), "check", "-s").returncode == 0
    assert hledger_balances(hledger_bin, journal) == {"assets:fund:ui_surplus:320500": 499_970_000 - 150_000 + 50_000}


def test_export_as_of(books_factory, hledger_bin, tmp_path):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    journal = tmp_path / "cut.journal"
    asserted = _write(b.store, journal, as_of="2024-02-08")
    assert asserted == {"assets:fund:ui_surplus:320500": 499_940_000}
    assert hledger(hledger_bin, "-f", str(journal), "check").returncode == 0
    assert "recovery" not in journal.read_text(encoding="utf-8")


def test_beancount_account_mapping():
    assert beancount_account("assets:fund:ui_surplus:320500") == "Assets:Fund:UiSurplus:R320500"
    assert beancount_account("expenses:subsidy:living_allowance:420100") == "Expenses:Subsidy:LivingAllowance:R420100"
    assert beancount_account("income:recovery:work_for_training:230000") == "Income:Recovery:WorkForTraining:R230000"
    assert beancount_account("equity:appropriation:education_surcharge:450000") == \
        "Equity:Appropriation:EducationSurcharge:R450000"
    assert beancount_component("9x") == "X9x"
    with pytest.raises(ValueError):
        beancount_account("stuff:x")
    pattern = re.compile(r"^(Assets|Liabilities|Equity|Income|Expenses)(:[A-Z][A-Za-z0-9-]*)+$")
    assert pattern.match(beancount_account("assets:fund:industry_development:370306"))


def test_beancount_export(books_factory, tmp_path):
    b = books_factory()
    b.submit(individual_lines())
    b.catch_up()
    path = tmp_path / "books.beancount"
    asserted = _write(b.store, path, fmt="beancount")
    text = path.read_text(encoding="utf-8")
    assert "2024-01-02 open Assets:Fund:UiSurplus:R320500 CNY" in text
    assert "2024-08-21 balance Assets:Fund:UiSurplus:R320500" in text
    assert asserted == {"assets:fund:ui_surplus:320500": 499_870_000}
    assert "4998700.00 CNY" in text
    assert not RESIDENT.search(text)
    here = Path(sys.executable).with_name("bean-check")  # the venv's, from the dev extra
    bean_check = str(here) if here.exists() else shutil.which("bean-check")
    if bean_check is None:
        why = "bean-check missing: beancount (dev extra) provides it"
        if os.environ.get("SKILLFUND_TEST_STRICT") == "1":
            pytest.fail(why)
        pytest.skip(why)
    out = subprocess.run([bean_check, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_description_shapes():
    base = {"kind": "payment", "record_id": "r1", "fund_source": "ui_surplus", "region": "320500"}
    assert description({**base, "payee_id": "320505199706010302"}) == "payment r1 | payee 320505********0302"
    assert description({**base, "kind": "recovery", "claim_id": "c1"}) == "recovery r1 | claim c1"
    assert description({**base, "kind": "appropriation", "document": "文\n号"}) == "appropriation r1 | document 文 号"
