"""Payment and reconciliation detectors: duplicate_payment, split_payment,
notice_skipped, unreconciled_outflow.

Each kind gets a small hand-built scenario that raises it and a near miss that
must not; the clean example raises nothing, and small edits to it raise
exactly the expected kind.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from scenario import examples, submit_all
from test_claims import INST, T1, T2, T3, SUZHOU_CITES, Story, all_detectors, assert_well_formed, latest, run

from detectors import payments, reconciliation
from detectors.base import AlertDraft
from ledger.ids import make_credit_code
from projections import feed

INST2 = make_credit_code("91450100MA5K8L9P2")
ACC = "6222020000123456789"
FUND = "SKILLFUND-320500"
DEFAULT_CITE = "skillfund record contract v1, Policy defaults"
assert_names_records = assert_well_formed


# ------------------------------------------------------------------ the clean example


def test_clean_example_raises_nothing() -> None:
    assert run(payments.detectors() + reconciliation.detectors(), examples().items) == []


def _example_story(drop: str | None = None) -> Story:
    """The clean example as a Story (records copied, so a test may edit them)."""
    sc = Story()
    sc.records.clear()
    sc.items.clear()
    for rec in examples().records:
        if rec["type"] != drop:
            sc.add(dict(rec))
    return sc


def test_example_without_its_notice_raises_notice_skipped_only() -> None:
    sc = _example_story(drop="notice")
    drafts = run(all_detectors(), sc.items)
    assert [(d.kind, d.subject) for d in drafts] == [("notice_skipped", {"payment_id": "pay-0001"})]
    assert drafts[0].evidence[0]["reasons"] == ["no_notice"]
    assert drafts[0].policy == SUZHOU_CITES
    assert_well_formed(drafts, sc)


def test_example_with_a_bank_line_of_another_amount_raises_unreconciled_outflow_only() -> None:
    sc = _example_story()
    next(r for r in sc.records if r["type"] == "bank_statement")["amount"] = "-6000.00"
    drafts = run(all_detectors(), sc.items)
    assert [(d.kind, d.subject) for d in drafts] == [("unreconciled_outflow", {"bank_ref": "BR20240208000117"})]
    ev = drafts[0].evidence[0]
    assert (ev["reason"], ev["payment_id"], ev["difference"]) == ("amount_mismatch", "pay-0001", "5400.00")
    assert drafts[0].raised_at == "2024-02-09T00:00:00+08:00"  # judged on arrival
    assert drafts[0].policy == SUZHOU_CITES


# ------------------------------------------------------------------ duplicate_payment


def _dup_scenario(f: Story, trainees_2: list[str], amount_2: str = "600.00") -> None:
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.00", class_id="class-1")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", "600.00")
    f.claim_for("claim-2", "2024-02-20T10:00:00+08:00", trainees_2, amount_2, class_id="class-1")
    f.pay("pay-2", "claim-2", "2024-03-08T10:00:00+08:00", amount_2)


def test_duplicate_payment_same_class_same_trainees_other_claim() -> None:
    f = Story()
    _dup_scenario(f, [T2, T1])  # same set, other order
    drafts = run([payments.DuplicatePayment()], f.items)
    assert [d.subject for d in drafts] == [{"payment_id": "pay-2"}]
    ev = drafts[0].evidence[0]
    assert (ev["earlier_payment_id"], ev["earlier_claim_id"], ev["amount"]) == ("pay-1", "claim-1", "600.00")
    assert drafts[0].severity == "medium"
    assert drafts[0].raised_at == "2024-03-08T10:00:00+08:00"
    assert_names_records(drafts, f)


def test_duplicate_payment_near_misses() -> None:
    f = Story()
    _dup_scenario(f, [T1, T2, T3], "600.00")  # another trainee set
    assert run([payments.DuplicatePayment()], f.items) == []
    g = Story()
    _dup_scenario(g, [T1, T2], "599.99")  # another amount
    assert run([payments.DuplicatePayment()], g.items) == []
    h = Story()  # two payments under one claim are pieces, not duplicates
    h.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.00", class_id="class-1")
    h.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", "300.00")
    h.pay("pay-2", "claim-1", "2024-02-09T10:00:00+08:00", "300.00")
    assert run([payments.DuplicatePayment()], h.items) == []
    k = Story()  # awards name no class
    k.claim_for("award-1", "2024-01-26T10:00:00+08:00", [], "50000.00", kind="award")
    k.claim_for("award-2", "2024-06-26T10:00:00+08:00", [], "50000.00", kind="award")
    k.pay("pay-1", "award-1", "2024-02-08T10:00:00+08:00", "50000.00")
    k.pay("pay-2", "award-2", "2024-07-08T10:00:00+08:00", "50000.00")
    assert run([payments.DuplicatePayment()], k.items) == []


# ------------------------------------------------------------------ split_payment


def test_split_payment_pieces_of_one_class_within_a_week() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-03-01T10:00:00+08:00", [T1, T2], "60000.00", class_id="class-1")
    f.claim_for("claim-2", "2024-03-01T11:00:00+08:00", [T3], "20000.00", class_id="class-1")
    f.pay("pay-1", "claim-1", "2024-03-04T10:00:00+08:00", "30000.00")
    f.pay("pay-2", "claim-1", "2024-03-08T10:00:00+08:00", "30000.00")
    f.pay("pay-3", "claim-2", "2024-03-11T10:00:00+08:00", "20000.00")  # 7 days after pay-1
    drafts = run([payments.SplitPayment()], f.items)
    assert [d.subject for d in drafts] == [{"payee_id": INST}] * 2  # raised, then grown
    first, last = drafts
    assert first.raised_at == last.raised_at == "2024-03-08T10:00:00+08:00"
    head = last.evidence[0]
    assert head["obligation"] == "class-1" and head["payment_ids"] == ["pay-1", "pay-2", "pay-3"]
    assert (head["largest_window_total"], head["threshold"], head["window_days"]) == ("80000.00", "50000.00", 7)
    assert last.severity == "medium"
    assert_names_records(drafts, f)


def test_split_payment_awards_without_class_are_one_obligation() -> None:
    f = Story()
    f.claim_for("award-1", "2024-03-01T10:00:00+08:00", [], "40000.00", kind="award")
    f.claim_for("award-2", "2024-03-01T10:05:00+08:00", [], "40000.00", kind="award")
    f.pay("pay-1", "award-1", "2024-03-04T10:00:00+08:00", "40000.00")
    f.pay("pay-2", "award-2", "2024-03-05T10:00:00+08:00", "40000.00")
    drafts = run([payments.SplitPayment()], f.items)
    assert [d.evidence[0]["obligation"] for d in drafts] == ["no-class"]


def test_split_payment_near_misses() -> None:
    f = Story()  # three distinct classes with their own trainees, one week, 40k each
    for i, t in enumerate([T1, T2, T3], 1):
        f.claim_for(f"claim-{i}", "2024-03-01T10:00:00+08:00", [t], "40000.00", class_id=f"class-{i}")
        f.pay(f"pay-{i}", f"claim-{i}", f"2024-03-0{i + 3}T10:00:00+08:00", "40000.00")
    # one class paid in two pieces more than a week apart
    f.claim_for("claim-9", "2024-04-01T10:00:00+08:00", [T1], "60000.00", class_id="class-9")
    f.pay("pay-9a", "claim-9", "2024-04-01T10:00:00+08:00", "30000.00")
    f.pay("pay-9b", "claim-9", "2024-04-08T10:00:01+08:00", "30000.00")
    # one big payment (not a piece) and a small one for the same class
    f.claim_for("claim-8", "2024-05-01T10:00:00+08:00", [T2], "70000.00", class_id="class-8")
    f.pay("pay-8a", "claim-8", "2024-05-02T10:00:00+08:00", "50000.00")
    f.pay("pay-8b", "claim-8", "2024-05-03T10:00:00+08:00", "20000.00")
    # the same class to two payees
    f.claim_for("claim-7", "2024-06-01T10:00:00+08:00", [T3], "60000.00", class_id="class-7")
    f.pay("pay-7a", "claim-7", "2024-06-02T10:00:00+08:00", "30000.00")
    f.pay("pay-7b", "claim-7", "2024-06-03T10:00:00+08:00", "30000.00", payee=INST2)
    assert run([payments.SplitPayment()], f.items) == []


def test_split_payment_late_piece_earlier_in_time_still_counts() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-03-01T10:00:00+08:00", [T1], "90000.00", class_id="class-1")
    f.pay("pay-2", "claim-1", "2024-03-10T10:00:00+08:00", "30000.00")
    f.pay("pay-1", "claim-1", "2024-03-05T10:00:00+08:00", "30000.00")  # arrives after, dated before
    drafts = run([payments.SplitPayment()], f.items)
    assert len(drafts) == 1 and drafts[0].evidence[0]["payment_ids"] == ["pay-1", "pay-2"]


# ------------------------------------------------------------------ notice_skipped


def _paid_after_notice(start: str, end: str, paid: str, objections: int = 0) -> list[AlertDraft]:
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.notice("claim-1", start, end, objections)
    f.pay("pay-1", "claim-1", paid)
    return run([payments.NoticeSkipped()], f.items)


def test_notice_seven_calendar_days_inclusive_is_enough() -> None:
    assert _paid_after_notice("2024-01-30", "2024-02-05", "2024-02-06T00:05:00+08:00") == []
    assert _paid_after_notice("2024-01-30", "2024-02-06", "2024-02-08T10:00:00+08:00") == []  # the example


def test_notice_too_short() -> None:
    drafts = _paid_after_notice("2024-01-30", "2024-02-04", "2024-02-06T10:00:00+08:00")
    assert [d.subject for d in drafts] == [{"payment_id": "pay-1"}]
    ev = drafts[0].evidence[0]
    assert ev["reasons"] == ["notice_too_short"]
    assert (ev["notice_days"], ev["notice_days_min"], ev["notice_record"]) == (6, 7, "notice-claim-1-1")
    assert drafts[0].severity == "medium"


def test_notice_paid_on_its_end_date_in_local_time() -> None:
    # 2024-02-05T17:00Z is 2024-02-06 01:00 in Beijing: paid on the end date
    drafts = _paid_after_notice("2024-01-30", "2024-02-06", "2024-02-06T01:00:00+08:00")
    assert drafts[0].evidence[0]["reasons"] == ["paid_before_notice_ended"]
    assert drafts[0].evidence[0]["paid_on"] == "2024-02-06"
    # 2024-02-06T23:30-01:00 is 2024-02-07 00:30 UTC but local 2024-02-06: still the end date
    drafts = _paid_after_notice("2024-01-30", "2024-02-06", "2024-02-06T23:30:00-01:00")
    assert drafts[0].evidence[0]["reasons"] == ["paid_before_notice_ended"]


def test_notice_objections_stood_then_a_clean_renotice() -> None:
    drafts = _paid_after_notice("2024-01-30", "2024-02-06", "2024-02-08T10:00:00+08:00", objections=2)
    assert drafts[0].evidence[0]["reasons"] == ["objections_stood"] and drafts[0].severity == "high"
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.notice("claim-1", "2024-01-30", "2024-02-06", objections=1)
    f.notice("claim-1", "2024-02-10", "2024-02-16", objections=0, n=2)
    f.pay("pay-1", "claim-1", "2024-02-17T10:00:00+08:00")
    assert run([payments.NoticeSkipped()], f.items) == []


def test_notice_none_at_all_and_one_for_another_claim() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.notice("claim-2", "2024-01-01", "2024-01-10")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00")
    drafts = run([payments.NoticeSkipped()], f.items)
    assert drafts[0].evidence[0]["reasons"] == ["no_notice"] and drafts[0].severity == "high"
    assert_names_records(drafts, f)


# ------------------------------------------------------------------ unreconciled_outflow


def test_unreconciled_line_without_payment_is_judged_when_it_arrives() -> None:
    """Payments precede the bank's debit for them (causal order), so a line that
    matches no earlier payment is raised at once, also when it is the feed's last."""
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", "300.00", bank_ref="BR-1")
    f.bank("bank-1", "2024-02-09", "-300.00", "BR-1")
    det = reconciliation.UnreconciledOutflow()
    assert run([det], f.items, finish=False) == []
    f.bank("bank-2", "2024-02-09", "-45000.00", "BR-X", counterparty="6222029999")
    drafts = det.observe(f.items[-1])
    assert [d.subject for d in drafts] == [{"bank_ref": "BR-X"}]
    d = drafts[0]
    assert d.evidence[0]["reason"] == "no_payment" and d.evidence[0]["bank_line_record"] == "bank-2"
    assert d.severity == "high"
    assert d.raised_at == f.items[-1].record["at"]
    # the account was seen paying a 320500 payment: its pack's citations
    assert d.policy == ["苏府办〔2017〕372号 七(四)", DEFAULT_CITE]
    assert_names_records(drafts, f)


def test_unreconciled_matched_by_amount_account_and_date_raises_nothing() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", "300.00", bank_ref="TREASURY-77")
    f.bank("bank-1", "2024-02-13", "-300.00", "BANK-REF-OTHER")  # 5 days after payment
    f.bank("bank-in", "2024-02-13", "1000.00", "IN-1")  # an inflow: not this alert's business
    f.tick("2024-03-01T08:00:00+08:00")
    assert run(reconciliation.detectors(), f.items) == []


def test_unreconciled_fallback_outside_the_window_raises() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", "300.00", bank_ref="TREASURY-77")
    f.bank("bank-1", "2024-02-14", "-300.00", "BANK-REF-OTHER")  # 6 days after payment
    drafts = run(reconciliation.detectors(), f.items)  # judged by finish(): end of feed
    assert [d.subject for d in drafts] == [{"bank_ref": "BANK-REF-OTHER"}]
    assert drafts[0].severity == "medium"


def test_unreconciled_line_before_its_payment_is_raised_and_named_by_the_payment_later() -> None:
    """Out of causal order (a bank debit recorded before its payment order) the
    line is raised when it arrives; the payment that later carries its bank_ref
    is matched in the reconciliation report, and the alert stays for the
    inspector to dismiss with that reason (alerts are never withdrawn)."""
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.bank("bank-1", "2024-02-09", "-300.00", "BR-1")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", "300.00", bank_ref="BR-1")
    f.tick("2024-03-01T08:00:00+08:00")
    drafts = run(reconciliation.detectors(), f.items)
    assert [d.subject for d in drafts] == [{"bank_ref": "BR-1"}]
    assert drafts[0].evidence[0]["reason"] == "no_payment"


def test_unreconciled_extra_debit_on_a_used_reference() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", "300.00", bank_ref="BR-1")
    f.bank("bank-1", "2024-02-09", "-300.00", "BR-1")
    f.bank("bank-2", "2024-02-10", "-300.00", "BR-1")
    drafts = run(reconciliation.detectors(), f.items)
    assert len(drafts) == 1 and drafts[0].subject == {"bank_ref": "BR-1"}
    assert drafts[0].evidence == [{
        "bank_line_record": "bank-2", "bank_ref": "BR-1", "account": FUND, "amount": "-300.00",
        "counterparty_account": ACC, "value_date": "2024-02-10", "reason": "reference_taken",
    }]


def test_unreconciled_citations_follow_the_account() -> None:
    f = Story()
    f.bank("bank-1", "2024-02-09", "-300.00", "BR-1")  # SKILLFUND-320500: the label names the pack
    f.bank("bank-2", "2024-02-09", "-5.00", "BR-2", account="FUND-ACCOUNT-7")
    drafts = latest(run(reconciliation.detectors(), f.items))
    assert drafts["unreconciled_outflow|bank_ref=BR-1"].policy == ["苏府办〔2017〕372号 七(四)", DEFAULT_CITE]
    assert drafts["unreconciled_outflow|bank_ref=BR-2"].policy == [DEFAULT_CITE]  # never seen paired


# ------------------------------------------------------------------ end to end


def test_through_a_real_ledger_and_its_feed() -> None:
    """The records these tests build are ones the ledger accepts, and the
    detectors read the ledger's own canonical feed the same way."""
    from ledger.application import Ledger

    sc = Story()
    sc.appropriate()
    sc.proj("proj-a")
    sc.klass("class-a", "proj-a", start="2024-01-15")
    sc.review("class-a")
    for t in (T1, T2):
        sc.enroll("class-a", t)
    sc.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.00", class_id="class-a")
    sc.review_claim("claim-1", "2024-01-29T16:00:00+08:00", amount="600.00")
    sc.notice("claim-1", "2024-01-30", "2024-02-06")
    sc.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", "600.00", bank_ref="BR-1")
    sc.bank("bank-1", "2024-02-09", "-600.00", "BR-1")
    sc.status("reg-1", "2024-02-20T09:00:00+08:00", T3, "deceased", "2023-01-01")  # on no claim
    # the same class and trainees claimed again, reviewed by its handler, paid at once
    sc.claim_for("claim-2", "2024-03-01T10:00:00+08:00", [T2, T1], "600.00", class_id="class-a")
    sc.review_claim("claim-2", "2024-03-04T16:00:00+08:00", amount="600.00", reviewer="officer-04")
    sc.pay("pay-2", "claim-2", "2024-03-08T10:00:00+08:00", "600.00", bank_ref="BR-2")
    sc.bank("bank-2", "2024-03-09", "-650.00", "BR-2")
    sc.tick("2024-04-01T09:00:00+08:00")
    with tempfile.TemporaryDirectory() as d:
        ledger = Ledger(env={"LEDGER_PERSISTENCE_MODULE": "eventsourcing.sqlite",
                             "LEDGER_SQLITE_DBNAME": str(Path(d) / "ledger.sqlite")})
        submit_all(ledger, sc)
        items = list(feed.read(ledger.recorder))
    accepted = [i for i in items if isinstance(i, feed.Accepted)]
    assert len(accepted) == len(sc.records)
    drafts = latest(run(all_detectors(), items))
    assert sorted((d.kind, tuple(sorted(d.subject.items()))) for d in drafts.values()) == sorted([
        ("duplicate_payment", (("payment_id", "pay-2"),)),
        ("notice_skipped", (("payment_id", "pay-2"),)),
        ("repeat_subsidy", (("claim_id", "claim-2"), ("trainee_id", T1))),
        ("repeat_subsidy", (("claim_id", "claim-2"), ("trainee_id", T2))),
        ("segregation_of_duties", (("claim_id", "claim-2"),)),
        ("unreconciled_outflow", (("bank_ref", "BR-2"),)),
    ])
    assert all(d.policy == SUZHOU_CITES for d in drafts.values())
    assert_well_formed(list(drafts.values()), sc)


MY_KINDS = {k for d in all_detectors() for k in d.kinds}


def test_simulated_year_finds_every_injected_case_and_nothing_else() -> None:
    """The simulator's ordinary noise (two classes a year, several payments a week
    for distinct classes, pensions after the class, shared 以工代训 workers ≤ 6
    months, inflows on the statement…) raises nothing; its injected cases of
    these kinds are all found. Labels are read only here, never by a detector."""
    from ops.simulate import simulate

    sim = simulate(seed=11, classes=40, fraud_rate=0.4, region="420100")
    sc = Story()
    sc.records.clear()
    sc.items.clear()
    for rec in sim.records:
        sc.add(rec)
    drafts = latest(run(all_detectors(), sc.items)).values()
    labels = [lb for lb in sim.labels if lb["kind"] in MY_KINDS]
    assert len({lb["kind"] for lb in labels}) >= 6

    def hit(d: AlertDraft, lb: dict[str, Any]) -> bool:
        return d.kind == lb["kind"] and all(d.subject.get(k) == v for k, v in lb["subject"].items())

    missed = [lb for lb in labels if not any(hit(d, lb) for d in drafts)]
    false = [(d.kind, d.subject, d.summary) for d in drafts if not any(hit(d, lb) for lb in labels)]
    assert missed == [] and false == []
    clean = simulate(seed=12, classes=30, fraud_rate=0.0, region="320500")
    sc = Story()
    sc.records.clear()
    sc.items.clear()
    for rec in clean.records:
        sc.add(rec)
    assert run(all_detectors(), sc.items) == []
