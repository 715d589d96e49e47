"""Fixtures for the console's tests: a test agent pack on disk, and a way to drive the real
console through a pseudo-terminal."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest
from console_driver import STARTUP, STEP, ConsoleProcess

ROOT = Path(__file__).resolve().parents[2]

PACK = '''
"""Agents for the console's tests: one that sleeps (for Ctrl-C), one it delegates to."""

import asyncio

from swarm import Agent, agent


class Sleeper(Agent):
    name = "sleeper"
    description = "Sleeps for a long time."
    examples = ["sleep for a while", "take a long nap", "sleep deeply"]
    timeout = None

    async def run(self, task, ctx):
        child = await ctx.delegate("snooze in the background", agent="napper")
        return f"woke up after {child.output}"


class Napper(Agent):
    name = "napper"
    description = "Snoozes in the background."
    examples = ["snooze", "doze off", "snooze in the background"]
    timeout = None

    async def run(self, task, ctx):
        await asyncio.sleep(120)
        return "a nap"


@agent(examples=["say hello", "greet me", "hello there"])
async def greeter(task, ctx):
    """Says hello."""
    return "hello!"


AGENTS = [Sleeper(), Napper(), greeter]
'''


@pytest.fixture
def pack(tmp_path: Path) -> str:
    """The module name of a test agent pack, importable by a console started in `tmp_path`."""
    (tmp_path / "console_pack.py").write_text(textwrap.dedent(PACK))
    return "console_pack"


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ConsoleProcess]]:
    children: list[pexpect.spawn] = []

    def start(*args: str, timeout: float = STARTUP) -> ConsoleProcess:
        db = f"sqlite:///{tmp_path / 'console.db'}"
        history = tmp_path / "history"
        env = {
            **os.environ,
            # the caller's path after ours: where the example packs may come from in a checkout
            "PYTHONPATH": os.pathsep.join(
                [str(tmp_path), str(ROOT), str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")]
            ),
            "TERM": "xterm",
            "NO_COLOR": "1",
            "COLUMNS": "110",
            "LINES": "50",
            "HF_HUB_OFFLINE": "1",
            "SWARM_EMBEDDING_CACHE": str(tmp_path / "cache"),
        }
        argv = ["-m", "swarm.cli.console_command", "--db", db, "--history", str(history), *args]
        child = pexpect.spawn(
            sys.executable,
            argv,
            cwd=str(tmp_path),
            env=env,
            encoding="utf-8",
            dimensions=(50, 110),
            timeout=STEP,
        )
        children.append(child)
        proc = ConsoleProcess(child, db, history)
        proc.expect_prompt(timeout)
        return proc

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)
