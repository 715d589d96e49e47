"""The `swarm` command through a real subprocess (the installed console script) and CliRunner."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm.cli import main

SWARM = str(Path(sys.executable).with_name("swarm"))

AGENTS = """
    import asyncio, os
    from swarm import Agent, agent

    @agent(examples=["what's the weather in Paris", "will it rain tomorrow"])
    async def weather(task, ctx):
        '''Weather forecasts.'''
        async with ctx.span("tool", "forecast", city="Paris") as span:
            span.set(result="sunny")
        return "sunny"

    class Billing(Agent):
        name = "billing"
        description = "Invoices and payments"
        examples = ["I was charged twice", "send me my invoice"]

        async def run(self, task, ctx):
            if "refund" in task.text:
                forecast = await ctx.delegate("weather for the trip", agent="weather")
                return {"refund": "queued", "weather": forecast.output}
            return "invoice sent"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "my_agents.py").write_text(textwrap.dedent(AGENTS))
    return tmp_path


def swarm(project: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWARM_DB": f"sqlite:///{project / 'swarm.db'}"}
    return subprocess.run(
        [SWARM, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_run_then_traces_through_the_real_command(project: Path) -> None:
    done = swarm(
        project,
        "run",
        "I was charged twice, refund please",
        "--agents",
        "my_agents",
        "--router",
        "keyword",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    (result,) = payload["results"]
    assert result["status"] == "done" and result["agent"] == "billing"
    assert result["output"] == {"refund": "queued", "weather": "sunny"}

    listing = swarm(project, "traces", "--json")
    runs = json.loads(listing.stdout.strip().splitlines()[-1])["runs"]
    assert runs[0]["id"] == payload["run_id"] and runs[0]["agents"] == "my_agents"

    shown = swarm(project, "traces", "show", result["task_id"][:20])
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "billing" in text and "delegate weather" in text and "tool forecast" in text
    assert "weather for the trip" in text  # the child task is drawn inside the tree


def test_rejected_task_exits_non_zero_and_says_why(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))
    r = CliRunner().invoke(
        main,
        [
            "run",
            "tell me a joke",
            "--agents",
            "my_agents",
            "--router",
            "keyword",
            "--db",
            f"sqlite:///{project / 's.db'}",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 1
    assert "rejected" in r.output and "out of scope" in r.output


def test_errors_are_one_line_not_a_traceback(project: Path) -> None:
    r = swarm(project, "run", "x", "--agents", "no_such_module", "--router", "keyword")
    assert r.returncode == 2
    assert "cannot import agents module 'no_such_module'" in r.stderr
    assert "Traceback" not in r.stderr
    missing = swarm(project, "traces", "show", "nope")
    assert missing.returncode == 2 and "no task with id 'nope'" in missing.stderr


SLOW_AGENTS = """
    import asyncio, os
    from swarm import agent

    @agent(examples=["work item"], max_concurrency=2)
    async def worker(task, ctx):
        await asyncio.sleep(0.05)
        with open(os.environ["SWARM_TEST_LOG"], "a") as log:
            log.write(task.id + "\\n")
        return "did " + task.text
"""


def _statuses(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, status FROM tasks"))
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_then_resume_loses_nothing_and_reruns_nothing_finished(tmp_path: Path) -> None:
    (tmp_path / "slow_agents.py").write_text(textwrap.dedent(SLOW_AGENTS))
    (tmp_path / "tasks.txt").write_text("".join(f"work item {i}\n" for i in range(60)))
    db, log = tmp_path / "swarm.db", tmp_path / "executed.log"
    env = {**os.environ, "SWARM_TEST_LOG": str(log), "SWARM_DB": f"sqlite:///{db}"}
    proc = subprocess.Popen(
        [SWARM, "run", "--file", "tasks.txt", "--agents", "slow_agents", "--router", "keyword"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = [t for t, s in _statuses(db).items() if s == "done"]
        if len(done) >= 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    before = _statuses(db)
    finished_before = {t for t, s in before.items() if s == "done"}
    assert len(before) == 60, "every submitted task was written as queued before it ran"
    assert 10 <= len(finished_before) < 60, "the kill came midway"

    resumed = subprocess.run(
        [SWARM, "resume", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert report["runs"][0]["resumed"] == 60 - len(finished_before)

    after = _statuses(db)
    assert set(after.values()) == {"done"} and len(after) == 60
    executed = log.read_text().split()
    for task_id in finished_before:
        assert executed.count(task_id) == 1, "a finished task ran again"
    assert set(executed) == set(after)
