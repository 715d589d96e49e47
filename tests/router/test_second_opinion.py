"""An LLM only when unsure: `SecondOpinionRouter` over a trained router (hash encoder), with the
scripted LLM backend. The real llama.cpp server test is in tests/llm/test_llm_second_opinion.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from swarm.cli.common import ENABLE_ENV, second_opinion_from_env
from swarm.errors import ConfigError
from swarm.llm import LLM
from swarm.llm.types import ChatRequest
from swarm.router import Router
from swarm.router.second_opinion import SecondOpinionRouter
from swarm.testing.llm import ScriptedLLM

TEXTS = [
    "block my card please",  # a training example: confident
    "show my balance",  # a training example: confident
    "my card for the hotel in rome",  # between cards and travel
    "tell me a joke",  # out of scope
]


def split_by_confidence(trained: Router) -> tuple[float, set[int]]:
    """A `below` that puts the two least confident routed decisions under it, and their
    positions: the texts the LLM is asked about."""
    decisions = trained.route(TEXTS)
    routed = sorted(
        (d.confidence, i) for i, d in enumerate(decisions) if d.status != "out_of_scope"
    )
    unsure = {i for _, i in routed[:1]} | {
        i for i, d in enumerate(decisions) if d.status == "ambiguous"
    }
    below = (routed[len(unsure) - 1][0] + routed[len(unsure)][0]) / 2
    return below, unsure


def schema_of(request: ChatRequest) -> dict[str, Any]:
    fmt = request.response_format or {}
    return dict(fmt["json_schema"]["schema"])


def test_only_unsure_decisions_are_asked_and_both_opinions_are_kept(trained: Router) -> None:
    below, unsure = split_by_confidence(trained)
    before = trained.route(TEXTS)
    script = ScriptedLLM(lambda request: json.dumps({"agent": "none"}))
    router = SecondOpinionRouter(trained, LLM(script), below=below, floor=1.1)
    try:
        after = router.route(TEXTS)
    finally:
        router.close()
    assert script.calls == len(unsure)
    asked = {i for i, d in enumerate(after) if d.second_opinion is not None}
    assert asked == unsure
    for i in unsure:
        d, was = after[i], before[i]
        assert d.agent is None and d.status == "out_of_scope"
        assert d.second_opinion is not None
        assert d.second_opinion["router"] == {
            "agent": was.agent,
            "status": was.status,
            "confidence": was.confidence,
        }
        assert d.second_opinion["llm"] == "none" and d.second_opinion["changed"] is True
        assert d.to_dict()["second_opinion"] == d.second_opinion
    for i in set(range(len(TEXTS))) - unsure:
        assert (after[i].agent, after[i].status) == (before[i].agent, before[i].status)
        assert after[i].second_opinion is None
    # The question: the top candidates (agents, never the out-of-scope label) or none, as an enum.
    schema = schema_of(script.requests[0])
    choices = schema["properties"]["agent"]["enum"]
    assert choices[-1] == "none" and 1 <= len(choices) - 1 <= 3
    assert set(choices[:-1]) <= set(trained.labels)
    assert router.stats.to_dict() == {
        "decisions": 4,
        "asked": len(unsure),
        "changed": len(unsure),
        "failed": 0,
        "asked_share": round(len(unsure) / 4, 4),
        "changed_share_of_asked": 1.0,
    }
    # Everything else is the wrapped router's.
    assert router.labels == trained.labels and router.version == trained.version


def test_an_answer_that_agrees_is_asked_but_changes_nothing(trained: Router) -> None:
    below, unsure = split_by_confidence(trained)

    def agree(request: ChatRequest) -> str:
        return json.dumps({"agent": schema_of(request)["properties"]["agent"]["enum"][0]})

    router = SecondOpinionRouter(trained, LLM(ScriptedLLM(agree)), below=below, floor=1.1)
    try:
        after = router.route(TEXTS)
    finally:
        router.close()
    routed_before = {i for i in unsure if trained.route([TEXTS[i]])[0].status == "routed"}
    for i in routed_before:
        assert after[i].second_opinion is not None and after[i].second_opinion["changed"] is False
    assert router.stats.asked == len(unsure)
    assert router.stats.changed == len(unsure) - len(routed_before)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (json.dumps({"agent": "billing"}), "not one of"),  # a name it was not offered
        ("no JSON here", "JSONDecodeError"),
        (None, "BackendError"),  # the scripted backend has run out of replies
    ],
)
def test_an_unusable_answer_keeps_the_routers_decision(
    trained: Router, reply: str | None, error: str
) -> None:
    below, unsure = split_by_confidence(trained)
    script = ScriptedLLM([reply] if reply is not None else [])
    router = SecondOpinionRouter(trained, LLM(script), below=below, floor=1.1)
    try:
        one = next(iter(unsure))
        d = router.route([TEXTS[one]])[0]
    finally:
        router.close()
    was = trained.route([TEXTS[one]])[0]
    assert (d.agent, d.status, d.confidence) == (was.agent, was.status, was.confidence)
    assert d.second_opinion is not None and error in d.second_opinion["error"]
    assert router.stats.failed == 1 and router.stats.changed == 0


def test_a_slow_llm_times_out_and_the_router_decides(trained: Router) -> None:
    async def slow(request: ChatRequest) -> str:
        await asyncio.sleep(5)
        return json.dumps({"agent": "none"})

    below, unsure = split_by_confidence(trained)
    router = SecondOpinionRouter(trained, LLM(ScriptedLLM(slow)), below=below, timeout=0.2)
    try:
        d = router.route([TEXTS[next(iter(unsure))]])[0]
    finally:
        router.close()
    assert d.second_opinion is not None
    assert d.second_opinion["error"] == "TimeoutError: no answer from the LLM within 0.2 s"


def test_off_by_default_and_a_clear_error_without_an_endpoint(trained: Router) -> None:
    assert second_opinion_from_env(trained, environ={}) is trained
    assert second_opinion_from_env(trained, environ={ENABLE_ENV: "0"}) is trained
    with pytest.raises(ConfigError, match="no LLM endpoint is: set SWARM_LLM_BASE_URL"):
        second_opinion_from_env(trained, environ={ENABLE_ENV: "1"})
    on = second_opinion_from_env(
        trained,
        environ={ENABLE_ENV: "1", "SWARM_LLM_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert isinstance(on, SecondOpinionRouter) and on.router is trained
    on.close()
