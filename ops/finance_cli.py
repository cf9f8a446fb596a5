"""Finance officers' commands: balances, 台账, reconciliation, disclosure, reports, books.

``register(app)`` adds them to the ``skillfund`` Typer app. Every command
first catches the read models (projections) up with the ledger, from where
they stopped, then answers from them; ``skillfund views --rebuild`` replays
them from the start (the answer must not change).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from ledger.application import Ledger
from ledger.money import fen_to_yuan
from ops.settings import Settings
from projections import balances as bal
from projections import books, disbursements, disclosure, reconciliation, reports
from projections.runner import all_projections, catch_up, rebuild
from projections.store import ViewStore, open_store


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.echo(f"skillfund: {msg}", err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    from ops.runtime import load_settings

    return load_settings()


@contextmanager
def views(settings: Settings | None = None, *, refresh: bool = True) -> Iterator[ViewStore]:
    """The view store, caught up with the ledger (incrementally) when ``refresh``."""
    settings = settings or _settings()
    from ops.runtime import open_ledger

    ledger = open_ledger(settings)
    store = open_store(settings)
    try:
        if refresh:
            catch_up(store, ledger.recorder, all_projections())
        yield store
    finally:
        store.close()
        ledger.close()


def after_ingest(settings: Settings, ledger: Any, *, detect: bool = True, project: bool = True) -> None:
    """Hook for ``skillfund ingest``: catch the finance views up in process."""
    if not project:
        return
    store = open_store(settings)
    try:
        catch_up(store, ledger.recorder, all_projections())
    finally:
        store.close()


def _date(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise _fail(f"{option} must be a date YYYY-MM-DD, not {value!r}") from None


def _region(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return bal.pack_region(value)
    except ValueError as e:
        raise _fail(f"--region: {e} (packs: 420100, 450000, 370306, 320500, 230000)") from None


def _period(value: str) -> reports.Period:
    try:
        return reports.parse_period(value)
    except ValueError as e:
        raise _fail(f"--period: {e}") from None


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise _fail(f"{option} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _write_text(text: str, out: Path | None, *, bom: bool = False) -> None:
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8-sig" if bom else "utf-8", newline="")
    typer.echo(f"wrote {out}", err=True)


def _json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


# ---------------------------------------------------------------- commands

RegionOpt = Annotated[
    Optional[str],
    typer.Option("--region", help="Pack region code (420100 Wuhan, 450000 Guangxi, 370306 Zhoucun, 320500 Suzhou, "
                                  "230000 Heilongjiang); a district code means its pack."),
]


def balances_cmd(
    format: Annotated[str, typer.Option("--format", help="table (for reading) or json (the contract's shape).")] = "table",
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Balances at the end of this day (YYYY-MM-DD): "
                                                              "transactions dated on or before it.")] = None,
    by: Annotated[str, typer.Option("--by", help="fund: per fund source and region; kind: paid/recovered per "
                                               "subsidy kind; month: each month's flows and month-end balance.")] = "fund",
    region: RegionOpt = None,
) -> None:
    """Fund balances (分账核算): appropriated, paid, recovered and balance per fund source and region.

    balance = appropriated - paid + recovered. Money in yuan with two decimals.
    """
    _choice(format, ("table", "json"), "--format")
    _choice(by, bal.BY_CHOICES, "--by")
    as_of = _date(as_of, "--as-of")
    rg = _region(region)
    with views() as store:
        rows = bal.balances(store, as_of=as_of, by=by, region=rg)
    if format == "json":
        _json(bal.to_json(rows))
        return
    extra = {"kind": ("subsidy_kind", "补贴类别 kind"), "month": ("month", "月份 month")}.get(by)
    head = f"{'统筹区 region':<14} {'资金来源 fund source':<24}"
    if extra:
        head += f" {extra[1]:<20}"
    head += f" {'拨入 appropriated':>18} {'支付 paid':>16} {'追回 recovered':>16} {'余额 balance':>18}"
    typer.echo(f"fund balances{' as of end of ' + as_of if as_of else ''}{' by ' + by if by != 'fund' else ''}")
    typer.echo(head)
    for r in rows:
        line = f"{r['region']:<14} {r['fund_source']:<24}"
        if extra:
            line += f" {str(r.get(extra[0]) or '(appropriation)'):<20}"
        line += (f" {fen_to_yuan(r['appropriated']):>18} {fen_to_yuan(r['paid']):>16} "
                 f"{fen_to_yuan(r['recovered']):>16} {fen_to_yuan(r['balance']):>18}")
        typer.echo(line)
    if not rows:
        typer.echo("(no money has moved yet)")


def ledger_cmd(
    format: Annotated[str, typer.Option("--format", help="csv (UTF-8 with BOM, opens in Excel) or xlsx.")] = "csv",
    region: RegionOpt = None,
    date_from: Annotated[Optional[str], typer.Option("--from", help="First date included (YYYY-MM-DD).")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Last date included (YYYY-MM-DD).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output file (required for xlsx; csv defaults to stdout).")] = None,
) -> None:
    """补贴资金发放台账: every payment and recovery with its claim, class, project, institution and officers.

    One row per payment (拨付) and per recovery (追回), by date. Payees who are
    persons are masked. Headers are in Chinese and English.
    """
    _choice(format, ("csv", "xlsx"), "--format")
    rg = _region(region)
    d0, d1 = _date(date_from, "--from"), _date(date_to, "--to")
    if d0 and d1 and d0 > d1:
        raise _fail("--from is after --to")
    if format == "xlsx" and out is None:
        raise _fail("--format xlsx needs --out FILE")
    with views() as store:
        rows = disbursements.ledger_rows(store, region=rg, date_from=d0, date_to=d1)
    if format == "xlsx":
        out.parent.mkdir(parents=True, exist_ok=True)
        n = disbursements.write_xlsx(rows, out)
        typer.echo(f"wrote {n} rows to {out}", err=True)
        return
    if out is None:
        sys.stdout.buffer.write(disbursements.csv_bytes(rows))
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(disbursements.csv_bytes(rows))
    typer.echo(f"wrote {len(rows)} rows to {out}", err=True)


def reconcile_cmd(
    region: RegionOpt = None,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    window_days: Annotated[int, typer.Option("--window-days", help="Days a bank line's value date may follow a "
                                                                    "payment when matched by amount and account.")] = 5,
) -> None:
    """Bank reconciliation (银行对账): the fund account's bank statement against the payments.

    Lists matched items, payments without a bank line, bank lines without a
    payment, and lines whose amount differs. Matched by bank reference first, then by amount + counterparty account +
    date window (the same rules as the unreconciled_outflow alert).
    """
    _choice(format, ("table", "json"), "--format")
    if window_days < 0:
        raise _fail("--window-days must be >= 0")
    rg = _region(region)
    with views() as store:
        rep = reconciliation.reconciliation(store, region=rg, window_days=window_days)
    if format == "json":
        _json(reconciliation.to_json(rep))
    else:
        typer.echo(reconciliation.to_table(rep), nl=False)


def disclose_cmd(
    region: Annotated[str, typer.Option("--region", help="Pack region code, e.g. 420100.")],
    period: Annotated[str, typer.Option("--period", help="2024Q3 (quarter), 2024 (year) or 2024-03 (month).")],
    format: Annotated[str, typer.Option("--format", help="csv (UTF-8 with BOM), html (a self-contained page) or json.")] = "html",
    out: Annotated[Optional[Path], typer.Option("--out", help="Output file (default: stdout).")] = None,
) -> None:
    """Public disclosure of fund use (向社会公开资金使用情况) for one region and period.

    Totals per subsidy kind and fund source, per institution, distinct
    trainees and recoveries. No person is named: counts only, payees masked.
    """
    _choice(format, ("csv", "html", "json"), "--format")
    rg = _region(region)
    per = _period(period)
    with views() as store:
        d = disclosure.disclosure(store, region=rg, period=per)
    if format == "json":
        text = json.dumps(disclosure.to_json(d), ensure_ascii=False, indent=2) + "\n"
        _write_text(disclosure.scrub(text), out)
    elif format == "csv":
        _write_text(disclosure.to_csv(d), out, bom=True)
    else:
        _write_text(disclosure.to_html(d), out)


def report_cmd(
    region: Annotated[str, typer.Option("--region", help="Pack region code, e.g. 370306.")],
    period: Annotated[str, typer.Option("--period", help="2024Q1 (季报), 2024 (年报) or 2024-03.")],
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """季报/年报: the quarterly or annual report of one region.

    Classes opened, trainees enrolled, completions passed, certificates by
    kind, money paid per subsidy kind and recoveries, for the period.
    """
    _choice(format, ("table", "json"), "--format")
    rg = _region(region)
    per = _period(period)
    with views() as store:
        rep = reports.report(store, region=rg, period=per)
    if format == "json":
        _json(reports.report_json(rep))
    else:
        typer.echo(reports.report_table(rep), nl=False)


def export_cmd(
    format: Annotated[str, typer.Option("--format", help="hledger or beancount.")] = "hledger",
    out: Annotated[Optional[Path], typer.Option("--out", help="Output file (default: stdout).")] = None,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Only transactions dated on or before this day.")] = None,
) -> None:
    """The books as a double-entry journal for hledger or beancount.

    Ends with balance assertions of every fund account, so an independent
    tool re-adds the books: `hledger -f FILE check` (or `bean-check FILE`).
    """
    _choice(format, books.FORMATS, "--format")
    as_of = _date(as_of, "--as-of")
    with views() as store:
        if out is None:
            books.export(store, sys.stdout, fmt=format, as_of=as_of)
            sys.stdout.flush()
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", encoding="utf-8", newline="\n") as fh:
                funds = books.export(store, fh, fmt=format, as_of=as_of)
            typer.echo(f"wrote {out} ({len(funds)} fund accounts asserted)", err=True)


def views_cmd(
    rebuild_: Annotated[bool, typer.Option("--rebuild", help="Drop every view and replay the ledger from the start.")] = False,
) -> None:
    """Catch the finance views up with the ledger (or rebuild them) and show where each stands."""
    settings = _settings()
    ledger = Ledger(env=settings.eventsourcing_env("LEDGER"))
    store = open_store(settings)
    try:
        projections = all_projections()
        stats = (rebuild if rebuild_ else catch_up)(store, ledger.recorder, projections)
        typer.echo(f"{'rebuilt' if rebuild_ else 'caught up'}: {stats.positions} log positions, {stats.items} items "
                   f"in {stats.seconds:.2f} s; store {store.describe()}")
        for name, (pos, ver) in sorted(store.tracking().items()):
            typer.echo(f"  {name:<16} position {pos:>10}  version {ver}")
    finally:
        store.close()
        ledger.close()


def register(app: typer.Typer) -> None:
    """Add the finance commands to the ``skillfund`` app."""
    app.command("balances")(balances_cmd)
    app.command("ledger")(ledger_cmd)
    app.command("reconcile")(reconcile_cmd)
    app.command("disclose")(disclose_cmd)
    app.command("report")(report_cmd)
    app.command("export")(export_cmd)
    app.command("views")(views_cmd)
    # `skillfund ingest --project` calls after_ingest (wired in ops/cli.py).
