"""The approval desk: where a task's question to a person (`ctx.approve`) is stored, waited on, and
answered, by a decision made in this process (`ApprovalDesk.decide`) or in another one (the
`swarm approve` command, another server), which the desk finds by polling the store.

One poller per scheduler runs while anything waits: every `poll_interval` seconds it reads every
waiting approval of this process in one query. Decisions and waits are announced on
`Scheduler.events` (`waiting`, `approved`, `denied`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from swarm.events import EventBus
from swarm.models import Task
from swarm.scheduler.resume import ResumeReplay
from swarm.trace.approvals import WAITING

__all__ = ["ApprovalDesk", "ApprovalStore"]

log = logging.getLogger("swarm.scheduler")


class ApprovalStore(Protocol):
    """What the desk uses of the trace store (`TraceStore` has these)."""

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
    ) -> dict[str, Any]: ...

    def approvals(
        self,
        status: str | Iterable[str] | None = None,
        task_id: str | None = None,
        *,
        ids: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...

    def decide_approval(
        self, approval_id: str, approved: bool, by: str | None = None, note: str | None = None
    ) -> dict[str, Any]: ...

    def settle_approval(
        self, approval_id: str, status: str, *, note: str | None = None
    ) -> dict[str, Any]: ...

    def task_resumed_from_approval(self, task_id: str) -> None: ...

    def spans(
        self, *, task_id: str | None = None, run_id: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]: ...

    def children(self, task_id: str) -> list[dict[str, Any]]: ...

    async def flush(self) -> None: ...


@dataclass(eq=False, slots=True)
class _Waiter:
    task: Task
    future: asyncio.Future[dict[str, Any]]


class ApprovalDesk:
    """Stores questions, waits for their answers, and hands answers to the tasks that wait.

    `spawn(coroutine)` starts the poller inside the scheduler's task group. Store calls run in
    worker threads (`asyncio.to_thread`): the event loop never waits on the database.
    """

    def __init__(
        self,
        store: ApprovalStore,
        events: EventBus,
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], Any],
        poll_interval: float = 0.5,
    ) -> None:
        self.store = store
        self.events = events
        self.poll_interval = poll_interval
        self._spawn = spawn
        self._waiters: dict[str, _Waiter] = {}
        self._wake = asyncio.Event()
        self._polling = False

    @property
    def waiting(self) -> list[str]:
        """The ids of the approvals tasks of this process wait on now."""
        return list(self._waiters)

    async def open(
        self,
        task: Task,
        agent: str,
        question: str,
        *,
        occurrence: int,
        expires_in: float | None,
        details: dict[str, Any],
    ) -> dict[str, Any]:
        """The stored approval for this question (found again for a resumed task) or a new one.

        Everything the task recorded before it is committed first, so a restart finds it."""
        await self.store.flush()
        row = await asyncio.to_thread(
            self.store.ask_approval,
            task.id,
            question,
            occurrence=occurrence,
            run_id=task.run_id,
            agent=agent,
            details=details,
            timeout=expires_in,
        )
        if row["status"] == WAITING and _expired(row):  # it ran out while nobody ran the task
            row = await self._close(row, task, "expired", "no decision in time")
        return row

    async def wait(self, row: dict[str, Any], task: Task) -> dict[str, Any]:
        """Wait for a decision on the waiting approval `row`; the decided row (or `expired`)."""
        approval_id = row["id"]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[approval_id] = _Waiter(task, future)
        self.events.emit_task(
            "waiting",
            task,
            {
                "approval_id": approval_id,
                "question": row["question"],
                "expires_at": row["expires_at"],
                "details": row["details"],
                "agent": row["agent"],
            },
        )
        if not self._polling:
            self._polling = True
            self._spawn(self._poll())
        try:
            expires = row["expires_at"]
            # Wall-clock time: the limit is stored and must mean the same after a restart.
            left = None if expires is None else max(0.0, expires - time.time())
            try:
                decided = await asyncio.wait_for(asyncio.shield(future), left)
            except TimeoutError:
                del self._waiters[approval_id]
                return await self._close(row, task, "expired", "no decision in time")
        finally:
            self._waiters.pop(approval_id, None)
            if not self._waiters:
                self._wake.set()  # the poller leaves now, not at its next tick
        await self._resumed(decided, task)
        return decided

    async def withdraw(self, row: dict[str, Any], task: Task) -> None:
        """The task was cancelled while it waited: its approval becomes `cancelled`."""
        try:
            await self._close(row, task, "cancelled", "the task was cancelled")
        except Exception:  # the cancellation goes on whatever the store says
            log.exception("could not withdraw approval %s", row["id"])

    async def decide(
        self, approval_id: str, approved: bool, *, by: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Approve or deny (`ApprovalDecided` if it is not waiting); a task of this process that
        waits on it goes on at once."""
        row = await asyncio.to_thread(self.store.decide_approval, approval_id, approved, by, note)
        self._deliver(row)
        return row

    async def replay_for(self, task_id: str) -> ResumeReplay | None:
        """For a resumed task that asked for approval: its recorded tool and LLM calls, and the
        child tasks it delegated to that finished."""
        asked = await asyncio.to_thread(self.store.approvals, task_id=task_id, limit=1)
        if not asked:
            return None
        spans = await asyncio.to_thread(self.store.spans, task_id=task_id)
        children = await asyncio.to_thread(self.store.children, task_id)
        replay = ResumeReplay((s for s in spans if s["kind"] in ("tool", "llm")), children)
        return replay if replay else None

    # ---- inside ---------------------------------------------------------------------------

    def _deliver(self, row: dict[str, Any]) -> None:
        waiter = self._waiters.get(row["id"])
        if waiter is not None and row["status"] != WAITING and not waiter.future.done():
            waiter.future.set_result(row)

    async def _close(
        self, row: dict[str, Any], task: Task, status: str, note: str
    ) -> dict[str, Any]:
        """Settle a waiting approval as `status`; a person's decision made meanwhile stands."""
        row = await asyncio.to_thread(self.store.settle_approval, row["id"], status, note=note)
        if status != "cancelled":
            await self._resumed(row, task)
        return row

    async def _resumed(self, row: dict[str, Any], task: Task) -> None:
        if not any(w.task.id == task.id for w in self._waiters.values()):
            await asyncio.to_thread(self.store.task_resumed_from_approval, task.id)
        kind = "approved" if row["status"] == "approved" else "denied"
        self.events.emit_task(
            kind,
            task,
            {
                "approval_id": row["id"],
                "by": row["decided_by"],
                "note": row["note"],
                "status": row["status"],
            },
        )

    async def _poll(self) -> None:
        """Decisions made by other processes: one query for every waiting approval, each tick."""
        try:
            while self._waiters:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                except TimeoutError:
                    pass
                ids = list(self._waiters)
                if not ids:
                    break
                try:
                    rows = await asyncio.to_thread(self.store.approvals, ids=ids)
                except Exception:  # a store that fails now may answer at the next tick
                    log.exception("could not read the waiting approvals")
                    continue
                for row in rows:
                    self._deliver(row)
        finally:
            self._polling = False


def _expired(row: dict[str, Any]) -> bool:
    return row["expires_at"] is not None and time.time() >= row["expires_at"]
