"""Class-side detectors: for each kind a scenario that must raise it and a near miss that must not."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import pytest
from scenario import Scenario, examples, run, shift, ts

from detectors.base import SEVERITIES, AlertDraft
from detectors.classes import KINDS, ClassDetector, haversine_m, thresholds
from ledger.policy import pack_for

# evidence keys that name records by their `id`, and keys naming business ids
RECORD_ID_KEYS = {
    "attendance_id", "other_attendance_id", "inspection_id", "class_opened_id", "other_class_opened_id",
    "record_id", "institution_record_id", "project_record_id", "judged_at_record",
}
RECORD_ID_LIST_KEYS = {"attendance_ids", "with_attendance_ids", "suspicious_attendance_ids"}


def drafts_of(sc: Scenario) -> list[AlertDraft]:
    return run(ClassDetector(), sc.items)


def kinds(drafts: list[AlertDraft]) -> set[str]:
    return {d.kind for d in drafts}


def last(drafts: list[AlertDraft], kind: str) -> AlertDraft:
    got = [d for d in drafts if d.kind == kind]
    assert got, f"no {kind} draft among {sorted(kinds(drafts))}"
    return got[-1]


def assert_evidence_names_existing_records(d: AlertDraft, sc: Scenario) -> None:
    record_ids = {r["id"] for r in sc.records}
    claims = {r["claim_id"] for r in sc.records if r["type"] == "claim"}
    named = 0

    def walk(x: Any) -> None:
        nonlocal named
        if isinstance(x, dict):
            for k, v in x.items():
                if k in RECORD_ID_KEYS:
                    assert v in record_ids, f"{d.kind} evidence {k}={v!r} names no record of the scenario"
                    named += 1
                elif k in RECORD_ID_LIST_KEYS:
                    for v1 in v:
                        assert v1 in record_ids, f"{d.kind} evidence {k} lists {v1!r}, no such record"
                        named += 1
                elif k == "claimed_or_passed_in":
                    for v1 in v:
                        assert v1 in record_ids | claims, f"{v1!r} is neither a record nor a claim"
                        named += 1
                elif k == "claim_id":
                    assert v in claims
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(d.evidence)
    assert named, f"{d.kind} evidence names no record: {d.evidence}"


def assert_well_formed(d: AlertDraft, sc: Scenario) -> None:
    assert d.severity in SEVERITIES
    assert d.detector == "classes/1"
    assert d.policy == pack_for("320500").citations(d.kind) and d.policy
    assert d.raised_at in {r["at"] for r in sc.records}
    assert d.position in {i.position for i in sc.items}
    assert d.summary
    assert_evidence_names_existing_records(d, sc)


def base(sc: Scenario, *, trainees: int = 4, standard_hours: int = 8, capacity: int = 40, **kw: Any):
    inst = sc.institution(capacity=capacity)
    proj = sc.project(standard_hours=standard_hours)
    cls = sc.class_opened(inst, proj, planned_headcount=trainees, **kw)
    people = [sc.enroll(cls) for _ in range(trainees)]
    return inst, proj, cls, people


def attend_all(sc: Scenario, cls: str, people: list[str], sessions: list[str] | None = None, **kw: Any) -> None:
    for sid in sessions or sc.session_ids(cls):
        start = sc.session(cls, sid)["start"]
        for i, t in enumerate(people):
            sc.attend(cls, sid, t, sign_in=shift(start, minutes=-13, seconds=7 * i), **kw)


# ------------------------------------------------------------------ clean data raises nothing


def test_the_contract_example_raises_nothing() -> None:
    sc = examples()
    assert len(sc.items) == 21
    assert drafts_of(sc) == []


def test_a_clean_class_with_ordinary_noise_raises_nothing() -> None:
    """Absences (>= half the hours), late sign-ins of 10-20 min, one poor face match,
    a trainee in two classes one after the other: none of it is an alert."""
    sc = Scenario()
    inst = sc.institution()
    proj = sc.project(standard_hours=8)  # 360 minutes
    days = ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]
    cls = sc.class_opened(inst, proj, days=days, start="09:00", end="10:30", planned_headcount=20)  # 4 × 90
    people = [sc.enroll(cls) for _ in range(20)]
    for d, sid in enumerate(sc.session_ids(cls)):
        start = sc.session(cls, sid)["start"]
        for i, t in enumerate(people):
            if i == 0 and d in (1, 2):
                continue  # absent from two of four sessions: exactly half the hours remain
            if i == 1 and d == 3:
                continue  # absent once
            late = {2: 12, 3: 18, 4: 10}.get(i, 0) if d == 0 else 0
            face = 0.6 if (i == 5 and d == 2) else 0.91
            sign_in = shift(start, minutes=late) if late else shift(start, minutes=-10, seconds=9 * i)
            sc.attend(cls, sid, t, sign_in=sign_in, face_score=face, device=("dev-01", "dev-02")[i % 2])
    sc.inspect(cls, "s-01", ts("2024-03-04", "09:40"), present=20)
    # trainee 6 also takes an afternoon class elsewhere, after this one
    inst2 = sc.institution(capacity=30)
    cls2 = sc.class_opened(inst2, sc.project(standard_hours=2), days=["2024-03-04"], start="13:00", end="14:30",
                           planned_headcount=1)
    sc.enroll(cls2, people[6])
    sc.attend(cls2, "s-01", people[6])
    for t in people:
        sc.complete(cls, t, at=ts("2024-03-10", "10:00"))
    sc.complete(cls2, people[6], at=ts("2024-03-10", "10:00"))
    sc.claim(cls, people, at=ts("2024-03-15", "10:00"))
    sc.claim(cls2, [people[6]], at=ts("2024-03-15", "10:00"))
    assert drafts_of(sc) == []


def test_detector_is_deterministic() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=6)
    attend_all(sc, cls, people[:3], face_score=0.2)
    sc.claim(cls, people)
    a, b = drafts_of(sc), drafts_of(sc)
    assert a and a == b


# ------------------------------------------------------------------ inflated_headcount


def test_inflated_headcount_claimed_without_verified_attendance() -> None:
    sc = Scenario()
    _, _, cls, (a, b, c, d) = base(sc, trainees=4)
    attend_all(sc, cls, [a, b])
    for sid in sc.session_ids(cls):  # d signs in every time, but with a face the camera does not match
        sc.attend(cls, sid, d, face_score=0.35)
    stranger = sc.new_trainee()  # claimed, never enrolled, never there
    claim = sc.claim(cls, [a, b, c, d, stranger])
    got = last(drafts_of(sc), "inflated_headcount")
    assert got.subject == {"class_id": cls}
    assert got.raised_at == sc.last["at"]
    ghosts = {e["trainee_id"]: e for e in got.evidence if e["check"] == "unverified_attendance"}
    assert set(ghosts) == {c, d, stranger}
    assert ghosts[c]["verified_minutes"] == 0 and ghosts[c]["required_minutes"] == 180.0
    assert ghosts[d]["sessions_signed_in"] == 2 and len(ghosts[d]["suspicious_attendance_ids"]) == 2
    assert ghosts[stranger]["enrolled"] is False
    assert ghosts[c]["claimed_or_passed_in"] == [claim]
    summary = got.evidence[0]
    assert summary["trainees_judged"] == 5 and summary["unverified"] == 3
    assert got.severity == "critical"  # 3 of 5
    assert_well_formed(got, sc)


def test_inflated_headcount_near_miss_absent_but_half_the_hours() -> None:
    sc = Scenario()
    days = ["2024-01-15", "2024-01-16", "2024-01-17", "2024-01-18"]
    _, _, cls, people = base(sc, trainees=3, days=days, start="08:30", end="10:00")  # 4 × 90 = 360
    sids = sc.session_ids(cls)
    attend_all(sc, cls, people[:2])
    attend_all(sc, cls, people[2:], sessions=sids[:2])  # 180 of 360: exactly the half
    sc.claim(cls, people)
    assert "inflated_headcount" not in kinds(drafts_of(sc))


def test_inflated_headcount_time_outside_the_windows_does_not_count() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=2)
    attend_all(sc, cls, people[:1])
    for sid in sc.session_ids(cls):  # signed in, but only for the last 40 minutes of each session
        s = sc.session(cls, sid)
        sc.attend(cls, sid, people[1], sign_in=shift(s["end"], minutes=-40), sign_out=shift(s["end"], minutes=120))
    sc.claim(cls, people)
    got = last(drafts_of(sc), "inflated_headcount")
    (ghost,) = [e for e in got.evidence if e["check"] == "unverified_attendance"]
    assert ghost["trainee_id"] == people[1] and ghost["verified_minutes"] == 80.0


def test_inflated_headcount_passed_completion_without_attendance() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=3)
    attend_all(sc, cls, people[:2])
    sc.complete(cls, people[0])
    sc.complete(cls, people[2], passed=False)  # failed: nothing claimed on it
    assert "inflated_headcount" not in kinds(drafts_of(sc))
    comp = sc.complete(cls, people[2], passed=True)
    got = last(drafts_of(sc), "inflated_headcount")
    (ghost,) = [e for e in got.evidence if e["check"] == "unverified_attendance"]
    assert ghost["trainee_id"] == people[2] and ghost["claimed_or_passed_in"] == [comp]
    assert_well_formed(got, sc)


def test_inflated_headcount_inspection_counts_far_fewer_present() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=10)
    attend_all(sc, cls, people, sessions=["s-01"])
    insp = sc.inspect(cls, "s-01", ts("2024-01-15", "09:40"), present=5)
    got = last(drafts_of(sc), "inflated_headcount")
    (e,) = [e for e in got.evidence if e["check"] == "inspection"]
    assert e["inspection_id"] == insp and e["present_count"] == 5 and e["signed_in"] == 10
    assert e["min_ratio"] == 0.8
    assert got.raised_at == ts("2024-01-15", "09:40")
    assert_well_formed(got, sc)


def test_inflated_headcount_inspection_near_miss_and_who_was_there_at_that_time() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=10)
    s = sc.session(cls, "s-01")
    for i, t in enumerate(people):
        if i < 8:
            sc.attend(cls, "s-01", t, sign_in=shift(s["start"], minutes=-5, seconds=i))
        else:  # two sign in after the inspection: not counted against it
            sc.attend(cls, "s-01", t, sign_in=shift(s["start"], minutes=100 + i))
    sc.inspect(cls, "s-01", ts("2024-01-15", "09:40"), present=7)  # 7 >= 0.8 × 8
    assert "inflated_headcount" not in kinds(drafts_of(sc))


def test_inflated_headcount_inspection_before_the_attendance_arrives() -> None:
    """Attendance records sent after the inspection record still count at the inspection's time."""
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=10)
    sc.inspect(cls, "s-01", ts("2024-01-15", "09:40"), present=4)
    attend_all(sc, cls, people, sessions=["s-01"])
    drafts = drafts_of(sc)
    got = last(drafts, "inflated_headcount")
    (e,) = [e for e in got.evidence if e["check"] == "inspection"]
    assert e["signed_in"] == 10 and e["present_count"] == 4
    first = next(d for d in drafts if d.kind == "inflated_headcount")
    assert first.evidence[1]["signed_in"] == 6  # raised when 6 signed in (4 < 0.8 × 6)


# ------------------------------------------------------------------ shortened_hours


def test_shortened_hours_schedule_below_the_standard_from_the_day_it_opens() -> None:
    sc = Scenario()
    inst = sc.institution()
    proj = sc.project(standard_hours=8)  # 360
    cls = sc.class_opened(inst, proj, start="08:30", end="11:00")  # 2 × 150 = 300
    drafts = drafts_of(sc)
    got = last(drafts, "shortened_hours")
    assert got.raised_at == sc.last["at"] and got.position == sc.items[-1].position
    (e,) = got.evidence
    assert e["check"] == "schedule" and e["scheduled_minutes"] == 300.0 and e["standard_minutes"] == 360.0
    assert got.severity == "medium"
    assert_well_formed(got, sc)


def test_shortened_hours_sessions_held_short_judged_only_after_they_end() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=5)
    for sid in sc.session_ids(cls):
        s = sc.session(cls, sid)
        for i, t in enumerate(people):  # everyone arrives an hour late and leaves 20 minutes early
            sc.attend(cls, sid, t, sign_in=shift(s["start"], minutes=60, seconds=i),
                      sign_out=shift(s["end"], minutes=-20))
        if sid == "s-01":
            assert "shortened_hours" not in kinds(drafts_of(sc)), "judged while the session was running"
    drafts = drafts_of(sc)
    got = last(drafts, "shortened_hours")  # s-02's sign-ins, a day later, close s-01
    sessions = [e for e in got.evidence if e["check"] == "session"]
    assert [e["session_id"] for e in sessions] == ["s-01"]
    assert sessions[0]["delivered_minutes"] == 100.0 and sessions[0]["scheduled_minutes"] == 180.0
    comp = sc.complete(cls, people[0])
    got = last(drafts_of(sc), "shortened_hours")
    assert {e["session_id"] for e in got.evidence if e["check"] == "session"} == {"s-01", "s-02"}
    (total,) = [e for e in got.evidence if e["check"] == "delivered"]
    assert total["delivered_minutes"] == pytest.approx(200.0, abs=0.1) and total["standard_minutes"] == 360.0
    assert total["judged_at_record"] == comp
    assert got.severity == "high"  # 200 / 360 = 0.56
    assert_well_formed(got, sc)


def test_shortened_hours_a_session_nobody_attended_delivered_nothing() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=3)
    attend_all(sc, cls, people, sessions=["s-01"])
    sc.complete(cls, people[0])
    got = last(drafts_of(sc), "shortened_hours")
    (total,) = [e for e in got.evidence if e["check"] == "delivered"]
    assert total["delivered_minutes"] == 180.0 and total["sessions_without_sign_in"] == ["s-02"]
    assert not [e for e in got.evidence if e["check"] == "session"]  # s-01 itself was held in full


def test_shortened_hours_not_judged_mid_class_and_late_sign_ins_are_noise() -> None:
    sc = Scenario()
    days = ["2024-01-15", "2024-01-16", "2024-01-17"]
    _, _, cls, people = base(sc, trainees=6, days=days, start="08:30", end="10:30")  # 3 × 120 = 360
    for sid in sc.session_ids(cls)[:2]:
        s = sc.session(cls, sid)
        for i, t in enumerate(people):
            late = 15 if i < 2 else 0  # two trainees 15 minutes late: the median is unmoved
            sc.attend(cls, sid, t, sign_in=shift(s["start"], minutes=late) if late else shift(s["start"], minutes=-5))
    # two of three sessions in: mid-class, nothing is judged short
    assert "shortened_hours" not in kinds(drafts_of(sc))
    attend_all(sc, cls, people, sessions=sc.session_ids(cls)[2:])
    for t in people:
        sc.complete(cls, t, at=ts("2024-01-20", "10:00"))
    assert "shortened_hours" not in kinds(drafts_of(sc))


def test_shortened_hours_judged_when_a_later_record_passes_the_last_session() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=4)
    attend_all(sc, cls, people, sessions=["s-01"])
    assert "shortened_hours" not in kinds(drafts_of(sc))
    sc.inspect(cls, "s-02", ts("2024-01-16", "13:00"), present=0)  # a record of the class, past the end
    got = last(drafts_of(sc), "shortened_hours")
    assert got.raised_at == ts("2024-01-16", "13:00")


def test_shortened_hours_other_classes_records_do_not_close_a_class() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=3)
    attend_all(sc, cls, people, sessions=["s-01"])
    # a bulk load of another class months later: this class's s-02 sign-ins are still to come
    sc.clean_class(trainees=2, days=["2024-06-03", "2024-06-04"])
    attend_all(sc, cls, people, sessions=["s-02"])
    assert "shortened_hours" not in kinds(drafts_of(sc))


# ------------------------------------------------------------------ proxy_sign_in


def test_proxy_sign_in_low_face_scores() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=20)
    for sid in sc.session_ids(cls):
        start = sc.session(cls, sid)["start"]
        for i, t in enumerate(people):
            face = 0.41 if (sid == "s-01" and i < 3) else 0.9
            sc.attend(cls, sid, t, sign_in=shift(start, minutes=-10, seconds=5 * i), face_score=face)
    first = last(drafts_of(sc), "proxy_sign_in")  # raised at the third: 3 of the 40 sign-ins expected
    assert first.evidence[0]["sign_ins"] == 3 and first.evidence[0]["judged_over"] == 40
    assert first.evidence[0]["share"] == 0.075 and first.severity == "low"
    sc.complete(cls, people[0])
    got = last(drafts_of(sc), "proxy_sign_in")
    summary = got.evidence[0]
    assert summary["suspicious"] == 3 and summary["sign_ins"] == 40 and summary["share"] == 0.075
    assert summary["class_over"] is True
    listed = [e for e in got.evidence if "attendance_id" in e]
    assert len(listed) == 3
    assert all(e["reasons"][0]["rule"] == "face_score" and e["reasons"][0]["face_score"] == 0.41 for e in listed)
    assert_well_formed(got, sc)


def test_proxy_sign_in_near_misses_one_poor_match_or_a_small_share() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=30)
    attend_all(sc, cls, people)
    sc.attend(cls, "s-02", people[0], face_score=0.6)  # one poor match among 61
    assert "proxy_sign_in" not in kinds(drafts_of(sc))
    # 3 of 63 sign-ins (4.8%) once the class is over: below 5%
    sc.attend(cls, "s-02", people[1], face_score=0.5)
    sc.attend(cls, "s-02", people[2], face_score=0.5)
    for t in people:
        sc.complete(cls, t)
    assert "proxy_sign_in" not in kinds(drafts_of(sc))


def test_proxy_sign_in_far_from_the_venue_or_unregistered_device() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=10)
    attend_all(sc, cls, people[:7], sessions=["s-01"])
    far = [sc.attend(cls, "s-01", t, lat=31.52, lon=120.60) for t in people[7:9]]  # ~8 km north
    odd = sc.attend(cls, "s-01", people[9], device="phone-xyz")
    got = last(drafts_of(sc), "proxy_sign_in")
    reasons = {e["attendance_id"]: [r["rule"] for r in e["reasons"]] for e in got.evidence if "attendance_id" in e}
    assert reasons == {far[0]: ["distance"], far[1]: ["distance"], odd: ["device_not_registered"]}
    meters = next(e for e in got.evidence if e.get("attendance_id") == far[0])["reasons"][0]["meters"]
    assert 8000 < meters < 8500
    assert_well_formed(got, sc)


def test_proxy_sign_in_online_sessions_are_not_judged_by_place_or_device() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=10, mode="online")
    for t in people:
        sc.attend(cls, "s-01", t, lat=30.0, lon=114.0, device=f"phone-{t[-4:]}")
    assert "proxy_sign_in" not in kinds(drafts_of(sc))


def test_proxy_sign_in_device_registered_by_a_later_institution_record() -> None:
    """The institution record in force at the sign-in decides which devices are the venue's."""
    sc = Scenario()
    inst, _, cls, people = base(sc, trainees=8)
    sc.institution(institution_id=inst, at=ts("2024-01-14", "18:00"),
                   devices=("dev-01", "dev-02", "dev-new"))
    for t in people:
        sc.attend(cls, "s-01", t, device="dev-new")
    assert "proxy_sign_in" not in kinds(drafts_of(sc))
    sc2 = Scenario()
    inst, _, cls, people = base(sc2, trainees=8)
    sc2.institution(institution_id=inst, at=ts("2024-01-20", "18:00"), devices=("dev-01", "dev-new"))
    for t in people:
        sc2.attend(cls, "s-01", t, device="dev-new")
    assert "proxy_sign_in" in kinds(drafts_of(sc2))


def test_proxy_sign_in_bursts_on_one_device() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=9)
    start = sc.session(cls, "s-01")["start"]
    ids = []
    for g in range(3):  # three groups of three within 1 s on dev-01, 30 s apart
        for k in range(3):
            t = people[3 * g + k]
            ids.append(sc.attend(cls, "s-01", t, sign_in=shift(start, minutes=-10, seconds=30 * g + 0.5 * k)))
    got = last(drafts_of(sc), "proxy_sign_in")
    flagged = [e for e in got.evidence if "attendance_id" in e]
    assert [e["attendance_id"] for e in flagged] == [ids[2], ids[5], ids[8]]
    burst = flagged[0]["reasons"][0]
    assert burst["rule"] == "device_burst" and burst["trainees"] == 3
    assert burst["with_attendance_ids"] == [ids[0], ids[1]]
    assert_well_formed(got, sc)


def test_proxy_sign_in_near_miss_people_passing_a_device_at_a_human_pace() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=9)
    start = sc.session(cls, "s-01")["start"]
    for i, t in enumerate(people):
        sc.attend(cls, "s-01", t, sign_in=shift(start, minutes=-10, seconds=3 * i))
    assert "proxy_sign_in" not in kinds(drafts_of(sc))


def test_proxy_sign_in_early_cluster_judged_against_the_roster() -> None:
    """3 suspicious among the first sign-ins of a 40-trainee, 2-session class is 3 of 80 expected."""
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=40)
    start = sc.session(cls, "s-01")["start"]
    for i, t in enumerate(people[:10]):
        sc.attend(cls, "s-01", t, sign_in=shift(start, minutes=-10, seconds=5 * i), face_score=0.3 if i < 3 else 0.9)
    assert "proxy_sign_in" not in kinds(drafts_of(sc))
    attend_all(sc, cls, people[10:], sessions=["s-01"])
    sc.complete(cls, people[0])  # over: 3 of 40 sign-ins actually made = 7.5%
    assert "proxy_sign_in" in kinds(drafts_of(sc))


# ------------------------------------------------------------------ overlapping_enrollment


def test_overlapping_enrollment_one_trainee_in_two_classes_at_once() -> None:
    sc = Scenario()
    _, _, cls_a, people = base(sc, trainees=2)
    inst_b = sc.institution()
    cls_b = sc.class_opened(inst_b, sc.project(standard_hours=4), days=["2024-01-15"], start="09:00", end="12:00")
    sc.enroll(cls_b, people[0])
    a = sc.attend(cls_a, "s-01", people[0])
    b = sc.attend(cls_b, "s-01", people[0])
    got = last(drafts_of(sc), "overlapping_enrollment")
    assert got.subject == {"trainee_id": people[0]}
    (pair,) = [e for e in got.evidence if "attendance_id" in e]
    assert (pair["attendance_id"], pair["other_attendance_id"]) == (b, a)
    assert (pair["class_id"], pair["other_class_id"]) == (cls_b, cls_a)
    assert pair["overlap_minutes"] == 150.0
    assert_well_formed(got, sc)


def test_overlapping_enrollment_near_miss_back_to_back_classes() -> None:
    sc = Scenario()
    _, _, cls_a, people = base(sc, trainees=1)
    inst_b = sc.institution()
    cls_b = sc.class_opened(inst_b, sc.project(standard_hours=4), days=["2024-01-15"], start="11:30", end="14:30")
    sc.enroll(cls_b, people[0])
    sc.attend(cls_a, "s-01", people[0])  # signs out 11:33, 3 minutes into class B's window
    sc.attend(cls_b, "s-01", people[0], sign_in=ts("2024-01-15", "11:25"))
    sc.attend(cls_a, "s-01", people[0], sign_in=ts("2024-01-15", "08:40"), sign_out=ts("2024-01-15", "09:00"))
    assert "overlapping_enrollment" not in kinds(drafts_of(sc))


# ------------------------------------------------------------------ teacher_double_booked


def test_teacher_double_booked_in_overlapping_sessions_of_two_classes() -> None:
    sc = Scenario()
    inst = sc.institution()
    proj = sc.project()
    a = sc.class_opened(inst, proj, teacher="teacher-zhang")
    b = sc.class_opened(inst, proj, teacher="teacher-zhang", days=["2024-01-16", "2024-01-17"],
                        start="10:00", end="13:00")
    got = last(drafts_of(sc), "teacher_double_booked")
    assert got.subject == {"teacher_id": "teacher-zhang"}
    (pair,) = [e for e in got.evidence if "session_id" in e]
    assert (pair["class_id"], pair["session_id"], pair["other_class_id"], pair["other_session_id"]) == (b, "s-01", a, "s-02")
    assert pair["overlap_minutes"] == 90.0
    assert got.raised_at == sc.last["at"]
    assert_well_formed(got, sc)


def test_teacher_double_booked_near_misses() -> None:
    sc = Scenario()
    inst = sc.institution()
    proj = sc.project(standard_hours=4)
    sc.class_opened(inst, proj, teacher="teacher-li", days=["2024-01-15"], start="08:30", end="11:30")
    sc.class_opened(inst, proj, teacher="teacher-li", days=["2024-01-15"], start="11:30", end="14:30")  # back to back
    sc.class_opened(inst, proj, teacher="teacher-wang", days=["2024-01-15"], start="08:30", end="11:30")  # other teacher
    assert "teacher_double_booked" not in kinds(drafts_of(sc))


def test_teacher_double_booked_ignores_a_class_rejected_at_review() -> None:
    sc = Scenario()
    inst = sc.institution()
    proj = sc.project(standard_hours=4)
    a = sc.class_opened(inst, proj, teacher="teacher-li", days=["2024-01-15"], start="08:30", end="11:30")
    sc.review(a, "rejected")
    sc.class_opened(inst, proj, teacher="teacher-li", days=["2024-01-15"], start="08:30", end="11:30")
    assert "teacher_double_booked" not in kinds(drafts_of(sc))


# ------------------------------------------------------------------ venue_over_capacity


def test_venue_over_capacity() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=8, capacity=5)
    attend_all(sc, cls, people[:6], sessions=["s-01"])
    got = last(drafts_of(sc), "venue_over_capacity")
    (e,) = [e for e in got.evidence if e["check"] == "session"]
    assert e["session_id"] == "s-01" and e["signed_in"] == 6 and e["capacity"] == 5
    assert got.severity == "medium"
    attend_all(sc, cls, people[6:], sessions=["s-01"])
    sc.attend(cls, "s-02", people[0])  # a record of the class after s-01: its final count is kept
    got = last(drafts_of(sc), "venue_over_capacity")
    (e,) = [e for e in got.evidence if e["check"] == "session"]
    assert e["signed_in"] == 8 and got.severity == "high"
    assert_well_formed(got, sc)


def test_venue_over_capacity_near_misses() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=5, capacity=5)
    attend_all(sc, cls, people)
    sc.attend(cls, "s-01", people[0], sign_in=ts("2024-01-15", "10:00"))  # signs in twice: one trainee
    sc2 = Scenario()
    _, _, cls2, people2 = base(sc2, trainees=8, capacity=5, mode="online")
    attend_all(sc2, cls2, people2)
    assert "venue_over_capacity" not in kinds(drafts_of(sc)) | kinds(drafts_of(sc2))


# ------------------------------------------------------------------ unlisted_institution


def test_unlisted_institution_class_opened_while_suspended() -> None:
    sc = Scenario()
    inst = sc.institution()
    sc.institution(institution_id=inst, status="suspended", at=ts("2024-01-05", "09:00"))
    suspension = sc.last["id"]
    cls = sc.class_opened(inst, sc.project())
    got = last(drafts_of(sc), "unlisted_institution")
    (e,) = got.evidence
    assert e["check"] == "class_opened" and e["status"] == "suspended"
    assert e["institution_record_id"] == suspension and e["class_opened_id"] == sc.last["id"]
    assert got.subject == {"class_id": cls} and got.severity == "medium"
    assert_well_formed(got, sc)


def test_unlisted_institution_held_during_a_suspension_is_not_flagged_but_a_claim_is() -> None:
    sc = Scenario()
    inst, _, cls, people = base(sc, trainees=2)
    sc.institution(institution_id=inst, status="suspended", at=ts("2024-01-15", "12:00"))
    attend_all(sc, cls, people)
    for t in people:
        sc.complete(cls, t)
    assert "unlisted_institution" not in kinds(drafts_of(sc))
    claim = sc.claim(cls, people)
    got = last(drafts_of(sc), "unlisted_institution")
    (e,) = got.evidence
    assert e["check"] == "claim" and e["claim_id"] == claim and got.severity == "high"
    assert_well_formed(got, sc)


def test_unlisted_institution_near_miss_reinstated_before_the_claim() -> None:
    sc = Scenario()
    inst, _, cls, people = base(sc, trainees=2)
    sc.institution(institution_id=inst, status="suspended", at=ts("2024-01-15", "12:00"))
    attend_all(sc, cls, people)
    sc.institution(institution_id=inst, status="listed", at=ts("2024-01-20", "09:00"))
    sc.claim(cls, people, at=ts("2024-01-26", "10:00"))
    assert "unlisted_institution" not in kinds(drafts_of(sc))


def test_unlisted_institution_delisted_is_more_severe() -> None:
    sc = Scenario()
    inst = sc.institution()
    sc.institution(institution_id=inst, status="delisted", at=ts("2024-01-05", "09:00"))
    cls = sc.class_opened(inst, sc.project())
    sc.claim(cls, [])
    got = last(drafts_of(sc), "unlisted_institution")
    assert [e["check"] for e in got.evidence] == ["class_opened", "claim"]
    assert got.severity == "critical"


# ------------------------------------------------------------------ mechanics


def test_every_kind_is_covered_and_cited_by_every_pack() -> None:
    assert set(KINDS) == set(ClassDetector.kinds)
    for code in ("420100", "450000", "370306", "320500", "230000"):
        th = thresholds(code)
        assert th.face_min == 0.7 and th.proxy_count == 3 and th.radius_m == 1000
        for k in KINDS:
            assert th.citations[k]


def test_a_draft_is_emitted_only_when_its_content_changes() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=10)
    attend_all(sc, cls, people, sessions=["s-01"], face_score=0.2)
    drafts = [d for d in drafts_of(sc) if d.kind == "proxy_sign_in"]
    contents = [(d.severity, d.evidence) for d in drafts]
    assert len(contents) == len({repr(c) for c in contents})  # no two equal in a row


def test_drafts_do_not_share_state_with_the_detector() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=4)
    sc.claim(cls, people[:2])
    det = ClassDetector()
    drafts = run(det, sc.items)
    before = [e for e in drafts[-1].evidence]
    sc.claim(cls, people[2:])
    more = run(det, sc.items[-1:])
    assert drafts[-1].evidence == before and len(more[-1].evidence) > len(before)


def test_haversine() -> None:
    assert haversine_m(31.4451, 120.5914, 31.4451, 120.5914) == 0
    assert 1110 < haversine_m(31.0, 120.0, 31.01, 120.0) < 1113


def test_throughput_on_attendance_items() -> None:
    """A floor, far below what it does (see the final report): a regression guard."""
    sc = Scenario()
    inst = sc.institution(capacity=60)
    proj = sc.project(standard_hours=40)
    for k in range(10):  # one after the other in the same venue
        days = [(date(2024, 4, 1) + timedelta(days=20 * k + d)).isoformat() for d in range(20)]
        cls = sc.class_opened(inst, proj, days=days, start="08:30", end="10:30", planned_headcount=40)
        people = [sc.enroll(cls) for _ in range(40)]
        attend_all(sc, cls, people)
    att = [i for i in sc.items if i.type == "attendance"]
    assert len(att) == 8000
    det = ClassDetector()
    t0 = time.perf_counter()
    drafts = run(det, sc.items)
    rate = len(att) / (time.perf_counter() - t0)
    assert drafts == []
    assert rate > 5_000, f"{rate:.0f} attendance items/s"


def test_a_class_over_keeps_totals_not_intervals_and_still_judges() -> None:
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=4)
    attend_all(sc, cls, people[:3])
    sc.complete(cls, people[0])  # after the last session: the class is over
    det = ClassDetector()
    assert run(det, sc.items) == []
    cs = det.classes.get(cls)
    assert cs.compact and all(s.frozen and not s.raw and not s.inside for s in cs.by_end)
    assert cs.verified_total[people[0]] == 360 * 60
    # a sign-in reported late still counts for the trainee
    sc.attend(cls, "s-01", people[3], late_minutes=60)
    sc.attend(cls, "s-02", people[3], face_score=0.2)  # suspicious: does not count
    sc.claim(cls, people)
    got = run(det, sc.items[-3:])
    (d,) = [x for x in got if x.kind == "inflated_headcount"]
    (ghost,) = [e for e in d.evidence if e["check"] == "unverified_attendance"]
    assert ghost["trainee_id"] == people[3] and ghost["verified_minutes"] == 120.0


def test_old_sign_in_windows_are_swept(monkeypatch) -> None:
    import detectors.classes as mod

    monkeypatch.setattr(mod, "SWEEP_EVERY", 5)
    sc = Scenario()
    _, _, cls, people = base(sc, trainees=3, days=["2024-01-15"], standard_hours=4)
    attend_all(sc, cls, people)
    inst2 = sc.institution()
    later = sc.class_opened(inst2, sc.project(standard_hours=4), days=["2024-05-06", "2024-05-07"], start="09:00",
                            end="12:00", planned_headcount=3)
    for t in people:
        sc.enroll(later, t)
    attend_all(sc, later, people)
    det = ClassDetector()
    assert run(det, sc.items) == []
    for t in people:  # January is more than 60 days behind May: gone
        assert all(span[2] == later for span in det.trainees.get(t))
