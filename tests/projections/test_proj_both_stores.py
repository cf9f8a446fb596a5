"""Every query answers the same on SQLite and on PostgreSQL."""

from __future__ import annotations

import io

from projhelp import individual_lines

from projections import balances, books, disbursements, disclosure, reconciliation, reports


def answers(store) -> dict:
    out = {
        "fund": balances.balances(store),
        "kind": balances.balances(store, by="kind"),
        "month": balances.balances(store, by="month"),
        "as_of": balances.balances(store, as_of="2024-03-01"),
        "accounts": balances.account_balances(store),
        "ledger": disbursements.ledger_rows(store, region="320500", date_from="2024-01-01"),
        "disclosure": disclosure.disclosure(store, region="320500", period="2024"),
        "report": reports.report(store, region="320500", period="2024"),
        "recon": reconciliation.reconciliation(store, region="320500"),
    }
    for fmt in books.FORMATS:
        buf = io.StringIO()
        books.export(store, buf, fmt=fmt)
        out[fmt] = buf.getvalue()
    return out


def test_same_answers_on_both_stores(books_factory, store_env):
    lines = individual_lines()
    reference = books_factory()
    reference.submit(lines)
    reference.catch_up()
    b = books_factory(store_env)
    b.submit(lines)
    b.catch_up(chunk=9)
    assert b.store.kind == store_env.store_kind
    assert answers(b.store) == answers(reference.store)
