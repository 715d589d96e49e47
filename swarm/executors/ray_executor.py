"""`RayExecutor`: agent bodies on a Ray cluster, one pool of async actors per agent.

The scheduler keeps routing, the store and every limit; this runs `agent.run(task, ctx)` in an
actor (`swarm.executors.ray_worker.AgentWorker`) and brings back its output, the exception it
raised, and the spans it recorded. Delegations from a remote body come back through a long poll
and are served by the scheduler here; their results go back to the waiting body.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray
from ray import cloudpickle
from ray.exceptions import (
    NodeDiedError,
    ObjectLostError,
    RayActorError,
    TaskCancelledError,
    WorkerCrashedError,
)

from swarm.context import Context, Span, current_span, scheduler_of
from swarm.errors import ConfigError, SchedulerClosed, WorkerLost
from swarm.executors.ray_worker import CTX_ID, AgentWorker, Call, Reply
from swarm.models import Task, new_id

if TYPE_CHECKING:
    from swarm.agents import Agent

__all__ = ["LOST", "RayExecutor"]

log = logging.getLogger("swarm.executors")

LOST: tuple[type[BaseException], ...] = (
    RayActorError,  # ActorDiedError, ActorUnavailableError: the actor's process or node died
    WorkerCrashedError,
    NodeDiedError,
    ObjectLostError,  # OwnerDiedError included
)
"""Ray's errors that mean the worker, not the body, failed: the body is run again elsewhere."""

STOPPED: tuple[type[BaseException], ...] = (TaskCancelledError, *LOST)

CONTROL_CALLS = 8
"""Actor concurrency kept for the executor's own calls (poll, reply, leftover) beside bodies."""

ActorOptions = (
    Mapping[str, Any] | Sequence[Mapping[str, Any]] | Callable[["Agent"], Mapping[str, Any]]
)


@dataclass(eq=False)
class _Actor:
    """One actor of an agent's pool, the calls it runs, and the loop serving its outbox."""

    handle: Any
    replacing: dict[str, Any]  # the options of the actor that replaces it
    inflight: int = 0
    server: asyncio.Task[None] | None = None
    dead: bool = False


@dataclass(eq=False)
class _Pool:
    agent: Agent
    actors: list[_Actor] = field(default_factory=list)
    turn: int = 0


@dataclass(eq=False)
class _Pending:
    """A body running remotely: the context it answers to, and the requests being served."""

    ctx: Context
    answering: dict[str, asyncio.Task[None]] = field(default_factory=dict)


class RayExecutor:
    """Runs agent bodies on Ray: `Swarm(agents, executor=RayExecutor("auto"))`.

    - `address`: what `ray.init(address=...)` takes: None (Ray's default: $RAY_ADDRESS, a local
      cluster, or a new one), "auto", "HOST:PORT" (a GCS address) or "ray://HOST:PORT" (Ray
      Client). When Ray is already initialised in this process, that connection is used and left
      open at `close()`.
    - `replicas`: actors per agent (default 1); each runs up to the agent's `max_concurrency`
      bodies at once (async methods). Calls go to the actor with the fewest running.
    - `actor_options`: extra `.options()` for the actors (`num_cpus`, `resources`,
      `scheduling_strategy`, `runtime_env` ...): one mapping for every actor, a function of the
      agent, or a list with one mapping per replica (its length is then the number of replicas:
      e.g. one actor pinned to each node). Default: `num_cpus=0` (bodies are mostly I/O; the
      agent's limits bound them) and the "SPREAD" strategy.
    - `replacement_options`: the same for an actor that replaces a lost one (default:
      `actor_options`). Pin to a node with a custom resource (`{"resources": {"gpu-box": 0.01}}`)
      and give replacements none, so that they may run anywhere once that node is gone (Ray's
      soft node affinity also spills while a node is merely busy).
    - `worker_services`: name -> factory called once in each actor, for services that cannot be
      pickled (a database engine): the remote `ctx.services` holds the swarm's picklable services
      plus these.
    - `max_lost`: how many times one call is re-run on a fresh actor after its actor or node died
      (`LOST`); the next loss raises `WorkerLost`.
    - `init_options`: more keywords for `ray.init` (namespace, runtime_env ...).

    Behaviour, against the in-process default:

    - A deadline or a cancellation cancels the remote call (`ray.cancel`): the body gets
      `CancelledError` on the worker. A body cannot return late (Ray reports the call cancelled
      whatever the body does), so it times out.
    - What the body raises is raised here (a class that cannot be pickled arrives as a
      RuntimeError naming it), with the worker's traceback as a note; retries are the scheduler's.
    - Infrastructure failures never count against the agent's `retries`: the dead actor is
      replaced (Ray places the new one on a live node) and the body runs again, at most
      `max_lost` times per call; an `executor` span records each loss. Side effects of a body cut
      off mid-way may have happened: make them idempotent by task id, as every retry needs.
    - `ctx.delegate(...)` works (the child is routed and run by the scheduler), as do
      `ctx.approve(...)` and any other call a `Context` makes to the scheduler's attempt: the
      worker sends it back through the actor's outbox, which this process long-polls, and the
      answer goes back to the waiting body. `ctx.publish(kind, data)` reaches the event bus.
      Handoffs are return values. Spans opened on the worker (`ctx.span`, `ctx.tool`, LLM spans)
      reach the store and the bus (`ctx.record_span`) when the body ends, also when it was
      cancelled; those of a body lost with its node are lost.
    - On the worker `ctx.clock` is the system clock, `ctx.llm` a copy of the swarm's client (bound
      to the remote context; None when it cannot be pickled; a stateful backend's state does not
      come back), `ctx.replay` likewise, `ctx.services` as above (unpicklable services are left
      out, logged once), and the agent itself a copy (its attributes do not come back).
    - The first body of an agent waits for its actor to start (seconds, inside its timeout):
      `await executor.warm(agents)` starts them beforehand.
    - The agent's module must import on the workers (install it there, or put it on their
      PYTHONPATH / `runtime_env`).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        replicas: int = 1,
        actor_options: ActorOptions | None = None,
        replacement_options: ActorOptions | None = None,
        worker_services: Mapping[str, Callable[[], Any]] | None = None,
        max_lost: int = 2,
        init_options: Mapping[str, Any] | None = None,
    ) -> None:
        if replicas < 1:
            raise ConfigError(f"RayExecutor: replicas must be >= 1, got {replicas}")
        self.address = address
        self.replicas = replicas
        self.actor_options = actor_options
        self.replacement_options = (
            actor_options if replacement_options is None else replacement_options
        )
        self.worker_services = dict(worker_services or {})
        self.max_lost = max_lost
        self.init_options = dict(init_options or {})
        self._pools: dict[str, _Pool] = {}
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shipped: dict[Any, list[Any]] = {}  # services fingerprint -> [ObjectRef]
        self._warned: set[str] = set()
        self._owns_ray = False
        self._started = False
        self._lock = asyncio.Lock()
        self._worker_class: Any = None

    def __repr__(self) -> str:
        return f"RayExecutor({self.address!r}, replicas={self.replicas})"

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Ray (`ray.init`), unless this process already is."""
        async with self._lock:
            if self._started:
                return
            if not ray.is_initialized():
                options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
                options.update(self.init_options)
                # On this thread (seconds, once, before any body): Ray wants its signal handlers
                # on the main thread.
                ray.init(address=self.address, **options)
                self._owns_ray = True
            self._worker_class = ray.remote(AgentWorker)
            self._started = True

    async def close(self) -> None:
        """Kill the actors (their long polls end with them), stop serving, and disconnect if
        `start` connected."""
        for pool in self._pools.values():
            for actor in pool.actors:
                actor.dead = True
                if ray.is_initialized():
                    ray.kill(actor.handle, no_restart=True)
        self._pools.clear()
        self._shipped.clear()  # object refs of this connection
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = self._started = False

    async def warm(self, agents: Iterable[Agent]) -> dict[str, list[str]]:
        """Start the actor pools of `agents` now and wait until each actor answers: else the
        first body of an agent waits for its actor to start (seconds), inside its timeout.
        Returns agent name -> the node ids its actors run on."""
        if not self._started:
            await self.start()
        where: dict[str, list[str]] = {}
        for agent in agents:
            pool = self._pool(agent)
            try:
                where[agent.name] = [await _result(a.handle.node.remote()) for a in pool.actors]
            except RayActorError as exc:
                if exc.actor_init_failed:
                    raise _cannot_start(agent, exc) from exc
                raise
        return where

    # ---- running a body -----------------------------------------------------------------

    async def run(self, agent: Agent, task: Task, ctx: Context) -> Any:
        """Run `agent.run(task, ctx)` in one of the agent's actors; see the class docstring."""
        if not self._started:
            await self.start()
        pool = self._pool(agent)
        lost = 0
        while True:
            actor = self._pick(pool)
            try:
                return await self._call(actor, task, ctx)
            except LOST as exc:
                if isinstance(exc, RayActorError) and exc.actor_init_failed:
                    raise _cannot_start(agent, exc) from exc
                self._replace(pool, actor)
                lost += 1
                self._record_loss(ctx, task, exc, lost)
                if lost > self.max_lost:
                    raise WorkerLost(
                        f"agent {agent.name!r}: its Ray worker died {lost} times running task "
                        f"{task.id} ({type(exc).__name__})"
                    ) from exc
                log.warning("task %s: Ray worker lost (%s); running it again", task.id, exc)

    async def _call(self, actor: _Actor, task: Task, ctx: Context) -> Any:
        parent = current_span()
        call_id = new_id()
        pending = _Pending(ctx)
        self._pending[call_id] = pending
        actor.inflight += 1
        try:
            ref = actor.handle.run.remote(
                call_id,
                task,
                ctx.attempt,
                parent.id if parent is not None else None,
                self._ship_services(ctx.services),
                self._ship_context(ctx),
            )
            try:
                kind, value, remote_tb, spans, node = await _result(ref)
            except asyncio.CancelledError:
                await self._cancelled(actor, ref, call_id, ctx)
                raise
        finally:
            actor.inflight -= 1
            del self._pending[call_id]
            for answering in pending.answering.values():
                answering.cancel()
        for span in spans:
            ctx.record_span(span)
        if parent is not None:
            parent.set(executor="ray", ray_node=node)
        if kind == "raised":
            if remote_tb:
                value.add_note(f"(raised on Ray node {node})\n{remote_tb.rstrip()}")
            raise value
        return value

    async def _cancelled(self, actor: _Actor, ref: Any, call_id: str, ctx: Context) -> None:
        """The awaiting task was cancelled: cancel the remote call, wait until it has stopped
        (so the slot it holds is freed when its body is), and keep the spans it made."""
        ray.cancel(ref)
        try:
            await _result(ref)
        except STOPPED:
            pass
        except Exception:  # it failed before the cancellation reached it
            pass
        else:
            return  # it finished before the cancellation reached it: its spans are lost
        try:
            spans = await actor.handle.leftover.remote(call_id)
        except LOST:
            return
        for span in spans:
            ctx.record_span(span)

    def _record_loss(self, ctx: Context, task: Task, exc: BaseException, n: int) -> None:
        parent = current_span()
        span = Span(
            "executor",
            "ray:worker-lost",
            task.id,
            task.run_id,
            parent_id=parent.id if parent is not None else None,
            status="error",
            error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            attributes={"lost": n, "rerun": n <= self.max_lost},
        )
        span.ended_at = span.started_at
        ctx.record_span(span)

    # ---- pools --------------------------------------------------------------------------

    def _pool(self, agent: Agent) -> _Pool:
        pool = self._pools.get(agent.name)
        if pool is None:
            each = self._options(agent, self.actor_options)
            again = self._options(agent, self.replacement_options)
            pool = self._pools[agent.name] = _Pool(agent)
            for i, options in enumerate(each):
                replacing = again[i] if len(again) == len(each) else again[0]
                pool.actors.append(self._new_actor(pool, options, replacing))
        return pool

    def _options(self, agent: Agent, extra: ActorOptions | None) -> list[dict[str, Any]]:
        """The `.options()` of each replica of `agent`'s pool."""
        if callable(extra):
            extra = extra(agent)
        if isinstance(extra, Sequence):
            each = [dict(e) for e in extra]
        else:
            each = [dict(extra or {})] * self.replicas
        if not each:
            raise ConfigError(f"RayExecutor: no actor options for agent {agent.name!r}")
        options = []
        for own in each:
            made: dict[str, Any] = {"num_cpus": 0, "scheduling_strategy": "SPREAD", **own}
            made["max_concurrency"] = agent.max_concurrency + CONTROL_CALLS
            options.append(made)
        return options

    def _new_actor(self, pool: _Pool, options: dict[str, Any], replacing: dict[str, Any]) -> _Actor:
        try:
            handle = self._worker_class.options(**options).remote(pool.agent, self.worker_services)
        except (TypeError, pickle.PicklingError) as exc:
            raise ConfigError(
                f"agent {pool.agent.name!r} ({pool.agent.origin}) cannot be sent to Ray: {exc}"
            ) from exc
        actor = _Actor(handle, replacing=replacing)
        server = asyncio.get_running_loop().create_task(
            self._serve(actor), context=contextvars.Context()
        )
        actor.server = server
        self._own(server)
        return actor

    def _pick(self, pool: _Pool) -> _Actor:
        """The live actor with the fewest calls running (in turn among equals)."""
        pool.turn += 1
        n = len(pool.actors)
        order = [pool.actors[(pool.turn + i) % n] for i in range(n)]
        return min(order, key=lambda a: a.inflight)

    def _replace(self, pool: _Pool, actor: _Actor) -> None:
        """Put a fresh actor in place of a dead one (once, however many calls saw it die)."""
        if actor.dead:
            return
        actor.dead = True
        if actor.server is not None:
            actor.server.cancel()
        ray.kill(actor.handle, no_restart=True)
        if actor in pool.actors:
            fresh = self._new_actor(pool, actor.replacing, actor.replacing)
            pool.actors[pool.actors.index(actor)] = fresh

    # ---- the way back: calls from remote bodies to the scheduler --------------------------

    async def _serve(self, actor: _Actor) -> None:
        """Long-poll the actor's outbox; answer each call from a body by the scheduler."""
        while True:
            ref = actor.handle.poll.remote()
            try:
                messages: list[Call] = await _result(ref)
            except asyncio.CancelledError:
                ray.cancel(ref)
                raise
            except LOST:
                return  # the calls waiting on it see the loss and replace it
            for kind, call_id, request, name, args, kwargs in messages:
                pending = self._pending.get(call_id)
                if kind == "cancel":
                    if pending is not None and request in pending.answering:
                        pending.answering[request].cancel()
                elif kind == "event":
                    if pending is not None:
                        pending.ctx.publish(name, *args)
                elif pending is None:
                    late = self._reply(actor, request, (False, _ended(call_id)))
                    self._own(asyncio.get_running_loop().create_task(late))
                else:
                    answer = asyncio.get_running_loop().create_task(
                        self._answer(actor, pending, request, name, args, kwargs)
                    )
                    pending.answering[request] = answer
                    self._own(answer)

    async def _answer(
        self,
        actor: _Actor,
        pending: _Pending,
        request: str,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        delegator = scheduler_of(pending.ctx)
        try:
            method = getattr(delegator, name) if not name.startswith("_") else None
            if method is None:
                raise AttributeError(f"the scheduler has no {name!r} for remote bodies")
            reply: Reply = (True, await method(*args, **kwargs))
        except asyncio.CancelledError:
            return  # the body stopped waiting, or ended
        except Exception as exc:
            reply = (False, exc)
        finally:
            pending.answering.pop(request, None)
        await self._reply(actor, request, reply)

    async def _reply(self, actor: _Actor, request: str, reply: Reply) -> None:
        try:
            await actor.handle.reply.remote(request, reply)
        except LOST:
            pass

    def _own(self, task: asyncio.Task[Any]) -> None:
        """Keep `task` until it ends; `close` cancels what is left."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- what a body gets with it -------------------------------------------------------

    def _ship_services(self, services: dict[str, Any]) -> list[Any]:
        """The picklable services in Ray's object store, once per distinct set (as [ref], so
        that Ray hands the worker the reference and the worker fetches it once)."""
        if not services:
            return []
        key = tuple((name, id(value)) for name, value in services.items())
        shipped = self._shipped.get(key)
        if shipped is None:
            keep = {}
            for name, value in services.items():
                try:
                    cloudpickle.dumps(value)
                except Exception as exc:
                    self._warn(f"service:{name}", "service %r stays on the driver: %s", name, exc)
                    continue
                keep[name] = value
            shipped = self._shipped[key] = [ray.put(keep)]
        return shipped

    def _ship_context(self, ctx: Context) -> bytes | None:
        """`ctx.llm` and `ctx.replay` pickled with the driver's context as a placeholder, so that
        on the worker a client bound to it is bound to the remote context (and records its spans
        there). One that cannot be pickled stays here (None on the worker), logged once."""
        if ctx.llm is None and ctx.replay is None:
            return None
        parts = {}
        for name in ("llm", "replay"):
            value = getattr(ctx, name)
            if value is None:
                continue
            try:
                _CtxPickler(io.BytesIO(), ctx).dump(value)
            except Exception as exc:
                self._warn(
                    name, "ctx.%s is None on Ray workers: it cannot be pickled (%s)", name, exc
                )
                continue
            parts[name] = value
        buffer = io.BytesIO()
        _CtxPickler(buffer, ctx).dump(parts)
        return buffer.getvalue()

    def _warn(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


def _cannot_start(agent: Agent, exc: BaseException) -> ConfigError:
    return ConfigError(
        f"agent {agent.name!r} ({agent.origin}) could not start on Ray: its module must import on "
        f"every node (installed there, or on the nodes' PYTHONPATH) and its worker_services must "
        f"build there. {exc}"
    )


def _result(ref: Any) -> asyncio.Future[Any]:
    """What `await ref` gives, except that cancelling the waiter leaves Ray's own future alone:
    Ray (its Client above all) sets it later, and complains when it finds it cancelled."""
    future = asyncio.wrap_future(ref.future())
    future.add_done_callback(_retrieve)  # nobody may wait on it any more: no "never retrieved"
    return asyncio.shield(future)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _CtxPickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, ctx: Context) -> None:
        super().__init__(file)
        self.ctx = ctx

    def persistent_id(self, obj: Any) -> str | None:
        return CTX_ID if obj is self.ctx else None


def _ended(call_id: str) -> SchedulerClosed:
    return SchedulerClosed(f"the remote call {call_id} has ended; it cannot reach the scheduler")
