"""Several endpoints behind one client, chosen by the request's model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from llm_fakes import FakeOpenAI, ListSink, completion

from swarm.context import Context
from swarm.errors import ConfigError
from swarm.llm import LLM, RoutedBackend

KEY = "sk-hosted-77777777"


@pytest.fixture
async def second() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


async def test_requests_go_to_the_endpoint_serving_their_model(
    server: FakeOpenAI, second: FakeOpenAI, sink: ListSink, make_ctx: Callable[..., Context]
) -> None:
    server.json(completion("local")).json(completion("local again"))
    second.json(completion("hosted"))
    llm = LLM.from_config(
        [
            {"base_url": server.url, "model": "small", "models": ["small-instruct"]},
            {"base_url": second.url, "model": "big", "api_key": KEY},
        ]
    )
    async with llm:
        view = llm.bind(make_ctx())
        assert (await view.chat(["a"])).content == "local"  # no model: the first endpoint's
        assert (await view.chat(["b"], model="big")).content == "hosted"
        assert (await view.chat(["c"], model="unlisted")).content == "local again"
    assert [r["body"]["model"] for r in server.requests] == ["small", "unlisted"]
    assert [r["body"]["model"] for r in second.requests] == ["big"]
    assert "authorization" not in server.requests[0]["headers"]  # the key stays with its host
    assert second.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    assert [s.attributes["endpoint"] for s in sink.spans] == [server.url, second.url, server.url]


def test_a_model_claimed_twice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'m' is served by two endpoints"):
        RoutedBackend.from_configs(
            [
                {"base_url": "http://a/v1", "model": "m"},
                {"base_url": "http://b/v1", "models": ["m"]},
            ]
        )
    with pytest.raises(ConfigError, match=r"endpoints\[1\].*base_url"):
        LLM.from_config([{"base_url": "http://a/v1"}, {"base_url": "nope"}])
