"""Alerts are events: an eventsourcing Application of ``Alert`` aggregates.

One alert per (kind, subject): its id is ``uuid5(NS, alert_key(kind, subject))``.

Events::

    Raised(kind, severity, subject, evidence, policy, score, detector, raised_at, position, summary)
    EvidenceUpdated(same fields)        # the alert's evidence changed; status unchanged
    Acknowledged(by, note, at)
    Escalated(by, note, at)
    Referred(by, note, at)              # 移送 (to the discipline inspection / audit authority)
    Dismissed(by, note, at)             # note = the reason

Status: ``open`` → ``acknowledged`` → ``escalated`` / ``referred``;
``escalated`` → ``referred``; ``dismissed`` ends (reachable from open,
acknowledged, escalated). ``referred`` is handed over: nothing follows it
but new evidence. An ``EvidenceUpdated`` on a dismissed (or referred) alert
is recorded and leaves the status as it was.

Exactly once. The store's recorder is a PROCESS recorder: ``record(drafts,
position)`` writes the alert events AND ``Tracking("Ledger", position)`` in
one transaction, so after a crash ``position()`` says exactly which ledger
positions the stored alerts reflect. Tracking only moves forward (the
recorder refuses a position not above the stored one), which also fences a
second runner working on the same positions: its transaction fails whole.
A draft whose content (severity, evidence, score, policy) equals the stored
alert's is not written, so re-running detection raises nothing new.

Events carry JSON-native values only (the ledger's ``OrjsonTranscoder``);
times are ISO 8601 strings with offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, ProcessRecorder, Tracking, Transcoder

from detectors.base import SEVERITIES, AlertDraft, alert_key
from ledger.transcoder import OrjsonTranscoder

NS = uuid5(NAMESPACE_URL, "https://skillfund.invalid/alerts")
LEADER = "Ledger"  # the application whose notification ids the tracking records
PAGE = 1_000
SAVE_ATTEMPTS = 3
ACTIONS = ("ack", "escalate", "refer", "dismiss")
STATUSES = ("open", "acknowledged", "escalated", "referred", "dismissed")
# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "ack": (("open",), "acknowledged"),
    "escalate": (("open", "acknowledged"), "escalated"),
    "refer": (("open", "acknowledged", "escalated"), "referred"),
    "dismiss": (("open", "acknowledged", "escalated"), "dismissed"),
}
CONTRACT_KEYS = ("alert_id", "kind", "severity", "score", "subject", "evidence", "policy", "raised_at")


class AlertNotFound(LookupError):
    """No alert with this id."""

    def __init__(self, alert_id: Any):
        super().__init__(f"no alert with id {alert_id}")
        self.alert_id = str(alert_id)


class AlertStateError(ValueError):
    """The action is not possible in the alert's current status (e.g. it was dismissed)."""


class PositionBehind(ValueError):
    """``record`` was given a ledger position below the one already stored."""


def alert_id_for(kind: str, subject: dict[str, str]) -> UUID:
    return uuid5(NS, alert_key(kind, subject))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _content(severity: str, evidence: Any, score: Any, policy: Any) -> bytes:
    return orjson.dumps(
        {"severity": severity, "evidence": evidence, "score": score, "policy": policy},
        option=orjson.OPT_SORT_KEYS,
    )


class Alert(Aggregate):
    """One alert of one kind about one subject, with its evidence and its handling."""

    @staticmethod
    def create_id(kind: str, subject: dict[str, str]) -> UUID:
        return alert_id_for(kind, subject)

    @event("Raised")
    def __init__(
        self,
        kind: str,
        severity: str,
        subject: dict[str, str],
        evidence: list[dict[str, Any]],
        policy: list[str],
        score: float | None,
        detector: str,
        raised_at: str,
        position: int,
        summary: str,
    ) -> None:
        self.kind = kind
        self.subject = subject
        self.raised_at = raised_at
        self.position = position
        self.status = "open"
        self.history: list[dict[str, Any]] = []
        self._set(severity, evidence, policy, score, detector, raised_at, position, summary)
        self.history.append({"event": "raised", "at": raised_at, "position": position, "severity": severity})

    def _set(self, severity: str, evidence: list[dict[str, Any]], policy: list[str], score: float | None,
             detector: str, at: str, position: int, summary: str) -> None:
        self.severity = severity
        self.evidence = evidence
        self.policy = policy
        self.score = score
        self.detector = detector
        self.summary = summary
        self.updated_at = at
        self.last_position = position

    @event("EvidenceUpdated")
    def update_evidence(
        self,
        kind: str,
        severity: str,
        subject: dict[str, str],
        evidence: list[dict[str, Any]],
        policy: list[str],
        score: float | None,
        detector: str,
        raised_at: str,
        position: int,
        summary: str,
    ) -> None:
        self._set(severity, evidence, policy, score, detector, raised_at, position, summary)
        self.history.append({"event": "evidence_updated", "at": raised_at, "position": position, "severity": severity})

    def content(self) -> bytes:
        return _content(self.severity, self.evidence, self.score, self.policy)

    # ---- lifecycle commands: check, then record

    def check_action(self, action: str) -> None:
        sources, _ = TRANSITIONS[action]
        if self.status not in sources:
            if self.status == "dismissed":
                raise AlertStateError(f"alert {self.id} was dismissed: no further action is possible")
            raise AlertStateError(
                f"alert {self.id} is {self.status}: cannot {action} it (possible from {', '.join(sources)})"
            )

    def act(self, action: str, by: str, note: str, at: str) -> None:
        self.check_action(action)
        {"ack": self._acknowledged, "escalate": self._escalated, "refer": self._referred,
         "dismiss": self._dismissed}[action](by=by, note=note, at=at)

    def _handled(self, name: str, status: str, by: str, note: str, at: str) -> None:
        self.status = status
        self.history.append({"event": name, "by": by, "note": note, "at": at})

    @event("Acknowledged")
    def _acknowledged(self, by: str, note: str, at: str) -> None:
        self._handled("acknowledged", "acknowledged", by, note, at)

    @event("Escalated")
    def _escalated(self, by: str, note: str, at: str) -> None:
        self._handled("escalated", "escalated", by, note, at)

    @event("Referred")
    def _referred(self, by: str, note: str, at: str) -> None:
        self._handled("referred", "referred", by, note, at)

    @event("Dismissed")
    def _dismissed(self, by: str, note: str, at: str) -> None:
        self._handled("dismissed", "dismissed", by, note, at)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "alert_id": str(self.id),
            "kind": self.kind,
            "severity": self.severity,
        }
        if self.score is not None:
            d["score"] = self.score
        d.update({
            "subject": self.subject,
            "evidence": self.evidence,
            "policy": self.policy,
            "raised_at": self.raised_at,
            "status": self.status,
            "detector": self.detector,
            "summary": self.summary,
            "updated_at": self.updated_at,
            "position": self.position,
            "last_position": self.last_position,
            "history": self.history,
        })
        return d


_TOPIC_PREFIX = f"{Alert.__module__}:{Alert.__qualname__}"
RAISED_TOPIC = f"{_TOPIC_PREFIX}.Raised"
ALERT_TOPICS = tuple(
    f"{_TOPIC_PREFIX}.{n}" for n in ("Raised", "EvidenceUpdated", "Acknowledged", "Escalated", "Referred", "Dismissed")
)


@dataclass
class RecordResult:
    new: int = 0
    updated: int = 0
    per_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    written: bool = False

    def count(self, kind: str, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        k = self.per_kind.setdefault(kind, {"new": 0, "updated": 0})
        k[what] += 1


def _payload(d: AlertDraft, raised_at: str, position: int) -> dict[str, Any]:
    if d.severity not in SEVERITIES:
        raise ValueError(f"severity {d.severity!r}")
    p = {
        "kind": d.kind, "severity": d.severity, "subject": dict(d.subject), "evidence": d.evidence,
        "policy": list(d.policy), "score": None if d.score is None else float(d.score), "detector": d.detector,
        "raised_at": raised_at, "position": int(position), "summary": d.summary,
    }
    return orjson.loads(orjson.dumps(p))  # JSON-native, and no aliasing of detector state


def _parse_since(since: str | date | datetime | None) -> tuple[str, Any] | None:
    if since is None or since == "":
        return None
    if isinstance(since, datetime):
        if since.tzinfo is None:
            raise ValueError("since: a timestamp needs an offset (e.g. 2024-03-01T00:00:00+08:00)")
        return ("ts", since)
    if isinstance(since, date):
        return ("date", since)
    text = str(since).strip()
    try:
        if len(text) == 10:
            return ("date", date.fromisoformat(text))
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"since: not a date (YYYY-MM-DD) or timestamp: {since!r}") from None
    if dt.tzinfo is None:
        raise ValueError("since: a timestamp needs an offset (e.g. 2024-03-01T00:00:00+08:00)")
    return ("ts", dt)


def _raised_since(raised_at: str, since: tuple[str, Any]) -> bool:
    dt = datetime.fromisoformat(raised_at)
    if since[0] == "date":
        return dt.date() >= since[1]  # the date in the record's own offset (local date)
    return dt >= since[1]


def _check_at(at: str | datetime | None) -> str:
    if at is None:
        return _now()
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("at: a timestamp needs an offset")
        return at.isoformat()
    try:
        dt = datetime.fromisoformat(str(at))
    except ValueError:
        raise ValueError(f"at: not an ISO 8601 timestamp: {at!r}") from None
    if dt.tzinfo is None:
        raise ValueError("at: a timestamp needs an offset")
    return str(at)


class Alerts(Application[UUID]):
    """The alert store. ``Alerts(env=settings.eventsourcing_env("ALERTS"))``."""

    name = "Alerts"  # environment prefix ALERTS_; PostgreSQL tables alerts_events, alerts_tracking

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env=env)
        if not isinstance(self.recorder, ProcessRecorder):  # pragma: no cover - factory contract
            raise TypeError("the alert store needs a process recorder")

    def construct_env(self, name: str, env: Any = None) -> Any:
        e = super().construct_env(name, env)
        if not e.get("PERSISTENCE_MODULE"):
            raise ValueError(
                "Alerts: no persistence module configured (ALERTS_PERSISTENCE_MODULE); "
                "refusing to keep alerts in memory by accident"
            )
        return e

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    # ---- position --------------------------------------------------------

    def position(self) -> int:
        """The last ledger position the stored alerts reflect (0 when none)."""
        return self.recorder.max_tracking_id(LEADER) or 0

    # ---- writing ---------------------------------------------------------

    def record(self, drafts: Iterable[AlertDraft], position: int) -> tuple[int, int]:
        """Store drafts derived from the ledger up to ``position``; returns (new, updated)."""
        r = self.record_detailed(drafts, position)
        return r.new, r.updated

    def record_detailed(self, drafts: Iterable[AlertDraft], position: int) -> RecordResult:
        """As ``record``, with counts per kind.

        One transaction: the alert events and Tracking("Ledger", position).
        ``position`` below the stored one raises ``PositionBehind`` (those
        drafts are stale). Equal to it: changed alerts are written without
        moving the tracking (idempotent by content); nothing changed and the
        same position writes nothing.
        """
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            raise ValueError(f"position must be a non-negative int, got {position!r}")
        drafts = list(drafts)
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                return self._record_once(drafts, position)
            except IntegrityError:
                # A concurrent writer: an officer acting on one of these alerts
                # (version conflict), or another runner (tracking conflict).
                # Nothing was written; re-read and decide again.
                if attempt == SAVE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _record_once(self, drafts: list[AlertDraft], position: int) -> RecordResult:
        stored = self.position()
        if position < stored:
            raise PositionBehind(f"alerts already reflect ledger position {stored}; drafts for {position} are stale")
        first: dict[str, AlertDraft] = {}
        last: dict[str, AlertDraft] = {}
        for d in drafts:
            k = d.key
            if k not in first:
                first[k] = d
            last[k] = d
        result = RecordResult()
        changed: list[Alert] = []
        for k, f in first.items():
            lst = last[k]
            aid = alert_id_for(lst.kind, lst.subject)
            try:
                alert: Alert | None = self.repository.get(aid)
            except AggregateNotFoundError:
                alert = None
            if alert is None:
                # the alert became true at the first draft; it says what the last one knows
                alert = Alert(**_payload(lst, f.raised_at, f.position))
                result.count(lst.kind, "new")
            else:
                p = _payload(lst, lst.raised_at, lst.position)
                if alert.content() == _content(p["severity"], p["evidence"], p["score"], p["policy"]):
                    continue
                alert.update_evidence(**p)
                result.count(lst.kind, "updated")
            changed.append(alert)
        if not changed and position == stored:
            return result
        events = [e for a in changed for e in a.collect_events()]
        tracking = Tracking(application_name=LEADER, notification_id=position) if position > stored else None
        self.events.put(events, tracking=tracking)
        result.written = True
        return result

    # ---- reading ---------------------------------------------------------

    def _load(self, alert_id: str | UUID) -> Alert:
        try:
            aid = alert_id if isinstance(alert_id, UUID) else UUID(str(alert_id).strip())
        except ValueError:
            raise AlertNotFound(alert_id) from None
        try:
            return self.repository.get(aid)
        except AggregateNotFoundError:
            raise AlertNotFound(alert_id) from None

    def get(self, alert_id: str | UUID) -> dict[str, Any]:
        return self._load(alert_id).to_dict()

    def _alerts(self) -> Iterator[Alert]:
        """Every alert, folded from the store's own notification log a page at a time."""
        folded: dict[UUID, Alert] = {}
        start = 1
        while True:
            rows = self.recorder.select_notifications(start=start, limit=PAGE, topics=list(ALERT_TOPICS))
            if not rows:
                break
            for n in rows:
                ev = self.mapper.to_domain_event(n)
                folded[ev.originator_id] = ev.mutate(folded.get(ev.originator_id))
            start = rows[-1].id + 1
        yield from folded.values()  # in order of first appearance: the order alerts were raised

    def list(self, kind: str | None = None, since: str | date | datetime | None = None,
             status: str | None = None) -> list[dict[str, Any]]:
        """Alerts as dicts (the contract's shape plus status, detector, history), oldest raised first."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        since_ = _parse_since(since)
        out = []
        for a in self._alerts():
            if kind is not None and a.kind != kind:
                continue
            if status is not None and a.status != status:
                continue
            if since_ is not None and not _raised_since(a.raised_at, since_):
                continue
            out.append(a.to_dict())
        return out

    # ---- handling --------------------------------------------------------

    def act(self, alert_id: str | UUID, action: str, by: str, note: str,
            at: str | datetime | None = None) -> dict[str, Any]:
        """Acknowledge, escalate, refer (移送) or dismiss an alert; returns it as a dict."""
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        by = (by or "").strip() if isinstance(by, str) or by is None else by
        if not by or not isinstance(by, str):
            raise ValueError("an officer id is required (--by)")
        note = (note or "").strip() if isinstance(note, str) or note is None else note
        if not note or not isinstance(note, str):
            raise ValueError("a reason is required (--note)")
        at_text = _check_at(at)
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            alert = self._load(alert_id)
            alert.act(action, by, note, at_text)
            try:
                self.save(alert)
            except IntegrityError:
                if attempt == SAVE_ATTEMPTS:
                    raise
                continue  # the runner updated its evidence meanwhile: re-read and re-check
            return alert.to_dict()
        raise AssertionError("unreachable")


def contract_view(alert: dict[str, Any], *, case: bool = False) -> dict[str, Any]:
    """The contract's alert line, exactly its keys; ``case`` adds the case
    workflow's fields (status, detector, history) after them."""
    out = {k: alert[k] for k in CONTRACT_KEYS if k in alert}
    if case:
        for k in ("status", "detector", "history"):
            if k in alert:
                out[k] = alert[k]
    return out

