"""Per-class features for the anomalous_class model, accumulated from the feed.

A ``FeatureBuilder`` observes feed items in order and keeps, per open class,
running sums (sign-in and sign-out offsets, face scores, per-trainee offsets),
small maps (devices, exact coordinates, verified minutes per trainee) and, per
session, one number and one interval per sign-in (for the delivered-time
median and the inspection head count), never the records themselves. A class is *complete* when its training claim
arrives, or when the feed's data time passes its end date plus a grace
period (completions and claims come after the last session). Then its
feature vector (``ClassFeatures``) is returned and the class's state is
dropped, so memory is bounded by the classes still running.

Money stays int fen in the ledger; ``cost_per_trainee`` is yuan as a float
because it is only ever a model input.

``PeerStats`` turns raw values into robust z-scores against peer classes:
occupation_code × level × pack region, falling back to level × region, then
region, then all classes when a group has fewer than ``PEER_MIN`` classes.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from detectors.base import parse_ts
from ledger.policy import pack_code_for, pack_for
from projections.feed import Accepted, Item

# The features, in model-column order. Each is documented in docs/quality.md.
FEATURES: tuple[str, ...] = (
    "pass_rate",  # passed / completion records
    "verified_share",  # verified trainees / claimed trainees (enrolled before the claim)
    "hours_ratio",  # delivered / standard hours (delivered: per session, median time inside the window)
    "signin_spread_min",  # std of (sign-in − session start), minutes
    "face_mean",  # mean face score of face sign-ins
    "face_low_share",  # share of face sign-ins scoring below FACE_LOW
    "inspection_ratio",  # present_count / trainees signed in at the inspection time (mean)
    "cost_per_trainee",  # training claim yuan / trainees claimed
    "device_top_share",  # share of sign-ins on the busiest device, minus 1 / registered devices of the venue
    "duration_cv",  # coefficient of variation of time inside the window per sign-in
    "signout_spread_min",  # std of (sign-out − session end), minutes
    "attendance_rate",  # sign-ins / (enrolled × sessions)
    "claimed_share",  # trainees claimed / enrolled
    "face_std",  # std of face scores (machine-made data repeats one value)
    "coord_top_share",  # share of sign-ins at the most common exact (lat, lon)
    "offset_repeat_min",  # mean over trainees of the std of their own sign-in offsets across sessions
    "capacity_ratio",  # most trainees signed in to one session / venue capacity
)

# Direction in which a feature looks like fraud (+1: high is suspicious,
# -1: low is suspicious, 0: both: ghost trainees lower attendance, fabricated
# records make it perfect; low face scores mean proxies, one repeated 0.99
# means machine-made records). Used by the robust-z model and by
# "iforest_signed"; the plain IsolationForest sees both directions.
SUSPICIOUS_SIGN: dict[str, int] = {
    "pass_rate": +1,
    "verified_share": -1,
    "hours_ratio": -1,
    "signin_spread_min": -1,
    "face_mean": 0,
    "face_low_share": +1,
    "inspection_ratio": -1,
    "cost_per_trainee": +1,
    "device_top_share": +1,
    "duration_cv": -1,
    "signout_spread_min": -1,
    "attendance_rate": 0,
    "claimed_share": +1,
    "face_std": -1,
    "coord_top_share": +1,
    "offset_repeat_min": -1,
    "capacity_ratio": +1,
}

FACE_LOW = 0.8  # the face-score profile's "low" line (the policy's suspicious line is 0.7)
COMPLETE_GRACE_DAYS = 30  # a class with no training claim is complete this long after its end date
PEER_MIN = 15  # smallest peer group whose median/MAD we trust (MAD of <15 values is too noisy)
SCALE_FLOOR: dict[str, float] = {  # smallest robust scale per feature (in its own unit)
    "pass_rate": 0.05,
    "verified_share": 0.05,
    "hours_ratio": 0.03,
    "signin_spread_min": 1.0,
    "face_mean": 0.01,
    "face_low_share": 0.03,
    "inspection_ratio": 0.05,
    "cost_per_trainee": 20.0,
    "device_top_share": 0.03,
    "duration_cv": 0.01,
    "signout_spread_min": 1.0,
    "attendance_rate": 0.03,
    "claimed_share": 0.03,
    "face_std": 0.005,
    "coord_top_share": 0.02,
    "offset_repeat_min": 0.5,
    "capacity_ratio": 0.03,
}
Z_CLIP = 10.0
_MAD_TO_SIGMA = 1.4826
_MEANAD_TO_SIGMA = 1.2533

_fromiso = datetime.fromisoformat
_NONE: tuple = ()


def _ts(text: str) -> float:
    return parse_ts(text)


@dataclass(frozen=True)
class ClassFeatures:
    """One complete class: its peer keys and raw feature values (None = unknown)."""

    class_id: str
    position: int  # feed position of the record that completed it
    at: str  # that record's `at`
    occupation: str
    level: str
    pack: str
    values: tuple[float | None, ...]  # in FEATURES order

    def value(self, name: str) -> float | None:
        return self.values[FEATURES.index(name)]

    def as_dict(self) -> dict[str, float | None]:
        return dict(zip(FEATURES, self.values))


class _Project:
    __slots__ = ("occupation", "level", "pack", "std_minutes", "subsidy_fen")

    def __init__(self, rec: dict[str, Any], pack: str | None) -> None:
        self.occupation = str(rec.get("occupation_code", ""))
        self.level = str(rec.get("level", ""))
        self.pack = pack or pack_code_for(str(rec.get("region", ""))) or ""
        self.std_minutes = float(rec.get("standard_hours", 0)) * float(rec.get("class_hour_minutes", 45) or 45)
        self.subsidy_fen = _fen(rec.get("subsidy_per_trainee"))


class _Session:
    __slots__ = ("start", "end", "onsite", "inside", "intervals")

    def __init__(self, start: float, end: float, onsite: bool) -> None:
        self.start = start
        self.end = end
        self.onsite = onsite
        self.inside: list[float] = []  # minutes inside the window, one per sign-in
        self.intervals: list[tuple[float, float]] = []  # (sign_in, sign_out) for inspections


class _Class:
    __slots__ = (
        "class_id", "occupation", "level", "pack", "std_minutes", "end_date",
        "venue", "sessions", "enrolled", "signins", "off_sum", "off_sq",
        "out_sum", "out_sq", "face_n", "face_sum", "face_low", "devices",
        "verified_min", "inspections", "completions", "passed", "claim_fen",
        "claimed", "face_min", "geo", "subsidy_fen", "face_sq", "coords", "per_trainee",
    )

    def __init__(self, class_id: str, project: _Project, pack: str, end_date: str, venue: Any) -> None:
        self.class_id = class_id
        self.occupation = project.occupation
        self.level = project.level
        self.pack = pack
        self.std_minutes = project.std_minutes
        self.subsidy_fen = project.subsidy_fen
        self.end_date = end_date
        self.venue = venue  # (lat, lon, frozenset(devices), capacity) or None
        self.sessions: dict[str, _Session] = {}
        self.enrolled: set[str] = set()
        self.signins = 0
        self.off_sum = 0.0
        self.off_sq = 0.0
        self.out_sum = 0.0
        self.out_sq = 0.0
        self.face_n = 0
        self.face_sum = 0.0
        self.face_low = 0
        self.face_sq = 0.0
        self.coords: dict[tuple[float, float], int] = {}
        self.per_trainee: dict[str, list[float]] = {}  # trainee -> [n, sum, sumsq] of sign-in offsets
        self.devices: dict[str, int] = {}
        self.verified_min: dict[str, float] = {}
        self.inspections: list[tuple[str, float, int]] = []
        self.completions: dict[str, bool] = {}
        self.claim_fen: int | None = None
        self.claimed: set[str] = set()
        self.face_min, radius = _rules(pack)
        self.geo = _geo(venue, radius)


def _rules(pack: str) -> tuple[float, float]:
    p = pack_for(pack) if pack else None
    if p is None:
        return 0.7, 1000.0
    return float(p.value("face_score_min")), float(p.value("venue_radius_m"))


_METRES_PER_DEGREE = 6_371_000.0 * math.pi / 180.0


def _geo(venue: Any, radius_m: float) -> tuple[float, float, float, float, frozenset[str]] | None:
    """(lat, lon, 1/lat-radius, 1/lon-radius, devices): a sign-in is inside the
    radius when ((Δlat·a)² + (Δlon·b)²) ≤ 1 (equirectangular at the venue)."""
    if venue is None:
        return None
    lat, lon, devices = venue[0], venue[1], venue[2]
    r_deg = max(radius_m, 1.0) / _METRES_PER_DEGREE
    return (lat, lon, 1.0 / r_deg, max(1e-9, math.cos(math.radians(lat))) / r_deg, devices)


def _std(n: int, s: float, sq: float) -> float | None:
    if n < 2:
        return None
    var = (sq - s * s / n) / (n - 1)
    return math.sqrt(var) if var > 0 else 0.0


def _median(values: Sequence[float]) -> float:
    v = sorted(values)
    n = len(v)
    m = n // 2
    return v[m] if n % 2 else (v[m - 1] + v[m]) / 2


def _add_days(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


@dataclass
class FeatureBuilder:
    """Folds feed items into per-class counters; emits a class when complete."""

    grace_days: int = COMPLETE_GRACE_DAYS
    max_open_classes: int = 200_000
    max_catalogue: int = 200_000
    projects: dict[str, _Project] = field(default_factory=dict)
    venues: dict[tuple[str, str], tuple[float, float, frozenset[str], int]] = field(default_factory=dict)
    open: dict[str, _Class] = field(default_factory=dict)
    done: dict[str, None] = field(default_factory=dict)  # recently completed class ids (bounded)
    _due: list[tuple[str, int, str]] = field(default_factory=list)  # (due date, seq, class_id)
    _seq: int = 0
    feed_day: str = ""  # the latest data date seen ("YYYY-MM-DD")
    last: Accepted | None = None  # the latest record seen (flush completes classes "at" it)

    # ---------------------------------------------------------------- observe

    def observe(self, item: Item) -> Sequence[ClassFeatures]:
        """Fold one item; return the classes it completed (usually none)."""
        if type(item) is not Accepted:
            return _NONE
        self.last = item
        rec = item.record
        t = item.type
        if t == "attendance":  # the hot path: no list, no day check unless the day moved
            c = self.open.get(rec["class_id"])
            if c is not None:
                self._attendance(c, rec)
            if rec["at"][:10] > self.feed_day:
                return self._expire(item)
            return _NONE
        out: list[ClassFeatures] = []
        if t == "enrollment":
            c = self.open.get(rec["class_id"])
            if c is not None:
                c.enrolled.add(rec["trainee_id"])
        elif t == "completion":
            c = self.open.get(rec["class_id"])
            if c is not None:
                c.completions[rec["trainee_id"]] = bool(rec.get("passed"))
        elif t == "inspection":
            c = self.open.get(rec["class_id"])
            if c is not None:
                c.inspections.append((rec["session_id"], _ts(rec["at"]), int(rec.get("present_count", 0))))
        elif t == "claim":
            cid = rec.get("class_id")
            if cid and rec.get("subsidy_kind") == "training":
                c = self.open.get(cid)
                if c is not None:
                    c.claim_fen = _fen(rec.get("amount"))
                    c.claimed = set(rec.get("trainee_ids") or ())
                    f = self._complete(c, item)
                    if f is not None:
                        out.append(f)
        elif t == "class_opened":
            self._opened(item)
        elif t == "class_reviewed":
            if rec.get("decision") == "rejected":
                self.open.pop(rec["class_id"], None)  # never held: nothing to compare
        elif t == "project":
            self._bounded_put(self.projects, rec["project_id"], _Project(rec, item.pack))
        elif t == "institution":
            for v in rec.get("venues") or ():
                key = (rec["institution_id"], v["venue_id"])
                self._bounded_put(
                    self.venues,
                    key,
                    (float(v.get("lat", 0.0)), float(v.get("lon", 0.0)), frozenset(v.get("devices") or ()), int(v.get("capacity", 0) or 0)),
                )
        if rec.get("at", "")[:10] > self.feed_day:
            out.extend(self._expire(item))
        return out or _NONE

    def _expire(self, item: Accepted) -> list[ClassFeatures]:
        """The feed's data date moved on: complete the classes now past due."""
        day = item.record.get("at", "")[:10]
        if day > self.feed_day:
            self.feed_day = day
        out: list[ClassFeatures] = []
        due = self._due
        while due and due[0][0] < self.feed_day:
            _, _, cid = heapq.heappop(due)
            c = self.open.get(cid)
            if c is not None:
                f = self._complete(c, item)
                if f is not None:
                    out.append(f)
        return out

    def flush(self, item: Accepted | None = None) -> list[ClassFeatures]:
        """Complete every open class now (end of an evaluation run), at ``item``
        (default: the latest record seen)."""
        item = item or self.last
        out = []
        for cid in list(self.open):
            f = self._complete(self.open[cid], item)
            if f is not None:
                out.append(f)
        self._due.clear()
        return out

    # ---------------------------------------------------------------- records

    def _bounded_put(self, d: dict, key: Any, value: Any) -> None:
        d.pop(key, None)
        d[key] = value
        if len(d) > self.max_catalogue:
            d.pop(next(iter(d)))

    def _opened(self, item: Accepted) -> None:
        rec = item.record
        cid = rec["class_id"]
        if cid in self.open or cid in self.done:
            return
        project = self.projects.get(rec.get("project_id", ""))
        if project is None:
            return  # the ledger refuses this; nothing to score against
        pack = item.pack or project.pack
        venue = self.venues.get((rec.get("institution_id", ""), rec.get("venue_id", "")))
        c = _Class(cid, project, pack, rec.get("end_date", ""), venue)
        for s in rec.get("sessions") or ():
            c.sessions[s["session_id"]] = _Session(_ts(s["start"]), _ts(s["end"]), s.get("mode", "onsite") == "onsite")
        self.open[cid] = c
        if len(self.open) > self.max_open_classes:
            oldest = next(iter(self.open))
            self.open.pop(oldest)
        if c.end_date:
            self._seq += 1
            heapq.heappush(self._due, (_add_days(c.end_date, self.grace_days), self._seq, cid))

    def _attendance(self, c: _Class, rec: dict[str, Any]) -> None:
        # The hot path (most of the feed is attendance): plain locals, required
        # contract fields by index, no per-record allocation beyond what is kept.
        s = c.sessions.get(rec["session_id"])
        if s is None:
            return
        t_in = parse_ts(rec["sign_in"])
        t_out = parse_ts(rec["sign_out"])
        start = s.start
        end = s.end
        c.signins += 1
        off = (t_in - start) / 60.0
        c.off_sum += off
        c.off_sq += off * off
        tid = rec["trainee_id"]
        pt = c.per_trainee.get(tid)
        if pt is None:
            c.per_trainee[tid] = [1.0, off, off * off]
        else:
            pt[0] += 1.0
            pt[1] += off
            pt[2] += off * off
        out = (t_out - end) / 60.0
        c.out_sum += out
        c.out_sq += out * out
        inside = ((t_out if t_out < end else end) - (t_in if t_in > start else start)) / 60.0
        if inside < 0.0:
            inside = 0.0
        s.inside.append(inside)
        s.intervals.append((t_in, t_out))
        dev = rec["device_id"]
        devices = c.devices
        devices[dev] = devices.get(dev, 0) + 1
        suspicious = False
        score = rec.get("face_score")
        if score is not None and rec["method"] == "face":
            c.face_n += 1
            c.face_sum += score
            c.face_sq += score * score
            if score < FACE_LOW:
                c.face_low += 1
            if score < c.face_min:
                suspicious = True
        lat = rec["lat"]
        lon = rec["lon"]
        key = (lat, lon)
        coords = c.coords
        coords[key] = coords.get(key, 0) + 1
        geo = c.geo
        if geo is not None:
            if dev not in geo[4]:
                suspicious = True
            elif s.onsite:
                y = (lat - geo[0]) * geo[2]
                x = (lon - geo[1]) * geo[3]
                if x * x + y * y > 1.0:  # outside the venue radius (equirectangular)
                    suspicious = True
        if not suspicious:
            vm = c.verified_min
            vm[tid] = vm.get(tid, 0.0) + inside

    # ---------------------------------------------------------------- features

    def _complete(self, c: _Class, item: Any) -> ClassFeatures | None:
        self.open.pop(c.class_id, None)
        self.done[c.class_id] = None
        if len(self.done) > self.max_open_classes:
            self.done.pop(next(iter(self.done)))
        if c.signins == 0 and c.claim_fen is None:
            return None  # never held and never claimed: nothing to compare
        position = getattr(item, "position", 0) or 0
        at = (getattr(item, "record", None) or {}).get("at", "")
        return ClassFeatures(
            class_id=c.class_id,
            position=position,
            at=at,
            occupation=c.occupation,
            level=c.level,
            pack=c.pack,
            values=class_values(c),
        )


def _fen(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    whole, _, frac = text.partition(".")
    try:
        return int(whole) * 100 + int((frac + "00")[:2])
    except ValueError:
        return None


def class_values(c: _Class) -> tuple[float | None, ...]:
    n_sessions = len(c.sessions)
    enrolled = len(c.enrolled)
    # pass rate
    pass_rate = (sum(c.completions.values()) / len(c.completions)) if c.completions else None
    # verified trainees among those claimed (enrolled while no claim yet)
    base = c.claimed if c.claimed else c.enrolled
    need = 0.5 * c.std_minutes
    verified = sum(1 for t in base if c.verified_min.get(t, 0.0) >= need) if base else 0
    verified_share = verified / len(base) if base else None
    # delivered hours: per session the median of time inside the window
    delivered = sum(_median(s.inside) for s in c.sessions.values() if s.inside)
    hours_ratio = delivered / c.std_minutes if c.std_minutes > 0 else None
    spread = _std(c.signins, c.off_sum, c.off_sq)
    out_spread = _std(c.signins, c.out_sum, c.out_sq)
    face_mean = c.face_sum / c.face_n if c.face_n else None
    face_low = c.face_low / c.face_n if c.face_n else None
    # inspections: present / signed in at that moment
    ratios = []
    for sid, at, present in c.inspections:
        s = c.sessions.get(sid)
        if s is None:
            continue
        signed = sum(1 for a, b in s.intervals if a <= at <= b)
        if signed > 0:
            ratios.append(min(present / signed, 2.0))
        elif present > 0:
            ratios.append(2.0)
    inspection_ratio = sum(ratios) / len(ratios) if ratios else None
    cost = (c.claim_fen / 100.0 / len(c.claimed)) if (c.claim_fen is not None and c.claimed) else None
    top_device = (max(c.devices.values()) / c.signins) if c.signins else None
    if top_device is not None and c.venue is not None and c.venue[2]:
        # in excess of an even spread over the venue's registered devices: a
        # one-device venue is not suspicious for putting everyone on it
        top_device -= 1.0 / len(c.venue[2])
    all_inside = [x for s in c.sessions.values() for x in s.inside]
    if len(all_inside) >= 2:
        mean_in = sum(all_inside) / len(all_inside)
        sd = math.sqrt(sum((x - mean_in) ** 2 for x in all_inside) / (len(all_inside) - 1))
        duration_cv = sd / mean_in if mean_in > 0 else 0.0
    else:
        duration_cv = None
    attendance_rate = c.signins / (enrolled * n_sessions) if enrolled and n_sessions else None
    claimed_share = len(c.claimed) / enrolled if (c.claimed and enrolled) else None
    face_std = _std(c.face_n, c.face_sum, c.face_sq)
    coord_top = (max(c.coords.values()) / sum(c.coords.values())) if c.coords else None
    repeats = [_std(int(n), s1, s2) for n, s1, s2 in c.per_trainee.values() if n >= 2]
    repeats = [r for r in repeats if r is not None]
    offset_repeat = sum(repeats) / len(repeats) if repeats else None
    capacity = c.venue[3] if c.venue is not None else 0
    busiest = max((len(s.inside) for s in c.sessions.values()), default=0)
    capacity_ratio = busiest / capacity if capacity > 0 and busiest else None
    return (
        pass_rate,
        verified_share,
        hours_ratio,
        spread,
        face_mean,
        face_low,
        inspection_ratio,
        cost,
        top_device,
        duration_cv,
        out_spread,
        attendance_rate,
        claimed_share,
        face_std,
        coord_top,
        offset_repeat,
        capacity_ratio,
    )


# -------------------------------------------------------------------- peers


def peer_keys(f: ClassFeatures) -> tuple[tuple[str, ...], ...]:
    """The peer groups of a class, narrowest first."""
    return (
        ("occ", f.occupation, f.level, f.pack),
        ("lvl", f.level, f.pack),
        ("reg", f.pack),
        ("all",),
    )


def group_name(key: tuple[str, ...]) -> str:
    kind = key[0]
    if kind == "occ":
        return f"occupation={key[1]} level={key[2]} region={key[3]}"
    if kind == "lvl":
        return f"level={key[1]} region={key[2]}"
    if kind == "reg":
        return f"region={key[1]}"
    return "all classes"


@dataclass(frozen=True)
class GroupStats:
    name: str
    size: int
    median: tuple[float, ...]
    scale: tuple[float, ...]


def _robust(values: list[float], floor: float) -> tuple[float, float]:
    if not values:
        return 0.0, floor
    med = _median(values)
    mad = _median([abs(v - med) for v in values]) * _MAD_TO_SIGMA
    if mad <= 0:
        mad = sum(abs(v - med) for v in values) / len(values) * _MEANAD_TO_SIGMA
    return med, max(mad, floor)


class PeerStats:
    """Median and robust scale per feature for every peer group of a window."""

    def __init__(self, window: Iterable[ClassFeatures], peer_min: int = PEER_MIN) -> None:
        self.peer_min = peer_min
        members: dict[tuple[str, ...], list[ClassFeatures]] = {}
        for f in window:
            for key in peer_keys(f):
                members.setdefault(key, []).append(f)
        self.groups: dict[tuple[str, ...], GroupStats] = {}
        for key, fs in members.items():
            med, scale = [], []
            for j, name in enumerate(FEATURES):
                col = [f.values[j] for f in fs if f.values[j] is not None]
                m, s = _robust(col, SCALE_FLOOR[name])
                med.append(m)
                scale.append(s)
            self.groups[key] = GroupStats(group_name(key), len(fs), tuple(med), tuple(scale))

    def group_for(self, f: ClassFeatures) -> GroupStats:
        """The narrowest peer group with at least ``peer_min`` classes (else all)."""
        keys = peer_keys(f)
        for key in keys[:-1]:
            g = self.groups.get(key)
            if g is not None and g.size >= self.peer_min:
                return g
        g = self.groups.get(keys[-1])
        if g is None:
            return GroupStats("all classes", 0, tuple(0.0 for _ in FEATURES), tuple(SCALE_FLOOR[n] for n in FEATURES))
        return g

    def z(self, f: ClassFeatures) -> tuple[GroupStats, tuple[float, ...]]:
        """Robust z per feature (missing → 0, i.e. at the peer median), clipped."""
        g = self.group_for(f)
        zs = []
        for j, v in enumerate(f.values):
            if v is None:
                zs.append(0.0)
            else:
                z = (v - g.median[j]) / g.scale[j]
                zs.append(max(-Z_CLIP, min(Z_CLIP, z)))
        return g, tuple(zs)
