"""The HTTP tool's guards, tried with hostile URLs: other hosts, private addresses (literal or
behind a DNS name), redirects that leave the allow-list, odd schemes, huge and slow answers."""

from __future__ import annotations

import httpx
import pytest
from tools_site import Site

from swarm.errors import ConfigError, ToolError
from swarm.tools import HttpTool


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


async def test_fetches_an_allowed_host(site: Site) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    out = await http(url=site.url("/ok"))
    assert out == {
        "status": 200,
        "url": site.url("/ok"),
        "content_type": "text/plain; charset=utf-8",
        "body": "hello from the test site",
        "truncated": False,
    }


async def test_connects_to_the_checked_address_but_keeps_the_name(site: Site) -> None:
    http = HttpTool(["localhost"], allow_private=True)
    out = await http(url=site.url("/host", host="localhost"))
    assert out["body"] == f"localhost:{site.port}"  # Host header: the name, not the IP


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/",
        "http://127.0.0.1.nip.io/",
        "http://evil-127.0.0.1/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.0.0.1/",
        "http://localhost/",
    ],
)
async def test_hosts_off_the_list_are_refused_before_any_connection(site: Site, url: str) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    with pytest.raises(ToolError, match="is not allowed"):
        await http(url=url)
    assert site.requests == []


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[fe80::1]",
        "[fd00::1]",
    ],
)
async def test_private_and_reserved_addresses_are_refused(host: str) -> None:
    http = HttpTool([host])  # even when listed: allow_private is off
    with pytest.raises(ToolError, match="private or reserved address"):
        await http(url=f"http://{host}/latest/meta-data")


async def test_a_name_resolving_to_a_private_address_is_refused(site: Site) -> None:
    with pytest.raises(ToolError, match="'localhost' resolves to .*private"):
        await HttpTool(["localhost"])(url=site.url("/ok", host="localhost"))
    assert site.requests == []

    table = {
        "metadata.example.com": ["169.254.169.254"],
        "mixed.example.com": ["93.184.216.34", "10.0.0.1"],  # one bad address is enough
    }
    http = HttpTool(["*.example.com"], resolver=resolver(table))
    for name in table:
        with pytest.raises(ToolError, match="private or reserved"):
            await http(url=f"https://{name}/")


async def test_wildcards_match_subdomains_only() -> None:
    table = {"api.example.com": ["93.184.216.34"], "evilexample.com": ["93.184.216.34"]}
    http = HttpTool(["*.example.com"], resolver=resolver(table))
    parsed, address = await http.check("https://api.example.com/x")
    assert address == "93.184.216.34" and parsed.host == "api.example.com"
    with pytest.raises(ToolError, match="not allowed"):
        await http.check("https://evilexample.com/")


async def test_follows_redirects_within_the_allow_list(site: Site) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    out = await http(url=site.url(f"/redirect?to={site.url('/ok')}"))
    assert out["body"] == "hello from the test site" and out["url"] == site.url("/ok")


@pytest.mark.parametrize(
    "target", ["http://evil.example/", "http://localhost:{port}/ok", "file:///etc/passwd"]
)
async def test_redirects_off_the_list_are_refused(site: Site, target: str) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    with pytest.raises(ToolError, match="is not allowed|only http and https"):
        await http(url=site.url(f"/redirect?to={target.format(port=site.port)}"))
    assert len(site.requests) == 1  # the redirect itself, nothing after it


async def test_redirect_to_a_private_address_behind_an_allowed_name() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "http://internal.example.com/admin"})

    table = {"api.example.com": ["93.184.216.34"], "internal.example.com": ["10.0.0.7"]}
    http = HttpTool(
        ["*.example.com"], resolver=resolver(table), transport=httpx.MockTransport(handler)
    )
    with pytest.raises(ToolError, match="internal.example.com' resolves to 10.0.0.7"):
        await http(url="https://api.example.com/start")
    (request,) = seen
    # Pinned: the connection goes to the checked address, the name rides in Host and SNI.
    assert request.url.host == "93.184.216.34"
    assert request.headers["host"] == "api.example.com"
    assert request.extensions["sni_hostname"] == "api.example.com"


async def test_redirect_loops_end(site: Site) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True, max_redirects=3)
    with pytest.raises(ToolError, match="more than 3 redirects"):
        await http(url=site.url("/loop"))
    assert len(site.requests) == 4


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://127.0.0.1/", "only http and https"),
        ("gopher://127.0.0.1:70/", "only http and https"),
        ("http://user:pw@127.0.0.1/", "credentials"),
        ("http:///nohost", "no host|not a valid URL"),
        ("not a url", "only http and https|not a valid URL"),
    ],
)
async def test_odd_urls(url: str, expected: str) -> None:
    with pytest.raises(ToolError, match=expected):
        await HttpTool(["127.0.0.1"], allow_private=True)(url=url)


async def test_body_is_capped(site: Site) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True, max_bytes=1000)
    out = await http(url=site.url("/big"))
    assert out["truncated"] is True and len(out["body"]) == 1000


async def test_slow_answer_times_out(site: Site) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True, timeout=0.3)
    with pytest.raises(ToolError, match="timed out after 0.3s"):
        await http(url=site.url("/slow?s=5"))


async def test_methods_are_allow_listed(site: Site) -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    with pytest.raises(ToolError, match="method POST is not allowed"):
        await http(url=site.url("/echo"), method="POST", body="x")
    poster = HttpTool(["127.0.0.1"], allow_private=True, methods=["GET", "POST"])
    assert (await poster(url=site.url("/echo"), method="post", body="hi"))["body"] == "POST hi"


async def test_connection_refused_is_a_tool_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ToolError, match="failed: ConnectError"):
        await HttpTool(["127.0.0.1"], allow_private=True)(url=f"http://127.0.0.1:{port}/")


def test_schema_and_config() -> None:
    http = HttpTool(["api.example.com"])
    function = http.spec["function"]
    assert function["name"] == "http_request" and "api.example.com" in function["description"]
    assert function["parameters"]["required"] == ["url"]
    assert function["parameters"]["properties"]["url"]["description"].startswith("an http(s) URL")
    with pytest.raises(ConfigError):
        HttpTool([])


async def test_through_invoke_a_model_gets_validation_first() -> None:
    http = HttpTool(["127.0.0.1"], allow_private=True)
    with pytest.raises(ToolError, match="url: Field required"):
        await http.invoke('{"uri": "http://127.0.0.1/"}')


async def test_pinning_works_for_ipv6() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="v6")

    table = {"v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"]}
    http = HttpTool(
        ["v6.example.com"], resolver=resolver(table), transport=httpx.MockTransport(handler)
    )
    assert (await http(url="https://v6.example.com:8443/x"))["body"] == "v6"
    assert seen[0].url.host == "2606:2800:220:1:248:1893:25c8:1946"
    assert seen[0].url.port == 8443 and seen[0].headers["host"] == "v6.example.com:8443"
