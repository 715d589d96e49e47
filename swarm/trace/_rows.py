"""Rows for the trace store's batched writer: the one write path into the database, and the
writer process that runs it for a SQLite file.

Standard library and orjson only, so `python swarm/trace/_rows.py DB` starts in milliseconds: the
writer process runs SQLite on the second core while the event loop keeps the first (the GIL would
otherwise make the two take turns). `write` serves the writer process and the in-process writer
alike: it owns the retry loop, and isolates a row the database refuses (bisecting the batch), so
the rest is written and that row is stored in a safe form (`safe_op`) or reported.

Ops are plain tuples, made on the event loop by `TraceStore`:

    ("q", id, run_id, parent_id, session_id, text, payload, priority, deadline, forced_agent, at,
     owner, lease_expires_at)                    leased to `owner` (None: queued for any worker)
    ("rq", id, owner, lease_expires_at)          a resumed task goes back to queued, leased
    ("s", task_id, agent, attempt, at, owner)    started
    ("f", task_id, status, agent, attempts, hops, output, error, at, owner)   its lease cleared
    ("d", task_id, agent, status, confidence, candidates, version, latency_ms, at, rule)
    ("sp", id, task_id, run_id, parent_id, kind, name, started_at, ended_at, status, error, attrs)
    ("run", id, kind, agents, router, router_version, started_at, meta)
    ("run_done", id, at)
    ("w", id, kind, host, pid, agents, started_at, meta)   a worker (a lease owner) starts
    ("hb", owner, at, lease_expires_at)          heartbeat: every lease of `owner` renewed
    ("w_stop", owner, at)                        it stopped: leases it still holds released

A start or a result with an `owner` is written only while that owner holds the task's lease
(`swarm.trace.leases`): a process that lost its lease never overwrites the new owner's row; the
rows it could not write come back as notes.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import io
import json
import math
import pickle
import sqlite3
import struct
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import orjson

TASK_COLUMNS = (
    "id", "run_id", "parent_id", "session_id", "text", "payload", "priority", "deadline",
    "forced_agent", "status", "agent", "attempts", "hops", "output", "error", "created_at",
    "started_at", "finished_at", "lease_owner", "lease_expires_at",
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
WORKER_COLUMNS = ("id", "kind", "host", "pid", "agents", "started_at", "meta", "heartbeat_at")
JSON_COLUMNS = frozenset({"payload", "hops", "output", "candidates", "attributes", "meta"})
_TASK_INDEX = {c: i for i, c in enumerate(TASK_COLUMNS)}
_FINISH = ("status", "agent", "attempts", "hops", "output", "error", "finished_at")
_RELEASED = {"lease_owner": None, "lease_expires_at": None}


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
        self.guards: dict[str, str] = {}  # task id -> the lease owner its update needs
        self.requeued: set[str] = set()
        self.workers: list[tuple[Any, ...]] = []
        self.heartbeats: list[tuple[Any, ...]] = []
        self.stops: list[tuple[Any, ...]] = []
        self.notes: list[str] = []  # what `write` reports besides errors (guarded rows refused)

    def add(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "q":
            (_, task_id, run, parent, session, text, payload, priority, deadline, agent, at,
             owner, expires) = op  # fmt: skip
            self.tasks[task_id] = [
                task_id, run, parent, session, text, payload, priority, deadline, agent,
                "queued", None, 0, None, None, None, at, None, None, owner, expires,
            ]  # fmt: skip
        elif kind == "s":
            _, task_id, agent, attempt, at, owner = op
            self._transition(
                task_id,
                {"status": "running", "agent": agent, "attempts": attempt, "started_at": at},
                owner,
            )
        elif kind == "f":
            values = dict(zip(_FINISH, op[2:-1], strict=True))
            self._transition(op[1], {**values, **_RELEASED}, op[-1])
        elif kind == "d":
            self.decisions.append(op[1:])
        elif kind == "sp":
            self.spans.append(op[1:])
        elif kind == "rq":
            _, task_id, owner, expires = op
            self.requeued.add(task_id)  # taken, whoever held it before
            self.guards.pop(task_id, None)
            self._transition(
                task_id,
                {"status": "queued", "started_at": None, "lease_owner": owner,
                 "lease_expires_at": expires},
            )  # fmt: skip
        elif kind == "run":
            self.runs.append(op[1:])
        elif kind == "run_done":
            self.run_done.append(op[1:])
        elif kind == "w":
            self.workers.append((*op[1:], op[6]))  # its first heartbeat is its start
        elif kind == "hb":
            self.heartbeats.append(op[1:])
        elif kind == "w_stop":
            self.stops.append(op[1:])
        else:
            raise ValueError(f"unknown trace op {kind!r}")

    def _transition(self, task_id: str, values: dict[str, Any], owner: str | None = None) -> None:
        row = self.tasks.get(task_id)
        if row is None:
            self.updates.setdefault(task_id, {}).update(values)
            if owner is not None and task_id not in self.requeued:  # else leased by this batch
                self.guards[task_id] = owner
        else:
            for column, value in values.items():
                row[_TASK_INDEX[column]] = value

    def update_groups(self) -> dict[tuple[tuple[str, ...], bool], list[tuple[Any, ...]]]:
        """Updates grouped by the columns they set and whether a lease guards them:
        (values..., task_id) rows per unguarded group, (values..., owner, task_id) per guarded."""
        groups: dict[tuple[tuple[str, ...], bool], list[tuple[Any, ...]]] = {}
        for task_id, values in self.updates.items():
            owner = self.guards.get(task_id)
            if owner is None:
                groups.setdefault((tuple(values), False), []).append((*values.values(), task_id))
            else:
                row = (*values.values(), owner, task_id)
                groups.setdefault((tuple(values), True), []).append(row)
        return groups

    def refused(self, n: int, ids: list[str]) -> None:
        """`n` guarded updates found the lease gone (`ids`: those another owner holds now):
        note them; they were not written."""
        if n:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            self.notes.append(
                f"{n} task update(s) not written: this process no longer holds their lease "
                f"(held by another worker now: {shown or 'none'})"
            )

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
        if self.workers:
            head = f"INSERT INTO workers ({', '.join(WORKER_COLUMNS)}) VALUES "
            _execute_chunked(
                cursor, head, len(WORKER_COLUMNS), _encoded(WORKER_COLUMNS, self.workers)
            )
        for (columns, guarded), rows in self.update_groups().items():
            sets = ", ".join(f"{c} = v.{c}" for c in columns)
            names = (*columns, "lease_guard", "id") if guarded else (*columns, "id")
            head = f"WITH v({', '.join(names)}) AS (VALUES "
            tail = f") UPDATE tasks SET {sets} FROM v WHERE tasks.id = v.id"
            if not guarded:
                _execute_chunked(cursor, head, len(names), _encoded(names, rows), tail)
                continue
            tail += " AND tasks.lease_owner = v.lease_guard"
            written = _execute_chunked(cursor, head, len(names), _encoded(names, rows), tail)
            if written < len(rows):  # rare: some lease was taken; name who holds them now
                ids = [r[-1] for r in rows]
                held = cursor.execute(
                    f"SELECT id FROM tasks WHERE id IN ({','.join('?' * len(ids))}) "
                    "AND lease_owner IS NOT NULL AND lease_owner != ?",
                    [*ids, rows[0][-2]],
                ).fetchall()
                self.refused(len(rows) - written, [h[0] for h in held])
        if self.run_done:
            cursor.executemany(
                "UPDATE runs SET finished_at = ? WHERE id = ?", [(at, i) for i, at in self.run_done]
            )
        for owner, at, expires in self.heartbeats:
            cursor.execute(LEASE_RENEW, (expires, owner))
            cursor.execute(WORKER_BEAT, (at, owner))
        for owner, at in self.stops:
            cursor.execute(LEASE_RELEASE, (owner,))
            cursor.execute(WORKER_STOP, (at, owner))


LEASE_RENEW = "UPDATE tasks SET lease_expires_at = ? WHERE lease_owner = ?"
LEASE_RELEASE = "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?"
WORKER_BEAT = "UPDATE workers SET heartbeat_at = ? WHERE id = ?"
WORKER_STOP = "UPDATE workers SET stopped_at = ? WHERE id = ?"


def _execute_chunked(
    cursor: sqlite3.Cursor, head: str, width: int, rows: list[Any], tail: str = ""
) -> int:
    """Many rows per statement (executemany gives the GIL up and back once per row); the rows
    the statements changed."""
    group = "(" + ",".join("?" * width) + ")"
    per = max(1, min(500, 30_000 // width))  # under SQLite's 32,766 bound variables
    conn = cursor.connection
    before = conn.total_changes  # `rowcount` is -1 for statements that begin with WITH
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        cursor.execute(head + ",".join([group] * len(chunk)) + tail, [v for r in chunk for v in r])
    return conn.total_changes - before


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


# ---- values the database accepts -----------------------------------------------------------

_JSON = "\x00json"
"""Marks a value already encoded as JSON text: (_JSON, text)."""

MAX_DEPTH = 254
"""Nesting kept in a JSON value (orjson's own limit); deeper parts are replaced by a note."""

_INT64 = (-(2**63), 2**63 - 1)

OP_FIELDS = {
    # One letter per op position: k op kind, s text, n nullable text, i integer, f real,
    # r nullable real, j JSON.
    "q": "ksnnnsjirnfnr",
    "rq": "ksnr",
    "s": "kssifn",
    "f": "kssnijjnfn",
    "d": "ksnsfjnffn",
    "sp": "kssnnssfrsnj",
    "run": "kssnnnfj",
    "run_done": "ksf",
    "w": "ksssinfj",
    "hb": "ksff",
    "w_stop": "ksf",
}
_OP_NAMES = {
    "q": "task", "rq": "task requeue", "s": "task start", "f": "task result",
    "d": "routing decision", "sp": "span", "run": "run", "run_done": "run end", "w": "worker",
    "hb": "heartbeat", "w_stop": "worker stop",
}  # fmt: skip


def dumps(value: Any) -> str:
    """`value` as JSON text; never raises. orjson first (non-JSON objects become their repr);
    a value it refuses (lone surrogates, ints beyond 64 bits, circular or too deep structures)
    goes through `safe_json` and the standard library's encoder."""
    if type(value) is dict and not value:
        return "{}"
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except Exception:  # orjson.JSONEncodeError is a TypeError; repr() may raise anything
        return json.dumps(safe_json(value), ensure_ascii=False, allow_nan=False)


def json_text(value: Any) -> str:
    """`dumps`, and a value already encoded by `safe_op` as its text: the JSON serializer of the
    store's SQLAlchemy engines other than SQLite."""
    if type(value) is tuple and len(value) == 2 and value[0] == _JSON:
        return str(value[1])
    return dumps(value)


def _default(obj: Any) -> str:
    return safe_text(_repr(obj))


def _repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:
        return f"<unrepresentable {type(obj).__name__}: {type(exc).__name__}>"


def safe_text(text: str, *, escape_nul: bool = False) -> str:
    """`text` made storable: lone surrogates (half a UTF-16 pair) become the escape `\\udXXX`,
    and with `escape_nul`, NUL becomes `\\x00` (PostgreSQL refuses NUL; SQLite keeps it)."""
    if type(text) is not str:
        text = str.__str__(text)  # a str subclass: its plain value
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if escape_nul and "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text


def safe_json(value: Any, *, escape_nul: bool = False) -> Any:
    """`value` as plain JSON data (dict with str keys, list, str, int, finite float, bool, None)
    that `json.dumps` encodes and the database stores: text through `safe_text`, what orjson
    encodes natively (dataclasses, enums, dates, UUIDs) as orjson would, NaN and infinities as
    null, other objects as their repr, a circular reference or a part deeper than `MAX_DEPTH`
    as a note in angle brackets. Ints of any size are kept (JSON allows them)."""
    return _walk(value, 0, set(), escape_nul)


def _walk(v: Any, depth: int, path: set[int], nul: bool) -> Any:
    if v is None or v is True or v is False:
        return v
    if isinstance(v, str):
        return safe_text(v, escape_nul=nul)
    if isinstance(v, int) and not isinstance(v, enum.Enum):
        return int.__index__(v)
    if isinstance(v, float):
        return float(v) if math.isfinite(v) else None
    if depth >= MAX_DEPTH:
        return f"<nested deeper than {MAX_DEPTH} levels>"
    if isinstance(v, dict | list | tuple) or dataclasses.is_dataclass(v):
        if id(v) in path:
            return "<circular reference>"
        path.add(id(v))
        try:
            if isinstance(v, dict):
                return {_key(k, nul): _walk(x, depth + 1, path, nul) for k, x in v.items()}
            if isinstance(v, list) or type(v) is tuple:
                return [_walk(x, depth + 1, path, nul) for x in v]
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                fields = {f.name: getattr(v, f.name, None) for f in dataclasses.fields(v)}
                return {k: _walk(x, depth + 1, path, nul) for k, x in fields.items()}
        finally:
            path.discard(id(v))
    if isinstance(v, enum.Enum):
        return _walk(v.value, depth + 1, path, nul)
    if isinstance(v, datetime.date | datetime.time):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    return safe_text(_repr(v), escape_nul=nul)


def _key(k: Any, nul: bool) -> str:
    # As orjson's OPT_NON_STR_KEYS (and the standard library) write keys that are not text.
    if isinstance(k, str):
        return safe_text(k, escape_nul=nul)
    if k is None or k is True or k is False:
        return json.dumps(k)
    if isinstance(k, int | float) and not isinstance(k, enum.Enum):
        return json.dumps(k) if isinstance(k, int) or math.isfinite(k) else str(k)
    if isinstance(k, enum.Enum):
        return _key(k.value, nul)
    return safe_text(_repr(k), escape_nul=nul)


def safe_op(
    op: tuple[Any, ...], *, escape_nul: bool = False, int_range: tuple[int, int] = _INT64
) -> tuple[Any, ...]:
    """The op with every value in a form the database stores, and of builtin types only (so the
    writer process unpickles it without importing anything): text escaped (`safe_text`), JSON
    columns encoded (`dumps`, as `(_JSON, text)`), NaN reals as NULL (0.0 where the column needs
    a value), integers clamped to `int_range` (64 bits), anything else in a text column as its
    repr."""
    fields = OP_FIELDS.get(op[0]) if op and type(op[0]) is str else None
    if fields is None or len(fields) != len(op):
        raise ValueError(f"unknown trace op {_repr(op)[:200]}")
    out: list[Any] = []
    for kind, v in zip(fields, op, strict=True):
        if kind == "k" or (v is None and kind in "nrj"):
            out.append(v)
        elif kind == "j":
            if type(v) is tuple and len(v) == 2 and v[0] == _JSON:
                v = json.loads(v[1])  # already text: re-encode in case NUL must be escaped
            text = dumps(v) if not escape_nul else dumps(safe_json(v, escape_nul=True))
            out.append((_JSON, text))
        elif kind in "sn":
            out.append(safe_text(v if isinstance(v, str) else _repr(v), escape_nul=escape_nul))
        elif kind == "i":
            n = int.__index__(v) if isinstance(v, int) else 0
            out.append(min(max(n, int_range[0]), int_range[1]))
        else:  # f, r: a real
            x = float(v) if isinstance(v, int | float) else math.nan
            out.append(x if not math.isnan(x) else (None if kind == "r" else 0.0))
    return tuple(out)


def describe(op: tuple[Any, ...]) -> str:
    """`task 0195…` : what an op writes, for an error message."""
    name = _OP_NAMES.get(op[0], "op") if op and isinstance(op[0], str) else "op"
    key = op[1] if len(op) > 1 and isinstance(op[1], str) else "?"
    return f"{name} {safe_text(key)[:40]}"


# ---- the write path --------------------------------------------------------------------------

Outcome = tuple[str | None, list[str]]
"""(error, notes): error says what was not stored (None: everything was); notes name the rows
stored in a safe form instead of as given."""


def write(
    ops: list[tuple[Any, ...]],
    run: Callable[[Batch], None],
    *,
    transient: tuple[type[BaseException], ...],
    escape_nul: bool = False,
    int_range: tuple[int, int] = _INT64,
    attempts: int = 3,
    pause: float = 0.05,
    retry_for: float | None = None,
) -> Outcome:
    """Write `ops` through `run` (one `Batch` per transaction), all of them if the database will.

    `run(batch)` writes a batch in one transaction or raises, leaving nothing of it. An error of a
    `transient` type (locked, disk full, connection lost) is retried `attempts` times (or, given
    `retry_for`, with doubling pauses up to 2 s for that many seconds), then ends the write: what
    was not written yet is the error. Any other error means a value the encoders or the database
    refuse: the batch is split in halves until the op that holds it stands alone, which is written
    again as `safe_op` makes it (`escape_nul`, `int_range`), or, if even that fails, reported. The
    others are written as they came, in order.
    """
    # A stack of chunks, the next one last; a chunk with a note is one op made safe.
    todo: list[tuple[list[tuple[Any, ...]], str | None]] = [(ops, None)]
    failed: list[str] = []
    notes: list[str] = []
    tries = 0
    failing_since = 0.0
    while todo:
        chunk, note = todo.pop()
        try:
            batch = Batch()
            for op in chunk:
                batch.add(op)
            run(batch)
        except transient as exc:
            tries += 1
            if tries == 1:
                failing_since = time.monotonic()
            if retry_for is None:
                given_up, wait = tries >= attempts, pause * tries
            else:
                waited = time.monotonic() - failing_since
                wait = min(pause * 2 ** (tries - 1), 2.0, max(0.0, retry_for - waited))
                given_up = waited >= retry_for
            if given_up:
                left = len(chunk) + sum(len(c) for c, _ in todo)
                return f"{left} of {len(ops)} writes failed: {_error(exc)}", notes
            todo.append((chunk, note))
            time.sleep(wait)
            continue
        except Exception as exc:  # a value refused: isolate it
            if len(chunk) > 1:
                half = len(chunk) // 2
                todo += [(chunk[half:], None), (chunk[:half], None)]
            elif note is None:
                try:
                    made_safe = safe_op(chunk[0], escape_nul=escape_nul, int_range=int_range)
                except Exception as bad:  # not an op at all
                    failed.append(f"{describe(chunk[0])}: {_error(bad)}")
                else:
                    note = f"{describe(chunk[0])} stored in a safe form ({_error(exc)})"
                    todo.append(([made_safe], note))
            else:
                failed.append(f"{describe(chunk[0])}: {_error(exc)}")
            continue
        tries = 0
        notes += batch.notes
        if note is not None:
            notes.append(note)
    if failed:
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        return f"{len(failed)} of {len(ops)} writes failed: {'; '.join(failed[:3])}{more}", notes
    return None, notes


def _error(exc: BaseException) -> str:
    # One line (PostgreSQL's messages add DETAIL and CONTEXT lines).
    text = " ".join(safe_text(f"{type(exc).__name__}: {exc}").split())[:500]
    if isinstance(exc, sqlite3.OperationalError) and ("disk" in text or "full" in text):
        text += " (is the disk full, or the file over a size limit?)"
    return text


def sqlite_runner(conn: sqlite3.Connection) -> Callable[[Batch], None]:
    """`run` for `write`: a batch in one IMMEDIATE transaction on `conn` (autocommit mode)."""

    def run(batch: Batch) -> None:
        with transaction(conn):
            batch.write_sqlite(conn)

    return run


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite rolls some errors back itself (disk full, I/O)
            conn.execute("ROLLBACK")
        raise


def write_sqlite(conn: sqlite3.Connection, ops: list[tuple[Any, ...]]) -> Outcome:
    """`write` on a SQLite connection: the writer process's and the in-process writer's path."""
    return write(ops, sqlite_runner(conn), transient=(sqlite3.OperationalError,))


def configure(conn: sqlite3.Connection, *, wal: bool) -> None:
    """The connection settings every SQLite connection of the store uses (`wal` for a file)."""
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    # WAL + NORMAL: a killed process loses nothing committed; only power loss can.
    conn.execute("PRAGMA synchronous=NORMAL")


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    configure(conn, wal=True)
    return conn


# ---- the writer process -------------------------------------------------------------------

_LEN = struct.Struct(">I")

REFUSED = "refused"
"""The writer's answer to a frame holding objects it will not import: send `safe_op`s instead."""


def send_frame(out: IO[bytes], obj: Any) -> None:
    """Pickle `obj` and send it; raises (before sending anything) if it cannot be pickled."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LEN.pack(len(data)) + data)
    out.flush()


def read_frame(inp: IO[bytes]) -> Any:
    """The next frame's object; EOFError at the end, UnpicklingError for a frame that holds
    anything but builtin values (the stream stays in step: the whole frame was read)."""
    head = inp.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (size,) = _LEN.unpack(head)
    data = inp.read(size)
    if len(data) < size:
        raise EOFError
    return _BuiltinsOnly(io.BytesIO(data)).load()


class _BuiltinsOnly(pickle.Unpickler):
    """Values of builtin types only: unpickling never imports (and runs) an application module."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not a builtin value")


def serve(path: str) -> None:
    """Read (seq, ops) frames from stdin until it closes; answer (seq, error, notes) for each,
    where error is `REFUSED` for a frame the writer will not unpickle."""
    conn = connect(path)
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            seq, ops = read_frame(inp)
        except EOFError:  # the parent closed the pipe, or died: everything sent is written
            break
        except Exception:  # objects of application classes: ask for plain values
            answer: tuple[Any, ...] = (-1, REFUSED, [])
        else:
            try:
                answer = (seq, *write_sqlite(conn, ops))
            except Exception as exc:  # never die on a batch; say what happened
                answer = (seq, f"the writer failed: {_error(exc)}", [])
        try:
            send_frame(out, answer)
        except BrokenPipeError:  # nobody to tell; keep writing what was sent
            pass
    conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
