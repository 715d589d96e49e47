"""The worker side of `RayExecutor`: an async Ray actor that holds one agent and runs its bodies,
each with a `Context` of its own whose delegations (and other calls to the scheduler) travel back
to the driver through an outbox the driver polls, and whose spans come back with the result.

Runs in Ray worker processes: it imports only what an agent's body needs (no scheduler, no store).
"""

from __future__ import annotations

import asyncio
import io
import logging
import pickle
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from swarm.clock import SystemClock
from swarm.context import Context, Span, enter_span, leave_span
from swarm.models import Result, Task, new_id

__all__ = ["AgentWorker", "Call", "Reply", "Returned"]

log = logging.getLogger("swarm.executors")

Returned = tuple[str, Any, str | None, list[Span], str]
"""What `AgentWorker.run` returns: ("returned" | "raised", value or exception, the remote
traceback (raised only), the spans the body recorded, the Ray node id it ran on)."""

Call = tuple[str, str, str, str, tuple[Any, ...], dict[str, Any]]
"""An outbox message: ("call", call id, request id, scheduler method, args, kwargs);
("cancel", call id, request id, "", (), {}) when the body stopped waiting for that request;
("event", call id, "", kind, (data,), {}) for `ctx.publish(kind, data)`."""

Reply = tuple[bool, Any]
"""The driver's answer to a call: (True, value) or (False, the exception to raise)."""

CTX_ID = "swarm.ctx"
"""The persistent id the driver's `Context` is pickled as inside `ctx.llm` (a bound client)."""


class _Spans:
    """The remote context's span sink: keeps them, to go back with the result."""

    __slots__ = ("spans",)

    def __init__(self) -> None:
        self.spans: list[Span] = []

    def record_span(self, span: Span) -> None:
        self.spans.append(span)


class _Scheduler:
    """What a remote `Context` delegates through: each call is put in the worker's outbox and
    answered by the driver's scheduler (`delegate`, and any other public async method the
    scheduler's attempt offers, the same way)."""

    def __init__(self, worker: AgentWorker, call_id: str) -> None:
        self._worker = worker
        self._call_id = call_id

    async def delegate(self, parent: Task, child: Task) -> Result:
        out: Result = await self._worker.ask(self._call_id, "delegate", (parent, child), {})
        return out

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def forward(*args: Any, **kwargs: Any) -> Any:
            return await self._worker.ask(self._call_id, name, args, kwargs)

        return forward


class _Events:
    """The remote context's event bus: `ctx.publish(kind, data)` goes to the driver's bus (span
    events are published there when the spans come back with the result)."""

    active = True

    def __init__(self, worker: AgentWorker, call_id: str) -> None:
        self._worker = worker
        self._call_id = call_id

    def emit_task(self, kind: str, task: Task, data: dict[str, Any]) -> None:
        if kind != "span":
            self._worker.outbox.put_nowait(("event", self._call_id, "", kind, (data,), {}))


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, ctx: Context) -> None:
        super().__init__(io.BytesIO(data))
        self.ctx = ctx

    def persistent_load(self, pid: Any) -> Any:
        if pid == CTX_ID:
            return self.ctx
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


class AgentWorker:
    """One agent in a Ray worker process. `RayExecutor` makes it a Ray actor (`ray.remote`).

    `worker_services`: name -> factory, called once here; their objects join `ctx.services`
    (for what cannot be pickled: a database engine, a client with open connections).
    """

    def __init__(
        self, agent: Any, worker_services: Mapping[str, Callable[[], Any]] | None = None
    ) -> None:
        import ray

        self.agent = agent
        self.node_id = str(ray.get_runtime_context().get_node_id())
        self.local_services = {k: make() for k, make in (worker_services or {}).items()}
        self.services: dict[str, dict[str, Any]] = {}  # shipped services, by object ref
        self._outbox: asyncio.Queue[Call] | None = None
        self.pending: dict[str, asyncio.Future[Any]] = {}
        self.leftovers: dict[str, list[Span]] = {}  # spans of bodies cancelled mid-way

    @property
    def outbox(self) -> asyncio.Queue[Call]:
        if self._outbox is None:  # made on the actor's event loop
            self._outbox = asyncio.Queue()
        return self._outbox

    async def run(
        self,
        call_id: str,
        task: Task,
        attempt: int,
        parent_span: str | None,
        services: list[Any],
        shipped: bytes | None,
    ) -> Returned:
        """Run the body once; never raises for what the body raised (it goes back as a value,
        with its traceback, so its spans come back too)."""
        node = self.node_id
        sink = _Spans()
        ctx = Context(
            task,
            agent=self.agent.name,
            attempt=attempt,
            scheduler=_Scheduler(self, call_id),
            sink=sink,
            clock=SystemClock(),
            services={**(await self._services(services)), **self.local_services},
            events=_Events(self, call_id),  # type: ignore[arg-type]
        )
        if shipped is not None:  # the driver's llm client and replay, bound to this context
            for name, value in _Unpickler(shipped, ctx).load().items():
                setattr(ctx, name, value)
        token = None
        if parent_span is not None:  # the driver's agent span: spans opened here hang from it
            token = enter_span(Span("agent", self.agent.name, task.id, task.run_id, id=parent_span))
        try:
            out = await self.agent.run(task, ctx)
        except asyncio.CancelledError:
            self.leftovers[call_id] = sink.spans  # the driver asks for them (`leftover`)
            raise
        except Exception as exc:
            return ("raised", portable(exc), traceback.format_exc(), sink.spans, node)
        finally:
            if token is not None:
                leave_span(token)
        return ("returned", out, None, sink.spans, node)

    async def _services(self, shipped: list[Any]) -> dict[str, Any]:
        """The driver's picklable services, fetched once per distinct object ref."""
        if not shipped:
            return {}
        ref = shipped[0]
        key = ref.hex()
        if key not in self.services:
            self.services[key] = await ref
        return self.services[key]

    async def ask(self, call_id: str, name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        """Send a call to the driver's scheduler and wait for its answer."""
        request = new_id()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[request] = future
        self.outbox.put_nowait(("call", call_id, request, name, args, kw))
        try:
            return await future
        except asyncio.CancelledError:
            if not future.done():  # the body gave up waiting: the driver cancels its side
                self.outbox.put_nowait(("cancel", call_id, request, "", (), {}))
            raise
        finally:
            self.pending.pop(request, None)

    async def poll(self) -> list[Call]:
        """The driver's long poll: waits for at least one message, returns all there are."""
        first = await self.outbox.get()
        out = [first]
        while not self.outbox.empty():
            out.append(self.outbox.get_nowait())
        return out

    async def reply(self, request: str, reply: Reply) -> None:
        future = self.pending.get(request)
        if future is None or future.done():
            return  # the body stopped waiting
        ok, value = reply
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    async def leftover(self, call_id: str) -> list[Span]:
        """The spans of a body that was cancelled (once)."""
        return self.leftovers.pop(call_id, [])

    async def node(self) -> str:
        """The Ray node id this actor runs on (also: an answer once the actor is up)."""
        return self.node_id


def portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling, else a RuntimeError that says what it was."""
    try:
        from ray import cloudpickle

        pickle.loads(cloudpickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
