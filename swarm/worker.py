"""`Worker`: one of several processes that share a store's queue. It claims queued tasks under a
lease, runs them through a normal `Scheduler`, and lets go of any whose lease it lost.

    async with Worker("mypkg.agents", db="postgresql+psycopg://...", concurrency=32) as w:
        await w.serve()          # until `w.stop()` (SIGTERM/SIGINT in `swarm worker`)

Tasks get into the queue from any process: `TraceStore.enqueue` (Python), `swarm submit` (CLI).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterable
from typing import Any

from swarm.agents import Agent, AgentRegistry
from swarm.errors import ConfigError, StoreError
from swarm.models import Task
from swarm.paths import DEFAULT_MODELS_DIR
from swarm.scheduler import RouterLike, Scheduler, TaskHandle
from swarm.trace import TraceStore

__all__ = ["Worker"]

log = logging.getLogger("swarm.worker")


class Worker:
    """Claims tasks from the queue of the store at `db` and runs them on `agents`.

    - `agents`: agents, an `AgentRegistry`, or a module path (recorded, so `swarm resume` can
      reload it; otherwise `agents_spec` may name their module), as for `Swarm`.
    - `router`: a `RouterLike`; default: the serving trained router for these agents.
    - `db`: a SQLAlchemy URL (PostgreSQL for workers on several machines) or an open `TraceStore`
      (then its `lease` and `heartbeat` apply, and the caller closes it).
    - `concurrency`: tasks this worker holds at once (claimed and unfinished; the children they
      delegate come on top). It claims again when a quarter of that is free, or every `poll` s.
    - `lease`, `heartbeat`: seconds (`swarm.trace.leases`): a worker that stops heartbeating
      for `lease` s has its unfinished tasks taken over by others. Every heartbeat it also
      checks that it still holds the leases of what it runs, and cancels what it lost.
    - Other keywords go to `Scheduler` (hop_limit, retry, llm, services ...).

    `serve()` runs until `stop()`; `serve(idle_exit=S)` returns once nothing was left to claim
    nor running for `S` s. Leaving, it lets running tasks finish (up to `grace` s), and the
    store releases what it still holds.
    """

    def __init__(
        self,
        agents: Iterable[Agent | type[Agent]] | AgentRegistry | str,
        *,
        db: str | TraceStore,
        router: RouterLike | None = None,
        concurrency: int = 16,
        lease: float = 30.0,
        heartbeat: float | None = None,
        poll: float = 0.5,
        grace: float = 10.0,
        models_dir: str = DEFAULT_MODELS_DIR,
        router_spec: str | None = None,
        agents_spec: str | None = None,
        **options: Any,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"a worker runs at least one task at a time, not {concurrency}")
        self.agents_spec = agents if isinstance(agents, str) else agents_spec
        self.registry = AgentRegistry.of(agents, what="a worker")
        self.router = router
        self.router_spec = router_spec
        self.models_dir = models_dir
        self.concurrency = concurrency
        self.poll = poll
        self.grace = grace
        self.options = options
        self._db = db
        self._lease = (lease, heartbeat)
        self.store: TraceStore | None = None
        self.scheduler: Scheduler | None = None
        self.run_id: str | None = None
        self.held: dict[str, TaskHandle] = {}
        """Tasks claimed and not finished: id -> handle."""
        self.claimed = 0
        self.lost = 0
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def id(self) -> str | None:
        """This worker's id as a lease owner (`workers.id`), once started."""
        return self.store.owner if self.store is not None else None

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        await self.close(drain=exc_type is None)

    async def start(self) -> None:
        if self.router is None:
            from swarm.router import load_serving_router  # lazy: torch and the encoder

            self.router = await asyncio.to_thread(
                load_serving_router, self.models_dir, registry=self.registry
            )
        if isinstance(self._db, TraceStore):
            self.store = self._db
        else:
            lease, heartbeat = self._lease
            self.store = await asyncio.to_thread(
                TraceStore, self._db, lease=lease, heartbeat=heartbeat
            )
        store = self.store
        store.hold_leases(
            kind="worker",
            agents=self.agents_spec,
            # its own lease length: `swarm workers` calls it silent past that without a heartbeat
            meta={"concurrency": self.concurrency, "lease": store.lease},
        )
        self.run_id = store.start_run(
            kind="worker",
            agents=self.agents_spec,
            router=self.router_spec,
            router_version=self.router.version,
            meta={"worker": store.owner},
        )
        await store.flush()
        self.scheduler = Scheduler(
            self.registry,
            self.router,
            store=store,
            approvals=store,  # `ctx.approve` works in a worker as in `swarm run`
            run_id=self.run_id,
            concurrency=self.concurrency,
            **self.options,
        )
        await self.scheduler.start()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop claiming; `serve` returns once what runs has finished."""
        self._stopping.set()
        self._room.set()

    async def serve(self, *, idle_exit: float | None = None) -> None:
        """Claim and run tasks until `stop()` (or idle for `idle_exit` s); then wait for the
        tasks it holds. Checks its leases every heartbeat meanwhile."""
        if self.scheduler is None:
            await self.start()
        assert self.store is not None
        async with asyncio.TaskGroup() as group:
            watch = group.create_task(self._watch_leases())
            await self._claim_loop(idle_exit)
            while self.held:  # let what it holds finish (close() cancels past its grace)
                self._room.clear()
                await self._room.wait()
            watch.cancel()

    async def _claim_loop(self, idle_exit: float | None) -> None:
        assert self.store is not None
        store, names = self.store, self.registry.names
        idle_since = time.monotonic()
        threshold = max(1, self.concurrency // 4)
        while not self._stopping.is_set():
            room = self.concurrency - len(self.held)
            got = 0
            if room >= threshold or not self.held:
                try:
                    rows = await asyncio.to_thread(
                        store.claim, room, agents=names, run_id=self.run_id
                    )
                except Exception as exc:  # the database went away a moment: try again later
                    log.warning("worker %s: claiming failed: %s", self.id, exc)
                    rows = []
                got = len(rows)
                for row in rows:
                    if row["id"] not in self.held:
                        await self._run(row)
            if self.held or got:
                idle_since = time.monotonic()
            elif idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                return
            if got and got == room:
                continue  # the queue has more: claim again when there is room
            self._room.clear()
            try:
                # Room frees up as tasks finish; an empty queue is looked at every `poll` s.
                await asyncio.wait_for(self._room.wait(), self.poll)
            except TimeoutError:
                pass

    async def _run(self, row: dict[str, Any]) -> None:
        assert self.scheduler is not None
        task = Task(
            id=row["id"],
            text=row["text"],
            payload=row["payload"] or {},
            priority=row["priority"],
            session=row["session_id"],
            agent=row["forced_agent"],
            run_id=row["run_id"],
        )
        handle = await self.scheduler.resume(task)  # its row exists: back to queued, leased here
        self.held[task.id] = handle
        self.claimed += 1
        handle.add_done_callback(functools.partial(self._done, task.id))

    def _done(self, task_id: str, _result: object = None) -> None:
        self.held.pop(task_id, None)
        free = self.concurrency - len(self.held)
        if free >= max(1, self.concurrency // 4) or not self.held or self._stopping.is_set():
            self._room.set()

    async def _watch_leases(self) -> None:
        """Every heartbeat: cancel the tasks whose lease another worker took (this one was too
        slow to renew it), so they do not run in two places for longer than that."""
        assert self.store is not None and self.scheduler is not None
        store, scheduler = self.store, self.scheduler
        while True:
            await asyncio.sleep(store.heartbeat)
            # Only tasks claimed before the query starts: their claims are committed, so a
            # missing lease really was lost.
            ids = [i for i, h in self.held.items() if not h.done()]
            try:
                gone = await asyncio.to_thread(store.lost_leases, ids)
            except Exception as exc:
                log.warning("worker %s: checking leases failed: %s", self.id, exc)
                continue
            for task_id, holder in gone.items():
                handle = self.held.get(task_id)
                if handle is None or handle.done():
                    continue
                self.lost += 1
                log.warning(
                    "worker %s lost the lease of task %s to %s; cancelled here (its result is "
                    "not recorded)",
                    self.id,
                    task_id,
                    holder or "nobody",
                )
                scheduler.cancel(task_id)

    async def close(self, *, drain: bool = True) -> None:
        """Stop claiming, stop the scheduler (running tasks get `grace` s when `drain`), end the
        run, and close the store this worker opened (which releases its leases)."""
        self.stop()
        try:
            if self.scheduler is not None:
                scheduler, self.scheduler = self.scheduler, None
                await scheduler.close(drain=drain, grace=self.grace)
        finally:
            store = self.store
            if store is not None and not store.closed:
                if self.run_id is not None:
                    store.finish_run(self.run_id)
                if store is not self._db:
                    await asyncio.to_thread(store.close)
                else:
                    try:
                        await store.flush()
                    except StoreError:
                        log.exception("worker %s: the last trace rows were not stored", self.id)
