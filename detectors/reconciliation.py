"""Reconciliation detector: unreconciled_outflow.

Money out of the fund account on the bank statement (a ``bank_statement``
line with a negative amount) with no matching payment, or paired with a
payment of a different amount. The matching itself is
``ledger.reconciliation`` (shared with the finance officers' report): by
``bank_ref`` first, then, for lines whose reference names no payment, by
amount + counterparty account + value_date 0..5 days after the payment date.

When a line is judged:

* a line whose reference names a payment is judged on arrival (or when that
  payment arrives): a different amount raises at once;
* any other line waits until the feed's data clock (the latest local date of
  any accepted record's ``at``) has moved strictly past ``value_date + 5``
  days, so that a payment record arriving a little after its bank line is
  still matched and no alert is raised that would later be untrue; then it is
  matched by amount, account and date, or raised. :meth:`finish` judges the
  lines still waiting at the end of a feed (an engine that knows when a feed
  ends may call it).
* If a payment paired by amount/account/date is later claimed by its own
  reference line, the earlier line loses it and is judged again.

Payments without a bank line are the reconciliation report's business, not
this alert. Citations: for a mismatch, the pack of the payment; for a line
with no payment, the pack region named in the account label (as the
reconciliation report assigns lines to regions, ``account_region``), else the
pack of the payment the account was last seen paired with, else the contract
default.

Severity: by the money unexplained (the line's outflow, or the difference of
a mismatch): under 10,000 yuan medium, from 10,000 high, from 100,000
critical. Several lines on one reference are one alert (subject bank_ref)
listing every line.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from detectors.base import AlertDraft, Bounded, Detector
from detectors.claims import KEYS_MAX, RuleDetector, local_dt, money_severity
from ledger.money import fen_to_yuan
from ledger.reconciliation import WINDOW_DAYS_DEFAULT, Reconciler, Verdict, account_region
from projections.feed import Accepted, Item

RETAIN_DAYS = 120  # settled lines and payments older than this (data time) are forgotten


class UnreconciledOutflow(RuleDetector):
    name = "reconciliation.unreconciled_outflow"
    kinds = ("unreconciled_outflow",)

    def __init__(self, *, window_days: int = WINDOW_DAYS_DEFAULT, retain_days: int = RETAIN_DAYS) -> None:
        super().__init__()
        self.recon = Reconciler(window_days=window_days, retain_days=retain_days)
        self.pay_pack: Bounded = Bounded(KEYS_MAX)  # payment_id -> pack code
        self.account_pack: Bounded = Bounded(KEYS_MAX)  # fund account -> pack code
        self.evidence: Bounded = Bounded(KEYS_MAX)  # bank_ref -> {line_id: evidence}
        self.clock: date | None = None
        self._last: Accepted | None = None

    def observe(self, item: Item) -> list[AlertDraft]:
        if not isinstance(item, Accepted):
            return []
        self._last = item
        out: list[AlertDraft] = []
        # the record first, then the clock: a payment that arrives on the day its
        # line's window closes still matches it
        if item.type == "payment":
            self.pay_pack[item.record["payment_id"]] = item.pack
            out.extend(self._report(self.recon.add_payment(item.record), item))
        elif item.type == "bank_statement":
            out.extend(self._report(self.recon.add_bank_line(item.record), item))
            # Causal order (records.md): a payment precedes the bank's debit for
            # it, so every payment this line could match has arrived. Judge it
            # now; waiting for the data clock would leave the last lines of a
            # feed unjudged for as long as nothing newer arrives.
            out.extend(self._report(self.recon.settle(None), item))
        at = item.record.get("at")
        if isinstance(at, str):
            today = local_dt(at).date()
            if self.clock is None or today > self.clock:
                self.clock = today
                out.extend(self._report(self.recon.settle(today), item))
        return out

    def finish(self) -> list[AlertDraft]:
        """End of the feed: judge every line still waiting."""
        if self._last is None:
            return []
        return self._report(self.recon.settle(None), self._last)

    def _report(self, verdicts: list[Verdict], trigger: Accepted) -> list[AlertDraft]:
        out = []
        for v in verdicts:
            if v.payment is not None:
                pack = self.pay_pack.get(v.payment.payment_id)
                if pack is not None:
                    self.account_pack[v.line.account] = pack
            if v.status == "matched":
                continue
            d = self._draft(v, trigger)
            if d is not None:
                out.append(d)
        return out

    def _draft(self, v: Verdict, trigger: Accepted) -> AlertDraft | None:
        ln = v.line
        ev: dict[str, Any] = {
            "bank_line_record": ln.line_id,
            "bank_ref": ln.bank_ref,
            "account": ln.account,
            "amount": fen_to_yuan(ln.amount),
            "counterparty_account": ln.counterparty_account,
            "value_date": ln.value_date.isoformat(),
        }
        if v.status == "amount_mismatch":
            p = v.payment
            if p is None:
                raise ValueError(f"amount mismatch on {ln.bank_ref} names no payment")
            diff = ln.outflow - p.amount
            ev.update(
                reason="amount_mismatch",
                payment_id=p.payment_id,
                payment_record=p.record_id,
                payment_amount=fen_to_yuan(p.amount),
                difference=fen_to_yuan(diff),
            )
            pack = self.pay_pack.get(p.payment_id)
            magnitude = abs(diff)
            summary = (
                f"bank line {ln.bank_ref} took out {fen_to_yuan(ln.outflow)} for payment "
                f"{p.payment_id} of {fen_to_yuan(p.amount)}"
            )
        else:
            ev["reason"] = v.reason or "no_payment"
            pack = account_region(ln.account) or self.account_pack.get(ln.account)
            magnitude = ln.outflow
            summary = f"bank line {ln.bank_ref} took out {fen_to_yuan(ln.outflow)} with no matching payment"
        # several lines may carry one reference (an extra debit): one alert, all lines
        per_ref: dict[str, dict[str, Any]] = self.evidence.setdefault(ln.bank_ref, dict)
        per_ref[ln.line_id] = ev
        return self.draft(
            "unreconciled_outflow",
            {"bank_ref": ln.bank_ref},
            money_severity(magnitude),
            list(per_ref.values()),
            pack,
            trigger,
            summary,
        )


def detectors() -> list[Detector]:
    """Fresh instances of the reconciliation detectors."""
    return [UnreconciledOutflow()]
