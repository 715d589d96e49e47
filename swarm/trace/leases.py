"""Task leases: which process runs a task now, so that several processes (`swarm worker`s, a
`swarm run`, `swarm resume`) share one store and a task runs in one place at a time.

A lease owner is a `workers` row. A task's `lease_owner` names the worker that runs it and
`lease_expires_at` when the lease lapses unless renewed; every owner renews all of its leases
in one statement per heartbeat (the store's writer does it: `_rows.LEASE_RENEW`). A task is
claimable when it is queued and unleased (submitted to the queue: `TraceStore.enqueue`), or
when its lease expired (its owner died): then the unfinished children its dead owner had made
are cancelled as superseded, since the parent makes them again when it reruns.

Claiming takes the claimable tasks in one transaction: on PostgreSQL `SELECT ... FOR UPDATE SKIP
LOCKED` (the usual queue idiom: concurrent claimers skip each other's rows instead of waiting)
then `UPDATE`; on SQLite `BEGIN IMMEDIATE` (the one writer lock) and the same `UPDATE`. The
writes of a task's start and result are guarded by its lease (`_rows.Batch`): a process whose
lease expired and was taken never records over the new owner's row.

Times are wall-clock seconds since the epoch, as everywhere in the store; lease and heartbeat
lengths are the store's (`TraceStore(lease=, heartbeat=)`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, func, or_, select, update

from swarm.models import TaskStatus, new_id
from swarm.trace.owner import owner_alive, process_owner
from swarm.trace.schema import TaskRow, WorkerRow

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DEFAULT_LEASE_S",
    "UNFINISHED",
    "WORKER_STATES",
    "claim",
    "holders",
    "lost",
    "new_worker",
    "resumable",
    "take",
    "worker_alive",
    "worker_state",
]

DEFAULT_LEASE_S = 30.0
"""How long a lease lasts without a heartbeat: how long a dead worker's tasks wait."""
DEFAULT_HEARTBEAT_S = 10.0
"""How often an owner renews its leases (a third of the lease: two heartbeats may be late)."""

_TASKS: Table = TaskRow.__table__  # type: ignore[assignment]
_WORKERS: Table = WorkerRow.__table__  # type: ignore[assignment]
# A task waiting for a person (`ctx.approve`) is held by its lease too: taken over, it asks again
# and finds the stored answer.
_UNFINISHED = (TaskStatus.QUEUED.value, TaskStatus.RUNNING.value, TaskStatus.WAITING.value)
UNFINISHED = _UNFINISHED
"""The statuses of a task that a lease holds."""
_SUPERSEDED = "superseded: its parent's lease expired and another worker took it over"


def new_worker(
    kind: str = "process", agents: str | None = None, meta: dict[str, Any] | None = None
) -> tuple[Any, ...]:
    """A `w` op (see `_rows`) for this process: ("w", id, kind, host, pid, agents, started_at,
    meta); `meta["started"]` is the process's start time (`swarm.trace.owner`), so a reused pid
    is not mistaken for it."""
    me = process_owner()
    meta = {**(meta or {}), "started": me["started"]}
    return ("w", f"{kind}-{new_id()}", kind, me["host"], me["pid"], agents, time.time(), meta)


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the write lock from its start on SQLite (`BEGIN IMMEDIATE`: no
    other writer between its reads and its writes); a plain transaction elsewhere."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn
        conn.commit()


def claim(
    engine: Engine,
    owner: str,
    n: int,
    *,
    lease_s: float,
    agents: Iterable[str] | None = None,
    run_id: str | None = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """Lease up to `n` claimable top-level tasks to `owner` for `lease_s` s; their rows.

    Highest priority first, then oldest. With `agents`, a task that names its agent is claimed
    only by an owner that has it. A claimed task without a run joins `run_id`.
    """
    if n <= 0:
        return []
    now = time.time() if now is None else now
    t = _TASKS.c
    where = and_(
        t.status.in_(_UNFINISHED),
        t.parent_id.is_(None),
        or_(and_(t.status == TaskStatus.QUEUED.value, t.lease_owner.is_(None)),
            and_(t.lease_expires_at < now, t.lease_owner != owner)),  # its own: it runs them
    )  # fmt: skip
    if agents is not None:
        where = and_(where, or_(t.forced_agent.is_(None), t.forced_agent.in_(list(agents))))
    picked = (
        select(t.id)
        .where(where)
        .order_by(t.priority.desc(), t.created_at, t.id)
        .limit(n)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite holds the write lock already
        .cte("picked")
        .prefix_with("MATERIALIZED", dialect="postgresql")  # locked once, never re-planned
    )
    values: dict[str, Any] = {"lease_owner": owner, "lease_expires_at": now + lease_s}
    if run_id is not None:
        values["run_id"] = func.coalesce(t.run_id, run_id)
    with _write_transaction(engine) as conn:
        rows = conn.execute(
            update(_TASKS).where(t.id == picked.c.id).values(values).returning(*_TASKS.c)
        ).all()
        if rows:
            _supersede_orphans(conn, now)
    found = [dict(r._mapping) for r in rows]
    found.sort(key=lambda r: (-r["priority"], r["created_at"], r["id"]))
    return found


def _supersede_orphans(conn: Connection, now: float) -> None:
    """Cancel the unfinished children whose lease expired: their parent, rerun, makes them anew."""
    t = _TASKS.c
    conn.execute(
        update(_TASKS)
        .where(
            t.lease_owner.is_not(None),
            t.lease_expires_at < now,
            t.parent_id.is_not(None),
            t.status.in_(_UNFINISHED),
        )
        .values(
            status=TaskStatus.CANCELLED.value,
            error=_SUPERSEDED,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
    )


def take(
    engine: Engine,
    owner: str,
    ids: Iterable[str],
    *,
    lease_s: float,
    dead: Iterable[str] = (),
    force: bool = False,
    now: float | None = None,
) -> list[str]:
    """Lease the unfinished tasks `ids` to `owner` where nobody alive holds them: unleased,
    lease expired, or held by one of the `dead` owners (or by anyone, with `force`). The ids it
    leased; the others were claimed by someone else meanwhile (or finished)."""
    ids = list(ids)
    if not ids:
        return []
    now = time.time() if now is None else now
    t = _TASKS.c
    free = or_(t.lease_owner.is_(None), t.lease_expires_at < now, t.lease_owner == owner)
    if dead := list(dead):
        free = or_(free, t.lease_owner.in_(dead))
    where = and_(t.id.in_(ids), t.status.in_(_UNFINISHED))
    with _write_transaction(engine) as conn:
        taken = conn.execute(
            update(_TASKS)
            .where(where if force else and_(where, free))
            .values(lease_owner=owner, lease_expires_at=now + lease_s)
            .returning(t.id)
        ).scalars()
        return list(taken)


def lost(conn: Connection, owner: str, ids: Iterable[str]) -> dict[str, str | None]:
    """Of the unfinished tasks `ids` that `owner` believes it runs, those whose lease it no
    longer holds: task id -> the owner now (None: released)."""
    ids = list(ids)
    if not ids:
        return {}
    t = _TASKS.c
    rows = conn.execute(
        select(t.id, t.lease_owner).where(
            t.id.in_(ids),
            t.status.in_(_UNFINISHED),
            or_(t.lease_owner.is_(None), t.lease_owner != owner),
        )
    ).all()
    return {r.id: r.lease_owner for r in rows}


def holders(conn: Connection, owners: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The `workers` rows of `owners` (those recorded), by id."""
    owners = list(set(owners))
    if not owners:
        return {}
    rows = conn.execute(select(_WORKERS).where(_WORKERS.c.id.in_(owners))).all()
    return {r.id: dict(r._mapping) for r in rows}


def worker_alive(worker: dict[str, Any] | None) -> bool:
    """Whether a worker row's process may still run: False once it stopped, or when it is on this
    host and its process is gone (exact, `swarm.trace.owner`); True otherwise (another host is
    judged by its leases' expiry)."""
    if worker is None:
        return True  # not written yet: its leases decide
    if worker.get("stopped_at") is not None:
        return False
    started = (worker.get("meta") or {}).get("started")
    return owner_alive({"host": worker["host"], "pid": worker["pid"], "started": started})


WORKER_STATES = ("running", "silent", "dead", "stopped")
"""What `worker_state` says of a worker: `running` (alive by its pid on this host, heartbeating
on another), `silent` (no heartbeat for a whole lease: its leases lapsed; on another host its
process cannot be checked from here), `dead` (on this host, its process is gone), `stopped` (it
stopped and released its leases)."""


def worker_state(worker: dict[str, Any], lease_s: float, now: float | None = None) -> str:
    """One of `WORKER_STATES` for a `workers` row: `stopped` once it recorded its stop; `dead`
    when it is on this host and its pid (with its start time) is gone (`worker_alive`); `silent`
    when its last heartbeat is older than its lease, in seconds: its own (`meta["lease"]`) when
    recorded, else `lease_s`; else `running`."""
    if worker.get("stopped_at") is not None:
        return "stopped"
    if not worker_alive(worker):
        return "dead"
    now = time.time() if now is None else now
    lease = (worker.get("meta") or {}).get("lease")
    if isinstance(lease, bool) or not isinstance(lease, int | float) or lease <= 0:
        lease = lease_s
    return "silent" if now - worker["heartbeat_at"] > lease else "running"


def resumable(
    rows: Iterable[dict[str, Any]],
    workers: dict[str, dict[str, Any]],
    *,
    force: bool = False,
    now: float | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Which unfinished task rows `swarm resume` may take: (taken, left, queued).

    A row leased to a worker that is alive (`worker_alive`: exact on this host) and whose lease
    has not expired is `left`: per lease owner, {"worker", "host", "pid", "lease_left_s",
    "tasks": [ids], "runs": [run ids]}; `force` takes it anyway. A row in the queue (unleased,
    of no run) waits for a worker: `queued`. Rows without a lease from before leases are
    judged by their run's owner, by the caller.
    """
    now = time.time() if now is None else now
    taken: list[dict[str, Any]] = []
    left: dict[str, dict[str, Any]] = {}
    queued: list[dict[str, Any]] = []
    for row in rows:
        owner = row.get("lease_owner")
        if owner is None:
            (queued if row.get("run_id") is None else taken).append(row)
            continue
        worker = workers.get(owner)
        expires = row.get("lease_expires_at") or 0.0
        if force or expires <= now or not worker_alive(worker):
            taken.append(row)
            continue
        held = left.setdefault(
            owner,
            {"worker": owner, "host": (worker or {}).get("host"), "pid": (worker or {}).get("pid"),
             "lease_left_s": 0.0, "tasks": [], "runs": []},
        )  # fmt: skip
        held["lease_left_s"] = round(max(held["lease_left_s"], expires - now), 1)
        held["tasks"].append(row["id"])
        if row.get("run_id") and row["run_id"] not in held["runs"]:
            held["runs"].append(row["run_id"])
    return taken, left, queued
