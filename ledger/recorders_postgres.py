"""The PostgreSQL twin of ledger.recorders (imported only when configured)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def select_first_states(self, originator_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """State of version 1 of each given aggregate that exists."""
        if not originator_ids:
            return {}
        statement = SQL(
            "SELECT originator_id, state FROM {schema}.{table} WHERE originator_version = 1 AND originator_id = ANY(%s)"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(originator_ids),))
            return {row["originator_id"]: bytes(row["state"]) for row in curs.fetchall()}
