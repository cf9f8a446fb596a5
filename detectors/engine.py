"""The detection engine: every detector sees every feed item it reads, in order.

``DetectionEngine(detectors).observe(item)`` runs the detectors in the order
given and returns their drafts, one per alert key (a detector may say the
same alert twice for one item; the last draft wins, in order of first
appearance). It holds no state of its own beyond the detectors'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from detectors.base import AlertDraft, Detector, merge_drafts
from projections.feed import Accepted, Item

log = logging.getLogger(__name__)


class DetectorError(RuntimeError):
    """A detector failed on an item (strict engines only)."""

    def __init__(self, detector: str, position: int | None, cause: BaseException):
        super().__init__(f"detector {detector} failed at feed position {position}: {cause!r}")
        self.detector = detector
        self.position = position


class DetectionEngine:
    def __init__(self, detectors: Iterable[Detector], *, strict: bool = True) -> None:
        """``strict``: a detector's exception stops the run (DetectorError). Otherwise it is
        logged and counted in ``errors`` and the other detectors carry on (a faulty
        detector must not blind the rest)."""
        self.detectors: list[Detector] = list(detectors)
        names = [f"{d.name}/{d.version}" for d in self.detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"detectors listed twice: {sorted(n for n in names if names.count(n) > 1)}")
        self.strict = strict
        self.errors: dict[str, int] = {}
        # A detector may declare ``record_types``: the accepted record types it
        # reads (it ignores every other item). Routing by type skips calls that
        # would return nothing, the bulk of them on attendance-heavy feeds.
        self._all = tuple(d for d in self.detectors if getattr(d, "record_types", None) is None)
        self._by_type: dict[str, tuple[Detector, ...]] = {}

    def _for(self, item: Item) -> tuple[Detector, ...]:
        if type(item) is not Accepted:
            return self._all
        route = self._by_type.get(item.type)
        if route is None:
            route = tuple(
                d for d in self.detectors
                if getattr(d, "record_types", None) is None or item.type in d.record_types
            )
            self._by_type[item.type] = route
        return route

    @property
    def kinds(self) -> tuple[str, ...]:
        out: list[str] = []
        for d in self.detectors:
            out.extend(k for k in d.kinds if k not in out)
        return tuple(out)

    def observe(self, item: Item) -> list[AlertDraft]:
        drafts: list[AlertDraft] = []
        for d in self._for(item):
            try:
                got = d.observe(item)
                if got:
                    drafts.extend(got)
            except Exception as e:  # noqa: BLE001 - see strict
                name = f"{d.name}/{d.version}"
                position = getattr(item, "position", None)
                if self.strict:
                    raise DetectorError(name, position, e) from e
                self.errors[name] = self.errors.get(name, 0) + 1
                if self.errors[name] <= 10:
                    log.exception("detector %s failed at feed position %s", name, position)
        if len(drafts) > 1:
            drafts = merge_drafts(drafts)
        return drafts

    def observe_all(self, items: Iterable[Item]) -> list[AlertDraft]:
        out: list[AlertDraft] = []
        for it in items:
            out.extend(self.observe(it))
        return out


def kinds_of(detectors: Sequence[Detector]) -> tuple[str, ...]:
    return DetectionEngine(detectors).kinds
