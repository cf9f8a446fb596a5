"""Simulator: a year of one region's skills-upgrade training, with labelled fraud.

``simulate(seed=…, classes=…, fraud_rate=…)`` returns contract records
(../shared/spec/records.md, JSON-native dicts) in causal order, the labels of
the fraud it injected (for evaluating detectors only: nothing in ``ledger/``
or ``detectors/`` may read them) and the rejections the bad records it
injected must get. ``write()`` stores the three as JSON Lines.

Deterministic for a seed: one ``random.Random(seed)``, no wall clock, no
iteration over sets. Time is kept as integer seconds of local time (+08:00)
since 2000-01-01 and formatted once per record.

How the year is built
---------------------
catalogue (appropriations, institutions, projects) on 2 January; classes start
between mid-January and the autumn and end by 10 November. A class:
class_opened 7–12 days before its start, class_reviewed the next day,
enrollments two days after opening, one attendance per trainee and session
(face sign-in 1–20 minutes before the start, queued at least 3 s apart per
device, sign-out 0–8 minutes after the end, within ~40 m of the venue, face
score 0.85–0.99), an inspection on about half the classes, completions 2–4
days after the end, then the training claim → claim_reviewed → notice
(7–9 days, no objections) → payment after the notice end → bank line.
Officers who handle, review and approve a claim are distinct.

Ordinary noise that must raise nothing: a few trainees absent from one or two
sessions (never more than a quarter), late sign-ins of 10–20 minutes, one face
score of 0.6 in a class, some online sessions (signed in far from the venue),
people taking two classes of different occupations on disjoint dates,
several payments to one institution within a week for distinct classes,
pensioners whose pension starts after their class, shared 以工代训 workers
whose months add up to at most 6, exact re-sends of records (with bad_rate),
money coming in on the bank statement.

Injected fraud (one case per affected class or claim; every kind at least once
when fraud_rate > 0 and classes >= 20; at most half the classes affected;
variants alternate case by case):

inflated_headcount   ghost trainees enrolled, passed and claimed, with no or one session's attendance;
                     or an inspection counting 45-60% of those signed in at its ``at``
shortened_hours      every sign-in 10-15% of the session late and sign-out 10-15% early;
                     or a schedule of about 75% of standard_hours
proxy_sign_in        ~8% of sign-ins (spread, at most ~25% of any trainee's) with face 0.40-0.65, or
                     2-5 km away, or on an unregistered device; or sessions where trainees sign in on
                     one device in threes within 1 s
overlapping_enrollment  a trainee of one class also enrolled in a class at another venue starting the
                     same day an hour later, attending both (other occupation)
repeat_subsidy       a trainee claimed again for the same project after an approved claim; or in a
                     4th class (4 occupations) after three approved claims that year
ineligible_trainee   a trainee registered deceased since before the class start (registry record
                     before the claim, or only after the payment)
excess_claim         training claim for 1-3 trainees more than its trainee_ids (approved and paid)
duplicate_payment    a class's living-allowance claim filed and paid again: same class, trainees, amount
split_payment        an award of 120,000/150,000/200,000 paid in 3/4/5 payments on consecutive days
segregation_of_duties  handler also reviewer; or reviewer also approves the payment
unlisted_institution an institution of its own, suspended/delisted before its class opened, or after
                     the class but before the claim
notice_skipped       paid on the notice end date; 3-4 day notice; no notice; or objections > 0
work_for_training_overrun  one worker in two enterprises' 以工代训 claims, months adding to 7-12
teacher_double_booked  a class at another venue, same days, an hour later, same teacher
venue_over_capacity  3-8 more trainees than the venue holds, all signing in
unreconciled_outflow a money-out bank line with no payment; or a payment's line with another amount
anomalous_class      100% pass, sign-ins exactly 3 s apart at the same offsets every session,
                     identical sign-outs, face scores and coordinates
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
from dataclasses import dataclass, field
from operator import itemgetter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ledger.ids import make_credit_code, make_resident_id, resident_check_char, USCC_ALPHABET
from ledger.money import fen_to_yuan
from ledger.policy import ALERT_KINDS

__all__ = ["Simulation", "simulate", "write", "main"]

YUAN = 100  # fen
SPLIT_THRESHOLD = 50_000 * YUAN
WFT_MONTHLY = 500 * YUAN  # 以工代训 per person and month
LA_DAILY = 30 * YUAN  # living allowance per trainee and training day

_DAY = timedelta(days=1)
_EPOCH = date(2000, 1, 1).toordinal()
_DAY_STR: dict[int, str] = {}


def _dsec(d: date, h: int = 0, m: int = 0, s: int = 0) -> int:
    return (d.toordinal() - _EPOCH) * 86400 + h * 3600 + m * 60 + s


def _sdate(sec: int) -> date:
    return date.fromordinal(sec // 86400 + _EPOCH)


_HMS: list[str] = []  # "THH:MM:SS+08:00" for every second of a day, built on first use


def _ts(sec: int) -> str:
    if not _HMS:
        _HMS.extend(f"T{h:02d}:{m:02d}:{s:02d}+08:00" for h in range(24) for m in range(60) for s in range(60))
    day, rem = divmod(sec, 86400)
    ds = _DAY_STR.get(day)
    if ds is None:
        ds = _DAY_STR[day] = date.fromordinal(day + _EPOCH).isoformat()
    return ds + _HMS[rem]


def _weekday_on_or_after(d: date) -> date:
    while d.weekday() >= 5:
        d += _DAY
    return d


def _weekdays(start: date, n: int) -> list[date]:
    out: list[date] = []
    d = start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += _DAY
    return out


# --------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class _Region:
    document: str
    city: str
    districts: tuple[tuple[str, str], ...]
    lat: float
    lon: float
    cert_prefix: str


_REGIONS: dict[str, _Region] = {
    "320500": _Region("苏府办〔2017〕372号", "苏州市", (("320505", "高新区"), ("320506", "吴中区")), 31.30, 120.58, "SZ"),
    "420100": _Region("武政办〔2020〕10号", "武汉市", (("420106", "武昌区"), ("420102", "江岸区")), 30.55, 114.31, "WH"),
    "450000": _Region("桂政发〔2019〕16号", "南宁市", (("450103", "青秀区"), ("450105", "江南区")), 22.82, 108.37, "GX"),
    "370306": _Region("周政办发〔2020〕2号", "淄博市", (("370306", "周村区"),), 36.80, 117.87, "ZC"),
    "230000": _Region("黑龙江省农民工技能素质提升工程方案", "哈尔滨市", (("230102", "道里区"), ("230103", "南岗区")), 45.76, 126.62, "HL"),
}

# Where trainees' hukou (and the first six digits of their ids) come from.
_HUKOU = (
    "320505", "320506", "320581", "340102", "341202", "410105", "411302", "420106", "421002",
    "430102", "510104", "511302", "522601", "450103", "450105", "370306", "370303", "230102",
    "230103", "130102", "360102", "500101", "610102", "620102", "350102", "440106",
)
_CATEGORIES = (
    ("migrant_worker", 30), ("unemployed", 20), ("poverty", 8), ("graduate", 12), ("two_after", 4),
    ("veteran", 3), ("disabled", 2), ("employee", 18), ("other", 3),
)
_LA_CATEGORIES = ("poverty", "unemployed", "two_after", "graduate")
_BRANDS = ("恒信", "众诚", "启航", "精英", "博远", "华新", "远航", "金鼎", "明德", "育才", "新程", "匠心", "鼎盛", "天成")

# (occupation_code, occupation_name, levels); "special" = 专项职业能力 under that code.
_OCCUPATIONS = (
    ("4-10-01-05", "养老护理员", (5, 4, 3)),
    ("4-03-02-01", "中式烹调师", (5, 4)),
    ("6-18-02-01", "焊工", (5, 4)),
    ("4-10-01-01", "家政服务员", (5, 4)),
    ("4-07-05-02", "电子商务师", (4, 3)),
    ("4-10-01-02", "育婴员", (5, 4)),
    ("4-10-01-03", "保育员", (5,)),
    ("6-31-01-03", "电工", (5, 4)),
    ("4-03-02-03", "中式面点师", (5,)),
    ("4-10-03-01", "美容师", (5,)),
    ("4-10-03-02", "美发师", (5,)),
    ("6-29-01-01", "砌筑工", (5,)),
    ("4-14-02-02", "健康管理师", (3,)),
)
_SPECIALS = (
    ("4-10-01-05", "失智老年人照护（专项职业能力）"),
    ("4-07-05-02", "直播销售（专项职业能力）"),
    ("4-03-02-01", "地方特色小吃制作（专项职业能力）"),
    ("4-10-01-01", "整理收纳（专项职业能力）"),
)
_AWARDS = (
    ("技能大师工作室建设资助", (50_000,)),
    ("技能大师工作室年度考核奖励", (10_000, 20_000, 30_000, 40_000, 50_000)),
    ("首席技师年度资助", (20_000, 30_000)),
)
_SPLIT_AWARDS = (("公共实训基地建设补助", 120_000, 3), ("引才单位奖励", 150_000, 4), ("公共实训基地建设补助", 200_000, 5))


# --------------------------------------------------------------------------- plan objects


@dataclass(eq=False)
class _Person:
    pid: str
    category: str
    hukou: str
    born: int
    special: bool = False  # part of an injected or noise story: no random noise on it


@dataclass(eq=False)
class _Venue:
    vid: str
    cap: int
    lat: float
    lon: float
    devices: list[str]


@dataclass(eq=False)
class _Inst:
    n: int
    credit: str
    name: str
    district: str
    star: int
    venues: list[_Venue]
    account: str
    teachers: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _Project:
    pid: str
    code: str
    name: str
    level: int | str
    kind: str
    hours: int
    chm: int
    subsidy: int  # fen
    shortage: bool


@dataclass(eq=False)
class _Class:
    project: _Project
    inst: _Inst
    venue: _Venue
    start: date
    m0: int  # session start, minutes after midnight
    smin: int  # session length in minutes
    dates: list[date]
    teacher: str
    roster: list[_Person] = field(default_factory=list)
    ghosts: list[_Person] = field(default_factory=list)
    fraud: str | None = None
    variant: int = 0
    partner: bool = False
    noise: bool = True
    online: tuple[int, ...] = ()
    la: bool = False  # gets a living-allowance claim
    cid: str = ""
    num: int = 0
    # filled when emitted
    passed: list[_Person] = field(default_factory=list)
    comp_day: date | None = None
    flow: _Flow | None = None
    claim_labels: list[tuple[str, dict, str]] = field(default_factory=list)  # labelled with the claim_id
    suspend_on: date | None = None
    ineligible: _Person | None = None
    unlisted_label: dict | None = None

    @property
    def end(self) -> date:
        return self.dates[-1]


@dataclass(eq=False)
class _Pay:
    pid: str
    at: int
    amount: int
    fund: str
    approver: str
    bank_ref: str
    lag: int = 0  # value date = payment date + lag
    bank_amount: int | None = None  # a different amount on the bank line (unreconciled)
    bad: str | None = None  # expected rejection reason; no bank line
    rec: dict | None = None


@dataclass(eq=False)
class _Flow:
    claim: dict
    claim_at: int
    payee: str
    account: str
    region: str
    handler: str
    reviewer: str
    review_at: int
    approved: int
    notice: tuple[int, date, date, int] | None
    pays: list[_Pay]
    kind: str
    cls: _Class | None = None
    used: bool = False
    claim_rec: dict | None = None


# --------------------------------------------------------------------------- public API


@dataclass
class Simulation:
    records: list[dict]
    labels: list[dict]
    expected_rejections: list[dict]


def simulate(
    *,
    seed: int,
    classes: int,
    fraud_rate: float,
    region: str = "320500",
    year: int = 2024,
    bad_rate: float = 0.0,
    attendance_heavy: bool = False,
) -> Simulation:
    """A year of ``region``'s training with ``classes`` classes (see module doc)."""
    if region not in _REGIONS:
        raise ValueError(f"region must be one of the pack codes {sorted(_REGIONS)}, got {region!r}")
    if classes < 0:
        raise ValueError("classes must be >= 0")
    if not 0.0 <= fraud_rate <= 1.0 or not 0.0 <= bad_rate <= 1.0:
        raise ValueError("fraud_rate and bad_rate are fractions between 0 and 1")
    gen = _Gen(seed, classes, fraud_rate, region, year, bad_rate, attendance_heavy)
    enabled = gc.isenabled()
    gc.disable()  # hundreds of thousands of new dicts, no cycles: the collector only slows this down
    try:
        return gen.run()
    finally:
        if enabled:
            gc.enable()


def write(sim: Simulation, out_dir: Path) -> dict[str, Path]:
    """records.jsonl, labels.jsonl, rejections.expected.jsonl (UTF-8 JSON Lines)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "records": out_dir / "records.jsonl",
        "labels": out_dir / "labels.jsonl",
        "rejections": out_dir / "rejections.expected.jsonl",
    }
    for key, rows in (("records", sim.records), ("labels", sim.labels), ("rejections", sim.expected_rejections)):
        with open(paths[key], "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return paths


# --------------------------------------------------------------------------- generator

_CLASS_KINDS = (
    "inflated_headcount", "shortened_hours", "proxy_sign_in", "ineligible_trainee", "excess_claim",
    "duplicate_payment", "segregation_of_duties", "notice_skipped", "venue_over_capacity", "anomalous_class",
)
_PLACED_KINDS = ("overlapping_enrollment", "teacher_double_booked", "repeat_subsidy", "unlisted_institution")
_RECORD_PREFIX = {
    "appropriation": "appr", "institution": "inst", "project": "projrec", "class_opened": "open",
    "class_reviewed": "crev", "enrollment": "enr", "attendance": "att", "inspection": "insp",
    "completion": "comp", "person_status": "reg", "claim": "clm", "claim_reviewed": "rrev",
    "notice": "ntc", "payment": "payrec", "recovery": "rcv", "bank_statement": "bank",
}


class _Gen:
    def __init__(self, seed, classes, fraud_rate, region, year, bad_rate, heavy) -> None:
        self.rng = random.Random(seed)
        self.n_classes = classes
        self.fraud_rate = fraud_rate
        self.region = region
        self.reg = _REGIONS[region]
        self.year = year
        self.bad_rate = bad_rate
        self.heavy = heavy
        self.first_start = _weekday_on_or_after(date(year, 1, 17))
        self.last_end = date(year, 11, 10)
        if heavy:
            self.slots = ((510, 120), (660, 120), (840, 120), (990, 120), (1140, 120))
        else:
            self.slots = ((510, 180), (510, 240), (840, 180), (840, 240), (1110, 180))
        self.out: list[tuple[int, int, dict]] = []
        self.same_id: dict[int, dict] = {}  # id(copy) -> original: same record id
        self.labels: list[dict] = []
        self.bad: list[tuple[dict, str]] = []
        self.pids: set[str] = set()
        self.credits: set[str] = set()
        self.bank_refs: set[str] = set()
        self.busy: dict[str, list[tuple[int, int, int, int]]] = {}
        self.classes: list[_Class] = []
        self.flows: list[_Flow] = []
        self.n_claim = 0
        self.n_pay = 0
        self.n_cert = 0
        self.officers = [f"officer-{i:02d}" for i in range(1, 17)]
        self.att_recs: list[tuple[int, dict]] = []
        self.kind_count: dict[str, int] = {}
        self.stray_lines = 0
        self.n_bad_payments = 0
        self.industry_development = False

    # ------------------------------------------------------------------ helpers

    def add(self, sec: int, type_: str, fields: dict, at: str | None = None) -> dict:
        rec = {"type": type_, "id": "", "at": at or _ts(sec)}
        rec.update(fields)
        self.out.append((sec, len(self.out), rec))
        return rec

    def label(self, kind: str, subject: dict, note: str) -> None:
        self.labels.append({"kind": kind, "subject": subject, "note": note})

    def person(self, *, category: str | None = None, born: tuple[int, int] = (1966, 2005)) -> _Person:
        rng = self.rng
        while True:
            hukou = rng.choice(_HUKOU)
            y = rng.randint(*born)
            pid = make_resident_id(hukou, date(y, rng.randint(1, 12), rng.randint(1, 28)), rng.randrange(1000))
            if pid not in self.pids:
                self.pids.add(pid)
                break
        if category is None:
            category = rng.choices([c for c, _ in _CATEGORIES], [w for _, w in _CATEGORIES])[0]
        return _Person(pid, category, hukou, y)

    def credit(self, kind: str, district: str) -> str:
        while True:
            code = make_credit_code(kind + district + "".join(self.rng.choice(USCC_ALPHABET) for _ in range(9)))
            if code not in self.credits:
                self.credits.add(code)
                return code

    def account(self) -> str:
        return "6222" + "".join(str(self.rng.randrange(10)) for _ in range(15))

    def bank_ref(self, d: date) -> str:
        while True:
            ref = f"BR{d:%Y%m%d}{self.rng.randrange(10**6):06d}"
            if ref not in self.bank_refs:
                self.bank_refs.add(ref)
                return ref

    def claim_id(self) -> str:
        self.n_claim += 1
        return f"~c{self.n_claim}"

    def pay_id(self) -> str:
        self.n_pay += 1
        return f"~p{self.n_pay}"

    def variant(self, kind: str) -> int:
        v = self.kind_count.get(kind, 0)
        self.kind_count[kind] = v + 1
        return v

    def officers3(self) -> list[str]:
        return self.rng.sample(self.officers, 3)

    # ------------------------------------------------------------------ run

    def run(self) -> Simulation:
        self.setup_catalogue()
        cases = self.plan_cases()
        self.plan_classes(cases)
        for k in self.classes:
            self.emit_class(k)
        self.build_class_flows()
        self.build_other_flows(cases)
        self.inject_bad_payments()
        for f in self.flows:
            self.emit_flow(f)
        self.emit_person_statuses()
        self.emit_recoveries()
        self.emit_stray_bank_lines()
        self.emit_appropriations()
        self.emit_bad_records()
        return self.finish()

    # ------------------------------------------------------------------ catalogue

    def setup_catalogue(self) -> None:
        rng = self.rng
        n_inst = max(3, round(self.n_classes / 8))
        self.insts: list[_Inst] = []
        for n in range(1, n_inst + 1):
            self.insts.append(self.make_inst(n))
        combos: list[tuple[str, str, int | str]] = []
        for code, name, levels in _OCCUPATIONS:
            combos.extend((code, name, lv) for lv in levels)
        specials = [(code, name, "special") for code, name in _SPECIALS]
        chosen = rng.sample(combos, 17) + rng.sample(specials, 3)
        rng.shuffle(chosen)
        self.projects: list[_Project] = []
        for i, (code, name, level) in enumerate(chosen, 1):
            if level == "special":
                hours, subsidy = rng.choice(range(16, 41, 8)), rng.choice(range(300, 801, 100))
            elif level == 5:
                hours, subsidy = rng.choice(range(40, 81, 8)), rng.choice(range(600, 1501, 100))
            elif level == 4:
                hours, subsidy = rng.choice(range(64, 105, 8)), rng.choice(range(1000, 2001, 100))
            else:
                hours, subsidy = rng.choice(range(80, 121, 8)), rng.choice(range(1500, 2501, 100))
            shortage = rng.random() < 0.3
            if shortage:
                subsidy = min(2500, subsidy + 200)
            kind = "post_skills" if code in ("6-18-02-01", "6-31-01-03") else "employment_skills"
            self.projects.append(_Project(f"proj-{i:04d}", code, name, level, kind, hours, 45, subsidy * YUAN, shortage))
        sec = _dsec(date(self.year, 1, 2), 10)
        for inst in self.insts:
            self.emit_institution(sec, inst, "listed")
            sec += 60
        sec = _dsec(date(self.year, 1, 2), 11)
        for p in self.projects:
            self.add(sec, "project", {
                "project_id": p.pid, "region": self.region, "occupation_code": p.code,
                "occupation_name": p.name if p.level == "special" else f"{p.name}（{_LEVEL_NAME[p.level]}）",
                "level": p.level, "training_kind": p.kind, "standard_hours": p.hours,
                "class_hour_minutes": p.chm, "subsidy_per_trainee": fen_to_yuan(p.subsidy), "shortage": p.shortage,
            })
            sec += 30

    def make_inst(self, n: int, *, venues: int | None = None) -> _Inst:
        rng, reg = self.rng, self.reg
        district, dname = rng.choice(reg.districts)
        brand = _BRANDS[(n - 1) % len(_BRANDS)] + ("" if n <= len(_BRANDS) else str((n - 1) // len(_BRANDS) + 1))
        vs = []
        for k in range(1, (venues or rng.randint(1, 3)) + 1):
            vs.append(_Venue(
                f"v-{n:03d}-{k}", rng.randint(30, 80),
                round(reg.lat + rng.uniform(-0.12, 0.12), 6), round(reg.lon + rng.uniform(-0.12, 0.12), 6),
                [f"dev-{n:03d}-{k}-{d}" for d in range(1, rng.randint(2, 3) + 1)],
            ))
        inst = _Inst(n, self.credit("52", district), f"{reg.city}{dname}{brand}职业培训学校", district,
                     rng.randint(2, 5), vs, self.account())
        inst.teachers = [f"t-{n:03d}-{i:02d}" for i in range(1, rng.randint(3, 6) + 1)]
        return inst

    def emit_institution(self, sec: int, inst: _Inst, status: str) -> None:
        self.add(sec, "institution", {
            "institution_id": inst.credit, "name": inst.name, "region": inst.district, "status": status,
            "star": inst.star,
            "venues": [{"venue_id": v.vid, "capacity": v.cap, "lat": v.lat, "lon": v.lon, "devices": list(v.devices)}
                       for v in inst.venues],
        })

    # ------------------------------------------------------------------ planning

    def plan_cases(self) -> list[str]:
        if self.fraud_rate <= 0 or self.n_classes <= 0:
            return []
        n = round(self.fraud_rate * self.n_classes)
        if self.n_classes >= 20:
            n = min(max(n, len(ALERT_KINDS)), max(len(ALERT_KINDS), self.n_classes // 2))
        order = list(ALERT_KINDS)
        self.rng.shuffle(order)
        return [order[i % len(order)] for i in range(n)]

    def free(self, key: str, d0: int, d1: int, m0: int, m1: int) -> bool:
        for a0, a1, b0, b1 in self.busy.get(key, ()):
            if a0 <= d1 and d0 <= a1 and b0 < m1 and m0 < b1:
                return False
        return True

    def reserve(self, key: str, d0: int, d1: int, m0: int, m1: int) -> None:
        self.busy.setdefault(key, []).append((d0, d1, m0, m1))

    def n_sessions(self, p: _Project, smin: int) -> int:
        return math.ceil(p.hours * p.chm / smin)

    def try_place(self, p: _Project, inst: _Inst, venue: _Venue, start: date, m0: int, smin: int,
                  teacher: str | None = None) -> _Class | None:
        dates = _weekdays(start, self.n_sessions(p, smin))
        if dates[-1] > self.last_end:
            return None
        d0, d1, m1 = dates[0].toordinal(), dates[-1].toordinal(), m0 + smin
        if not self.free(venue.vid, d0, d1, m0, m1):
            return None
        if teacher is None:
            pool = list(inst.teachers)
            self.rng.shuffle(pool)
            teacher = next((t for t in pool if self.free(t, d0, d1, m0, m1)), None)
            if teacher is None:
                teacher = f"t-{inst.n:03d}-{len(inst.teachers) + 1:02d}"
                inst.teachers.append(teacher)
        self.reserve(venue.vid, d0, d1, m0, m1)
        self.reserve(teacher, d0, d1, m0, m1)
        return _Class(p, inst, venue, dates[0], m0, smin, dates, teacher)

    def place_random(self, p: _Project, *, inst: _Inst | None = None, earliest: date | None = None) -> _Class | None:
        rng = self.rng
        lo = max(self.first_start, earliest or self.first_start)
        for _ in range(300):
            ins = inst or rng.choice(self.normal_insts)
            venue = rng.choice(ins.venues)
            m0, smin = rng.choice(self.slots)
            span = math.ceil(self.n_sessions(p, smin) / 5) * 7 + 3
            hi = self.last_end - timedelta(days=span)
            if hi < lo:
                continue
            start = _weekday_on_or_after(lo + timedelta(days=rng.randint(0, (hi - lo).days)))
            k = self.try_place(p, ins, venue, start, m0, smin)
            if k is not None:
                return k
        return None

    def pick_project(self, *, exclude_codes: tuple[str, ...] = (), short: bool = False) -> _Project:
        ps = [p for p in self.projects if p.code not in exclude_codes]
        if short:
            ps = [p for p in ps if p.hours <= 48] or ps
        elif self.heavy:
            ps = [p for p in ps if p.hours >= 64] or ps
        return self.rng.choice(ps)

    def fill_roster(self, k: _Class, n: int | None = None) -> None:
        rng, cap = self.rng, k.venue.cap
        if n is None:
            n = rng.randint(max(15, int(cap * 0.75)), cap) if self.heavy else rng.randint(15, min(40, cap))
        while len(k.roster) < n:
            k.roster.append(self.person())

    def plan_classes(self, cases: list[str]) -> None:
        rng = self.rng
        self.normal_insts = list(self.insts)
        n_placed = sum(1 for c in cases if c in _PLACED_KINDS)
        base: list[_Class] = []
        for _ in range(max(0, self.n_classes - n_placed)):
            k = self.place_random(self.pick_project())
            if k is not None:
                self.fill_roster(k)
                base.append(k)
        self.classes = list(base)
        self.clean = list(base)
        rng.shuffle(self.clean)
        # classes that need a partner or a placement of their own
        for kind in cases:
            if kind not in _PLACED_KINDS:
                continue
            k = getattr(self, "place_" + kind)(self.variant(kind))
            if k is None:  # no room for the story: an ordinary class instead
                k = self.place_random(self.pick_project())
                if k is not None:
                    self.fill_roster(k)
                    self.clean.append(k)
            if k is not None:
                self.classes.append(k)
        # ids in start order, so that an id says nothing about fraud
        self.classes.sort(key=lambda k: (k.start, k.m0, k.venue.vid))
        width = max(4, len(str(len(self.classes))))
        for num, k in enumerate(self.classes, 1):
            k.num = num
            k.cid = f"class-{num:0{width}d}"
        # fraud that changes an ordinary class
        for kind in cases:
            if kind in _CLASS_KINDS:
                self.convert(kind, self.variant(kind))
        self.noise_two_classes()
        for k in self.clean:
            if rng.random() < 0.12 and len(k.dates) >= 4:
                k.online = tuple(j for j in range(len(k.dates)) if rng.random() < 0.3)
            if rng.random() < 0.2:
                k.la = True

    def take_clean(self, pred=None) -> _Class | None:
        for i, k in enumerate(self.clean):
            if pred is None or pred(k):
                return self.clean.pop(i)
        return None

    # -- placed fraud ---------------------------------------------------------

    def _y_overlapping(self, x: _Class, p: _Project, teacher: str | None) -> _Class | None:
        rng = self.rng
        insts = [x.inst] + [i for i in self.normal_insts if i is not x.inst]
        venues = [(i, v) for i in insts for v in i.venues if v is not x.venue]
        if teacher is None:
            rng.shuffle(venues)
        smin = 120 if self.heavy else 180
        shift = 30 if self.heavy else 60
        for inst, venue in venues[:40]:
            y = self.try_place(p, inst, venue, x.start, x.m0 + shift, smin, teacher=teacher)
            if y is not None:
                return y
        return None

    def place_overlapping_enrollment(self, v: int) -> _Class | None:
        for x in list(self.clean):
            p = self.pick_project(exclude_codes=(x.project.code,))
            y = self._y_overlapping(x, p, None)
            if y is None:
                continue
            self.clean.remove(x)
            x.partner = True
            t = next(q for q in x.roster if not q.special)
            t.special = True
            self.fill_roster(y, min(y.venue.cap - 1, self.rng.randint(15, 35)))
            y.roster.append(t)
            y.fraud, y.variant = "overlapping_enrollment", v
            self.label("overlapping_enrollment", {"trainee_id": t.pid},
                       "trainee enrolled in two classes whose sessions overlap in time and signed in to both")
            return y
        return None

    def place_teacher_double_booked(self, v: int) -> _Class | None:
        for x in list(self.clean):
            p = self.pick_project()
            y = self._y_overlapping(x, p, x.teacher)
            if y is None:
                continue
            self.clean.remove(x)
            x.partner = True
            self.fill_roster(y)
            y.fraud, y.variant = "teacher_double_booked", v
            self.label("teacher_double_booked", {"teacher_id": x.teacher},
                       "the same teacher is scheduled for overlapping sessions of two classes at different venues")
            return y
        return None

    def place_repeat_subsidy(self, v: int) -> _Class | None:
        if v % 2 == 1:
            y = self._repeat_fourth(v)
            if y is not None:
                return y
        for x in list(self.clean):
            earliest = x.end + timedelta(days=21)
            if earliest > self.last_end - timedelta(days=30):
                continue
            y = self.place_random(x.project, earliest=earliest)
            if y is None:
                continue
            self.clean.remove(x)
            x.partner = True
            t = next(q for q in x.roster if not q.special)
            t.special = True
            self.fill_roster(y, min(y.venue.cap - 1, self.rng.randint(15, 35)))
            y.roster.append(t)
            y.fraud, y.variant = "repeat_subsidy", v
            y.claim_labels.append(("repeat_subsidy", {"trainee_id": t.pid},
                                   "trainee already subsidised this year for the same occupation and level"))
            return y
        return None

    def _repeat_fourth(self, v: int) -> _Class | None:
        """A person in three ordinary classes (three occupations), then a fourth."""
        chain: list[_Class] = []
        pool = sorted(self.clean, key=lambda k: k.start)
        for x in pool:
            codes = [c.project.code for c in chain]
            if x.project.code in codes:
                continue
            if chain and (x.start <= chain[-1].end + timedelta(days=2) or len(x.roster) >= x.venue.cap):
                continue
            chain.append(x)
            if len(chain) == 3:
                break
        if len(chain) < 3:
            return None
        codes = tuple(c.project.code for c in chain)
        earliest = chain[-1].end + timedelta(days=21)
        p = self.pick_project(exclude_codes=codes, short=True)
        y = self.place_random(p, earliest=earliest)
        if y is None:
            return None
        t = next(q for q in chain[0].roster if not q.special)
        t.special = True
        for x in chain:
            self.clean.remove(x)
            x.partner = True
        for x in chain[1:]:  # each has room for one more (checked above)
            x.roster.append(t)
        self.fill_roster(y, min(y.venue.cap - 1, self.rng.randint(15, 35)))
        y.roster.append(t)
        y.fraud, y.variant = "repeat_subsidy", v
        y.claim_labels.append(("repeat_subsidy", {"trainee_id": t.pid},
                               "fourth training subsidy for the person in one calendar year (limit 3)"))
        return y

    def place_unlisted_institution(self, v: int) -> _Class | None:
        inst = self.make_inst(len(self.insts) + 1, venues=1)  # its own institution: no other class of it
        self.insts.append(inst)
        self.emit_institution(_dsec(date(self.year, 1, 2), 10) + 60 * inst.n, inst, "listed")
        earliest = date(self.year, 3, 1) if v % 2 == 0 else None
        y = self.place_random(self.pick_project(), inst=inst, earliest=earliest)
        if y is None:
            return None
        self.fill_roster(y)
        y.fraud, y.variant = "unlisted_institution", v
        self.label("unlisted_institution", {"class_id": None}, "")  # class id and note filled in when emitted
        y.unlisted_label = self.labels[-1]
        return y

    # -- converted fraud -------------------------------------------------------

    def convert(self, kind: str, v: int) -> None:
        rng = self.rng
        need = None
        if kind == "inflated_headcount":
            need = lambda k: len(k.roster) >= 14  # noqa: E731
        k = self.take_clean(need)
        if k is None:
            return
        k.fraud, k.variant = kind, v
        if kind == "inflated_headcount":
            if v % 2 == 0:
                n_ghost = max(2, len(k.roster) // 8)
                while len(k.roster) + n_ghost > k.venue.cap:
                    k.roster.pop()
                k.ghosts = [self.person() for _ in range(n_ghost)]
                for g in k.ghosts:
                    g.special = True
                note = f"{n_ghost} ghost trainees enrolled, passed and claimed with little or no attendance"
            else:
                note = "inspection counted about half of the trainees signed in at that moment"
            self.label(kind, {"class_id": k.cid}, note)
        elif kind == "shortened_hours":
            k.noise = False
            total = k.project.hours * k.project.chm
            fits = [(abs(n * smin / total - 0.75), smin, n) for smin in sorted({k.smin, 180, 120}) if smin <= k.smin
                    for n in range(1, len(k.dates) + 1) if 0.6 <= n * smin / total <= 0.85]
            if v % 2 == 1 and fits:  # fewer (or shorter) sessions, inside the time reserved for the class
                _, k.smin, n = min(fits)
                k.dates = k.dates[:n]
                note = "schedule adds up to about 75% of the project's standard hours"
            else:
                k.variant = v - v % 2  # sessions cut short instead
                note = "every sign-in 10-15% of the session late and every sign-out 10-15% early (median < 90%)"
            self.label(kind, {"class_id": k.cid}, note)
        elif kind == "proxy_sign_in":
            k.noise = False
            how = ("low face scores (0.40-0.65)", "sign-ins 2-5 km from the venue", "sign-ins on unregistered devices",
                   "bursts of three trainees on one device within 1 s")[v % 4]
            self.label(kind, {"class_id": k.cid}, f"about 8% of the class's sign-ins suspicious: {how}")
        elif kind == "ineligible_trainee":
            t = next(q for q in k.roster if not q.special)
            t.special = True
            k.ineligible = t
            k.claim_labels.append(("ineligible_trainee", {"trainee_id": t.pid},
                                   "claimed for a trainee registered as deceased since before the class started"))
        elif kind == "duplicate_payment":
            k.la = True
        # excess_claim, segregation_of_duties, notice_skipped: applied to the class's claim when it is built
        elif kind == "venue_over_capacity":
            k.noise = False
            extra = rng.randint(3, 8)
            while len(k.roster) < k.venue.cap + extra:
                k.roster.append(self.person())
            self.label(kind, {"class_id": k.cid},
                       f"{len(k.roster)} trainees signed in to every session of a venue holding {k.venue.cap}")
        elif kind == "anomalous_class":
            k.noise = False
            self.label(kind, {"class_id": k.cid},
                       "machine-like class: 100% pass, sign-ins exactly 3 s apart at the same offsets every "
                       "session, identical sign-outs, identical face scores and coordinates")

    def noise_two_classes(self) -> None:
        """A few people take two legitimate classes: other occupation, disjoint dates."""
        rng = self.rng
        want = max(1, self.n_classes // 25)
        for _ in range(want * 4):
            if want == 0 or len(self.clean) < 2:
                return
            x, z = rng.sample(self.clean, 2)
            if x.start > z.start:
                x, z = z, x
            if x.project.code == z.project.code or z.start <= x.end + timedelta(days=2) or len(z.roster) >= z.venue.cap:
                continue
            t = next((q for q in x.roster if not q.special), None)
            if t is None:
                continue
            t.special = True
            z.roster.append(t)
            want -= 1

    # ------------------------------------------------------------------ class emission

    def emit_class(self, k: _Class) -> None:
        rng = self.rng
        p, inst, venue = k.project, k.inst, k.venue
        open_day = k.start - timedelta(days=rng.randint(7, 12))
        if k.fraud == "unlisted_institution":
            if k.variant % 2 == 0:
                k.suspend_on = open_day - timedelta(days=rng.randint(3, 20))
            else:
                k.suspend_on = k.end + _DAY
            status = ("suspended", "delisted")[(k.variant // 2) % 2]
            self.emit_institution(_dsec(k.suspend_on, 9), inst, status)
            lab = k.unlisted_label
            lab["subject"]["class_id"] = k.cid
            lab["note"] = (f"institution {status} on {k.suspend_on}; "
                           + ("class opened after that" if k.variant % 2 == 0 else "class claimed for after that"))
        sessions = []
        for j, d in enumerate(k.dates):
            st = _dsec(d, k.m0 // 60, k.m0 % 60)
            sessions.append((f"s-{k.num:04d}-{j + 1:02d}", st, st + k.smin * 60, j in k.online))
        open_sec = _dsec(open_day, 10, rng.randint(0, 59))
        enrolled = k.roster + k.ghosts
        self.add(open_sec, "class_opened", {
            "class_id": k.cid, "institution_id": inst.credit, "project_id": p.pid, "venue_id": venue.vid,
            "start_date": k.dates[0].isoformat(), "end_date": k.end.isoformat(), "planned_headcount": len(enrolled),
            "sessions": [{"session_id": sid, "start": _ts(st), "end": _ts(en), "teacher_id": k.teacher,
                          "mode": "online" if online else "onsite"} for sid, st, en, online in sessions],
        })
        self.add(_dsec(open_day + _DAY, 15, rng.randint(0, 59)), "class_reviewed", {
            "class_id": k.cid, "reviewer_id": rng.choice(self.officers), "decision": "approved"})
        order = list(enrolled)
        rng.shuffle(order)
        sec = _dsec(open_day + 2 * _DAY, 9)
        for q in order:
            sec += rng.randint(60, 150)
            self.add(sec, "enrollment", {"class_id": k.cid, "trainee_id": q.pid, "category": q.category,
                                         "hukou_region": q.hukou})
        self.emit_attendance(k, sessions)
        # completion
        comp_day = k.end + timedelta(days=rng.randint(2, 4))
        k.comp_day = comp_day
        real = [q for q in k.roster if not q.special]
        n_fail = 0
        if k.fraud != "anomalous_class" and real:
            pfail = rng.uniform(0.03, 0.12)
            n_fail = min(len(real) - 1, max(1, sum(rng.random() < pfail for _ in real)))
        failed = set(id(q) for q in rng.sample(real, n_fail)) if n_fail > 0 else set()
        sec = _dsec(comp_day, 10)
        kind = "special_ability" if p.level == "special" else ("qualification" if p.code == "6-31-01-03" else "skill_level")
        for q in enrolled:
            sec += 1
            ok = id(q) not in failed
            fields: dict[str, Any] = {"class_id": k.cid, "trainee_id": q.pid, "passed": ok,
                                      "certificate_kind": kind if ok else "none"}
            if ok:
                self.n_cert += 1
                fields["certificate_no"] = f"{self.reg.cert_prefix}{self.year}-{self.n_cert:06d}"
                k.passed.append(q)
            self.add(sec, "completion", fields)

    def emit_attendance(self, k: _Class, sessions: list) -> None:
        rng = self.rng
        v = k.venue
        people = k.roster
        n, ns = len(people), len(sessions)
        devices = v.devices
        ndev = len(devices)
        vlat, vlon = v.lat, v.lon
        cid = k.cid
        anomalous = k.fraud == "anomalous_class"
        short_a = k.fraud == "shortened_hours" and k.variant % 2 == 0
        # ordinary noise
        absent: set[tuple[int, int]] = set()
        late: dict[tuple[int, int], int] = {}
        poor: tuple[int, int] | None = None
        if k.noise:
            cands = [i for i, q in enumerate(people) if not q.special]
            rng.shuffle(cands)
            n_abs = min(len(cands) // 3, max(1, n // 10)) if ns >= 4 else 0
            for i in cands[:n_abs]:
                for j in rng.sample(range(ns), rng.randint(1, min(2, ns // 4))):
                    absent.add((j, i))
            rest = cands[n_abs:]
            for i in rest[: rng.randint(0, 2)]:
                late[(rng.randrange(ns), i)] = rng.randint(600, 1200)
                rest = rest[1:]
            if rest and n * ns >= 40 and rng.random() < 0.35:
                poor = (rng.randrange(ns), rest[-1])
        # proxy sign-ins
        susp: dict[tuple[int, int], str] = {}
        bursts: dict[int, int] = {}
        unreg: list[str] = []
        if k.fraud == "proxy_sign_in":
            how = ("low", "far", "unreg", "burst")[k.variant % 4]
            total = n * ns
            if how == "burst":
                per = n // 3
                need = max(4, math.ceil(0.065 * total))
                nb = min(ns, max(1, math.ceil(need / per)))
                for b, j in enumerate(sorted(rng.sample(range(ns), nb))):
                    bursts[j] = b
            else:
                target = max(4, math.ceil(0.08 * total))
                cap_per = max(1, math.ceil(target / n))
                pairs = [(j, i) for j in range(ns) for i in range(n)]
                rng.shuffle(pairs)
                cnt = [0] * n
                for j, i in pairs:
                    if cnt[i] < cap_per:
                        susp[(j, i)] = how
                        cnt[i] += 1
                        if len(susp) == target:
                            break
                unreg = [f"dev-x{rng.randrange(16**6):06x}" for _ in range(2)]
        # inspection
        insp_j = None
        onsite = [j for j in range(ns) if not sessions[j][3]]
        forced = k.fraud == "inflated_headcount" and k.variant % 2 == 1
        if onsite and (forced or rng.random() < 0.5):
            insp_j = rng.choice(onsite)
        ghost_first = [g for i, g in enumerate(k.ghosts) if i % 2 == 0 and ns >= 3]
        out, att_recs = self.out, self.att_recs
        r = rng.random  # the hot path draws with random() (C) rather than randint (Python)
        lat_u, lon_u = round(vlat * 1e6), round(vlon * 1e6)
        smin60 = k.smin * 60
        for j, (sid, st, en, online) in enumerate(sessions):
            entries: list[list] = []
            if j in bursts:
                b = bursts[j]
                order = people[b % n:] + people[: b % n]
                t = st - 900
                for g in range(0, n, 3):
                    for m, q in enumerate(order[g:g + 3]):
                        entries.append([t + (1 if m == 2 else 0), q, en + int(r() * 481), devices[0],
                                        (lat_u + int(r() * 601) - 300) / 1e6, (lon_u + int(r() * 601) - 300) / 1e6,
                                        (850 + int(r() * 141)) / 1000])
                    t += 8 + int(r() * 5)
            elif anomalous:
                for i, q in enumerate(people):
                    entries.append([st - 600 + 3 * (i // ndev), q, en + 30, devices[i % ndev], vlat, vlon, 0.99])
            else:
                if absent:
                    attendees = [(i, q) for i, q in enumerate(people) if (j, i) not in absent]
                else:
                    attendees = list(enumerate(people))
                if j == 0:
                    attendees += [(-1, g) for g in ghost_first]
                for i, q in attendees:
                    if short_a:
                        t_in = st + int(smin60 * (0.10 + 0.05 * r()))
                        t_out = en - int(smin60 * (0.10 + 0.05 * r()))
                    else:
                        t_in = st + late[(j, i)] if late and (j, i) in late else st - 60 - int(r() * 1141)
                        t_out = en + int(r() * 481)
                    dev = devices[int(r() * ndev)]
                    if online:
                        lat = (lat_u + (1 if r() < 0.5 else -1) * (20000 + int(r() * 60000))) / 1e6
                        lon = (lon_u + (1 if r() < 0.5 else -1) * (20000 + int(r() * 60000))) / 1e6
                    else:
                        lat = (lat_u + int(r() * 601) - 300) / 1e6
                        lon = (lon_u + int(r() * 601) - 300) / 1e6
                    score = (850 + int(r() * 141)) / 1000
                    if susp:
                        s = susp.get((j, i))
                        if s is not None:
                            if s == "low":
                                score = (400 + int(r() * 251)) / 1000
                            elif s == "far":
                                lat = round(lat + rng.choice((-1, 1)) * rng.uniform(0.02, 0.045), 6)
                                lon = round(lon + rng.choice((-1, 1)) * rng.uniform(0.02, 0.045), 6)
                            else:
                                dev = unreg[rng.randrange(len(unreg))]
                    if poor == (j, i):
                        score = 0.6
                    entries.append([t_in, q, t_out, dev, lat, lon, score])
                entries.sort(key=lambda e: e[0])
                last: dict[str, int] = {}
                for e in entries:  # one face at a time per device: at least 3 s apart
                    prev = last.get(e[3])
                    if prev is not None and e[0] < prev + 3:
                        e[0] = prev + 3
                    last[e[3]] = e[0]
            for t_in, q, t_out, dev, lat, lon, score in entries:
                ts_in = _ts(t_in)
                rec = {"type": "attendance", "id": "", "at": ts_in, "class_id": cid, "session_id": sid,
                       "trainee_id": q.pid, "sign_in": ts_in, "sign_out": _ts(t_out), "method": "face",
                       "device_id": dev, "lat": lat, "lon": lon, "face_score": score}
                out.append((t_in, len(out), rec))
                att_recs.append((t_in, rec))
            if j == insp_j:
                at = st + rng.randint(int(k.smin * 18), int(k.smin * 42))
                count = sum(1 for e in entries if e[0] <= at < e[2])
                if forced:
                    present = int(count * rng.uniform(0.45, 0.6))
                else:
                    present = count - (1 if count >= 10 and rng.random() < 0.3 else 0)
                self.add(at, "inspection", {"class_id": cid, "session_id": sid, "inspector_id": rng.choice(self.officers),
                                       "present_count": present, "note": "过程检查（现场抽查）"})

    # ------------------------------------------------------------------ claim flows

    def flow(self, *, kind: str, claimant: str, claimant_kind: str, region: str, amount: int, claim_at: int,
             payee: str, account: str, fund: str, class_id: str | None = None, trainee_ids: list[str] | None = None,
             months: int | None = None, pieces: int = 1) -> _Flow:
        rng = self.rng
        a, b, c = self.officers3()
        claim: dict[str, Any] = {"claim_id": self.claim_id(), "region": region, "claimant_id": claimant,
                                 "claimant_kind": claimant_kind, "subsidy_kind": kind}
        if class_id is not None:
            claim["class_id"] = class_id
        claim["trainee_ids"] = list(trainee_ids or [])
        if months is not None:
            claim["months"] = months
        claim["amount"] = fen_to_yuan(amount)
        claim["handled_by"] = a
        cday = _sdate(claim_at)
        review_at = _dsec(cday + timedelta(days=rng.randint(2, 4)), 16, rng.randint(0, 59))
        nstart = _sdate(review_at) + _DAY
        nend = nstart + timedelta(days=rng.randint(7, 9))
        notice = (_dsec(nstart, 9), nstart, nend, 0)
        pday = nend + timedelta(days=rng.randint(1, 3))
        pays = []
        piece = amount // pieces
        for i in range(pieces):
            amt = piece if i < pieces - 1 else amount - piece * (pieces - 1)
            d = pday + timedelta(days=i)
            pays.append(_Pay(self.pay_id(), _dsec(d, 10, rng.randint(0, 299)), amt, fund, c, self.bank_ref(d),
                             lag=rng.randint(0, 1)))
        f = _Flow(claim, claim_at, payee, account, region, a, b, review_at, amount, notice, pays, kind)
        self.flows.append(f)
        return f

    def build_class_flows(self) -> None:
        rng = self.rng
        training: list[_Flow] = []
        for k in self.classes:
            if not k.passed:
                continue
            p = k.project
            ids = [q.pid for q in k.passed]
            amount = p.subsidy * len(ids)
            if k.fraud == "excess_claim":
                extra = rng.randint(1, 3)
                amount += p.subsidy * extra
                k.claim_labels.append(("excess_claim", {},
                                       f"claimed {len(ids) + extra} x subsidy_per_trainee for {len(ids)} trainees"))
            claim_at = _dsec(k.comp_day + timedelta(days=rng.randint(3, 7)), 10, rng.randint(0, 59))
            fund = "ui_surplus" if rng.random() < 0.75 else "employment_subsidy"
            f = self.flow(kind="training", claimant=k.inst.credit, claimant_kind="institution",
                          region=k.inst.district, amount=amount, claim_at=claim_at, payee=k.inst.credit,
                          account=k.inst.account, fund=fund, class_id=k.cid, trainee_ids=ids)
            f.cls = k
            k.flow = f
            cid = f.claim["claim_id"]
            for kind, subj, note in k.claim_labels:
                self.label(kind, {**subj, "claim_id": cid}, note)
            if k.fraud == "segregation_of_duties":
                if k.variant % 2 == 0:
                    f.reviewer = f.handler
                    note = "the officer who handled the claim also reviewed it"
                else:
                    f.pays[0].approver = f.reviewer
                    note = "the officer who reviewed the claim also approved its payment"
                self.label("segregation_of_duties", {"claim_id": cid}, note)
            if k.fraud == "notice_skipped":
                self.skip_notice(f, k.variant)
            training.append(f)
        self.align_payments(training)
        # living allowances after the (final) training payment; duplicates after that
        for k in self.classes:
            if not k.la or k.flow is None:
                continue
            f0 = k.flow
            la = [q for q in k.passed if q.category in _LA_CATEGORIES]
            if len(la) < 3:
                la = k.passed[:3]
            per = LA_DAILY * len(k.dates)
            amount = per * len(la)
            if amount == f0.approved and [q.pid for q in la] == f0.claim["trainee_ids"]:
                amount += YUAN * len(la)
            claim_at = _dsec(_sdate(f0.pays[-1].at) + timedelta(days=rng.randint(8, 15)), 10, rng.randint(0, 59))
            args = dict(kind="living_allowance", claimant=k.inst.credit, claimant_kind="institution",
                        region=k.inst.district, amount=amount, payee=k.inst.credit, account=k.inst.account,
                        fund="employment_subsidy", class_id=k.cid, trainee_ids=[q.pid for q in la])
            fa = self.flow(claim_at=claim_at, **args)
            fa.cls = k
            if k.fraud == "duplicate_payment":
                fa.used = True
                claim_at = _dsec(_sdate(fa.pays[-1].at) + timedelta(days=rng.randint(25, 40)), 10, rng.randint(0, 59))
                fb = self.flow(claim_at=claim_at, **args)
                fb.cls = k
                fb.used = True
                self.label("duplicate_payment", {"payment_id": fb.pays[0].pid},
                           "living allowance claimed again for the same class and trainees and paid again, same amount")

    def skip_notice(self, f: _Flow, v: int) -> None:
        rng = self.rng
        at, start, end, _ = f.notice
        pay = f.pays[0]
        how = v % 4
        if how == 0:
            pay.at = _dsec(end, 10, rng.randint(0, 299))
            note = "paid on the notice's end date"
        elif how == 1:
            end = start + timedelta(days=rng.randint(3, 4))
            f.notice = (at, start, end, 0)
            note = f"notice of only {(end - start).days} days"
        elif how == 2:
            f.notice = None
            pay.at = _dsec(_sdate(f.review_at) + timedelta(days=rng.randint(3, 6)), 10, rng.randint(0, 299))
            note = "paid with no notice at all"
        else:
            f.notice = (at, start, end, rng.randint(1, 3))
            note = "paid although the notice drew objections"
        pay.bank_ref = self.bank_ref(_sdate(pay.at))
        self.label("notice_skipped", {"payment_id": pay.pid}, note)

    def align_payments(self, training: list[_Flow]) -> None:
        """Noise: one or two institutions get 3 payments for distinct classes within a week."""
        by_payee: dict[str, list[_Flow]] = {}
        for f in training:
            k = f.cls
            if k.fraud is None and not k.partner and not k.la and f.approved < SPLIT_THRESHOLD:
                by_payee.setdefault(f.payee, []).append(f)
        done = 0
        for fl in by_payee.values():
            if done == 2 or len(fl) < 3:
                continue
            fl.sort(key=lambda f: f.pays[0].at)
            for i in range(len(fl) - 2):
                trio = fl[i:i + 3]
                if trio[2].pays[0].at - trio[0].pays[0].at <= 40 * 86400:
                    base = _sdate(trio[2].pays[0].at)
                    for n, f in enumerate(trio):
                        d = base + timedelta(days=n)
                        f.pays[0].at = _dsec(d, 10, self.rng.randint(0, 299))
                        f.pays[0].bank_ref = self.bank_ref(d)
                        f.used = True
                    done += 1
                    break

    def build_other_flows(self, cases: list[str]) -> None:
        rng, reg = self.rng, self.reg
        year = self.year

        def day_between(a: date, b: date) -> date:
            return a + timedelta(days=rng.randint(0, (b - a).days))

        def enterprise() -> tuple[str, str, str]:
            district = rng.choice(reg.districts)[0]
            return self.credit("91", district), self.account(), district

        # awards (技能大师工作室 etc.): one payment each, distinct payees
        for _ in range(max(2, self.n_classes // 40)):
            name, amounts = rng.choice(_AWARDS)
            amount = rng.choice(amounts) * YUAN
            cc, acct, district = enterprise()
            fund = "local_talent" if rng.random() < 0.75 else "employment_subsidy"
            self.flow(kind="award", claimant=cc, claimant_kind="enterprise", region=district, amount=amount,
                      claim_at=_dsec(day_between(date(year, 3, 1), date(year, 11, 20)), 10, rng.randint(0, 59)),
                      payee=cc, account=acct, fund=fund)
        # work for training (以工代训)
        wft: list[_Flow] = []
        for _ in range(max(2, self.n_classes // 25)):
            cc, acct, district = enterprise()
            people = [self.person(category="employee").pid for _ in range(rng.randint(5, 12))]
            months = rng.randint(1, 6)
            wft.append(self.wft_flow(cc, acct, district, people, months,
                                     _dsec(day_between(date(year, 3, 1), date(year, 11, 20)), 10, rng.randint(0, 59))))
        if len(wft) >= 2:  # noise: a worker shared by two enterprises, 6 months at most in all
            a, b = wft[0], wft[1]
            for f, m in ((a, min(3, a.claim["months"])), (b, min(3, b.claim["months"]))):
                self.set_wft_months(f, m)
            b.claim["trainee_ids"].append(a.claim["trainee_ids"][0])
            self.set_wft_months(b, b.claim["months"])
        for kind in cases:
            if kind == "split_payment":
                name, total, pieces = _SPLIT_AWARDS[self.variant(kind) % len(_SPLIT_AWARDS)]
                cc, acct, district = enterprise()
                f = self.flow(kind="award", claimant=cc, claimant_kind="enterprise", region=district,
                              amount=total * YUAN, payee=cc, account=acct, fund="local_talent", pieces=pieces,
                              claim_at=_dsec(day_between(date(year, 3, 1), date(year, 10, 31)), 10, rng.randint(0, 59)))
                f.used = True
                self.label(kind, {"payee_id": cc},
                           f"{name} approved {total} paid as {pieces} payments of about {total // pieces} on consecutive days")
            elif kind == "work_for_training_overrun":
                self.variant(kind)
                t = self.person(category="employee").pid
                ma = rng.randint(3, 6)
                mb = rng.randint(7 - ma, 6)
                d1 = day_between(date(year, 3, 1), date(year, 7, 31))
                d2 = d1 + timedelta(days=rng.randint(45, 100))
                for months, d in ((ma, d1), (mb, d2)):
                    cc, acct, district = enterprise()
                    people = [self.person(category="employee").pid for _ in range(rng.randint(4, 10))]
                    people.insert(rng.randrange(len(people) + 1), t)
                    f = self.wft_flow(cc, acct, district, people, months, _dsec(d, 10, rng.randint(0, 59)))
                    f.used = True
                self.label(kind, {"trainee_id": t},
                           f"以工代训 paid for {ma} + {mb} = {ma + mb} months under two enterprises' claims (max 6)")
            elif kind == "unreconciled_outflow" and self.variant(kind) % 2 == 1:
                f = next((f for f in self.flows if f.kind == "training" and not f.used and f.cls.fraud is None
                          and not f.cls.partner), None)
                if f is None:
                    self.stray_lines += 1
                    continue
                f.used = True
                pay = f.pays[0]
                pay.bank_amount = pay.amount + rng.randint(1, 90) * 100 * YUAN
                self.label(kind, {"bank_ref": pay.bank_ref},
                           f"bank line shows -{fen_to_yuan(pay.bank_amount)} for a training payment of "
                           f"{fen_to_yuan(pay.amount)} with this bank_ref")
            elif kind == "unreconciled_outflow":
                self.stray_lines += 1

    def wft_flow(self, cc: str, acct: str, district: str, people: list[str], months: int, claim_at: int) -> _Flow:
        fund = "ui_surplus" if self.rng.random() < 0.6 else "employment_subsidy"
        return self.flow(kind="work_for_training", claimant=cc, claimant_kind="enterprise", region=district,
                         amount=WFT_MONTHLY * months * len(people), claim_at=claim_at, payee=cc, account=acct,
                         fund=fund, trainee_ids=people, months=months)

    def set_wft_months(self, f: _Flow, months: int) -> None:
        amount = WFT_MONTHLY * months * len(f.claim["trainee_ids"])
        f.claim["months"] = months
        f.claim["amount"] = fen_to_yuan(amount)
        f.approved = amount
        f.pays[0].amount = amount

    # ------------------------------------------------------------------ bad payments

    def n_bad(self) -> int:
        if self.bad_rate <= 0:
            return 0
        base = len(self.att_recs) + len(self.flows)
        return max(9, round(self.bad_rate * base))

    def inject_bad_payments(self) -> None:
        """Payments the ledger must refuse; the claims they name stay good."""
        n = self.n_bad()
        if n == 0:
            return
        rng = self.rng
        spare = [f for f in self.flows if f.kind == "training" and not f.used and f.cls.fraud is None]
        rng.shuffle(spare)
        each = max(1, min(n // 20, len(spare) // 4, 50))
        # claim_not_approved: paid before the review
        for f in spare[:each]:
            f.used = True
            d = _sdate(f.claim_at) + _DAY
            self.bad_pay(f, _dsec(d, 9, rng.randint(0, 59)), f.approved, "ui_surplus", "claim_not_approved")
        # fund_not_permitted: living allowance from ui_surplus (or training from local_talent)
        las = [f for f in self.flows if f.kind == "living_allowance" and not f.used]
        rest = spare[each:]
        for i in range(each):
            if las:
                f, fund = las.pop(), "ui_surplus"
            elif rest:
                f, fund = rest.pop(), "local_talent"
            else:
                break
            f.used = True
            self.bad_pay(f, f.pays[0].at - 3600, f.approved, fund, "fund_not_permitted")
        # overdraft: an award paid from industry_development (20,000.00 appropriated), then from local_talent
        self.industry_development = True
        for _ in range(each):
            district = rng.choice(self.reg.districts)[0]
            cc, acct = self.credit("91", district), self.account()
            d = date(self.year, 3, 1) + timedelta(days=rng.randint(0, 240))
            f = self.flow(kind="award", claimant=cc, claimant_kind="enterprise", region=district,
                          amount=50_000 * YUAN, claim_at=_dsec(d, 10, rng.randint(0, 59)), payee=cc, account=acct,
                          fund="local_talent")
            f.used = True
            pay = f.pays[0]
            pay.at += 86400
            self.bad_pay(f, pay.at - 86400, f.approved, "industry_development", "overdraft")

    def bad_pay(self, f: _Flow, at: int, amount: int, fund: str, reason: str) -> None:
        d = _sdate(at)
        f.pays.append(_Pay(self.pay_id(), at, amount, fund, f.pays[0].approver, self.bank_ref(d), bad=reason))
        self.n_bad_payments += 1

    # ------------------------------------------------------------------ flow emission

    def emit_flow(self, f: _Flow) -> None:
        f.claim_rec = self.add(f.claim_at, "claim", f.claim)
        cid = f.claim["claim_id"]
        self.add(f.review_at, "claim_reviewed", {"claim_id": cid, "reviewer_id": f.reviewer, "decision": "approved",
                                                 "approved_amount": fen_to_yuan(f.approved)})
        if f.notice is not None:
            at, start, end, objections = f.notice
            self.add(at, "notice", {"claim_id": cid, "start": start.isoformat(), "end": end.isoformat(),
                                    "objections": objections})
        acct_name = f"SKILLFUND-{self.region}"
        for pay in f.pays:
            pay.rec = self.add(pay.at, "payment", {
                "payment_id": pay.pid, "claim_id": cid, "fund_source": pay.fund, "region": f.region,
                "amount": fen_to_yuan(pay.amount), "payee_id": f.payee, "payee_account": f.account,
                "approved_by": pay.approver, "bank_ref": pay.bank_ref})
            if pay.bad is not None:
                self.bad.append((pay.rec, pay.bad))
                continue
            vd = _sdate(pay.at) + timedelta(days=pay.lag)
            amount = pay.bank_amount if pay.bank_amount is not None else pay.amount
            self.add(_dsec(vd, 18, self.rng.randint(0, 59)), "bank_statement", {
                "account": acct_name, "amount": "-" + fen_to_yuan(amount), "counterparty_account": f.account,
                "bank_ref": pay.bank_ref, "value_date": vd.isoformat(), "memo": _MEMO[f.kind]})

    # ------------------------------------------------------------------ registry, recoveries, bank, funds

    def emit_person_statuses(self) -> None:
        rng = self.rng
        for k in self.classes:
            t = k.ineligible
            if t is None or k.flow is None:
                continue
            since = k.start - timedelta(days=rng.randint(15, 150))
            if k.variant % 2 == 0:  # the registry reports it before the claim
                at = _dsec(k.end + _DAY, 11, rng.randint(0, 59))
            else:  # ... or only after the money went out
                at = _dsec(_sdate(k.flow.pays[0].at) + timedelta(days=rng.randint(5, 20)), 11, rng.randint(0, 59))
            self.add(at, "person_status", {"trainee_id": t.pid, "status": "deceased", "since": since.isoformat()})
        # noise: pensions (and one death) that start only after the person's only class
        statuses = ["pensioner"] * max(2, self.n_classes // 20) + ["deceased"]
        for _ in range(50 * len(statuses)):
            if not statuses or not self.clean:
                break
            k = rng.choice(self.clean)
            q = rng.choice(k.roster)
            if q.special or (statuses[0] == "pensioner" and q.born > 1975):
                continue
            status = statuses.pop(0)
            since = k.end + timedelta(days=rng.randint(15, 90))
            q.special = True
            self.add(_dsec(since + timedelta(days=rng.randint(3, 30)), 9, rng.randint(0, 59)), "person_status",
                     {"trainee_id": q.pid, "status": status, "since": since.isoformat()})

    def emit_recoveries(self) -> None:
        rng = self.rng
        fl = [f for f in self.flows if f.kind == "training" and not f.used and f.cls.fraud is None
              and len(f.claim["trainee_ids"]) >= 2]
        rng.shuffle(fl)
        self.n_recovery = 0
        for f in fl[: max(1, self.n_classes // 60)]:
            f.used = True
            self.n_recovery += 1
            pay = max(f.pays, key=lambda p: p.at)
            at = _dsec(_sdate(pay.at) + timedelta(days=rng.randint(30, 60)), 10, rng.randint(0, 59))
            self.add(at, "recovery", {"recovery_id": f"rc-{self.n_recovery:04d}", "claim_id": f.claim["claim_id"],
                                      "amount": fen_to_yuan(f.cls.project.subsidy),
                                      "reason": "第三方评估发现1名学员结业证书无效，追回其培训补贴"})

    def emit_stray_bank_lines(self) -> None:
        rng = self.rng
        for _ in range(self.stray_lines):
            d = date(self.year, 3, 1) + timedelta(days=rng.randint(0, 250))
            ref = self.bank_ref(d)
            amount = rng.randint(50, 600) * 100 * YUAN
            self.add(_dsec(d, 18, rng.randint(0, 59)), "bank_statement", {
                "account": f"SKILLFUND-{self.region}", "amount": "-" + fen_to_yuan(amount),
                "counterparty_account": self.account(), "bank_ref": ref, "value_date": d.isoformat(),
                "memo": "代发补贴"})
            self.label("unreconciled_outflow", {"bank_ref": ref},
                       f"money out ({fen_to_yuan(amount)}) with no payment carrying this bank_ref")

    def emit_appropriations(self) -> None:
        totals: dict[str, int] = {}
        for f in self.flows:
            for pay in f.pays:
                if pay.bad is None:
                    totals[pay.fund] = totals.get(pay.fund, 0) + pay.amount
        if not totals:
            totals["ui_surplus"] = 0
        step = 100_000 * YUAN
        amounts = {fund: max(1_000_000 * YUAN, math.ceil(total * 1.3 / step) * step) for fund, total in totals.items()}
        if self.industry_development:
            amounts["industry_development"] = 20_000 * YUAN
        d = date(self.year, 1, 2)
        for i, (fund, amount) in enumerate(sorted(amounts.items())):
            self.add(_dsec(d, 9, i), "appropriation", {
                "fund_source": fund, "region": self.region, "amount": fen_to_yuan(amount),
                "document": self.reg.document, "note": f"{self.year}年度{_FUND_NAME[fund]}拨入职业技能提升行动专账"})
            self.add(_dsec(d, 17, i), "bank_statement", {
                "account": f"SKILLFUND-{self.region}", "amount": fen_to_yuan(amount),
                "counterparty_account": f"FIN-{self.region}-{fund}", "bank_ref": f"IN{d:%Y%m%d}{i + 1:06d}",
                "value_date": d.isoformat(), "memo": "资金拨入"})

    # ------------------------------------------------------------------ bad records

    def emit_bad_records(self) -> None:
        n = self.n_bad()
        if n == 0:
            return
        rng = self.rng
        claims = [f.claim_rec for f in self.flows if f.kind == "training" and f.claim_rec is not None]
        atts = self.att_recs
        kinds = ("money", "naive_ts", "invalid_id", "unknown_region", "unknown_reference", "conflict")
        remaining = max(len(kinds), n - self.n_bad_payments)
        used_conflict: set[int] = set()
        for i in range(remaining):
            how = kinds[i % len(kinds)]
            if how in ("money", "unknown_region") or (how == "conflict" and i % 12 == 5):
                if not claims:
                    how = "unknown_reference"
                else:
                    src = rng.choice(claims)
                    sec = _ts_sec(src["at"]) + 3600
                    rec = json.loads(json.dumps(src))
                    if how == "conflict":
                        if id(src) in used_conflict:
                            continue
                        used_conflict.add(id(src))
                        rec["amount"] = fen_to_yuan(_fen(src["amount"]) + 100 * YUAN)
                        self.same_id[id(rec)] = src
                        reason = "conflict"
                    else:
                        rec["claim_id"] = self.claim_id()
                        if how == "money":
                            yuan = _fen(src["amount"]) // 100
                            rec["amount"] = rng.choice(
                                (f"{yuan:,}.00" if yuan >= 1000 else f"{yuan}.000", src["amount"] + "1",
                                 yuan, "¥" + src["amount"]))
                            reason = "malformed"
                        else:
                            rec["region"] = "110000"
                            reason = "unknown_region"
                    self.push_bad(sec, rec, reason)
                    continue
            if not atts:
                continue
            t_in, src = atts[rng.randrange(len(atts))]
            rec = dict(src)
            if how == "conflict":
                if id(src) in used_conflict:
                    continue
                used_conflict.add(id(src))
                rec["face_score"] = round(min(0.999, src["face_score"] + 0.004), 3)
                self.same_id[id(rec)] = src
                self.push_bad(t_in + 120, rec, "conflict")
            elif how == "naive_ts":
                rec["at"] = rec["at"][:-6]
                rec["sign_in"] = rec["sign_in"][:-6]
                self.push_bad(t_in, rec, "malformed", keep_at=True)
            elif how == "invalid_id":
                pid = src["trainee_id"]
                good = resident_check_char(pid[:17])
                rec["trainee_id"] = pid[:17] + rng.choice([c for c in "0123456789X" if c != good])
                self.push_bad(t_in, rec, "invalid_id")
            else:
                rec["class_id"] = f"class-{90000 + rng.randrange(10000)}"
                rec["session_id"] = f"s-9{rng.randrange(10000):04d}-01"
                self.push_bad(t_in, rec, "unknown_reference")
        # exact re-sends: accepted as no-ops, never rejected
        for _ in range(max(1, n // 10)):
            t_in, src = atts[rng.randrange(len(atts))] if atts else (None, None)
            if src is None:
                break
            rec = dict(src)
            self.same_id[id(rec)] = src
            self.out.append((t_in + 300, len(self.out), rec))

    def push_bad(self, sec: int, rec: dict, reason: str, *, keep_at: bool = False) -> None:
        if not keep_at and "at" in rec:
            rec["at"] = _ts(sec)
        if id(rec) not in self.same_id:
            rec["id"] = ""
        self.out.append((sec, len(self.out), rec))
        self.bad.append((rec, reason))

    # ------------------------------------------------------------------ finish

    def finish(self) -> Simulation:
        self.out.sort(key=itemgetter(0))  # stable: equal times keep the order they were made in (causal)
        counters: dict[str, int] = {}
        claim_map: dict[str, str] = {}
        pay_map: dict[str, str] = {}
        records = []
        same = self.same_id
        for _, _, rec in self.out:
            t = rec["type"]
            orig = same.get(id(rec)) if same else None
            if orig is not None:
                rec["id"] = orig["id"]
            else:
                c = counters.get(t, 0) + 1
                counters[t] = c
                rec["id"] = f"{_RECORD_PREFIX[t]}-{c:06d}"
            if t not in _RENAMED:
                records.append(rec)
                continue
            cid = rec.get("claim_id")
            if cid is not None and cid.startswith("~"):
                new = claim_map.get(cid)
                if new is None:
                    new = claim_map[cid] = f"claim-{len(claim_map) + 1:06d}"
                rec["claim_id"] = new
            pid = rec.get("payment_id")
            if pid is not None and pid.startswith("~"):
                new = pay_map.get(pid)
                if new is None:
                    new = pay_map[pid] = f"pay-{len(pay_map) + 1:06d}"
                rec["payment_id"] = new
            records.append(rec)
        for lab in self.labels:
            subj = lab["subject"]
            for key, m in (("claim_id", claim_map), ("payment_id", pay_map)):
                if key in subj:
                    subj[key] = m[subj[key]]
        rejections = [{"type": rec["type"], "id": rec["id"], "reason": reason} for rec, reason in self.bad]
        return Simulation(records=records, labels=self.labels, expected_rejections=rejections)


_RENAMED = frozenset({"claim", "claim_reviewed", "notice", "payment", "recovery"})
_LEVEL_NAME = {5: "五级/初级工", 4: "四级/中级工", 3: "三级/高级工", 2: "二级/技师", 1: "一级/高级技师"}
_MEMO = {"training": "职业培训补贴", "living_allowance": "培训期间生活费补贴", "award": "技能人才奖励资助",
         "work_for_training": "以工代训补贴"}
_FUND_NAME = {"ui_surplus": "失业保险基金结余", "employment_subsidy": "就业补助资金", "local_talent": "地方人才经费",
              "industry_development": "行业产业发展经费", "ui_fund": "失业保险基金", "education_surcharge": "城市教育附加费"}


def _fen(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def _ts_sec(text: str) -> int:
    d = date.fromisoformat(text[:10])
    return _dsec(d, int(text[11:13]), int(text[14:16]), int(text[17:19]))


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ops.simulate", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--classes", type=int, default=60)
    ap.add_argument("--fraud-rate", type=float, default=0.1)
    ap.add_argument("--bad-rate", type=float, default=0.0)
    ap.add_argument("--region", default="320500")
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--attendance-heavy", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    sim = simulate(seed=a.seed, classes=a.classes, fraud_rate=a.fraud_rate, region=a.region, year=a.year,
                   bad_rate=a.bad_rate, attendance_heavy=a.attendance_heavy)
    paths = write(sim, a.out)
    print(json.dumps({"paths": {k: str(v) for k, v in paths.items()}, "records": len(sim.records),
                      "labels": len(sim.labels), "expected_rejections": len(sim.expected_rejections)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
