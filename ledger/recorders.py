"""Application recorders for the ledger: eventsourcing's, plus one bulk read.

Deciding a batch needs to know which of its records are already stored (a
re-send is a no-op, a changed re-send a conflict). Asking one record at a
time costs a round trip each; these recorders answer for a whole batch in
one query. They are chosen by configuration (APPLICATION_RECORDER_TOPIC,
set by ``Ledger`` from the persistence module), like every storage choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.sqlite import SQLiteApplicationRecorder

# SQLite's default limit on bound parameters is 999 on old builds.
SQLITE_IN_PARAMS_MAX = 900


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    def select_first_states(self, originator_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """State of version 1 of each given aggregate that exists."""
        found: dict[UUID, bytes] = {}
        ids = [i.hex for i in originator_ids]
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), SQLITE_IN_PARAMS_MAX):
                chunk = ids[start : start + SQLITE_IN_PARAMS_MAX]
                c.execute(
                    f"SELECT originator_id, state FROM {self.events_table_name} "
                    f"WHERE originator_version = 1 AND originator_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for row in c.fetchall():
                    found[UUID(row["originator_id"])] = row["state"]
        return found
