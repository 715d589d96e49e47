"""Token events from a real streaming server (llama.cpp with SmolLM2-135M on 127.0.0.1)."""

from __future__ import annotations

import pytest
from llm_fakes import ServerProcess

from swarm import Swarm
from swarm.llm import LLM, EndpointConfig, HTTPBackend, LLMAgent
from swarm.testing import FakeRouter

pytestmark = pytest.mark.slow


class Storyteller(LLMAgent):
    name = "storyteller"
    description = "Tells short stories"
    system = "Be brief."
    stream = True
    max_tokens = 16
    temperature = 0.0


async def test_an_llm_agent_streams_its_answer_as_token_events(llm_server: ServerProcess) -> None:
    llm = LLM(HTTPBackend(EndpointConfig(base_url=llm_server.url, model="smollm2", timeout=120)))
    router = FakeRouter(default="storyteller")
    async with llm, Swarm([Storyteller()], router=router, db=None, llm=llm) as swarm:
        events = [e async for e in swarm.stream("Count to five.")]
    kinds = [e.kind for e in events]
    assert kinds[:3] == ["queued", "routed", "started"] and kinds[-1] == "done"
    tokens = [e.data["text"] for e in events if e.kind == "token"]
    assert len(tokens) >= 2  # the server sent the answer in pieces, each one an event
    assert kinds.index("token") < kinds.index("span")  # while the call was still going
    done = events[-1].data
    assert done["status"] == "done" and "".join(tokens) == done["output"] != ""
    llm_span = next(e.data for e in events if e.kind == "span" and e.data["kind"] == "llm")
    assert llm_span["status"] == "ok" and llm_span["name"] == "smollm2"
