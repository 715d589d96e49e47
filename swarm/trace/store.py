"""The trace store: every task, routing decision and span, written by a batched writer thread so the
event loop only appends to a buffer. SQLite (WAL) by default; PostgreSQL (psycopg 3) as well; any
SQLAlchemy URL works.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from swarm.context import Span
from swarm.errors import ConfigError, StoreError, TaskNotFound
from swarm.models import OUT_OF_SCOPE, Decision, Result, Task, TaskStatus, new_id
from swarm.trace import _rows, leases
from swarm.trace import approvals as _approvals
from swarm.trace.owner import OWNER_KEY, owner_alive, process_owner
from swarm.trace.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ApprovalRow,
    Base,
    DecisionRow,
    FeedbackRow,
    MetaRow,
    RunRow,
    SpanRow,
    TaskRow,
    WorkerRow,
)

__all__ = ["DEFAULT_DB_URL", "TraceStore"]

log = logging.getLogger("swarm.trace")

DEFAULT_DB_URL = "sqlite:///storage/swarm.db"

_TASKS: Table = TaskRow.__table__  # type: ignore[assignment]
_DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]
_SPANS: Table = SpanRow.__table__  # type: ignore[assignment]
_RUNS: Table = RunRow.__table__  # type: ignore[assignment]
_FEEDBACK: Table = FeedbackRow.__table__  # type: ignore[assignment]
_WORKERS: Table = WorkerRow.__table__  # type: ignore[assignment]
_APPROVALS: Table = ApprovalRow.__table__  # type: ignore[assignment]
_INSERT_ORDER = (_RUNS, _TASKS, _DECISIONS, _SPANS)


class TraceStore:
    """Open with a SQLAlchemy URL; `close()` (or `with`) flushes everything still buffered.

    Writes from async code are buffered and committed in batches by one thread; `await flush()`
    returns once everything written before it is committed. For a SQLite file that thread hands
    each batch to a small writer process (`writer="process"`, the default there), so SQLite runs
    on another core than the event loop; elsewhere it writes itself (`writer="thread"`): on
    PostgreSQL with COPY and grouped UPDATEs over a psycopg connection of its own
    (`swarm.trace._postgres`), which it opens again when the server goes away, for up to
    `retry_for` seconds before the flushes waiting on it raise `StoreError`. Reads are plain
    synchronous queries (call them through `asyncio.to_thread` from async code).

    A value the database refuses (a lone surrogate, an int beyond 64 bits, a circular structure
    ...) never stops the writer: its row is stored in a safe form (`_rows.safe_op`) and the rest
    of the batch as given. What cannot be stored at all (disk full, the writer process killed)
    makes the flushes waiting on it raise `StoreError`, and `close()` raise it once at the end;
    `write_errors` counts such batches and `last_error` says what the last one was.

    Every task this store writes as queued is leased to this process (`swarm.trace.leases`):
    the first one registers it as a lease owner (`hold_leases`), the writer renews its leases
    every `heartbeat` s for `lease` s more, and `close()` releases what it still holds. So
    several processes share one store and a task runs in one place at a time: `enqueue` puts a
    task in the queue for any worker, `claim` takes queued tasks (and those whose lease expired).
    """

    def __init__(
        self,
        url: str = DEFAULT_DB_URL,
        *,
        flush_interval: float = 0.02,
        max_batch: int = 4000,
        writer: Literal["auto", "process", "thread"] = "auto",
        retry_for: float = 30.0,
        lease: float = leases.DEFAULT_LEASE_S,
        heartbeat: float | None = None,
    ) -> None:
        if lease <= 0 or (heartbeat is not None and not 0 < heartbeat < lease):
            raise ConfigError(
                f"a lease lasts more than 0 s and its heartbeat is shorter: lease={lease}, "
                f"heartbeat={heartbeat}"
            )
        self.url = url
        self.lease = lease
        """Seconds a lease lasts from its last heartbeat."""
        self.heartbeat = heartbeat if heartbeat is not None else lease / 3
        """Seconds between two renewals of this process's leases."""
        self.owner: str | None = None
        """This process's id as a lease owner (a `workers` row), from its first task on."""
        self._next_beat = 0.0
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self.engine = _make_engine(url)
        # What messages and logs name: the URL without its password.
        self.shown_url = self.engine.url.render_as_string(hide_password=True)
        self._sqlite_path = _sqlite_file(url)
        if writer == "process" and self._sqlite_path is None:
            raise ConfigError(f"writer='process' needs a SQLite file, not {url}")
        self._use_process = writer != "thread" and self._sqlite_path is not None
        self._process: subprocess.Popen[bytes] | None = None
        self._postgres = _postgres_writer(self.engine, url, retry_for)
        self._seq = 0
        # One shared connection (in-memory SQLite) must not be used by two threads at once.
        self._lock = threading.RLock()
        self._ops: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.write_errors = 0
        self.last_error: str | None = None
        self._broken: str | None = None  # the writer process died: nothing more is written
        try:
            self._init_schema()
        except BaseException:
            self.engine.dispose()  # no connection left open behind a store that never opened
            raise

    # ---- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Write what is buffered, stop the writer, release the database.

        Raises `StoreError` (after all that) if any write of this store's life failed.
        """
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        if self.owner is not None:  # what it still holds is free for others at once
            self._ops.append(("w_stop", self.owner, time.time()))
        self._write_pending()
        if self._postgres is not None:
            self._postgres.close()
        proc, self._process = self._process, None
        if proc is not None:
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.close()  # the writer process ends when its input does
            except OSError:  # it is gone already
                pass
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self.engine.dispose()
        if self.write_errors:
            raise StoreError(
                f"trace store {self.shown_url}: {self.write_errors} batch(es) of writes were not "
                f"stored; the last: {self.last_error}"
            )

    @property
    def closed(self) -> bool:
        return self._closed

    def _ensure_writer(self) -> None:
        if self._thread is None:
            if self._use_process:
                self._process = subprocess.Popen(
                    [sys.executable, _rows.__file__, str(self._sqlite_path)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    # Its own session: Ctrl-C in the terminal is for us; the writer ends when
                    # its input does, after writing everything it was sent.
                    start_new_session=True,
                )
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
        # Who runs it: `swarm resume` leaves the tasks of a live run alone (swarm.trace.owner).
        meta = {**(meta or {}), OWNER_KEY: process_owner()}
        self._push(("run", run_id, kind, agents, router, router_version, time.time(), meta))
        return run_id

    def finish_run(self, run_id: str) -> None:
        self._push(("run_done", run_id, time.time()))

    def hold_leases(
        self,
        *,
        kind: str = "process",
        agents: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Register this process as a lease owner (a `workers` row: `kind` is worker, run,
        resume ..., `agents` the module it serves); its id. Once: later calls return that id."""
        if self.owner is None:
            op = leases.new_worker(kind, agents, meta)
            self.owner = op[1]
            self._next_beat = time.time() + self.heartbeat
            self._push(op)
        return self.owner

    def task_queued(self, task: Task, *, resumed: bool = False) -> None:
        """A new task row, leased to this process; `resumed`: the row exists, set it back to
        queued and leased to this process, for another run (`take` or `claim` it first)."""
        owner = self.owner or self.hold_leases()
        now = time.time()
        if resumed:
            self._push(("rq", task.id, owner, now + self.lease))
            return
        t = task
        self._push(
            ("q", t.id, t.run_id, t.parent, t.session, t.text, t.payload, t.priority, t.deadline,
             t.agent, now, owner, now + self.lease)
        )  # fmt: skip

    def task_started(self, task_id: str, agent: str, attempt: int) -> None:
        """Written only while this process holds the task's lease."""
        self._push(("s", task_id, agent, attempt, time.time(), self.owner))

    def task_finished(self, result: Result) -> None:
        """Written only while this process holds the task's lease, which it releases."""
        r = result
        self._push(
            ("f", r.task_id, r.status.value, r.agent, r.attempts, r.hops, r.output, r.error,
             time.time(), self.owner)
        )  # fmt: skip

    def record_decision(self, task_id: str, decision: Decision) -> None:
        d = decision  # candidates stay tuples here: they are written as JSON arrays all the same
        self._push(
            ("d", task_id, d.agent, d.status, d.confidence, d.candidates, d.version, d.latency_ms,
             time.time(), d.rule or None)
        )  # fmt: skip

    def record_span(self, span: Span) -> None:
        sp = span
        self._push(
            ("sp", sp.id, sp.task_id, sp.run_id, sp.parent_id, sp.kind, sp.name, sp.started_at,
             sp.ended_at, sp.status, sp.error, sp.attributes)
        )  # fmt: skip

    async def flush(self) -> None:
        """Wait until everything written so far is committed.

        Raises `StoreError` if some of it could not be stored (the database refused a batch, the
        disk is full, or the writer process died: then every later flush raises it too).
        """
        if self._closed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(("b", fut))
        self._wake.set()
        await fut

    def flush_sync(self) -> None:
        """Commit everything written so far, from synchronous code; `StoreError` as `flush`."""
        if self._closed or self._thread is None:
            return  # close() wrote everything, or nothing was ever written: start no writer
        done = _SyncWaiter()
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
            if self.owner is not None and (now := time.time()) >= self._next_beat:
                # Every lease in one statement, through the one write path, in order after the
                # rows that made them.
                self._ops.append(("hb", self.owner, now, now + self.lease))
                self._next_beat = now + self.heartbeat
            self._write_pending()

    def _write_pending(self) -> None:
        while self._ops:
            n = min(len(self._ops), self._max_batch * 4)
            ops = [self._ops.popleft() for _ in range(n)]
            self._write_batch(ops)

    def _write_batch(self, ops: list[tuple[Any, ...]]) -> None:
        barriers = [op[1] for op in ops if op[0] == "b"]
        rows = [op for op in ops if op[0] != "b"]
        error: str | None = None
        notes: list[str] = []
        if self._broken is not None:  # every flush from now on says so, rows or not
            error = self._broken
        elif rows:
            try:
                if self._process is not None:
                    error, notes = self._send(rows)
                else:
                    error, notes = self._write_here(rows)
            except Exception as exc:  # never lose the writer thread, nor leave a flush waiting
                log.exception("trace store: the writer failed")
                error = f"the writer failed: {type(exc).__name__}: {exc}"
        for note in notes[:20]:
            log.warning("trace store: %s", note)
        if len(notes) > 20:
            log.warning("trace store: %d more rows stored in a safe form", len(notes) - 20)
        if error is not None:
            self.write_errors += bool(rows)
            if error != self.last_error:  # once, not once a batch, while the writer is gone
                log.error("trace store %s: %s", self.shown_url, error)
            self.last_error = error
        for waiter in barriers:
            _release(waiter, error and f"trace store {self.shown_url}: {error}")

    def _write_here(self, rows: list[tuple[Any, ...]]) -> _rows.Outcome:
        if self._postgres is not None:  # a connection of its own: no lock to share
            return self._postgres.write(rows)
        with self._lock:
            if self.engine.dialect.name == "sqlite":
                # The DBAPI connection itself: SQLAlchemy's per-row processing would cost as
                # much again as SQLite does.
                raw = self.engine.raw_connection()
                try:
                    conn: Any = raw.driver_connection
                    return _rows.write_sqlite(conn, rows)
                finally:
                    raw.close()
            return _rows.write(
                rows, self._write_core, transient=(OperationalError,), escape_nul=True
            )

    def _write_core(self, batch: _rows.Batch) -> None:
        with self.engine.begin() as conn:
            _write_core(conn, batch)

    def _send(self, rows: list[tuple[Any, ...]]) -> _rows.Outcome:
        """Hand a batch to the writer process; wait for its answer (the GIL is free meanwhile)."""
        proc = self._process
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        self._seq += 1
        try:
            try:
                _rows.send_frame(proc.stdin, (self._seq, rows))
                seq, error, notes = _rows.read_frame(proc.stdout)
            except (OSError, EOFError):
                raise
            except Exception:  # objects pickle refuses (or too deep for it)
                error = _rows.REFUSED
            if error == _rows.REFUSED:  # or objects the writer will not import: plain values
                _rows.send_frame(proc.stdin, (self._seq, [_rows.safe_op(op) for op in rows]))
                seq, error, notes = _rows.read_frame(proc.stdout)
        except (OSError, EOFError) as exc:
            try:
                code = proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            self._broken = (
                f"the writer process for {self._sqlite_path} stopped (exit code {code}, {exc!r}); "
                "nothing written since its last commit is stored"
            )
            return self._broken, []
        assert seq == self._seq
        return error, notes

    # ---- synchronous writes that must be durable at once ---------------------------------

    def record_feedback(
        self,
        task_id: str,
        kind: str,
        *,
        agent: str | None = None,
        note: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """Store feedback on a task's routing: `good`, `bad`, or `correction` (with `agent`).

        `task_id` may be a unique prefix; the stored row (with the full id) is returned. The rules
        about what a person may say live in `swarm.feedback.record_feedback`.
        """
        if kind not in ("good", "bad", "correction"):
            raise ConfigError(f"feedback kind must be good, bad or correction, got {kind!r}")
        if kind == "correction" and not agent:
            raise ConfigError("a correction names the agent that should have taken the task")
        self.flush_sync()
        task = self.task(task_id)
        decision = self.decision(task["id"])
        safe = _safe_text_for(self.engine)
        with self._lock, self.engine.begin() as conn:
            row = conn.execute(
                _FEEDBACK.insert().returning(*_FEEDBACK.c),
                {
                    "task_id": task["id"],
                    "kind": kind,
                    "agent": safe(agent),
                    "routed_agent": decision["agent"] if decision else task["agent"],
                    "text": task["text"],
                    # A forced task's decision names no router version: "" is stored as None.
                    "router_version": (decision["router_version"] or None) if decision else None,
                    "note": safe(note),
                    "session_id": safe(session_id or task["session_id"]),
                    "created_at": time.time(),
                },
            ).one()
        return dict(row._mapping)

    # ---- approvals (`ctx.approve`; the SQL is in swarm.trace.approvals) -------------------

    def ask_approval(
        self,
        task_id: str,
        question: str,
        *,
        occurrence: int = 0,
        run_id: str | None = None,
        agent: str | None = None,
        details: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The approval row for the `occurrence`-th time (from 0) task `task_id` asks `question`:
        the stored one, decided or not (so a resumed task never asks twice), else a new waiting
        one that expires `timeout` seconds from now (never when None). While the row waits, the
        task's status is `waiting`. Durable when it returns."""
        safe = _safe_text_for(self.engine)
        nul = self.engine.dialect.name != "sqlite"
        with self._lock, self.engine.begin() as conn:
            return _approvals.ask(
                conn,
                task_id,
                safe(question) or "",
                occurrence=occurrence,
                run_id=run_id,
                agent=agent,
                details=_rows.safe_json(details or {}, escape_nul=nul),
                timeout=timeout,
            )

    def approvals(
        self,
        status: str | Iterable[str] | None = None,
        task_id: str | None = None,
        *,
        ids: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Approval rows, oldest first: all, or those with `status` (waiting, approved, denied,
        expired, cancelled), of one task, or with these `ids`. `ConfigError` for another status."""
        return self._rows(
            _approvals.select_approvals(status=status, task_id=task_id, ids=ids, limit=limit)
        )

    def approval(self, approval_id: str) -> dict[str, Any]:
        """The approval whose id is `approval_id`, or ends or begins with it (as `task`);
        `TaskNotFound` for none or several."""
        rows = self._rows(_approvals.select_approvals(ids=[approval_id]))
        return rows[0] if rows else self._by_part(_APPROVALS, approval_id, "approval")

    def decide_approval(
        self, approval_id: str, approved: bool, by: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Approve (`approved=True`) or deny a waiting approval; returns the decided row.

        `approval_id` resolves as `approval` does. A decision is final: deciding an approval
        that is not waiting (decided, expired, cancelled), or whose time ran out, raises
        `ApprovalDecided` (which carries the row). The task that waits learns of it at once in
        this process, or by polling the store in another."""
        row = self.approval(approval_id)
        safe = _safe_text_for(self.engine)
        with self._lock, self.engine.begin() as conn:
            return _approvals.decide(conn, row, approved, safe(by), safe(note))

    def settle_approval(
        self, approval_id: str, status: str, *, note: str | None = None
    ) -> dict[str, Any]:
        """Close a waiting approval as `expired` or `cancelled` (a decided one stays as it is);
        the row as it stands after."""
        with self._lock, self.engine.begin() as conn:
            return _approvals.settle(conn, approval_id, status, note=note)

    def task_resumed_from_approval(self, task_id: str) -> None:
        """The task's approvals are decided: its status goes from `waiting` back to `running`."""
        with self._lock, self.engine.begin() as conn:
            _approvals.set_task_status(conn, task_id, TaskStatus.RUNNING)

    def mark_tasks(self, task_ids: Iterable[str], status: TaskStatus, error: str) -> int:
        ids = list(task_ids)
        if not ids:
            return 0
        with self._lock, self.engine.begin() as conn:
            res = conn.execute(
                update(_TASKS)
                .where(_TASKS.c.id.in_(ids))
                .values(
                    status=status.value,
                    error=_safe_text_for(self.engine)(error),
                    finished_at=time.time(),
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
        return int(res.rowcount or 0)

    # ---- the shared queue (`swarm.trace.leases`): synchronous, durable at once -------------

    def enqueue(
        self,
        text: str,
        *,
        agent: str | None = None,
        payload: dict[str, Any] | None = None,
        priority: int = 0,
        session: str | None = None,
    ) -> str:
        """Put a task in the queue for whichever worker claims it first (`swarm worker`); its id.

        The row is queued and unleased, committed before this returns. `agent` skips routing
        (only workers that have that agent claim it). See `enqueue_many` for many at once.
        """
        task = Task(text=text, agent=agent, payload=payload or {}, priority=priority,
                    session=session)  # fmt: skip
        return self.enqueue_many([task])[0]

    def enqueue_many(self, tasks: Iterable[Task | str]) -> list[str]:
        """`enqueue` for many tasks (`Task`s or texts), in one transaction; their ids, in order.

        A task's `parent` and `deadline` are not kept: a queued task is top-level, and deadlines
        are on the clock of the process that runs it."""
        items = [Task(text=t) if isinstance(t, str) else t for t in tasks]
        if not items:
            return []
        now = time.time()
        rows = [
            {"id": t.id, "run_id": t.run_id, "session_id": t.session, "text": t.text,
             "payload": t.payload, "priority": t.priority, "forced_agent": t.agent,
             "status": TaskStatus.QUEUED.value, "attempts": 0, "created_at": now}
            for t in items
        ]  # fmt: skip
        with self._lock, self.engine.begin() as conn:
            conn.execute(_TASKS.insert(), rows)
        return [t.id for t in items]

    def claim(
        self, n: int, *, agents: Iterable[str] | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Lease up to `n` queued tasks (or tasks whose lease expired) to this process; their rows.

        `agents`: the agents this process has (a task naming another is left); `run_id`: the run
        a claimed task without one joins. See `swarm.trace.leases.claim`."""
        owner = self.hold_leases(kind="worker")
        with self._lock:
            return leases.claim(
                self.engine, owner, n, lease_s=self.lease, agents=agents, run_id=run_id
            )

    def take(
        self, task_ids: Iterable[str], *, dead: Iterable[str] = (), force: bool = False
    ) -> list[str]:
        """Lease the unfinished tasks `task_ids` to this process where nobody alive holds them
        (`dead`: owners known dead; `force`: whoever holds them); the ids it got."""
        owner = self.hold_leases()
        with self._lock:
            return leases.take(
                self.engine, owner, task_ids, lease_s=self.lease, dead=dead, force=force
            )

    def lost_leases(self, task_ids: Iterable[str]) -> dict[str, str | None]:
        """Of `task_ids` (unfinished tasks this process runs), those whose lease another owner
        holds now (or nobody): task id -> that owner."""
        if self.owner is None:
            return {}
        with self._lock, self.engine.connect() as conn:
            return leases.lost(conn, self.owner, task_ids)

    def workers(self, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """`workers` rows (lease owners): those of `ids`, or all, latest heartbeat first; each
        with `state` (`leases.worker_state`: running, silent, dead or stopped; a row without its
        own lease length is judged by this store's `lease`), `leases` (unfinished tasks whose
        lease it holds now, unexpired: 0 once others took a dead worker's tasks) and
        `heartbeat_age_s` (seconds since its last heartbeat)."""
        stmt = select(_WORKERS).order_by(_WORKERS.c.heartbeat_at.desc())
        if ids is not None:
            stmt = stmt.where(_WORKERS.c.id.in_(list(ids)))
        rows = self._rows(stmt)
        now = time.time()
        t = _TASKS.c
        held = {
            r["lease_owner"]: r["n"]
            for r in self._rows(
                select(t.lease_owner, func.count().label("n"))
                .where(
                    t.lease_owner.in_([w["id"] for w in rows]),
                    t.lease_expires_at > now,
                    t.status.in_(leases.UNFINISHED),
                )
                .group_by(t.lease_owner)
            )
        }
        for w in rows:
            w["state"] = leases.worker_state(w, self.lease, now)
            w["leases"] = held.get(w["id"], 0)
            w["heartbeat_age_s"] = round(now - w["heartbeat_at"], 1)
        return rows

    # ---- reads ---------------------------------------------------------------------------

    def _rows(self, stmt: Any) -> list[dict[str, Any]]:
        try:
            with self._lock, self.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(stmt)]
        except OperationalError as exc:  # the server is gone, the file locked past the timeout
            detail = " ".join(str(exc.orig or exc).split())[:300]
            raise StoreError(f"trace store {self.shown_url}: cannot read: {detail}") from exc

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

    def live_owner(self, run_id: str) -> dict[str, Any] | None:
        """The owner of `run_id`, or of an unfinished resume of it, whose process may still be
        running (see swarm.trace.owner); None when nobody alive holds the run's tasks."""
        unfinished = self._rows(select(_RUNS).where(_RUNS.c.finished_at.is_(None)))
        for run in unfinished:
            meta = run.get("meta") or {}
            if run["id"] != run_id and meta.get("resumes") != run_id:
                continue
            owner = meta.get(OWNER_KEY)
            if isinstance(owner, dict) and owner_alive(owner) and owner != process_owner():
                return owner
        return None

    def find_run(self, ref: str) -> dict[str, Any]:
        """The run whose id is `ref`, or ends or begins with it (see `task`).

        Raises `TaskNotFound` for no run, or for several (it names how many and shows some).
        """
        return self.run(ref) or self._by_part(_RUNS, ref, "run")

    def tasks(
        self,
        *,
        run_id: str | None = None,
        status: str | Iterable[str] | None = None,
        roots_only: bool = False,
        limit: int | None = 50,
        ids: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Task rows, latest first: of a run, in a status (or any of several), top-level only,
        or exactly those `ids` (full ids)."""
        stmt = select(_TASKS).order_by(_TASKS.c.created_at.desc(), _TASKS.c.id.desc())
        if ids is not None:
            stmt = stmt.where(_TASKS.c.id.in_(list(ids)))
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
        """The task whose id is `task_id`, or ends with it (the short id people see, `short_id`),
        or begins with it.

        Raises `TaskNotFound` for no task, or for several: then it says how many and shows a few.
        """
        rows = self._rows(select(_TASKS).where(_TASKS.c.id == task_id))
        return rows[0] if rows else self._by_part(_TASKS, task_id, "task")

    def _by_part(self, table: Table, ref: str, what: str) -> dict[str, Any]:
        # Ids begin with the time, so the ids of one run share their first characters and
        # differ at the end: a suffix is what people copy. A prefix is accepted too.
        ends = table.c.id.endswith(ref, autoescape=True)
        begins = table.c.id.startswith(ref, autoescape=True)
        for where in (ends, begins):
            found = self._rows(select(table).where(where).order_by(table.c.id).limit(6))
            if len(found) == 1:
                return found[0]
            if found:
                with self._lock, self.engine.connect() as conn:
                    n = conn.execute(select(func.count()).select_from(table).where(where)).scalar()
                shown = [f"{r['id']} ({_gist(r)})" for r in found[:5]]
                raise TaskNotFound(
                    f"{ref!r} matches {n} {what}s in {self.shown_url}: {', '.join(shown)}"
                    f"{', ...' if (n or 0) > 5 else ''}; give more of the id"
                )
        raise TaskNotFound(f"no {what} with id {ref!r} in {self.shown_url}")

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
            .where(
                _TASKS.c.status.in_(
                    [TaskStatus.QUEUED.value, TaskStatus.RUNNING.value, TaskStatus.WAITING.value]
                )
            )
            .order_by(_TASKS.c.created_at, _TASKS.c.id)
        )

    def feedback(self) -> list[dict[str, Any]]:
        return self._rows(select(_FEEDBACK).order_by(_FEEDBACK.c.id))

    def labelled_feedback(self) -> list[tuple[str, str]]:
        """(text, agent) pairs people stated: corrections, and routings marked good (a rejection
        marked good labels the text `oos`: no agent should take it)."""
        pairs = []
        for row in self.feedback():
            if row["kind"] == "correction" and row["agent"]:
                pairs.append((row["text"], row["agent"]))
            elif row["kind"] == "good":
                pairs.append((row["text"], row["routed_agent"] or OUT_OF_SCOPE))
        return pairs

    def count(self, table: str = "tasks") -> int:
        t = Base.metadata.tables[table]
        with self._lock, self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t)).scalar_one())

    # ---- schema --------------------------------------------------------------------------

    def _init_schema(self) -> None:
        """Make the tables, or migrate them, once, even when several processes open one new
        database at the same moment (workers started together): PostgreSQL serialises them with
        an advisory lock; elsewhere, the loser of a race on a CREATE sees the winner's tables on
        its next try."""
        for attempt in range(_SCHEMA_TRIES):
            try:
                self._make_schema()
                return
            except SQLAlchemyError as exc:
                if attempt == _SCHEMA_TRIES - 1:
                    raise StoreError(f"cannot open trace store {self.shown_url}: {exc}") from exc
                time.sleep(0.05 * (attempt + 1))

    def _make_schema(self) -> None:
        with self._lock, self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # held until this transaction ends
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
            found = _stored_version(conn)
            if found is not None and int(found) > SCHEMA_VERSION:
                raise StoreError(
                    f"trace store {self.shown_url} has schema version {found}; this swarm "
                    f"knows versions up to {SCHEMA_VERSION}. Upgrade swarm or point --db "
                    "elsewhere."
                )
            Base.metadata.create_all(conn)
            # A store made before decisions named their rule gets the nullable column.
            columns = {c["name"] for c in inspect(conn).get_columns("routing_decisions")}
            if "rule" not in columns:
                conn.execute(text("ALTER TABLE routing_decisions ADD COLUMN rule VARCHAR(32)"))
            meta = MetaRow.__table__
            if found is None:
                conn.execute(
                    meta.insert(),  # type: ignore[attr-defined]
                    {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                )
                return
            version = int(found)
            while version < SCHEMA_VERSION:  # additive steps, in one transaction
                for statement in MIGRATIONS.get(version, ()):
                    conn.execute(text(statement))
                version += 1
            conn.execute(
                update(meta)  # type: ignore[arg-type]
                .where(MetaRow.key == "schema_version")
                .values(value=str(SCHEMA_VERSION))
            )

    @property
    def schema_version(self) -> int:
        with self._lock, self.engine.connect() as conn:
            value = conn.execute(
                select(MetaRow.value).where(MetaRow.key == "schema_version")
            ).scalar_one()
        return int(value)


_SCHEMA_TRIES = 5
_SCHEMA_LOCK = 0x5357_4152_4D00  # "SWARM": the advisory lock key of schema changes


def _stored_version(conn: Any) -> str | None:
    """The schema version a store records, or None for a new (empty) database."""
    if not inspect(conn).has_table(MetaRow.__tablename__):
        return None
    return conn.execute(  # type: ignore[no-any-return]
        select(MetaRow.value).where(MetaRow.key == "schema_version")
    ).scalar_one_or_none()


def _write_core(conn: Any, batch: _rows.Batch) -> None:
    """A batch through SQLAlchemy Core, for databases other than SQLite."""
    tables: tuple[tuple[Table, tuple[str, ...], list[Any]], ...] = (
        (_RUNS, _rows.RUN_COLUMNS, batch.runs),
        (_TASKS, _rows.TASK_COLUMNS, list(batch.tasks.values())),
        (_DECISIONS, _rows.DECISION_COLUMNS, batch.decisions),
        (_SPANS, _rows.SPAN_COLUMNS, batch.spans),
        (_WORKERS, _rows.WORKER_COLUMNS, batch.workers),
    )
    for table, columns, rows in tables:
        if rows:
            conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
    for (columns, guarded), rows in batch.update_groups().items():
        if guarded:  # only the rows whose lease this owner still holds, locked until commit
            owners: dict[str, list[str]] = {}
            for r in rows:
                owners.setdefault(r[-2], []).append(r[-1])
            held = set()
            for owner, ids in owners.items():
                held |= set(
                    conn.execute(
                        select(_TASKS.c.id)
                        .where(_TASKS.c.id.in_(ids), _TASKS.c.lease_owner == owner)
                        .with_for_update()
                    ).scalars()
                )
            batch.refused(len(rows) - len(held), [r[-1] for r in rows if r[-1] not in held])
            rows = [(*r[:-2], r[-1]) for r in rows if r[-1] in held]
            if not rows:
                continue
        stmt = (
            update(_TASKS)
            .where(_TASKS.c.id == bindparam("_task_id"))
            .values({c: bindparam(c) for c in columns})
        )
        conn.execute(
            stmt, [{**dict(zip(columns, r[:-1], strict=True)), "_task_id": r[-1]} for r in rows]
        )
    for run_id, at in batch.run_done:
        conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(finished_at=at))
    leased = _TASKS.c.lease_owner
    for owner, at, expires in batch.heartbeats:  # as _rows.LEASE_RENEW and WORKER_BEAT
        conn.execute(update(_TASKS).where(leased == owner).values(lease_expires_at=expires))
        conn.execute(update(_WORKERS).where(_WORKERS.c.id == owner).values(heartbeat_at=at))
    for owner, at in batch.stops:  # as _rows.LEASE_RELEASE and WORKER_STOP
        released = {"lease_owner": None, "lease_expires_at": None}
        conn.execute(update(_TASKS).where(leased == owner).values(released))
        conn.execute(update(_WORKERS).where(_WORKERS.c.id == owner).values(stopped_at=at))


def _gist(row: dict[str, Any]) -> str:
    if "text" in row or "question" in row:
        text = str(row.get("text", row.get("question")))
        return repr(text if len(text) <= 30 else text[:29] + "…")
    return f"{row.get('kind', 'run')}, {row.get('router') or 'no router'}"


class _SyncWaiter:
    """A flush from synchronous code: an event, and the error that came with it."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: str | None = None

    def wait(self) -> None:
        self.event.wait()
        if self.error is not None:
            raise StoreError(self.error)


def _safe_text_for(engine: Engine) -> Any:
    nul = engine.dialect.name != "sqlite"

    def safe(text: str | None) -> str | None:
        return None if text is None else _rows.safe_text(text, escape_nul=nul)

    return safe


def _release(waiter: Any, error: str | None) -> None:
    if isinstance(waiter, _SyncWaiter):
        waiter.error = error
        waiter.event.set()
        return
    fut: asyncio.Future[None] = waiter

    def settle() -> None:
        if fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(StoreError(error))

    try:
        fut.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is gone; nobody is waiting any more
        pass


def _postgres_writer(engine: Engine, url: str, retry_for: float) -> Any:
    """The PostgreSQL writer for a PostgreSQL engine when psycopg 3 is installed, else None (the
    writes go through SQLAlchemy Core)."""
    if engine.dialect.name != "postgresql":
        return None
    try:
        from swarm.trace._postgres import PostgresWriter
    except ImportError:  # no psycopg 3 (the `postgres` extra): another driver, through Core
        return None
    return PostgresWriter(url, retry_for=retry_for)


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for memory databases and other backends."""
    try:
        parsed = make_url(url)
    except Exception:
        return None
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or parsed.query:
        return None  # URI filenames and options: leave them to SQLAlchemy
    return Path(database).expanduser().resolve()


def _make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"not a database URL: {url!r} ({exc})") from exc
    if parsed.get_backend_name() != "sqlite":
        # JSON as the writer encodes it for SQLite (orjson; values made safe pass as they are).
        return create_engine(url, pool_pre_ping=True, json_serializer=_rows.json_text)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        _rows.configure(dbapi_conn, wal=database not in ("", ":memory:"))

    return engine
