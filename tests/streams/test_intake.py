"""Intake from files and stdin: every line accepted or rejected with its line number."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ledger.application import Ledger
from ops.runtime import open_ledger
from streams.intake import LINE_BYTES_MAX, batched, ingest_paths, ingest_stream, read_submissions

EXAMPLES = Path("/work/shared/spec/examples.jsonl")
for _p in Path(__file__).resolve().parents:
    if (_p / "shared" / "spec" / "examples.jsonl").exists():
        EXAMPLES = _p / "shared" / "spec" / "examples.jsonl"
        break


def good() -> list[dict]:
    return [json.loads(x) for x in EXAMPLES.read_text(encoding="utf-8").splitlines() if x.strip()]


def bad_lines(recs: list[dict]) -> list[tuple[str, str, str | None]]:
    """(line text, expected reason, expected field) — every malformed case of the contract."""
    att = next(r for r in recs if r["type"] == "attendance")
    appr = next(r for r in recs if r["type"] == "appropriation")
    claim = next(r for r in recs if r["type"] == "claim")
    enr = next(r for r in recs if r["type"] == "enrollment")

    def mod(r: dict, **kw) -> str:
        d = dict(r, **kw)
        return json.dumps({k: v for k, v in d.items() if v is not ...}, ensure_ascii=False)

    return [
        ("this is not json", "malformed", None),
        ("[1, 2, 3]", "malformed", None),
        (mod(appr, id="b1", type="grant"), "malformed", "type"),
        (mod(appr, id="b2", amount=5000000), "malformed", "amount"),
        (mod(appr, id="b3", amount="12.345"), "malformed", "amount"),
        (mod(appr, id="b4", amount="-5.00"), "malformed", "amount"),
        (mod(appr, id="b5", at="2024-01-02T09:00:00"), "malformed", "at"),
        (mod(appr, id="b6", fund_source="lottery"), "malformed", "fund_source"),
        (mod(appr, id="b7", document=...), "malformed", "document"),
        (mod(appr, id="bad id with spaces"), "malformed", "id"),
        (mod(att, id="b8", face_score=...), "malformed", "face_score"),
        (mod(att, id="b9", sign_out="2024-01-15 11:33:00"), "malformed", "sign_out"),
        (mod(claim, id="b10", class_id=...), "malformed", "class_id"),
        (mod(enr, id="b11", trainee_id="320505199706010301"), "invalid_id", "trainee_id"),
        (mod(enr, id="b12", trainee_id="320505199702300302"), "invalid_id", "trainee_id"),
        (mod(claim, id="b13", claimant_id="91320505DC4MTWLHWA"), "invalid_id", "claimant_id"),
        (mod(appr, id="b14", region="110000"), "unknown_region", "region"),
    ]


def write_mix(path: Path) -> tuple[list[int], dict[int, tuple[str, str | None]]]:
    recs = good()
    bad = bad_lines(recs)
    out, good_lines, bad_at = [], [], {}
    # interleave: a bad line after every good one, plus blank lines that are ignored
    for i, r in enumerate(recs):
        out.append(json.dumps(r, ensure_ascii=False))
        good_lines.append(len(out))
        if i < len(bad):
            text, reason, field = bad[i]
            out.append(text)
            bad_at[len(out)] = (reason, field)
        if i % 5 == 0:
            out.append("")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return good_lines, bad_at


def test_mixed_file_every_bad_line_rejected_with_line_and_field(store_env, tmp_path):
    path = tmp_path / "mix.jsonl"
    good_lines, bad_at = write_mix(path)
    ledger = open_ledger(store_env)
    outcomes = []
    summary = ingest_paths(ledger, [path], batch_size=4, on_batch=lambda r: outcomes.extend(r.outcomes))
    assert summary.accepted == len(good_lines)
    assert summary.rejected_total == len(bad_at)
    assert sorted(o.line for o in outcomes if o.status == "accepted") == good_lines
    rejected = {o.line: o for o in outcomes if o.status == "rejected"}
    assert set(rejected) == set(bad_at)
    for line, (reason, field) in bad_at.items():
        o = rejected[line]
        assert o.reason == reason, (line, o)
        if field is not None:
            assert o.field == field, (line, o)
            assert field.split("[")[0] in o.detail
    # durable: a fresh ledger lists the same rejections with their line numbers
    stored = {r.line: r.reason for r in open_ledger(store_env).open_rejections()}
    assert stored == {line: reason for line, (reason, _) in bad_at.items()}


def test_stdin_style_stream_and_blank_lines():
    data = b"\n\n" + EXAMPLES.read_bytes() + b"\n   \n"
    subs = list(read_submissions(io.BytesIO(data), "<stdin>"))
    assert len(subs) == len(good())
    assert subs[0].line == 3 and subs[0].record is not None


def test_overlong_and_non_utf8_lines_are_rejected_not_fatal():
    data = b'{"a": "' + b"x" * (LINE_BYTES_MAX + 10) + b'"}\n' + b"\xff\xfe\n" + EXAMPLES.read_bytes()
    subs = list(read_submissions(io.BytesIO(data), "f"))
    assert subs[0].error is not None and subs[0].error.reason == "malformed" and subs[0].line == 1
    assert "longer than" in subs[0].error.detail
    assert subs[1].error is not None and subs[1].line == 2 and "UTF-8" in subs[1].error.detail
    assert all(s.record is not None for s in subs[2:])


def test_batches_are_bounded():
    with pytest.raises(ValueError):
        list(batched([], 0))
    with pytest.raises(ValueError):
        list(batched([], 10_001))
    assert [len(b) for b in batched(range(7), 3)] == [3, 3, 1]


def test_ingest_stream_counts_duplicates_on_rerun(tmp_path):
    env = {"LEDGER_PERSISTENCE_MODULE": "eventsourcing.sqlite", "LEDGER_SQLITE_DBNAME": str(tmp_path / "l.sqlite")}
    first = ingest_stream(Ledger(env=env), io.BytesIO(EXAMPLES.read_bytes()), "ex", batch_size=5)
    second = ingest_stream(Ledger(env=env), io.BytesIO(EXAMPLES.read_bytes()), "ex", batch_size=7)
    assert (first.accepted, first.duplicate) == (21, 0)
    assert (second.accepted, second.duplicate) == (0, 21)
