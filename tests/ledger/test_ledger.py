"""Contract suite for the ledger: every hard rule, idempotency, replay — on both stores."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ledger.application import Ledger, Submission
from ops.runtime import open_ledger

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "examples.jsonl"
if not EXAMPLES.exists():  # CI clones main with shared/ beside it
    EXAMPLES = Path("/work/shared/spec/examples.jsonl")


def example_records() -> list[dict]:
    return [json.loads(line) for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


def by_id(records: list[dict], rid: str) -> dict:
    return next(r for r in records if r["id"] == rid)


def lines(records: list[dict]) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in records]


def submit(ledger: Ledger, records_or_lines, source: str = "test"):
    subs = []
    for i, x in enumerate(records_or_lines, start=1):
        text = x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)
        subs.append(Submission.from_text(text, line=i, source=source))
    return ledger.submit(subs)


def balances(ledger: Ledger) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    return {
        (a.fund_source, a.region): (a.appropriated_fen, a.paid_fen, a.recovered_fen, a.balance_fen)
        for a in ledger.fund_accounts()
    }


def reasons(result) -> list[str | None]:
    return [o.reason for o in result.outcomes]


@pytest.fixture
def ledger(store_env) -> Ledger:
    return open_ledger(store_env)


def upto(records: list[dict], rid: str) -> list[dict]:
    out = []
    for r in records:
        if r["id"] == rid:
            return out
        out.append(r)
    raise KeyError(rid)


def test_example_gives_the_contract_balances(ledger):
    result = submit(ledger, example_records())
    assert result.counts() == {"accepted": 21}
    assert balances(ledger) == {("ui_surplus", "320500"): (500000000, 60000, 30000, 499970000)}


def test_resending_is_a_noop_and_different_content_is_a_conflict(ledger, store_env):
    recs = example_records()
    submit(ledger, recs)
    again = submit(open_ledger(store_env), recs)
    assert again.counts() == {"duplicate": 21}
    assert balances(ledger)[("ui_surplus", "320500")] == (500000000, 60000, 30000, 499970000)
    changed = copy.deepcopy(by_id(recs, "appr-0001"))
    changed["amount"] = "1.00"
    result = submit(open_ledger(store_env), [changed])
    assert reasons(result) == ["conflict"]
    # "25" and "25.00" are the same money: a re-send, not a conflict
    same = copy.deepcopy(by_id(recs, "appr-0001"))
    same["amount"] = "5000000"
    same["unlisted_field"] = "ignored"
    assert submit(open_ledger(store_env), [same]).counts() == {"duplicate": 1}
    assert balances(open_ledger(store_env))[("ui_surplus", "320500")][0] == 500000000


def test_duplicate_within_one_batch(ledger):
    recs = example_records()[:3]
    result = submit(ledger, recs + recs)
    assert result.counts() == {"accepted": 3, "duplicate": 3}


def test_payment_rules_in_contract_order(ledger):
    recs = example_records()
    base = upto(recs, "rev-claim-0001")
    submit(ledger, base)
    pay = copy.deepcopy(by_id(recs, "pay-rec-0001"))
    # not approved yet (the review is not in): claim_not_approved beats everything
    pay_unapproved = dict(pay, id="p-unapproved", payment_id="pay-u", fund_source="employment_subsidy", amount="999999999.00")
    assert reasons(submit(ledger, [pay_unapproved])) == ["claim_not_approved"]
    submit(ledger, [by_id(recs, "rev-claim-0001")])
    # living_allowance-only fund paying training is fine; ui_fund may not pay training
    p2 = dict(pay, id="p-fund", payment_id="pay-f", fund_source="ui_fund", amount="999999999.00")
    assert reasons(submit(ledger, [p2])) == ["fund_not_permitted"]
    p3 = dict(pay, id="p-over", payment_id="pay-o", amount="600.01")
    assert reasons(submit(ledger, [p3])) == ["exceeds_approved"]
    p4 = dict(pay, id="p-nofund", payment_id="pay-n", fund_source="employment_subsidy")
    assert reasons(submit(ledger, [p4])) == ["overdraft"]
    assert reasons(submit(ledger, [pay])) == [None]
    # a second payment would exceed the approved 600.00
    p5 = dict(pay, id="p-again", payment_id="pay-again", amount="0.01")
    assert reasons(submit(ledger, [p5])) == ["exceeds_approved"]
    # payment_id already used by another record
    p6 = dict(pay, id="p-dupid", amount="0.01")
    assert reasons(submit(ledger, [p6])) == ["conflict"]
    assert balances(ledger)[("ui_surplus", "320500")] == (500000000, 60000, 0, 499940000)


def test_overdraft_against_the_pack_region_balance(ledger):
    recs = example_records()
    small = dict(by_id(recs, "appr-0001"), amount="599.99")
    submit(ledger, [small] + upto(recs, "pay-rec-0001")[1:])
    result = submit(ledger, [by_id(recs, "pay-rec-0001")])
    assert reasons(result) == ["overdraft"]
    assert result.outcomes[0].detail == (
        "field amount: payment of 600.00 exceeds the balance 599.99 of ui_surplus in 320500"
    )
    top_up = dict(small, id="appr-0002", amount="0.01", region="320506")  # a district posts to its pack
    submit(ledger, [top_up])
    assert reasons(submit(ledger, [by_id(recs, "pay-rec-0001")])) == [None]
    assert balances(ledger)[("ui_surplus", "320500")][3] == 0


def test_recovery_cannot_exceed_paid_and_returns_to_the_paying_fund(ledger):
    recs = example_records()
    submit(ledger, upto(recs, "pay-rec-0001"))
    rec = dict(by_id(recs, "recov-0001"), amount="0.01")
    assert reasons(submit(ledger, [rec])) == ["recovery_exceeds_paid"]
    submit(ledger, [by_id(recs, "pay-rec-0001")])
    too_much = dict(by_id(recs, "recov-0001"), amount="600.01")
    assert reasons(submit(ledger, [too_much])) == ["recovery_exceeds_paid"]
    assert reasons(submit(ledger, [by_id(recs, "recov-0001")])) == [None]
    rest = dict(by_id(recs, "recov-0001"), id="recov-0002", recovery_id="rc-0002", amount="300.00")
    assert reasons(submit(ledger, [rest])) == [None]
    over = dict(rest, id="recov-0003", recovery_id="rc-0003", amount="0.01")
    assert reasons(submit(ledger, [over])) == ["recovery_exceeds_paid"]
    assert balances(ledger)[("ui_surplus", "320500")] == (500000000, 60000, 60000, 500000000)


def test_unknown_references_are_rejected_and_replayable(ledger, store_env):
    recs = example_records()
    head = upto(recs, "open-0001")
    submit(ledger, head)
    # attendance before its class exists, then the class arrives
    later = [r for r in recs if r["type"] in ("class_opened", "class_reviewed", "enrollment")]
    att = by_id(recs, "att-0001")
    result = submit(ledger, [att])
    assert reasons(result) == ["unknown_reference"] and result.outcomes[0].field == "class_id"
    assert [r.reason for r in ledger.open_rejections()] == ["unknown_reference"]
    submit(ledger, later)
    replay = open_ledger(store_env).replay_rejections()
    assert replay.counts() == {"accepted": 1}
    assert open_ledger(store_env).open_rejections() == []
    assert len(open_ledger(store_env).all_rejections()) == 1


@pytest.mark.parametrize(
    ("rid", "change", "field"),
    [
        ("open-0001", {"venue_id": "venue-99"}, "venue_id"),
        ("open-0001", {"project_id": "proj-9999"}, "project_id"),
        ("open-0001", {"institution_id": "91320505MA1MXXXX0X"}, "institution_id"),
        ("att-0001", {"session_id": "s-99"}, "session_id"),
        ("att-0001", {"trainee_id": "11010519491231002X"}, "trainee_id"),
        ("comp-0001", {"trainee_id": "11010519491231002X"}, "trainee_id"),
        ("claim-rec-0001", {"class_id": "class-9"}, "class_id"),
        ("notice-0001", {"claim_id": "claim-9"}, "claim_id"),
    ],
)
def test_each_reference_is_checked(ledger, rid, change, field):
    recs = example_records()
    submit(ledger, upto(recs, rid))
    bad = dict(by_id(recs, rid), id=rid + "-bad", **change)
    result = submit(ledger, [bad])
    o = result.outcomes[0]
    assert o.reason in ("unknown_reference", "invalid_id"), o
    if o.reason == "unknown_reference":
        assert o.field == field


def test_person_claimant_and_officer_ids_are_identities_not_references(ledger):
    recs = example_records()
    submit(ledger, upto(recs, "claim-rec-0001"))
    claim = dict(by_id(recs, "claim-rec-0001"), handled_by="officer-new-99", claimant_id="91320505DC4MTWLHWT")
    assert reasons(submit(ledger, [claim])) == [None]
    status = dict(by_id(recs, "reg-0001"), id="reg-new", trainee_id="11010519491231002X")
    assert reasons(submit(ledger, [status])) == [None]


def test_every_input_is_an_event_or_a_durable_rejection(ledger, store_env):
    recs = example_records()
    mix = lines(recs[:3]) + ["", "not json", '{"type": "nope", "id": "x", "at": "2024-01-01T00:00:00+08:00"}']
    result = submit(ledger, mix)
    # the blank line is skipped by intake, not by the ledger; here it is malformed input
    statuses = [o.status for o in result.outcomes]
    assert statuses.count("accepted") == 3
    stored = open_ledger(store_env).open_rejections()
    assert {r.line for r in stored} == {o.line for o in result.outcomes if o.status == "rejected"}
