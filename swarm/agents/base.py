"""What an agent is: a class with one async method, or a decorated async function.

The scheduler reads the limits (`max_concurrency`, `timeout`, `retries`, `retry_on`) and the router
reads `description` and `examples`; an agent never needs to know about either.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from swarm.errors import AgentDefinitionError, Retryable
from swarm.models import Handoff, Result, Task

if TYPE_CHECKING:
    from swarm.context import Context

__all__ = ["Agent", "AgentFn", "FunctionAgent", "agent", "check_agent"]

AgentOutput = Result | Handoff | str | Any
AgentFn = Callable[[Task, "Context"], Awaitable[AgentOutput]]


class Agent:
    """Subclass it, set the attributes and write `run`.

    ```python
    class Cards(Agent):
        name = "cards"
        description = "Card orders, deliveries and blocks"
        examples = ["my card has not arrived", "block my card"]

        async def run(self, task, ctx):
            return "ordered"
    ```

    `run` may return a `Result`, a `Handoff` (continue at another agent), a string or any
    JSON-compatible value, which becomes the output. Raise `swarm.Retryable` (or anything in
    `retry_on`) for failures worth another attempt.
    """

    name: str = ""
    description: str = ""
    examples: Sequence[str] = ()
    max_concurrency: int = 8
    timeout: float | None = 30.0
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Retryable,)

    _reserved: ClassVar[frozenset[str]] = frozenset()

    async def run(self, task: Task, ctx: Context) -> AgentOutput:
        raise NotImplementedError

    @property
    def origin(self) -> str:
        """Where the agent was defined, for error messages: `module.Class`."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} from {self.origin}>"


class FunctionAgent(Agent):
    """An agent made by `@agent` from a plain `async def fn(task, ctx)`."""

    def __init__(self, fn: AgentFn, **attrs: Any) -> None:
        self.fn = fn
        for key, value in attrs.items():
            setattr(self, key, value)

    async def run(self, task: Task, ctx: Context) -> AgentOutput:
        return await self.fn(task, ctx)

    @property
    def origin(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


def agent(
    fn: AgentFn | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    examples: Sequence[str] = (),
    max_concurrency: int = 8,
    timeout: float | None = 30.0,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (Retryable,),
) -> Any:
    """Turn `async def fn(task, ctx)` into an agent; the docstring is the default description.

    Usable bare (`@agent`) or with options (`@agent(name="cards", examples=[...])`).
    """

    def wrap(f: AgentFn) -> FunctionAgent:
        made = FunctionAgent(
            f,
            name=name or getattr(f, "__name__", ""),
            description=description if description is not None else inspect.getdoc(f) or "",
            examples=list(examples),
            max_concurrency=max_concurrency,
            timeout=timeout,
            retries=retries,
            retry_on=retry_on,
        )
        check_agent(made)
        return made

    return wrap(fn) if fn is not None else wrap


def check_agent(a: Agent) -> None:
    """Raise AgentDefinitionError, naming the agent and its module, if `a` cannot be scheduled."""
    where = a.origin
    if not isinstance(a.name, str) or not a.name.strip():
        raise AgentDefinitionError(f"agent defined at {where} has no name: set `name`")
    label = f"agent {a.name!r} ({where})"
    run = a.fn if isinstance(a, FunctionAgent) else getattr(type(a), "run", None)
    if run is None or run is Agent.run:
        raise AgentDefinitionError(
            f"{label} has no `run` method: define `async def run(self, task, ctx)`"
        )
    if not inspect.iscoroutinefunction(run):
        raise AgentDefinitionError(f"{label}: `run` must be `async def`, got a plain function")
    signature = inspect.signature(run).parameters.values()
    params = [p for p in signature if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty]
    expected = 2 if isinstance(a, FunctionAgent) else 3
    shape = "(task, ctx)" if expected == 2 else "(self, task, ctx)"
    takes_rest = any(p.kind is p.VAR_POSITIONAL for p in signature)
    if len(required) > expected or (len(params) < expected and not takes_rest):
        names = ", ".join(p.name for p in params)
        raise AgentDefinitionError(f"{label}: `run` must take {shape}, it takes ({names})")
    if not isinstance(a.max_concurrency, int) or a.max_concurrency < 1:
        raise AgentDefinitionError(f"{label}: max_concurrency must be an integer >= 1")
    if a.timeout is not None and not a.timeout > 0:
        raise AgentDefinitionError(f"{label}: timeout must be a positive number of seconds or None")
    if not isinstance(a.retries, int) or a.retries < 0:
        raise AgentDefinitionError(f"{label}: retries must be an integer >= 0")
    if isinstance(a.examples, str) or not all(isinstance(e, str) for e in a.examples):
        raise AgentDefinitionError(f"{label}: examples must be a list of strings")
