"""What every detector is: incremental, deterministic, and able to explain itself.

A detector observes feed items in global order and keeps bounded state keyed
by class, trainee, payee, teacher, venue or officer. When an item makes an
alert true — or adds evidence to one already true — it returns an
``AlertDraft``. The engine keeps one alert per (kind, subject) and stores a
change only when the draft differs from what is stored, so re-running a
detector over the same feed raises nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from projections.feed import Item

SEVERITIES = ("low", "medium", "high", "critical")
EVIDENCE_ITEMS_MAX = 50  # an inspector reads evidence; past this, counts say the rest


@dataclass(frozen=True)
class AlertDraft:
    kind: str
    subject: dict[str, str]
    severity: str
    evidence: list[dict[str, Any]]
    policy: list[str]
    raised_at: str  # ISO time of the record that made the alert true (data time, deterministic)
    position: int  # feed position of that record
    detector: str  # "<module>/<version>"
    score: float | None = None
    summary: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} not in {SEVERITIES}")
        if not self.subject or not all(isinstance(v, str) and v for v in self.subject.values()):
            raise ValueError(f"alert {self.kind} needs a subject of non-empty strings, got {self.subject!r}")
        if not self.policy:
            raise ValueError(f"alert {self.kind} cites no policy")
        if len(self.evidence) > EVIDENCE_ITEMS_MAX:
            raise ValueError(f"alert {self.kind} carries {len(self.evidence)} evidence items (max {EVIDENCE_ITEMS_MAX})")

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.subject)


def alert_key(kind: str, subject: dict[str, str]) -> str:
    return kind + "|" + "|".join(f"{k}={subject[k]}" for k in sorted(subject))


class Detector(Protocol):
    name: str
    version: str
    kinds: tuple[str, ...]

    def observe(self, item: Item) -> Iterable[AlertDraft]: ...


@dataclass
class Bounded:
    """A helper for bounded per-key state: evicts the oldest key past ``maxsize``."""

    maxsize: int
    items: dict[Any, Any] = field(default_factory=dict)

    def get(self, key: Any, default: Any = None) -> Any:
        return self.items.get(key, default)

    def setdefault(self, key: Any, factory: Any) -> Any:
        v = self.items.get(key)
        if v is None:
            v = factory()
            self.items[key] = v
            if len(self.items) > self.maxsize:
                self.items.pop(next(iter(self.items)))
        return v

    def __contains__(self, key: Any) -> bool:
        return key in self.items

    def __len__(self) -> int:
        return len(self.items)
