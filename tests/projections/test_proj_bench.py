"""The projection bench runs end to end on a tiny store (BENCH_EVENTS small)."""

from __future__ import annotations

import io


def test_bench_projections_smoke(tmp_path, monkeypatch, hledger_bin):
    monkeypatch.setenv("BENCH_EVENTS", "2500")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCH_INPROCESS", "1")  # no spawned interpreters in the test
    from bench import projections as bench

    out = io.StringIO()
    result = bench.run(out=out)
    text = out.getvalue()
    assert "(b) rebuild all projections" in text and "hledger -f journal balance" in text
    assert "equal skillfund balances to the fen: yes" in text
    assert result["rebuild"]["positions"] >= 2500 and result["hledger_agrees"] is True
    assert result["store"]["cached"] is False
    again = bench.run(out=io.StringIO())  # the store is reused from the cache
    assert again["store"]["cached"] is True
    assert again["rebuild"]["positions"] == result["rebuild"]["positions"]
