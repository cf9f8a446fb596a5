"""Intake: JSON Lines from files or stdin, in bounded batches, into the ledger.

Lines are read one at a time with a hard length bound, so memory stays flat
on a file of millions of lines. Each line becomes a Submission (parsed record
or parse error with its line number); batches of at most ``batch_size`` go to
``Ledger.submit``, one transaction each. A batch is acknowledged (counted,
reported) only after its transaction committed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ledger.application import BatchResult, Ledger, Submission
from ledger.records import RecordError

LINE_BYTES_MAX = 1024 * 1024
BATCH_SIZE_DEFAULT = 1_000
BATCH_SIZE_MAX = 10_000


def _too_long(line_no: int, size: int) -> RecordError:
    return RecordError("malformed", f"line {line_no} is longer than {LINE_BYTES_MAX} bytes ({size}+)")


def read_submissions(stream: BinaryIO, source: str) -> Iterator[Submission]:
    """Yield one Submission per non-blank line; blank lines are ignored."""
    line_no = 0
    while True:
        chunk = stream.readline(LINE_BYTES_MAX + 1)
        if not chunk:
            return
        line_no += 1
        if len(chunk) > LINE_BYTES_MAX and not chunk.endswith(b"\n"):
            size = len(chunk)
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of the line, bounded reads
                chunk = stream.readline(LINE_BYTES_MAX)
                size += len(chunk)
            yield Submission(line=line_no, source=source, raw=None, error=_too_long(line_no, size))
            continue
        if not chunk.strip():
            continue
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as e:
            yield Submission(
                line=line_no, source=source, raw=chunk.decode("utf-8", "replace"),
                error=RecordError("malformed", f"line {line_no} is not UTF-8: {e.reason} at byte {e.start}"),
            )
            continue
        text = text.rstrip("\r\n")
        yield Submission.from_text(text, line=line_no, source=source)


def batched(items: Iterable[Submission], size: int) -> Iterator[list[Submission]]:
    if not 1 <= size <= BATCH_SIZE_MAX:
        raise ValueError(f"batch size must be within 1..{BATCH_SIZE_MAX}, got {size}")
    batch: list[Submission] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class IngestSummary:
    accepted: int = 0
    duplicate: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    last_position: int | None = None
    examples: list[tuple[str | None, int | None, str, str]] = field(default_factory=list)
    EXAMPLES_MAX = 20

    def add(self, result: BatchResult, source: str | None) -> None:
        self.batches += 1
        if result.last_position is not None:
            self.last_position = result.last_position
        for o in result.outcomes:
            if o.status == "accepted":
                self.accepted += 1
            elif o.status == "duplicate":
                self.duplicate += 1
            else:
                reason = o.reason or "unknown"
                self.rejected[reason] = self.rejected.get(reason, 0) + 1
                if len(self.examples) < self.EXAMPLES_MAX:
                    self.examples.append((source, o.line, reason, o.detail or ""))

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def ingest_stream(
    ledger: Ledger,
    stream: BinaryIO,
    source: str,
    *,
    batch_size: int = BATCH_SIZE_DEFAULT,
    summary: IngestSummary | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> IngestSummary:
    summary = summary if summary is not None else IngestSummary()
    for batch in batched(read_submissions(stream, source), batch_size):
        result = ledger.submit(batch)
        summary.add(result, source)
        if on_batch is not None:
            on_batch(result)
    return summary


def ingest_paths(
    ledger: Ledger,
    paths: Iterable[Path],
    *,
    batch_size: int = BATCH_SIZE_DEFAULT,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> IngestSummary:
    """Ingest files in order; ``-`` or no paths at all means standard input."""
    summary = IngestSummary()
    paths = list(paths)
    if not paths:
        paths = [Path("-")]
    for path in paths:
        if str(path) == "-":
            ingest_stream(ledger, sys.stdin.buffer, "<stdin>", batch_size=batch_size, summary=summary, on_batch=on_batch)
        else:
            with open(path, "rb") as f:
                ingest_stream(ledger, f, str(path), batch_size=batch_size, summary=summary, on_batch=on_batch)
    return summary
