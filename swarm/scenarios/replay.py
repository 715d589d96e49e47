"""Record and replay: re-run a recorded run's tasks through today's router and agents with the
recorded LLM and tool answers served back, compare two runs, and turn a run into a suite.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from swarm.agents import AgentRegistry
from swarm.context import TOOL_REPLAY_SERVICE
from swarm.errors import TaskNotFound, ToolError
from swarm.failure import canonical_arguments, recorded_tool_result
from swarm.models import Result, Task
from swarm.scenarios.format import FixtureCall
from swarm.scenarios.runner import AgentPack, RouterFactory, default_router_factory
from swarm.scheduler import RouterLike
from swarm.swarm import Swarm
from swarm.trace import TraceStore

__all__ = [
    "TOOL_REPLAY_SERVICE",
    "Change",
    "Recording",
    "ReplayOutcome",
    "RunDiff",
    "TaskRecord",
    "ToolReplay",
    "diff_runs",
    "load_recording",
    "replay_run",
    "save_suite",
    "suite_from_run",
]


# ---- what a run recorded -----------------------------------------------------------------------


@dataclass(slots=True)
class TaskRecord:
    """One root task as compared: what was asked, where it went, what came out."""

    id: str
    text: str
    payload: dict[str, Any]
    session: str | None
    forced_agent: str | None
    priority: int
    status: str
    agent: str | None
    routed: str | None
    decision_status: str | None
    confidence: float | None
    output: Any
    error: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any], decision: dict[str, Any] | None) -> TaskRecord:
        status = decision["status"] if decision else None
        return cls(
            id=row["id"],
            text=row["text"],
            payload=row["payload"] or {},
            session=row["session_id"],
            forced_agent=row["forced_agent"],
            priority=row["priority"] or 0,
            status=row["status"],
            agent=row["agent"],
            routed=decision["agent"] if decision and status != "out_of_scope" else None,
            decision_status=status,
            confidence=decision["confidence"] if decision else None,
            output=row["output"],
            error=row["error"],
        )

    @classmethod
    def from_result(cls, task: Task, result: Result) -> TaskRecord:
        d = result.decision
        return cls(
            id=result.task_id,
            text=task.text,
            payload=task.payload,
            session=task.session,
            forced_agent=task.agent,
            priority=task.priority,
            status=result.status.value,
            agent=result.agent,
            routed=d.agent if d is not None and not d.out_of_scope else None,
            decision_status=d.status if d is not None else None,
            confidence=d.confidence if d is not None else None,
            # Through JSON, as the store keeps it, so a replay compares like with like.
            output=json.loads(json.dumps(result.output, default=repr)),
            error=result.error,
        )

    @property
    def where(self) -> str:
        if self.decision_status == "out_of_scope":
            return "out of scope"
        if self.decision_status == "ambiguous" and self.status == "rejected":
            return f"ambiguous ({self.routed})"
        return self.routed or self.agent or "-"


@dataclass(slots=True)
class Recording:
    run: dict[str, Any]
    roots: list[TaskRecord]
    """Root tasks in the order they were submitted."""
    texts: dict[str, str]
    """Task id -> text, for every task of the run (children too)."""
    tool_spans: list[dict[str, Any]]
    llm_spans: list[dict[str, Any]]

    @property
    def run_id(self) -> str:
        return str(self.run["id"])


def load_recording(store: TraceStore, run_id: str) -> Recording:
    """A run's tasks, decisions and tool and LLM spans (a unique id prefix will do)."""
    store.flush_sync()
    run = store.run(run_id)
    if run is None:
        found = [r for r in store.runs(limit=100_000) if str(r["id"]).startswith(run_id)]
        if len(found) != 1:
            raise TaskNotFound(f"no run with id {run_id!r} in {store.url} (see `swarm traces`)")
        run = store.run(found[0]["id"])
        assert run is not None
    rid = run["id"]
    rows = store.tasks(run_id=rid, limit=None)
    rows.sort(key=lambda r: (r["created_at"], r["id"]))
    roots = [TaskRecord.from_row(r, store.decision(r["id"])) for r in rows if not r["parent_id"]]
    return Recording(
        run=run,
        roots=roots,
        texts={r["id"]: r["text"] for r in rows},
        tool_spans=store.spans(run_id=rid, kind="tool"),
        llm_spans=store.spans(run_id=rid, kind="llm"),
    )


# ---- serving recorded tool outputs -------------------------------------------------------------


class ToolReplay:
    """Serves the outputs a run's `tool` spans recorded, in their order, for `Context.tool`.

    A call is matched by the text of its task, the tool's name and its arguments; failing that,
    by name and arguments alone. A call with no recording raises `ToolError`, so a replay stays
    offline, unless `live=True`, which calls the tool. `served` and `live_calls` count both.
    A recorded failure is raised again as its own class with its own arguments (see
    `swarm.failure.rebuild_exception`), so the agent takes the branch it took the first time.
    """

    def __init__(
        self, spans: Iterable[dict[str, Any]], texts: dict[str, str], *, live: bool = False
    ) -> None:
        self.live = live
        self._exact: dict[tuple[str, str, str], deque[dict[str, Any]]] = defaultdict(deque)
        self._loose: dict[tuple[str, str], deque[dict[str, Any]]] = defaultdict(deque)
        for span in spans:
            attrs = span.get("attributes") or {}
            if "arguments" not in attrs or ("output" not in attrs and span["status"] != "error"):
                continue  # a hand-made tool span (ctx.span("tool", ...)): nothing to serve
            args = _canonical(attrs["arguments"])
            text = texts.get(span["task_id"], "")
            self._exact[(text, span["name"], args)].append(span)
            self._loose[(span["name"], args)].append(span)
        self.served = 0
        self.live_calls = 0

    async def serve(
        self, task: Task, name: str, arguments: Any, call: Callable[[], Any]
    ) -> tuple[Any, bool]:
        """(output, True) from the recording, or (call(), False) when live calls are allowed."""
        args = _canonical(arguments)
        span = _take(self._exact.get((task.text, name, args))) or _take(
            self._loose.get((name, args))
        )
        if span is None:
            if self.live:
                self.live_calls += 1
                return call(), False
            raise ToolError(
                f"replay: no recorded output for tool {name!r} with arguments {args}; a replay "
                "never calls tools (allow it with --live-tools)"
            )
        self.served += 1
        return recorded_tool_result(span), True


def _take(queue: deque[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The next recording; the last one repeats once they run out (as the LLM replay does)."""
    if not queue:
        return None
    return queue.popleft() if len(queue) > 1 else queue[0]


_canonical = canonical_arguments


# ---- comparing runs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    """routed differently, handled by another agent, new failure, fixed, status changed,
    output differs."""
    text: str
    before: str
    after: str
    base_id: str
    other_id: str


@dataclass(slots=True)
class RunDiff:
    base_label: str
    other_label: str
    compared: int = 0
    changes: list[Change] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    """Texts only one of the runs has."""

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(c.kind for c in self.changes))

    @property
    def regressed(self) -> bool:
        """Anything changed other than failures that now pass."""
        return bool(self.unmatched) or any(c.kind != "fixed" for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base_label,
            "other": self.other_label,
            "compared": self.compared,
            "counts": self.counts,
            "regressed": self.regressed,
            "unmatched": self.unmatched,
            "changes": [
                {
                    "kind": c.kind,
                    "text": c.text,
                    "before": c.before,
                    "after": c.after,
                    "base_id": c.base_id,
                    "other_id": c.other_id,
                }
                for c in self.changes
            ],
        }


def compare(
    pairs: Iterable[tuple[TaskRecord, TaskRecord]], base_label: str, other_label: str
) -> RunDiff:
    diff = RunDiff(base_label, other_label)
    for a, b in pairs:
        diff.compared += 1

        def add(kind: str, before: str, after: str, a: TaskRecord = a, b: TaskRecord = b) -> None:
            diff.changes.append(Change(kind, a.text, before, after, a.id, b.id))

        if (a.routed, a.decision_status) != (b.routed, b.decision_status):
            add("routed differently", a.where, b.where)
        elif a.agent != b.agent:
            add("handled by another agent", a.agent or "-", b.agent or "-")
        if a.status == "done" and b.status != "done":
            add("new failure", "done", f"{b.status}: {b.error or ''}".rstrip(": "))
        elif a.status != "done" and b.status == "done":
            add("fixed", f"{a.status}: {a.error or ''}".rstrip(": "), "done")
        elif a.status != b.status:
            add("status changed", a.status, b.status)
        elif a.status == "done" and _canonical(a.output) != _canonical(b.output):
            add("output differs", _short(a.output), _short(b.output))
    return diff


def diff_runs(store: TraceStore, run_a: str, run_b: str) -> RunDiff:
    """Compare two recorded runs task by task (matched by text and payload, in order)."""
    a, b = load_recording(store, run_a), load_recording(store, run_b)
    pairs, unmatched = _match(a.roots, b.roots)
    diff = compare(pairs, f"run {a.run_id}", f"run {b.run_id}")
    diff.unmatched = unmatched
    return diff


def _match(
    left: Sequence[TaskRecord], right: Sequence[TaskRecord]
) -> tuple[list[tuple[TaskRecord, TaskRecord]], list[str]]:
    waiting: dict[tuple[str, str], deque[TaskRecord]] = defaultdict(deque)
    for r in right:
        waiting[(r.text, _canonical(r.payload))].append(r)
    pairs, unmatched = [], []
    for task in left:
        queue = waiting.get((task.text, _canonical(task.payload)))
        if queue:
            pairs.append((task, queue.popleft()))
        else:
            unmatched.append(f"only in the first run: {task.text}")
    for queue in waiting.values():
        unmatched += [f"only in the second run: {t.text}" for t in queue]
    return pairs, unmatched


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ---- replaying a run ---------------------------------------------------------------------------


@dataclass(slots=True)
class ReplayOutcome:
    diff: RunDiff
    run_id: str | None
    """The replay's own run (kind "replay") in the store."""
    records: list[TaskRecord]
    tools_served: int = 0
    llm_recordings: int = 0
    notes: list[str] = field(default_factory=list)


async def replay_run(
    store: TraceStore,
    run_id: str,
    *,
    agents: str | AgentRegistry | None = None,
    router: str | RouterLike | None = None,
    router_factory: RouterFactory | None = None,
    live_tools: bool = False,
    llm: Any = None,
) -> ReplayOutcome:
    """Run the root tasks of `run_id` again and compare; the replay is recorded as a new run.

    `agents`/`router` default to those the run recorded (`router` may be a spec or a router).
    LLM calls are answered from the run's `llm` spans (`swarm.llm.ReplayBackend`) unless `llm`
    is given; tool calls through `ctx.tool` from its `tool` spans (`ToolReplay`).
    """
    rec = await asyncio.to_thread(load_recording, store, run_id)
    meta = rec.run.get("meta") or {}
    spec = agents if agents is not None else rec.run.get("agents")
    if spec is None:
        raise TaskNotFound(f"run {rec.run_id} recorded no agents module; pass --agents MODULE")
    if isinstance(spec, AgentRegistry):
        registry, agents_name = spec, meta.get("agents")
    else:
        registry, agents_name = AgentRegistry(), spec
        registry.load_module(spec)
    router_spec = router if isinstance(router, str) else None
    if router is None or isinstance(router, str):
        router_spec = router or rec.run.get("router") or "auto"
        factory = router_factory or default_router_factory()
        router = await asyncio.to_thread(factory, router_spec, registry)
    notes: list[str] = []
    services: dict[str, Any] = {}
    pack: AgentPack | None = None
    if isinstance(agents_name, str):
        pack = AgentPack.of(agents_name)
        calls = [FixtureCall.model_validate(c) for c in meta.get("setup") or []]
        services = await pack.setup(calls)
    tools = ToolReplay(rec.tool_spans, rec.texts, live=live_tools)
    if llm is None and rec.llm_spans:
        llm = _replay_llm(rec.llm_spans, notes)
    swarm = Swarm(
        registry,
        router=router,
        db=store,
        llm=llm,
        services={**services, TOOL_REPLAY_SERVICE: tools},
        run_kind="replay",
        run_meta={
            "agents": agents_name,
            "router": router_spec,
            "replays": rec.run_id,
            "setup": meta.get("setup") or [],
        },
    )
    # A session is a conversation: its tasks go one after another, sessions side by side.
    groups: dict[str, list[TaskRecord]] = {}
    for r in rec.roots:
        groups.setdefault(r.session or f"task:{r.id}", []).append(r)
    replayed: dict[str, TaskRecord] = {}

    async def play(tasks: list[TaskRecord]) -> None:
        for r in tasks:
            task = Task(
                text=r.text,
                payload=dict(r.payload),
                priority=r.priority,
                session=r.session,
                agent=r.forced_agent,
            )
            result = await swarm.run(task)
            replayed[r.id] = TaskRecord.from_result(task, result)

    try:
        async with swarm:
            await asyncio.gather(*(play(g) for g in groups.values()))
    finally:
        if pack is not None:
            await pack.teardown(services)
    pairs = [(r, replayed[r.id]) for r in rec.roots]
    diff = compare(pairs, f"run {rec.run_id}", f"replay {swarm.run_id}")
    return ReplayOutcome(
        diff=diff,
        run_id=swarm.run_id,
        records=[b for _, b in pairs],
        tools_served=tools.served,
        llm_recordings=len(rec.llm_spans),
        notes=notes,
    )


def _replay_llm(spans: list[dict[str, Any]], notes: list[str]) -> Any:
    try:
        from swarm.llm import LLM, ReplayBackend
    except ImportError:  # pragma: no cover - the LLM room is optional
        notes.append("recorded LLM calls were not replayed: swarm.llm is not available")
        return None
    models = Counter(
        (s.get("attributes") or {}).get("model") or s["name"] for s in spans if s["name"]
    )
    # The request hash covers the model: the client must default to the one recorded.
    model = models.most_common(1)[0][0] if models else None
    return LLM(ReplayBackend.from_spans(spans), model=model)


# ---- a run as a suite --------------------------------------------------------------------------


def suite_from_run(store: TraceStore, run_id: str, *, name: str | None = None) -> dict[str, Any]:
    """A scenario suite (as data) that expects what the run did: one scenario per session (its
    tasks as steps, in order) and one per task without a session."""
    rec = load_recording(store, run_id)
    meta = rec.run.get("meta") or {}
    groups: dict[str, list[TaskRecord]] = {}
    for r in rec.roots:
        groups.setdefault(r.session or f"task:{r.id}", []).append(r)
    scenarios = []
    used: set[str] = set()
    for tasks in groups.values():
        title = _short(tasks[0].text, 50)
        label, n = title, 2
        while label in used:
            label, n = f"{title} ({n})", n + 1
        used.add(label)
        scenarios.append({"name": label, "steps": [_step(t) for t in tasks]})
    suite: dict[str, Any] = {
        "name": name or f"recorded run {rec.run_id}",
        "description": f"What run {rec.run_id} did, saved by `swarm replay --save-suite`.",
        "tags": ["recorded"],
        "agents": rec.run.get("agents") or meta.get("agents") or "",
    }
    if rec.run.get("router"):
        suite["router"] = rec.run["router"]
    if meta.get("setup"):
        suite["setup"] = meta["setup"]
    suite["scenarios"] = scenarios
    return suite


def _step(t: TaskRecord) -> dict[str, Any]:
    step: dict[str, Any] = {"user": t.text}
    if t.payload:
        step["payload"] = t.payload
    if t.forced_agent:
        step["agent"] = t.forced_agent
    expect: dict[str, Any] = {}
    if t.decision_status == "out_of_scope":
        expect["out_of_scope"] = True
    elif t.agent:
        expect["agent"] = t.agent
    expect["status"] = t.status
    if t.status == "done" and t.output is not None:
        expect["output"] = {"equals": t.output}
    step["expect"] = expect
    return step


def save_suite(
    store: TraceStore, run_id: str, path: str | Path, *, name: str | None = None
) -> Path:
    """Write `suite_from_run` as a YAML file that `swarm test` runs."""
    data = suite_from_run(store, run_id, name=name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Saved from a recorded run: each step expects what happened then.\n"
        "# Loosen `output: {equals: ...}` into `contains`/`regex` where answers may vary.\n"
    )
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(header + body, encoding="utf-8")
    return path
