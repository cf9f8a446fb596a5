"""Detection: throughput on the embedded path, and alert latency.

Input: ``BENCH_RECORDS`` (default 200,000) simulated records, attendance-heavy,
with a fraud rate of ``BENCH_FRAUD_RATE`` (default 0.3, so that there are
enough alerts to say something about latency).

1. Throughput (target ≥ 50,000 attendance records/s). The records are
   ingested into a fresh SQLite store (batches of 1,000: the ingest rate of
   this run is printed beside), then:
   - observe only: feed items already read from the store go through
     ``DetectionEngine.observe`` (every detector of the registry);
     records/s and attendance records/s; also per detector, each alone;
   - full run: ``detectors.runner.detect`` (read the feed, observe, store
     alerts with tracking) from an empty alert store.
2. Latency from acceptance to a stored alert. A fresh store; the first
   ``BENCH_LATENCY_RECORDS`` records (default all) are ingested in batches of
   ``BENCH_LATENCY_BATCH`` (default 100) and a warm ``DetectionSession``
   catches up after each batch. For every alert raised, latency = time its
   ``catch_up`` returned (the alerts are stored by then) − time the ledger
   batch holding the record that made it true committed. Median and p99;
   the ingest rate of this small-batch run (ingest + detection) is beside.
"""

from __future__ import annotations

import bisect
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/detect.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    bench_records,
    dump_json,
    env_int,
    fmt_rate,
    isolated,
    latency_summary,
    measure,
    peak_rss_mb,
    temp_dir,
)

TARGET_ATTENDANCE_RATE = 50_000
SEED = 20240202
LATENCY_BATCH = 100


def _fraud_rate() -> float:
    import os

    raw = os.environ.get("BENCH_FRAUD_RATE", "").strip()
    return float(raw) if raw else 0.3


def generate(path: Path, records: int, fraud_rate: float) -> dict[str, Any]:
    """Write at least ``records`` simulated attendance-heavy records to ``path``."""
    import json
    import math

    from ops.simulate import simulate

    probe = simulate(seed=SEED, classes=4, fraud_rate=0.0, attendance_heavy=True)
    per_class = max(1.0, len(probe.records) / 4)
    classes = max(2, math.ceil(records / per_class * 1.05))
    while True:
        sim = simulate(seed=SEED, classes=classes, fraud_rate=fraud_rate, attendance_heavy=True)
        if len(sim.records) >= records or classes > 1_000_000:
            break
        classes = math.ceil(classes * records / max(1, len(sim.records)) * 1.05) + 1
    with open(path, "w", encoding="utf-8") as fh:
        for rec in sim.records:
            fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
    attendance = sum(1 for r in sim.records if r.get("type") == "attendance")
    return {"records": len(sim.records), "attendance": attendance, "classes": classes, "labels": len(sim.labels)}


def _open(data_dir: str):
    from detectors.alerts import Alerts
    from ops.runtime import open_ledger
    from ops.settings import Settings

    settings = Settings(data_dir=Path(data_dir), database_url=None, database_schema=None)
    ledger = open_ledger(settings)
    alerts = Alerts(env=settings.eventsourcing_env(Alerts.name))
    return ledger, alerts


# ----------------------------------------------------------------- 1. throughput


def phase_throughput(path: str, data_dir: str, per_detector: bool = True) -> dict[str, Any]:
    from detectors.engine import DetectionEngine
    from detectors.registry import all_detectors
    from detectors.runner import detect
    from projections import feed
    from projections.feed import Accepted
    from streams.intake import ingest_paths

    ledger, alerts = _open(data_dir)
    with measure("ingest (sqlite, batch 1000)") as ing:
        summary = ingest_paths(ledger, [Path(path)], batch_size=1_000)
        ing.records = summary.accepted + summary.duplicate + summary.rejected_total

    with measure("read feed") as rd:
        items = list(feed.read(ledger.recorder, page=5_000))
        rd.records = len(items)
    attendance = sum(1 for it in items if type(it) is Accepted and it.type == "attendance")

    engine = DetectionEngine(all_detectors(), strict=True)
    observe = engine.observe
    drafts = 0
    with measure("engine.observe (all detectors)") as obs:
        for it in items:
            got = observe(it)
            if got:
                drafts += len(got)
        obs.records = len(items)

    detectors: dict[str, float] = {}
    if per_detector:
        for d in all_detectors():
            one = d.observe
            t0 = time.perf_counter()
            for it in items:
                one(it)
            detectors[f"{d.name}/{d.version}"] = time.perf_counter() - t0

    with measure("detect() from the store (read + observe + store)") as full:
        stats = detect(ledger.recorder, alerts)
        full.records = stats.items
    return {
        "ingest": ing.to_dict(),
        "read": rd.to_dict(),
        "observe": obs.to_dict(),
        "full": full.to_dict(),
        "items": len(items),
        "attendance": attendance,
        "drafts": drafts,
        "alerts_new": stats.new,
        "attendance_rate_observe": attendance / obs.wall_s if obs.wall_s else None,
        "attendance_rate_full": attendance / full.wall_s if full.wall_s else None,
        "per_detector_s": detectors,
        "peak_rss_mb": peak_rss_mb(),
    }


# ----------------------------------------------------------------- 2. latency


def phase_latency(path: str, data_dir: str, batch: int, limit: int | None) -> dict[str, Any]:
    from detectors.runner import DetectionSession
    from ledger.application import Submission

    ledger, alerts = _open(data_dir)
    session = DetectionSession(ledger.recorder, alerts)
    engine = session.engine
    inner = engine.observe
    seen: dict[str, int] = {}  # alert key -> position of the draft that first raised it
    fresh: list[tuple[str, int]] = []

    def spy(item):
        got = inner(item)
        for d in got:
            if d.key not in seen:
                seen[d.key] = d.position
                fresh.append((d.kind, d.position))
        return got

    engine.observe = spy  # type: ignore[method-assign]
    commits: list[tuple[int, float]] = []  # (last position of the batch, commit time)
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    records = 0
    t_start = time.perf_counter()
    with open(path, "rb") as fh:
        pending: list[Submission] = []
        line = 0
        for raw in fh:
            line += 1
            if limit is not None and line > limit:
                break
            pending.append(Submission.from_text(raw.decode("utf-8").rstrip("\r\n"), line=line, source=path))
            if len(pending) == batch:
                records += _step(ledger, session, pending, commits, fresh, latencies, by_kind)
                pending = []
        if pending:
            records += _step(ledger, session, pending, commits, fresh, latencies, by_kind)
    wall = time.perf_counter() - t_start
    catch_up_s = sum(c for c in _CATCH_UP)
    _CATCH_UP.clear()
    return {
        "records": records,
        "batch": batch,
        "wall_s": wall,
        "rate": records / wall if wall else None,
        "catch_up_s": catch_up_s,
        "alerts": len(latencies),
        "latency": latency_summary(latencies),
        "latency_by_kind": {k: latency_summary(v) for k, v in sorted(by_kind.items())},
        "peak_rss_mb": peak_rss_mb(),
    }


_CATCH_UP: list[float] = []


def _step(ledger, session, batch, commits, fresh, latencies, by_kind) -> int:
    result = ledger.submit(batch)
    t_commit = time.perf_counter()
    if result.last_position is not None:
        commits.append((result.last_position, t_commit))
    t0 = time.perf_counter()
    session.catch_up()
    t_stored = time.perf_counter()
    _CATCH_UP.append(t_stored - t0)
    if fresh:
        ends = [c[0] for c in commits]
        for kind, position in fresh:
            i = bisect.bisect_left(ends, position)
            if i == len(commits):  # cannot happen: a draft comes from a stored record
                continue
            lat = t_stored - commits[i][1]
            latencies.append(lat)
            by_kind.setdefault(kind, []).append(lat)
        fresh.clear()
    return len(batch)


# ----------------------------------------------------------------- run


def run(records: int | None = None, *, out: Any = None) -> dict[str, Any]:
    out = out or sys.stdout
    records = records or bench_records()
    fraud = _fraud_rate()
    batch = env_int("BENCH_LATENCY_BATCH", LATENCY_BATCH)
    limit = env_int("BENCH_LATENCY_RECORDS", 0) or None  # default: every record
    result: dict[str, Any] = {}
    with temp_dir("skillfund-bench-detect-") as d:
        path = d / "records.jsonl"
        info = generate(path, records, fraud)
        result["input"] = info
        print(
            f"input: {info['records']} records ({info['attendance']} attendance, {info['classes']} classes, "
            f"fraud rate {fraud}, {info['labels']} labels)",
            file=out,
        )
        tp = isolated(phase_throughput, str(path), str(d / "throughput"))
        result["throughput"] = tp
        obs, full, ing = tp["observe"], tp["full"], tp["ingest"]
        print("\n== detector throughput (embedded, SQLite)", file=out)
        print(f"ingest, batch 1000:            {fmt_rate(ing['rate']):>10} records      ({ing['wall_s']:.2f} s)", file=out)
        print(f"read feed from the store:      {fmt_rate(tp['read']['rate']):>10} items        ({tp['read']['wall_s']:.2f} s)", file=out)
        print(
            f"engine.observe, all detectors: {fmt_rate(obs['rate']):>10} items, "
            f"{fmt_rate(tp['attendance_rate_observe'])} attendance (target >= {fmt_rate(TARGET_ATTENDANCE_RATE)})",
            file=out,
        )
        print(
            f"detect() read+observe+store:   {fmt_rate(full['rate']):>10} items, "
            f"{fmt_rate(tp['attendance_rate_full'])} attendance; {tp['alerts_new']} alerts stored",
            file=out,
        )
        if tp["per_detector_s"]:
            print("per detector, alone over the same items:", file=out)
            for name, s in sorted(tp["per_detector_s"].items(), key=lambda kv: -kv[1]):
                print(f"  {name:<28} {s:7.2f} s  {fmt_rate(tp['items'] / s if s else None):>10} items", file=out)
        print(f"peak RSS {tp['peak_rss_mb']:.0f} MiB", file=out)

        lat = isolated(phase_latency, str(path), str(d / "latency"), batch, limit)
        result["latency"] = lat
        L = lat["latency"]
        print(f"\n== latency: acceptance -> alert stored (batches of {batch}, warm DetectionSession)", file=out)
        print(
            f"ingest + catch_up after every batch: {fmt_rate(lat['rate'])} records "
            f"({lat['records']} records, {lat['wall_s']:.2f} s, of which catch_up {lat['catch_up_s']:.2f} s)",
            file=out,
        )
        print(f"alerts {L['n']}: median {L['median_ms']:.1f} ms, p99 {L['p99_ms']:.1f} ms, max {L['max_ms']:.1f} ms", file=out)
        for kind, s in lat["latency_by_kind"].items():
            print(f"  {kind:<28} n={s['n']:<4} median {s['median_ms']:8.1f} ms  p99 {s['p99_ms']:8.1f} ms", file=out)
    dump_json(result, "detect")
    return result


def main() -> None:
    run()


if __name__ == "__main__":
    main()
