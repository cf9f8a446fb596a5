"""Claim detectors: repeat_subsidy, ineligible_trainee, excess_claim,
work_for_training_overrun, segregation_of_duties.

Each kind gets a small hand-built scenario that raises it and a near miss
that must not. Feed items are built directly as ``projections.feed.Accepted``
with canonical-looking records (like spec/examples.jsonl).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from scenario import Scenario, examples

from detectors import claims, payments, reconciliation
from detectors.base import AlertDraft
from ledger.ids import make_credit_code, make_resident_id
from ledger.policy import all_packs
from projections.feed import Accepted

INST = make_credit_code("91320505MA1X2Y3W4")
T1 = make_resident_id("320505", date(1990, 1, 1), 11)
T2 = make_resident_id("320505", date(1991, 2, 2), 22)
T3 = make_resident_id("320506", date(1985, 3, 3), 33)
SUZHOU_CITES = ["苏府办〔2017〕372号 七(四)", "skillfund record contract v1, Policy defaults"]


class Story(Scenario):
    """scenario.Scenario plus the money side: reviews, notices, payments, bank
    lines, registry statuses. Record ids are chosen by the test so evidence can
    be checked by name (``rec-<claim_id>``, ``rev-<claim_id>-<n>``, ``rec-<payment_id>``)."""

    def __init__(self, region: str = "320505") -> None:
        super().__init__(region)
        self.inst = self.institution(institution_id=INST)

    @property
    def ids(self) -> set[str]:
        return {r["id"] for r in self.records}

    def proj(self, project_id: str, occ: str = "4-10-01-05", level: int = 5, per: str = "300.00") -> str:
        return self.project(project_id=project_id, occupation_code=occ, level=level, subsidy=per)

    def klass(self, class_id: str, project_id: str, start: str = "2024-01-15",
              at: str = "2024-01-08T10:00:00+08:00") -> str:
        return self.class_opened(self.inst, project_id, class_id=class_id, days=[start], at=at)

    def claim_for(self, claim_id: str, at: str, trainees: list[str], amount: str = "300.00", *,
                  kind: str = "training", class_id: str | None = None, months: int | None = None,
                  handled_by: str = "officer-04", region: str | None = None) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "type": "claim", "id": f"rec-{claim_id}", "at": at, "claim_id": claim_id,
            "region": region or self.region, "claimant_id": INST, "claimant_kind": "institution",
            "subsidy_kind": kind,
        }
        if class_id is not None:
            rec["class_id"] = class_id
        rec["trainee_ids"] = list(trainees)
        if months is not None:
            rec["months"] = months
        rec["amount"] = amount
        rec["handled_by"] = handled_by
        self.add(rec)
        return rec

    def review_claim(self, claim_id: str, at: str, decision: str = "approved", amount: str = "300.00",
                     reviewer: str = "officer-09", n: int = 1) -> str:
        self.add({
            "type": "claim_reviewed", "id": f"rev-{claim_id}-{n}", "at": at, "claim_id": claim_id,
            "reviewer_id": reviewer, "decision": decision,
            "approved_amount": amount if decision == "approved" else "0.00",
        })
        return self.last["id"]

    def notice(self, claim_id: str, start: str, end: str, objections: int = 0, n: int = 1) -> str:
        self.add({"type": "notice", "id": f"notice-{claim_id}-{n}", "at": f"{start}T09:00:00+08:00",
                  "claim_id": claim_id, "start": start, "end": end, "objections": objections})
        return self.last["id"]

    def pay(self, pay_id: str, claim_id: str, at: str, amount: str = "300.00", *, payee: str = INST,
            approved_by: str = "officer-15", region: str | None = None,
            account: str = "6222020000123456789", bank_ref: str | None = None,
            fund_source: str = "ui_surplus") -> str:
        self.add({
            "type": "payment", "id": f"rec-{pay_id}", "at": at, "payment_id": pay_id, "claim_id": claim_id,
            "fund_source": fund_source, "region": region or self.region, "amount": amount, "payee_id": payee,
            "payee_account": account, "approved_by": approved_by, "bank_ref": bank_ref or f"BR-{pay_id}",
        })
        return self.last["id"]

    def bank(self, line_id: str, value_date: str, amount: str, bank_ref: str, *,
             counterparty: str = "6222020000123456789", account: str = "SKILLFUND-320500",
             at: str | None = None) -> str:
        self.add({"type": "bank_statement", "id": line_id, "at": at or f"{value_date}T00:00:00+08:00",
                  "account": account, "amount": amount, "counterparty_account": counterparty,
                  "bank_ref": bank_ref, "value_date": value_date})
        return line_id

    def status(self, sid: str, at: str, trainee: str, status: str, since: str) -> str:
        self.add({"type": "person_status", "id": sid, "at": at, "trainee_id": trainee,
                  "status": status, "since": since})
        return sid

    def appropriate(self, at: str = "2024-01-02T09:00:00+08:00", amount: str = "5000000.00",
                    fund_source: str = "ui_surplus") -> str:
        self.add({"type": "appropriation", "id": f"appr-{len(self.records)}", "at": at,
                  "fund_source": fund_source, "region": self.region, "amount": amount,
                  "document": "苏府办〔2017〕372号"})
        return self.last["id"]

    tick = appropriate  # an unrelated record that moves the data clock


def run(dets: list[Any], items: list[Accepted], *, finish: bool = True) -> list[AlertDraft]:
    """Every draft, detectors in the given order per item; then end-of-feed hooks."""
    out: list[AlertDraft] = []
    for it in items:
        for d in dets:
            out.extend(d.observe(it))
    if finish:
        for d in dets:
            if hasattr(d, "finish"):
                out.extend(d.finish())
    return out


def only(drafts: list[AlertDraft], kind: str) -> list[AlertDraft]:
    return [d for d in drafts if d.kind == kind]


def latest(drafts: list[AlertDraft]) -> dict[str, AlertDraft]:
    """Like the engine: the last draft per (kind, subject)."""
    out: dict[str, AlertDraft] = {}
    for d in drafts:
        out[d.key] = d
    return out


def assert_well_formed(drafts: list[AlertDraft], story: Scenario) -> None:
    """Evidence names only record ids that exist in the scenario; policy is cited; data time."""
    ids = {r["id"] for r in story.records}
    valid_cites = {c for p in all_packs().values() for k in p.alert_citations.values() for c in k}
    for d in drafts:
        assert d.policy and set(d.policy) <= valid_cites | {"skillfund record contract v1, Policy defaults"}
        assert d.evidence
        for ev in d.evidence:
            for key, val in ev.items():
                if key.endswith("_record") and val is not None:
                    assert val in ids, f"{d.kind} evidence {key}={val} names no record"
                if key.endswith("_records"):
                    assert set(val) <= ids
        assert d.raised_at in {r["at"] for r in story.records}
        assert d.detector.startswith(d.detector.split(".")[0]) and d.detector.endswith("/1")


def all_detectors() -> list[Any]:
    return claims.detectors() + payments.detectors() + reconciliation.detectors()


# ------------------------------------------------------------------ clean example


def test_clean_example_raises_nothing() -> None:
    sc = examples()
    assert len(sc.items) == 21 and any(i.type == "person_status" for i in sc.items)
    assert {i.pack for i in sc.items if i.type in ("claim", "payment", "enrollment")} == {"320500"}
    assert run(all_detectors(), sc.items) == []


def test_detectors_are_fresh_and_named() -> None:
    a, b = claims.detectors(), claims.detectors()
    assert [d.name for d in a] == [
        "claims.repeat_subsidy", "claims.ineligible_trainee", "claims.excess_claim",
        "claims.work_for_training_overrun", "claims.segregation_of_duties",
    ]
    assert all(x is not y for x, y in zip(a, b))
    kinds = [k for d in all_detectors() for k in d.kinds]
    assert sorted(kinds) == sorted([
        "repeat_subsidy", "ineligible_trainee", "excess_claim", "work_for_training_overrun",
        "segregation_of_duties", "duplicate_payment", "split_payment", "notice_skipped",
        "unreconciled_outflow",
    ])


# ------------------------------------------------------------------ repeat_subsidy


def _two_projects(f: Story, level_b: int = 5, occ_b: str = "4-10-01-05") -> None:
    f.proj("proj-a")
    f.proj("proj-b", occ=occ_b, level=level_b)
    f.klass("class-a", "proj-a", start="2024-01-15")
    f.klass("class-b", "proj-b", start="2024-03-15", at="2024-03-01T10:00:00+08:00")


def test_repeat_same_occupation_and_level_raises_on_the_later_claim() -> None:
    f = Story()
    _two_projects(f)  # another project, same occupation and level
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.00", class_id="class-a")
    f.review_claim("claim-1", "2024-01-29T16:00:00+08:00", amount="600.00")
    f.claim_for("claim-2", "2024-03-26T10:00:00+08:00", [T1, T3], "600.00", class_id="class-b")
    drafts = only(run([claims.RepeatSubsidy()], f.items), "repeat_subsidy")
    assert len(drafts) == 1
    d = drafts[0]
    assert d.subject == {"trainee_id": T1, "claim_id": "claim-2"}  # not T3, not claim-1
    assert d.severity == "high"
    assert d.raised_at == "2024-03-26T10:00:00+08:00"
    ev = d.evidence[0]
    assert ev["reason"] == "same_occupation_level"
    assert (ev["earlier_claim_id"], ev["earlier_approval_record"]) == ("claim-1", "rev-claim-1-1")
    assert (ev["occupation_code"], ev["level"]) == ("4-10-01-05", "5")
    assert d.policy == ["苏府办〔2017〕372号 七(四)", "skillfund record contract v1, Policy defaults"]
    assert_well_formed(drafts, f)


def test_repeat_near_miss_other_level_and_two_classes_a_year() -> None:
    f = Story()
    _two_projects(f, level_b=4)  # same occupation, next level up: a new subsidy
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], class_id="class-a")
    f.review_claim("claim-1", "2024-01-29T16:00:00+08:00")
    f.claim_for("claim-2", "2024-03-26T10:00:00+08:00", [T1], class_id="class-b")
    f.review_claim("claim-2", "2024-03-29T16:00:00+08:00")
    assert run([claims.RepeatSubsidy()], f.items) == []


def test_repeat_judged_again_when_the_earlier_claim_is_approved_later() -> None:
    f = Story()
    _two_projects(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], class_id="class-a")
    f.claim_for("claim-2", "2024-03-26T10:00:00+08:00", [T1], class_id="class-b")
    f.review_claim("claim-2", "2024-03-27T16:00:00+08:00")  # the later one approved first: nothing yet
    f.review_claim("claim-1", "2024-03-28T09:00:00+08:00")
    det = claims.RepeatSubsidy()
    assert run([det], f.items[:-1]) == []
    drafts = det.observe(f.items[-1])
    assert [d.subject for d in drafts] == [{"trainee_id": T1, "claim_id": "claim-2"}]
    assert drafts[0].raised_at == "2024-03-28T09:00:00+08:00"


def test_repeat_pending_or_rejected_earlier_claims_do_not_count() -> None:
    f = Story()
    _two_projects(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], class_id="class-a")
    f.review_claim("claim-1", "2024-01-29T16:00:00+08:00", decision="rejected")
    f.claim_for("claim-2", "2024-03-26T10:00:00+08:00", [T1], class_id="class-b")
    assert run([claims.RepeatSubsidy()], f.items) == []


def _four_occupations(f: Story, years: tuple[str, ...] = ("2024",) * 4) -> None:
    for i, year in enumerate(years, 1):
        f.proj(f"proj-{i}", occ=f"4-10-01-0{i}")
        f.klass(f"class-{i}", f"proj-{i}", start=f"{year}-0{i + 1}-01", at=f"{year}-0{i}-20T10:00:00+08:00")
        f.claim_for(f"claim-{i}", f"{year}-0{i + 1}-20T10:00:00+08:00", [T1], class_id=f"class-{i}")


def test_repeat_fourth_training_subsidy_in_a_year() -> None:
    f = Story()
    _four_occupations(f)
    for i in (1, 2, 3):
        f.review_claim(f"claim-{i}", "2024-06-01T10:00:00+08:00")
    drafts = only(run([claims.RepeatSubsidy()], f.items), "repeat_subsidy")
    # claim-4 was filed before the reviews: raised when the third earlier claim is approved
    assert [d.subject for d in drafts] == [{"trainee_id": T1, "claim_id": "claim-4"}]
    ev = drafts[0].evidence[0]
    assert ev["reason"] == "yearly_limit" and ev["year"] == 2024 and ev["limit"] == 3
    assert ev["earlier_claim_ids"] == ["claim-1", "claim-2", "claim-3"]
    assert drafts[0].severity == "medium"
    assert drafts[0].raised_at == "2024-06-01T10:00:00+08:00"
    assert_well_formed(drafts, f)


def test_repeat_limit_counts_the_claims_calendar_year_in_its_own_offset() -> None:
    f = Story()
    _four_occupations(f)
    for i in (1, 2, 3):
        f.review_claim(f"claim-{i}", "2024-06-01T10:00:00+08:00")
    # 2025-01-01 00:30 in Beijing is 2024 in UTC: the claim's own offset decides
    f.proj("proj-5", occ="4-10-01-09")
    f.klass("class-5", "proj-5", start="2024-12-30", at="2024-12-01T10:00:00+08:00")
    f.claim_for("claim-5", "2025-01-01T00:30:00+08:00", [T2, T1], class_id="class-5")
    drafts = only(run([claims.RepeatSubsidy()], f.items), "repeat_subsidy")
    assert [d.subject["claim_id"] for d in drafts] == ["claim-4"]


def test_repeat_near_miss_three_a_year_and_a_fourth_next_year() -> None:
    f = Story()
    _four_occupations(f, years=("2024", "2024", "2024", "2025"))
    for i in (1, 2, 3, 4):
        f.review_claim(f"claim-{i}", "2025-06-01T10:00:00+08:00")
    assert run([claims.RepeatSubsidy()], f.items) == []


def test_repeat_rejected_subject_raises_nothing() -> None:
    f = Story()
    _two_projects(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], class_id="class-a")
    f.claim_for("claim-2", "2024-03-26T10:00:00+08:00", [T1], class_id="class-b")
    f.review_claim("claim-2", "2024-03-27T16:00:00+08:00", decision="rejected")
    f.review_claim("claim-1", "2024-03-28T09:00:00+08:00")
    assert run([claims.RepeatSubsidy()], f.items) == []


# ------------------------------------------------------------------ ineligible_trainee


def _class_scenario(f: Story) -> None:
    f.proj("proj-a")
    f.klass("class-a", "proj-a", start="2024-01-15")


def test_ineligible_deceased_before_class_start() -> None:
    f = Story()
    _class_scenario(f)
    f.status("reg-1", "2024-01-05T09:00:00+08:00", T2, "deceased", "2023-12-31")
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.00", class_id="class-a")
    drafts = run([claims.IneligibleTrainee()], f.items)
    assert [d.subject for d in drafts] == [{"trainee_id": T2, "claim_id": "claim-1"}]
    d = drafts[0]
    assert d.kind == "ineligible_trainee" and d.severity == "critical"
    assert d.evidence == [{
        "claim_id": "claim-1", "claim_record": "rec-claim-1", "class_id": "class-a",
        "class_start_date": "2024-01-15", "status": "deceased", "since": "2023-12-31",
        "status_record": "reg-1",
    }]
    assert_well_formed(drafts, f)


def test_ineligible_status_arriving_after_the_claim_still_raises() -> None:
    f = Story()
    _class_scenario(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.00", class_id="class-a")
    f.status("reg-1", "2024-03-01T09:00:00+08:00", T1, "pensioner", "2024-01-15")  # on the start date
    drafts = run([claims.IneligibleTrainee()], f.items)
    assert [d.subject for d in drafts] == [{"trainee_id": T1, "claim_id": "claim-1"}]
    assert drafts[0].severity == "high"
    assert drafts[0].raised_at == "2024-03-01T09:00:00+08:00"
    assert_well_formed(drafts, f)


def test_ineligible_near_miss_pension_after_class_start() -> None:
    f = Story()
    _class_scenario(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.00", class_id="class-a")
    f.status("reg-1", "2024-03-01T09:00:00+08:00", T2, "pensioner", "2024-01-16")
    f.status("reg-2", "2024-03-01T09:00:00+08:00", T3, "deceased", "2020-01-01")  # not on the claim
    assert run([claims.IneligibleTrainee()], f.items) == []


# ------------------------------------------------------------------ excess_claim


def test_excess_claim_above_standard_by_one_fen() -> None:
    f = Story()
    _class_scenario(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.01", class_id="class-a")
    drafts = run([claims.ExcessClaim()], f.items)
    assert [d.subject for d in drafts] == [{"claim_id": "claim-1"}]
    ev = drafts[0].evidence[0]
    assert (ev["amount"], ev["standard_total"], ev["excess"], ev["trainees"]) == ("600.01", "600.00", "0.01", 2)
    assert drafts[0].severity == "low"
    assert_well_formed(drafts, f)


def test_excess_claim_counts_distinct_trainees_and_scales_severity() -> None:
    f = Story()
    _class_scenario(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T1, T2], "900.00", class_id="class-a")
    f.claim_for("claim-2", "2024-01-27T10:00:00+08:00", [T3], "900.00", class_id="class-a")
    drafts = latest(run([claims.ExcessClaim()], f.items))
    assert drafts["excess_claim|claim_id=claim-1"].evidence[0]["trainee_ids_listed"] == 3
    assert drafts["excess_claim|claim_id=claim-1"].severity == "medium"  # 900 vs 600
    assert drafts["excess_claim|claim_id=claim-2"].severity == "critical"  # 900 vs 300


def test_excess_claim_near_miss_at_standard_and_other_kinds() -> None:
    f = Story()
    _class_scenario(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1, T2], "600.00", class_id="class-a")
    f.claim_for("claim-2", "2024-01-26T11:00:00+08:00", [T1, T2], "5000.00", kind="appraisal", class_id="class-a")
    f.claim_for("claim-3", "2024-01-26T12:00:00+08:00", [T1], "9000.00", kind="work_for_training", months=3)
    assert run([claims.ExcessClaim()], f.items) == []


# ------------------------------------------------------------------ work_for_training_overrun


def _wft(f: Story, claim_id: str, months: int, at: str, trainees: list[str]) -> None:
    f.claim_for(claim_id, at, trainees, f"{500 * months * len(trainees)}.00", kind="work_for_training", months=months)
    f.review_claim(claim_id, at.replace("T10", "T15"), amount=f"{500 * months * len(trainees)}.00")


def test_work_for_training_overrun_when_paid_months_pass_six() -> None:
    f = Story()
    _wft(f, "wft-1", 4, "2024-02-01T10:00:00+08:00", [T1, T2])
    f.pay("pay-1", "wft-1", "2024-02-20T10:00:00+08:00", "4000.00")
    f.pay("pay-1b", "wft-1", "2024-02-21T10:00:00+08:00", "0.01")  # same claim: counted once
    _wft(f, "wft-2", 3, "2024-07-01T10:00:00+08:00", [T1])
    assert run([claims.WorkForTrainingOverrun()], f.items) == []  # claimed, not paid yet
    f.pay("pay-2", "wft-2", "2024-07-20T10:00:00+08:00", "1500.00")
    drafts = run([claims.WorkForTrainingOverrun()], f.items)
    assert [d.subject for d in drafts] == [{"trainee_id": T1}]
    d = drafts[0]
    assert d.raised_at == "2024-07-20T10:00:00+08:00" and d.severity == "medium"
    assert d.evidence[-1] == {"months_paid": 7, "months_max": 6}
    assert [e["payment_record"] for e in d.evidence[:-1]] == ["rec-pay-1", "rec-pay-2"]
    assert d.policy == ["苏府办〔2017〕372号 七(四)", "skillfund record contract v1, Policy defaults"]
    assert_well_formed(drafts, f)


def test_work_for_training_near_miss_exactly_six_months() -> None:
    f = Story()
    _wft(f, "wft-1", 3, "2024-02-01T10:00:00+08:00", [T1])
    f.pay("pay-1", "wft-1", "2024-02-20T10:00:00+08:00", "1500.00")
    _wft(f, "wft-2", 3, "2024-07-01T10:00:00+08:00", [T1])
    f.pay("pay-2", "wft-2", "2024-07-20T10:00:00+08:00", "1500.00")
    assert run([claims.WorkForTrainingOverrun()], f.items) == []


# ------------------------------------------------------------------ segregation_of_duties


def test_segregation_handled_and_reviewed() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], handled_by="officer-04", kind="skill_upgrade")
    f.review_claim("claim-1", "2024-01-29T16:00:00+08:00", reviewer="officer-04")
    drafts = run([claims.SegregationOfDuties()], f.items)
    assert [d.subject for d in drafts] == [{"claim_id": "claim-1"}]
    assert drafts[0].severity == "medium"
    assert drafts[0].evidence == [{
        "conflict": "handled_and_reviewed", "officer": "officer-04",
        "claim_record": "rec-claim-1", "review_record": "rev-claim-1-1",
    }]
    assert_well_formed(drafts, f)


def test_segregation_reviewed_and_approved_payment_then_all_three_roles() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], kind="skill_upgrade")
    f.review_claim("claim-1", "2024-01-29T16:00:00+08:00", reviewer="officer-09")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", approved_by="officer-09")
    drafts = run([claims.SegregationOfDuties()], f.items)
    assert len(drafts) == 1 and drafts[0].severity == "high"
    assert drafts[0].evidence[0]["conflict"] == "reviewed_and_approved_payment"
    assert drafts[0].evidence[0]["payment_record"] == "rec-pay-1"
    assert drafts[0].raised_at == "2024-02-08T10:00:00+08:00"
    assert_well_formed(drafts, f)

    g = Story()
    g.claim_for("claim-2", "2024-01-26T10:00:00+08:00", [T1], handled_by="officer-07", kind="skill_upgrade")
    g.review_claim("claim-2", "2024-01-29T16:00:00+08:00", reviewer="officer-07")
    g.pay("pay-2", "claim-2", "2024-02-08T10:00:00+08:00", approved_by="officer-07")
    drafts = latest(run([claims.SegregationOfDuties()], g.items))
    assert drafts["segregation_of_duties|claim_id=claim-2"].severity == "critical"
    assert len(drafts["segregation_of_duties|claim_id=claim-2"].evidence) == 2


def test_segregation_near_miss_three_officers() -> None:
    f = Story()
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], handled_by="officer-04", kind="skill_upgrade")
    f.review_claim("claim-1", "2024-01-28T16:00:00+08:00", decision="returned", reviewer="officer-09")
    f.review_claim("claim-1", "2024-01-29T16:00:00+08:00", reviewer="officer-10", n=2)
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", approved_by="officer-15")
    f.pay("pay-2", "claim-2-unknown", "2024-02-08T10:00:00+08:00", approved_by="officer-09")
    assert run([claims.SegregationOfDuties()], f.items) == []


# ------------------------------------------------------------------ determinism


@pytest.mark.parametrize("factory", [claims.detectors, payments.detectors, reconciliation.detectors])
def test_replay_gives_identical_drafts(factory: Any) -> None:
    f = Story()
    _two_projects(f)
    f.claim_for("claim-1", "2024-01-26T10:00:00+08:00", [T1], "900.00", class_id="class-a", handled_by="officer-09")
    f.review_claim("claim-1", "2024-01-29T16:00:00+08:00", amount="300.00")
    f.claim_for("claim-2", "2024-03-26T10:00:00+08:00", [T1], class_id="class-b")
    f.pay("pay-1", "claim-1", "2024-02-08T10:00:00+08:00", approved_by="officer-09")
    first, second = run(factory(), f.items), run(factory(), f.items)
    assert first == second
    # the same detector instance seeing the items again adds nothing new
    dets = factory()
    run(dets, f.items)
    assert run(dets, f.items) == []
