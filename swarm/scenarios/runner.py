"""Running suites through the real scheduler and router: one recorded run (kind "test") per suite,
scenarios concurrently, the steps of a scenario in order in one session, every check written down.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarm.agents import AgentRegistry, Pack, load_pack
from swarm.errors import ConfigError, ScenarioError, SwarmError
from swarm.models import Result, new_id
from swarm.paths import DEFAULT_MODELS_DIR
from swarm.scenarios.assertions import (
    check_result,
    check_value,
    outcome,
    rejected_as_ambiguous,
    resolve_callable,
    routed_agent,
)
from swarm.scenarios.format import AMBIGUOUS_LABEL, NONE_LABEL, FixtureCall, Scenario, Step, Suite
from swarm.scenarios.loader import locate
from swarm.scheduler import RouterLike
from swarm.swarm import Swarm
from swarm.trace import TraceStore

__all__ = [
    "AgentPack",
    "RouterFactory",
    "ScenarioResult",
    "ScenarioRunner",
    "StepResult",
    "SuiteResult",
    "TestReport",
    "default_router_factory",
    "select_scenarios",
]

RouterFactory = Callable[[str, AgentRegistry], RouterLike]
"""Makes the router a suite asked for (`auto`, `keyword`, an artifact folder) for its agents."""


@dataclass(slots=True)
class StepResult:
    index: int
    user: str
    task_id: str
    status: str
    agent: str | None
    """The agent that finished the task."""
    routed: str | None
    """The router's pick (None: out of scope, rejected as ambiguous, or not routed)."""
    decision_status: str | None
    confidence: float | None
    """The router's confidence in its pick (None: not routed, or rejected as ambiguous)."""
    expected: str | None
    """The agent the routing is judged against (`(none)` for out of scope), if the step says."""
    actual: str
    """What the routing is judged by: the agent that took it, `(none)` when it was rejected as
    out of scope, `(ambiguous)` when it was rejected as ambiguous."""
    output: Any
    error: str | None
    latency_ms: float
    failures: list[str] = field(default_factory=list)
    outcome: str = ""
    """What happened, in words: `loans took it`, `rejected: ambiguous between loans (0.41) and
    cards (0.39)` (see `swarm.scenarios.assertions.outcome`)."""
    trace: dict[str, Any] | None = None
    """The task's recorded tree (decision, spans, children), kept for failed steps."""

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def routed_right(self) -> bool | None:
        return None if self.expected is None else self.expected == self.actual


@dataclass(slots=True)
class ScenarioResult:
    suite: str
    name: str
    file: str
    line: int
    tags: list[str]
    steps: list[StepResult] = field(default_factory=list)
    planned_steps: int = 0
    error: str | None = None
    """Set when the scenario could not run (its suite's setup failed)."""
    duration_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(s.passed for s in self.steps)

    @property
    def reasons(self) -> list[str]:
        if self.error is not None:
            return [self.error]
        out = []
        for s in self.steps:
            out += [f"step {s.index + 1} ({s.user!r}): {r}" for r in s.failures]
        left = self.planned_steps - len(self.steps)
        if out and left > 0:
            out.append(f"{left} later step{'s' if left > 1 else ''} not run")
        return out

    @property
    def id(self) -> str:
        return f"{self.suite}::{self.name}"


@dataclass(slots=True)
class SuiteResult:
    name: str
    file: str
    router: str
    router_version: str | None = None
    run_id: str | None = None
    scenarios: list[ScenarioResult] = field(default_factory=list)
    error: str | None = None
    duration_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(s.passed for s in self.scenarios)


@dataclass(slots=True)
class TestReport:
    """Everything a run of suites found; the views, JUnit and HTML reports read only this."""

    __test__ = False  # not a pytest test class, whatever its name

    suites: list[SuiteResult] = field(default_factory=list)
    load_errors: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    duration_ms: float = 0.0

    @property
    def scenarios(self) -> list[ScenarioResult]:
        return [s for suite in self.suites for s in suite.scenarios]

    @property
    def steps(self) -> list[StepResult]:
        return [st for s in self.scenarios for st in s.steps]

    @property
    def passed(self) -> bool:
        return not self.load_errors and all(s.passed for s in self.suites)

    @property
    def counts(self) -> dict[str, int]:
        sc = self.scenarios
        ok = sum(s.passed for s in sc)
        return {
            "scenarios": len(sc),
            "passed": ok,
            "failed": len(sc) - ok,
            "suite_errors": sum(s.error is not None for s in self.suites),
            "load_errors": len(self.load_errors),
        }


@dataclass(slots=True)
class AgentPack:
    """What a suite's agents module offers beyond its agents: the `swarm.agents.Pack`'s fixtures
    (a suite's `setup:`), state checks (a step's `state:`) and its setup/teardown hooks.

    `services` is the dict the swarm gets as `Swarm(services=...)`: agents see it as
    `ctx.services`.
    """

    pack: Pack
    fixtures: dict[str, Callable[..., Any]]
    state: dict[str, Callable[..., Any]]

    @classmethod
    def of(cls, agents_spec: str) -> AgentPack:
        pack = load_pack(agents_spec)
        return cls(pack, dict(pack.fixtures), dict(pack.state))

    async def setup(self, calls: Iterable[FixtureCall]) -> dict[str, Any]:
        """Run the pack's `setup` hook, then the fixtures `calls` name, in order."""
        services: dict[str, Any] = {}
        if self.pack.setup is not None:
            await _call(self.pack.setup, services)
        for call in calls:
            out = await _call(self.fixtures[call.fixture], services, **call.args)
            if isinstance(out, dict):
                services.update(out)
        return services

    async def teardown(self, services: dict[str, Any]) -> None:
        if self.pack.teardown is not None:
            await _call(self.pack.teardown, services)


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    out = fn(*args, **kwargs)
    if inspect.isawaitable(out):
        out = await out
    return out


def default_router_factory(
    models_dir: str | Path = DEFAULT_MODELS_DIR, console: Any = None, progress: Any = None
) -> RouterFactory:
    """`keyword` (no model), `auto` (the trained router, trained on first use) or a folder.

    `auto` learns from the agents' examples and the training data of the registry's packs; a pack
    that brings its own data keeps its router in `models_dir/PACK` (its own CURRENT, so it never
    replaces another pack's router). `progress` draws training bars (see `train_router`)."""

    def make(spec: str, registry: AgentRegistry) -> RouterLike:
        if spec == "keyword":
            from swarm.router.keyword import KeywordRouter

            return KeywordRouter(registry)
        from swarm import router as routing  # lazy: torch and the encoder are heavy

        if spec == "auto":
            training, owners = None, []
            for pack in registry.packs:
                rows = pack.training_rows()
                if rows:
                    training = training or routing.TrainingData()
                    training.add_pairs(rows, f"{pack.name} training data")
                    owners.append(pack.name)
            root = Path(models_dir) / "+".join(owners) if owners else Path(models_dir)
            return routing.ensure_router(
                registry, root, training=training, console=console, progress=progress
            )
        return routing.load_router(spec, registry=registry)

    return make


def select_scenarios(
    keyword: str | None = None, tags: Iterable[str] = ()
) -> Callable[[Suite, Scenario], bool]:
    """A filter like pytest's `-k` (words with and/or/not, matched in `suite::scenario` and
    tags, case-insensitive) and `--tags` (any of them, on the scenario or its suite)."""
    wanted = {t.strip() for tag in tags for t in tag.split(",") if t.strip()}
    expr = _KeywordExpr(keyword) if keyword else None

    def keep(suite: Suite, scenario: Scenario) -> bool:
        labels = {*suite.tags, *scenario.tags}
        if wanted and not wanted & labels:
            return False
        if expr is not None:
            haystack = " ".join([f"{suite.name}::{scenario.name}", *labels]).lower()
            return expr.matches(haystack)
        return True

    return keep


class ScenarioRunner:
    """Runs suites and returns a `TestReport`.

    - `router`: a router spec that overrides each suite's `router:` (default: the suite's, else
      `auto`); `router_factory` turns a spec into a router (default: `default_router_factory`).
    - `db`: a URL or an open `TraceStore` (every suite is recorded as a run of kind "test");
      None records nothing.
    - `on_scenario`: called with each `ScenarioResult` as it finishes (live progress).
    """

    def __init__(
        self,
        *,
        router: str | None = None,
        router_factory: RouterFactory | None = None,
        db: str | TraceStore | None = None,
        models_dir: str | Path = DEFAULT_MODELS_DIR,
        llm: Any = None,
        on_scenario: Callable[[ScenarioResult], None] | None = None,
        keep_traces: bool = True,
        concurrency: int = 64,
    ) -> None:
        self.router_spec = router
        self.router_factory = router_factory or default_router_factory(models_dir)
        self.db = db
        self.llm = llm
        self.on_scenario = on_scenario
        self.keep_traces = keep_traces
        self.concurrency = concurrency
        self._routers: dict[tuple[str, str], RouterLike] = {}
        self._router_lock = asyncio.Lock()

    def run_sync(
        self,
        suites: list[Suite],
        select: Callable[[Suite, Scenario], bool] | None = None,
        load_errors: Iterable[ScenarioError] = (),
    ) -> TestReport:
        return asyncio.run(self.run(suites, select, load_errors))

    async def run(
        self,
        suites: list[Suite],
        select: Callable[[Suite, Scenario], bool] | None = None,
        load_errors: Iterable[ScenarioError] = (),
    ) -> TestReport:
        report = TestReport(load_errors=[str(e) for e in load_errors])
        start = time.perf_counter()
        store, owned = self._open_store()
        try:
            chosen = []
            for suite in suites:
                scenarios = [s for s in suite.expanded() if select is None or select(suite, s)]
                if scenarios:
                    chosen.append((suite, scenarios))
            report.suites = list(
                await asyncio.gather(*(self._run_suite(s, sc, store) for s, sc in chosen))
            )
        finally:
            if owned and store is not None:
                await asyncio.to_thread(store.close)
        report.duration_ms = (time.perf_counter() - start) * 1000
        return report

    def _open_store(self) -> tuple[TraceStore | None, bool]:
        if self.db is None or isinstance(self.db, TraceStore):
            return self.db, False
        return TraceStore(self.db), True

    async def _router(self, spec: str, suite: Suite, registry: AgentRegistry) -> RouterLike:
        # One router per (spec, agents): the learned one takes seconds to load.
        async with self._router_lock:
            key = (spec, suite.agents)
            if key not in self._routers:
                self._routers[key] = await asyncio.to_thread(self.router_factory, spec, registry)
            return self._routers[key]

    async def _run_suite(
        self, suite: Suite, scenarios: list[Scenario], store: TraceStore | None
    ) -> SuiteResult:
        spec = self.router_spec or suite.router or "auto"
        out = SuiteResult(suite.name, suite.path, spec)
        start = time.perf_counter()
        try:
            registry = AgentRegistry()
            registry.load_module(suite.agents)
            pack = AgentPack.of(suite.agents)
            check_suite(suite, registry, pack)
            router = await self._router(spec, suite, registry)
            # What a first use would load lazily, loaded before the clock starts: otherwise it is
            # charged to every step that waits behind it (a model's first call, jsonschema).
            await asyncio.to_thread(router.route, ["warm-up"])
            if any(
                step.expect.output is not None and step.expect.output.schema_ is not None
                for sc in scenarios
                for step in sc.steps
            ):
                await asyncio.to_thread(importlib.import_module, "jsonschema")
            services = await pack.setup(suite.setup)
        except SwarmError as exc:
            return self._suite_failed(out, suite, scenarios, str(exc))
        except Exception as exc:  # an import error or a fixture that raised: that suite only
            return self._suite_failed(out, suite, scenarios, f"{type(exc).__name__}: {exc}")
        out.router_version = router.version
        swarm = Swarm(
            registry,
            router=router,
            db=store,
            llm=self.llm,
            services=services,
            run_kind="test",
            run_meta={
                "agents": suite.agents,
                "router": spec,
                "suite": suite.name,
                "file": suite.path,
                "setup": [c.model_dump() for c in suite.setup],
            },
            concurrency=self.concurrency,
        )
        try:
            async with swarm:
                out.run_id = swarm.run_id
                if suite.parallel:
                    results = await asyncio.gather(
                        *(self._run_scenario(swarm, suite, s, pack) for s in scenarios)
                    )
                else:
                    results = [await self._run_scenario(swarm, suite, s, pack) for s in scenarios]
                out.scenarios = list(results)
        finally:
            await pack.teardown(services)
        if store is not None and self.keep_traces:
            await asyncio.to_thread(_attach_traces, store, out.scenarios)
        out.duration_ms = (time.perf_counter() - start) * 1000
        return out

    def _suite_failed(
        self, out: SuiteResult, suite: Suite, scenarios: list[Scenario], error: str
    ) -> SuiteResult:
        out.error = error
        for s in scenarios:
            r = ScenarioResult(suite.name, s.name, suite.path, s.line, [*suite.tags, *s.tags])
            r.error = f"suite not run: {error}"
            r.planned_steps = len(s.steps)
            out.scenarios.append(r)
            if self.on_scenario is not None:
                self.on_scenario(r)
        return out

    async def _run_scenario(
        self, swarm: Swarm, suite: Suite, scenario: Scenario, pack: AgentPack
    ) -> ScenarioResult:
        result = ScenarioResult(
            suite.name, scenario.name, suite.path, scenario.line, [*suite.tags, *scenario.tags]
        )
        result.planned_steps = len(scenario.steps)
        session = f"scenario-{new_id()}"  # the steps of one scenario are one conversation
        start = time.perf_counter()
        for i, step in enumerate(scenario.steps):
            sr = await self._run_step(swarm, step, i, session, pack)
            result.steps.append(sr)
            if sr.failures:
                break  # later steps of a conversation assume this one worked
        result.duration_ms = (time.perf_counter() - start) * 1000
        if self.on_scenario is not None:
            self.on_scenario(result)
        return result

    async def _run_step(
        self, swarm: Swarm, step: Step, index: int, session: str, pack: AgentPack
    ) -> StepResult:
        t0 = time.perf_counter()
        res: Result = await swarm.run(
            step.user, payload=dict(step.payload), session=session, agent=step.agent
        )
        latency = (time.perf_counter() - t0) * 1000
        failures = check_result(step.expect, res, latency)
        for sc in step.expect.state:
            try:
                value = await _call(pack.state[sc.check], swarm.services, **sc.args)
            except Exception as exc:
                failures.append(f"state {sc.check} raised {type(exc).__name__}: {exc}")
                continue
            failures += [f"state {sc.check} {r}" for r in check_value(sc.expect, value)]
        d = res.decision
        routed = routed_agent(res)
        if rejected_as_ambiguous(res):
            actual = AMBIGUOUS_LABEL
        elif step.expect.routed_to is not None:
            actual = routed or NONE_LABEL
        else:
            actual = res.agent or routed or NONE_LABEL
        # No agent was chosen for an ambiguous rejection: nothing to judge the confidence by.
        scored = d is not None and d.status != "forced" and actual != AMBIGUOUS_LABEL
        return StepResult(
            index=index,
            user=step.user,
            task_id=res.task_id,
            status=res.status.value,
            agent=res.agent,
            routed=routed,
            decision_status=d.status if d is not None else None,
            confidence=d.confidence if d is not None and scored else None,
            outcome=outcome(res),
            expected=step.expect.label,
            actual=actual,
            output=res.output,
            error=res.error,
            latency_ms=latency,
            failures=failures,
        )


def check_suite(suite: Suite, registry: AgentRegistry, pack: AgentPack) -> None:
    """Names in the file that the agents module does not have, as a located `ScenarioError`."""
    problems: list[str] = []

    def bad(loc: tuple[str | int, ...], message: str) -> None:
        problems.append(f"{locate(suite, loc)}: {_dotted(loc)}: {message}")

    agents = sorted(a.name for a in registry)
    for i, call in enumerate(suite.setup):
        if call.fixture not in pack.fixtures:
            bad(
                ("setup", i, "fixture"),
                _unknown("fixture", call.fixture, pack.fixtures, "the pack's fixtures"),
            )
    for si, scenario in enumerate(suite.scenarios):
        for ti, step in enumerate(scenario.steps):
            base: tuple[str | int, ...] = ("scenarios", si, "steps", ti)
            for key in ("agent",):
                if step.agent is not None and step.agent not in agents:
                    bad((*base, key), _unknown("agent", step.agent, agents, "the agents module"))
            e = step.expect
            for key in ("agent", "routed_to"):
                name = getattr(e, key)
                if name is not None and "{" not in name and name not in agents:
                    bad(
                        (*base, "expect", key), _unknown("agent", name, agents, "the agents module")
                    )
            for ci, sc in enumerate(e.state):
                if sc.check not in pack.state:
                    where = (*base, "expect", "state", ci, "check")
                    known = pack.state
                    bad(where, _unknown("state check", sc.check, known, "the pack's state checks"))
            for key in ("output", "error"):
                check = getattr(e, key)
                if check is not None and check.predicate is not None:
                    try:
                        resolve_callable(check.predicate)
                    except ScenarioError as exc:
                        bad((*base, "expect", key, "predicate"), str(exc))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ScenarioError(problems[0] + more + "".join("\n" + p for p in problems[1:]))


def _unknown(what: str, name: str, known: Iterable[str], where: str) -> str:
    names = ", ".join(sorted(known)) or "none"
    return f"unknown {what} {name!r}; expected one of {where}: {names}"


def _dotted(loc: tuple[str | int, ...]) -> str:
    from swarm.scenarios.loader import field_name

    return field_name(loc)


def _attach_traces(store: TraceStore, scenarios: list[ScenarioResult]) -> None:
    store.flush_sync()
    for s in scenarios:
        for step in s.steps:
            if step.failures:
                try:
                    step.trace = store.task_tree(step.task_id)
                except SwarmError:
                    step.trace = None


class _KeywordExpr:
    """`-k` expressions: words, `and`, `or`, `not`, parentheses; a word matches a substring."""

    def __init__(self, text: str) -> None:
        self.tokens = text.replace("(", " ( ").replace(")", " ) ").split()
        self.text = text
        self.pos = 0
        if not self.tokens:
            raise ConfigError("-k: empty expression")
        # Parse once to report a bad expression before anything runs.
        self.matches("")

    def matches(self, haystack: str) -> bool:
        self.pos, self.haystack = 0, haystack
        value = self._or()
        if self.pos != len(self.tokens):
            raise ConfigError(f"-k {self.text!r}: unexpected {self.tokens[self.pos]!r}")
        return value

    def _or(self) -> bool:
        value = self._and()
        while self._peek() == "or":
            self.pos += 1
            value = self._and() or value
        return value

    def _and(self) -> bool:
        value = self._not()
        while self._peek() == "and":
            self.pos += 1
            value = self._not() and value
        return value

    def _not(self) -> bool:
        if self._peek() == "not":
            self.pos += 1
            return not self._not()
        return self._atom()

    def _atom(self) -> bool:
        tok = self._peek()
        if tok is None or tok in ("and", "or", ")"):
            raise ConfigError(f"-k {self.text!r}: expected a word or '('")
        self.pos += 1
        if tok == "(":
            value = self._or()
            if self._peek() != ")":
                raise ConfigError(f"-k {self.text!r}: missing ')'")
            self.pos += 1
            return value
        return tok.lower() in self.haystack

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None
