"""The simulator: deterministic, contract-shaped, causal, books that balance,
and labels that match what is in the records — no more, no less.

``audit()`` below is an independent, deliberately plain reading of the
contract's rule-based alert kinds (records.md, "Soft rules" and "Policy
defaults"). It is not the detectors: it only checks that the simulator
injected exactly what it labelled, so that the detectors' precision and
recall can be measured against the labels.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from ledger.ids import credit_code_problem, resident_id_problem
from ledger.money import parse_fen
from ledger.policy import ALERT_KINDS, pack_code_for
from ops.simulate import Simulation, simulate, write

MONEY = re.compile(r"^\d+(\.\d{1,2})?$")
SIGNED_MONEY = re.compile(r"^-?\d+(\.\d{1,2})?$")
MONEY_FIELDS = {
    "appropriation": ("amount",),
    "project": ("subsidy_per_trainee",),
    "claim": ("amount",),
    "claim_reviewed": ("approved_amount",),
    "payment": ("amount",),
    "recovery": ("amount",),
}
PERMITTED = {  # contract defaults (the seed packs agree)
    "training": {"ui_surplus", "employment_subsidy", "education_surcharge"},
    "living_allowance": {"employment_subsidy"},
    "work_for_training": {"ui_surplus", "employment_subsidy"},
    "award": {"employment_subsidy", "local_talent", "industry_development", "education_surcharge"},
}


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(seed=1, classes=60, fraud_rate=0.1)


@pytest.fixture(scope="module")
def clean() -> Simulation:
    return simulate(seed=7, classes=40, fraud_rate=0.0)


@pytest.fixture(scope="module")
def bad() -> Simulation:
    return simulate(seed=3, classes=30, fraud_rate=0.1, bad_rate=0.01)


def good_records(s: Simulation) -> list[dict]:
    """The records the ledger accepts: expected rejections left out, a re-sent record once.

    A conflict shares its type and id with an accepted original that came first."""
    reasons = {(r["type"], r["id"]): r["reason"] for r in s.expected_rejections}
    seen: set[tuple[str, str]] = set()
    out = []
    for r in s.records:
        key = (r["type"], r["id"])
        if key in seen:
            continue
        seen.add(key)
        if reasons.get(key, "conflict") == "conflict":
            out.append(r)
    return out


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --------------------------------------------------------------------------- audit


def _meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    k = math.pi / 180
    x = (lon2 - lon1) * k * math.cos((lat1 + lat2) / 2 * k)
    y = (lat2 - lat1) * k
    return 6_371_000 * math.hypot(x, y)


def audit(records: list[dict]) -> set[tuple[str, tuple]]:
    """(kind, subject items) for every rule-based alert the records call for."""
    found: set[tuple[str, tuple]] = set()

    def flag(kind: str, **subject: str) -> None:
        found.add((kind, tuple(sorted(subject.items()))))

    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_type[r["type"]].append(r)
    projects = {r["project_id"]: r for r in by_type["project"]}
    classes = {r["class_id"]: r for r in by_type["class_opened"]}
    venues = {}
    inst_history: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for r in by_type["institution"]:
        inst_history[r["institution_id"]].append((ts(r["at"]), r["status"]))
        for v in r["venues"]:
            venues[v["venue_id"]] = v

    def status_at(inst: str, at: datetime) -> str:
        st = "unknown"
        for when, s in sorted(inst_history[inst]):
            if when <= at:
                st = s
        return st

    claims = {r["claim_id"]: r for r in by_type["claim"]}
    reviews = {r["claim_id"]: r for r in by_type["claim_reviewed"]}
    notices = {r["claim_id"]: r for r in by_type["notice"]}
    payments = sorted(by_type["payment"], key=lambda r: ts(r["at"]))

    # unlisted_institution
    for c in classes.values():
        if status_at(c["institution_id"], ts(c["at"])) != "listed":
            flag("unlisted_institution", class_id=c["class_id"])
    for c in claims.values():
        if c.get("class_id") in classes:
            k = classes[c["class_id"]]
            if status_at(k["institution_id"], ts(c["at"])) != "listed":
                flag("unlisted_institution", class_id=k["class_id"])

    # excess_claim, segregation_of_duties
    for c in claims.values():
        if c["subsidy_kind"] == "training":
            p = projects[classes[c["class_id"]]["project_id"]]
            if parse_fen(c["amount"]) > parse_fen(p["subsidy_per_trainee"]) * len(c["trainee_ids"]):
                flag("excess_claim", claim_id=c["claim_id"])
        rv = reviews.get(c["claim_id"])
        if rv and rv["reviewer_id"] == c["handled_by"]:
            flag("segregation_of_duties", claim_id=c["claim_id"])
    for p in payments:
        rv = reviews.get(p["claim_id"])
        if rv and rv["reviewer_id"] == p["approved_by"]:
            flag("segregation_of_duties", claim_id=p["claim_id"])

    # notice_skipped
    for p in payments:
        n = notices.get(p["claim_id"])
        paid = ts(p["at"]).date()
        if (n is None or n["objections"] > 0 or paid <= date.fromisoformat(n["end"])
                or (date.fromisoformat(n["end"]) - date.fromisoformat(n["start"])).days < 7):
            flag("notice_skipped", payment_id=p["payment_id"])

    # repeat_subsidy, ineligible_trainee
    status = defaultdict(list)
    for r in by_type["person_status"]:
        status[r["trainee_id"]].append(date.fromisoformat(r["since"]))
    history: dict[str, list[tuple[int, str, object]]] = defaultdict(list)
    for c in sorted(claims.values(), key=lambda c: ts(c["at"])):
        if c["subsidy_kind"] != "training":
            continue
        k = classes[c["class_id"]]
        p = projects[k["project_id"]]
        year = ts(c["at"]).year
        for t in c["trainee_ids"]:
            earlier = [h for h in history[t] if h[0] == year]
            if any(h[1:] == (p["occupation_code"], p["level"]) for h in earlier) or len(earlier) >= 3:
                flag("repeat_subsidy", trainee_id=t, claim_id=c["claim_id"])
            if any(since <= date.fromisoformat(k["start_date"]) for since in status[t]):
                flag("ineligible_trainee", trainee_id=t, claim_id=c["claim_id"])
        if reviews.get(c["claim_id"], {}).get("decision") == "approved":
            for t in c["trainee_ids"]:
                history[t].append((year, p["occupation_code"], p["level"]))

    # teacher_double_booked
    by_teacher = defaultdict(list)
    for k in classes.values():
        for s in k["sessions"]:
            by_teacher[s["teacher_id"]].append((ts(s["start"]), ts(s["end"]), k["class_id"]))
    for teacher, ss in by_teacher.items():
        ss.sort()
        for i, (a0, a1, ca) in enumerate(ss):
            for b0, b1, cb in ss[i + 1:]:
                if b0 >= a1:
                    break
                if cb != ca:
                    flag("teacher_double_booked", teacher_id=teacher)

    # attendance-based kinds
    att_by_session = defaultdict(list)
    att_by_trainee = defaultdict(list)
    for a in by_type["attendance"]:
        att_by_session[(a["class_id"], a["session_id"])].append(a)
        att_by_trainee[a["trainee_id"]].append((ts(a["sign_in"]), ts(a["sign_out"]), a["class_id"]))
    for t, xs in att_by_trainee.items():
        xs.sort()
        for i, (a0, a1, ca) in enumerate(xs):
            for b0, b1, cb in xs[i + 1:]:
                if b0 >= a1:
                    break
                if cb != ca:
                    flag("overlapping_enrollment", trainee_id=t)

    suspicious: set[str] = set()
    for k in classes.values():
        v = venues[k["venue_id"]]
        modes = {s["session_id"]: s["mode"] for s in k["sessions"]}
        sign_ins = [a for s in k["sessions"] for a in att_by_session[(k["class_id"], s["session_id"])]]
        for a in sign_ins:
            far = modes[a["session_id"]] == "onsite" and _meters(v["lat"], v["lon"], a["lat"], a["lon"]) > 1000
            if a["face_score"] < 0.7 or far or a["device_id"] not in v["devices"]:
                suspicious.add(a["id"])
        by_dev = defaultdict(list)
        for a in sign_ins:
            by_dev[a["device_id"]].append((ts(a["sign_in"]), a["trainee_id"], a["id"]))
        for xs in by_dev.values():
            xs.sort()
            for i in range(2, len(xs)):
                w = xs[i - 2:i + 1]
                if (w[2][0] - w[0][0]).total_seconds() <= 2 and len({x[1] for x in w}) == 3:
                    suspicious.add(w[2][2])
        n_susp = sum(1 for a in sign_ins if a["id"] in suspicious)
        if n_susp >= 3 and n_susp >= 0.05 * len(sign_ins):
            flag("proxy_sign_in", class_id=k["class_id"])
        # venue capacity, hours delivered, verified attendance, inspections
        p = projects[k["project_id"]]
        standard = p["standard_hours"] * p["class_hour_minutes"] * 60
        delivered = 0.0
        scheduled = 0.0
        verified = Counter()
        for s in k["sessions"]:
            s0, s1 = ts(s["start"]), ts(s["end"])
            length = (s1 - s0).total_seconds()
            scheduled += length
            atts = att_by_session[(k["class_id"], s["session_id"])]
            if len({a["trainee_id"] for a in atts}) > v["capacity"]:
                flag("venue_over_capacity", class_id=k["class_id"])
            inside = sorted(max(0.0, (min(ts(a["sign_out"]), s1) - max(ts(a["sign_in"]), s0)).total_seconds())
                            for a in atts)
            med = 0.0
            if inside:
                mid = len(inside) // 2
                med = inside[mid] if len(inside) % 2 else (inside[mid - 1] + inside[mid]) / 2
            delivered += med
            if med < 0.9 * length:
                flag("shortened_hours", class_id=k["class_id"])
            for a, sec in zip(sorted(atts, key=lambda a: max(0.0, (min(ts(a["sign_out"]), s1) - max(ts(a["sign_in"]), s0)).total_seconds())), inside):
                if a["id"] not in suspicious:
                    verified[a["trainee_id"]] += sec
        if scheduled < standard or delivered < 0.9 * standard:
            flag("shortened_hours", class_id=k["class_id"])
        claimed = {t for c in claims.values() if c.get("class_id") == k["class_id"] and c["subsidy_kind"] == "training"
                   for t in c["trainee_ids"]}
        passed = {r["trainee_id"] for r in by_type["completion"] if r["class_id"] == k["class_id"] and r["passed"]}
        if any(verified[t] < 0.5 * standard for t in claimed | passed):
            flag("inflated_headcount", class_id=k["class_id"])
    for i in by_type["inspection"]:
        at = ts(i["at"])
        here = sum(1 for a in att_by_session[(i["class_id"], i["session_id"])]
                   if ts(a["sign_in"]) <= at < ts(a["sign_out"]))
        if i["present_count"] < 0.8 * here:
            flag("inflated_headcount", class_id=i["class_id"])

    # work_for_training_overrun (paid claims)
    paid_claims = {p["claim_id"] for p in payments}
    months = Counter()
    for c in claims.values():
        if c["subsidy_kind"] == "work_for_training" and c["claim_id"] in paid_claims:
            for t in c["trainee_ids"]:
                months[t] += c["months"]
    for t, m in months.items():
        if m > 6:
            flag("work_for_training_overrun", trainee_id=t)

    # duplicate_payment
    for i, p in enumerate(payments):
        c = claims[p["claim_id"]]
        for q in payments[:i]:
            d = claims[q["claim_id"]]
            if (q["payee_id"] == p["payee_id"] and q["amount"] == p["amount"] and d["claim_id"] != c["claim_id"]
                    and d.get("class_id") and d.get("class_id") == c.get("class_id")
                    and sorted(d["trainee_ids"]) == sorted(c["trainee_ids"])):
                flag("duplicate_payment", payment_id=p["payment_id"])

    # split_payment: pieces of one obligation (a class's claims, or class-less claims) within 7 days
    limit = 50_000_00
    by_payee = defaultdict(list)
    for p in payments:
        if parse_fen(p["amount"]) < limit:
            c = claims[p["claim_id"]]
            by_payee[p["payee_id"]].append((ts(p["at"]), c.get("class_id") or "<no class>", parse_fen(p["amount"])))
    for payee, xs in by_payee.items():
        for i, (t0, key, _) in enumerate(xs):
            window = [x for x in xs[i:] if x[1] == key and x[0] - t0 <= timedelta(days=7)]
            if len(window) >= 2 and sum(x[2] for x in window) > limit:
                flag("split_payment", payee_id=payee)

    # unreconciled_outflow
    pay_by_ref = {p["bank_ref"]: p for p in payments}
    for b in by_type["bank_statement"]:
        fen = parse_fen(b["amount"], signed=True)
        if fen < 0:
            p = pay_by_ref.get(b["bank_ref"])
            if p is None or parse_fen(p["amount"]) != -fen:
                flag("unreconciled_outflow", bank_ref=b["bank_ref"])
    return found


def labelled(s: Simulation) -> set[tuple[str, tuple]]:
    return {(l["kind"], tuple(sorted(l["subject"].items()))) for l in s.labels if l["kind"] != "anomalous_class"}


# --------------------------------------------------------------------------- tests


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    a = simulate(seed=11, classes=25, fraud_rate=0.2, bad_rate=0.01)
    b = simulate(seed=11, classes=25, fraud_rate=0.2, bad_rate=0.01)
    c = simulate(seed=12, classes=25, fraud_rate=0.2, bad_rate=0.01)
    assert a == b
    assert json.dumps(a.records, ensure_ascii=False) == json.dumps(b.records, ensure_ascii=False)
    assert a.records != c.records
    assert a.labels != c.labels


def test_every_kind_is_labelled_with_its_contract_subject(sim: Simulation) -> None:
    kinds = Counter(l["kind"] for l in sim.labels)
    assert set(kinds) == set(ALERT_KINDS)
    subject_fields = {
        "inflated_headcount": {"class_id"}, "shortened_hours": {"class_id"}, "proxy_sign_in": {"class_id"},
        "overlapping_enrollment": {"trainee_id"}, "repeat_subsidy": {"trainee_id", "claim_id"},
        "ineligible_trainee": {"trainee_id", "claim_id"}, "excess_claim": {"claim_id"},
        "duplicate_payment": {"payment_id"}, "split_payment": {"payee_id"},
        "segregation_of_duties": {"claim_id"}, "unlisted_institution": {"class_id"},
        "notice_skipped": {"payment_id"}, "work_for_training_overrun": {"trainee_id"},
        "teacher_double_booked": {"teacher_id"}, "venue_over_capacity": {"class_id"},
        "unreconciled_outflow": {"bank_ref"}, "anomalous_class": {"class_id"},
    }
    ids = {
        "class_id": {r["class_id"] for r in sim.records if r["type"] == "class_opened"},
        "claim_id": {r["claim_id"] for r in sim.records if r["type"] == "claim"},
        "payment_id": {r["payment_id"] for r in sim.records if r["type"] == "payment"},
        "trainee_id": {t for r in sim.records if r["type"] == "claim" for t in r["trainee_ids"]},
        "payee_id": {r["payee_id"] for r in sim.records if r["type"] == "payment"},
        "teacher_id": {s["teacher_id"] for r in sim.records if r["type"] == "class_opened" for s in r["sessions"]},
        "bank_ref": {r["bank_ref"] for r in sim.records if r["type"] == "bank_statement"},
    }
    for lab in sim.labels:
        assert set(lab["subject"]) == subject_fields[lab["kind"]], lab
        assert lab["note"] and "~" not in lab["note"]  # no internal placeholder ids leak into notes
        for key, value in lab["subject"].items():
            assert value in ids[key], (lab, key)


def test_labels_match_exactly_what_the_records_show(sim: Simulation) -> None:
    found = audit(good_records(sim))
    want = labelled(sim)
    assert found - want == set(), "unlabelled violations (would count against precision)"
    assert want - found == set(), "labelled but not in the records"


@pytest.mark.parametrize(
    ("seed", "classes", "rate", "region"),
    [(2, 20, 0.05, "420100"), (5, 120, 0.3, "450000"), (9, 40, 0.1, "370306"), (4, 30, 0.2, "230000")],
)
def test_labels_match_for_other_seeds_and_regions(seed: int, classes: int, rate: float, region: str) -> None:
    s = simulate(seed=seed, classes=classes, fraud_rate=rate, region=region, bad_rate=0.005)
    kinds = {l["kind"] for l in s.labels}
    assert kinds == set(ALERT_KINDS)
    assert all("~" not in l["note"] for l in s.labels)
    assert audit(good_records(s)) == labelled(s)
    regions = {r["region"] for r in good_records(s) if "region" in r}
    assert {pack_code_for(x) for x in regions} == {region}
    assert len(regions) > 1 or region == "370306"  # districts of the pack are used


def test_no_fraud_means_no_labels_and_nothing_to_flag(clean: Simulation) -> None:
    assert clean.labels == []
    assert clean.expected_rejections == []
    assert audit(clean.records) == set()


def test_ids_are_valid_and_unique_per_type(clean: Simulation, sim: Simulation) -> None:
    for s in (clean, sim):
        keys = Counter((r["type"], r["id"]) for r in s.records)
        assert max(keys.values()) == 1
        for r in s.records:
            assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", r["id"])
            people = []
            if r["type"] in ("enrollment", "attendance", "completion", "person_status"):
                people.append(r["trainee_id"])
            if r["type"] == "claim":
                people.extend(r["trainee_ids"])
                assert credit_code_problem(r["claimant_id"]) is None
            if r["type"] in ("institution", "class_opened"):
                assert credit_code_problem(r["institution_id"]) is None
            if r["type"] == "payment":
                assert credit_code_problem(r["payee_id"]) is None
            for t in people:
                assert resident_id_problem(t) is None, t
    ids_of = defaultdict(set)
    for r in sim.records:
        for key in ("class_id", "claim_id", "payment_id", "bank_ref"):
            if key in r and r["type"] in ("class_opened", "claim", "payment"):
                ids_of[key].add(r[key])
    assert len(ids_of["payment_id"]) == sum(1 for r in sim.records if r["type"] == "payment")
    assert len(ids_of["claim_id"]) == sum(1 for r in sim.records if r["type"] == "claim")


def test_sorted_by_at_and_causal(sim: Simulation, bad: Simulation) -> None:
    for s in (sim, bad):
        good = good_records(s)
        ats = [ts(r["at"]) for r in good]
        assert all(a.utcoffset() is not None for a in ats)
        assert ats == sorted(ats)
        seen_class: dict[str, datetime] = {}
        enrolled: dict[tuple[str, str], datetime] = {}
        claims: dict[str, datetime] = {}
        approved: set[str] = set()
        for r, at in zip(good, ats):
            t = r["type"]
            if t == "class_opened":
                seen_class[r["class_id"]] = at
                assert date.fromisoformat(r["start_date"]) > at.date()
            elif t == "enrollment":
                assert r["class_id"] in seen_class
                enrolled[(r["class_id"], r["trainee_id"])] = at
            elif t in ("attendance", "completion"):
                assert r["class_id"] in seen_class and (r["class_id"], r["trainee_id"]) in enrolled
                if t == "attendance":
                    assert at == ts(r["sign_in"]) < ts(r["sign_out"])
            elif t == "inspection":
                assert r["class_id"] in seen_class
            elif t == "claim":
                if "class_id" in r:
                    assert r["class_id"] in seen_class
                claims[r["claim_id"]] = at
            elif t in ("claim_reviewed", "notice", "recovery"):
                assert r["claim_id"] in claims
                if t == "claim_reviewed" and r["decision"] == "approved":
                    approved.add(r["claim_id"])
            elif t == "payment":
                assert r["claim_id"] in approved and claims[r["claim_id"]] < at


def test_money_is_strings_of_yuan(sim: Simulation, bad: Simulation) -> None:
    for s in (sim, bad):
        for r in good_records(s):
            for f in MONEY_FIELDS.get(r["type"], ()):
                assert isinstance(r[f], str) and MONEY.match(r[f]), (r["type"], r[f])
            if r["type"] == "bank_statement":
                assert SIGNED_MONEY.match(r["amount"])


def test_payments_within_approval_and_funds_never_overdrawn(sim: Simulation, bad: Simulation) -> None:
    for s in (sim, bad):
        pack = pack_code_for(s.records[0]["region"])
        approved: dict[str, int] = {}
        kind: dict[str, str] = {}
        paid: Counter = Counter()
        last_fund: dict[str, str] = {}
        balance: Counter = Counter()
        for r in good_records(s):
            if r["type"] == "appropriation":
                balance[r["fund_source"]] += parse_fen(r["amount"])
            elif r["type"] == "claim":
                kind[r["claim_id"]] = r["subsidy_kind"]
            elif r["type"] == "claim_reviewed":
                approved[r["claim_id"]] = parse_fen(r["approved_amount"])
            elif r["type"] == "payment":
                fen = parse_fen(r["amount"])
                paid[r["claim_id"]] += fen
                balance[r["fund_source"]] -= fen
                last_fund[r["claim_id"]] = r["fund_source"]
                assert paid[r["claim_id"]] <= approved[r["claim_id"]]
                assert balance[r["fund_source"]] >= 0
                assert r["fund_source"] in PERMITTED[kind[r["claim_id"]]]
                assert pack_code_for(r["region"]) == pack
            elif r["type"] == "recovery":
                fen = parse_fen(r["amount"])
                assert fen <= paid[r["claim_id"]]
                balance[last_fund[r["claim_id"]]] += fen


def test_bad_records_are_listed_with_their_reasons(bad: Simulation) -> None:
    reasons = Counter(r["reason"] for r in bad.expected_rejections)
    assert set(reasons) == {"malformed", "invalid_id", "unknown_region", "unknown_reference", "conflict",
                            "claim_not_approved", "overdraft", "fund_not_permitted"}
    good_n = sum(1 for r in good_records(bad) if r["type"] in ("attendance", "claim"))
    assert len(bad.expected_rejections) >= 0.008 * good_n
    by_key = defaultdict(list)
    for r in bad.records:
        by_key[(r["type"], r["id"])].append(r)
    for rej in bad.expected_rejections:
        rows = by_key[(rej["type"], rej["id"])]
        assert rows, rej
        if rej["reason"] == "conflict":
            assert len(rows) >= 2 and rows[0] != rows[-1]
        else:
            assert len(rows) == 1
    # nothing good refers to a bad record
    bad_claims = {r["claim_id"] for r in bad.records if r["type"] == "claim"
                  and (r["type"], r["id"]) in {(x["type"], x["id"]) for x in bad.expected_rejections
                                                if x["reason"] != "conflict"}}
    assert not any(r.get("claim_id") in bad_claims for r in good_records(bad))


def test_write_round_trips(tmp_path: Path, bad: Simulation) -> None:
    paths = write(bad, tmp_path / "out")
    assert set(paths) == {"records", "labels", "rejections"}
    assert paths["records"].name == "records.jsonl"
    assert paths["labels"].name == "labels.jsonl"
    assert paths["rejections"].name == "rejections.expected.jsonl"

    def read(p: Path) -> list[dict]:
        text = p.read_text(encoding="utf-8")
        assert "\\u" not in text or "\\u0000" in text  # ensure_ascii=False: Chinese stays readable
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    assert read(paths["records"]) == bad.records
    assert read(paths["labels"]) == bad.labels
    assert read(paths["rejections"]) == bad.expected_rejections
    assert "苏府办" in paths["records"].read_text(encoding="utf-8")


def test_noise_is_present_in_a_clean_year(clean: Simulation) -> None:
    """The ordinary irregularities that must raise nothing are really there."""
    recs = clean.records
    atts = [r for r in recs if r["type"] == "attendance"]
    sessions = {s["session_id"]: s for r in recs if r["type"] == "class_opened" for s in r["sessions"]}
    assert any(r["face_score"] == 0.6 for r in atts)
    assert any(600 <= (ts(r["sign_in"]) - ts(sessions[r["session_id"]]["start"])).total_seconds() <= 1200
               for r in atts)
    assert any(s["mode"] == "online" for s in sessions.values())
    enrolled = Counter(r["trainee_id"] for r in recs if r["type"] == "enrollment")
    assert max(enrolled.values()) == 2
    assert any(r["type"] == "person_status" and r["status"] == "pensioner" for r in recs)
    per_session = Counter((r["class_id"], r["session_id"]) for r in atts)
    roster = Counter(r["class_id"] for r in recs if r["type"] == "enrollment")
    assert any(n < roster[c] for (c, _), n in per_session.items())
    assert {r["fund_source"] for r in recs if r["type"] == "appropriation"} >= {"ui_surplus", "employment_subsidy",
                                                                               "local_talent"}
    assert all(r["document"] == "苏府办〔2017〕372号" for r in recs if r["type"] == "appropriation")
    assert any(r["type"] == "bank_statement" and not r["amount"].startswith("-") for r in recs)
    # several payments to one institution within a week for distinct classes, together over 50,000
    class_of = {r["claim_id"]: r.get("class_id") for r in recs if r["type"] == "claim"}
    by_payee = defaultdict(list)
    for r in recs:
        if r["type"] == "payment" and class_of[r["claim_id"]]:
            by_payee[r["payee_id"]].append((ts(r["at"]), class_of[r["claim_id"]], parse_fen(r["amount"])))
    assert any(
        len({c for t, c, _ in xs if t - t0 <= timedelta(days=7) and t >= t0}) >= 2
        and sum(f for t, _, f in xs if t0 <= t <= t0 + timedelta(days=7)) > 50_000_00
        for xs in by_payee.values() for t0, _, _ in xs
    )
    awards = [r for r in recs if r["type"] == "claim" and r["subsidy_kind"] == "award"]
    assert awards and all(r["trainee_ids"] == [] for r in awards)
    assert any(r["type"] == "claim" and r["subsidy_kind"] == "living_allowance" for r in recs)
    assert any(r["type"] == "claim" and r["subsidy_kind"] == "work_for_training" for r in recs)


def test_attendance_heavy_is_mostly_attendance() -> None:
    s = simulate(seed=5, classes=40, fraud_rate=0.0, attendance_heavy=True)
    n = Counter(r["type"] for r in s.records)
    assert n["attendance"] / len(s.records) > 0.9
    assert n["attendance"] / n["class_opened"] > 800
    assert audit(s.records) == set()


def test_fast_enough() -> None:
    """1,000 classes (about 465,000 records) must take well under 30 s: hold the rate that implies."""
    t0 = time.perf_counter()
    s = simulate(seed=8, classes=250, fraud_rate=0.1)
    elapsed = time.perf_counter() - t0
    rate = len(s.records) / elapsed
    assert len(s.records) > 100_000
    assert rate > 20_000, f"{len(s.records)} records in {elapsed:.1f} s: {rate:,.0f} records/s"


def test_every_clean_record_parses_under_the_contract(clean: Simulation, bad: Simulation) -> None:
    records = pytest.importorskip("ledger.records")
    for r in clean.records:
        records.parse_record(r)
    parsed_reasons = {}
    for r in bad.records:
        try:
            records.parse_record(r)
        except records.RecordError as e:
            parsed_reasons[(r["type"], r["id"])] = e.reason
    expected = {(x["type"], x["id"]): x["reason"] for x in bad.expected_rejections
                if x["reason"] in ("malformed", "invalid_id", "unknown_region")}
    assert parsed_reasons == expected


def test_the_ledger_rejects_exactly_the_expected_records(tmp_path: Path, bad: Simulation) -> None:
    """End to end through the real ledger: every good record accepted, every bad one refused as listed."""
    application = pytest.importorskip("ledger.application")
    runtime = pytest.importorskip("ops.runtime")
    settings = pytest.importorskip("ops.settings")
    ledger = runtime.open_ledger(settings.Settings(data_dir=tmp_path / "data", database_url=None,
                                                   database_schema=None))
    subs = [application.Submission.from_text(json.dumps(r, ensure_ascii=False), line=i, source="sim")
            for i, r in enumerate(bad.records, 1)]
    outcomes = []
    for i in range(0, len(subs), 5_000):
        outcomes.extend(ledger.submit(subs[i:i + 5_000]).outcomes)
    got = sorted((o.type, o.id, o.reason) for o in outcomes if o.status == "rejected")
    assert got == sorted((x["type"], x["id"], x["reason"]) for x in bad.expected_rejections)
    statuses = Counter(o.status for o in outcomes)
    assert statuses["accepted"] == len(good_records(bad))
