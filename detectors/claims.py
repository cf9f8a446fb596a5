"""Claim detectors: repeat_subsidy, ineligible_trainee, excess_claim,
work_for_training_overrun, segregation_of_duties.

Each detector reads the feed in order and keeps bounded state of its own (the
catalogue facts it needs, the claims it watches). Thresholds and citations
come from the policy pack of the claim's (or payment's) region, i.e.
``Accepted.pack``; money is compared in integer fen.

Interpretations (the record contract's "Soft rules" table, made exact):

* ``repeat_subsidy`` (subject trainee_id + claim_id). Only ``training``
  claims count. Only *approved* earlier claims count against a claim C
  (``claim_reviewed`` decision ``approved``), and "earlier" means filed
  earlier (feed order). C is a repeat when a training claim filed before C for
  the same person and the same occupation_code + level (class → project) is
  approved; C goes over the yearly limit when at least
  ``yearly_training_subsidy_limit`` training claims for the person filed
  before C in the same calendar year (year of the claim's ``at`` in its own
  offset) are approved. C is judged when it is filed and again whenever an
  earlier claim of the same person becomes approved, so the order in which
  reviews arrive does not change the outcome. A claim that is already
  rejected when judged raises nothing (the control worked). Pending earlier
  claims never count: an alert cannot be withdrawn, and a pending claim may
  still be rejected.
* ``ineligible_trainee`` (trainee_id + claim_id): a claim naming a class, for
  a trainee with a ``person_status`` deceased (always) or pensioner (where the
  pack's ``pensioners_excluded``) whose ``since`` is on or before the class's
  ``start_date``. Judged when the claim arrives and again when a status
  arrives (per-person claim history kept, bounded). Status is as of the
  training date, so a pension starting after the class start raises nothing.
* ``excess_claim`` (claim_id): a ``training`` claim whose amount is above the
  class's project ``subsidy_per_trainee`` times the number of distinct
  ``trainee_ids`` (no pack sets a standard for other kinds).
* ``work_for_training_overrun`` (trainee_id): months of ``work_for_training``
  claims counted per trainee once a payment on the claim is accepted (paid,
  each claim once); more than ``work_for_training_months_max`` raises.
* ``segregation_of_duties`` (claim_id): the claim's ``handled_by`` is a
  ``reviewer_id`` of one of its reviews (any decision), or a reviewer is the
  ``approved_by`` of a payment on it.

Severity (by magnitude): repeat_subsidy high for a same occupation+level
repeat or two or more over the limit, else medium; ineligible_trainee critical
for a deceased person, high for a pensioner; excess_claim by amount/standard
(≤1.2 low, ≤1.5 medium, ≤2 high, above critical); work_for_training_overrun
medium for 1–2 months over, high for 3 or more, critical at twice the
maximum; segregation_of_duties medium for handled+reviewed, high once the
reviewer approved a payment, critical when one officer held all three roles.

Drafts: one per change of an alert. ``raised_at``/``position`` stay those of
the record that first made the alert true; later drafts carry grown evidence;
severity never drops. Evidence names record ids (``*_record`` keys) and the
numbers compared.

The helpers at the top (``Catalog``, ``ClaimBook``, ``RuleDetector``) are
shared with detectors/payments.py and detectors/reconciliation.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from detectors.base import EVIDENCE_ITEMS_MAX, AlertDraft, Bounded, Detector, alert_key, snapshot
from ledger.money import fen_to_yuan, parse_fen
from ledger.policy import DEFAULT_CITE, PolicyPack, all_packs
from projections.feed import Accepted, Item

VERSION = "1"
KEYS_MAX = 1_000_000  # entities kept per map (oldest evicted first)
HISTORY_MAX = 64  # claims kept per person: far above any honest history
SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


# ----------------------------------------------------------------- helpers


def local_dt(at: str) -> datetime:
    """An ISO timestamp with offset; its fields are local time in that offset."""
    return datetime.fromisoformat(at)


def pack_of(code: str | None) -> PolicyPack | None:
    return None if code is None else all_packs().get(code)


def yuan_rule_fen(pack: PolicyPack, rule: str) -> int:
    """A money rule of the pack (a Decimal of yuan) as int fen, exactly."""
    value: Decimal = pack.value(rule)
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"rule {rule} of pack {pack.code} has fractions of a fen: {value}")
    return int(fen)


def max_severity(*levels: str) -> str:
    return max(levels, key=SEVERITY_ORDER.__getitem__)


def money_severity(fen: int) -> str:
    """Severity of money that should not have moved: ≥100k critical, ≥10k high, else medium."""
    if fen >= 100_000_00:
        return "critical"
    if fen >= 10_000_00:
        return "high"
    return "medium"


def cap_evidence(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(evidence) <= EVIDENCE_ITEMS_MAX:
        return evidence
    keep = evidence[: EVIDENCE_ITEMS_MAX - 1]
    return keep + [{"more_items": len(evidence) - len(keep)}]


@dataclass(slots=True)
class ProjectInfo:
    project_id: str
    occupation_code: str
    level: str  # "1".."5" or "special"
    subsidy_per_trainee: int  # fen
    record_id: str


@dataclass(slots=True)
class ClassInfo:
    class_id: str
    project_id: str
    start_date: date
    record_id: str


class Catalog:
    """Projects and classes, as far as the claim detectors need them."""

    def __init__(self, maxsize: int = KEYS_MAX) -> None:
        self.projects = Bounded(maxsize)
        self.classes = Bounded(maxsize)

    def observe(self, item: Accepted) -> bool:
        """Take a project or class_opened record; True when it was one."""
        r = item.record
        if item.type == "project":
            # a later record with the same project_id updates the catalogue
            self.projects[r["project_id"]] = ProjectInfo(
                r["project_id"], r["occupation_code"], str(r["level"]), parse_fen(r["subsidy_per_trainee"]), r["id"]
            )
            return True
        if item.type == "class_opened":
            self.classes.setdefault(
                r["class_id"],
                lambda: ClassInfo(r["class_id"], r["project_id"], date.fromisoformat(r["start_date"]), r["id"]),
            )
            return True
        return False

    def project_of_class(self, class_id: str | None) -> ProjectInfo | None:
        if class_id is None:
            return None
        c = self.classes.items.get(class_id)
        return None if c is None else self.projects.items.get(c.project_id)


@dataclass(slots=True)
class ClaimInfo:
    claim_id: str
    record_id: str
    at: str
    position: int
    pack: str | None
    subsidy_kind: str
    class_id: str | None
    trainee_ids: tuple[str, ...]  # distinct, in the claim's order
    months: int | None
    amount: int  # fen
    handled_by: str
    status: str = "pending"  # latest review decision
    approval_record: str | None = None  # record id of the (latest) approving review

    @classmethod
    def from_item(cls, item: Accepted) -> ClaimInfo:
        r = item.record
        return cls(
            claim_id=r["claim_id"],
            record_id=r["id"],
            at=r["at"],
            position=item.position,
            pack=item.pack,
            subsidy_kind=r["subsidy_kind"],
            class_id=r.get("class_id"),
            trainee_ids=tuple(dict.fromkeys(r.get("trainee_ids", ()))),
            months=r.get("months"),
            amount=parse_fen(r["amount"]),
            handled_by=r.get("handled_by", ""),
        )


class ClaimBook:
    """Claims (optionally only some subsidy kinds) and their review status."""

    def __init__(self, kinds: Iterable[str] | None = None, maxsize: int = KEYS_MAX) -> None:
        self.kinds = None if kinds is None else frozenset(kinds)
        self.claims = Bounded(maxsize)

    def add(self, item: Accepted) -> ClaimInfo | None:
        """Take a claim record; the new ClaimInfo, or None (other kind, or seen)."""
        if self.kinds is not None and item.record["subsidy_kind"] not in self.kinds:
            return None
        if item.record["claim_id"] in self.claims:
            return None
        return self.claims.setdefault(item.record["claim_id"], lambda: ClaimInfo.from_item(item))

    def review(self, item: Accepted) -> tuple[ClaimInfo, bool] | None:
        """Take a claim_reviewed record: (claim, became_approved) or None if unknown."""
        r = item.record
        c: ClaimInfo | None = self.claims.get(r["claim_id"])
        if c is None:
            return None
        was = c.status
        c.status = r["decision"]
        if c.status == "approved":
            c.approval_record = r["id"]
        return c, (was != "approved" and c.status == "approved")

    def get(self, claim_id: str) -> ClaimInfo | None:
        return self.claims.get(claim_id)


class RuleDetector:
    """Common plumbing: naming, citations, and one draft per change of an alert.

    A draft is returned only when an alert becomes true or its evidence or
    severity changes; ``raised_at`` and ``position`` stay those of the record
    that first made it true, so replays give identical drafts.
    """

    name = "rule"
    version = VERSION
    kinds: tuple[str, ...] = ()
    #: record type -> name of the method handling it; every other item is ignored
    handles: dict[str, str] = {}
    catalog: Catalog

    def __init__(self) -> None:
        self._emitted = Bounded(KEYS_MAX)
        self._on = {t: getattr(self, m) for t, m in self.handles.items()}
        # The engine routes only these types to us -- when our observe is the
        # generic dispatch below; a subclass with its own observe sees everything.
        self.record_types = frozenset(self.handles) if type(self).observe is RuleDetector.observe else None

    def observe(self, item: Item) -> list[AlertDraft]:
        if not isinstance(item, Accepted):
            return []
        handler = self._on.get(item.type)
        return [] if handler is None else handler(item)

    def on_catalog(self, item: Accepted) -> list[AlertDraft]:
        self.catalog.observe(item)
        return []

    @property
    def detector_id(self) -> str:
        return f"{self.name}/{self.version}"

    def citations(self, kind: str, pack: str | None) -> list[str]:
        p = pack_of(pack)
        cites = p.citations(kind) if p is not None else []
        return cites or [DEFAULT_CITE]

    def draft(
        self,
        kind: str,
        subject: dict[str, str],
        severity: str,
        evidence: list[dict[str, Any]],
        pack: str | None,
        trigger: Accepted,
        summary: str,
    ) -> AlertDraft | None:
        key = alert_key(kind, subject)
        evidence = snapshot(cap_evidence(evidence))  # shares nothing with detector state
        ev_bytes = orjson.dumps(evidence)
        prev = self._emitted.get(key)
        if prev is not None:
            raised_at, position, old_sev, old_ev = prev
            severity = max_severity(old_sev, severity)  # an alert never softens
            if old_sev == severity and old_ev == ev_bytes:
                return None
        else:
            raised_at, position = trigger.record["at"], trigger.position
        self._emitted[key] = (raised_at, position, severity, ev_bytes)
        return AlertDraft(
            kind=kind,
            subject=dict(subject),
            severity=severity,
            evidence=evidence,
            policy=self.citations(kind, pack),
            raised_at=raised_at,
            position=position,
            detector=self.detector_id,
            summary=summary,
        )


# ----------------------------------------------------------------- repeat_subsidy


@dataclass(slots=True)
class _Training:
    claim: ClaimInfo
    year: int
    occupation: tuple[str, str] | None  # (occupation_code, level)


class RepeatSubsidy(RuleDetector):
    name = "claims.repeat_subsidy"
    kinds = ("repeat_subsidy",)
    handles = {"project": "on_catalog", "class_opened": "on_catalog", "claim": "on_claim", "claim_reviewed": "on_review"}

    def __init__(self) -> None:
        super().__init__()
        self.catalog = Catalog()
        self.book = ClaimBook(kinds=("training",))
        self.training: Bounded = Bounded(KEYS_MAX)  # claim_id -> _Training
        self.history: Bounded = Bounded(KEYS_MAX)  # trainee_id -> [claim_id] in filing order

    def on_claim(self, item: Accepted) -> list[AlertDraft]:
        c = self.book.add(item)
        if c is None:
            return []
        proj = self.catalog.project_of_class(c.class_id)
        t = _Training(c, local_dt(c.at).year, None if proj is None else (proj.occupation_code, proj.level))
        self.training[c.claim_id] = t
        out = []
        for tid in c.trainee_ids:
            hist = self.history.setdefault(tid, list)
            hist.append(c.claim_id)
            if len(hist) > HISTORY_MAX:
                del hist[0]
            if len(hist) > 1:  # a first claim repeats nothing
                d = self._judge(t, tid, item)
                if d is not None:
                    out.append(d)
        return out

    def on_review(self, item: Accepted) -> list[AlertDraft]:
        got = self.book.review(item)
        if got is None or not got[1]:
            return []
        earlier = got[0]
        out = []
        training = self.training.items
        for tid in earlier.trainee_ids:
            for cid in self.history.items.get(tid, ()):
                t = training.get(cid)
                if t is not None and t.claim.position > earlier.position:
                    d = self._judge(t, tid, item)
                    if d is not None:
                        out.append(d)
        return out

    def _judge(self, t: _Training, tid: str, trigger: Accepted) -> AlertDraft | None:
        c = t.claim
        if c.status == "rejected":
            return None
        pack = pack_of(c.pack)
        if pack is None:
            return None
        limit = pack.value("yearly_training_subsidy_limit")
        once = pack.value("same_occupation_level_once")
        same: list[_Training] = []
        this_year: list[_Training] = []
        training = self.training.items
        for cid in self.history.items.get(tid, ()):
            e = training.get(cid)
            if e is None or e.claim.position >= c.position or e.claim.status != "approved":
                continue
            if once and t.occupation is not None and e.occupation == t.occupation:
                same.append(e)
            if e.year == t.year:
                this_year.append(e)
        over = len(this_year) >= limit
        if not same and not over:
            return None
        evidence: list[dict[str, Any]] = []
        for e in same:
            evidence.append(
                {
                    "reason": "same_occupation_level",
                    "claim_id": c.claim_id,
                    "claim_record": c.record_id,
                    "class_id": c.class_id,
                    "earlier_claim_id": e.claim.claim_id,
                    "earlier_claim_record": e.claim.record_id,
                    "earlier_class_id": e.claim.class_id,
                    "earlier_approval_record": e.claim.approval_record,
                    "occupation_code": t.occupation[0],  # type: ignore[index]
                    "level": t.occupation[1],  # type: ignore[index]
                }
            )
        if over:
            evidence.append(
                {
                    "reason": "yearly_limit",
                    "claim_id": c.claim_id,
                    "claim_record": c.record_id,
                    "year": t.year,
                    "limit": limit,
                    "approved_earlier": len(this_year),
                    "earlier_claim_ids": [e.claim.claim_id for e in this_year],
                    "earlier_claim_records": [e.claim.record_id for e in this_year],
                }
            )
        severity = "high" if same or len(this_year) > limit else "medium"
        reasons = (["same occupation and level already subsidised"] if same else []) + (
            [f"training subsidy no. {len(this_year) + 1} in {t.year} (limit {limit})"] if over else []
        )
        return self.draft(
            "repeat_subsidy",
            {"trainee_id": tid, "claim_id": c.claim_id},
            severity,
            evidence,
            c.pack,
            trigger,
            f"claim {c.claim_id}: " + "; ".join(reasons),
        )


# ----------------------------------------------------------------- ineligible_trainee


@dataclass(frozen=True, slots=True)
class _Status:
    status: str
    since: date
    record_id: str


@dataclass(frozen=True, slots=True)
class _ClaimedFor:
    claim_id: str
    claim_record: str
    class_id: str
    start_date: date
    pack: str | None


class IneligibleTrainee(RuleDetector):
    name = "claims.ineligible_trainee"
    kinds = ("ineligible_trainee",)
    handles = {"project": "on_catalog", "class_opened": "on_catalog", "claim": "on_claim", "person_status": "on_status"}

    def __init__(self) -> None:
        super().__init__()
        self.catalog = Catalog()
        self.statuses: Bounded = Bounded(KEYS_MAX)  # trainee_id -> [_Status]
        self.claimed: Bounded = Bounded(KEYS_MAX)  # trainee_id -> [_ClaimedFor]
        self.claims_seen: Bounded = Bounded(KEYS_MAX)

    def on_claim(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        cls = self.catalog.classes.items.get(r.get("class_id"))
        if cls is None or r["claim_id"] in self.claims_seen:
            return []
        self.claims_seen[r["claim_id"]] = True
        cf = _ClaimedFor(r["claim_id"], r["id"], cls.class_id, cls.start_date, item.pack)
        out = []
        statuses = self.statuses.items
        for tid in dict.fromkeys(r.get("trainee_ids", ())):
            lst = self.claimed.setdefault(tid, list)
            lst.append(cf)
            if len(lst) > HISTORY_MAX:
                del lst[0]
            if tid in statuses:
                d = self._judge(tid, cf, item)
                if d is not None:
                    out.append(d)
        return out

    def on_status(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        tid = r["trainee_id"]
        sts = self.statuses.setdefault(tid, list)
        st = _Status(r["status"], date.fromisoformat(r["since"]), r["id"])
        if st not in sts and len(sts) < HISTORY_MAX:
            sts.append(st)
        out = []
        for cf in self.claimed.items.get(tid, ()):
            d = self._judge(tid, cf, item)
            if d is not None:
                out.append(d)
        return out

    def _judge(self, tid: str, cf: _ClaimedFor, trigger: Accepted) -> AlertDraft | None:
        pack = pack_of(cf.pack)
        pensioners = pack is None or pack.value("pensioners_excluded")
        hits = [
            s
            for s in self.statuses.get(tid, ())
            if s.since <= cf.start_date and (s.status == "deceased" or (s.status == "pensioner" and pensioners))
        ]
        if not hits:
            return None
        evidence = [
            {
                "claim_id": cf.claim_id,
                "claim_record": cf.claim_record,
                "class_id": cf.class_id,
                "class_start_date": cf.start_date.isoformat(),
                "status": s.status,
                "since": s.since.isoformat(),
                "status_record": s.record_id,
            }
            for s in hits
        ]
        severity = "critical" if any(s.status == "deceased" for s in hits) else "high"
        what = " and ".join(sorted({s.status for s in hits}))
        return self.draft(
            "ineligible_trainee",
            {"trainee_id": tid, "claim_id": cf.claim_id},
            severity,
            evidence,
            cf.pack,
            trigger,
            f"claim {cf.claim_id} names a trainee {what} since on or before class start {cf.start_date}",
        )


# ----------------------------------------------------------------- excess_claim


class ExcessClaim(RuleDetector):
    name = "claims.excess_claim"
    kinds = ("excess_claim",)
    handles = {"project": "on_catalog", "class_opened": "on_catalog", "claim": "on_claim"}

    def __init__(self) -> None:
        super().__init__()
        self.catalog = Catalog()

    def on_claim(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        if r["subsidy_kind"] != "training":
            return []
        proj = self.catalog.project_of_class(r.get("class_id"))
        if proj is None:
            return []
        listed = r.get("trainee_ids", ())
        n = len(set(listed))
        cap = proj.subsidy_per_trainee * n
        amount = parse_fen(r["amount"])
        if amount <= cap:
            return []
        ratio = Decimal(amount) / Decimal(cap) if cap else None
        if ratio is None or ratio > 2:
            severity = "critical"
        elif ratio > Decimal("1.5"):
            severity = "high"
        elif ratio > Decimal("1.2"):
            severity = "medium"
        else:
            severity = "low"
        evidence = [
            {
                "claim_id": r["claim_id"],
                "claim_record": r["id"],
                "class_id": r["class_id"],
                "project_id": proj.project_id,
                "project_record": proj.record_id,
                "amount": fen_to_yuan(amount),
                "subsidy_per_trainee": fen_to_yuan(proj.subsidy_per_trainee),
                "trainees": n,
                "trainee_ids_listed": len(listed),
                "standard_total": fen_to_yuan(cap),
                "excess": fen_to_yuan(amount - cap),
            }
        ]
        d = self.draft(
            "excess_claim",
            {"claim_id": r["claim_id"]},
            severity,
            evidence,
            item.pack,
            item,
            f"claim {r['claim_id']} asks {fen_to_yuan(amount)} for {n} trainees at "
            f"{fen_to_yuan(proj.subsidy_per_trainee)} each (standard {fen_to_yuan(cap)})",
        )
        return [] if d is None else [d]


# ----------------------------------------------------------------- work_for_training_overrun


@dataclass(frozen=True, slots=True)
class _PaidMonths:
    claim_id: str
    claim_record: str
    payment_id: str
    payment_record: str
    months: int


class WorkForTrainingOverrun(RuleDetector):
    name = "claims.work_for_training_overrun"
    kinds = ("work_for_training_overrun",)
    handles = {"claim": "on_claim", "payment": "on_payment"}

    def __init__(self) -> None:
        super().__init__()
        self.book = ClaimBook(kinds=("work_for_training",))
        self.counted: Bounded = Bounded(KEYS_MAX)  # claim ids already counted
        self.paid: Bounded = Bounded(KEYS_MAX)  # trainee_id -> [_PaidMonths]

    def on_claim(self, item: Accepted) -> list[AlertDraft]:
        self.book.add(item)
        return []

    def on_payment(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        c = self.book.get(r["claim_id"])
        if c is None or c.claim_id in self.counted or not c.months:
            return []
        self.counted[c.claim_id] = True
        pack_code = item.pack or c.pack
        pack = pack_of(pack_code)
        if pack is None:
            return []
        cap = pack.value("work_for_training_months_max")
        pm = _PaidMonths(c.claim_id, c.record_id, r["payment_id"], r["id"], c.months)
        out = []
        for tid in c.trainee_ids:
            lst = self.paid.setdefault(tid, list)
            lst.append(pm)
            if len(lst) > HISTORY_MAX:
                del lst[0]
            total = sum(p.months for p in lst)
            if total <= cap:
                continue
            over = total - cap
            severity = "critical" if total >= 2 * cap else "high" if over >= 3 else "medium"
            evidence = [
                {
                    "claim_id": p.claim_id,
                    "claim_record": p.claim_record,
                    "payment_id": p.payment_id,
                    "payment_record": p.payment_record,
                    "months": p.months,
                }
                for p in lst
            ]
            evidence.append({"months_paid": total, "months_max": cap})
            d = self.draft(
                "work_for_training_overrun",
                {"trainee_id": tid},
                severity,
                evidence,
                pack_code,
                item,
                f"以工代训 paid for {total} months (max {cap})",
            )
            if d is not None:
                out.append(d)
        return out


# ----------------------------------------------------------------- segregation_of_duties


@dataclass(slots=True)
class _Duties:
    claim_id: str
    claim_record: str
    handled_by: str
    pack: str | None
    reviews: dict[str, str]  # review record id -> reviewer_id
    approvals: dict[str, tuple[str, str]]  # payment record id -> (approved_by, payment_id)


class SegregationOfDuties(RuleDetector):
    name = "claims.segregation_of_duties"
    kinds = ("segregation_of_duties",)
    handles = {"claim": "on_claim", "claim_reviewed": "on_role", "payment": "on_role"}

    def __init__(self) -> None:
        super().__init__()
        self.duties: Bounded = Bounded(KEYS_MAX)  # claim_id -> _Duties

    def on_claim(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        self.duties.setdefault(
            r["claim_id"], lambda: _Duties(r["claim_id"], r["id"], r.get("handled_by", ""), item.pack, {}, {})
        )
        return []

    def on_role(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        if item.type == "claim_reviewed":
            d = self.duties.get(r["claim_id"])
            if d is None or r["id"] in d.reviews or len(d.reviews) >= HISTORY_MAX:
                return []
            d.reviews[r["id"]] = r["reviewer_id"]
        else:  # payment
            d = self.duties.get(r["claim_id"])
            if d is None or r["id"] in d.approvals or len(d.approvals) >= HISTORY_MAX:
                return []
            d.approvals[r["id"]] = (r["approved_by"], r["payment_id"])
        evidence: list[dict[str, Any]] = []
        roles: dict[str, set[str]] = {}
        for rec, reviewer in d.reviews.items():
            if reviewer and reviewer == d.handled_by:
                evidence.append(
                    {
                        "conflict": "handled_and_reviewed",
                        "officer": reviewer,
                        "claim_record": d.claim_record,
                        "review_record": rec,
                    }
                )
                roles.setdefault(reviewer, set()).update(("handled", "reviewed"))
        reviewers = {}
        for rec, reviewer in d.reviews.items():
            reviewers.setdefault(reviewer, rec)
        for rec, (approver, pid) in d.approvals.items():
            if approver in reviewers:
                evidence.append(
                    {
                        "conflict": "reviewed_and_approved_payment",
                        "officer": approver,
                        "review_record": reviewers[approver],
                        "payment_id": pid,
                        "payment_record": rec,
                    }
                )
                roles.setdefault(approver, set()).update(("reviewed", "approved"))
        if not evidence:
            return []
        widest = max(len(v) for v in roles.values())
        paid = any(e["conflict"] == "reviewed_and_approved_payment" for e in evidence)
        severity = "critical" if widest >= 3 else "high" if paid else "medium"
        officers = ", ".join(sorted(roles))
        draft = self.draft(
            "segregation_of_duties",
            {"claim_id": d.claim_id},
            severity,
            evidence,
            d.pack,
            item,
            f"claim {d.claim_id}: officer {officers} in incompatible roles",
        )
        return [] if draft is None else [draft]


def detectors() -> list[Detector]:
    """Fresh instances of the claim detectors."""
    return [RepeatSubsidy(), IneligibleTrainee(), ExcessClaim(), WorkForTrainingOverrun(), SegregationOfDuties()]
