"""Ingest throughput: skillfund against a raw durable baseline and a naive
event-sourced baseline, on SQLite and on PostgreSQL, in the same run.

The input is ``BENCH_RECORDS`` (default 200,000) contract records shaped
like real traffic: a simulated year with attendance-heavy classes (most
records are sign-ins), written once to a JSON Lines file. Then, each phase in
a fresh interpreter (so its peak RSS is its own):

(a) skillfund: ``streams.intake.ingest_paths`` into a fresh SQLite store,
    batches of 1,000 (one transaction each);
(b) raw SQLite: ``executemany`` of the same lines into
    ``(line_no INTEGER PRIMARY KEY, body TEXT)``, WAL, ``synchronous=FULL``
    set explicitly, 1,000 rows a transaction: the durable floor for storing
    these bytes at all;
(c) naive event sourcing: one minimal aggregate and one ``save()`` per record
    on a SQLite file, on the first ``BENCH_NAIVE_RECORDS`` (default 20,000)
    records, rate extrapolated;
(d) the same three on PostgreSQL (a fresh schema in the ``test`` database,
    dropped afterwards): skillfund ingest, raw psycopg ``executemany`` 1,000
    rows a transaction, naive one-save-per-record.

Printed: records/s and peak RSS per phase, and the ratios skillfund/raw
(target ≥ 0.5× raw durable SQLite) and skillfund/naive (target ≥ 4×).
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/ingest.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from bench.common import (
    Phase,
    bench_records,
    dump_json,
    env_int,
    fmt_rate,
    isolated,
    measure,
    pg_available,
    pg_schema,
    print_phases,
    ratio,
    temp_dir,
)

BATCH = 1_000
NAIVE_DEFAULT = 20_000
TARGET_VS_RAW = 0.5
TARGET_VS_NAIVE = 4.0
SEED = 20240101


# ----------------------------------------------------------------- input


def generate(path: Path, records: int, *, seed: int = SEED, region: str = "320500") -> dict[str, Any]:
    """Write at least ``records`` simulated records (attendance-heavy) to ``path``."""
    from ops.simulate import simulate

    probe = simulate(seed=seed, classes=4, fraud_rate=0.02, region=region, attendance_heavy=True)
    per_class = max(1.0, len(probe.records) / 4)
    classes = max(2, math.ceil(records / per_class * 1.05))
    while True:
        sim = simulate(seed=seed, classes=classes, fraud_rate=0.02, region=region, attendance_heavy=True)
        if len(sim.records) >= records or classes > 1_000_000:
            break
        classes = math.ceil(classes * records / max(1, len(sim.records)) * 1.05) + 1
    counts: dict[str, int] = {}
    with open(path, "w", encoding="utf-8") as fh:
        for rec in sim.records:
            line = rec if isinstance(rec, str) else json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
            fh.write(line)
            fh.write("\n")
            t = _type_of(rec)
            counts[t] = counts.get(t, 0) + 1
    return {"records": len(sim.records), "classes": classes, "by_type": counts, "bytes": path.stat().st_size}


def _type_of(rec: Any) -> str:
    if isinstance(rec, dict):
        return str(rec.get("type"))
    try:
        return str(json.loads(rec).get("type"))
    except Exception:  # noqa: BLE001
        return "?"


def _lines(path: Path, limit: int | None = None):
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if limit is not None and n > limit:
                return
            yield n, raw.decode("utf-8").rstrip("\r\n")


# ----------------------------------------------------------------- phases (each in its own interpreter)


def _settings(data_dir: str, url: str | None, schema: str | None):
    from ops.settings import Settings

    return Settings(data_dir=Path(data_dir), database_url=url, database_schema=schema)


def phase_skillfund(path: str, data_dir: str, url: str | None = None, schema: str | None = None, batch: int = BATCH) -> Phase:
    from ops.runtime import open_ledger
    from streams.intake import ingest_paths

    ledger = open_ledger(_settings(data_dir, url, schema))
    with measure(f"skillfund ingest ({'postgres' if url else 'sqlite'}, batch {batch})") as p:
        summary = ingest_paths(ledger, [Path(path)], batch_size=batch)
        p.records = summary.accepted + summary.duplicate + summary.rejected_total
    p.extra = {"accepted": summary.accepted, "rejected": summary.rejected, "batches": summary.batches}
    _close(ledger)
    return p


def phase_raw_sqlite(path: str, db: str, batch: int = BATCH) -> Phase:
    conn = sqlite3.connect(db, isolation_level=None)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.execute("PRAGMA synchronous=FULL")
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    conn.execute("CREATE TABLE records (line_no INTEGER PRIMARY KEY, body TEXT)")
    with measure(f"raw sqlite3 executemany (WAL, FULL, {batch}/txn)") as p:
        n = 0
        rows: list[tuple[int, str]] = []
        for row in _lines(Path(path)):
            rows.append(row)
            if len(rows) == batch:
                _sqlite_txn(conn, rows)
                n += len(rows)
                rows = []
        if rows:
            _sqlite_txn(conn, rows)
            n += len(rows)
        p.records = n
    p.extra = {"journal_mode": mode, "synchronous": sync}
    conn.close()
    return p


def _sqlite_txn(conn: sqlite3.Connection, rows: list[tuple[int, str]]) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO records (line_no, body) VALUES (?, ?)", rows)
    conn.execute("COMMIT")


class NaiveRecord(Aggregate):
    """The minimal aggregate of the naive baseline: one per input record."""

    def __init__(self, line_no: int, body: str) -> None:
        self.line_no = line_no
        self.body = body


class Naive(Application):
    name = "Naive"  # env prefix NAIVE_: its own table


def phase_naive(path: str, data_dir: str, limit: int, url: str | None = None, schema: str | None = None) -> Phase:
    settings = _settings(data_dir, url, schema)
    app = Naive(env=settings.eventsourcing_env(Naive.name))
    with measure(f"naive eventsourcing, 1 save/record ({'postgres' if url else 'sqlite'})") as p:
        n = 0
        for line_no, body in _lines(Path(path), limit):
            app.save(NaiveRecord(line_no, body))
            n += 1
        p.records = n
    p.extrapolated = True
    _close(app)
    return p


def phase_raw_pg(path: str, url: str, schema: str, batch: int = BATCH) -> Phase:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, connect_timeout=5) as conn:
        table = sql.Identifier(schema, "raw_records")
        conn.execute(sql.SQL("CREATE TABLE {} (line_no INTEGER PRIMARY KEY, body TEXT)").format(table))
        conn.commit()
        insert = sql.SQL("INSERT INTO {} (line_no, body) VALUES (%s, %s)").format(table)
        sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        conn.commit()
        with measure(f"raw psycopg executemany ({batch}/txn)") as p:
            n = 0
            rows: list[tuple[int, str]] = []
            with conn.cursor() as cur:
                for row in _lines(Path(path)):
                    rows.append(row)
                    if len(rows) == batch:
                        with conn.transaction():
                            cur.executemany(insert, rows)
                        n += len(rows)
                        rows = []
                if rows:
                    with conn.transaction():
                        cur.executemany(insert, rows)
                    n += len(rows)
            p.records = n
    p.extra = {"synchronous_commit": sync}
    return p


def _close(app: Any) -> None:
    close = getattr(app, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001 - a bench must still print
            pass


# ----------------------------------------------------------------- run


def run(records: int | None = None, *, postgres: bool | None = None, naive: int | None = None, out: Any = None) -> dict[str, Any]:
    """Generate the input and measure every phase; print and return the figures."""
    out = out or sys.stdout
    records = records or bench_records()
    naive = min(naive or env_int("BENCH_NAIVE_RECORDS", NAIVE_DEFAULT), records)
    result: dict[str, Any] = {"records_target": records}
    with temp_dir("skillfund-bench-ingest-") as d:
        path = d / "records.jsonl"
        with measure("generate (simulate, attendance-heavy)") as g:
            info = generate(path, records)
            g.records = info["records"]
        result["input"] = info
        n = info["records"]
        naive = min(naive, n)
        print(
            f"input: {n} records ({info['bytes'] / 1e6:.1f} MB, {info['classes']} classes; "
            + ", ".join(f"{k} {v}" for k, v in sorted(info["by_type"].items(), key=lambda kv: -kv[1])[:5])
            + ")",
            file=out,
        )
        sqlite_phases = [
            isolated(phase_skillfund, str(path), str(d / "sf-sqlite")),
            isolated(phase_raw_sqlite, str(path), str(d / "raw.sqlite")),
            isolated(phase_naive, str(path), str(d / "naive-sqlite"), naive),
        ]
        result["sqlite"] = _summarise("SQLite", sqlite_phases, out)
        why = pg_available()
        if postgres is False:
            why = "skipped by caller"
        if why is None:
            pg_phases = []
            with pg_schema() as (url, schema):
                pg_phases.append(isolated(phase_skillfund, str(path), str(d / "sf-pg"), url, schema))
            with pg_schema() as (url, schema):
                pg_phases.append(isolated(phase_raw_pg, str(path), url, schema))
            with pg_schema() as (url, schema):
                pg_phases.append(isolated(phase_naive, str(path), str(d / "naive-pg"), naive, url, schema))
            result["postgres"] = _summarise("PostgreSQL", pg_phases, out)
        else:
            print(f"\n== PostgreSQL: not measured ({why})", file=out)
            result["postgres"] = {"skipped": why}
    dump_json(result, "ingest")
    return result


def _summarise(store: str, phases: list[Phase], out: Any) -> dict[str, Any]:
    skillfund, raw, naive = phases
    print_phases(f"ingest into {store}", phases, out)
    vs_raw = ratio(skillfund.rate, raw.rate)
    vs_naive = ratio(skillfund.rate, naive.rate)
    target = f"  (target >= {TARGET_VS_RAW}x raw durable SQLite)" if store == "SQLite" else ""
    print(f"skillfund/raw   {vs_raw:.2f}x{target}" if vs_raw is not None else "skillfund/raw   -", file=out)
    print(
        f"skillfund/naive {vs_naive:.1f}x  (target >= {TARGET_VS_NAIVE}x)" if vs_naive is not None else "skillfund/naive -",
        file=out,
    )
    if skillfund.extra.get("rejected"):
        print(f"note: skillfund rejected {skillfund.extra['rejected']} (the simulator's bad_rate is 0)", file=out)
    return {
        "skillfund": skillfund.to_dict(),
        "raw": raw.to_dict(),
        "naive": naive.to_dict(),
        "skillfund_vs_raw": vs_raw,
        "skillfund_vs_naive": vs_naive,
        "rates": {"skillfund": skillfund.rate, "raw": raw.rate, "naive": naive.rate},
        "readable": {"skillfund": fmt_rate(skillfund.rate), "raw": fmt_rate(raw.rate), "naive": fmt_rate(naive.rate)},
    }


def main() -> None:
    run()


if __name__ == "__main__":
    main()
