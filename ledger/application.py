"""The Ledger: an eventsourcing Application that records every input once.

``submit(batch)`` handles a bounded batch of submissions and saves everything
it decided (facts, rule-aggregate events, rejections) in ONE transaction.
Re-sending a batch is safe: the fast path assumes every record is new and
lets the store's uniqueness of (aggregate, version) catch a re-send; if it
does, the whole batch is discarded and redone record by record against the
store, so nothing is counted twice and nothing is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Transcoder

from ledger.aggregates import FundAccount, Rejection, RuleViolation, fact_id, fact_stored_event
from ledger.handlers import HANDLERS
from ledger.records import Record, RecordError, digest_of, parse_line
from ledger.transcoder import OrjsonTranscoder
from ledger.unit_of_work import AggregateCache, UnitOfWork

BATCH_RECORDS_MAX = 10_000
RAW_KEPT_BYTES_MAX = 256 * 1024
NOTIFICATIONS_PAGE = 1_000


@dataclass(slots=True)
class Submission:
    """One input line, parsed or not, on its way into the ledger."""

    line: int | None
    source: str | None
    raw: str | None
    record: Record | None = None
    error: RecordError | None = None
    replay_of: UUID | None = None

    @classmethod
    def from_text(cls, text: str, *, line: int | None = None, source: str | None = None) -> Submission:
        try:
            return cls(line=line, source=source, raw=text, record=parse_line(text))
        except RecordError as e:
            return cls(line=line, source=source, raw=text, error=e)


@dataclass(slots=True)
class Outcome:
    status: str  # accepted | duplicate | rejected
    line: int | None
    type: str | None
    id: str | None
    reason: str | None = None
    detail: str | None = None
    field: str | None = None
    new_rejection: bool = False


@dataclass
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    last_position: int | None = None
    slow_path: bool = False

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            key = o.status if o.status != "rejected" else f"rejected:{o.reason}"
            out[key] = out.get(key, 0) + 1
        return out


def _raw_key(sub: Submission) -> str:
    """An unreadable line is known by its text and where it came from, so a
    re-run of the same file finds the same rejection and two bad lines that
    happen to read alike are still two rejections."""
    digest = hashlib.sha256((sub.raw or "").encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"raw:{digest}:{sub.source}:{sub.line}"


class Ledger(Application[UUID]):
    name = "Ledger"  # environment prefix LEDGER_ keeps its table apart from other apps'

    RECORDERS = {
        "eventsourcing.sqlite": "ledger.recorders:SQLiteLedgerRecorder",
        "eventsourcing.postgres": "ledger.recorders_postgres:PostgresLedgerRecorder",
    }

    def __init__(self, env: dict[str, str] | None = None, *, cache_max: int = 200_000) -> None:
        env = dict(env or {})
        module = env.get("LEDGER_PERSISTENCE_MODULE") or env.get("PERSISTENCE_MODULE")
        if module not in self.RECORDERS:
            # Unset means in-memory in eventsourcing: never what a ledger wants.
            raise ValueError(f"LEDGER_PERSISTENCE_MODULE must be one of {sorted(self.RECORDERS)}, got {module!r}")
        env.setdefault("LEDGER_APPLICATION_RECORDER_TOPIC", self.RECORDERS[module])
        super().__init__(env=env)
        self._cache = AggregateCache(cache_max)
        self._careful = False

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    # ---- writing -------------------------------------------------------

    def submit(self, batch: Sequence[Submission]) -> BatchResult:
        """Decide a batch and store it in one transaction; return each outcome."""
        if len(batch) > BATCH_RECORDS_MAX:
            raise ValueError(f"batch of {len(batch)} exceeds {BATCH_RECORDS_MAX} records")
        if not batch:
            return BatchResult()
        if not self._careful:
            try:
                result = self._run(batch, careful=False)
            except IntegrityError:
                # Something in the batch is stored already: a re-send, a
                # conflict, a rejection seen again, or another writer. Forget
                # what the attempt decided and redo it against the store.
                self._cache.clear()
            else:
                return result
        result = self._run(batch, careful=True)
        result.slow_path = True
        # Re-sends come in runs (a re-run file, a redelivered poll): stay
        # careful while they last, and go back to the fast path after.
        self._careful = any(o.status == "duplicate" or o.reason == "conflict" for o in result.outcomes)
        return result

    def _run(self, batch: Sequence[Submission], *, careful: bool) -> BatchResult:
        uow = UnitOfWork(self.repository, self._cache, self.mapper)
        now = datetime.now(timezone.utc)
        now_iso = now.isoformat()
        seen: dict[tuple[str, str], str] = {}
        if careful:
            # Which of the batch's records are already stored: one query, not one per record.
            ids = {fact_id(s.record.type, s.record.id): (s.record.type, s.record.id) for s in batch if s.record is not None}
            for fid, state in self.recorder.select_first_states(list(ids)).items():
                seen[ids[fid]] = orjson.loads(state)["digest"]
        rejections_made: set[UUID] = set()
        outcomes: list[Outcome] = []
        for sub in batch:
            outcomes.append(self._one(uow, sub, now_iso, seen, rejections_made, careful))
        last = None
        if uow.stored:
            # One transaction for the whole batch: facts, rule events, rejections.
            ids = self.recorder.insert_events(uow.stored)
            last = ids[-1] if ids else None
        uow.commit_to(self._cache)
        return BatchResult(outcomes=outcomes, last_position=last)

    def _one(
        self,
        uow: UnitOfWork,
        sub: Submission,
        now_iso: str,
        seen: dict[tuple[str, str], str],
        rejections_made: set[UUID],
        careful: bool,
    ) -> Outcome:
        if sub.error is not None:
            e = sub.error
            return self._reject(uow, sub, e.reason, e.detail, e.field, e.type, e.id, _raw_key(sub), rejections_made, careful)
        rec = sub.record
        if rec is None:
            raise ValueError("a submission carries a record or an error")
        canonical = rec.canonical()
        digest = digest_of(canonical)
        key = (rec.type, rec.id)
        prior = seen.get(key)
        if prior is not None:
            if prior == digest:
                self._resolve_replayed(uow, sub, "duplicate")
                return Outcome("duplicate", sub.line, rec.type, rec.id)
            return self._reject(
                uow, sub, "conflict",
                f"{rec.type} {rec.id} was already accepted with different content",
                None, rec.type, rec.id, f"conflict:{rec.type}:{rec.id}:{digest}", rejections_made, careful,
            )
        try:
            pack = HANDLERS[rec.type](uow, rec)
        except RuleViolation as v:
            uow.discard_record()
            return self._reject(
                uow, sub, v.reason, v.detail, v.field, rec.type, rec.id,
                f"{v.reason}:{rec.type}:{rec.id}:{digest}", rejections_made, careful,
            )
        uow.collect()
        uow.stored.append(
            fact_stored_event(
                rec.type, rec.id, digest, canonical, pack, sub.line, sub.source, now_iso
            )
        )
        uow.collect()
        seen[key] = digest
        self._resolve_replayed(uow, sub, "accepted")
        return Outcome("accepted", sub.line, rec.type, rec.id)

    def _reject(
        self,
        uow: UnitOfWork,
        sub: Submission,
        reason: str,
        detail: str,
        field_: str | None,
        rtype: str | None,
        rid: str | None,
        key: str,
        rejections_made: set[UUID],
        careful: bool,
    ) -> Outcome:
        if field_ and not detail.startswith("field "):
            detail = f"field {field_}: {detail}"  # every rejection names the field at fault
        outcome = Outcome("rejected", sub.line, rtype, rid, reason, detail, field_)
        if sub.replay_of is not None:
            old = uow.get(Rejection, sub.replay_of)
            if old is None:
                raise ValueError(f"replay of unknown rejection {sub.replay_of}")
            old.retried(reason=reason, detail=detail)
            uow.collect()
            return outcome
        rej_id = Rejection.create_id(key)
        if rej_id in rejections_made:
            return outcome
        if careful and uow.get(Rejection, rej_id) is not None:
            uow.collect()
            rejections_made.add(rej_id)
            return outcome
        raw = sub.raw
        if raw is not None and len(raw) > RAW_KEPT_BYTES_MAX:
            raw = None  # too long to keep for replay; the reason and line still are
        uow.add(
            Rejection(
                key=key, reason=reason, detail=detail, field=field_, record_type=rtype,
                record_id=rid, line=sub.line, source=sub.source, raw=raw,
            )
        )
        uow.collect()
        rejections_made.add(rej_id)
        outcome.new_rejection = True
        return outcome

    def _resolve_replayed(self, uow: UnitOfWork, sub: Submission, outcome: str) -> None:
        if sub.replay_of is None:
            return
        old = uow.get(Rejection, sub.replay_of)
        if old is None:
            raise ValueError(f"replay of unknown rejection {sub.replay_of}")
        if not old.resolved:
            old.resolve(outcome=outcome)
        uow.collect()

    # ---- reading (the ledger's own log; projections build richer views) ----

    def notifications(self, topics: Sequence[str], start: int = 1, page: int = NOTIFICATIONS_PAGE) -> Iterator[Any]:
        if not 1 <= page <= 10_000:
            raise ValueError("page size must be within 1..10000")
        position = start
        while True:
            rows = self.recorder.select_notifications(start=position, limit=page, topics=topics)
            if not rows:
                return
            yield from rows
            position = rows[-1].id + 1

    def open_rejections(self) -> list[Rejection]:
        topic = f"{Rejection.__module__}:{Rejection.__qualname__}.Rejected"
        out = []
        for n in self.notifications([topic]):
            rej = self.repository.get(n.originator_id)
            if not rej.resolved:
                out.append(rej)
        return out

    def all_rejections(self) -> list[Rejection]:
        topic = f"{Rejection.__module__}:{Rejection.__qualname__}.Rejected"
        return [self.repository.get(n.originator_id) for n in self.notifications([topic])]

    def replay_rejections(self, batch_size: int = 1_000) -> BatchResult:
        """Re-submit every open rejection that kept its raw text."""
        total = BatchResult()
        pending: list[Submission] = []
        for rej in self.open_rejections():
            if rej.raw is None:
                continue
            sub = Submission.from_text(rej.raw, line=rej.line, source=rej.source)
            sub.replay_of = rej.id
            pending.append(sub)
            if len(pending) >= batch_size:
                total.outcomes.extend(self.submit(pending).outcomes)
                pending = []
        if pending:
            total.outcomes.extend(self.submit(pending).outcomes)
        return total

    def fund_accounts(self) -> list[FundAccount]:
        topic = f"{FundAccount.__module__}:{FundAccount.__qualname__}.Opened"
        return [self.repository.get(n.originator_id) for n in self.notifications([topic])]
