"""Bank reconciliation: matching the fund account's bank statement to payments.

Pure logic over canonical contract records (plain dicts, as
``Record.canonical()`` and the feed carry them); no storage, no clock, no
imports from other rooms. Two users share it:

* the finance officers' reconciliation report (``projections/``), which wants
  the whole picture at once: :func:`reconcile` or :meth:`Reconciler.results`;
* the ``unreconciled_outflow`` detector, which wants verdicts line by line as
  the feed moves: :meth:`Reconciler.add_payment`, :meth:`Reconciler.add_bank_line`
  and :meth:`Reconciler.settle`.

Matching rules (the same in both modes)
---------------------------------------

Only **outflows** are matched: bank lines whose signed ``amount`` is negative
(money out of the fund account). Inflows (appropriations, recoveries) are
kept aside in :attr:`ReconResult.inflows`.

1. **By bank reference.** A line and a payment with the same ``bank_ref``
   (exact string equality) are a pair. Within one reference, lines and
   payments pair in arrival order; a second line on a reference whose
   payments are all taken is an extra debit and stays unmatched.
   A pair whose amounts differ (line ``-amount`` vs payment ``amount``, in
   fen) is an **amount mismatch**, not a match.
2. **By amount, account and date**, only for a line whose ``bank_ref`` names
   no payment at all: the line pairs with a payment still without a line that
   has the same amount, whose ``payee_account`` equals the line's
   ``counterparty_account``, and whose payment date (the local date of the
   payment's ``at``, in its own offset) is 0 to ``window_days`` days before
   the line's ``value_date``. Lines are taken in (``value_date``, arrival)
   order and each takes the earliest such payment (payment date, then
   arrival): first in, first out.

Reference matching always wins: if a payment was paired with a line by rule 2
and its own reference line turns up later, the rule-2 pair is undone and the
freed line is judged again.

Money is ``int`` fen throughout (``ledger.money.parse_fen``); never float.

API
---

* :func:`reconcile(payments, lines, *, window_days=5) -> ReconResult`: batch,
  from scratch, over record dicts or :class:`PaymentRef` / :class:`BankLine`.
* :class:`ReconResult`: ``matched``, ``payments_without_line``,
  ``lines_without_payment``, ``amount_mismatches`` (lists of :class:`Match`,
  :class:`PaymentRef` or :class:`BankLine`, in arrival order), ``inflows``,
  ``balanced``.
* :class:`Match`: ``line``, ``payment``, ``by`` (``BY_REF`` | ``BY_AMOUNT``),
  ``difference`` (fen out on the line minus fen on the payment),
  ``counterparty_differs``.
* :class:`Reconciler`: incremental (``add_payment``, ``add_bank_line``,
  ``settle`` -> :class:`Verdict` lists; ``waiting``; ``results()``).
* :func:`account_region(account)`: the pack region a fund account label names.

Given the same records, ``Reconciler(...).results()`` equals ``reconcile``.
The incremental verdicts equal it too, except for a payment record that
arrives after its line's window has closed and the line was judged: the
verdict stands, while ``results()`` (recomputed) pairs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from ledger.money import parse_fen
from ledger.policy import PACK_CODES

__all__ = [
    "BY_AMOUNT",
    "BY_REF",
    "WINDOW_DAYS_DEFAULT",
    "BankLine",
    "Match",
    "PaymentRef",
    "ReconResult",
    "Reconciler",
    "Verdict",
    "account_region",
    "reconcile",
]

WINDOW_DAYS_DEFAULT = 5
_SWEEP_DAYS = 7
_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")

BY_REF = "bank_ref"
BY_AMOUNT = "amount_account_date"
MatchBy = Literal["bank_ref", "amount_account_date"]
Status = Literal["matched", "amount_mismatch", "unmatched"]


def account_region(account: str) -> str | None:
    """The policy pack region named in a fund account's label, if any.

    ``"SKILLFUND-320500"`` -> ``"320500"``: a 6-digit run of digits (not part
    of a longer number) that is one of the five pack codes. The contract does
    not define account labels, so callers fall back on the region of the
    payments the account pays (see ``Match.payment.region``).
    """
    for m in _CODE.finditer(account or ""):
        if m.group(1) in PACK_CODES:
            return m.group(1)
    return None


# ----------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True)
class PaymentRef:
    """What reconciliation needs of a ``payment`` record."""

    payment_id: str
    record_id: str
    claim_id: str
    amount: int  # fen, positive
    payee_id: str
    payee_account: str
    bank_ref: str
    pay_date: date  # local date of the payment's ``at``
    at: str
    region: str
    fund_source: str

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> PaymentRef:
        at = rec["at"]
        return cls(
            payment_id=rec["payment_id"],
            record_id=rec["id"],
            claim_id=rec.get("claim_id", ""),
            amount=parse_fen(rec["amount"]),
            payee_id=rec.get("payee_id", ""),
            payee_account=rec.get("payee_account", ""),
            bank_ref=rec["bank_ref"],
            pay_date=datetime.fromisoformat(at).date(),
            at=at,
            region=rec.get("region", ""),
            fund_source=rec.get("fund_source", ""),
        )


@dataclass(frozen=True, slots=True)
class BankLine:
    """What reconciliation needs of a ``bank_statement`` record."""

    line_id: str  # the record's ``id``
    account: str
    amount: int  # fen, signed: negative = money out
    counterparty_account: str
    bank_ref: str
    value_date: date
    at: str

    @property
    def outflow(self) -> int:
        """Fen that left the account (0 for an inflow)."""
        return -self.amount if self.amount < 0 else 0

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> BankLine:
        return cls(
            line_id=rec["id"],
            account=rec.get("account", ""),
            amount=parse_fen(rec["amount"], signed=True),
            counterparty_account=rec.get("counterparty_account", ""),
            bank_ref=rec.get("bank_ref", ""),
            value_date=date.fromisoformat(rec["value_date"]),
            at=rec["at"],
        )


@dataclass(frozen=True, slots=True)
class Match:
    """A bank line paired with a payment (amounts may differ: see ``difference``)."""

    line: BankLine
    payment: PaymentRef
    by: MatchBy

    @property
    def difference(self) -> int:
        """Fen out on the bank line minus fen on the payment (0 when they agree)."""
        return self.line.outflow - self.payment.amount

    @property
    def counterparty_differs(self) -> bool:
        return self.line.counterparty_account != self.payment.payee_account


@dataclass(frozen=True, slots=True)
class Verdict:
    """The settled state of one outflow line, for the incremental user.

    ``status`` is ``matched`` (a payment of the same amount), ``amount_mismatch``
    (paired by reference, amounts differ) or ``unmatched`` (no payment).
    ``reason`` says why a line is unmatched: ``no_payment`` (nothing carries its
    reference and nothing matched by amount, account and date) or
    ``reference_taken`` (its reference's payments are all paired already).
    """

    line: BankLine
    status: Status
    payment: PaymentRef | None = None
    by: MatchBy | None = None
    reason: str = ""


@dataclass(frozen=True)
class ReconResult:
    """The whole reconciliation at one moment (see :func:`reconcile`)."""

    matched: list[Match]  # paired, same amount
    payments_without_line: list[PaymentRef]
    lines_without_payment: list[BankLine]  # outflows only
    amount_mismatches: list[Match]  # paired by reference, amounts differ
    inflows: list[BankLine] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not (self.payments_without_line or self.lines_without_payment or self.amount_mismatches)


# ----------------------------------------------------------------- batch


def _earliest_fit(line: BankLine, candidates: Iterable[PaymentRef], window_days: int) -> PaymentRef | None:
    """Rule 2: among ``candidates`` (free payments, arrival order), the one to pair.

    Same amount, ``payee_account`` equal to the line's counterparty, payment
    date 0..``window_days`` days before ``value_date``; earliest payment date
    wins, then arrival.
    """
    best: PaymentRef | None = None
    for p in candidates:
        if p.amount != line.outflow or p.payee_account != line.counterparty_account:
            continue
        lag = (line.value_date - p.pay_date).days
        if 0 <= lag <= window_days and (best is None or p.pay_date < best.pay_date):
            best = p
    return best


def reconcile(
    payments: Iterable[dict[str, Any] | PaymentRef],
    lines: Iterable[dict[str, Any] | BankLine],
    *,
    window_days: int = WINDOW_DAYS_DEFAULT,
) -> ReconResult:
    """Match payments to bank lines from scratch (order of the inputs = arrival order).

    Accepts canonical ``payment`` / ``bank_statement`` record dicts or the
    value types. A payment (by ``payment_id``) or line (by record ``id``) seen
    twice counts once. The result lists are in arrival order.
    """
    pays: list[PaymentRef] = []
    seen_p: set[str] = set()
    for p in payments:
        ref = p if isinstance(p, PaymentRef) else PaymentRef.from_record(p)
        if ref.payment_id not in seen_p:
            seen_p.add(ref.payment_id)
            pays.append(ref)
    outs: list[BankLine] = []
    inflows: list[BankLine] = []
    seen_l: set[str] = set()
    for ln in lines:
        bl = ln if isinstance(ln, BankLine) else BankLine.from_record(ln)
        if bl.line_id in seen_l:
            continue
        seen_l.add(bl.line_id)
        (outs if bl.amount < 0 else inflows).append(bl)

    by_ref: dict[str, list[PaymentRef]] = {}
    by_fit: dict[tuple[str, int], list[PaymentRef]] = {}
    for p in pays:
        by_ref.setdefault(p.bank_ref, []).append(p)
        by_fit.setdefault((p.payee_account, p.amount), []).append(p)

    paired: dict[str, Match] = {}  # line_id -> match
    taken: set[str] = set()  # payment ids
    # 1. by reference, in arrival order
    for ln in outs:
        for p in by_ref.get(ln.bank_ref, ()):
            if p.payment_id not in taken:
                taken.add(p.payment_id)
                paired[ln.line_id] = Match(ln, p, BY_REF)
                break
    # 2. by amount + account + date window, for lines whose reference names no payment
    order = [(i, ln) for i, ln in enumerate(outs) if ln.line_id not in paired and ln.bank_ref not in by_ref]
    order.sort(key=lambda t: (t[1].value_date, t[0]))
    for _, ln in order:
        free = (p for p in by_fit.get((ln.counterparty_account, ln.outflow), ()) if p.payment_id not in taken)
        p = _earliest_fit(ln, free, window_days)
        if p is not None:
            taken.add(p.payment_id)
            paired[ln.line_id] = Match(ln, p, BY_AMOUNT)

    matched: list[Match] = []
    mismatched: list[Match] = []
    unmatched: list[BankLine] = []
    for ln in outs:
        m = paired.get(ln.line_id)
        if m is None:
            unmatched.append(ln)
        elif m.difference:
            mismatched.append(m)
        else:
            matched.append(m)
    return ReconResult(
        matched=matched,
        payments_without_line=[p for p in pays if p.payment_id not in taken],
        lines_without_payment=unmatched,
        amount_mismatches=mismatched,
        inflows=inflows,
    )


# ----------------------------------------------------------------- incremental


@dataclass
class _LineState:
    line: BankLine
    seq: int
    payment_id: str | None = None
    by: MatchBy | None = None
    settled: bool = False  # a verdict was given (may be revised when a rule-2 pair is undone)


class Reconciler:
    """Incremental matcher; also answers :meth:`results` for the whole picture.

    Feed it canonical records in feed order::

        r = Reconciler(window_days=5)
        r.add_payment(payment_record)            # -> [Verdict, ...]
        r.add_bank_line(bank_statement_record)   # -> [Verdict, ...]
        r.settle(as_of=date(2024, 3, 1))         # -> [Verdict, ...]
        r.results()                              # -> ReconResult (from scratch)

    Verdicts (what the detector alerts on) come out as soon as they are
    certain and no earlier:

    * a line paired by reference is judged at once (``matched`` or
      ``amount_mismatch``), whether the line or the payment came second;
    * any other line waits until ``settle(as_of)`` is called with ``as_of``
      later than ``value_date + window_days`` (its rule-2 window has closed and
      a late payment record has had the chance to arrive); then it is paired
      by rule 2 (``matched``) or judged ``unmatched``. ``settle(None)`` judges
      every waiting line (end of the feed);
    * when a reference line takes back a payment that rule 2 had given to an
      earlier line, that earlier line is judged again at once.

    ``retain_days`` bounds memory for long feeds: on ``settle``, settled lines
    and paired payments older than ``as_of - retain_days`` are forgotten (as
    are unpaired payments, which can no longer be matched by rule 2). None
    keeps everything, which :meth:`results` needs to describe the full
    history. A payment or line added twice (same ``payment_id`` / record
    ``id``) counts once.
    """

    def __init__(self, *, window_days: int = WINDOW_DAYS_DEFAULT, retain_days: int | None = None) -> None:
        if window_days < 0:
            raise ValueError("window_days must be >= 0")
        if retain_days is not None and retain_days < window_days:
            raise ValueError("retain_days must be at least window_days")
        self.window_days = window_days
        self.retain_days = retain_days
        self._seq = 0
        self._payments: dict[str, PaymentRef] = {}  # payment_id -> payment, arrival order
        self._pay_ref: dict[str, list[str]] = {}  # bank_ref -> payment ids
        self._pay_fit: dict[tuple[str, int], list[str]] = {}  # (payee_account, fen) -> payment ids
        self._pay_line: dict[str, str] = {}  # payment_id -> line_id it is paired with
        self._lines: dict[str, _LineState] = {}  # outflow line_id -> state, arrival order
        self._line_ref: dict[str, list[str]] = {}  # bank_ref -> outflow line ids
        self._inflows: dict[str, BankLine] = {}
        self._waiting: dict[str, _LineState] = {}  # outflow lines not yet judged
        self._swept: date | None = None

    # -- input ----------------------------------------------------------------

    def add_payment(self, record: dict[str, Any] | PaymentRef) -> list[Verdict]:
        """Take a ``payment`` record; verdicts for lines it pairs with by reference."""
        p = record if isinstance(record, PaymentRef) else PaymentRef.from_record(record)
        if p.payment_id in self._payments:
            return []
        self._payments[p.payment_id] = p
        self._pay_ref.setdefault(p.bank_ref, []).append(p.payment_id)
        self._pay_fit.setdefault((p.payee_account, p.amount), []).append(p.payment_id)
        # a line with this reference still without a reference pair (waiting, or
        # judged unmatched, or paired by rule 2 to some other payment)
        for lid in self._line_ref.get(p.bank_ref, ()):
            st = self._lines[lid]
            if st.by == BY_REF:
                continue
            if st.payment_id is not None:  # a rule-2 pair: the reference wins
                self._pay_line.pop(st.payment_id, None)
            self._pair(st, p, BY_REF)
            return [self._verdict(st)]
        return []

    def add_bank_line(self, record: dict[str, Any] | BankLine) -> list[Verdict]:
        """Take a ``bank_statement`` record; verdicts that became certain (maybe none)."""
        ln = record if isinstance(record, BankLine) else BankLine.from_record(record)
        if ln.line_id in self._lines or ln.line_id in self._inflows:
            return []
        if ln.amount >= 0:
            self._inflows[ln.line_id] = ln
            return []
        self._seq += 1
        st = _LineState(ln, self._seq)
        self._lines[ln.line_id] = st
        self._line_ref.setdefault(ln.bank_ref, []).append(ln.line_id)
        out: list[Verdict] = []
        for pid in self._pay_ref.get(ln.bank_ref, ()):
            other = self._pay_line.get(pid)
            if other is not None and self._lines[other].by == BY_REF:
                continue
            p = self._payments[pid]
            self._pair(st, p, BY_REF)
            out.append(self._verdict(st))
            if other is not None:  # take the payment back from a rule-2 pair
                freed = self._lines[other]
                freed.payment_id = None
                freed.by = None
                out.extend(self._judge(freed))
            return out
        self._waiting[ln.line_id] = st
        return out

    def settle(self, as_of: date | None) -> list[Verdict]:
        """Judge waiting lines whose window closed before ``as_of`` (all when None).

        A line's window closes at ``value_date + window_days``; it is judged
        when ``as_of`` is strictly later. Returns the verdicts in
        (value_date, arrival) order.
        """
        due = [
            st
            for st in self._waiting.values()
            if as_of is None or (as_of - st.line.value_date).days > self.window_days
        ]
        due.sort(key=lambda s: (s.line.value_date, s.seq))
        out: list[Verdict] = []
        for st in due:
            out.extend(self._judge(st))
        if as_of is not None and self.retain_days is not None:
            before = as_of - timedelta(days=self.retain_days)
            # sweep at most weekly: each sweep walks everything retained
            if self._swept is None or (before - self._swept).days >= _SWEEP_DAYS:
                self._forget(before)
                self._swept = before
        return out

    # -- queries --------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Outflow lines not judged yet."""
        return len(self._waiting)

    def results(self) -> ReconResult:
        """The whole reconciliation of everything retained, computed from scratch."""
        lines: list[BankLine] = [st.line for st in self._lines.values()] + list(self._inflows.values())
        return reconcile(self._payments.values(), lines, window_days=self.window_days)

    # -- internals ------------------------------------------------------------

    def _pair(self, st: _LineState, p: PaymentRef, by: MatchBy) -> None:
        st.payment_id = p.payment_id
        st.by = by
        st.settled = True
        self._pay_line[p.payment_id] = st.line.line_id
        self._waiting.pop(st.line.line_id, None)

    def _verdict(self, st: _LineState) -> Verdict:
        if st.payment_id is None:
            reason = "reference_taken" if st.line.bank_ref in self._pay_ref else "no_payment"
            return Verdict(st.line, "unmatched", reason=reason)
        p = self._payments[st.payment_id]
        status: Status = "matched" if p.amount == st.line.outflow else "amount_mismatch"
        return Verdict(st.line, status, p, st.by)

    def _judge(self, st: _LineState) -> list[Verdict]:
        """Rule 2 for a line whose window has closed (or that lost its payment)."""
        self._waiting.pop(st.line.line_id, None)
        st.settled = True
        if st.line.bank_ref not in self._pay_ref:
            key = (st.line.counterparty_account, st.line.outflow)
            free = (self._payments[pid] for pid in self._pay_fit.get(key, ()) if pid not in self._pay_line)
            p = _earliest_fit(st.line, free, self.window_days)
            if p is not None:
                self._pair(st, p, BY_AMOUNT)
        return [self._verdict(st)]

    def _forget(self, before: date) -> None:
        for lid in [lid for lid, st in self._lines.items() if st.settled and st.line.value_date < before]:
            st = self._lines.pop(lid)
            if st.payment_id is not None:
                self._pay_line.pop(st.payment_id, None)
                self._drop_payment(st.payment_id)
            refs = self._line_ref.get(st.line.bank_ref)
            if refs is not None:
                refs.remove(lid)
                if not refs:
                    del self._line_ref[st.line.bank_ref]
        for pid in [pid for pid, p in self._payments.items() if p.pay_date < before and pid not in self._pay_line]:
            self._drop_payment(pid)
        for lid in [lid for lid, ln in self._inflows.items() if ln.value_date < before]:
            del self._inflows[lid]

    def _drop_payment(self, pid: str) -> None:
        p = self._payments.pop(pid, None)
        if p is None:
            return
        for index, key in ((self._pay_ref, p.bank_ref), (self._pay_fit, (p.payee_account, p.amount))):
            ids = index.get(key)
            if ids is not None:
                ids.remove(pid)
                if not ids:
                    del index[key]
