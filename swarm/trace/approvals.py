"""Approvals in the trace store: the questions agents put to people (`ctx.approve`), found again
after a restart, and decided once. The SQL behind `TraceStore`'s approval methods.

An approval is `waiting` until a person approves or denies it, its time runs out (`expired`), or
its task is cancelled while it waits (`cancelled`). Only a waiting approval changes: every later
decision is refused (`ApprovalDecided`), whichever process makes it, because each change is one
conditional UPDATE (`... WHERE status = 'waiting'`), which the database serialises.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, select, update

from swarm.errors import ApprovalDecided, ConfigError
from swarm.models import TaskStatus, new_id
from swarm.trace.schema import ApprovalRow, TaskRow

__all__ = ["APPROVAL_STATUSES", "WAITING", "ask", "decide", "select_approvals", "settle"]

WAITING = "waiting"
APPROVAL_STATUSES = (WAITING, "approved", "denied", "expired", "cancelled")
"""What an approval can be; every status but `waiting` is final."""

_APPROVALS: Table = ApprovalRow.__table__  # type: ignore[assignment]
_TASKS: Table = TaskRow.__table__  # type: ignore[assignment]


def select_approvals(
    *,
    status: str | Iterable[str] | None = None,
    task_id: str | None = None,
    ids: Iterable[str] | None = None,
    limit: int | None = None,
) -> Any:
    """The SELECT for approvals (oldest first), narrowed by status, task or ids."""
    stmt = select(_APPROVALS).order_by(_APPROVALS.c.created_at, _APPROVALS.c.id)
    if isinstance(status, str):
        _check_status(status)
        stmt = stmt.where(_APPROVALS.c.status == status)
    elif status is not None:
        wanted = list(status)
        for s in wanted:
            _check_status(s)
        stmt = stmt.where(_APPROVALS.c.status.in_(wanted))
    if task_id is not None:
        stmt = stmt.where(_APPROVALS.c.task_id == task_id)
    if ids is not None:
        stmt = stmt.where(_APPROVALS.c.id.in_(list(ids)))
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


def ask(
    conn: Connection,
    task_id: str,
    question: str,
    *,
    occurrence: int,
    run_id: str | None,
    agent: str | None,
    details: dict[str, Any],
    timeout: float | None,
) -> dict[str, Any]:
    """The approval for the `occurrence`-th time (from 0) the task asks `question`: the stored
    one, decided or not (a resumed task asks again), or a new waiting one. While it waits, the
    task's row says `waiting`; both change in the caller's transaction."""
    asked = conn.execute(
        select(_APPROVALS)
        .where(_APPROVALS.c.task_id == task_id, _APPROVALS.c.question == question)
        .order_by(_APPROVALS.c.created_at, _APPROVALS.c.id)
    ).all()
    if occurrence < len(asked):
        row = dict(asked[occurrence]._mapping)
    else:
        now = time.time()
        row = {
            "id": new_id(),
            "task_id": task_id,
            "run_id": run_id,
            "agent": agent,
            "question": question,
            "details": details,
            "status": WAITING,
            "created_at": now,
            "expires_at": None if timeout is None else now + timeout,
            "decided_at": None,
            "decided_by": None,
            "note": None,
        }
        conn.execute(_APPROVALS.insert(), row)
    if row["status"] == WAITING:
        set_task_status(conn, task_id, TaskStatus.WAITING)
    return row


def decide(
    conn: Connection, ref_row: dict[str, Any], approved: bool, by: str | None, note: str | None
) -> dict[str, Any]:
    """Approve or deny the waiting approval `ref_row`; `ApprovalDecided` if it is not waiting
    (any more), or its time ran out (it becomes `expired` then)."""
    now = time.time()
    expires = ref_row["expires_at"]
    if ref_row["status"] == WAITING and expires is not None and now >= expires:
        row = settle(conn, ref_row["id"], "expired", note="no decision in time")
        raise ApprovalDecided(_refusal(row), approval=row)
    changed, row = _settle(conn, ref_row["id"], "approved" if approved else "denied", by, note)
    if not changed:
        raise ApprovalDecided(_refusal(row), approval=row)
    return row


def settle(
    conn: Connection,
    approval_id: str,
    status: str,
    *,
    by: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Move a waiting approval to `status` (once: a decided one stays as it is); the row after."""
    return _settle(conn, approval_id, status, by, note)[1]


def _settle(
    conn: Connection, approval_id: str, status: str, by: str | None, note: str | None
) -> tuple[bool, dict[str, Any]]:
    _check_status(status)
    changed = conn.execute(
        update(_APPROVALS)
        .where(_APPROVALS.c.id == approval_id, _APPROVALS.c.status == WAITING)
        .values(status=status, decided_at=time.time(), decided_by=by, note=note)
    ).rowcount
    row = conn.execute(select(_APPROVALS).where(_APPROVALS.c.id == approval_id)).one()
    return bool(changed), dict(row._mapping)


def set_task_status(conn: Connection, task_id: str, status: TaskStatus) -> None:
    """`waiting` while an approval is open, `running` again after it; a finished task is left."""
    source = TaskStatus.RUNNING if status is TaskStatus.WAITING else TaskStatus.WAITING
    conn.execute(
        update(_TASKS)
        .where(_TASKS.c.id == task_id, _TASKS.c.status == source.value)
        .values(status=status.value)
    )


def _refusal(row: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["decided_at"] or time.time()))
    who = f" by {row['decided_by']}" if row.get("decided_by") else ""
    return (
        f"approval {row['id']} ({row['question']!r}) was {row['status']}{who} at {when}; "
        "a decision is final"
    )


def _check_status(status: str) -> None:
    if status not in APPROVAL_STATUSES:
        raise ConfigError(
            f"approval status must be one of {', '.join(APPROVAL_STATUSES)}, got {status!r}"
        )
