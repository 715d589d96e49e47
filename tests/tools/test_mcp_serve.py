"""`swarm mcp`: the swarm as an MCP server, started as a real subprocess and driven by the `mcp`
package's own client over stdio; every task it runs is in the trace store."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

ROOT = Path(__file__).resolve().parents[2]

AGENTS = """
    from swarm import agent

    @agent(examples=["what's the weather in Paris", "will it rain tomorrow"])
    async def weather(task, ctx):
        '''Weather forecasts.'''
        return {"forecast": "sunny", "asked": task.text}

    @agent(examples=["I was charged twice", "send me my invoice"])
    async def billing(task, ctx):
        '''Invoices and payments.'''
        raise RuntimeError("the ledger is closed")
"""


@pytest.mark.slow
async def test_swarm_mcp_runs_tasks_for_an_mcp_client(tmp_path: Path) -> None:
    (tmp_path / "my_agents.py").write_text(textwrap.dedent(AGENTS))
    db = tmp_path / "swarm.db"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", "from swarm.cli import main; main()", "mcp", "--agents", "my_agents",
              "--router", "keyword", "--db", f"sqlite:///{db}"],
        env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        cwd=str(tmp_path),
    )
    with (tmp_path / "stderr.txt").open("w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name: t for t in (await session.list_tools()).tools}
                assert sorted(tools) == ["list_agents", "run_task"]
                assert tools["run_task"].input_schema["required"] == ["text"]

                listed = await session.call_tool("list_agents", {})
                names = [a["name"] for a in listed.structured_content["result"]]
                assert sorted(names) == ["billing", "weather"]

                done = await session.call_tool("run_task", {"text": "will it rain tomorrow"})
                assert not done.is_error, done.content
                answer = done.structured_content
                assert answer["status"] == "done" and answer["agent"] == "weather"
                assert answer["output"] == {"forecast": "sunny", "asked": "will it rain tomorrow"}

                failed = await session.call_tool(
                    "run_task", {"text": "anything", "agent": "billing"}
                )
                assert failed.is_error
                assert "failed" in failed.content[0].text
                assert "the ledger is closed" in failed.content[0].text

                unknown = await session.call_tool("run_task", {"text": "x", "agent": "nobody"})
                assert unknown.is_error and "there is no agent 'nobody'" in unknown.content[0].text

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status FROM tasks ORDER BY created_at").fetchall()
        kinds = conn.execute("SELECT kind FROM runs").fetchall()
    assert [r[1] for r in rows] == ["done", "failed"]
    assert rows[0][0] == answer["task_id"]
    assert kinds == [("mcp",)]
