"""The books as a plain-text double-entry journal (hledger or beancount).

Every Posted item of the feed is one balanced transaction. The journal view
(``view_journal``) keeps them, one row per transaction, in log order; the
export writes them out so that an independent tool can re-add the books and
check them against skillfund's own balances.

hledger (``--format hledger``)::

    2024-02-08 payment pay-rec-0001 | payee 91320505DC4MTWLHWT
        ; txn_id:payment:pay-rec-0001, claim:claim-0001
        expenses:subsidy:training:320500     600.00 CNY
        assets:fund:ui_surplus:320500       -600.00 CNY

Account names are the ledger's own (``ledger/postings.py``). At the end, one
assertion transaction per fund account (dated the last transaction date)
asserts the balance skillfund computed (``= 4999700.00 CNY``): hledger fails
the file if its own sum differs.

beancount (``--format beancount``): account names must be Capitalized
components of letters, digits and dashes, so each component is mapped
deterministically (:func:`beancount_account`): ``assets`` → ``Assets``,
``income`` → ``Income``; snake_case → CamelCase (``ui_surplus`` →
``UiSurplus``, ``living_allowance`` → ``LivingAllowance``); a component that
does not start with a letter gets a prefix: region codes ``R`` (``320500`` →
``R320500``), anything else ``X``. Every account is opened (``open``) on the
day of its first posting; a ``balance`` directive per fund account the day
after the last transaction asserts the final balance (beancount checks a
balance at the start of its day).

Payees who are persons (a resident id) are masked in descriptions
(``ledger.ids.mask_party``): the journal may be read by an auditor without
need to know who the person is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any, TextIO

import orjson

from ledger.ids import mask_party
from ledger.money import fen_to_yuan
from projections import feed
from projections.balances import account_balances
from projections.runner import Projection
from projections.store import Tx, ViewStore

COMMODITY = "CNY"
FORMATS = ("hledger", "beancount")
_FUND_PREFIX = "assets:fund"
_SAFE_TEXT = re.compile(r"[\x00-\x1f\x7f]")


class JournalProjection(Projection):
    name = "journal"
    version = "1"
    tables = ("view_journal",)
    wants_posted = True

    def __init__(self) -> None:
        self.reset()

    def ddl(self, store: ViewStore) -> list[str]:
        b = store.bigint
        return [
            f"CREATE TABLE IF NOT EXISTS view_journal (position {b} PRIMARY KEY, txn_id TEXT NOT NULL, "
            "date TEXT NOT NULL, kind TEXT NOT NULL, region TEXT NOT NULL, txn TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS view_journal_date ON view_journal (date)",
        ]

    def reset(self) -> None:
        self._rows: list[tuple] = []

    def on_posted(self, item: feed.Posted) -> None:
        t = item.txn
        self._rows.append(
            (item.position, t["txn_id"], t["date"], t["kind"], t["region"], orjson.dumps(t).decode("utf-8"))
        )

    def flush(self, tx: Tx) -> None:
        tx.executemany(
            "INSERT INTO view_journal (position, txn_id, date, kind, region, txn) VALUES (?, ?, ?, ?, ?, ?)", self._rows
        )


# ---------------------------------------------------------------- reading


def transactions(store: ViewStore, *, as_of: str | None = None, batch: int = 5_000) -> Iterator[dict[str, Any]]:
    """Posted transactions in log order (``date <= as_of`` when given), a page at a time."""
    after = -1
    while True:
        params: list[Any] = [after]
        sql = "SELECT position, txn FROM view_journal WHERE position > ?"
        if as_of is not None:
            sql += " AND date <= ?"
            params.append(as_of)
        sql += " ORDER BY position LIMIT ?"
        params.append(batch)
        rows = store.query(sql, params)
        if not rows:
            return
        for pos, txt in rows:
            yield orjson.loads(txt)
        after = int(rows[-1][0])


def _clean(text: str) -> str:
    return _SAFE_TEXT.sub(" ", text)


def description(t: dict[str, Any]) -> str:
    """``<kind> <record_id> | payee …`` (the payee masked if a person)."""
    head = f"{t['kind']} {t['record_id']}"
    if t.get("payee_id"):
        tail = f"payee {mask_party(t['payee_id'])}"
    elif t.get("claim_id"):
        tail = f"claim {t['claim_id']}"
    elif t.get("document"):
        tail = f"document {t['document']}"
    else:
        tail = f"{t['fund_source']} {t['region']}"
    return _clean(f"{head} | {tail}")


def _amount(fen: int) -> str:
    return f"{fen_to_yuan(fen)} {COMMODITY}"


# ---------------------------------------------------------------- hledger


def write_hledger(store: ViewStore, out: TextIO, *, as_of: str | None = None) -> dict[str, int]:
    """Write the hledger journal; returns the asserted fund balances (fen)."""
    every = account_balances(store, as_of=as_of)  # every account used, for the declarations
    funds = {a: f for a, f in every.items() if a.startswith(_FUND_PREFIX + ":")}
    out.write("; skillfund books — 职业技能提升行动专账 (generated; do not edit)\n")
    out.write(f"; amounts in {COMMODITY}, two decimals; one transaction per ledger posting\n\n")
    out.write(f"commodity 1000.00 {COMMODITY}\n\n")
    for acct in sorted(every):
        out.write(f"account {acct}\n")
    out.write("\n")
    last_date: str | None = None
    for t in transactions(store, as_of=as_of):
        d = t["date"]
        if last_date is None or d > last_date:
            last_date = d
        lines = [f"{d} {description(t)}\n", f"    ; txn_id:{t['txn_id']}\n"]
        for p in t["postings"]:
            lines.append(f"    {p['account']:<48} {_amount(p['fen']):>20}\n")
        lines.append("\n")
        out.write("".join(lines))
    if funds and last_date is not None:
        out.write(f"{last_date} balance assertions | skillfund balances\n")
        out.write("    ; the fund balances skillfund reports; hledger checks its own sums against them\n")
        for acct, fen in sorted(funds.items()):
            out.write(f"    {acct:<48} 0.00 {COMMODITY} = {_amount(fen)}\n")
        out.write("\n")
    return funds


# ---------------------------------------------------------------- beancount

_ROOTS = {"assets": "Assets", "liabilities": "Liabilities", "equity": "Equity", "income": "Income", "expenses": "Expenses"}


def beancount_component(part: str) -> str:
    """One account component: CamelCase of its words; a leading digit gets ``R`` (regions) or ``X``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", part) if w]
    text = "".join(w[:1].upper() + w[1:] for w in words) or "X"
    if not text[0].isalpha():
        text = ("R" if text.isdigit() else "X") + text
    return text


def beancount_account(account: str) -> str:
    """``assets:fund:ui_surplus:320500`` → ``Assets:Fund:UiSurplus:R320500``."""
    parts = account.split(":")
    root = _ROOTS.get(parts[0])
    if root is None:
        raise ValueError(f"account {account!r} has no beancount root (assets, liabilities, equity, income, expenses)")
    return ":".join([root] + [beancount_component(p) for p in parts[1:]])


def _bean_str(text: str) -> str:
    return '"' + _clean(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_beancount(store: ViewStore, out: TextIO, *, as_of: str | None = None) -> dict[str, int]:
    """Write the beancount ledger; returns the asserted fund balances (fen)."""
    opened: dict[str, str] = {}
    body: list[str] = []
    last_date = None
    for t in transactions(store, as_of=as_of):
        d = t["date"]
        last_date = d if last_date is None or d > last_date else last_date
        desc = description(t)
        payee, _, narration = desc.partition(" | ")
        lines = [f"{d} * {_bean_str(narration)} {_bean_str(payee)}\n", f"  txn_id: {_bean_str(t['txn_id'])}\n"]
        for p in t["postings"]:
            acct = beancount_account(p["account"])
            if acct not in opened or d < opened[acct]:
                opened[acct] = min(d, opened.get(acct, d))
            lines.append(f"  {acct:<48} {_amount(p['fen']):>20}\n")
        lines.append("\n")
        body.append("".join(lines))
    funds = account_balances(store, as_of=as_of, prefix=_FUND_PREFIX)
    out.write("; skillfund books — 职业技能提升行动专账 (generated; do not edit)\n")
    out.write(f'option "title" "skillfund"\noption "operating_currency" "{COMMODITY}"\n\n')
    for acct, d in sorted(opened.items(), key=lambda kv: (kv[1], kv[0])):
        out.write(f"{d} open {acct} {COMMODITY}\n")
    out.write("\n")
    for text in body:
        out.write(text)
    if funds and last_date is not None:
        after = (date.fromisoformat(last_date) + timedelta(days=1)).isoformat()
        for acct, fen in sorted(funds.items()):
            out.write(f"{after} balance {beancount_account(acct):<48} {_amount(fen)}\n")
    return funds


def export(store: ViewStore, out: TextIO, *, fmt: str = "hledger", as_of: str | None = None) -> dict[str, int]:
    if fmt == "hledger":
        return write_hledger(store, out, as_of=as_of)
    if fmt == "beancount":
        return write_beancount(store, out, as_of=as_of)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")
