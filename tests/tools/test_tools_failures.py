"""Hostile servers and odd inputs against the built-in tools (issue 17, items 19 and 21):
compressed bombs stop at the size cap, and every failure inside a built-in tool is a ToolError
that goes back to the model, never an exception that fails the task."""

from __future__ import annotations

import tracemalloc
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from tools_site import Site, bomb

from swarm import Swarm, Task
from swarm.errors import ToolError
from swarm.llm import LLMAgent
from swarm.testing import FakeRouter
from swarm.testing.llm import ScriptedLLM, call_tool
from swarm.tools import FileTool, HttpTool, ScriptTool
from swarm.tools.http import _redirect_target

CAP = 64_000


# -- item 19: the size cap holds after decoding -----------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "mib"),
    [("gzip", 128), ("deflate", 64), ("zstd", 1024), ("gzip,gzip", 128)],
)
async def test_a_compressed_bomb_stops_at_the_cap(site: Site, encoding: str, mib: int) -> None:
    compressed = len(bomb(encoding, mib))
    assert compressed * 200 < mib << 20  # it is a bomb: 200x or more
    http = HttpTool(["127.0.0.1"], allow_private=True, max_bytes=CAP, timeout=30)
    tracemalloc.start()
    try:
        out = await http(url=site.url(f"/bomb?enc={encoding}&size={mib}&header={encoding}"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out["truncated"] is True and out["body"] == "\x00" * CAP
    # The old reader decoded the whole body first: hundreds of MiB, up to 2 GB for zstd.
    assert peak < 8 * (CAP + compressed) + (4 << 20), peak


@pytest.mark.parametrize("encoding", ["br", "compress", "x-custom", "gzip, br"])
async def test_an_encoding_the_tool_cannot_bound_is_refused(site: Site, encoding: str) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True, max_bytes=CAP)
    with pytest.raises(ToolError, match="cannot decode within its size cap"):
        await http(url=site.url(f"/bomb?enc=gzip&size=1&header={encoding}"))


@pytest.mark.parametrize(
    ("encoding", "header"),
    [
        ("gzip", "gzip"),
        ("gzip", "x-gzip"),
        ("deflate", "deflate"),
        ("raw-deflate", "deflate"),
        ("zstd", "zstd"),
        ("gzip", "identity, gzip"),
    ],
)
async def test_small_compressed_bodies_decode(site: Site, encoding: str, header: str) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True, max_bytes=CAP)
    out = await http(url=site.url(f"/compressed?enc={encoding}&header={header}"))
    assert out["body"] == "small and fine " * 10 and out["truncated"] is False


async def test_only_boundable_encodings_are_asked_for(site: Site) -> None:
    await HttpTool(["127.0.0.1"], allow_private=True)(url=site.url("/ok"))
    assert site.requests[0]["headers"]["accept-encoding"] == "gzip, deflate, zstd"


async def test_a_corrupt_compressed_body_is_a_tool_error(site: Site) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    with pytest.raises(ToolError, match="gzip body that does not decode"):
        await http(url=site.url("/ok?x=1").replace("/ok?x=1", "/compressed?enc=zstd&header=gzip"))


# -- item 21: every failure is a tool error ----------------------------------------------------


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("http://[::1/x", "Invalid URL in location header"),
        ("http://127.0.0.1:99999999/", "out of range"),
        ("http://xn--zz-\u00e9\u200d.example/", "Invalid URL in location header"),
        ("http://exa mple.com/", "is not allowed"),
    ],
)
async def test_an_unparseable_location_is_a_tool_error(site: Site, target: str, why: str) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    with pytest.raises(ToolError, match=why):
        await http(url=site.url(f"/bad-location?to={quote(target)}"))


def test_a_location_that_will_not_join_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="not a valid URL"):
        _redirect_target(httpx.URL("http://127.0.0.1/"), "http://[::1/x")


@pytest.mark.parametrize("charset", ["x-unknown-42", "utf-9", "nonsense%3B%3B", "%22%22"])
async def test_an_unknown_charset_falls_back_to_utf8(site: Site, charset: str) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    out = await http(url=site.url(f"/charset?name={charset}"))
    assert out["body"] == "café"


async def test_a_known_charset_is_used(site: Site) -> None:
    out = await HttpTool(["127.0.0.1"], allow_private=True)(url=site.url("/charset?name=latin-1"))
    assert out["body"] == "cafÃ©"  # the UTF-8 bytes read as latin-1, as the server said


async def test_an_argument_too_long_for_the_os_is_a_tool_error() -> None:
    scripts = ScriptTool({"echo": "/bin/echo"})
    with pytest.raises(ToolError, match=r"could not start: Argument list too long"):
        await scripts(script="echo", args=["x" * 300_000])


async def test_any_exception_inside_a_built_in_tool_is_a_tool_error() -> None:
    async def broken_resolver(host: str, port: int) -> list[str]:
        raise RuntimeError("resolver exploded")

    http = HttpTool(["example.com"], resolver=broken_resolver)
    with pytest.raises(ToolError, match="tool 'http_request' failed: RuntimeError: resolver"):
        await http(url="http://example.com/")


async def test_an_exception_group_is_reported_by_its_first_failure() -> None:
    async def grouped(host: str, port: int) -> list[str]:
        raise ExceptionGroup("unhandled errors in a TaskGroup", [OverflowError("port too big")])

    http = HttpTool(["example.com"], resolver=grouped)
    with pytest.raises(ToolError, match="failed: OverflowError: port too big"):
        await http(url="http://example.com/")


async def test_a_plain_tool_lets_its_own_exceptions_through() -> None:
    from swarm.tools import tool

    @tool
    def refuse(item: str) -> str:
        raise LookupError(item)

    with pytest.raises(LookupError):
        await refuse(item="x")


async def test_the_model_gets_the_failure_and_the_task_finishes(site: Site, tmp_path: Any) -> None:
    (tmp_path / "a.txt").write_text("fine")
    http = HttpTool(["127.0.0.1"], allow_private=True)

    class Fetcher(LLMAgent):
        name = "fetcher"
        description = "fetches"
        examples = ["fetch it"]
        tools = [http, FileTool(tmp_path), ScriptTool({"echo": "/bin/echo"})]

    def reply(request: Any) -> Any:
        tool_results = [m.content for m in request.messages if m.role == "tool"]
        if not tool_results:
            return call_tool("http_request", url=site.url("/bad-location"))
        if len(tool_results) == 1:
            return call_tool("run_script", script="echo", args=["y" * 300_000])
        return " | ".join(str(r) for r in tool_results)

    async with Swarm(
        [Fetcher], router=FakeRouter(default="fetcher"), db=None, llm=ScriptedLLM(reply)
    ) as s:
        result = await s.run(Task(text="fetch it"))
    assert result.status.value == "done", result.error
    assert "Invalid URL in location header" in result.output
    assert "could not start: Argument list too long" in result.output
