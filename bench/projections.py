"""Projection rebuild throughput: every finance view rebuilt from log position 0.

Input: a ledger store (SQLite) of at least ``BENCH_EVENTS`` (default
1,000,000) ledger events (log positions), built once from the simulator
(``ops.simulate.simulate(..., attendance_heavy=True)``: most records are
sign-ins, as in real traffic) and ingested with ``streams.intake`` in batches
of 1,000. It is cached under ``bench/out/`` (``BENCH_CACHE`` names another
directory) and reused while it holds enough events.

Then, each phase in a fresh interpreter so that its peak RSS is its own:

(a) read: the feed alone (``feed.read`` through the runner's SQLite reader),
    no projection — the floor;
(b) rebuild: every projection (balances, 台账, reports, bank lines, journal)
    from 0 into a fresh ``views.sqlite`` (WAL, synchronous=FULL), chunks of
    10,000 positions, one transaction each; target >= 50,000 events/s.
    Facts of record types no projection reads (attendance, most of the log)
    are filtered out in SQL; (b0) is the same rebuild with that filter off,
    every fact fetched and decoded, for comparison;
(c) export: the hledger journal written from the views;
(d) hledger: the real ``hledger -f journal balance`` (its own time and peak
    RSS), and a check that its fund balances equal ``balances`` to the fen.

Printed: a small table of events/s and peak memory per phase.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/projections.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, env_int, fmt_rate, isolated, peak_rss_mb, tracemalloc_wanted

EVENTS_ENV = "BENCH_EVENTS"
CACHE_ENV = "BENCH_CACHE"
EVENTS_DEFAULT = 1_000_000
TARGET_EVENTS_PER_S = 50_000
BATCH = 1_000
PROBE_CLASSES = 6
SEED = 20240501
REGION = "420100"


def cache_dir() -> Path:
    raw = os.environ.get(CACHE_ENV, "").strip()
    return Path(raw) if raw else ROOT / "bench" / "out"


def _settings(data_dir: Path) -> Any:
    from ops.settings import Settings

    return Settings(data_dir=data_dir, database_url=None, database_schema=None)


def _ingest(records_path: Path, data_dir: Path) -> dict[str, Any]:
    from ledger.application import Ledger
    from projections import feed
    from streams.intake import ingest_paths

    settings = _settings(data_dir)
    ledger = Ledger(env=settings.eventsourcing_env("LEDGER"))
    try:
        t0 = time.perf_counter()
        summary = ingest_paths(ledger, [records_path], batch_size=BATCH)
        wall = time.perf_counter() - t0
        return {"accepted": summary.accepted, "head": feed.head(ledger.recorder), "ingest_s": wall}
    finally:
        ledger.close()


def _simulate_to(path: Path, classes: int) -> int:
    from ops.simulate import simulate

    sim = simulate(seed=SEED, classes=classes, fraud_rate=0.02, region=REGION, attendance_heavy=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in sim.records:
            fh.write(json.dumps(r, ensure_ascii=False))
            fh.write("\n")
    return len(sim.records)


def build_store(events: int) -> tuple[Path, dict[str, Any]]:
    """A ledger store with at least ``events`` log positions (cached)."""
    base = cache_dir() / f"projections-{events}"
    marker = base / "built.json"
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("head", 0) >= events and (base / "data").is_dir():
            info["cached"] = True
            return base / "data", info
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    # Probe: events per class of the simulator at this seed and region.
    probe = base / "probe"
    _simulate_to(probe / "records.jsonl", PROBE_CLASSES)
    got = _ingest(probe / "records.jsonl", probe / "data")
    per_class = max(1.0, got["head"] / PROBE_CLASSES)
    shutil.rmtree(probe, ignore_errors=True)
    classes = max(1, math.ceil(events / per_class * 1.15))
    while True:
        shutil.rmtree(base / "data", ignore_errors=True)
        records = isolated(_simulate_to, base / "records.jsonl", classes)
        got = _ingest(base / "records.jsonl", base / "data")
        if got["head"] >= events:
            break
        classes = math.ceil(classes * events / max(1, got["head"]) * 1.02) + 1
    (base / "records.jsonl").unlink(missing_ok=True)
    info = {"events": events, "head": got["head"], "records": records, "accepted": got["accepted"],
            "classes": classes, "ingest_s": got["ingest_s"], "cached": False}
    marker.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return base / "data", info


# ---------------------------------------------------------------- phases (each in a fresh interpreter)


def phase_read(data_dir: str) -> dict[str, Any]:
    from ledger.application import Ledger
    from projections import feed
    from projections.runner import log_for

    ledger = Ledger(env=_settings(Path(data_dir)).eventsourcing_env("LEDGER"))
    try:
        log = log_for(ledger.recorder)
        head = feed.head(log)
        t0 = time.perf_counter()
        n = 0
        for _ in feed.read(log, after=0, upto=head, page=feed.PAGE_MAX):
            n += 1
        wall = time.perf_counter() - t0
        return {"positions": head, "items": n, "wall_s": wall, "peak_rss_mb": peak_rss_mb()}
    finally:
        ledger.close()


def phase_rebuild(data_dir: str, views_path: str, trace: bool, skip_unwanted: bool = True) -> dict[str, Any]:
    import tracemalloc

    from ledger.application import Ledger
    from projections import runner
    from projections.runner import all_projections, rebuild
    from projections.store import SQLiteViewStore

    runner.SKIP_UNWANTED_FACTS = skip_unwanted
    ledger = Ledger(env=_settings(Path(data_dir)).eventsourcing_env("LEDGER"))
    for suffix in ("", "-wal", "-shm"):
        Path(views_path + suffix).unlink(missing_ok=True)
    store = SQLiteViewStore(views_path)
    try:
        if trace:
            tracemalloc.start()
        stats = rebuild(store, ledger.recorder, all_projections())
        traced = None
        if trace:
            traced = tracemalloc.get_traced_memory()[1] / (1024 * 1024)
            tracemalloc.stop()
        return {"positions": stats.positions, "items": stats.items, "chunks": stats.chunks,
                "wall_s": stats.seconds, "peak_rss_mb": peak_rss_mb(), "traced_peak_mb": traced}
    finally:
        store.close()
        ledger.close()


def phase_export(views_path: str, journal_path: str) -> dict[str, Any]:
    from projections import books
    from projections.balances import balances
    from projections.store import SQLiteViewStore

    store = SQLiteViewStore(views_path)
    try:
        t0 = time.perf_counter()
        with open(journal_path, "w", encoding="utf-8", newline="\n") as fh:
            funds = books.export(store, fh, fmt="hledger")
        wall = time.perf_counter() - t0
        txns = store.query("SELECT COUNT(*) FROM view_journal")[0][0]
        rows = {f"assets:fund:{r['fund_source']}:{r['region']}": r["balance"] for r in balances(store)}
        return {"txns": int(txns), "wall_s": wall, "peak_rss_mb": peak_rss_mb(), "funds": funds, "balances": rows}
    finally:
        store.close()


def run_hledger(journal_path: str) -> dict[str, Any]:
    exe = shutil.which("hledger")
    if exe is None:
        return {"skipped": "hledger not on PATH"}
    # os.wait4 gives this child's own rusage (RUSAGE_CHILDREN would include the
    # earlier bench phases' interpreters).
    out_path = journal_path + ".balance.csv"
    with open(out_path, "w", encoding="utf-8") as fh_out, open(out_path + ".err", "w", encoding="utf-8") as fh_err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([exe, "-f", journal_path, "balance", "assets:fund", "--flat", "-O", "csv"],
                                stdout=fh_out, stderr=fh_err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = Path(out_path).read_text(encoding="utf-8")
    if proc.returncode != 0:
        raise RuntimeError(f"hledger balance failed: {Path(out_path + '.err').read_text()[:2000]}")
    got: dict[str, int] = {}
    for row in csv.reader(io.StringIO(stdout)):
        if len(row) == 2 and row[0].startswith("assets:fund:"):
            amount = row[1].replace("CNY", "").replace(",", "").strip()
            whole, _, frac = amount.lstrip("-").partition(".")
            fen = int(whole) * 100 + int((frac + "00")[:2])
            got[row[0]] = -fen if amount.startswith("-") else fen
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0, "balances": got}


# ---------------------------------------------------------------- main


def run(events: int | None = None, out: Any = None) -> dict[str, Any]:
    out = out or sys.stdout
    events = events or env_int(EVENTS_ENV, EVENTS_DEFAULT)
    t0 = time.perf_counter()
    data_dir, info = build_store(events)
    build_s = time.perf_counter() - t0
    work = data_dir.parent
    views_path = str(work / "views-bench.sqlite")
    journal_path = str(work / "books.journal")

    read = isolated(phase_read, str(data_dir))
    rb_all = isolated(phase_rebuild, str(data_dir), views_path, False, False)
    rb = isolated(phase_rebuild, str(data_dir), views_path, tracemalloc_wanted())
    ex = isolated(phase_export, views_path, journal_path)
    hl = run_hledger(journal_path)
    agree = None
    if "balances" in hl:
        agree = hl["balances"] == {k: v for k, v in ex["balances"].items()}

    rate = rb["positions"] / rb["wall_s"] if rb["wall_s"] > 0 else float("inf")
    print(f"\n== projections: rebuild every finance view from 0 (SQLite, {rb['positions']:,} events)", file=out)
    src = "cached" if info.get("cached") else f"built in {build_s:.0f} s"
    print(f"store: {info['head']:,} events from {info.get('records', '?'):,} simulated records ({src}); "
          f"{data_dir}", file=out)
    print(f"{'phase':<40} {'events':>10} {'items':>10} {'wall s':>8} {'events/s':>10} {'peak RSS MiB':>13}", file=out)
    print(f"{'(a) read the feed only':<40} {read['positions']:>10} {read['items']:>10} {read['wall_s']:>8.2f} "
          f"{fmt_rate(read['positions'] / read['wall_s'] if read['wall_s'] else None):>10} {read['peak_rss_mb']:>13.0f}", file=out)
    rate_all = rb_all["positions"] / rb_all["wall_s"] if rb_all["wall_s"] > 0 else float("inf")
    print(f"{'(b0) rebuild, every fact decoded':<40} {rb_all['positions']:>10} {rb_all['items']:>10} "
          f"{rb_all['wall_s']:>8.2f} {fmt_rate(rate_all):>10} {rb_all['peak_rss_mb']:>13.0f}", file=out)
    print(f"{'(b) rebuild all projections':<40} {rb['positions']:>10} {rb['items']:>10} {rb['wall_s']:>8.2f} "
          f"{fmt_rate(rate):>10} {rb['peak_rss_mb']:>13.0f}", file=out)
    if rb.get("traced_peak_mb") is not None:
        print(f"{'':<40} tracemalloc peak {rb['traced_peak_mb']:.1f} MiB", file=out)
    print(f"{'(c) export hledger journal':<40} {ex['txns']:>10} {'txns':>10} {ex['wall_s']:>8.2f} "
          f"{'':>10} {ex['peak_rss_mb']:>13.0f}", file=out)
    if "skipped" in hl:
        print(f"{'(d) hledger balance':<40} skipped: {hl['skipped']}", file=out)
    else:
        print(f"{'(d) hledger -f journal balance':<40} {ex['txns']:>10} {'txns':>10} {hl['wall_s']:>8.2f} "
              f"{'':>10} {hl['peak_rss_mb']:>13.0f}", file=out)
        print(f"hledger fund balances equal skillfund balances to the fen: {'yes' if agree else 'NO'}", file=out)
    verdict = "meets" if rate >= TARGET_EVENTS_PER_S else "BELOW"
    print(f"target >= {TARGET_EVENTS_PER_S:,} events/s on SQLite: {verdict} ({rate:,.0f} events/s)", file=out)
    return {"store": info, "read": read, "rebuild": rb, "rebuild_events_per_s": rate,
            "rebuild_unfiltered": rb_all, "rebuild_unfiltered_events_per_s": rate_all,
            "export": {k: v for k, v in ex.items() if k not in ("funds", "balances")},
            "hledger": {k: v for k, v in hl.items() if k != "balances"}, "hledger_agrees": agree}


def main() -> None:
    result = run()
    from bench.common import dump_json

    dump_json(result, "projections")


if __name__ == "__main__":
    main()
