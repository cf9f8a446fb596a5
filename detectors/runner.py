"""Run the detectors over the ledger's feed into the alert store, exactly once.

Detector state lives in memory; the alert store remembers (in the same
transaction as the alerts) the last ledger position its alerts reflect. So:

1. warm-up: replay the feed from 0 up to ``alerts.position()`` through the
   detectors WITHOUT writing — the stored alerts already reflect those drafts;
2. catch up: continue from there to the head of the log, saving the drafts
   and the new position every ``batch_positions`` positions and at the end.

A crash anywhere loses nothing and repeats nothing: the next run warms up to
the stored position and carries on. An alert whose latest draft equals the
stored content is not written again.

``DetectionSession`` keeps the warm detectors between calls: after each
ingest batch call ``session.catch_up()`` and only the new positions are
read. If another runner moved the store on meanwhile, the session replays
the gap without writing (or, when its own state ran ahead of the store,
rebuilds from 0 with fresh detectors).
"""

from __future__ import annotations

import functools
import hashlib
import sys
import time
from pathlib import Path
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.alerts import Alerts, PositionBehind
from detectors.base import AlertDraft, Detector
from detectors.engine import DetectionEngine
from detectors.registry import all_detectors
from detectors.snapshots import Snapshot
from detectors.snapshots import dumps as snapshot_dumps
from detectors.snapshots import loads as snapshot_loads
from projections import feed

BATCH_POSITIONS_DEFAULT = 5_000
PAGE = 1_000
RESYNC_ATTEMPTS = 3
# Below this many items a replay is cheaper than writing a snapshot.
SNAPSHOT_AFTER_ITEMS = 20_000


@dataclass
class DetectStats:
    items: int = 0  # feed items run through the detectors for new positions
    replayed: int = 0  # feed items replayed to warm the detectors (nothing written)
    new: int = 0
    updated: int = 0
    seconds: float = 0.0
    position: int = 0  # ledger position the alerts now reflect
    batches: int = 0
    per_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    restored_from: int | None = None  # position of the snapshot the run started from

    @property
    def items_per_second(self) -> float:
        n = self.items + self.replayed
        return n / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items, "replayed": self.replayed, "new": self.new, "updated": self.updated,
            "seconds": round(self.seconds, 3), "position": self.position, "batches": self.batches,
            "per_kind": self.per_kind, "errors": self.errors,
        }


DetectorsArg = Sequence[Detector] | Callable[[], Sequence[Detector]] | None


class DetectionSession:
    """A warm engine bound to a ledger recorder and an alert store."""

    def __init__(
        self,
        ledger_recorder: Any,
        alerts: Alerts,
        detectors: DetectorsArg = None,
        *,
        batch_positions: int = BATCH_POSITIONS_DEFAULT,
        strict: bool = False,
        snapshots: Any = None,
    ) -> None:
        if batch_positions < 1:
            raise ValueError("batch_positions must be at least 1")
        self.recorder = ledger_recorder
        self.alerts = alerts
        self.batch_positions = batch_positions
        self.strict = strict
        if detectors is None:
            self._factory: Callable[[], Sequence[Detector]] | None = all_detectors
        elif callable(detectors):
            self._factory = detectors
        else:
            self._factory = None
            self._given = list(detectors)
        self.engine = self._new_engine()
        self._fresh = True
        self.position: int | None = None  # the position the detectors' state reflects
        self.snapshots = snapshots  # detectors.snapshots.FileSnapshots or None

    def fingerprint(self) -> str:
        """Detector names, versions and a hash of their code: a snapshot taken
        by other code is never restored into this code."""
        return ";".join(f"{d.name}/{d.version}" for d in self.engine.detectors) + ";" + _code_hash(
            tuple(sorted({type(d).__module__ for d in self.engine.detectors}))
        )

    def _restore(self, stored: int) -> bool:
        """Start from a snapshot at or before ``stored``, if a usable one exists."""
        if self.snapshots is None:
            return False
        snap = self.snapshots.load()
        if snap is None or snap.position > stored or snap.fingerprint != self.fingerprint():
            return False
        try:
            restored = snapshot_loads(snap.blob)
        except Exception:  # an unreadable cache is only a slower start
            return False
        self.engine = DetectionEngine(restored, strict=self.strict)
        self.position = snap.position
        self._fresh = False
        return True

    def snapshot(self) -> None:
        """Save the detectors' state at the position it reflects."""
        if self.snapshots is not None and self.position is not None:
            self.snapshots.save(Snapshot(self.position, self.fingerprint(), snapshot_dumps(self.engine.detectors)))

    def _new_engine(self) -> DetectionEngine:
        if self._factory is not None:
            return DetectionEngine(self._factory(), strict=self.strict)
        if not getattr(self, "_given", None):
            raise RuntimeError("detector instances were used up: pass a factory to allow a rebuild")
        given, self._given = self._given, []
        return DetectionEngine(given, strict=self.strict)

    def _reset(self) -> None:
        self.engine = self._new_engine()
        self._fresh = True
        self.position = None

    def _replay(self, after: int, upto: int, stats: DetectStats) -> None:
        observe = self.engine.observe
        n = 0
        for item in feed.read(self.recorder, after=after, upto=upto, page=PAGE):
            observe(item)
            n += 1
        stats.replayed += n
        self.position = upto
        self._fresh = False

    def _warm(self, stats: DetectStats) -> int:
        """Bring the detectors to the stored position; returns it."""
        stored = self.alerts.position()
        if self.position is None and self._fresh and self._restore(stored):
            stats.restored_from = self.position
        if self.position is None:
            if not self._fresh:
                self._reset()
            self._replay(0, stored, stats)
        elif stored > self.position:
            self._replay(self.position, stored, stats)  # another runner's alerts cover these
        elif stored < self.position:
            # The store is behind what our detectors have seen (a failed save, or a
            # store rolled back): our state cannot be rewound, so rebuild it.
            self._reset()
            self._replay(0, stored, stats)
        return stored

    def catch_up(self, upto: int | None = None) -> DetectStats:
        """Run the detectors over every new position up to the head (or ``upto``)."""
        stats = DetectStats()
        t0 = time.perf_counter()
        for attempt in range(1, RESYNC_ATTEMPTS + 1):
            try:
                self._catch_up(stats, upto)
                break
            except PositionBehind:
                # Another runner stored a later position first. Our detectors ran
                # ahead of what we stored: rebuild and continue from the store.
                self.position = None
                if attempt == RESYNC_ATTEMPTS:
                    raise
        if self.snapshots is not None and stats.items + stats.replayed >= SNAPSHOT_AFTER_ITEMS:
            self.snapshot()
        stats.seconds = time.perf_counter() - t0
        stats.errors = dict(self.engine.errors)
        return stats

    def _catch_up(self, stats: DetectStats, upto: int | None) -> None:
        start = self._warm(stats)
        head = feed.head(self.recorder)
        if upto is not None:
            head = min(head, upto)
        stats.position = start
        if head <= start:
            return
        observe = self.engine.observe
        pending: list[AlertDraft] = []
        flushed = start
        last = start
        try:
            for item in feed.read(self.recorder, after=start, upto=head, page=PAGE):
                p = item.position
                if p - flushed > self.batch_positions and last > flushed:
                    self._save(pending, last, stats)
                    pending = []
                    flushed = last
                got = observe(item)
                if got:
                    pending.extend(got)
                last = p
                stats.items += 1
            self._save(pending, head, stats)
        except BaseException:
            # Our detectors have seen positions the store has not recorded.
            self.position = None
            raise

    def _save(self, drafts: list[AlertDraft], position: int, stats: DetectStats) -> None:
        r = self.alerts.record_detailed(drafts, position)
        self.position = position
        stats.position = position
        stats.batches += 1
        stats.new += r.new
        stats.updated += r.updated
        for kind, c in r.per_kind.items():
            k = stats.per_kind.setdefault(kind, {"new": 0, "updated": 0})
            k["new"] += c["new"]
            k["updated"] += c["updated"]


@functools.lru_cache(maxsize=8)
def _code_hash(modules: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for name in modules + ("detectors.base", "detectors.features"):
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def detect(
    ledger_recorder: Any,
    alerts: Alerts,
    detectors: DetectorsArg = None,
    batch_positions: int = BATCH_POSITIONS_DEFAULT,
) -> DetectStats:
    """One full run: warm up to the stored position, then catch up to the head."""
    return DetectionSession(ledger_recorder, alerts, detectors, batch_positions=batch_positions).catch_up()
