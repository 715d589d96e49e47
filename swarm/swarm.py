"""`Swarm`: the front door. Agents, a router and a trace store in; `run` and `submit` out.

async with Swarm(agents=[cards, transfers], db="sqlite:///storage/swarm.db") as s:
    result = await s.run("I lost my card")
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from swarm.agents import Agent, AgentRegistry
from swarm.clock import Clock
from swarm.errors import ConfigError
from swarm.events import Event, EventBus
from swarm.executors import executor_from_spec
from swarm.feedback import FeedbackRecord, record_feedback
from swarm.models import Result, Task
from swarm.paths import DEFAULT_MODELS_DIR
from swarm.scheduler import RouterLike, Scheduler, TaskHandle
from swarm.scheduler.approvals import ApprovalDesk
from swarm.trace import DEFAULT_DB_URL, TraceStore

__all__ = ["Swarm"]


class Swarm:
    """Wires a registry, a router, a trace store and a scheduler together for one run.

    - `agents`: agents or agent classes, an `AgentRegistry`, or a module path (`"mypkg.agents"`).
    - `router`: a `RouterLike` (`route`, `version`, `blocking`); default: the serving trained router
      under `storage/models` for exactly these agents.
    - `db`: a SQLAlchemy URL or an open `TraceStore`; None turns tracing off.
    - `otel`: an OTLP/HTTP endpoint or a `swarm.otel.OtelExport`; default `$SWARM_OTEL_ENDPOINT`.
    - `executor`: where agent bodies run (`swarm.executors`): an `Executor` such as
      `RayExecutor(address)`, or its name ("local", "ray", "ray://host:port"); default in process.
    - Other keywords go to `Scheduler` (concurrency, max_queue, hop_limit, clock, retry …).

    `stream(text)` yields one task's events as they happen; `events` is the bus they come from.
    `approvals()` lists the questions agents put to people (`ctx.approve`), `approve(id)` answers
    one; both need `db`.
    """

    def __init__(
        self,
        agents: Iterable[Agent | type[Agent]] | AgentRegistry | str = (),
        *,
        router: RouterLike | None = None,
        db: str | TraceStore | None = DEFAULT_DB_URL,
        llm: Any = None,
        services: dict[str, Any] | None = None,
        clock: Clock | None = None,
        run_kind: str = "run",
        run_meta: dict[str, Any] | None = None,
        models_dir: str = DEFAULT_MODELS_DIR,
        otel: Any = None,
        **options: Any,
    ) -> None:
        self.registry = AgentRegistry.of(agents)
        self._agents_spec: str | None = agents if isinstance(agents, str) else None
        self.router = router
        self._db = db
        self.store: TraceStore | None = None
        self._owns_store = False
        self.llm = _llm_client(llm)
        self.services = services or {}
        self.clock = clock
        self.run_kind = run_kind
        self.run_meta = run_meta or {}
        self.models_dir = models_dir
        if isinstance(options.get("executor"), str):
            options["executor"] = executor_from_spec(options["executor"])
        self.options = options
        self._otel_config = otel
        self._otel: Any = None  # the live OtelExport, from start() on
        self._owns_otel = False
        self.run_id: str | None = None
        self._scheduler: Scheduler | None = None
        self.events = EventBus()
        """Every task's events (`swarm.events`), from every scheduler this swarm starts:
        `async with swarm.events.subscribe() as events: async for event in events: ...`."""

    async def __aenter__(self) -> Swarm:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # Leaving on an error or a cancellation (Ctrl-C): do not wait for running agents.
        await self.close(drain=exc_type is None)

    async def start(self) -> None:
        if self.router is None:
            self.router = await asyncio.to_thread(self._load_router)
        if isinstance(self._db, TraceStore):
            self.store = self._db
        elif self._db is not None:
            self.store = await asyncio.to_thread(TraceStore, self._db)
            self._owns_store = True
        if self.store is not None:
            agents = self._agents_spec or self.run_meta.get("agents")
            # Its tasks are leased to this process (swarm.trace.leases): no worker sharing the
            # store takes them while it lives; the store renews them in one statement a beat.
            owner = self.store.hold_leases(kind=self.run_kind, agents=agents)
            self.run_id = self.store.start_run(
                kind=self.run_kind,
                agents=agents,
                router=self.run_meta.get("router"),
                router_version=self.router.version,
                meta={**self.run_meta, "worker": owner},
            )
            # The run row is durable, and the writer (a process for SQLite files) is up before
            # the first task: its start-up is not charged to that task's latency.
            await self.store.flush()
        from swarm.otel import OtelExport

        # An export made here (from a URL or the environment) is shut down by `close`.
        config = self._otel_config
        self._owns_otel = not isinstance(config, OtelExport)
        self._otel = OtelExport(config) if isinstance(config, str) else config
        if self._otel is None:
            self._otel = OtelExport.from_env()
        self._scheduler = Scheduler(
            self.registry,
            self.router,
            store=self._otel.sink(self.store) if self._otel is not None else self.store,
            clock=self.clock,
            llm=self.llm,
            services=self.services,
            run_id=self.run_id,
            events=self.events,
            approvals=self.store,
            **self.options,
        )
        await self._scheduler.start()

    async def close(self, *, drain: bool = True, grace: float = 10.0) -> None:
        """Stop the scheduler, then close the store this swarm opened (or flush the one it was
        given). Raises `StoreError` at the end if trace rows could not be stored."""
        try:
            if self._scheduler is not None:
                try:
                    await self._scheduler.close(drain=drain, grace=grace)
                finally:
                    self._scheduler = None
            if self._otel is not None:
                otel, self._otel = self._otel, None
                await asyncio.to_thread(otel.shutdown if self._owns_otel else otel.flush)
        finally:
            if self.store is not None and self.run_id is not None and not self.store.closed:
                self.store.finish_run(self.run_id)
            if self.store is not None and self._owns_store:
                await asyncio.to_thread(self.store.close)
            elif self.store is not None:
                await self.store.flush()

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            raise ConfigError("the swarm is not started: use `async with Swarm(...) as swarm`")
        return self._scheduler

    async def submit(self, task: Task | str, **fields: Any) -> TaskHandle:
        return await self.scheduler.submit(task, **fields)

    async def run(self, task: Task | str, **fields: Any) -> Result:
        return await self.scheduler.run(task, **fields)

    async def stream(self, task: Task | str, **fields: Any) -> AsyncIterator[Event]:
        """Submit `task` (a `Task`, or its text plus Task fields or `timeout=`) and yield its
        events and those of the tasks it delegates to, as they happen; the last is the task's
        own `done` (its data: status, agent, output, error).

        Subscribes before submitting, so nothing is missed. A consumer that stops early leaves
        the task running (cancel it with `swarm.cancel(event.task_id)`). A consumer more than
        `events.max_buffer` events behind loses the oldest (never the scheduler's time).
        """
        scheduler = self.scheduler
        timeout = fields.pop("timeout", None)
        if isinstance(task, str):
            task = Task(text=task, **fields)
        elif fields:
            task = task.model_copy(update=fields)
        async with self.events.subscribe(task.id) as events:
            if timeout is None:
                await scheduler.submit(task)
            else:
                await scheduler.submit(task, timeout=timeout)
            async for event in events:
                yield event

    async def run_many(self, texts: Iterable[Task | str], **fields: Any) -> list[Result]:
        handles = [await self.submit(t, **fields) for t in texts]
        return [await h for h in handles]

    def cancel(self, task_id: str) -> bool:
        return self.scheduler.cancel(task_id)

    async def join(self) -> None:
        await self.scheduler.join()

    async def feedback(
        self,
        task_id: str,
        verdict: str | None = None,
        *,
        agent: str | None = None,
        note: str | None = None,
    ) -> FeedbackRecord:
        """Record a person's verdict on how `task_id` was routed: good (the default), "bad", or,
        with `agent`, where it should have gone (a correction). See `swarm.record_feedback`."""
        if self.store is None:
            if self._db is None:
                raise ConfigError("this swarm keeps no trace store (db=None): nothing to judge")
            raise ConfigError("the swarm is not started: use `async with Swarm(...) as swarm`")
        store = self.store
        await store.flush()
        return await asyncio.to_thread(
            record_feedback,
            store,
            task_id,
            verdict,
            agent=agent,
            note=note,
            agents=self.registry.names,
        )

    async def approve(
        self,
        approval_id: str,
        approve: bool = True,
        *,
        by: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Approve (or with `approve=False`, deny) a waiting approval; returns its decided row
        ({"id", "task_id", "question", "details", "status", "decided_by", "note", ...}).

        `approval_id` may be the end or the start of the id. The task that waits on it goes on at
        once when it runs in this swarm, else within a poll of the process that runs it. A
        decision is final: `ApprovalDecided` for an approval not waiting (any more);
        `TaskNotFound` for an unknown id."""
        return await self._desk().decide(approval_id, approve, by=by, note=note)

    async def approvals(self, status: str | None = "waiting") -> list[dict[str, Any]]:
        """Approval rows, oldest first: the waiting ones, those with another `status`
        (approved, denied, expired, cancelled), or all (None)."""
        self._desk()
        assert self.store is not None
        return await asyncio.to_thread(self.store.approvals, status)

    def _desk(self) -> ApprovalDesk:
        """The scheduler's approval desk; `ConfigError` without a trace store or before start."""
        if self._db is None:
            raise ConfigError("this swarm keeps no trace store (db=None): it has no approvals")
        desk = self.scheduler.approvals
        assert desk is not None
        return desk

    def _load_router(self) -> RouterLike:
        from swarm.router import load_serving_router  # lazy: torch and the encoder are heavy

        return load_serving_router(self.models_dir, registry=self.registry)


def _llm_client(llm: Any) -> Any:
    """A bare LLM backend (`Swarm(llm=ScriptedLLM([...]))`) wrapped in the `LLM` client, whose
    `bind` gives each task a recording view. Imported only when a swarm is given an LLM."""
    if llm is None:
        return None
    from swarm.llm import LLM, LLMBackend

    return LLM(llm) if isinstance(llm, LLMBackend) and not isinstance(llm, LLM) else llm
