"""The real llama.cpp server killed in the middle of a run and started again (issue 17, faults at
scale): calls retry with backoff, those that outlast the retries fail cleanly, the run finishes,
nothing hangs, and calls after the restart succeed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from llm_fakes import ServerProcess

from swarm import Swarm, agent
from swarm.llm import LLM, EndpointConfig, HTTPBackend
from swarm.testing import FakeRouter

pytestmark = pytest.mark.slow


@agent(examples=["ask"], timeout=120, max_concurrency=2)
async def asker(task: Any, ctx: Any) -> str:
    """Asks the model one short question."""
    reply = await ctx.llm.chat([task.text], max_tokens=4, temperature=0.0, seed=1)
    return str(reply.content)


async def test_a_run_survives_the_llm_server_dying_and_coming_back(
    llm_server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = llm_server_factory()
    config = EndpointConfig(
        base_url=server.url, model="smollm2", timeout=60, connect_timeout=2,
        max_retries=2, backoff_base=0.2, backoff_cap=1.0,
    )  # fmt: skip
    done_at: dict[str, float] = {}
    async with asyncio.timeout(600), LLM(HTTPBackend(config)) as llm:  # a hang fails the test
        async with Swarm(
            [asker],
            router=FakeRouter(default="asker"),
            db=f"sqlite:///{tmp_path / 'swarm.db'}",
            llm=llm,
        ) as swarm:
            handles = [await swarm.submit(f"Say {i}.") for i in range(12)]
            first = await handles[0]
            assert first.ok, first.error
            assert server.proc is not None
            server.proc.kill()  # SIGKILL mid-run: connections reset, new ones refused
            server.proc.wait()
            killed = time.monotonic()
            await asyncio.sleep(3)
            await asyncio.to_thread(server.start)  # same port
            restarted = time.monotonic()
            results = []
            for h in handles:
                r = await h
                done_at[r.task_id] = time.monotonic()
                results.append(r)
            late = await swarm.run("Say again.")
    assert all(r.status.finished for r in results)
    failed = [r for r in results if not r.ok]
    # what failed, failed cleanly: an LLM connection error after its retries, not a hang
    assert all(r.error and ("connect" in r.error.lower() or "llm" in r.error.lower())
               for r in failed), [r.error for r in failed]  # fmt: skip
    assert late.ok, late.error  # after the restart, calls work again
    assert killed < restarted
