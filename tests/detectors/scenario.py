"""Terse builders of canonical contract records and the feed items a detector sees.

    sc = Scenario()                       # region 320505 (Suzhou pack 320500)
    inst = sc.institution()               # one venue "venue-01" (capacity 40, devices dev-01, dev-02)
    proj = sc.project(standard_hours=8)   # 8 × 45 = 360 standard minutes
    cls = sc.class_opened(inst, proj, days=["2024-01-15", "2024-01-16"])   # 08:30-11:30 each day
    t = sc.enroll(cls)                    # a new valid resident id, enrolled
    sc.attend(cls, "s-01", t)             # signs in 08:17, out 11:33, face 0.93, dev-01 at the venue
    sc.complete(cls, t, at="2024-01-19T10:00:00+08:00")
    sc.claim(cls, [t])
    drafts = run(ClassDetector(), sc.items)

Every builder appends a canonical record (``sc.records``) and the
``Accepted`` item the ledger would put in the feed (``sc.items``), with the
``pack`` the ledger sets (the record's own region; for class-linked records
the institution's pack). ``sc.jsonl()`` gives the records as JSON Lines for a
real ``Ledger`` (see ``submit_all``). Records carry ``id``s that are unique per
type; builders return the business ids (class_id, trainee_id …) and the last
record is ``sc.last``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.ids import make_credit_code, make_resident_id
from ledger.policy import pack_code_for
from projections.feed import Accepted

TZ = "+08:00"
VENUE_LAT = 31.4451
VENUE_LON = 120.5914

EXAMPLES = next(
    (
        p / "shared" / "spec" / "examples.jsonl"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "spec" / "examples.jsonl").exists()
    ),
    Path("/work/shared/spec/examples.jsonl"),
)

_CLASS_LINKED = ("class_reviewed", "enrollment", "attendance", "inspection", "completion")


def ts(day: str, hhmm: str, seconds: int = 0) -> str:
    """``ts("2024-01-15", "08:30", 5)`` -> ``2024-01-15T08:30:05+08:00``."""
    return f"{day}T{hhmm}:{seconds:02d}{TZ}"


def shift(stamp: str, *, minutes: float = 0, seconds: float = 0) -> str:
    """A timestamp moved by minutes/seconds, keeping its offset."""
    dt = datetime.fromisoformat(stamp) + timedelta(minutes=minutes, seconds=seconds)
    return dt.isoformat()


class Scenario:
    def __init__(self, region: str = "320505", *, first_position: int = 1) -> None:
        self.region = region
        self.records: list[dict[str, Any]] = []
        self.items: list[Accepted] = []
        self._position = itertools.count(first_position)
        self._seq = itertools.count(1)
        self._inst_pack: dict[str, str | None] = {}
        self._class: dict[str, dict[str, Any]] = {}
        self._trainees = itertools.count(1)
        self._institutions = itertools.count(1)
        self._queue: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------ plumbing

    @property
    def last(self) -> dict[str, Any]:
        return self.records[-1]

    def add(self, rec: dict[str, Any]) -> Accepted:
        """Append any canonical record; the pack is set as the ledger would."""
        t = rec["type"]
        if t == "class_opened":
            pack = self._inst_pack.get(rec["institution_id"])
            self._class[rec["class_id"]] = rec
        elif t in _CLASS_LINKED:
            opened = self._class.get(rec["class_id"])
            pack = self._inst_pack.get(opened["institution_id"]) if opened else None
        elif "region" in rec:
            pack = pack_code_for(rec["region"])
        else:
            pack = None
        if t == "institution":
            self._inst_pack[rec["institution_id"]] = pack
        item = Accepted(position=next(self._position), type=t, id=rec["id"], record=rec, pack=pack)
        self.records.append(rec)
        self.items.append(item)
        return item

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._seq):05d}"

    def jsonl(self) -> str:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)

    def new_trainee(self, region: str | None = None, birth: date = date(1990, 5, 17)) -> str:
        """A valid resident id never handed out before by this scenario."""
        n = next(self._trainees)
        return make_resident_id(region or self.region, birth + timedelta(days=n // 1000), n % 1000)

    def session_ids(self, class_id: str) -> list[str]:
        return [s["session_id"] for s in self._class[class_id]["sessions"]]

    def session(self, class_id: str, session_id: str) -> dict[str, Any]:
        return next(s for s in self._class[class_id]["sessions"] if s["session_id"] == session_id)

    # ------------------------------------------------------------ catalogue

    def institution(
        self,
        *,
        institution_id: str | None = None,
        status: str = "listed",
        at: str = "2024-01-03T09:00:00+08:00",
        venues: list[dict[str, Any]] | None = None,
        capacity: int = 40,
        devices: Iterable[str] = ("dev-01", "dev-02"),
        region: str | None = None,
        name: str = "某职业培训学校",
    ) -> str:
        if institution_id is None:
            n = next(self._institutions)
            institution_id = make_credit_code(f"9132050{n:02d}DC4MTWLH"[:17])
        if venues is None:
            venues = [{"venue_id": "venue-01", "capacity": capacity, "lat": VENUE_LAT, "lon": VENUE_LON,
                       "devices": list(devices)}]
        self.add({
            "type": "institution", "id": self._id("inst"), "at": at, "institution_id": institution_id,
            "name": name, "region": region or self.region, "status": status, "star": 4, "venues": venues,
        })
        return institution_id

    def project(self, *, project_id: str | None = None, standard_hours: int = 8, class_hour_minutes: int = 45,
                at: str = "2024-01-03T09:00:00+08:00", subsidy: str = "300.00", level: int = 5,
                occupation_code: str = "4-10-01-05") -> str:
        project_id = project_id or self._id("proj")
        self.add({
            "type": "project", "id": self._id("proj-rec"), "at": at, "project_id": project_id,
            "region": self.region,
            "occupation_code": occupation_code, "occupation_name": "养老护理员", "level": level,
            "training_kind": "employment_skills", "standard_hours": standard_hours,
            "class_hour_minutes": class_hour_minutes, "subsidy_per_trainee": subsidy, "shortage": True,
        })
        return project_id

    # ------------------------------------------------------------ classes

    def class_opened(
        self,
        institution_id: str,
        project_id: str,
        *,
        class_id: str | None = None,
        days: Iterable[str] = ("2024-01-15", "2024-01-16"),
        start: str = "08:30",
        end: str = "11:30",
        sessions: list[tuple[str, str]] | None = None,
        teacher: str | None = None,
        mode: str = "onsite",
        venue_id: str = "venue-01",
        at: str = "2024-01-08T10:00:00+08:00",
        planned_headcount: int = 2,
    ) -> str:
        """Sessions ``s-01``… from ``days`` × (start, end), or explicit ``sessions`` [(start_ts, end_ts)];
        every session has ``teacher`` (default: one of this class's own) and ``mode``."""
        class_id = class_id or self._id("class")
        teacher = teacher or f"teacher-{class_id}"  # one teacher per class unless told: no accidental clash
        if sessions is None:
            sessions = [(ts(d, start), ts(d, end)) for d in days]
        sess = [
            {"session_id": f"s-{i:02d}", "start": s, "end": e, "teacher_id": teacher, "mode": mode}
            for i, (s, e) in enumerate(sessions, 1)
        ]
        self.add({
            "type": "class_opened", "id": self._id("open"), "at": at, "class_id": class_id,
            "institution_id": institution_id, "project_id": project_id, "venue_id": venue_id,
            "start_date": sessions[0][0][:10], "end_date": sessions[-1][1][:10],
            "planned_headcount": planned_headcount, "sessions": sess,
        })
        return class_id

    def review(self, class_id: str, decision: str = "approved", at: str = "2024-01-09T15:00:00+08:00") -> None:
        self.add({"type": "class_reviewed", "id": self._id("rev-class"), "at": at, "class_id": class_id,
                  "reviewer_id": "officer-12", "decision": decision})

    def enroll(self, class_id: str, trainee_id: str | None = None, at: str = "2024-01-10T09:00:00+08:00") -> str:
        trainee_id = trainee_id or self.new_trainee()
        self.add({"type": "enrollment", "id": self._id("enr"), "at": at, "class_id": class_id,
                  "trainee_id": trainee_id, "category": "migrant_worker", "hukou_region": "511302"})
        return trainee_id

    def attend(
        self,
        class_id: str,
        session_id: str,
        trainee_id: str,
        *,
        sign_in: str | None = None,
        sign_out: str | None = None,
        late_minutes: float = 0,
        early_minutes: float = 0,
        method: str = "face",
        device: str = "dev-01",
        lat: float = VENUE_LAT + 0.00009,
        lon: float = VENUE_LON + 0.00001,
        face_score: float | None = 0.93,
        at: str | None = None,
    ) -> str:
        """One sign-in/out. Default: 13 minutes before the start (plus 11 s per earlier default
        sign-in to this session: people pass a device at a human pace) to 3 minutes after the end."""
        s = self.session(class_id, session_id)
        if sign_in is None:
            k = self._queue.get((class_id, session_id), 0)
            self._queue[(class_id, session_id)] = k + 1
            sign_in = shift(s["start"], minutes=late_minutes) if late_minutes else shift(s["start"], minutes=-13, seconds=11 * k)
        if sign_out is None:
            sign_out = shift(s["end"], minutes=-early_minutes) if early_minutes else shift(s["end"], minutes=3)
        rec = {
            "type": "attendance", "id": self._id("att"), "at": at or sign_in, "class_id": class_id,
            "session_id": session_id, "trainee_id": trainee_id, "sign_in": sign_in, "sign_out": sign_out,
            "method": method, "device_id": device, "lat": lat, "lon": lon,
        }
        if face_score is not None and method == "face":
            rec["face_score"] = face_score
        self.add(rec)
        return rec["id"]

    def inspect(self, class_id: str, session_id: str, at: str, present: int) -> str:
        rec = {"type": "inspection", "id": self._id("insp"), "at": at, "class_id": class_id,
               "session_id": session_id, "inspector_id": "officer-31", "present_count": present}
        self.add(rec)
        return rec["id"]

    def complete(self, class_id: str, trainee_id: str, *, passed: bool = True,
                 at: str = "2024-01-19T10:00:00+08:00") -> str:
        rec = {"type": "completion", "id": self._id("comp"), "at": at, "class_id": class_id,
               "trainee_id": trainee_id, "passed": passed, "certificate_kind": "special_ability",
               "certificate_no": self._id("SZ")}
        self.add(rec)
        return rec["id"]

    def claim(self, class_id: str | None, trainee_ids: list[str], *, amount: str | None = None,
              subsidy_kind: str = "training", at: str = "2024-01-26T10:00:00+08:00",
              claimant_id: str | None = None, claim_id: str | None = None, handled_by: str = "officer-04",
              region: str | None = None) -> str:
        claim_id = claim_id or self._id("claim")
        opened = self._class.get(class_id or "")
        rec: dict[str, Any] = {
            "type": "claim", "id": self._id("claim-rec"), "at": at, "claim_id": claim_id,
            "region": region or self.region,
            "claimant_id": claimant_id or (opened["institution_id"] if opened else make_credit_code("91320505DC4MTWLHW")),
            "claimant_kind": "institution", "subsidy_kind": subsidy_kind,
        }
        if class_id is not None:
            rec["class_id"] = class_id
        rec["trainee_ids"] = list(trainee_ids)
        rec["amount"] = amount or f"{300 * len(trainee_ids)}.00"
        rec["handled_by"] = handled_by
        self.add(rec)
        return claim_id

    # ------------------------------------------------------------ whole stories

    def clean_class(self, *, trainees: int = 2, days: Iterable[str] = ("2024-01-15", "2024-01-16"),
                    institution_id: str | None = None, project_id: str | None = None,
                    claim: bool = True, **class_kw: Any) -> tuple[str, list[str]]:
        """A class like the contract's example: everyone present at every session, passed, claimed."""
        inst = institution_id or self.institution()
        proj = project_id or self.project(standard_hours=8)
        days = list(days)
        cls = self.class_opened(inst, proj, days=days, planned_headcount=trainees, **class_kw)
        people = [self.enroll(cls) for _ in range(trainees)]
        for sid in self.session_ids(cls):
            for i, t in enumerate(people):
                s = self.session(cls, sid)
                self.attend(cls, sid, t, sign_in=shift(s["start"], minutes=-13, seconds=37 * i),
                            device=("dev-01", "dev-02")[i % 2])
        last_day = self.session(cls, self.session_ids(cls)[-1])["end"][:10]
        done = ts((date.fromisoformat(last_day) + timedelta(days=3)).isoformat(), "10:00")
        for t in people:
            self.complete(cls, t, at=done)
        if claim:
            self.claim(cls, people, at=ts((date.fromisoformat(last_day) + timedelta(days=10)).isoformat(), "10:00"))
        return cls, people


def examples() -> Scenario:
    """The contract's clean example (examples.jsonl) as a scenario."""
    sc = Scenario()
    for line in EXAMPLES.read_text(encoding="utf-8").splitlines():
        if line.strip():
            sc.add(json.loads(line))
    return sc


def run(detector: Any, items: Iterable[Any]) -> list[Any]:
    """All drafts a detector returns over the items, in order."""
    out = []
    for it in items:
        out.extend(detector.observe(it))
    return out


def submit_all(ledger: Any, sc: Scenario, batch: int = 500) -> Any:
    """Submit a scenario's records to a real Ledger; asserts every record is accepted."""
    from ledger.application import Submission

    subs = [Submission.from_text(line, line=i) for i, line in enumerate(sc.jsonl().splitlines(), 1)]
    results = []
    for k in range(0, len(subs), batch):
        results.append(ledger.submit(subs[k:k + batch]))
    bad = [o for r in results for o in r.outcomes if o.status == "rejected"]
    assert not bad, f"records rejected: {[(o.type, o.id, o.reason, o.detail) for o in bad][:5]}"
    return results
