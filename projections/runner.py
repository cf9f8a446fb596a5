"""Running projections: catch-up from the stored position, and rebuild from 0.

A projection (subclass of :class:`Projection`) turns feed items into changes
of its own ``view_*`` tables. It buffers the changes of one bounded chunk of
log positions in memory (per-key aggregates where the view allows) and
writes them in :meth:`Projection.flush`; the runner writes every active
projection's changes AND its new position in ONE transaction per chunk, so
an item is applied exactly once: a crash before the commit leaves the old
position and no change, a crash after leaves both.

Positions advance to the chunk's upper bound, not to the last item seen, so
a catch-up never re-reads log positions that carried nothing for the views
(aggregate bookkeeping events, rejections).

The log is pulled (``feed.read``), never subscribed to: the SQLite recorder
has no ``subscribe()``. On SQLite the runner reads through :class:`SQLiteLog`,
a lean stand-in for the recorder's ``select_notifications`` (same rows, no
UUID conversion of ids the feed does not use), which is what lets a rebuild
run well above 50,000 log positions a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from projections import feed
from projections.store import Tx, TrackingConflict, ViewStore, check_ident

CHUNK_POSITIONS = 10_000  # log positions per transaction (bounded memory)
CONFLICT_RETRIES_MAX = 20
# Leave facts of record types no active projection reads in the SQLite
# database (see SQLiteLog). Off only to measure what the filter saves.
SKIP_UNWANTED_FACTS = True


class Projection:
    """Base class of a read model. Subclasses set the class attributes."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    tables: ClassVar[tuple[str, ...]] = ()
    accepted_types: ClassVar[frozenset[str]] = frozenset()
    wants_posted: ClassVar[bool] = False

    def ddl(self, store: ViewStore) -> list[str]:
        """CREATE TABLE / CREATE INDEX statements (IF NOT EXISTS)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the buffered changes of the current chunk."""
        raise NotImplementedError

    def on_accepted(self, item: feed.Accepted) -> None:
        pass

    def on_posted(self, item: feed.Posted) -> None:
        pass

    def flush(self, tx: Tx) -> None:
        """Write the buffered changes; then :meth:`reset` is called."""
        raise NotImplementedError


# ---------------------------------------------------------------- the log


class _Note(NamedTuple):
    id: int
    topic: str
    state: bytes
    originator_id: str


class SQLiteLog:
    """``select_notifications`` / ``max_notification_id`` over the SQLite recorder's table.

    The same rows as the recorder returns, read through its own datastore
    connection, without converting originator ids to UUIDs (a third of the
    recorder's read time; the feed needs them only for rejections, as text).
    """

    def __init__(self, recorder: Any, skip_record_types: Sequence[str] = ()) -> None:
        self._recorder = recorder
        self._ds = recorder.datastore
        self._table = recorder.events_table_name
        self.skip_record_types = tuple(skip_record_types)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[_Note]:
        where: list[str] = []
        params: list[Any] = []
        if start is not None:
            where.append("rowid >= ?" if inclusive_of_start else "rowid > ?")
            params.append(start)
        if stop is not None:
            where.append("rowid <= ?")
            params.append(stop)
        if topics:
            where.append(f"topic IN ({','.join('?' * len(topics))})")
            params.extend(topics)
        if self.skip_record_types and (not topics or feed.FACT_TOPIC in topics):
            # Facts of record types no reader wants (most of the log is
            # attendance) are left in the database instead of being decoded
            # and dropped. The stored state is the transcoder's compact JSON,
            # where an escaped string can never contain the unescaped
            # '"record_type":"<type>"'; with another encoding the clause
            # matches nothing and only costs time.
            probes = " OR ".join("instr(state, ?) > 0" for _ in self.skip_record_types)
            where.append(f"NOT (topic = ? AND ({probes}))")
            params.append(feed.FACT_TOPIC)
            params.extend(f'"record_type":"{t}"'.encode() for t in self.skip_record_types)
        sql = f"SELECT rowid, topic, state, originator_id FROM {self._table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        with self._ds.transaction(commit=False) as c:
            c.execute(sql, params)
            return [_Note(r[0], r[1], r[2], r[3]) for r in c.fetchall()]

    def max_notification_id(self) -> int | None:
        return self._recorder.max_notification_id()


def log_for(recorder: Any, skip_record_types: Sequence[str] = ()) -> Any:
    """What the runner reads: the lean SQLite reader, else the recorder itself."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    if isinstance(recorder, SQLiteApplicationRecorder) and hasattr(recorder, "datastore"):
        return SQLiteLog(recorder, skip_record_types)
    return recorder


def _unwanted_types(projections: Iterable[Projection]) -> tuple[str, ...]:
    """Record types no projection reads, the commonest first (attendance)."""
    from ledger.records import RECORD_TYPES

    wanted: set[str] = set()
    for p in projections:
        wanted |= p.accepted_types
    order = {"attendance": 0, "enrollment": 1, "completion": 2}
    return tuple(sorted((t for t in RECORD_TYPES if t not in wanted), key=lambda t: (order.get(t, 9), t)))


# ---------------------------------------------------------------- running


@dataclass
class RunStats:
    positions: int = 0  # log positions covered
    items: int = 0  # feed items read
    chunks: int = 0
    seconds: float = 0.0
    conflicts: int = 0
    rebuilt: list[str] = field(default_factory=list)
    head: int = 0

    @property
    def positions_per_second(self) -> float:
        return self.positions / self.seconds if self.seconds > 0 else 0.0


def _drop_and_create(store: ViewStore, tx: Tx, p: Projection) -> None:
    for table in p.tables:
        tx.execute(f"DROP TABLE IF EXISTS {check_ident(table)}")
    for stmt in p.ddl(store):
        tx.execute(stmt)
    tx.execute("DELETE FROM view_tracking WHERE projection = ?", (p.name,))
    tx.execute("INSERT INTO view_tracking (projection, position, version) VALUES (?, 0, ?)", (p.name, p.version))


def prepare(store: ViewStore, projections: Sequence[Projection], stats: RunStats | None = None) -> None:
    """Tracking table, view tables; a projection whose version changed starts over."""
    names = [p.name for p in projections]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate projection names: {names}")
    store.ensure_tracking()
    tracked = store.tracking()
    for p in projections:
        got = tracked.get(p.name)
        with store.transaction() as tx:
            if got is None or got[1] != p.version:
                _drop_and_create(store, tx, p)
                if stats is not None and got is not None:
                    stats.rebuilt.append(p.name)
            else:
                for stmt in p.ddl(store):
                    tx.execute(stmt)


def rebuild(
    store: ViewStore,
    recorder: Any,
    projections: Sequence[Projection],
    *,
    upto: int | None = None,
    chunk: int = CHUNK_POSITIONS,
) -> RunStats:
    """Drop the views and positions of ``projections`` and replay from 0."""
    store.ensure_tracking()
    for p in projections:
        with store.transaction() as tx:
            _drop_and_create(store, tx, p)
    return catch_up(store, recorder, projections, upto=upto, chunk=chunk)


def catch_up(
    store: ViewStore,
    recorder: Any,
    projections: Sequence[Projection],
    *,
    upto: int | None = None,
    chunk: int = CHUNK_POSITIONS,
    progress: Callable[[int, int], None] | None = None,
) -> RunStats:
    """Apply the log from each projection's stored position up to ``upto`` (default: head)."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1 position")
    stats = RunStats()
    started = time.perf_counter()
    prepare(store, projections, stats)
    log = log_for(recorder)
    head = feed.head(log)
    target = head if upto is None else min(upto, head)
    stats.head = target
    page = min(chunk, feed.PAGE_MAX)
    conflicts = 0
    first_lo: int | None = None
    while True:
        tracked = store.tracking()
        pos = {p.name: tracked[p.name][0] for p in projections}
        lo = min(pos.values(), default=target)
        if first_lo is None:
            first_lo = lo
        if lo >= target:
            break
        hi = min(lo + chunk, target)
        active = [p for p in projections if pos[p.name] < hi]
        for p in active:
            p.reset()
        topics = _topics(active)
        if isinstance(log, SQLiteLog):
            log.skip_record_types = _unwanted_types(active) if SKIP_UNWANTED_FACTS else ()
        by_type, posted = _dispatch(active, pos, lo)
        n_items = 0
        for item in feed.read(log, after=lo, upto=hi, topics=topics, page=page):
            n_items += 1
            if type(item) is feed.Accepted:
                handlers = by_type.get(item.type)
                if handlers:
                    for h in handlers:
                        h(item)
            elif type(item) is feed.Posted:
                for h in posted:
                    h(item)
        try:
            with store.transaction() as tx:
                # Positions first: the row lock on view_tracking serialises
                # concurrent runners (PostgreSQL) before any view row is written.
                for p in active:
                    store.set_position(tx, p.name, pos[p.name], hi)
                for p in active:
                    p.flush(tx)
        except TrackingConflict:
            conflicts += 1
            stats.conflicts = conflicts
            for p in active:
                p.reset()
            if conflicts > CONFLICT_RETRIES_MAX:
                raise
            continue
        for p in active:
            p.reset()
        stats.items += n_items
        stats.chunks += 1
        if progress is not None:
            progress(hi, target)
    stats.positions = max(0, target - (first_lo or 0))
    stats.seconds = time.perf_counter() - started
    return stats


def _topics(active: Iterable[Projection]) -> tuple[str, ...]:
    topics: list[str] = []
    if any(p.accepted_types for p in active):
        topics.append(feed.FACT_TOPIC)
    if any(p.wants_posted for p in active):
        topics.append(feed.POSTED_TOPIC)
    return tuple(topics) or (feed.FACT_TOPIC,)


def _dispatch(
    active: Sequence[Projection], pos: dict[str, int], lo: int
) -> tuple[dict[str, list[Callable[[Any], None]]], list[Callable[[Any], None]]]:
    """Handlers per record type and for Posted; a projection ahead of ``lo``
    gets a guard that skips items it has already applied."""

    def guarded(fn: Callable[[Any], None], after: int) -> Callable[[Any], None]:
        def run(item: Any) -> None:
            if item.position > after:
                fn(item)

        return run

    by_type: dict[str, list[Callable[[Any], None]]] = {}
    posted: list[Callable[[Any], None]] = []
    for p in active:
        after = pos[p.name]
        acc = p.on_accepted if after == lo else guarded(p.on_accepted, after)
        pst = p.on_posted if after == lo else guarded(p.on_posted, after)
        for t in p.accepted_types:
            by_type.setdefault(t, []).append(acc)
        if p.wants_posted:
            posted.append(pst)
    return by_type, posted


def all_projections() -> list[Projection]:
    """One fresh instance of every projection skillfund keeps."""
    from projections.balances import BalancesProjection
    from projections.books import JournalProjection
    from projections.disbursements import DisbursementsProjection
    from projections.reconciliation import BankStatementProjection
    from projections.reports import ReportsProjection

    return [
        BalancesProjection(),
        DisbursementsProjection(),
        ReportsProjection(),
        BankStatementProjection(),
        JournalProjection(),
    ]
