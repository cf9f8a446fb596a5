"""Shared bench helpers: timing, memory, percentiles, temporary stores, printing.

Memory: ``measure`` resets the process's peak-RSS mark at the start of a
phase (Linux ``/proc/self/clear_refs``) and reads ``VmHWM`` at the end, so a
phase's peak is its own; ``ru_maxrss`` (``maxrss_mb``) is the fallback
elsewhere. ``BENCH_TRACEMALLOC=1`` adds tracemalloc's peak of Python
allocations (it slows a phase, so it is off by default). Phases can also run
in a fresh interpreter (``isolated``, spawn start method) so that what an
earlier phase left in memory is not in the figure. Sizes come from the
environment (``BENCH_RECORDS``) so a test can smoke-run a bench tiny.

Nothing here asserts a target: benches measure and print; targets are
printed beside the figures.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import multiprocessing
import os
import resource
import secrets
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/ingest.py` as well as `python -m bench`
    sys.path.insert(0, str(ROOT))

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL_ENV = "BENCH_PG_URL"
RECORDS_ENV = "BENCH_RECORDS"
TRACEMALLOC_ENV = "BENCH_TRACEMALLOC"  # "1": also trace Python allocations (slows a phase ~2x)


def env_int(name: str, default: int) -> int:
    """A positive integer from the environment (``default`` when unset or empty)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw.replace("_", ""))
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


def bench_records(default: int = 200_000) -> int:
    """How many records a bench generates (``BENCH_RECORDS``)."""
    return env_int(RECORDS_ENV, default)


# ----------------------------------------------------------------- memory


def maxrss_mb() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB: the peak RSS of this process so far.

    Linux carries it across fork and exec (a spawned child starts with its
    parent's peak), so for a phase's own peak use ``peak_rss_mb``.
    """
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / (1024.0 * 1024.0)


def _vm_hwm_kb() -> int | None:
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS in MiB since the process started or since ``reset_peak_rss``.

    Linux: ``VmHWM`` of /proc/self/status (per address space, resettable);
    elsewhere ``ru_maxrss``.
    """
    kb = _vm_hwm_kb()
    return kb / 1024.0 if kb is not None else maxrss_mb()


def tracemalloc_wanted() -> bool:
    return os.environ.get(TRACEMALLOC_ENV, "").strip() == "1"


# ----------------------------------------------------------------- phases


@dataclass
class Phase:
    """One measured phase: ``records`` handled in ``wall_s`` seconds."""

    name: str
    records: int
    wall_s: float
    peak_rss_mb: float | None = None
    traced_peak_mb: float | None = None
    extrapolated: bool = False  # measured on a subset; rate extrapolates
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.wall_s if self.wall_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rate"] = self.rate
        return d


@contextlib.contextmanager
def measure(name: str, records: int = 0, *, trace: bool | None = None) -> Iterator[Phase]:
    """Time the block; the yielded Phase gets wall time and peak memory on exit.

    Set ``phase.records`` inside the block when the count is known only then.
    """
    trace = tracemalloc_wanted() if trace is None else trace
    phase = Phase(name=name, records=records, wall_s=0.0)
    gc.collect()
    reset_peak_rss()  # the phase's own peak, not the process's
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        yield phase
    finally:
        phase.wall_s = time.perf_counter() - t0
        if trace:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            phase.traced_peak_mb = peak / (1024.0 * 1024.0)
        phase.peak_rss_mb = peak_rss_mb()


def _child(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    try:
        conn.send(("ok", fn(*args, **kwargs)))
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        import traceback

        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def isolated(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn(*args, **kwargs)`` in a fresh interpreter; return its (picklable) result.

    ``fn`` must be a module-level function. Use it so that a phase's peak
    RSS is measured from a clean start. ``BENCH_INPROCESS=1`` runs in this
    process instead (debugging).
    """
    if os.environ.get("BENCH_INPROCESS", "").strip() == "1":
        return fn(*args, **kwargs)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs))
    proc.start()
    child.close()
    try:
        status, value = parent.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"bench phase {getattr(fn, '__name__', fn)} died (exit code {proc.exitcode})") from None
    proc.join()
    if status != "ok":
        raise RuntimeError(f"bench phase {getattr(fn, '__name__', fn)} failed: {value}")
    return value


# ----------------------------------------------------------------- latency


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linear interpolation."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    k = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(k)
    hi = math.ceil(k)
    if lo == hi:
        return float(sorted_values[lo])
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latency_summary(values_s: Sequence[float]) -> dict[str, float]:
    """n, median, p99 and max of latencies given in seconds, reported in milliseconds."""
    v = sorted(values_s)
    return {
        "n": len(v),
        "median_ms": percentile(v, 50) * 1000.0,
        "p99_ms": percentile(v, 99) * 1000.0,
        "max_ms": (v[-1] * 1000.0) if v else math.nan,
    }


# ----------------------------------------------------------------- stores


@contextlib.contextmanager
def temp_dir(prefix: str = "skillfund-bench-") -> Iterator[Path]:
    base = os.environ.get("BENCH_TMP") or None
    with tempfile.TemporaryDirectory(prefix=prefix, dir=base) as d:
        yield Path(d)


@contextlib.contextmanager
def sqlite_store(prefix: str = "skillfund-bench-") -> Iterator[Any]:
    """Settings for a fresh SQLite store in a temporary directory."""
    from ops.settings import Settings

    with temp_dir(prefix) as d:
        yield Settings(data_dir=d / "data", database_url=None, database_schema=None)


def pg_url() -> str:
    return os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL


def pg_available(url: str | None = None) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg not installed ({exc})"
    try:
        with psycopg.connect(url or pg_url(), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1").fetchone()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


@contextlib.contextmanager
def pg_schema(url: str | None = None, prefix: str = "sf_bench_") -> Iterator[tuple[str, str]]:
    """A fresh schema in the test database, dropped afterwards: yields (url, schema)."""
    import psycopg
    from psycopg import sql

    url = url or pg_url()
    schema = f"{prefix}{secrets.token_hex(5)}"
    with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield url, schema
    finally:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '15s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextlib.contextmanager
def postgres_store(url: str | None = None) -> Iterator[Any]:
    """Settings for a fresh PostgreSQL schema (dropped afterwards)."""
    from ops.settings import Settings

    with pg_schema(url) as (u, schema), temp_dir() as d:
        yield Settings(data_dir=d / "data", database_url=u, database_schema=schema)


# ----------------------------------------------------------------- output


def fmt_rate(rate: float | None) -> str:
    if rate is None or rate != rate:
        return "-"
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M/s"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k/s"
    return f"{rate:.0f}/s"


def ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return a / b


def print_phases(title: str, phases: Sequence[Phase], out: Any = None) -> None:
    out = out or sys.stdout
    print(f"\n== {title}", file=out)
    print(f"{'phase':<44} {'records':>9} {'wall s':>8} {'rate':>10} {'peak RSS MiB':>13}", file=out)
    for p in phases:
        rss = "-" if p.peak_rss_mb is None else f"{p.peak_rss_mb:.0f}"
        note = " (subset, extrapolated)" if p.extrapolated else ""
        print(f"{p.name:<44} {p.records:>9} {p.wall_s:>8.2f} {fmt_rate(p.rate):>10} {rss:>13}{note}", file=out)
        if p.traced_peak_mb is not None:
            print(f"{'':<44} tracemalloc peak {p.traced_peak_mb:.1f} MiB", file=out)


def dump_json(result: dict[str, Any], name: str) -> Path | None:
    """Write a result under bench/out/<name>.json when ``BENCH_OUT`` names a directory."""
    out = os.environ.get("BENCH_OUT", "").strip()
    if not out:
        return None
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return path
