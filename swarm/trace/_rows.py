"""Rows for the trace store's batched writer, and the writer process that puts them into SQLite.

Standard library and orjson only, so `python swarm/trace/_rows.py DB` starts in milliseconds: the
writer process runs SQLite on the second core while the event loop keeps the first (the GIL would
otherwise make the two take turns). The same `Batch` serves the in-process writer.

Ops are plain tuples, made on the event loop by `TraceStore`:

    ("q", id, run_id, parent_id, session_id, text, payload, priority, deadline, forced_agent, at)
    ("rq", id)                                   a resumed task goes back to queued
    ("s", task_id, agent, attempt, at)           started
    ("f", task_id, status, agent, attempts, hops, output, error, at)
    ("d", task_id, agent, status, confidence, candidates, version, latency_ms, at, rule)
    ("sp", id, task_id, run_id, parent_id, kind, name, started_at, ended_at, status, error, attrs)
    ("run", id, kind, agents, router, router_version, started_at, meta)
    ("run_done", id, at)
"""

from __future__ import annotations

import pickle
import sqlite3
import struct
import sys
import time
from typing import IO, Any

import orjson

TASK_COLUMNS = (
    "id", "run_id", "parent_id", "session_id", "text", "payload", "priority", "deadline",
    "forced_agent", "status", "agent", "attempts", "hops", "output", "error", "created_at",
    "started_at", "finished_at",
)  # fmt: skip
DECISION_COLUMNS = (
    "task_id", "agent", "status", "confidence", "candidates", "router_version", "latency_ms",
    "created_at", "rule",
)  # fmt: skip
SPAN_COLUMNS = (
    "id", "task_id", "run_id", "parent_id", "kind", "name", "started_at", "ended_at", "status",
    "error", "attributes",
)  # fmt: skip
RUN_COLUMNS = ("id", "kind", "agents", "router", "router_version", "started_at", "meta")
JSON_COLUMNS = frozenset({"payload", "hops", "output", "candidates", "attributes", "meta"})
_TASK_INDEX = {c: i for i, c in enumerate(TASK_COLUMNS)}
_FINISH = ("status", "agent", "attempts", "hops", "output", "error", "finished_at")


class Batch:
    """One writer round: rows per table, task transitions folded together.

    A transition of a task inserted in the same round folds into its insert; a task that started
    and finished within one round gets one UPDATE.
    """

    def __init__(self) -> None:
        self.runs: list[tuple[Any, ...]] = []
        self.run_done: list[tuple[Any, ...]] = []
        self.tasks: dict[str, list[Any]] = {}
        self.updates: dict[str, dict[str, Any]] = {}
        self.decisions: list[tuple[Any, ...]] = []
        self.spans: list[tuple[Any, ...]] = []

    def add(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "q":
            _, task_id, run, parent, session, text, payload, priority, deadline, agent, at = op
            self.tasks[task_id] = [
                task_id, run, parent, session, text, payload, priority, deadline, agent,
                "queued", None, 0, None, None, None, at, None, None,
            ]  # fmt: skip
        elif kind == "s":
            _, task_id, agent, attempt, at = op
            self._transition(
                task_id,
                {"status": "running", "agent": agent, "attempts": attempt, "started_at": at},
            )
        elif kind == "f":
            self._transition(op[1], dict(zip(_FINISH, op[2:], strict=True)))
        elif kind == "d":
            self.decisions.append(op[1:])
        elif kind == "sp":
            self.spans.append(op[1:])
        elif kind == "rq":
            self._transition(op[1], {"status": "queued", "started_at": None})
        elif kind == "run":
            self.runs.append(op[1:])
        elif kind == "run_done":
            self.run_done.append(op[1:])
        else:
            raise ValueError(f"unknown trace op {kind!r}")

    def _transition(self, task_id: str, values: dict[str, Any]) -> None:
        row = self.tasks.get(task_id)
        if row is None:
            self.updates.setdefault(task_id, {}).update(values)
        else:
            for column, value in values.items():
                row[_TASK_INDEX[column]] = value

    def update_groups(self) -> dict[tuple[str, ...], list[tuple[Any, ...]]]:
        """Updates grouped by the columns they set: (values..., task_id) rows per group."""
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for task_id, values in self.updates.items():
            groups.setdefault(tuple(values), []).append((*values.values(), task_id))
        return groups

    def write_sqlite(self, conn: sqlite3.Connection) -> None:
        """Everything in one transaction (the caller commits), many rows per statement."""
        cursor = conn.cursor()
        tables: tuple[tuple[str, tuple[str, ...], list[Any]], ...] = (
            ("runs", RUN_COLUMNS, self.runs),
            ("tasks", TASK_COLUMNS, list(self.tasks.values())),
            ("routing_decisions", DECISION_COLUMNS, self.decisions),
            ("spans", SPAN_COLUMNS, self.spans),
        )
        for table, columns, rows in tables:
            if rows:
                head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                _execute_chunked(cursor, head, len(columns), _encoded(columns, rows))
        for columns, rows in self.update_groups().items():
            sets = ", ".join(f"{c} = v.{c}" for c in columns)
            head = f"WITH v({', '.join(columns)}, id) AS (VALUES "
            tail = f") UPDATE tasks SET {sets} FROM v WHERE tasks.id = v.id"
            _execute_chunked(cursor, head, len(columns) + 1, _encoded((*columns, "id"), rows), tail)
        if self.run_done:
            cursor.executemany(
                "UPDATE runs SET finished_at = ? WHERE id = ?", [(at, i) for i, at in self.run_done]
            )


def _execute_chunked(
    cursor: sqlite3.Cursor, head: str, width: int, rows: list[Any], tail: str = ""
) -> None:
    # Many rows per statement: executemany gives the GIL up and back once per row.
    group = "(" + ",".join("?" * width) + ")"
    per = max(1, min(500, 30_000 // width))  # under SQLite's 32,766 bound variables
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        cursor.execute(head + ",".join([group] * len(chunk)) + tail, [v for r in chunk for v in r])


def _encoded(columns: tuple[str, ...], rows: list[Any]) -> list[Any]:
    """JSON-encode the JSON columns (None stays SQL NULL), the way SQLAlchemy's JSON type reads."""
    positions = [i for i, c in enumerate(columns) if c in JSON_COLUMNS]
    if not positions:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i in positions:
            v = values[i]
            if v is not None:
                values[i] = v[1] if type(v) is tuple and v and v[0] == _JSON else dumps(v)
        out.append(values)
    return out


_JSON = "\x00json"
"""Marks a value `jsonable_op` already encoded: (_JSON, text)."""


def dumps(value: Any) -> str:
    if value == {}:
        return "{}"
    return orjson.dumps(value, default=repr).decode()


def jsonable_op(op: tuple[Any, ...]) -> tuple[Any, ...]:
    """The op with every value that pickle might refuse replaced by its JSON text."""
    return tuple(
        v if v is None or isinstance(v, str | int | float | bool) else (_JSON, dumps(v)) for v in op
    )


# ---- the writer process -------------------------------------------------------------------

_LEN = struct.Struct(">I")


def send_frame(out: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LEN.pack(len(data)) + data)
    out.flush()


def read_frame(inp: IO[bytes]) -> Any:
    head = inp.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (size,) = _LEN.unpack(head)
    data = inp.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def write(conn: sqlite3.Connection, ops: list[tuple[Any, ...]], attempts: int = 3) -> str | None:
    """Write `ops` in one transaction; None, or the error after `attempts` tries."""
    error: str | None = None
    for attempt in range(attempts):
        batch = Batch()
        try:
            for op in ops:
                batch.add(op)
            conn.execute("BEGIN IMMEDIATE")
            try:
                batch.write_sqlite(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return None
        except (sqlite3.Error, ValueError) as exc:  # locked by another process, disk full …
            error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05 * (attempt + 1))
    return error


def serve(path: str) -> None:
    """Read (seq, ops) frames from stdin until it closes; answer (seq, error) for each."""
    conn = connect(path)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            seq, ops = read_frame(inp)
        except EOFError:  # the parent closed the pipe, or died: everything sent is written
            break
        error = write(conn, ops)
        try:
            send_frame(out, (seq, error))
        except BrokenPipeError:  # nobody to tell; keep writing what was sent
            pass
    conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
