"""The finance officers' commands, end to end through Typer."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import typer
from projhelp import Books, individual_lines
from typer.testing import CliRunner

from ops import finance_cli

RESIDENT = re.compile(r"\b\d{17}[\dX]\b")


@pytest.fixture
def cli(tmp_path, monkeypatch):
    from ops.settings import Settings

    data = tmp_path / "data"
    monkeypatch.setenv("SKILLFUND_DATA_DIR", str(data))
    b = Books(Settings(data_dir=data))
    b.submit(individual_lines())  # no catch-up: every command catches up itself
    b.close()
    app = typer.Typer()
    finance_cli.register(app)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    run.app = app
    run.runner = runner
    return run


def test_balances_json_is_the_contract_shape(cli):
    rows = json.loads(cli("balances", "--format", "json"))
    assert rows == [{"fund_source": "ui_surplus", "region": "320500", "appropriated": "5000000.00",
                     "paid": "2100.00", "recovered": "800.00", "balance": "4998700.00"}]
    as_of = json.loads(cli("balances", "--format", "json", "--as-of", "2024-03-31"))
    assert as_of[0]["balance"] == "4999700.00"
    by_kind = json.loads(cli("balances", "--format", "json", "--by", "kind"))
    assert {r["subsidy_kind"] for r in by_kind} == {None, "training", "skill_upgrade"}
    table = cli("balances", "--by", "month")
    assert "2024-08" in table and "4998700.00" in table


def test_ledger_csv_and_xlsx(cli, tmp_path):
    out = tmp_path / "台账.csv"
    cli("ledger", "--format", "csv", "--region", "320500", "--from", "2024-01-01", "--to", "2024-12-31", "--out", str(out))
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "日期 date" and len(rows) == 5
    assert not RESIDENT.search(data.decode("utf-8-sig"))
    xlsx = tmp_path / "台账.xlsx"
    cli("ledger", "--format", "xlsx", "--out", str(xlsx), "--to", "2024-03-31")
    from openpyxl import load_workbook

    assert len(list(load_workbook(xlsx, read_only=True).active.iter_rows(values_only=True))) == 3


def test_reconcile_disclose_report_export(cli, tmp_path, hledger_bin):
    import subprocess

    rec = json.loads(cli("reconcile", "--format", "json"))
    assert rec["summary"]["matched"] == 1 and rec["summary"]["payments_without_bank_line"] == 1
    assert "payments without a bank line" in cli("reconcile", "--region", "320500")

    page = tmp_path / "公开.html"
    cli("disclose", "--region", "320500", "--period", "2024", "--format", "html", "--out", str(page))
    assert not RESIDENT.search(page.read_text(encoding="utf-8"))
    text = cli("disclose", "--region", "320500", "--period", "2024Q3", "--format", "csv")
    assert "1500.00" in text and not RESIDENT.search(text)

    rep = json.loads(cli("report", "--region", "320500", "--period", "2024Q1", "--format", "json"))
    assert rep["classes_opened"] == 1 and rep["completions_passed"] == 2 and rep["paid_total"] == "600.00"
    assert "结业" in cli("report", "--region", "320500", "--period", "2024")

    journal = tmp_path / "books.journal"
    cli("export", "--format", "hledger", "--out", str(journal))
    assert subprocess.run([hledger_bin, "-f", str(journal), "check"], capture_output=True, timeout=120).returncode == 0
    assert "Assets:Fund:UiSurplus:R320500" in cli("export", "--format", "beancount")


def test_views_rebuild_gives_the_same_answer(cli):
    before = cli("balances", "--format", "json")
    assert "rebuilt" in cli("views", "--rebuild")
    assert cli("balances", "--format", "json") == before


@pytest.mark.parametrize(
    "args",
    [
        ["balances", "--as-of", "2024-13-01"],
        ["balances", "--by", "week"],
        ["balances", "--format", "xml"],
        ["ledger", "--format", "xlsx"],
        ["ledger", "--region", "999999"],
        ["disclose", "--region", "320500", "--period", "2024Q5"],
        ["report", "--region", "320500", "--period", "last year"],
    ],
)
def test_bad_options_are_explained(cli, args):
    result = cli.runner.invoke(cli.app, args)
    assert result.exit_code == 2
    assert "skillfund:" in result.output


def test_help_reads_for_a_finance_officer(cli):
    for cmd, words in (("balances", "end of this day"), ("ledger", "台账"), ("reconcile", "bank line"),
                       ("disclose", "公开"), ("report", "季报"), ("export", "hledger")):
        result = cli.runner.invoke(cli.app, [cmd, "--help"], terminal_width=200)
        assert result.exit_code == 0
        flat = re.sub(r"[│╭╮╰╯─\s]+", " ", result.output)
        assert words in flat, (cmd, flat)
