"""Snapshots of the detectors' state, so a new process need not replay the feed from 0.

A snapshot is a cache, never the truth: it is used only when it was taken by
the same detector versions at or before the alert store's position, and the
feed between the two is replayed. A missing, stale or unreadable snapshot
just means a full replay. The file is the project's own (pickle), written
atomically in the data directory; do not load one from elsewhere.
"""

from __future__ import annotations

import os
import pickle
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"SFDS1"
SNAPSHOT_BYTES_MAX = 2 * 1024**3


@dataclass(frozen=True)
class Snapshot:
    position: int
    fingerprint: str
    blob: bytes


class FileSnapshots:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> Snapshot | None:
        try:
            with self.path.open("rb") as f:
                if f.read(len(MAGIC)) != MAGIC:
                    return None
                position, flen = struct.unpack(">QI", f.read(12))
                fingerprint = f.read(flen).decode("utf-8")
                blob = f.read(SNAPSHOT_BYTES_MAX + 1)
        except (OSError, struct.error, UnicodeDecodeError):
            return None
        if len(blob) > SNAPSHOT_BYTES_MAX:
            return None
        return Snapshot(position, fingerprint, blob)

    def save(self, snap: Snapshot) -> None:
        if len(snap.blob) > SNAPSHOT_BYTES_MAX:
            return  # too big to be worth it; the feed is still there
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fp = snap.fingerprint.encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".detector-state.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + struct.pack(">QI", snap.position, len(fp)) + fp)
                f.write(snap.blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def dumps(detectors: list) -> bytes:
    return pickle.dumps(detectors, protocol=pickle.HIGHEST_PROTOCOL)


def loads(blob: bytes) -> list:
    return pickle.loads(blob)  # noqa: S301 - our own file, see module docstring
