"""Every detector the service runs, built fresh.

A static list: each module exposes ``detectors() -> list[Detector]`` returning
new instances (fresh state), so a rebuild from position 0 starts clean.
Order matters only for the order of drafts within one item; it is fixed.
"""

from __future__ import annotations

from detectors import anomaly, claims, classes, payments, reconciliation
from pathlib import Path

from detectors.base import Detector

MODULES = (classes, claims, payments, reconciliation, anomaly)


def all_detectors(model_dir: Path | None = None) -> list[Detector]:
    """Fresh instances of every detector of every module.

    ``model_dir`` is where the anomaly model is persisted (versioned files);
    None keeps it in memory only.
    """
    out: list[Detector] = []
    for module in MODULES:
        out.extend(module.detectors(model_dir) if module is anomaly else module.detectors())
    return out


def all_kinds() -> tuple[str, ...]:
    kinds: list[str] = []
    for d in all_detectors():
        kinds.extend(k for k in d.kinds if k not in kinds)
    return tuple(kinds)
