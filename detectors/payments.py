"""Payment detectors: duplicate_payment, split_payment, notice_skipped.

Thresholds and citations come from the policy pack of the payment's region
(``Accepted.pack``); money is compared in integer fen.

Interpretations (the record contract's "Soft rules" table, made exact):

* ``duplicate_payment`` (payment_id): a payment P repeats an earlier payment
  Q when both have the same ``payee_id`` and amount and their claims are
  different claims naming the same ``class_id`` and the same set of
  ``trainee_ids``. The subject is the later payment. Claims naming no class
  are never duplicates of each other by this rule.
* ``split_payment`` (payee_id): payments to one payee are grouped by
  obligation = the claim's ``class_id``, or "no-class" for claims naming no
  class (awards and the like). Within one group, payments each under
  ``split_payment_threshold_yuan`` whose ``at`` lie within
  ``split_payment_window_days`` days of each other (a sliding window of that
  length, ends included) and that together are over the threshold are pieces
  of one obligation. Payments for distinct classes never add up; a payment at
  or over the threshold is not a piece. Every window containing a new payment
  is checked, so a payment arriving late in time order still counts.
* ``notice_skipped`` (payment_id): judged when the payment arrives, against
  the latest notice received for its claim, with the payment date = the local
  date of the payment's ``at``. Reasons: no notice at all; paid on or before
  the notice's ``end``; a notice shorter than ``notice_days_min``, its length
  being the calendar days it was up, ``(end - start).days + 1`` (the
  contract's example 2024-01-30..2024-02-06 is 8 days, passing the 7-day
  minimum; so would a notice of 2024-01-30..2024-02-05); objections > 0 on the
  latest notice where the pack's ``notice_blocks_on_objections``.

Severity (by magnitude): duplicate_payment by the amount paid twice (under
10,000 yuan medium, from 10,000 high, from 100,000 critical); split_payment
by the largest window total over the threshold (up to 2× medium, up to 4×
high, above critical); notice_skipped high with no notice, with objections
standing or a notice under half the minimum, else medium.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from detectors.base import AlertDraft, Bounded, Detector
from detectors.claims import (
    KEYS_MAX,
    ClaimBook,
    RuleDetector,
    local_dt,
    money_severity,
    pack_of,
    yuan_rule_fen,
)
from ledger.money import fen_to_yuan, parse_fen
from projections.feed import Accepted

NO_CLASS = "no-class"
PIECES_MAX = 256  # pieces kept per (payee, obligation) within the window span
FIRSTS_MAX = 8  # earlier payments kept per duplicate key (one per claim)


# ----------------------------------------------------------------- duplicate_payment


@dataclass(frozen=True, slots=True)
class _Paid:
    payment_id: str
    record_id: str
    claim_id: str
    claim_record: str
    at: str


class DuplicatePayment(RuleDetector):
    name = "payments.duplicate_payment"
    kinds = ("duplicate_payment",)
    handles = {"claim": "on_claim", "payment": "on_payment"}

    def __init__(self) -> None:
        super().__init__()
        self.book = ClaimBook()
        self.firsts: Bounded = Bounded(KEYS_MAX)  # (payee, fen, class, trainees) -> [_Paid]

    def on_claim(self, item: Accepted) -> list[AlertDraft]:
        self.book.add(item)
        return []

    def on_payment(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        c = self.book.get(r["claim_id"])
        if c is None or c.class_id is None:
            return []
        amount = parse_fen(r["amount"])
        key = (r["payee_id"], amount, c.class_id, frozenset(c.trainee_ids))
        earlier: list[_Paid] = self.firsts.setdefault(key, list)
        this = _Paid(r["payment_id"], r["id"], c.claim_id, c.record_id, r["at"])
        prior = [p for p in earlier if p.claim_id != c.claim_id]
        if all(p.claim_id != c.claim_id for p in earlier) and len(earlier) < FIRSTS_MAX:
            earlier.append(this)
        if not prior:
            return []
        q = prior[0]
        evidence: list[dict[str, Any]] = [
            {
                "payment_id": this.payment_id,
                "payment_record": this.record_id,
                "claim_id": this.claim_id,
                "claim_record": this.claim_record,
                "earlier_payment_id": q.payment_id,
                "earlier_payment_record": q.record_id,
                "earlier_claim_id": q.claim_id,
                "earlier_claim_record": q.claim_record,
                "earlier_at": q.at,
                "payee_id": r["payee_id"],
                "amount": fen_to_yuan(amount),
                "class_id": c.class_id,
                "trainees": len(c.trainee_ids),
            }
        ]
        d = self.draft(
            "duplicate_payment",
            {"payment_id": this.payment_id},
            money_severity(amount),
            evidence,
            item.pack,
            item,
            f"payment {this.payment_id} repeats {q.payment_id}: {fen_to_yuan(amount)} to the same payee "
            f"for the same class {c.class_id} and trainees under another claim",
        )
        return [] if d is None else [d]


# ----------------------------------------------------------------- split_payment


@dataclass(frozen=True, slots=True)
class _Piece:
    when: float  # epoch seconds of ``at``
    payment_id: str
    record_id: str
    claim_id: str
    amount: int
    at: str



def _order(p: _Piece) -> tuple[float, str]:
    return (p.when, p.payment_id)


@dataclass(slots=True)
class _Flagged:
    pieces: dict[str, _Piece] = field(default_factory=dict)  # payment_id -> piece
    max_window_total: int = 0
    threshold: int = 0
    window_days: int = 0


class SplitPayment(RuleDetector):
    name = "payments.split_payment"
    kinds = ("split_payment",)
    handles = {"claim": "on_claim", "payment": "on_payment"}

    def __init__(self) -> None:
        super().__init__()
        self.claim_class: Bounded = Bounded(KEYS_MAX)  # claim_id -> class_id or NO_CLASS
        self.groups: Bounded = Bounded(KEYS_MAX)  # (payee, obligation) -> sorted [_Piece]
        self.flagged: Bounded = Bounded(KEYS_MAX)  # payee -> {obligation: _Flagged}
        self._rules: dict[str, tuple[int, int]] = {}  # pack -> (threshold fen, window days)

    def on_claim(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        self.claim_class.setdefault(r["claim_id"], lambda: r.get("class_id") or NO_CLASS)
        return []

    def on_payment(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        obligation = self.claim_class.items.get(r["claim_id"])
        rules = self._rules.get(item.pack) if item.pack is not None else None
        if rules is None:
            pack = pack_of(item.pack)
            if pack is None:
                return []
            rules = self._rules[pack.code] = (
                yuan_rule_fen(pack, "split_payment_threshold_yuan"),
                pack.value("split_payment_window_days"),
            )
        if obligation is None:
            return []
        threshold, days = rules
        amount = parse_fen(r["amount"])
        if amount >= threshold:
            return []
        window = days * 86400.0
        payee = r["payee_id"]
        piece = _Piece(local_dt(r["at"]).timestamp(), r["payment_id"], r["id"], r["claim_id"], amount, r["at"])
        group: list[_Piece] = self.groups.setdefault((payee, obligation), list)
        if any(p.payment_id == piece.payment_id for p in group):
            return []  # seen already
        insort(group, piece, key=_order)
        horizon = group[-1].when - 2 * window  # older pieces can share no window with new ones
        while group and (group[0].when < horizon or len(group) > PIECES_MAX):
            group.pop(0)
        if len(group) < 2:
            return []
        hit: dict[str, _Piece] = {}
        best = 0
        for end in group:  # every window [end - W, end] that contains the new piece
            if end.when < piece.when or end.when > piece.when + window:
                continue
            inside = [p for p in group if end.when - window <= p.when <= end.when]
            total = sum(p.amount for p in inside)
            if total > threshold:
                best = max(best, total)
                for p in inside:
                    hit[p.payment_id] = p
        if not hit:
            return []
        per_payee: dict[str, _Flagged] = self.flagged.setdefault(payee, dict)
        f = per_payee.setdefault(obligation, _Flagged())
        f.pieces.update(hit)
        f.max_window_total = max(f.max_window_total, best)
        f.threshold, f.window_days = threshold, days
        evidence: list[dict[str, Any]] = []
        worst = 0
        for ob in sorted(per_payee):
            fl = per_payee[ob]
            pieces = sorted(fl.pieces.values(), key=_order)
            worst = max(worst, fl.max_window_total * 100 // fl.threshold)
            evidence.append(
                {
                    "obligation": ob,
                    "payee_id": payee,
                    "pieces": len(pieces),
                    "payment_ids": [p.payment_id for p in pieces],
                    "largest_window_total": fen_to_yuan(fl.max_window_total),
                    "threshold": fen_to_yuan(fl.threshold),
                    "window_days": fl.window_days,
                }
            )
            evidence.extend(
                {
                    "obligation": ob,
                    "payment_id": p.payment_id,
                    "payment_record": p.record_id,
                    "claim_id": p.claim_id,
                    "amount": fen_to_yuan(p.amount),
                    "at": p.at,
                }
                for p in pieces
            )
        severity = "critical" if worst > 400 else "high" if worst > 200 else "medium"
        d = self.draft(
            "split_payment",
            {"payee_id": payee},
            severity,
            evidence,
            item.pack,
            item,
            f"payments to {payee} under {fen_to_yuan(threshold)} each add up to "
            f"{fen_to_yuan(best)} within {days} days for one obligation ({obligation})",
        )
        return [] if d is None else [d]


# ----------------------------------------------------------------- notice_skipped


@dataclass(frozen=True, slots=True)
class _Notice:
    record_id: str
    start: date
    end: date
    objections: int


class NoticeSkipped(RuleDetector):
    name = "payments.notice_skipped"
    kinds = ("notice_skipped",)
    handles = {"notice": "on_notice", "payment": "on_payment"}

    def __init__(self) -> None:
        super().__init__()
        self.notices: Bounded = Bounded(KEYS_MAX)  # claim_id -> latest _Notice

    def on_notice(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        # the latest notice for a claim is the one that counts
        self.notices[r["claim_id"]] = _Notice(
            r["id"], date.fromisoformat(r["start"]), date.fromisoformat(r["end"]), r.get("objections", 0)
        )
        return []

    def on_payment(self, item: Accepted) -> list[AlertDraft]:
        r = item.record
        pack = pack_of(item.pack)
        if pack is None:
            return []
        paid_on = local_dt(r["at"]).date()
        n: _Notice | None = self.notices.get(r["claim_id"])
        ev: dict[str, Any] = {
            "payment_id": r["payment_id"],
            "payment_record": r["id"],
            "claim_id": r["claim_id"],
            "paid_on": paid_on.isoformat(),
            "amount": r["amount"],
        }
        reasons: list[str] = []
        severity = "medium"
        if n is None:
            reasons.append("no_notice")
            severity = "high"
        else:
            days_min = pack.value("notice_days_min")
            length = (n.end - n.start).days + 1
            ev.update(
                notice_record=n.record_id,
                notice_start=n.start.isoformat(),
                notice_end=n.end.isoformat(),
                notice_days=length,
                notice_days_min=days_min,
                objections=n.objections,
            )
            if paid_on <= n.end:
                reasons.append("paid_before_notice_ended")
            if length < days_min:
                reasons.append("notice_too_short")
                if length * 2 < days_min:
                    severity = "high"
            if n.objections > 0 and pack.value("notice_blocks_on_objections"):
                reasons.append("objections_stood")
                severity = "high"
        if not reasons:
            return []
        ev["reasons"] = reasons
        d = self.draft(
            "notice_skipped",
            {"payment_id": r["payment_id"]},
            severity,
            [ev],
            item.pack,
            item,
            f"payment {r['payment_id']} on {paid_on}: " + ", ".join(x.replace("_", " ") for x in reasons),
        )
        return [] if d is None else [d]


def detectors() -> list[Detector]:
    """Fresh instances of the payment detectors."""
    return [DuplicatePayment(), SplitPayment(), NoticeSkipped()]
