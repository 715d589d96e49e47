"""One console session: a prompt with history, requests routed and run with live status, slash
commands, feedback for the router. Everything it runs is traced under the session's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from swarm.console.commands import Parsed, UsageProblem, parse
from swarm.console.live import RequestStatus
from swarm.console.views import (
    AgentsTable,
    HelpView,
    HistoryTable,
    RoutingNote,
    WaitingNote,
    Welcome,
)
from swarm.errors import ConfigError, SwarmError, TaskNotFound
from swarm.events import Event, Subscription
from swarm.feedback import OUT_OF_SCOPE, check_agent_name, record_feedback
from swarm.models import Decision, Result, Task, new_id, short_id
from swarm.paths import DEFAULT_MODELS_DIR
from swarm.swarm import Swarm
from swarm.trace import TraceStore
from swarm.views import ApprovalsTable, DecisionView, ResultView, TaskTree

if TYPE_CHECKING:
    from swarm.router.learn import LearnOutcome

__all__ = ["ConsoleSession", "LastRequest"]

log = logging.getLogger("swarm.console")

PROMPT = "swarm› "


@dataclass
class LastRequest:
    """The last request the router decided: what `/why`, `/good`, `/bad` and `/route` act on."""

    task_id: str
    text: str
    decision: Decision | None


class ConsoleSession:
    """Reads lines, runs requests and commands, until /quit or Ctrl-D. `run()` blocks.

    `read_line` is `input` by default; tests of the loop can pass their own.
    """

    def __init__(
        self,
        *,
        registry: Any,
        router: Any,
        store: TraceStore,
        console: Console,
        agents_spec: str | None = None,
        router_spec: str = "auto",
        models_dir: str = DEFAULT_MODELS_DIR,
        history_file: str | None = None,
        out_of_scope: list[str] | None = None,
        session_id: str | None = None,
        read_line: Callable[[str], str] = input,
    ) -> None:
        self.registry = registry
        self.router = router
        self.store = store
        self.console = console
        self.agents_spec = agents_spec
        self.router_spec = router_spec
        self.models_dir = models_dir
        self.history_file = history_file
        self.out_of_scope = out_of_scope or []
        self.session_id = session_id or new_id()
        self.read_line = read_line
        self.swarm = Swarm(
            registry,
            router=router,
            db=store,
            run_kind="console",
            run_meta={"agents": agents_spec, "router": router_spec, "session": self.session_id},
        )
        self.last: LastRequest | None = None
        self.last_task: str | None = None
        self.parked: dict[str, _Parked] = {}
        """Requests of this session waiting for a person, by approval id: `/approve` resumes."""
        self._runner: asyncio.Runner | None = None

    # ---- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        with asyncio.Runner() as runner, self._history():
            self._runner = runner
            runner.run(self.swarm.start())
            self.console.print(
                Welcome(
                    len(self.registry),
                    str(self.router.version),
                    self.session_id,
                    self.history_file,
                )
            )
            runner.run(self._announce_waiting())
            try:
                while True:
                    try:
                        line = self.read_line(PROMPT)
                    except EOFError:  # Ctrl-D
                        self.console.print()
                        break
                    except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh line, as a shell
                        self.console.print()
                        continue
                    line = line.strip()
                    if not line:
                        continue
                    if not self.handle_line(line):
                        break
            finally:
                runner.run(self.swarm.close(drain=False, grace=2.0))
                self._runner = None
        self.console.print(Text("bye", style="grey50"))

    def handle_line(self, line: str) -> bool:
        """Run one typed line; False when the session should end."""
        runner = self._runner
        assert runner is not None
        try:
            if not line.startswith("/"):
                runner.run(self.request(line))
                return True
            parsed = parse(line)
            if parsed.command.name == "quit":
                return False
            runner.run(self.command(parsed))
        except UsageProblem as exc:
            self.console.print(Text(str(exc), style="yellow"))
        except KeyboardInterrupt:  # only where no signal handler could be installed
            self.console.print(Text("interrupted", style="yellow"))
        except SwarmError as exc:
            self.console.print(Text.assemble(("error: ", "red"), str(exc)))
        except Exception as exc:  # the session outlives any one failing command
            log.exception("console command failed: %s", line)
            self.console.print(Text.assemble(("error: ", "red"), f"{type(exc).__name__}: {exc}"))
        return True

    @contextlib.contextmanager
    def _history(self) -> Iterator[None]:
        """Line editing and a history kept across sessions, where readline exists."""
        try:
            import readline
        except ImportError:  # Windows without pyreadline: plain input, no history
            yield
            return
        path = Path(self.history_file) if self.history_file else None
        readline.set_history_length(1000)
        if path is not None and path.exists():
            with contextlib.suppress(OSError):
                readline.read_history_file(path)
        try:
            yield
        finally:
            if path is not None:
                with contextlib.suppress(OSError):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    readline.write_history_file(path)

    # ---- requests ----------------------------------------------------------------------------

    async def request(self, text: str, *, agent: str | None = None) -> Result | None:
        """Route and run `text` (or send it to `agent`), showing the decision at once, live
        status while agents work, then the result. Ctrl-C cancels it and its children."""
        task = Task(text=text, session=self.session_id, agent=agent)

        def emit(renderable: RenderableType) -> None:
            self.console.print(renderable)

        def on_decision(d: Decision) -> None:
            if d.status == "forced":  # nothing was routed: a line, not a panel of candidates
                self.console.print(Text.assemble(("route ", "bold"), (d.reason, "blue")))
            else:
                self.console.print(DecisionView(d))
                self.console.print(RoutingNote(d))
            if agent is None:
                self.last = LastRequest(task.id, text, d)

        status = RequestStatus(task, emit, on_decision)
        if agent is None:
            self.last = LastRequest(task.id, text, None)
        self.last_task = task.id
        # Subscribed before it is queued: nothing is missed, a question to a person included.
        events = self.swarm.events.subscribe(task.id)
        try:
            handle = await self.swarm.submit(task)
        except BaseException:
            events.close()
            raise
        return await self._follow(
            _Parked(handle, status, events, asyncio.ensure_future(_wait(handle)))
        )

    async def _follow(self, parked: _Parked) -> Result | None:
        """Show a request's progress (its events, in its live view) until its result, or until
        it waits for a person: then the prompt comes back (`/approve ID` or `/deny ID` carries
        on with it)."""
        handle, status, waiter, events = parked.handle, parked.status, parked.waiter, parked.events
        loop = asyncio.get_running_loop()
        asked = asyncio.ensure_future(_feed(events, status, until_asked=True))
        question: Event | None = None
        presses = 0

        def on_sigint() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                handle.cancel()  # the scheduler cancels its children with it
                status.note = "cancelling… (Ctrl-C again to stop waiting)"
            else:
                waiter.cancel()

        installed = _add_sigint(loop, on_sigint)
        try:
            live = Live(status, console=self.console, refresh_per_second=10, transient=True)
            with live:
                both: list[asyncio.Future[Any]] = [waiter, asked]
                await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
                if asked.done() and not waiter.done():
                    question = asked.result()  # None: its events ended, its result is on its way
                if question is None:
                    await asyncio.wait({waiter})
                    # The root's `done` came before its result: every event is in the buffer.
                    events.close()
                    await asked
                    await _feed(events, status, until_asked=False)
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
            if not asked.done():
                asked.cancel()
        if question is not None:
            self.parked[question.data["approval_id"]] = parked
            self.console.print(WaitingNote(question.data, status.nodes.get(question.task_id)))
            return None
        if waiter.cancelled():
            self.console.print(
                Text("stopped waiting; the task may still be winding down", "yellow")
            )
            return None
        result = waiter.result()
        if presses and result.status.value == "cancelled":
            self.console.print(Text("cancelled (with its child tasks)", style="yellow"))
        self.console.print(ResultView(result))
        return result

    async def _announce_waiting(self) -> None:
        waiting = await asyncio.to_thread(self.store.approvals, "waiting")
        if waiting:
            self.console.print(
                Text(
                    f"{len(waiting)} approval(s) wait for a person: /approvals lists them",
                    style="yellow",
                )
            )

    # ---- commands ----------------------------------------------------------------------------

    async def command(self, parsed: Parsed) -> None:
        handler = getattr(self, f"cmd_{parsed.command.name}")
        await handler(*parsed.args)

    async def cmd_help(self) -> None:
        self.console.print(HelpView())

    async def cmd_agents(self) -> None:
        self.console.print(AgentsTable(self.registry))

    async def cmd_history(self) -> None:
        await self.store.flush()
        run_id = self.swarm.run_id
        tasks = await asyncio.to_thread(
            self.store.tasks, run_id=run_id, roots_only=True, limit=None
        )
        self.console.print(HistoryTable(list(reversed(tasks)), self.history_file))

    async def cmd_trace(self, task_id: str | None = None) -> None:
        wanted = task_id or self.last_task
        if wanted is None:
            raise UsageProblem("no request yet: /trace ID shows any task")
        await self.store.flush()
        try:
            tree = await asyncio.to_thread(self.store.task_tree, wanted)
        except TaskNotFound as exc:  # none, or several (it lists them)
            raise UsageProblem(f"{exc}; /history lists this session's") from None
        self.console.print(TaskTree(tree))

    async def cmd_approvals(self) -> None:
        rows = await self.swarm.approvals("waiting")
        self.console.print(ApprovalsTable(rows, title="approvals waiting for a person"))

    async def cmd_approve(self, approval_id: str, *note: str) -> None:
        await self._decide(approval_id, True, note)

    async def cmd_deny(self, approval_id: str, *note: str) -> None:
        await self._decide(approval_id, False, note)

    async def _decide(self, approval_id: str, approve: bool, note: tuple[str, ...]) -> None:
        try:
            row = await self.swarm.approve(
                approval_id, approve, by="console", note=" ".join(note) or None
            )
        except TaskNotFound as exc:
            raise UsageProblem(f"{exc}; /approvals lists the waiting ones") from None
        style = "green" if row["status"] == "approved" else "red"
        self.console.print(
            Text.assemble((row["status"], style), f" {short_id(row['id'])}: {row['question']}")
        )
        parked = self.parked.pop(row["id"], None)
        if parked is not None:  # a request of this session: watch it go on
            await self._follow(parked)

    def _last_routed(self) -> LastRequest:
        if self.last is None:
            raise UsageProblem("no request routed yet: type one first")
        if self.last.decision is None:
            raise UsageProblem(
                "the last request was not routed (cancelled before the router saw it)"
            )
        return self.last

    async def cmd_why(self) -> None:
        last = self._last_routed()
        explain = getattr(self.router, "explain", None)
        if explain is None:
            self.console.print(DecisionView(last.decision))  # type: ignore[arg-type]
            self.console.print(
                Text(
                    f"the {self.router.version} router has no explanations; "
                    "start with --router auto for the learned one",
                    style="grey50",
                )
            )
            return
        explanation = await asyncio.to_thread(explain, last.text)
        self.console.print(explanation)
        if last.decision is not None and last.decision.version != self.router.version:
            self.console.print(
                Text(
                    f"(explained by router {self.router.version}; the request was routed by "
                    f"{last.decision.version})",
                    style="grey50",
                )
            )

    async def _feedback(self, kind: str, agent: str | None = None) -> LastRequest:
        last = self._last_routed()
        await self.store.flush()
        await asyncio.to_thread(
            record_feedback,
            self.store,
            last.task_id,
            kind,
            agent=agent,
            agents=self.registry.names,
            session_id=self.session_id,
        )
        return last

    async def cmd_good(self) -> None:
        last = await self._feedback("good")
        agent = last.decision.agent if last.decision else None
        if agent is None:
            self.console.print(
                Text("noted: out of scope was right for this request", style="green")
            )
        else:
            self.console.print(Text(f"noted: {agent} was right; /retrain learns it", style="green"))

    async def cmd_bad(self) -> None:
        await self._feedback("bad")
        self.console.print(
            Text(
                f"noted as wrong; /route AGENT says where it should have gone "
                f"(/route {OUT_OF_SCOPE}: to no agent)",
                style="yellow",
            )
        )

    async def cmd_route(self, agent: str) -> None:
        try:
            check_agent_name(agent, self.registry.names)
        except ConfigError as exc:
            raise UsageProblem(str(exc)) from None
        last = await self._feedback("correction", agent)
        if agent == OUT_OF_SCOPE:  # nobody re-runs it: no agent should take it
            self.console.print(
                Text(
                    f"correction recorded: “{last.text}” is out of scope (no agent should take it)"
                )
            )
            return
        self.console.print(
            Text(f"correction recorded: “{last.text}” belongs to {agent}; re-running it there")
        )
        await self.request(last.text, agent=agent)

    async def cmd_retrain(self) -> None:
        if not hasattr(self.router, "explain") or not hasattr(self.router, "save"):
            raise UsageProblem(
                f"/retrain needs the learned router; this session uses "
                f"{self.router.version!r}. Start with --router auto."
            )
        from swarm.console.retrain import DEFAULT_SUITES, RetrainCancelled, retrain
        from swarm.router.feedback import gather_feedback

        rows = await asyncio.to_thread(self.store.feedback)
        oos = getattr(self.router.policy, "oos_label", None) or OUT_OF_SCOPE
        labels = [*self.registry.names, oos]
        feedback = gather_feedback(rows, labels)
        counts = feedback.counts()
        said = (
            f"{counts['corrections']} correction{'s' if counts['corrections'] != 1 else ''} and "
            f"{counts['good'] + counts['bad']} good/bad mark"
            f"{'s' if counts['good'] + counts['bad'] != 1 else ''}"
        )
        if feedback.contradictions:
            said += f" ({len(feedback.contradictions)} contradictory texts left out)"
        self.console.print(
            Text(f"learning {said} on top of router {self.router.version}…", style="grey50")
        )
        # Held out: the routings the agents' packs' suites expect, and the project's scenarios/.
        suites = [str(p.suites) for p in self.registry.packs if p.suites is not None]
        suites += [s for s in DEFAULT_SUITES if s not in suites]
        cancelled = threading.Event()
        work = asyncio.ensure_future(
            asyncio.to_thread(
                retrain, self.router, rows, self.models_dir, suites=suites, cancelled=cancelled
            )
        )
        try:
            outcome = await asyncio.shield(work)
        except asyncio.CancelledError:  # Ctrl-C: stop learning, wait until it has stopped
            cancelled.set()
            try:
                outcome = await work
            except RetrainCancelled:
                self.console.print(Text("retrain cancelled; nothing was saved", "yellow"))
                raise asyncio.CancelledError from None
            # It had finished and saved before it saw the cancel: serve what disk says.
            self._use(outcome)
            raise
        self._use(outcome)

    def _use(self, outcome: LearnOutcome) -> None:
        self.console.print(outcome)
        if outcome.made_current:
            self.router = outcome.router
            self.swarm.router = outcome.router
            self.swarm.scheduler.router = outcome.router


async def _feed(events: Subscription, status: RequestStatus, *, until_asked: bool) -> Event | None:
    """Feed the request's events to its live view until its subscription ends (None) or, with
    `until_asked`, until the request (or a child task) asks a person: that `waiting` event."""
    async for event in events:
        try:
            status.handle(event)
        except Exception:  # a broken view must never fail or hang a request
            log.exception("the console's live view failed on a %s event", event.kind)
        if until_asked and event.kind == "waiting":
            return event
    return None


async def _wait(handle: Any) -> Result:
    result: Result = await handle
    return result


@dataclass
class _Parked:
    """A request being followed: its handle, its live view, its events, the wait for its end."""

    handle: Any
    status: RequestStatus
    events: Subscription
    waiter: asyncio.Future[Result]


def _add_sigint(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        return False
    return True
