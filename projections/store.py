"""The view store: where read models (projections) keep their tables.

Read models live in their own tables named ``view_*`` beside one tracking
table::

    view_tracking(projection TEXT PRIMARY KEY, position INTEGER, version TEXT)

``position`` is the last notification-log position a projection has applied;
``version`` names the projection's logic, so that a projection whose code
changed is rebuilt rather than continued. A projection's view changes and its
new position are written in ONE transaction, so each feed item is applied
exactly once whatever crashes in between.

Where the store lives is configuration, never code (a Settings-like object
with ``data_dir``, ``database_url`` and ``database_schema``):

* no ``database_url``: SQLite file ``<data_dir>/views.sqlite`` (WAL journal,
  ``synchronous=FULL`` set explicitly: a committed chunk survives power loss);
* ``database_url=postgresql://…``: PostgreSQL, the same database as the
  ledger, in ``database_schema`` when one is set.

SQL in the projections is written once, in the common subset of both
dialects, with ``?`` placeholders (rewritten to ``%s`` for psycopg) and
``INSERT … ON CONFLICT … DO UPDATE`` upserts (SQLite ≥ 3.24 and PostgreSQL).
Money columns are ``BIGINT`` fen (SQLite stores any integer as 64 bits).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

VIEWS_FILENAME = "views.sqlite"
SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 5
TRACKING_TABLE = "view_tracking"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class StoreSettings(Protocol):
    data_dir: Path
    database_url: str | None
    database_schema: str | None


class TrackingConflict(RuntimeError):
    """Another process moved a projection's position while we worked."""


def check_ident(name: str) -> str:
    """A table or index name we are about to splice into SQL."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain lower-case SQL identifier: {name!r}")
    return name


class Tx:
    """One open transaction: ``execute``, ``executemany``, ``query``."""

    __slots__ = ("_cur", "_pg")

    def __init__(self, cur: Any, pg: bool) -> None:
        self._cur = cur
        self._pg = pg

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(self._sql(sql), tuple(params))
        return self._cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cur.executemany(self._sql(sql), rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        self._cur.execute(self._sql(sql), tuple(params))
        return [tuple(r) for r in self._cur.fetchall()]

    def columns(self, table: str) -> list[str]:
        """The column names of ``table``, in order."""
        self._cur.execute(f"SELECT * FROM {check_ident(table)} WHERE 1 = 0")
        cols = [d[0] for d in self._cur.description]
        self._cur.fetchall()
        return cols


class ViewStore:
    """Common behaviour; see :class:`SQLiteViewStore` and :class:`PostgresViewStore`."""

    kind: str = "?"
    bigint: str = "BIGINT"

    # -- to be provided --------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Tx]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def table_names(self) -> set[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.transaction() as tx:
            return tx.query(sql, params)

    def ensure_tracking(self) -> None:
        with self.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} ("
                f"projection TEXT PRIMARY KEY, position {self.position_type} NOT NULL, version TEXT NOT NULL)"
            )

    @property
    def position_type(self) -> str:
        return "INTEGER" if self.kind == "sqlite" else "BIGINT"

    def tracking(self) -> dict[str, tuple[int, str]]:
        """{projection: (position, version)} for every tracked projection."""
        rows = self.query(f"SELECT projection, position, version FROM {TRACKING_TABLE}")
        return {name: (int(pos), ver) for name, pos, ver in rows}

    def position(self, projection: str) -> int:
        got = self.tracking().get(projection)
        return 0 if got is None else got[0]

    @staticmethod
    def set_position(tx: Tx, projection: str, old: int, new: int) -> None:
        """Advance a projection, refusing if someone else moved it meanwhile."""
        n = tx.execute(
            f"UPDATE {TRACKING_TABLE} SET position = ? WHERE projection = ? AND position = ?",
            (new, projection, old),
        )
        if n != 1:
            raise TrackingConflict(f"projection {projection} is no longer at position {old}")

    def __enter__(self) -> ViewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SQLiteViewStore(ViewStore):
    kind = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE)
        # so that a writer takes the lock up front instead of failing midway.
        # One user at a time, possibly from different threads (the HTTP service
        # hands requests to a thread pool and serializes them with one lock).
        self._conn = sqlite3.connect(
            str(self.path), isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._depth = 0

    def pragma(self, name: str) -> Any:
        return self._conn.execute(f"PRAGMA {check_ident(name)}").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        if self._depth:  # nested use joins the open transaction
            yield Tx(self._conn.cursor(), pg=False)
            return
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield Tx(cur, pg=False)
        except BaseException:
            self._depth -= 1
            cur.execute("ROLLBACK")
            raise
        self._depth -= 1
        cur.execute("COMMIT")

    def table_names(self) -> set[str]:
        rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        self._conn.close()

    def describe(self) -> str:
        return f"sqlite {self.path}"


class PostgresViewStore(ViewStore):
    kind = "postgres"

    def __init__(self, url: str, schema: str | None = None) -> None:
        import psycopg
        from psycopg import sql

        self.schema = schema or "public"
        # Autocommit: every transaction is an explicit conn.transaction() block.
        self._conn = psycopg.connect(url, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S, autocommit=True)
        if schema:
            self._conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        self._depth = 0
        self._where = url.rpartition("@")[2]

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        if self._depth:
            yield Tx(self._conn.cursor(), pg=True)
            return
        self._depth += 1
        try:
            with self._conn.transaction():
                with self._conn.cursor() as cur:
                    yield Tx(cur, pg=True)
        finally:
            self._depth -= 1

    def table_names(self) -> set[str]:
        with self.transaction() as tx:
            rows = tx.query("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (self.schema,))
        return {r[0] for r in rows}

    def close(self) -> None:
        self._conn.close()

    def describe(self) -> str:
        return f"postgres {self._where} schema={self.schema}"


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`` WHERE a AND b`` from (sql, value) pairs, leaving out those whose value is None."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(sql for sql, _ in used), [value for _, value in used]


def open_store(settings: StoreSettings) -> ViewStore:
    """The view store the configuration names (see module docstring)."""
    url = getattr(settings, "database_url", None)
    if url:
        return PostgresViewStore(url, getattr(settings, "database_schema", None))
    return SQLiteViewStore(Path(settings.data_dir) / VIEWS_FILENAME)
