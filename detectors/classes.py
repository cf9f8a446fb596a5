"""Class-side rule detectors: what happened in the classroom, from the feed.

One detector object (``ClassDetector``) keeps the state all class-side kinds
share — schedules, rosters, sign-ins, catalogue history — and raises:

- ``inflated_headcount`` (class_id): a trainee claimed (training or living
  allowance claim) or completed with ``passed`` true whose VERIFIED time
  inside the class's scheduled sessions is below ``verified_hours_share_min``
  of the standard; or an inspection whose ``present_count`` is below
  ``inspection_ratio_min`` × the trainees signed in to that session at the
  inspection's ``at`` (sign_in <= at <= sign_out). Judged when the claim,
  completion or inspection arrives, and again when later sign-ins raise the
  signed-in count of an inspected session (the count only grows, so the
  judgement never has to be taken back).
- ``shortened_hours`` (class_id): the schedule adds up to less than the
  standard (judged at ``class_opened``); a session whose delivered time (the
  median over its signed-in trainees of their time inside the window) is
  below ``session_length_ratio_min`` of its scheduled length, judged once the
  session has sign-ins and a record of the same class is ``SESSION_GRACE_S``
  past its end; the class's delivered time (sessions nobody signed in to
  count zero) below ``hours_tolerance`` × standard, judged at a completion or
  claim for the class made after its last session ended, or when a record of
  the class is ``SESSION_GRACE_S`` past the last session's end. Only the
  class's own records move its clock: a bulk load of another class's later
  records never closes this one while its attendance is still arriving.
- ``proxy_sign_in`` (class_id): suspicious sign-ins (face score below
  ``face_score_min`` for method face; more than ``venue_radius_m`` from the
  venue in an onsite session; in an onsite session a device not registered
  to the class's venue in the institution record in force at the sign-in;
  the third of ``device_burst_trainees`` different trainees on one device
  within ``device_burst_seconds``) at least ``proxy_min_count`` and at least
  ``proxy_min_share`` of the class's sign-ins. While the class runs, the share
  is taken over max(sign-ins so far, roster × sessions), so an early cluster
  in a large class is not judged on a small denominator; once the class is
  over (see shortened_hours), over the sign-ins actually made.
- ``overlapping_enrollment`` (trainee_id): two sign-ins of one trainee in two
  different classes whose times inside their session windows overlap by at
  least ``OVERLAP_MIN_S``.
- ``teacher_double_booked`` (teacher_id): two sessions of two different
  classes with the same teacher whose scheduled windows overlap (touching
  ends do not), judged at ``class_opened``; classes already rejected at
  review are left out.
- ``venue_over_capacity`` (class_id): distinct trainees signed in to one
  onsite session above the capacity of the class's venue (institution record
  in force at the sign-in).
- ``unlisted_institution`` (class_id): a class opened, or a claim filed for
  it, while the institution's status (the latest institution record with
  ``at`` at or before the record's ``at``) was suspended or delisted.

Thresholds come from the policy pack of the class (the Accepted item's
``pack``, the institution's pack); citations from ``pack.citations(kind)``.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from detectors.base import (
    EVIDENCE_ITEMS_MAX,
    AlertDraft,
    Bounded,
    ContentMemo,
    parse_ts,
    severity_max,
    snapshot,
)
from ledger.policy import all_packs, pack_code_for
from projections.feed import Accepted, Item

NAME = "classes"
VERSION = "1"
DETECTOR = f"{NAME}/{VERSION}"
KINDS = (
    "inflated_headcount",
    "shortened_hours",
    "proxy_sign_in",
    "overlapping_enrollment",
    "teacher_double_booked",
    "venue_over_capacity",
    "unlisted_institution",
)

# Not policy thresholds (the packs have none for these): engineering choices.
SESSION_GRACE_S = 3600  # a session is over once a record of its class is this far past its end
OVERLAP_MIN_S = 300  # two classes at once: overlap of at least 5 minutes inside the windows
TRAINEE_HORIZON_S = 60 * 86400  # sign-in intervals this far behind the newest sign-out seen are dropped
TRAINEE_INTERVALS_MAX = 64
TEACHER_SESSIONS_MAX = 256  # latest-ending scheduled sessions kept per teacher
SWEEP_EVERY = 50_000  # attendance items between sweeps of per-trainee and per-device windows
DEVICE_WINDOW_MAX = 32  # recent sign-ins kept per device for the burst rule
INSTITUTION_VERSIONS_MAX = 64
IDS_PER_ITEM = 10  # attendance ids listed per evidence item
CLASSES_MAX = 50_000  # a class over keeps ~10 KB; a running one its sign-ins
TRAINEES_MAX = 500_000
TEACHERS_MAX = 200_000
DEVICES_MAX = 200_000
CATALOGUE_MAX = 200_000
SUSPICIOUS_KEPT = 200
PAIRS_KEPT = 100  # overlapping pairs kept per trainee / teacher (evidence shows at most 50 items)
EARTH_RADIUS_M = 6_371_008.8
M_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180.0
CLAIM_KINDS_WITH_ATTENDANCE = ("training", "living_allowance")


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class Thresholds:
    code: str
    verified_share: float
    hours_tolerance: float
    session_ratio: float
    inspection_ratio: float
    face_min: float
    radius_m: float
    burst_n: int
    burst_s: float
    proxy_count: int
    proxy_share: float
    citations: dict[str, list[str]]


@lru_cache(maxsize=None)
def thresholds(code: str) -> Thresholds:
    p = all_packs()[code]
    return Thresholds(
        code=code,
        verified_share=float(p.value("verified_hours_share_min")),
        hours_tolerance=float(p.value("hours_tolerance")),
        session_ratio=float(p.value("session_length_ratio_min")),
        inspection_ratio=float(p.value("inspection_ratio_min")),
        face_min=float(p.value("face_score_min")),
        radius_m=float(p.value("venue_radius_m")),
        burst_n=int(p.value("device_burst_trainees")),
        burst_s=float(p.value("device_burst_seconds")),
        proxy_count=int(p.value("proxy_min_count")),
        proxy_share=float(p.value("proxy_min_share")),
        citations={k: p.citations(k) for k in KINDS},
    )


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _minutes(seconds: float) -> float:
    return round(seconds / 60.0, 1)


def _union_length(intervals: list[tuple[float, float]]) -> float:
    if len(intervals) == 1:
        s, e = intervals[0]
        return e - s
    total = 0.0
    cur_s = cur_e = None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def _median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    mid = n // 2
    return v[mid] if n % 2 else (v[mid - 1] + v[mid]) / 2.0


def _ratio_severity(ratio: float) -> str:
    """Severity of a shortfall: the lower the ratio delivered/required, the worse."""
    if ratio < 0.5:
        return "critical"
    if ratio < 0.7:
        return "high"
    if ratio < 0.9:
        return "medium"
    return "low"


def _share_severity(share: float) -> str:
    """Severity of a share of bad items (ghost trainees, proxy sign-ins)."""
    if share >= 0.5:
        return "critical"
    if share >= 0.2:
        return "high"
    if share >= 0.1:
        return "medium"
    return "low"


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class Venue:
    capacity: int
    lat: float
    lon: float
    devices: frozenset[str]
    cos_lat: float = 1.0

    def __post_init__(self) -> None:
        self.cos_lat = math.cos(math.radians(self.lat))

    def distance_m(self, lat: float, lon: float) -> float:
        """Metres from the venue: a flat-earth estimate, haversine when it is anywhere near a limit."""
        dy = lat - self.lat
        dx = (lon - self.lon) * self.cos_lat
        approx = M_PER_DEGREE * math.sqrt(dx * dx + dy * dy)
        if approx < 200.0:
            return approx
        return haversine_m(lat, lon, self.lat, self.lon)


@dataclass(slots=True)
class InstVersion:
    at: float
    at_text: str
    record_id: str
    status: str
    venues: dict[str, Venue]
    pack: str | None


class Institution:
    __slots__ = ("versions", "ats")

    def __init__(self) -> None:
        self.versions: list[InstVersion] = []
        self.ats: list[float] = []

    def add(self, v: InstVersion) -> None:
        i = bisect.bisect_right(self.ats, v.at)  # same `at`: the later record wins
        self.ats.insert(i, v.at)
        self.versions.insert(i, v)
        if len(self.versions) > INSTITUTION_VERSIONS_MAX:
            del self.versions[0], self.ats[0]

    def as_of(self, ts: float) -> InstVersion | None:
        """The record in force at ``ts``; before the first record, the first one."""
        if not self.versions:
            return None
        i = bisect.bisect_right(self.ats, ts)
        return self.versions[i - 1] if i else self.versions[0]


@dataclass(slots=True)
class Session:
    sid: str
    start: float
    end: float
    start_text: str
    end_text: str
    teacher: str
    onsite: bool
    # trainee -> intervals clipped to the window (all sign-ins / not suspicious)
    inside: dict[str, list[tuple[float, float]]]
    verified: dict[str, list[tuple[float, float]]]
    # trainee -> raw (sign_in, sign_out) for inspection counts
    raw: dict[str, list[tuple[float, float]]]
    att_ids: list[str]
    delivered_cache: float | None = None
    judged: bool = False
    over_capacity: bool = False
    over_capacity_count: int = 0
    frozen: bool = False  # the class is over: per-trainee detail dropped, numbers kept
    frozen_signed: int = 0

    @property
    def scheduled(self) -> float:
        return self.end - self.start

    def n_signed(self) -> int:
        """Distinct trainees signed in to this session."""
        return self.frozen_signed if self.frozen else len(self.inside)

    def freeze(self) -> None:
        self.delivered()
        self.frozen_signed = len(self.inside)
        self.frozen = True
        self.inside, self.verified, self.raw = {}, {}, {}

    def delivered(self) -> float:
        """Median over signed-in trainees of their time inside the window (0 when nobody)."""
        if self.delivered_cache is None:
            if not self.inside:
                self.delivered_cache = 0.0
            else:
                self.delivered_cache = _median([_union_length(v) for v in self.inside.values()])
        return self.delivered_cache


@dataclass(slots=True)
class Inspection:
    record_id: str
    sid: str
    at: float
    at_text: str
    present: int
    signed_in: int = 0
    flagged: bool = False


class ClassState:
    __slots__ = (
        "class_id", "opened_id", "opened_at", "institution_id", "project_id", "venue_id", "pack",
        "sessions", "by_end", "next_judge", "last_end", "closed", "clock", "enrolled", "planned",
        "rejected", "sign_ins", "suspicious", "suspicious_count", "inspections", "ghosts", "judged_trainees",
        "ghost_sources", "short_sessions", "schedule_short", "delivered_short", "unlisted",
        "proxy_flagged", "over_capacity", "th", "next_due", "close_due", "compact", "verified_total",
        "signed_sessions",
    )

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.by_end: list[Session] = []
        self.next_judge = 0
        self.last_end = 0.0
        self.closed = False
        self.clock = -math.inf
        self.enrolled: dict[str, None] = {}
        self.planned = 0
        self.rejected = False
        self.sign_ins = 0
        self.suspicious: list[dict[str, Any]] = []
        self.suspicious_count = 0
        self.inspections: list[Inspection] = []
        self.ghosts: dict[str, dict[str, Any]] = {}
        self.judged_trainees: dict[str, None] = {}
        self.ghost_sources: dict[str, list[str]] = {}
        self.short_sessions: dict[str, dict[str, Any]] = {}
        self.schedule_short: dict[str, Any] | None = None
        self.delivered_short: dict[str, Any] | None = None
        self.unlisted: list[dict[str, Any]] = []
        self.proxy_flagged = False
        self.over_capacity: dict[str, dict[str, Any]] = {}
        self.next_due = math.inf  # when the next session is over (its end + grace)
        self.close_due = math.inf  # when the class is over (last end + grace)
        # once over, the class keeps per-trainee totals instead of every interval (bounded memory)
        self.compact = False
        self.verified_total: dict[str, float] = {}
        self.signed_sessions: dict[str, int] = {}


@dataclass(slots=True)
class Project:
    standard_minutes: float
    record_id: str


# --------------------------------------------------------------------------- detector


class ClassDetector:
    name = NAME
    version = VERSION
    kinds = KINDS

    def __init__(self) -> None:
        self.classes = Bounded(CLASSES_MAX)
        self.institutions = Bounded(CATALOGUE_MAX)
        self.projects = Bounded(CATALOGUE_MAX)
        self.trainees = Bounded(TRAINEES_MAX)  # trainee -> deque of (s, e, class_id, session_id, att_id)
        self.teachers = Bounded(TEACHERS_MAX)  # teacher -> list of (start, end, class_id, session_id, opened_id, s_text, e_text)
        self.devices = Bounded(DEVICES_MAX)  # device -> deque of (sign_in, trainee, att_id)
        self.overlaps = Bounded(TRAINEES_MAX)  # trainee -> list of evidence pairs
        self.double_booked = Bounded(TEACHERS_MAX)  # teacher -> list of evidence pairs
        self.memo = ContentMemo()
        self._newest = -math.inf  # latest sign-out seen (data time): the sweep's watermark
        self._since_sweep = 0
        self._span_max = 0.0  # longest time-inside-window span seen (seconds)
        self._handlers = {
            "institution": self._institution,
            "project": self._project,
            "class_opened": self._class_opened,
            "class_reviewed": self._class_reviewed,
            "enrollment": self._enrollment,
            "attendance": self._attendance,
            "inspection": self._inspection,
            "completion": self._completion,
            "claim": self._claim,
        }
        self.record_types = frozenset(self._handlers)  # the engine routes only these to us

    def observe(self, item: Item) -> list[AlertDraft]:
        if type(item) is not Accepted:
            return []
        h = self._handlers.get(item.type)
        if h is None:
            return []
        out: list[AlertDraft] = []
        h(item, item.record, out)
        return out

    # ------------------------------------------------------------ helpers

    def _emit(self, out: list[AlertDraft], kind: str, subject: dict[str, str], severity: str,
              evidence: list[dict[str, Any]], pack: str, item: Accepted, summary: str) -> None:
        th = thresholds(pack)
        if len(evidence) > EVIDENCE_ITEMS_MAX:
            evidence = evidence[: EVIDENCE_ITEMS_MAX - 1] + [
                {"check": "more", "items_not_shown": len(evidence) - (EVIDENCE_ITEMS_MAX - 1)}
            ]
        d = AlertDraft(
            kind=kind, subject=subject, severity=severity, evidence=snapshot(evidence), policy=th.citations[kind],
            raised_at=item.record["at"], position=item.position, detector=DETECTOR, summary=summary,
        )
        if self.memo.changed(d):
            out.append(d)

    # ------------------------------------------------------------ catalogue

    def _institution(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        venues = {
            v["venue_id"]: Venue(int(v["capacity"]), float(v["lat"]), float(v["lon"]), frozenset(v.get("devices", ())))
            for v in rec.get("venues", ())
        }
        inst = self.institutions.setdefault(rec["institution_id"], Institution)
        inst.add(InstVersion(parse_ts(rec["at"]), rec["at"], rec["id"], rec["status"], venues,
                             item.pack or pack_code_for(str(rec.get("region", "")))))

    def _project(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        minutes = float(rec["standard_hours"]) * float(rec.get("class_hour_minutes", 45))
        self.projects[rec["project_id"]] = Project(minutes, rec["id"])

    # ------------------------------------------------------------ class lifecycle

    def _class_opened(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        pack = item.pack
        if pack is None:  # the ledger sets the institution's pack; fall back to its catalogue entry
            inst = self.institutions.get(rec["institution_id"])
            pack = inst.versions[-1].pack if inst is not None and inst.versions else None
        if pack is None:
            return  # the ledger always sets it for a class; nothing to judge against otherwise
        cs = ClassState()
        cs.class_id = rec["class_id"]
        cs.opened_id = rec["id"]
        cs.opened_at = parse_ts(rec["at"])
        cs.institution_id = rec["institution_id"]
        cs.project_id = rec["project_id"]
        cs.venue_id = rec["venue_id"]
        cs.pack = pack
        cs.planned = int(rec.get("planned_headcount", 0))
        for s in rec["sessions"]:
            sess = Session(
                sid=s["session_id"], start=parse_ts(s["start"]), end=parse_ts(s["end"]),
                start_text=s["start"], end_text=s["end"], teacher=s["teacher_id"],
                onsite=s.get("mode") == "onsite", inside={}, verified={}, raw={}, att_ids=[],
            )
            cs.sessions[sess.sid] = sess
        cs.by_end = sorted(cs.sessions.values(), key=lambda x: (x.end, x.sid))
        cs.last_end = cs.by_end[-1].end if cs.by_end else 0.0
        cs.next_due = cs.by_end[0].end + SESSION_GRACE_S if cs.by_end else math.inf
        cs.close_due = cs.last_end + SESSION_GRACE_S if cs.by_end else math.inf
        cs.th = th = thresholds(pack)
        self.classes[cs.class_id] = cs

        # unlisted_institution: opened while suspended or delisted
        self._check_unlisted(cs, item, rec, "class_opened", out)
        # shortened_hours: a schedule short of the standard is short from day one
        proj = self.projects.get(cs.project_id)
        if proj is not None and cs.by_end:
            scheduled = sum(s.scheduled for s in cs.by_end)
            std_s = proj.standard_minutes * 60.0
            if scheduled < std_s - 1e-6:
                cs.schedule_short = {
                    "check": "schedule",
                    "class_opened_id": cs.opened_id,
                    "project_record_id": proj.record_id,
                    "scheduled_minutes": _minutes(scheduled),
                    "standard_minutes": _minutes(std_s),
                    "sessions": len(cs.by_end),
                }
                self._emit_shortened(cs, item, out)
        # teacher_double_booked
        self._check_teachers(cs, item, th, out)

    def _class_reviewed(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        cs = self.classes.get(rec["class_id"])
        if cs is not None:
            cs.rejected = rec.get("decision") == "rejected"
            self._advance(cs, item, out)

    def _enrollment(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        cs = self.classes.get(rec["class_id"])
        if cs is not None:
            cs.enrolled[rec["trainee_id"]] = None
            self._advance(cs, item, out)

    # ------------------------------------------------------------ attendance

    def _attendance(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        cs: ClassState | None = self.classes.get(rec["class_id"])
        if cs is None:
            return
        sess = cs.sessions.get(rec["session_id"])
        if sess is None:
            return
        th = cs.th
        trainee = rec["trainee_id"]
        att_id = rec["id"]
        sign_in = rec["sign_in"]
        t_in = parse_ts(sign_in)
        t_out = parse_ts(rec["sign_out"])
        at_text = rec["at"]
        at = t_in if at_text == sign_in else parse_ts(at_text)
        device = rec.get("device_id", "")
        if t_out > self._newest:
            self._newest = t_out
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._sweep()

        # -- is this sign-in suspicious?
        reasons: list[dict[str, Any]] = []
        fs = rec.get("face_score")
        if rec.get("method") == "face" and fs is not None and fs < th.face_min:
            reasons.append({"rule": "face_score", "face_score": fs, "min": th.face_min})
        inst = self.institutions.get(cs.institution_id)
        iv = inst.as_of(t_in) if inst is not None else None
        venue = iv.venues.get(cs.venue_id) if iv is not None else None
        if sess.onsite and venue is not None:
            d = venue.distance_m(float(rec["lat"]), float(rec["lon"]))
            if d > th.radius_m:
                reasons.append({"rule": "distance", "meters": round(d), "max_meters": th.radius_m, "venue_id": cs.venue_id})
            if device not in venue.devices:
                reasons.append({
                    "rule": "device_not_registered", "device_id": device, "venue_id": cs.venue_id,
                    "institution_record_id": iv.record_id,
                })
        recent = self.devices.get(device)
        if recent is None:
            recent = self.devices.setdefault(device, _device_window)
        burst_ids: list[str] = []
        seen_trainees = {trainee}
        lo = t_in - th.burst_s
        # ``recent`` is kept sorted by sign-in time, so the scan stops at the
        # first sign-in older than the burst window.
        in_window = []
        for entry in reversed(recent):
            if entry[0] < lo:
                break
            in_window.append(entry)
        for (t, tr, aid) in reversed(in_window):  # oldest first, as the rule reads
            if t <= t_in and tr not in seen_trainees:
                seen_trainees.add(tr)
                burst_ids.append(aid)
        _insert_sorted(recent, (t_in, trainee, att_id))
        if len(seen_trainees) >= th.burst_n:
            reasons.append({
                "rule": "device_burst", "device_id": device, "trainees": len(seen_trainees),
                "within_seconds": th.burst_s, "with_attendance_ids": burst_ids[:IDS_PER_ITEM],
            })

        # -- record the sign-in
        cs.sign_ins += 1
        s_clip = t_in if t_in > sess.start else sess.start
        e_clip = t_out if t_out < sess.end else sess.end
        if reasons:
            cs.suspicious_count += 1
            if len(cs.suspicious) < SUSPICIOUS_KEPT:
                cs.suspicious.append({
                    "attendance_id": att_id, "trainee_id": trainee, "session_id": sess.sid,
                    "sign_in": rec["sign_in"], "reasons": reasons,
                })
            self._check_proxy(cs, item, out, final=False)
        if cs.compact or sess.frozen:
            # A sign-in arriving after the class was over: it still counts for the trainee's
            # verified time and the proxy share; the sessions' figures are closed.
            if e_clip > s_clip and not reasons:
                cs.verified_total[trainee] = cs.verified_total.get(trainee, 0.0) + (e_clip - s_clip)
            if e_clip > s_clip:
                self._check_overlap(cs, sess, trainee, att_id, s_clip, e_clip, item, out)
            if at > cs.clock:
                cs.clock = at
            return
        raw = sess.raw.get(trainee)
        first_in_session = raw is None
        if raw is None:
            sess.raw[trainee] = [(t_in, t_out)]
        else:
            raw.append((t_in, t_out))
        if len(sess.att_ids) < IDS_PER_ITEM:
            sess.att_ids.append(att_id)
        if e_clip > s_clip:
            sess.inside.setdefault(trainee, []).append((s_clip, e_clip))
            if not reasons:
                sess.verified.setdefault(trainee, []).append((s_clip, e_clip))
        elif trainee not in sess.inside:
            sess.inside[trainee] = [(s_clip, s_clip)]  # signed in, but no time inside the window
        sess.delivered_cache = None

        # -- venue capacity: distinct trainees signed in to an onsite session
        if first_in_session and sess.onsite and venue is not None and len(sess.raw) > venue.capacity:
            n = len(sess.raw)
            sess.over_capacity_count = n
            if not sess.over_capacity:
                sess.over_capacity = True
                self._note_capacity(cs, sess, venue, iv, item, out)

        # -- an inspection of this session sees this trainee?
        for insp in cs.inspections if cs.inspections else ():
            if insp.sid == sess.sid and t_in <= insp.at <= t_out:
                n = self._signed_in_at(sess, insp.at)
                if n != insp.signed_in:
                    insp.signed_in = n
                    if insp.present < th.inspection_ratio * n:
                        insp.flagged = True
                        self._emit_inflated(cs, item, out)

        # -- overlapping_enrollment
        if e_clip > s_clip:
            self._check_overlap(cs, sess, trainee, att_id, s_clip, e_clip, item, out)

        if at > cs.clock:
            cs.clock = at
        if cs.clock >= cs.next_due or (cs.clock >= cs.close_due and not cs.closed):
            self._advance(cs, item, out, at=at)

    def _sweep(self) -> None:
        """Drop sign-in windows no later sign-in can overlap any more (bounded memory).

        Deterministic: runs every SWEEP_EVERY attendance items, against data time."""
        self._since_sweep = 0
        horizon = self._newest - TRAINEE_HORIZON_S
        gone = []
        for t, spans in self.trainees.items.items():
            while spans and spans[0][1] < horizon:
                spans.popleft()
            if not spans:
                gone.append(t)
        for t in gone:
            self.trainees.pop(t)
        gone = [d for d, recent in self.devices.items.items() if not recent or recent[-1][0] < horizon]
        for d in gone:
            self.devices.pop(d)

    @staticmethod
    def _signed_in_at(sess: Session, at: float) -> int:
        """Distinct trainees signed in at ``at`` (sign_in <= at <= sign_out)."""
        n = 0
        for spans in sess.raw.values():
            for (a, b) in spans:
                if a <= at <= b:
                    n += 1
                    break
        return n

    def _check_overlap(self, cs: ClassState, sess: Session, trainee: str, att_id: str,
                       s: float, e: float, item: Accepted, out: list[AlertDraft]) -> None:
        spans: deque = self.trainees.get(trainee)
        if spans is None:
            spans = self.trainees.setdefault(trainee, deque)
        found: list[dict[str, Any]] = []
        class_id = cs.class_id
        # ``spans`` is sorted by start; once a span starts so early that even the
        # longest span seen cannot reach into [s, e], no earlier one can either.
        reach = s + OVERLAP_MIN_S - self._span_max
        for (s2, e2, cls2, sid2, att2) in reversed(spans):
            if s2 < reach:
                break
            if e2 - s < OVERLAP_MIN_S or e - s2 < OVERLAP_MIN_S or cls2 == class_id:
                continue
            ov = (e if e < e2 else e2) - (s if s > s2 else s2)
            if ov >= OVERLAP_MIN_S:
                found.append({
                    "attendance_id": att_id, "class_id": cs.class_id, "session_id": sess.sid,
                    "other_attendance_id": att2, "other_class_id": cls2, "other_session_id": sid2,
                    "overlap_minutes": _minutes(ov),
                })
        found.reverse()  # oldest first, as evidence reads
        if e - s > self._span_max:
            self._span_max = e - s
        _insert_sorted(spans, (s, e, class_id, sess.sid, att_id))
        while len(spans) > TRAINEE_INTERVALS_MAX:
            spans.popleft()
        if not found:
            return
        pairs: list = self.overlaps.setdefault(trainee, list)
        pairs.extend(found[: max(0, PAIRS_KEPT - len(pairs))])
        total = sum(p["overlap_minutes"] for p in pairs)
        classes = sorted({p["class_id"] for p in pairs} | {p["other_class_id"] for p in pairs})
        severity = "high" if len(pairs) >= 3 else "medium"
        summary_item = {
            "check": "summary", "trainee_id": trainee, "overlapping_sign_ins": len(pairs),
            "overlap_minutes": round(total, 1), "classes": classes[:IDS_PER_ITEM],
            "min_overlap_minutes": _minutes(OVERLAP_MIN_S),
        }
        self._emit(out, "overlapping_enrollment", {"trainee_id": trainee}, severity, [summary_item] + pairs,
                   cs.pack, item,
                   f"trainee signed in to {len(classes)} classes at the same time ({len(pairs)} overlapping sign-ins)")

    def _note_capacity(self, cs: ClassState, sess: Session, venue: Venue, iv: InstVersion,
                       item: Accepted, out: list[AlertDraft]) -> None:
        cs.over_capacity[sess.sid] = {
            "check": "session", "session_id": sess.sid, "venue_id": cs.venue_id,
            "capacity": venue.capacity, "signed_in": sess.over_capacity_count,
            "institution_record_id": iv.record_id, "attendance_ids": list(sess.att_ids),
        }
        worst = max(v["signed_in"] / max(1, v["capacity"]) for v in cs.over_capacity.values())
        severity = "critical" if worst >= 2 else "high" if worst >= 1.5 else "medium"
        evidence = [{"check": "summary", "class_opened_id": cs.opened_id, "sessions_over_capacity": len(cs.over_capacity)}]
        evidence += list(cs.over_capacity.values())
        self._emit(out, "venue_over_capacity", {"class_id": cs.class_id}, severity, evidence, cs.pack, item,
                   f"{len(cs.over_capacity)} session(s) with more trainees signed in than venue {cs.venue_id} holds")

    # ------------------------------------------------------------ proxy sign-ins

    def _check_proxy(self, cs: ClassState, item: Accepted, out: list[AlertDraft], *, final: bool) -> None:
        th = cs.th
        n = cs.suspicious_count
        if n < th.proxy_count or cs.sign_ins == 0:
            return
        if final:
            denominator = cs.sign_ins
        else:
            roster = max(len(cs.enrolled), cs.planned)
            denominator = max(cs.sign_ins, roster * len(cs.sessions))
        if n < th.proxy_share * denominator and not cs.proxy_flagged:
            return
        cs.proxy_flagged = True
        share = n / denominator
        summary_item = {
            "check": "summary", "class_opened_id": cs.opened_id, "sign_ins": cs.sign_ins,
            "suspicious": n, "judged_over": denominator, "share": round(share, 4),
            "min_count": th.proxy_count, "min_share": th.proxy_share, "class_over": final,
        }
        shown = cs.suspicious[: EVIDENCE_ITEMS_MAX - 2]
        evidence = [summary_item] + shown
        if n > len(shown):
            evidence.append({"check": "more", "suspicious_not_shown": n - len(shown)})
        self._emit(out, "proxy_sign_in", {"class_id": cs.class_id}, _share_severity(share), evidence, cs.pack, item,
                   f"{n} of {cs.sign_ins} sign-ins so far could not have been made by the trainees themselves"
                   if not final else
                   f"{n} of {cs.sign_ins} sign-ins could not have been made by the trainees themselves")

    # ------------------------------------------------------------ inspections

    def _inspection(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        cs: ClassState | None = self.classes.get(rec["class_id"])
        if cs is None:
            return
        sess = cs.sessions.get(rec["session_id"])
        if sess is None:
            return
        th = cs.th
        at = parse_ts(rec["at"])
        if sess.frozen:
            return  # an inspection reported after the class was over: its sign-ins are no longer kept
        insp = Inspection(rec["id"], sess.sid, at, rec["at"], int(rec["present_count"]))
        insp.signed_in = self._signed_in_at(sess, at)
        cs.inspections.append(insp)
        if insp.present < th.inspection_ratio * insp.signed_in:
            insp.flagged = True
            self._emit_inflated(cs, item, out)
        self._advance(cs, item, out)

    # ------------------------------------------------------------ completion & claims

    def _completion(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        cs: ClassState | None = self.classes.get(rec["class_id"])
        if cs is None:
            return
        at = parse_ts(rec["at"])
        self._advance(cs, item, out, at=at, closing=True)
        if rec.get("passed") is True:
            if self._judge_trainees(cs, [rec["trainee_id"]], rec["id"]):
                self._emit_inflated(cs, item, out)

    def _claim(self, item: Accepted, rec: dict[str, Any], out: list[AlertDraft]) -> None:
        class_id = rec.get("class_id")
        if not class_id:
            return
        cs: ClassState | None = self.classes.get(class_id)
        if cs is None:
            return
        at = parse_ts(rec["at"])
        self._check_unlisted(cs, item, rec, "claim", out)
        self._advance(cs, item, out, at=at, closing=True)
        if rec.get("subsidy_kind") in CLAIM_KINDS_WITH_ATTENDANCE:
            self._judge_trainees(cs, list(rec.get("trainee_ids", ())), rec["claim_id"])
            if cs.ghosts:  # the claim is what pays: its draft says where the class stands
                self._emit_inflated(cs, item, out)

    def _verified_seconds(self, cs: ClassState, trainee: str) -> float:
        if cs.compact:
            return cs.verified_total.get(trainee, 0.0)
        total = 0.0
        for sess in cs.by_end:
            spans = sess.verified.get(trainee)
            if spans:
                total += _union_length(spans)
        return total

    def _sessions_signed(self, cs: ClassState, trainee: str) -> tuple[int, int]:
        if cs.compact:
            return cs.signed_sessions.get(trainee, 0), len(cs.sessions)
        signed = sum(1 for s in cs.by_end if trainee in s.raw)
        return signed, len(cs.sessions)

    def _judge_trainees(self, cs: ClassState, trainees: list[str], source_id: str) -> bool:
        """Judge trainees claimed or passed; True when a new ghost was found."""
        proj = self.projects.get(cs.project_id)
        if proj is None:
            return False
        th = cs.th
        required = th.verified_share * proj.standard_minutes * 60.0
        new = False
        for t in trainees:
            cs.judged_trainees[t] = None
            if t in cs.ghosts:
                srcs = cs.ghost_sources[t]
                if source_id not in srcs and len(srcs) < IDS_PER_ITEM:
                    srcs.append(source_id)
                    new = True
                continue
            v = self._verified_seconds(cs, t)
            if v < required:
                signed, sessions = self._sessions_signed(cs, t)
                cs.ghost_sources[t] = [source_id]
                cs.ghosts[t] = {
                    "check": "unverified_attendance", "trainee_id": t,
                    "verified_minutes": _minutes(v), "required_minutes": _minutes(required),
                    "sessions_signed_in": signed, "sessions": sessions,
                    "suspicious_attendance_ids": [
                        s["attendance_id"] for s in cs.suspicious if s["trainee_id"] == t
                    ][:IDS_PER_ITEM],
                    "enrolled": t in cs.enrolled,
                    "claimed_or_passed_in": cs.ghost_sources[t],
                }
                new = True
        return new

    def _emit_inflated(self, cs: ClassState, item: Accepted, out: list[AlertDraft]) -> None:
        th = cs.th
        severity = "low"
        evidence: list[dict[str, Any]] = []
        n_judged = len(cs.judged_trainees)
        n_ghost = len(cs.ghosts)
        # share of the class: over the roster, or the trainees judged when more were claimed
        base = max(n_judged, len(cs.enrolled))
        share = n_ghost / base if base else 0.0
        if n_ghost:
            severity = severity_max(severity, _share_severity(share), "medium" if n_ghost >= 3 else "low")
        flagged = [i for i in cs.inspections if i.flagged]
        for i in flagged:
            ratio = i.present / i.signed_in if i.signed_in else 1.0
            severity = severity_max(severity, "high" if ratio < 0.5 else "medium")
        proj = self.projects.get(cs.project_id)
        evidence.append({
            "check": "summary", "class_opened_id": cs.opened_id,
            "trainees_judged": n_judged, "enrolled": len(cs.enrolled), "unverified": n_ghost,
            "share": round(share, 4),
            "standard_minutes": _minutes(proj.standard_minutes * 60) if proj else None,
            "verified_share_min": th.verified_share, "inspections_short": len(flagged),
        })
        for i in flagged[:8]:
            sess = cs.sessions[i.sid]
            evidence.append({
                "check": "inspection", "inspection_id": i.record_id, "session_id": i.sid, "at": i.at_text,
                "present_count": i.present, "signed_in": i.signed_in, "min_ratio": th.inspection_ratio,
                "attendance_ids": list(sess.att_ids),
            })
        room = EVIDENCE_ITEMS_MAX - len(evidence) - 1
        ghosts = list(cs.ghosts.values())
        evidence.extend(ghosts[:room])
        if len(ghosts) > room:
            evidence.append({"check": "more", "unverified_not_shown": len(ghosts) - room})
        parts = []
        if n_ghost:
            parts.append(f"{n_ghost} of {n_judged} trainees claimed or passed without verified attendance")
        if flagged:
            parts.append(f"{len(flagged)} inspection(s) counted far fewer present than signed in")
        self._emit(out, "inflated_headcount", {"class_id": cs.class_id}, severity, evidence, cs.pack, item,
                   "; ".join(parts))

    # ------------------------------------------------------------ hours

    def _advance(self, cs: ClassState, item: Accepted, out: list[AlertDraft], *,
                 at: float | None = None, closing: bool = False) -> None:
        """Move the class's clock to this record; judge sessions (and the class) now over."""
        if at is None:
            at = parse_ts(item.record["at"])
        if at > cs.clock:
            cs.clock = at
        th = cs.th
        changed = False
        while cs.next_judge < len(cs.by_end):
            sess = cs.by_end[cs.next_judge]
            over = cs.clock >= sess.end + SESSION_GRACE_S or (closing and at >= sess.end)
            if not over:
                break
            cs.next_judge += 1
            cs.next_due = (
                cs.by_end[cs.next_judge].end + SESSION_GRACE_S if cs.next_judge < len(cs.by_end) else math.inf
            )
            sess.judged = True
            if sess.over_capacity and cs.over_capacity.get(sess.sid, {}).get("signed_in") != sess.n_signed():
                inst = self.institutions.get(cs.institution_id)
                iv = inst.as_of(sess.start) if inst else None
                venue = iv.venues.get(cs.venue_id) if iv else None
                if venue is not None:
                    sess.over_capacity_count = sess.n_signed()
                    self._note_capacity(cs, sess, venue, iv, item, out)
            if not sess.n_signed():
                continue  # nobody signed in: counted as nothing delivered in the class total
            delivered = sess.delivered()
            ratio = delivered / sess.scheduled if sess.scheduled > 0 else 1.0
            if ratio < th.session_ratio:
                cs.short_sessions[sess.sid] = {
                    "check": "session", "session_id": sess.sid, "start": sess.start_text, "end": sess.end_text,
                    "scheduled_minutes": _minutes(sess.scheduled), "delivered_minutes": _minutes(delivered),
                    "ratio": round(ratio, 4), "min_ratio": th.session_ratio,
                    "signed_in": sess.n_signed(), "attendance_ids": list(sess.att_ids),
                }
                changed = True
        class_over = cs.by_end and cs.clock >= cs.last_end + SESSION_GRACE_S
        if class_over or (closing and cs.by_end and at >= cs.last_end):
            if not cs.closed or closing:
                first_close = not cs.closed
                cs.closed = True
                if self._judge_delivered(cs, item):
                    changed = True
                if first_close:
                    self._check_proxy(cs, item, out, final=True)
        if changed:
            self._emit_shortened(cs, item, out)
        if cs.closed and not cs.compact and cs.next_judge >= len(cs.by_end):
            self._compact(cs)

    @staticmethod
    def _compact(cs: ClassState) -> None:
        """The class is over and every session judged: keep totals, drop the intervals."""
        vt: dict[str, float] = {}
        signed: dict[str, int] = {}
        for sess in cs.by_end:
            for t, spans in sess.verified.items():
                vt[t] = vt.get(t, 0.0) + _union_length(spans)
            for t in sess.raw:
                signed[t] = signed.get(t, 0) + 1
            sess.freeze()
        cs.verified_total = vt
        cs.signed_sessions = signed
        cs.compact = True

    def _judge_delivered(self, cs: ClassState, item: Accepted) -> bool:
        proj = self.projects.get(cs.project_id)
        if proj is None:
            return False
        th = cs.th
        std = proj.standard_minutes * 60.0
        delivered = 0.0
        empty: list[str] = []
        for sess in cs.by_end:
            if sess.n_signed():
                delivered += sess.delivered()
            else:
                empty.append(sess.sid)
        if delivered >= th.hours_tolerance * std:
            return False
        finding = {
            "check": "delivered", "class_opened_id": cs.opened_id, "project_record_id": proj.record_id,
            "delivered_minutes": _minutes(delivered), "standard_minutes": _minutes(std),
            "ratio": round(delivered / std, 4) if std else 0.0, "tolerance": th.hours_tolerance,
            "sessions_without_sign_in": empty[:IDS_PER_ITEM], "sessions": len(cs.by_end),
            "judged_at_record": item.record["id"],
        }
        old = cs.delivered_short
        if old is not None and {k: v for k, v in old.items() if k != "judged_at_record"} == {
            k: v for k, v in finding.items() if k != "judged_at_record"
        }:
            return False
        cs.delivered_short = finding
        return True

    def _emit_shortened(self, cs: ClassState, item: Accepted, out: list[AlertDraft]) -> None:
        severity = "low"
        evidence: list[dict[str, Any]] = []
        if cs.schedule_short:
            f = cs.schedule_short
            severity = severity_max(severity, _ratio_severity(f["scheduled_minutes"] / f["standard_minutes"]))
            evidence.append(f)
        if cs.delivered_short:
            f = cs.delivered_short
            severity = severity_max(severity, _ratio_severity(f["ratio"]))
            evidence.append(f)
        sessions = list(cs.short_sessions.values())
        for f in sessions:
            severity = severity_max(severity, "medium" if f["ratio"] < 0.7 else "low")
        room = EVIDENCE_ITEMS_MAX - len(evidence) - 1
        evidence.extend(sessions[:room])
        if len(sessions) > room:
            evidence.append({"check": "more", "short_sessions_not_shown": len(sessions) - room})
        parts = []
        if cs.schedule_short:
            parts.append("schedule below the standard hours")
        if cs.delivered_short:
            parts.append(f"delivered {cs.delivered_short['delivered_minutes']} of {cs.delivered_short['standard_minutes']} standard minutes")
        if sessions:
            parts.append(f"{len(sessions)} session(s) held materially shorter than scheduled")
        self._emit(out, "shortened_hours", {"class_id": cs.class_id}, severity, evidence, cs.pack, item,
                   "; ".join(parts))

    # ------------------------------------------------------------ catalogue status, teachers

    def _check_unlisted(self, cs: ClassState, item: Accepted, rec: dict[str, Any], what: str,
                        out: list[AlertDraft]) -> None:
        inst = self.institutions.get(cs.institution_id)
        if inst is None or not inst.versions:
            return
        at = parse_ts(rec["at"])
        i = bisect.bisect_right(inst.ats, at)
        if i == 0:
            return  # no institution record in force yet: nothing says it was not listed
        iv = inst.versions[i - 1]
        if iv.status not in ("suspended", "delisted"):
            return
        cs.unlisted.append({
            "check": what, "record_id": rec["id"], "at": rec["at"],
            **({"claim_id": rec["claim_id"]} if what == "claim" else {"class_opened_id": rec["id"]}),
            "institution_id": cs.institution_id, "status": iv.status,
            "institution_record_id": iv.record_id, "status_since": iv.at_text,
        })
        severity = "low"
        for u in cs.unlisted:
            base = "high" if u["status"] == "delisted" else "medium"
            if u["check"] == "claim":
                base = "critical" if u["status"] == "delisted" else "high"
            severity = severity_max(severity, base)
        evidence = cs.unlisted[: EVIDENCE_ITEMS_MAX]
        self._emit(out, "unlisted_institution", {"class_id": cs.class_id}, severity, evidence, cs.pack, item,
                   f"{what} while institution {cs.institution_id} was {iv.status}")

    def _check_teachers(self, cs: ClassState, item: Accepted, th: Thresholds, out: list[AlertDraft]) -> None:
        found: dict[str, list[dict[str, Any]]] = {}
        for sess in cs.by_end:
            booked: list = self.teachers.setdefault(sess.teacher, list)
            for (s2, e2, cls2, sid2, open2, st2, et2) in booked:
                if cls2 == cs.class_id:
                    continue
                other = self.classes.get(cls2)
                if other is not None and other.rejected:
                    continue
                if sess.start < e2 and s2 < sess.end:
                    found.setdefault(sess.teacher, []).append({
                        "class_id": cs.class_id, "session_id": sess.sid, "class_opened_id": cs.opened_id,
                        "start": sess.start_text, "end": sess.end_text,
                        "other_class_id": cls2, "other_session_id": sid2, "other_class_opened_id": open2,
                        "other_start": st2, "other_end": et2,
                        "overlap_minutes": _minutes(min(sess.end, e2) - max(sess.start, s2)),
                    })
        for sess in cs.by_end:
            booked = self.teachers.setdefault(sess.teacher, list)
            booked.append((sess.start, sess.end, cs.class_id, sess.sid, cs.opened_id, sess.start_text, sess.end_text))
            if len(booked) > TEACHER_SESSIONS_MAX:
                # keep the latest-ending sessions: old schedules cannot clash with new classes
                booked.sort(key=lambda b: (b[1], b[2], b[3]))
                del booked[0]
        for teacher, pairs in found.items():
            all_pairs: list = self.double_booked.setdefault(teacher, list)
            all_pairs.extend(pairs[: max(0, PAIRS_KEPT - len(all_pairs))])
            classes = sorted({p["class_id"] for p in all_pairs} | {p["other_class_id"] for p in all_pairs})
            severity = "high" if len(all_pairs) >= 3 else "medium"
            evidence = [{"check": "summary", "teacher_id": teacher, "overlapping_sessions": len(all_pairs),
                         "classes": classes[:IDS_PER_ITEM]}] + all_pairs
            self._emit(out, "teacher_double_booked", {"teacher_id": teacher}, severity, evidence, cs.pack, item,
                       f"teacher scheduled in {len(all_pairs)} overlapping session(s) of {len(classes)} classes")


def _insert_sorted(window: deque, entry: tuple) -> None:
    """Append keeping ``window`` sorted by its first field (arrivals are nearly
    always in time order, so this is an append; a late one is put in place)."""
    if not window or window[-1][0] <= entry[0]:
        window.append(entry)
        return
    if window.maxlen is not None and len(window) == window.maxlen:
        window.popleft()
    i = len(window)
    while i > 0 and window[i - 1][0] > entry[0]:
        i -= 1
    window.insert(i, entry)


def _device_window() -> deque:
    return deque(maxlen=DEVICE_WINDOW_MAX)


def detectors() -> list[ClassDetector]:
    return [ClassDetector()]
