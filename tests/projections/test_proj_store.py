"""The view store and the runner: durability settings, exactly-once chunks,
incremental catch-up equal to a rebuild, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from projhelp import dump_views, example_lines

from projections import runner
from projections.balances import BalancesProjection, balances
from projections.runner import Projection, all_projections, catch_up, rebuild
from projections.store import SQLiteViewStore, TrackingConflict, open_store


def test_sqlite_store_is_wal_with_synchronous_full(tmp_path):
    store = SQLiteViewStore(tmp_path / "views.sqlite")
    try:
        assert store.pragma("journal_mode") == "wal"
        assert store.pragma("synchronous") == 2  # FULL
    finally:
        store.close()


def test_open_store_follows_configuration(tmp_path):
    from ops.settings import Settings

    store = open_store(Settings(data_dir=tmp_path / "d", database_url=None, database_schema=None))
    try:
        assert store.kind == "sqlite"
        assert store.path == tmp_path / "d" / "views.sqlite"
    finally:
        store.close()


def test_tracking_table_has_the_agreed_shape(books_factory):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    with b.store.transaction() as tx:
        assert tx.columns("view_tracking") == ["projection", "position", "version"]
    tracked = b.store.tracking()
    head = b.ledger.recorder.max_notification_id()
    assert set(tracked) == {p.name for p in all_projections()}
    assert all(pos == head for pos, _ in tracked.values())
    assert all(t.startswith("view_") for p in all_projections() for t in p.tables)


def test_transaction_rolls_back_on_error(tmp_path):
    store = SQLiteViewStore(tmp_path / "v.sqlite")
    try:
        with store.transaction() as tx:
            tx.execute("CREATE TABLE view_x (a INTEGER)")
        with pytest.raises(RuntimeError):
            with store.transaction() as tx:
                tx.execute("INSERT INTO view_x VALUES (1)")
                raise RuntimeError("boom")
        assert store.query("SELECT COUNT(*) FROM view_x") == [(0,)]
    finally:
        store.close()


def test_catch_up_is_incremental_and_idempotent(books_factory):
    b = books_factory()
    b.submit(example_lines())
    first = b.catch_up()
    assert first.positions == b.ledger.recorder.max_notification_id()
    again = b.catch_up()
    assert again.positions == 0 and again.items == 0
    assert balances(b.store)[0]["balance"] == 499_970_000


@pytest.mark.parametrize("chunk", [7, 50, 10_000])
def test_rebuild_equals_incremental_catch_up_in_chunks(books_factory, store_env, sim_lines, chunk):
    """Ingest in several parts with a catch-up after each vs one rebuild: identical views."""
    lines = sim_lines(seed=11, classes=5, region="420100") + example_lines()
    b = books_factory(store_env)
    parts = [lines[i : i + 700] for i in range(0, len(lines), 700)]
    assert len(parts) >= 3
    for part in parts:
        b.submit(part, batch=250)
        b.catch_up(chunk=chunk)
    incremental = dump_views(b.store)
    stats = b.rebuild(chunk=chunk)
    assert stats.positions == b.ledger.recorder.max_notification_id()
    rebuilt = dump_views(b.store)
    assert incremental == rebuilt
    assert any(rebuilt["view_ledger_payment"]) and any(rebuilt["view_journal"])


class _Boom(Exception):
    pass


class _FailingBalances(BalancesProjection):
    """Balances whose flush fails once, after writing part of its changes."""

    fail_after = 1

    def flush(self, tx: Any) -> None:
        super().flush(tx)
        type(self).fail_after -= 1
        if type(self).fail_after < 0:
            raise _Boom("power cut after the view rows, before the position")


def test_a_failed_chunk_writes_nothing_and_is_redone_once(books_factory):
    b = books_factory()
    b.submit(example_lines())
    _FailingBalances.fail_after = 1  # first chunk commits, second fails
    with pytest.raises(_Boom):
        catch_up(b.store, b.ledger.recorder, [_FailingBalances()], chunk=10)
    pos = b.store.position("balances")
    assert pos == 10
    # Resume with the real projection: nothing counted twice, nothing lost.
    catch_up(b.store, b.ledger.recorder, [BalancesProjection()], chunk=10)
    [row] = balances(b.store)
    assert (row["appropriated"], row["paid"], row["recovered"]) == (500_000_000, 60_000, 30_000)


def test_a_concurrent_catch_up_is_detected_and_nothing_counts_twice(books_factory, store_env):
    b = books_factory(store_env)
    b.submit(example_lines())
    other = open_store(b.settings)  # a second process's connection to the same views

    class Racing(BalancesProjection):
        raced = False

        def on_posted(self, item: Any) -> None:
            if not Racing.raced:
                Racing.raced = True
                catch_up(other, b.ledger.recorder, [BalancesProjection()])  # wins the race
            super().on_posted(item)

    try:
        stats = catch_up(b.store, b.ledger.recorder, [Racing()])
        assert stats.conflicts == 1
        [row] = balances(b.store)
        assert row["balance"] == 499_970_000 and row["paid"] == 60_000
    finally:
        other.close()


def test_set_position_refuses_a_moved_projection(tmp_path):
    store = SQLiteViewStore(tmp_path / "v.sqlite")
    try:
        store.ensure_tracking()
        with store.transaction() as tx:
            tx.execute("INSERT INTO view_tracking VALUES ('p', 5, '1')")
        with pytest.raises(TrackingConflict):
            with store.transaction() as tx:
                store.set_position(tx, "p", 4, 9)
        assert store.position("p") == 5
    finally:
        store.close()


def test_a_changed_version_rebuilds_that_projection(books_factory):
    b = books_factory()
    b.submit(example_lines())
    b.catch_up()
    before = dump_views(b.store)

    class Balances2(BalancesProjection):
        version = "2-test"

    stats = catch_up(b.store, b.ledger.recorder, [Balances2()])
    assert stats.rebuilt == ["balances"]
    assert b.store.tracking()["balances"][1] == "2-test"
    after = dump_views(b.store)
    assert after["view_balance_daily"] == before["view_balance_daily"]


def test_projections_at_different_positions_catch_up_together(books_factory):
    b = books_factory()
    lines = example_lines()
    b.submit(lines[:10])
    catch_up(b.store, b.ledger.recorder, [BalancesProjection()])  # balances ahead of the others
    b.submit(lines[10:])
    b.catch_up(chunk=5)
    incremental = dump_views(b.store)
    b.rebuild()
    assert dump_views(b.store) == incremental


def test_sqlite_log_reads_what_the_recorder_reads(books_factory):
    from projections import feed

    b = books_factory()
    b.submit(example_lines())
    rec = b.ledger.recorder
    fast = runner.SQLiteLog(rec)
    slow_items = list(feed.read(rec, after=3, upto=30))
    fast_items = list(feed.read(fast, after=3, upto=30))
    assert fast_items == slow_items
    assert runner.log_for(rec).__class__ is runner.SQLiteLog


class _Empty(Projection):
    name = "empty"
    tables = ("view_empty",)

    def ddl(self, store):
        return ["CREATE TABLE IF NOT EXISTS view_empty (a INTEGER)"]

    def reset(self):
        pass

    def flush(self, tx):
        pass


def test_rebuild_drops_the_view_and_its_position(books_factory):
    b = books_factory()
    b.submit(example_lines())
    catch_up(b.store, b.ledger.recorder, [_Empty()])
    with b.store.transaction() as tx:
        tx.execute("INSERT INTO view_empty VALUES (1)")
    rebuild(b.store, b.ledger.recorder, [_Empty()])
    assert b.store.query("SELECT COUNT(*) FROM view_empty") == [(0,)]
    assert b.store.position("empty") == b.ledger.recorder.max_notification_id()
