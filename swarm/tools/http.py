"""The built-in HTTP tool: reaches only allow-listed hosts, never private addresses unless allowed,
checks every redirect hop again, and connects to the very address it checked (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx

from swarm.errors import ConfigError, ToolError
from swarm.tools.base import Tool

__all__ = ["HttpTool", "Resolver"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""`(host, port) -> IP addresses`; injectable so tests can make a name resolve anywhere."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HttpTool(Tool):
    """`http_request(url, method="GET", body=None)` for a model, fenced in.

    - `allow_hosts`: exact names (`api.example.com`), subdomain patterns (`*.example.com`) or IP
      literals. Nothing else is reached, on the first request or after a redirect.
    - `allow_private`: let allowed hosts resolve to loopback, private, link-local or other
      non-global addresses (off: a public name pointing at 169.254.169.254 is refused).
    - `timeout` bounds the whole call, redirects included; `max_bytes` caps the body kept.
    """

    def __init__(
        self,
        allow_hosts: Iterable[str],
        *,
        allow_private: bool = False,
        methods: Iterable[str] = ("GET",),
        timeout: float = 10.0,
        max_bytes: int = 256_000,
        max_redirects: int = 3,
        headers: dict[str, str] | None = None,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = "http_request",
    ) -> None:
        self.allow_hosts = frozenset(_norm_host(h) for h in allow_hosts)
        if not self.allow_hosts:
            raise ConfigError("HttpTool needs at least one allowed host")
        self.allow_private = allow_private
        self.methods = frozenset(m.upper() for m in methods)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.headers = dict(headers or {})
        self._resolve = resolver or _system_resolver
        self._transport = transport
        hosts = ", ".join(sorted(self.allow_hosts))
        super().__init__(
            self.request,
            name=name,
            description=(
                f"Make an HTTP request ({', '.join(sorted(self.methods))}) to one of these "
                f"hosts: {hosts}. Returns status, content type and body text."
            ),
        )

    async def request(
        self, url: str, method: str = "GET", body: str | None = None
    ) -> dict[str, Any]:
        """Make one HTTP request, following allowed redirects.

        Args:
            url: an http(s) URL on an allowed host
            method: the HTTP method
            body: the request body, for methods that take one
        """
        method = method.upper()
        if method not in self.methods:
            raise ToolError(f"method {method} is not allowed; use one of {sorted(self.methods)}")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url, method, body)
        except TimeoutError:
            raise ToolError(f"request to {url} timed out after {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"request to {url} failed: {type(exc).__name__}: {exc}") from None

    async def check(self, url: str) -> tuple[httpx.URL, str]:
        """The parsed URL and the address to fetch it from, or ToolError saying why not."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ToolError(f"not a valid URL: {url!r} ({exc})") from None
        if parsed.scheme not in ("http", "https"):
            scheme = parsed.scheme or "none"
            raise ToolError(f"only http and https URLs are allowed, got {scheme!r}")
        if parsed.userinfo:
            raise ToolError("URLs with credentials (user:password@) are not allowed")
        host = _norm_host(parsed.host)
        if not host:
            raise ToolError(f"URL has no host: {url!r}")
        if not self._host_allowed(host):
            raise ToolError(f"host {host!r} is not allowed; allowed: {sorted(self.allow_hosts)}")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise ToolError(f"cannot resolve {host!r}: {exc}") from None
        if not addresses:
            raise ToolError(f"{host!r} resolves to no address")
        if not self.allow_private:
            for address in addresses:
                if not _is_public(address):
                    raise ToolError(
                        f"{host!r} resolves to {address}, a private or reserved address; "
                        f"not allowed (allow_private is off)"
                    )
        return parsed, addresses[0]

    def _host_allowed(self, host: str) -> bool:
        if host in self.allow_hosts:
            return True
        return any(
            pattern.startswith("*.") and host.endswith(pattern[1:]) for pattern in self.allow_hosts
        )

    async def _follow(self, url: str, method: str, body: str | None) -> dict[str, Any]:
        # trust_env off: a proxy from the environment would resolve names itself and undo the
        # address check; redirects are followed here, by hand, so every hop is checked.
        async with httpx.AsyncClient(
            transport=self._transport, trust_env=False, follow_redirects=False
        ) as client:
            for _ in range(self.max_redirects + 1):
                parsed, address = await self.check(url)
                response = await self._send(client, parsed, address, method, body)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        url = str(parsed.join(location))
                        if response.status_code == 303 or (
                            response.status_code in (301, 302) and method != "HEAD"
                        ):
                            method, body = "GET", None
                        continue
                    content, truncated = await _read_capped(response, self.max_bytes)
                finally:
                    await response.aclose()
                return {
                    "status": response.status_code,
                    "url": str(parsed),
                    "content_type": response.headers.get("content-type", ""),
                    "body": content.decode(response.encoding or "utf-8", errors="replace"),
                    "truncated": truncated,
                }
        raise ToolError(f"more than {self.max_redirects} redirects, starting at {url}")

    async def _send(
        self, client: httpx.AsyncClient, url: httpx.URL, address: str, method: str, body: str | None
    ) -> httpx.Response:
        # Connect to the checked address; the name goes in the Host header and in TLS SNI, so
        # certificates are still verified against the name.
        pinned = url.copy_with(host=str(ipaddress.ip_address(address)))
        host_header = url.netloc.decode("ascii").rsplit("@", 1)[-1]
        request = client.build_request(
            method,
            pinned,
            headers={**self.headers, "Host": host_header},
            content=body.encode() if body is not None else None,
            extensions={"sni_hostname": url.host},
        )
        return await client.send(request, stream=True)


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    parts: list[bytes] = []
    size = 0
    async for piece in response.aiter_bytes():
        parts.append(piece)
        size += len(piece)
        if size > limit:
            return b"".join(parts)[:limit], True
    return b"".join(parts), False


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _norm_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()
