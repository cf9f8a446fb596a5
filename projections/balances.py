"""Fund balances (分账核算): per fund source × pack region, from Posted items.

Kept as daily deltas, so that every question is a query:

* ``view_balance_daily(fund_source, region, subsidy_kind, date, appropriated,
  paid, recovered, txns)``: what moved the fund account on each day, split by
  subsidy kind ('' for appropriations). ``paid`` and ``recovered`` are
  positive amounts; the fund account's delta is
  ``appropriated - paid + recovered``.
* ``view_account_daily(account, date, fen)``: the net change of every account
  of the journal (assets, equity, expenses, income) on each day.

``balance = appropriated - paid + recovered``. Balances *as of* a date D are
the sums over ``date <= D``: the end of day D, in the local date of each
record's ``at`` (the transaction date, as in the journal). Money is int fen
inside and yuan strings ("1234.50") only at the edge (:func:`to_json`).
"""

from __future__ import annotations

from typing import Any

from ledger.money import fen_to_yuan
from ledger.policy import pack_code_for
from projections import feed
from projections.runner import Projection
from projections.store import Tx, ViewStore, where

BY_CHOICES = ("fund", "kind", "month")


class BalancesProjection(Projection):
    name = "balances"
    version = "1"
    tables = ("view_balance_daily", "view_account_daily")
    wants_posted = True

    def __init__(self) -> None:
        self.reset()

    def ddl(self, store: ViewStore) -> list[str]:
        b = store.bigint
        return [
            "CREATE TABLE IF NOT EXISTS view_balance_daily ("
            "fund_source TEXT NOT NULL, region TEXT NOT NULL, subsidy_kind TEXT NOT NULL, date TEXT NOT NULL, "
            f"appropriated {b} NOT NULL, paid {b} NOT NULL, recovered {b} NOT NULL, txns {b} NOT NULL, "
            "PRIMARY KEY (fund_source, region, subsidy_kind, date))",
            "CREATE TABLE IF NOT EXISTS view_account_daily ("
            f"account TEXT NOT NULL, date TEXT NOT NULL, fen {b} NOT NULL, PRIMARY KEY (account, date))",
        ]

    def reset(self) -> None:
        self._fund: dict[tuple[str, str, str, str], list[int]] = {}
        self._acct: dict[tuple[str, str], int] = {}

    def on_posted(self, item: feed.Posted) -> None:
        t = item.txn
        fs = t["fund_source"]
        region = t["region"]
        date = t["date"]
        kind = t["kind"]
        fund_acct = f"assets:fund:{fs}:{region}"
        delta = 0
        acct = self._acct
        for p in t["postings"]:
            a = p["account"]
            fen = p["fen"]
            if a == fund_acct:
                delta += fen
            k = (a, date)
            acct[k] = acct.get(k, 0) + fen
        key = (fs, region, t.get("subsidy_kind") or "", date)
        row = self._fund.get(key)
        if row is None:
            row = self._fund[key] = [0, 0, 0, 0]
        if kind == "appropriation":
            row[0] += delta
        elif kind == "payment":
            row[1] -= delta
        elif kind == "recovery":
            row[2] += delta
        else:  # a kind this projection does not know: keep the money, as an appropriation-like inflow
            row[0] += delta
        row[3] += 1

    def flush(self, tx: Tx) -> None:
        tx.executemany(
            "INSERT INTO view_balance_daily (fund_source, region, subsidy_kind, date, appropriated, paid, recovered, txns) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fund_source, region, subsidy_kind, date) DO UPDATE SET "
            "appropriated = view_balance_daily.appropriated + excluded.appropriated, "
            "paid = view_balance_daily.paid + excluded.paid, "
            "recovered = view_balance_daily.recovered + excluded.recovered, "
            "txns = view_balance_daily.txns + excluded.txns",
            [(*k, *v) for k, v in self._fund.items()],
        )
        tx.executemany(
            "INSERT INTO view_account_daily (account, date, fen) VALUES (?, ?, ?) "
            "ON CONFLICT (account, date) DO UPDATE SET fen = view_account_daily.fen + excluded.fen",
            [(*k, v) for k, v in self._acct.items()],
        )


# ---------------------------------------------------------------- queries


def _where(as_of: str | None, region: str | None, date_from: str | None = None) -> tuple[str, list[Any]]:
    return where(
        ("date <= ?", as_of),
        ("date >= ?", date_from),
        ("region = ?", None if region is None else pack_region(region)),
    )


def pack_region(region: str) -> str:
    """A pack region code for a region or district code (4201xx -> 420100)."""
    code = pack_code_for(region)
    if code is None:
        raise ValueError(f"region {region} is under no policy pack")
    return code


def balances(
    store: ViewStore, *, as_of: str | None = None, by: str = "fund", region: str | None = None
) -> list[dict[str, Any]]:
    """Balance rows in int fen, sorted by region, fund source (then kind / month).

    ``by="fund"``: one row per fund source × region (the contract's view).
    ``by="kind"``: paid and recovered split by subsidy kind; appropriations
    form the row whose ``subsidy_kind`` is None; ``balance`` is that row's
    net effect on the fund. ``by="month"``: the flows of each month and the
    fund's ``balance`` at the end of that month.
    """
    if by not in BY_CHOICES:
        raise ValueError(f"by must be one of {', '.join(BY_CHOICES)}")
    where, params = _where(as_of, region)
    if by == "fund":
        rows = store.query(
            "SELECT fund_source, region, SUM(appropriated), SUM(paid), SUM(recovered) FROM view_balance_daily"
            f"{where} GROUP BY fund_source, region ORDER BY region, fund_source",
            params,
        )
        return [_row(fs, rg, a, p, r) for fs, rg, a, p, r in rows]
    if by == "kind":
        rows = store.query(
            "SELECT fund_source, region, subsidy_kind, SUM(appropriated), SUM(paid), SUM(recovered) "
            f"FROM view_balance_daily{where} GROUP BY fund_source, region, subsidy_kind "
            "ORDER BY region, fund_source, subsidy_kind",
            params,
        )
        out = []
        for fs, rg, kind, a, p, r in rows:
            row = _row(fs, rg, a, p, r)
            row["subsidy_kind"] = kind or None
            out.append(row)
        return out
    rows = store.query(
        "SELECT fund_source, region, substr(date, 1, 7) AS month, SUM(appropriated), SUM(paid), SUM(recovered) "
        f"FROM view_balance_daily{where} GROUP BY fund_source, region, substr(date, 1, 7) "
        "ORDER BY region, fund_source, month",
        params,
    )
    out = []
    running: dict[tuple[str, str], int] = {}
    for fs, rg, month, a, p, r in rows:
        row = _row(fs, rg, a, p, r)
        closing = running.get((fs, rg), 0) + row["balance"]
        running[(fs, rg)] = closing
        row["month"] = month
        row["balance"] = closing
        out.append(row)
    return out


def _row(fs: str, rg: str, a: Any, p: Any, r: Any) -> dict[str, Any]:
    a, p, r = int(a or 0), int(p or 0), int(r or 0)
    return {"fund_source": fs, "region": rg, "appropriated": a, "paid": p, "recovered": r, "balance": a - p + r}


MONEY_KEYS = ("appropriated", "paid", "recovered", "balance")


def to_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Money as yuan strings; the default view is exactly the contract's shape."""
    out = []
    for row in rows:
        d = dict(row)
        for k in MONEY_KEYS:
            d[k] = fen_to_yuan(d[k])
        out.append(d)
    return out


def account_balances(store: ViewStore, *, as_of: str | None = None, prefix: str | None = None) -> dict[str, int]:
    """{account: balance in fen} over every account of the journal."""
    clauses: list[str] = []
    params: list[Any] = []
    if as_of is not None:
        clauses.append("date <= ?")
        params.append(as_of)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = store.query(f"SELECT account, SUM(fen) FROM view_account_daily{where} GROUP BY account ORDER BY account", params)
    out = {a: int(f) for a, f in rows}
    if prefix is not None:
        out = {a: f for a, f in out.items() if a == prefix or a.startswith(prefix + ":")}
    return out
