"""Balances per fund source × pack region, by kind and month, and as of a date."""

from __future__ import annotations

import json

import pytest
from projhelp import dump_views_without_positions, example_lines

from projections.balances import account_balances, balances, to_json

CONTRACT_ROW = {
    "fund_source": "ui_surplus",
    "region": "320500",
    "appropriated": "5000000.00",
    "paid": "600.00",
    "recovered": "300.00",
    "balance": "4999700.00",
}


def test_contract_example_balances_on_both_stores(books_factory, store_env):
    b = books_factory(store_env)
    assert b.submit(example_lines()) == {"accepted": 21}
    b.catch_up()
    assert to_json(balances(b.store)) == [CONTRACT_ROW]
    assert list(to_json(balances(b.store))[0]) == list(CONTRACT_ROW)  # key order of the contract


def test_balance_is_appropriated_minus_paid_plus_recovered(books_factory, sim_lines):
    b = books_factory()
    b.submit(sim_lines(seed=3, classes=6, region="420100"))
    b.catch_up()
    rows = balances(b.store)
    assert rows, "the simulated year moves money"
    assert rows == sorted(rows, key=lambda r: (r["region"], r["fund_source"]))
    accounts = account_balances(b.store, prefix="assets:fund")
    for r in rows:
        assert r["balance"] == r["appropriated"] - r["paid"] + r["recovered"]
        assert r["balance"] >= 0
        assert accounts[f"assets:fund:{r['fund_source']}:{r['region']}"] == r["balance"]
    # the whole journal balances: every account's sum is zero
    assert sum(account_balances(b.store).values()) == 0


def test_by_kind_and_by_month_add_up_to_the_fund_view(books_factory, sim_lines):
    b = books_factory()
    b.submit(sim_lines(seed=3, classes=6, region="420100"))
    b.catch_up()
    fund = {(r["fund_source"], r["region"]): r for r in balances(b.store)}
    by_kind = balances(b.store, by="kind")
    by_month = balances(b.store, by="month")
    for key, r in fund.items():
        kinds = [k for k in by_kind if (k["fund_source"], k["region"]) == key]
        for col in ("appropriated", "paid", "recovered", "balance"):
            assert sum(k[col] for k in kinds) == r[col]
        assert all(k["appropriated"] == 0 for k in kinds if k["subsidy_kind"] is not None)
        months = [m for m in by_month if (m["fund_source"], m["region"]) == key]
        assert months == sorted(months, key=lambda m: m["month"])
        for col in ("appropriated", "paid", "recovered"):
            assert sum(m[col] for m in months) == r[col]
        assert months[-1]["balance"] == r["balance"]  # month-end balance of the last month
    assert any(k["subsidy_kind"] == "training" for k in by_kind)


def test_region_filter_takes_a_district_code(books_factory):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    assert balances(b.store, region="320505") == balances(b.store)
    assert balances(b.store, region="420100") == []
    with pytest.raises(ValueError):
        balances(b.store, region="110000")


@pytest.mark.parametrize("cut", ["2024-01-31", "2024-02-08", "2024-06-30", "2024-10-15", "2024-12-31"])
def test_as_of_equals_a_rebuild_of_a_ledger_cut_at_that_date(books_factory, sim_lines, cut):
    """Balances as of D on the full ledger == balances of a ledger that holds only records dated <= D."""
    # (the simulator only: its ids would collide with the contract example's)
    lines = sim_lines(seed=5, classes=8, region="420100")
    full = books_factory()
    full.submit(lines)
    full.catch_up()
    cut_lines = [ln for ln in lines if json.loads(ln)["at"][:10] <= cut]
    part = books_factory()
    part.submit(cut_lines)
    part.rebuild()
    expected = balances(part.store)
    got = balances(full.store, as_of=cut)
    assert got == expected
    for by in ("kind", "month"):
        assert balances(full.store, as_of=cut, by=by) == balances(part.store, by=by)
    assert account_balances(full.store, as_of=cut) == account_balances(part.store)
    # as-of of the whole is the whole
    if cut == "2024-12-31":
        assert balances(full.store, as_of="2099-12-31") == balances(full.store)


def test_as_of_before_anything_is_empty(books_factory):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    assert balances(b.store, as_of="2023-12-31") == []
    [row] = balances(b.store, as_of="2024-02-08")  # end of the payment day
    assert (row["paid"], row["recovered"], row["balance"]) == (60_000, 0, 499_940_000)
    [row] = balances(b.store, as_of="2024-02-07")
    assert row["balance"] == 500_000_000


def test_views_do_not_depend_on_how_records_were_batched(books_factory, sim_lines):
    lines = sim_lines(seed=5, classes=4, region="370306")
    one = books_factory()
    one.submit(lines, batch=1000)
    one.catch_up()
    many = books_factory()
    many.submit(lines, batch=37)
    many.catch_up(chunk=13)
    assert balances(one.store) == balances(many.store)
    assert dump_views_without_positions(one.store) == dump_views_without_positions(many.store)
