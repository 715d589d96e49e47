"""One spelling of "no agent" (`swarm.feedback.OUT_OF_SCOPE`), taken by `swarm feedback --agent`
and `Swarm.feedback`, named by their help; any other spelling is refused with the one that works.
(The console's `/route oos` is in tests/console/test_session.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm import Swarm, agent
from swarm.cli import main
from swarm.errors import ConfigError
from swarm.feedback import OUT_OF_SCOPE
from swarm.testing import KeywordRouter


@agent(examples=["where is my parcel"])
async def orders(task: object, ctx: object) -> str:
    """Orders and parcels."""
    return "on its way"


@agent(examples=["send me my invoice"])
async def billing(task: object, ctx: object) -> str:
    """Invoices."""
    return "sent"


AGENTS = [orders, billing]


async def test_swarm_feedback_takes_the_out_of_scope_spelling(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    async with Swarm(AGENTS, router=KeywordRouter(AGENTS), db=db) as swarm:
        result = await swarm.run("where is my parcel")
        record = await swarm.feedback(result.task_id, "bad", agent=OUT_OF_SCOPE)
        assert record.kind == "correction" and record.agent == OUT_OF_SCOPE
        with pytest.raises(ConfigError, match=f"'{OUT_OF_SCOPE}': no agent should take it"):
            await swarm.feedback(result.task_id, "bad", agent="none")


def test_swarm_feedback_command_takes_it_and_its_help_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    db = f"sqlite:///{tmp_path / 's.db'}"

    async def run() -> str:
        async with Swarm(AGENTS, router=KeywordRouter(AGENTS), db=db) as swarm:
            return (await swarm.run("send me my invoice")).task_id

    task_id = asyncio.run(run())
    names = "\n".join(
        f"@agent(examples=['{a.examples[0]}'])\nasync def {a.name}(task, ctx):\n    return ''\n"
        for a in AGENTS
    )
    (tmp_path / "fb_agents.py").write_text("from swarm import agent\n\n" + names)
    monkeypatch.chdir(tmp_path)
    args = ["feedback", task_id, "--db", db, "--agents", "./fb_agents.py", "--json"]
    refused = CliRunner().invoke(main, [*args, "--agent", "none"])
    assert refused.exit_code == 2
    assert f"'{OUT_OF_SCOPE}': no agent should take it" in refused.output
    taken = CliRunner().invoke(main, [*args, "--agent", OUT_OF_SCOPE])
    assert taken.exit_code == 0, taken.output
    record = json.loads(taken.output.splitlines()[-1])
    assert record["kind"] == "correction" and record["agent"] == OUT_OF_SCOPE
    shown = CliRunner().invoke(main, ["feedback", "--help"], terminal_width=200)
    assert f"or {OUT_OF_SCOPE} when no agent should have" in shown.output
    assert f"{OUT_OF_SCOPE}: none" not in shown.output
