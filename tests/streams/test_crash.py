"""SIGKILL of `skillfund ingest` mid-file, then a re-run, gives exactly a clean run's state."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.application import Ledger
from ops.runtime import open_ledger
from ops.settings import Settings
from projections import feed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = next(
    (p / "shared" / "spec" / "examples.jsonl" for p in Path(__file__).resolve().parents if (p / "shared" / "spec" / "examples.jsonl").exists()),
    Path("/work/shared/spec/examples.jsonl"),
)


def big_file(path: Path, n: int) -> None:
    recs = [json.loads(x) for x in EXAMPLES.read_text(encoding="utf-8").splitlines() if x.strip()]
    head = [r for r in recs if r["type"] in ("appropriation", "institution", "project", "class_opened", "class_reviewed", "enrollment")]
    att = next(r for r in recs if r["type"] == "attendance")
    appr = recs[0]
    with path.open("w", encoding="utf-8") as f:
        for r in head:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for i in range(n):
            if i % 97 == 0:
                f.write(json.dumps(dict(appr, id=f"appr-x{i}", amount=f"{i % 1000 + 1}.{i % 100:02d}"), ensure_ascii=False) + "\n")
            elif i % 101 == 0:
                f.write(json.dumps(dict(att, id=f"att-bad{i}", class_id="class-missing")) + "\n")  # unknown_reference
            elif i % 103 == 0:
                f.write("{broken json line\n")
            else:
                f.write(json.dumps(dict(att, id=f"att-x{i}")) + "\n")


def state(settings: Settings) -> tuple:
    ledger: Ledger = open_ledger(settings)
    balances = sorted((a.fund_source, a.region, a.appropriated_fen, a.balance_fen) for a in ledger.fund_accounts())
    facts = sorted((i.type, i.id) for i in feed.read(ledger.recorder, topics=(feed.FACT_TOPIC,)) if isinstance(i, feed.Accepted))
    rejections = sorted((r.record_type or "", r.record_id or "", r.reason, r.line) for r in ledger.open_rejections())
    ledger.close()
    return balances, facts, rejections


def run_ingest(data_dir: Path, path: Path, **popen) -> subprocess.Popen:
    env = dict(os.environ, SKILLFUND_DATA_DIR=str(data_dir), SKILLFUND_BATCH_SIZE="500")
    env.pop("SKILLFUND_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "ingest", str(path), "--no-detect", "--no-project"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen,
    )


def fact_rows(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            return c.execute("SELECT count(*) FROM stored_events").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_mid_file_then_rerun_equals_clean_run(tmp_path):
    path = tmp_path / "big.jsonl"
    big_file(path, 30_000)
    clean_dir, crash_dir = tmp_path / "clean", tmp_path / "crash"

    p = run_ingest(clean_dir, path)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()

    p = run_ingest(crash_dir, path)
    db = crash_dir / "skillfund.sqlite"
    deadline = time.monotonic() + 120
    while fact_rows(db) < 3_000 and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "ingest finished before it could be killed: make the file bigger"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    partial = fact_rows(db)
    assert 0 < partial

    p = run_ingest(crash_dir, path)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()
    assert "duplicate" in out.decode()

    clean, crashed = state(Settings(data_dir=clean_dir)), state(Settings(data_dir=crash_dir))
    assert crashed[0] == clean[0]  # balances to the fen
    assert crashed[1] == clean[1]  # the same accepted records, once each
    assert crashed[2] == clean[2]  # the same durable rejections
    assert len(clean[1]) > 29_000 and len(clean[2]) > 550  # 294 unknown references + 291 broken lines
