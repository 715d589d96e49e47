"""The trace store: every task, routing decision and span, written by a batched writer thread so the
event loop only appends to a buffer. SQLite (WAL) by default; any SQLAlchemy URL works.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, Table, bindparam, create_engine, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from swarm.context import Span
from swarm.errors import ConfigError, StoreError, TaskNotFound
from swarm.models import Decision, Result, Task, TaskStatus, new_id
from swarm.trace.schema import (
    SCHEMA_VERSION,
    Base,
    DecisionRow,
    FeedbackRow,
    MetaRow,
    RunRow,
    SpanRow,
    TaskRow,
)

__all__ = ["DEFAULT_DB_URL", "TraceStore"]

log = logging.getLogger("swarm.trace")

DEFAULT_DB_URL = "sqlite:///storage/swarm.db"

_TASKS: Table = TaskRow.__table__  # type: ignore[assignment]
_DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]
_SPANS: Table = SpanRow.__table__  # type: ignore[assignment]
_RUNS: Table = RunRow.__table__  # type: ignore[assignment]
_FEEDBACK: Table = FeedbackRow.__table__  # type: ignore[assignment]
_INSERT_ORDER = (_RUNS, _TASKS, _DECISIONS, _SPANS)


class TraceStore:
    """Open with a SQLAlchemy URL; `close()` (or `with`) flushes everything still buffered.

    Writes from async code are buffered and committed in batches by one thread; `await flush()`
    returns once everything written before it is committed. Reads are plain synchronous queries
    (call them through `asyncio.to_thread` from async code).
    """

    def __init__(
        self,
        url: str = DEFAULT_DB_URL,
        *,
        flush_interval: float = 0.02,
        max_batch: int = 4000,
    ) -> None:
        self.url = url
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self.engine = _make_engine(url)
        # One shared connection (in-memory SQLite) must not be used by two threads at once.
        self._lock = threading.RLock()
        self._ops: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.write_errors = 0
        self._init_schema()

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Write what is buffered, stop the writer, release the database."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._write_pending()
        self.engine.dispose()

    def _ensure_writer(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._writer, name="swarm-trace-writer", daemon=True
            )
            self._thread.start()

    # ---- buffered writes (called on the event loop; never block) ---------------------------

    def start_run(
        self,
        *,
        kind: str = "run",
        agents: str | None = None,
        router: str | None = None,
        router_version: str | None = None,
        meta: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        run_id = run_id or new_id()
        row = {
            "id": run_id,
            "kind": kind,
            "agents": agents,
            "router": router,
            "router_version": router_version,
            "started_at": time.time(),
            "finished_at": None,
            "meta": meta or {},
        }
        self._push(("run", row))
        return run_id

    def finish_run(self, run_id: str) -> None:
        self._push(("run_done", run_id, time.time()))

    def task_queued(self, task: Task, *, resumed: bool = False) -> None:
        """A new task row; `resumed`: the row exists, set it back to queued for another run."""
        self._push(("rq" if resumed else "q", task, time.time()))

    def task_started(self, task_id: str, agent: str, attempt: int) -> None:
        self._push(("s", task_id, agent, attempt, time.time()))

    def task_finished(self, result: Result) -> None:
        self._push(("f", result, time.time()))

    def record_decision(self, task_id: str, decision: Decision) -> None:
        self._push(("d", task_id, decision, time.time()))

    def record_span(self, span: Span) -> None:
        self._push(("sp", span))

    async def flush(self) -> None:
        """Wait until everything written so far is committed."""
        if self._closed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(("b", fut))
        self._wake.set()
        await fut

    def flush_sync(self) -> None:
        """Commit everything written so far, from synchronous code."""
        done = threading.Event()
        self._push(("b", done))
        self._wake.set()
        done.wait()

    def _push(self, op: tuple[Any, ...]) -> None:
        if self._closed:
            raise StoreError("trace store is closed")
        self._ops.append(op)
        if self._thread is None:
            self._ensure_writer()
        elif len(self._ops) >= self._max_batch:
            self._wake.set()

    # ---- the writer thread ---------------------------------------------------------------

    def _writer(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._write_pending()

    def _write_pending(self) -> None:
        while self._ops:
            n = min(len(self._ops), self._max_batch * 4)
            ops = [self._ops.popleft() for _ in range(n)]
            self._write_batch(ops)

    def _write_batch(self, ops: list[tuple[Any, ...]]) -> None:
        batch = _Batch()
        for op in ops:
            batch.add(op)
        error: BaseException | None = None
        for attempt in range(3):
            try:
                with self._lock, self.engine.begin() as conn:
                    batch.write(conn)
                error = None
                break
            except SQLAlchemyError as exc:  # locked by another process, disk full …
                error = exc
                time.sleep(0.05 * (attempt + 1))
        if error is not None:
            self.write_errors += 1
            log.error("trace store: a batch of %d writes failed: %s", len(ops), error)
        for waiter in batch.barriers:
            _release(waiter, error)

    # ---- synchronous writes that must be durable at once ---------------------------------

    def record_feedback(
        self,
        task_id: str,
        kind: str,
        *,
        agent: str | None = None,
        note: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Store feedback on a task's routing: `good`, `bad`, or `correction` (with `agent`)."""
        if kind not in ("good", "bad", "correction"):
            raise ConfigError(f"feedback kind must be good, bad or correction, got {kind!r}")
        if kind == "correction" and not agent:
            raise ConfigError("a correction names the agent that should have taken the task")
        if self._ops and self._thread is not None:
            self.flush_sync()
        task = self.task(task_id)
        decision = self.decision(task_id)
        with self._lock, self.engine.begin() as conn:
            row = conn.execute(
                _FEEDBACK.insert().returning(_FEEDBACK.c.id),
                {
                    "task_id": task_id,
                    "kind": kind,
                    "agent": agent,
                    "routed_agent": decision["agent"] if decision else task["agent"],
                    "text": task["text"],
                    "router_version": decision["router_version"] if decision else None,
                    "note": note,
                    "session_id": session_id or task["session_id"],
                    "created_at": time.time(),
                },
            ).scalar_one()
        return int(row)

    def mark_tasks(self, task_ids: Iterable[str], status: TaskStatus, error: str) -> int:
        ids = list(task_ids)
        if not ids:
            return 0
        with self._lock, self.engine.begin() as conn:
            res = conn.execute(
                update(_TASKS)
                .where(_TASKS.c.id.in_(ids))
                .values(status=status.value, error=error, finished_at=time.time())
            )
        return int(res.rowcount or 0)

    # ---- reads ---------------------------------------------------------------------------

    def _rows(self, stmt: Any) -> list[dict[str, Any]]:
        with self._lock, self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        counts = (
            select(_TASKS.c.run_id, func.count().label("tasks"))
            .where(_TASKS.c.parent_id.is_(None))
            .group_by(_TASKS.c.run_id)
            .subquery()
        )
        stmt = (
            select(_RUNS, func.coalesce(counts.c.tasks, 0).label("tasks"))
            .outerjoin(counts, counts.c.run_id == _RUNS.c.id)
            .order_by(_RUNS.c.started_at.desc())
            .limit(limit)
        )
        return self._rows(stmt)

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self._rows(select(_RUNS).where(_RUNS.c.id == run_id))
        return rows[0] if rows else None

    def tasks(
        self,
        *,
        run_id: str | None = None,
        status: str | Iterable[str] | None = None,
        roots_only: bool = False,
        limit: int | None = 50,
    ) -> list[dict[str, Any]]:
        stmt = select(_TASKS).order_by(_TASKS.c.created_at.desc(), _TASKS.c.id.desc())
        if run_id is not None:
            stmt = stmt.where(_TASKS.c.run_id == run_id)
        if isinstance(status, str):
            stmt = stmt.where(_TASKS.c.status == status)
        elif status is not None:
            stmt = stmt.where(_TASKS.c.status.in_(list(status)))
        if roots_only:
            stmt = stmt.where(_TASKS.c.parent_id.is_(None))
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._rows(stmt)

    def task(self, task_id: str) -> dict[str, Any]:
        rows = self._rows(select(_TASKS).where(_TASKS.c.id == task_id))
        if not rows:
            # Accept a unique prefix, as people copy short ids from tables.
            rows = self._rows(select(_TASKS).where(_TASKS.c.id.startswith(task_id)).limit(2))
            if len(rows) != 1:
                raise TaskNotFound(f"no task with id {task_id!r} in {self.url}")
        return rows[0]

    def children(self, task_id: str) -> list[dict[str, Any]]:
        return self._rows(
            select(_TASKS).where(_TASKS.c.parent_id == task_id).order_by(_TASKS.c.created_at)
        )

    def decision(self, task_id: str) -> dict[str, Any] | None:
        rows = self._rows(
            select(_DECISIONS)
            .where(_DECISIONS.c.task_id == task_id)
            .order_by(_DECISIONS.c.id.desc())
            .limit(1)
        )
        return rows[0] if rows else None

    def spans(
        self,
        *,
        task_id: str | None = None,
        run_id: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        stmt = select(_SPANS).order_by(_SPANS.c.started_at)
        if task_id is not None:
            stmt = stmt.where(_SPANS.c.task_id == task_id)
        if run_id is not None:
            stmt = stmt.where(_SPANS.c.run_id == run_id)
        if kind is not None:
            stmt = stmt.where(_SPANS.c.kind == kind)
        return self._rows(stmt)

    def task_tree(self, task_id: str) -> dict[str, Any]:
        """The task with its decision, spans and children, recursively."""
        node = dict(self.task(task_id))
        node["decision"] = self.decision(node["id"])
        node["spans"] = self.spans(task_id=node["id"])
        node["children"] = [self.task_tree(c["id"]) for c in self.children(node["id"])]
        return node

    def unfinished_tasks(self) -> list[dict[str, Any]]:
        return self._rows(
            select(_TASKS)
            .where(_TASKS.c.status.in_([TaskStatus.QUEUED.value, TaskStatus.RUNNING.value]))
            .order_by(_TASKS.c.created_at, _TASKS.c.id)
        )

    def feedback(self) -> list[dict[str, Any]]:
        return self._rows(select(_FEEDBACK).order_by(_FEEDBACK.c.id))

    def labelled_feedback(self) -> list[tuple[str, str]]:
        """(text, agent) pairs people stated: corrections, and routings marked good."""
        pairs = []
        for row in self.feedback():
            if row["kind"] == "correction" and row["agent"]:
                pairs.append((row["text"], row["agent"]))
            elif row["kind"] == "good" and row["routed_agent"]:
                pairs.append((row["text"], row["routed_agent"]))
        return pairs

    def count(self, table: str = "tasks") -> int:
        t = Base.metadata.tables[table]
        with self._lock, self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t)).scalar_one())

    # ---- schema --------------------------------------------------------------------------

    def _init_schema(self) -> None:
        try:
            with self._lock, self.engine.begin() as conn:
                Base.metadata.create_all(conn)
                found = conn.execute(
                    select(MetaRow.value).where(MetaRow.key == "schema_version")
                ).scalar_one_or_none()
                if found is None:
                    conn.execute(
                        MetaRow.__table__.insert(),  # type: ignore[attr-defined]
                        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                    )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open trace store {self.url}: {exc}") from exc
        if found is not None and int(found) != SCHEMA_VERSION:
            raise StoreError(
                f"trace store {self.url} has schema version {found}; this swarm expects "
                f"{SCHEMA_VERSION}. Point --db at a new file or migrate the old one."
            )

    @property
    def schema_version(self) -> int:
        with self._lock, self.engine.connect() as conn:
            value = conn.execute(
                select(MetaRow.value).where(MetaRow.key == "schema_version")
            ).scalar_one()
        return int(value)


_TASK_COLUMNS = tuple(c.name for c in _TASKS.columns)
_TASK_INDEX = {c: i for i, c in enumerate(_TASK_COLUMNS)}
_DECISION_COLUMNS = tuple(c.name for c in _DECISIONS.columns if c.name != "id")
_SPAN_COLUMNS = tuple(c.name for c in _SPANS.columns)
_JSON_COLUMNS = frozenset({"payload", "hops", "output", "candidates", "attributes", "meta"})


class _Batch:
    """One writer round: rows per table, task transitions folded together, then one transaction.

    A transition of a task inserted in the same round folds into its insert; a task that started
    and finished within one round gets one UPDATE. SQLite gets plain `executemany` with JSON
    encoded here (several times faster than per-row ORM processing); other databases get Core.
    """

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.run_done: list[tuple[str, float]] = []
        self.tasks: dict[str, list[Any]] = {}
        self.updates: dict[str, dict[str, Any]] = {}
        self.decisions: list[tuple[Any, ...]] = []
        self.spans: list[tuple[Any, ...]] = []
        self.barriers: list[Any] = []

    def add(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "q":
            t, at = op[1], op[2]
            # In _TASK_COLUMNS order; transitions in the same round write into this list.
            self.tasks[t.id] = [
                t.id, t.run_id, t.parent, t.session, t.text, t.payload, t.priority, t.deadline,
                t.agent, "queued", None, 0, None, None, None, at, None, None,
            ]  # fmt: skip
        elif kind == "rq":
            self._transition(op[1].id, {"status": "queued", "started_at": None})
        elif kind == "s":
            _, task_id, agent, attempt, at = op
            self._transition(
                task_id,
                {"status": "running", "agent": agent, "attempts": attempt, "started_at": at},
            )
        elif kind == "f":
            r: Result = op[1]
            self._transition(
                r.task_id,
                {
                    "status": r.status.value,
                    "agent": r.agent,
                    "attempts": r.attempts,
                    "hops": r.hops,
                    "output": r.output,
                    "error": r.error,
                    "finished_at": op[2],
                },
            )
        elif kind == "d":
            _, task_id, d, at = op
            candidates = [list(c) for c in d.candidates]
            self.decisions.append(
                (task_id, d.agent, d.status, d.confidence, candidates, d.version, d.latency_ms, at)
            )
        elif kind == "sp":
            sp: Span = op[1]
            self.spans.append(
                (
                    sp.id,
                    sp.task_id,
                    sp.run_id,
                    sp.parent_id,
                    sp.kind,
                    sp.name,
                    sp.started_at,
                    sp.ended_at,
                    sp.status,
                    sp.error,
                    sp.attributes,
                )
            )
        elif kind == "run":
            self.runs.append(op[1])
        elif kind == "run_done":
            self.run_done.append((op[1], op[2]))
        else:
            self.barriers.append(op[1])

    def _transition(self, task_id: str, values: dict[str, Any]) -> None:
        row = self.tasks.get(task_id)
        if row is None:
            self.updates.setdefault(task_id, {}).update(values)
        else:
            for column, value in values.items():
                row[_TASK_INDEX[column]] = value

    def write(self, conn: Any) -> None:
        sqlite = conn.dialect.name == "sqlite"
        # The DBAPI cursor itself: SQLAlchemy's exec_driver_sql costs as much again per row.
        cursor = conn.connection.driver_connection.cursor() if sqlite else None
        if self.runs:
            conn.execute(_RUNS.insert(), self.runs)
        tasks = list(self.tasks.values())
        for table, columns, rows in (
            (_TASKS, _TASK_COLUMNS, tasks),
            (_DECISIONS, _DECISION_COLUMNS, self.decisions),
            (_SPANS, _SPAN_COLUMNS, self.spans),
        ):
            if not rows:
                continue
            if sqlite:
                head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                _execute_chunked(cursor, head, len(columns), _encoded(columns, rows))
            else:
                conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for task_id, values in self.updates.items():
            columns = tuple(values)
            groups.setdefault(columns, []).append((*values.values(), task_id))
        for columns, rows in groups.items():
            if sqlite:
                sets = ", ".join(f"{c} = v.{c}" for c in columns)
                head = f"WITH v({', '.join(columns)}, id) AS (VALUES "
                tail = f") UPDATE tasks SET {sets} FROM v WHERE tasks.id = v.id"
                _execute_chunked(
                    cursor, head, len(columns) + 1, _encoded((*columns, "id"), rows), tail
                )
            else:
                stmt = (
                    update(_TASKS)
                    .where(_TASKS.c.id == bindparam("_task_id"))
                    .values({c: bindparam(c) for c in columns})
                )
                conn.execute(
                    stmt,
                    [{**dict(zip(columns, r[:-1], strict=True)), "_task_id": r[-1]} for r in rows],
                )
        for run_id, at in self.run_done:
            conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(finished_at=at))


def _execute_chunked(
    cursor: Any, head: str, width: int, rows: list[tuple[Any, ...]], tail: str = ""
) -> None:
    """Many rows per statement: `executemany` gives the GIL up and back once per row, and a
    thread that must win the GIL back from a busy event loop waits for it each time."""
    group = "(" + ",".join("?" * width) + ")"
    per = max(1, min(500, 30_000 // width))  # under SQLite's 32,766 bound variables
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        cursor.execute(head + ",".join([group] * len(chunk)) + tail, [v for r in chunk for v in r])


def _encoded(columns: tuple[str, ...], rows: list[Any]) -> list[Any]:
    """JSON-encode the JSON columns of `rows` (None stays SQL NULL), as SQLAlchemy's JSON reads."""
    positions = [i for i, c in enumerate(columns) if c in _JSON_COLUMNS]
    if not positions:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i in positions:
            v = values[i]
            if v is not None:
                values[i] = _dumps(v)
        out.append(tuple(values))
    return out


def _dumps(value: Any) -> str:
    if value == {}:
        return "{}"
    return orjson.dumps(value, default=repr).decode()


def _release(waiter: Any, error: BaseException | None) -> None:
    if isinstance(waiter, threading.Event):
        waiter.set()
        return
    fut: asyncio.Future[None] = waiter

    def settle() -> None:
        if fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(StoreError(f"trace store write failed: {error}"))

    try:
        fut.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is gone; nobody is waiting any more
        pass


def _make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"not a database URL: {url!r} ({exc})") from exc
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if database not in ("", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        # WAL + NORMAL: a killed process loses nothing committed; only power loss can.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine
