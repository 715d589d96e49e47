"""An agent that raises leaves its traceback (file and line) on the failed attempt's span, shown by
`swarm traces show` and its `--json`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from swarm import AgentRegistry, Retryable, RetryPolicy, Scheduler, TaskStatus, agent
from swarm.cli import main
from swarm.testing import FakeRouter, VirtualClock
from swarm.trace import TraceStore


def parse_amount(text: str) -> float:
    return float(text.split()[-1])  # raises ValueError on "pay me"


@agent(retries=1, retry_on=(Retryable,))
async def payer(task, ctx):
    if ctx.attempt == 1:
        raise Retryable("ledger busy")
    return parse_amount(task.text)


async def test_each_failed_attempt_keeps_where_the_agent_raised(
    store: TraceStore, clock: VirtualClock
) -> None:
    s = Scheduler(
        AgentRegistry([payer]),
        FakeRouter(default="payer"),
        store=store,
        clock=clock,
        retry=RetryPolicy(jitter=False),
    )
    r = await s.run("pay me")
    await s.close()
    assert r.status is TaskStatus.FAILED and r.attempts == 2
    assert r.error == "ValueError: could not convert string to float: 'me'"
    first, second = sorted(
        (sp for sp in store.spans(task_id=r.task_id) if sp["kind"] == "agent"),
        key=lambda sp: sp["attributes"]["attempt"],
    )
    assert first["attributes"]["traceback"].endswith("swarm.errors.Retryable: ledger busy\n")
    tb = second["attributes"]["traceback"]
    assert tb.startswith("Traceback (most recent call last):")
    assert f'File "{__file__}", line 17, in parse_amount' in tb
    assert "return parse_amount(task.text)" in tb
    assert "swarm/scheduler" not in tb  # the scheduler's own frames are left out
    assert tb.endswith("ValueError: could not convert string to float: 'me'\n")


async def test_a_timeout_or_a_cancellation_keeps_no_traceback(
    store: TraceStore, clock: VirtualClock
) -> None:
    @agent(timeout=1)
    async def hangs(task, ctx):
        await ctx.clock.sleep(10)

    s = Scheduler(AgentRegistry([hangs]), FakeRouter(default="hangs"), store=store, clock=clock)
    r = await s.run("x")
    await s.close()
    assert r.status is TaskStatus.FAILED
    (span,) = store.spans(task_id=r.task_id)
    assert span["status"] == "error" and "traceback" not in span["attributes"]


async def test_traces_show_prints_the_traceback(db_url: str, clock: VirtualClock) -> None:
    store = TraceStore(db_url)
    s = Scheduler(
        AgentRegistry([payer]),
        FakeRouter(default="payer"),
        store=store,
        clock=clock,
        retry=RetryPolicy(jitter=False),
    )
    r = await s.run("pay me")
    await s.close()
    store.close()

    wide = {"COLUMNS": "200"}
    shown = CliRunner().invoke(main, ["traces", "show", r.task_id, "--db", db_url], env=wide)
    assert shown.exit_code == 0, shown.output
    assert "Traceback (most recent call last):" in shown.output
    assert f'File "{__file__}", line 17, in parse_amount' in shown.output
    assert "swarm/agents" not in shown.output  # the wrapper of decorated functions is left out

    as_json = CliRunner().invoke(main, ["traces", "show", r.task_id, "--db", db_url, "--json"])
    tree = json.loads(as_json.output.strip().splitlines()[-1])
    tracebacks = [sp["attributes"].get("traceback") for sp in tree["spans"]]
    assert any(tb and "line 17, in parse_amount" in tb for tb in tracebacks)
