"""The batched writer's PostgreSQL path (psycopg 3): COPY for the inserts, one `UPDATE ... FROM
(VALUES ...)` per group of task transitions, on one connection of its own that is opened again
when the server goes away.

`_rows.write` drives it as it drives SQLite: a batch is one transaction; a value PostgreSQL
refuses (NUL in text, half a surrogate pair, an int beyond `integer`) isolates its row, which is
stored in a safe form; a lost connection (the server restarted, a network cut) is retried with
backoff for `retry_for` seconds, then the flushes waiting on it raise `StoreError`.
"""

from __future__ import annotations

import math
from typing import Any

import psycopg
from sqlalchemy import Float, Integer, String, Table, Text
from sqlalchemy.engine import make_url

from swarm.trace import _rows
from swarm.trace.schema import Base, DecisionRow, RunRow, SpanRow, TaskRow, WorkerRow

__all__ = ["PostgresWriter", "conninfo"]

_TABLES: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (Base.metadata.tables[RunRow.__tablename__], _rows.RUN_COLUMNS),
    (Base.metadata.tables[TaskRow.__tablename__], _rows.TASK_COLUMNS),
    (Base.metadata.tables[DecisionRow.__tablename__], _rows.DECISION_COLUMNS),
    (Base.metadata.tables[SpanRow.__tablename__], _rows.SPAN_COLUMNS),
    (Base.metadata.tables[WorkerRow.__tablename__], _rows.WORKER_COLUMNS),
)
_MAX_PARAMS = 65_535  # the protocol's bound on parameters in one statement
_INT32 = (-(2**31), 2**31 - 1)  # `Integer` is PostgreSQL's 4-byte integer


def conninfo(url: str) -> str:
    """The libpq connection string (a URI) for a SQLAlchemy `postgresql[+driver]://` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _cast(table: Table, column: str) -> str:
    # Casts for the VALUES rows: without a length (a cast to varchar(n) would cut a value short
    # where the column would have refused it).
    kind = table.c[column].type
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, Integer):
        return "int8"
    if isinstance(kind, String | Text):
        return "text"
    return "json"


def _nan_positions(table: Table, columns: tuple[str, ...]) -> list[int]:
    return [i for i, c in enumerate(columns) if isinstance(table.c[c].type, Float)]


_CASTS = {c: _cast(_TABLES[1][0], c) for c in _rows.TASK_COLUMNS}
_COPY = [
    (
        table.name,
        columns,
        f"COPY {table.name} ({', '.join(columns)}) FROM STDIN",
        _nan_positions(table, columns),
    )
    for table, columns in _TABLES
]
# The lease statements SQLite runs, with psycopg's placeholders.
_LEASE = {
    sql: sql.replace("?", "%s")
    for sql in (_rows.LEASE_RENEW, _rows.WORKER_BEAT, _rows.LEASE_RELEASE, _rows.WORKER_STOP)
}
_TASK_FLOATS = frozenset(c for c, cast in _CASTS.items() if cast == "float8")


class PostgresWriter:
    """Writes batches of trace ops to the PostgreSQL database at `url` (a SQLAlchemy URL).

    `write(ops)` returns `_rows.Outcome` and never raises for a database fault. One thread at a
    time (the store's writer thread); `close()` releases the connection.
    """

    def __init__(self, url: str, *, retry_for: float = 30.0, connect_timeout: int = 5) -> None:
        self.conninfo = conninfo(url)
        self.retry_for = retry_for
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None

    def write(self, ops: list[tuple[Any, ...]]) -> _rows.Outcome:
        return _rows.write(
            ops,
            self._run,
            transient=(psycopg.OperationalError,),
            escape_nul=True,
            int_range=_INT32,
            retry_for=self.retry_for,
        )

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.conninfo,
                connect_timeout=self._connect_timeout,
                # A server that vanishes without closing the socket is noticed within ~30 s,
                # idle (keepalives) or in the middle of sending a batch (unacknowledged data).
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
                tcp_user_timeout=30_000,
            )
        return self._conn

    def _run(self, batch: _rows.Batch) -> None:
        """The batch in one transaction; raises (leaving nothing of it) if PostgreSQL refuses."""
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                _write(cur, batch)
        except psycopg.OperationalError:
            self.close()  # broken or not, the next try starts on a new connection
            raise


def _write(cur: psycopg.Cursor[Any], batch: _rows.Batch) -> None:
    tasks = list(batch.tasks.values())
    rows_of: tuple[list[Any], ...] = (
        batch.runs, tasks, batch.decisions, batch.spans, batch.workers
    )  # fmt: skip
    for (_, columns, copy_sql, floats), rows in zip(_COPY, rows_of, strict=True):
        if not rows:
            continue
        with cur.copy(copy_sql) as copy:
            for row in _rows._encoded(columns, rows):
                if floats:
                    row = _no_nan(row, floats)
                copy.write_row(row)
    for (columns, guarded), rows in batch.update_groups().items():
        sets = ", ".join(f"{c} = v.{c}" for c in columns)
        floats = [i for i, c in enumerate(columns) if c in _TASK_FLOATS]
        names = (*columns, "lease_guard", "id") if guarded else (*columns, "id")
        # A guarded transition is written only where its owner still holds the task's lease.
        guard = " AND tasks.lease_owner = v.lease_guard" if guarded else ""
        written = _values_update(
            cur,
            f"UPDATE tasks SET {sets} FROM (VALUES ",
            f") AS v({', '.join(names)}) WHERE tasks.id = v.id{guard}",
            [*(_CASTS[c] for c in columns), *(["text"] if guarded else []), "text"],
            [_no_nan(r, floats) for r in _rows._encoded(names, rows)],
        )  # fmt: skip
        if guarded and written < len(rows):  # rare: some lease was taken; name who holds them
            cur.execute(
                "SELECT id FROM tasks WHERE id = ANY(%s) AND lease_owner IS NOT NULL "
                "AND lease_owner != %s",
                [[r[-1] for r in rows], rows[0][-2]],
            )
            batch.refused(len(rows) - written, [r[0] for r in cur.fetchall()])
    if batch.run_done:
        _values_update(
            cur,
            "UPDATE runs SET finished_at = v.at FROM (VALUES ",
            ") AS v(id, at) WHERE runs.id = v.id",
            ["text", "float8"],
            [_no_nan(r, [1]) for r in batch.run_done],
        )
    for owner, at, expires in batch.heartbeats:
        cur.execute(_LEASE[_rows.LEASE_RENEW], (expires, owner))
        cur.execute(_LEASE[_rows.WORKER_BEAT], (at, owner))
    for owner, at in batch.stops:
        cur.execute(_LEASE[_rows.LEASE_RELEASE], (owner,))
        cur.execute(_LEASE[_rows.WORKER_STOP], (at, owner))


def _values_update(
    cur: psycopg.Cursor[Any], head: str, tail: str, casts: list[str], rows: list[Any]
) -> int:
    """The rows updated."""
    group = "(" + ", ".join(f"%s::{c}" for c in casts) + ")"
    per = max(1, min(2000, _MAX_PARAMS // len(casts)))
    changed = 0
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        cur.execute(head + ", ".join([group] * len(chunk)) + tail, [v for r in chunk for v in r])
        changed += max(cur.rowcount, 0)
    return changed


def _no_nan(row: Any, positions: list[int]) -> list[Any]:
    """NaN as NULL, as SQLite stores it (PostgreSQL would keep NaN): the same rows read back from
    either database, and a NOT NULL column refuses it, so the row's safe form says 0.0."""
    row = list(row)
    for i in positions:
        v = row[i]
        if type(v) is float and math.isnan(v):
            row[i] = None
    return row
