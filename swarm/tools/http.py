"""The built-in HTTP tool: reaches only allow-listed hosts, never private addresses unless allowed,
checks every redirect hop again, connects to the very address it checked (no DNS rebinding), and
caps the body after decoding (a compressed bomb stops at the cap).
"""

from __future__ import annotations

import asyncio
import codecs
import io
import ipaddress
import socket
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx

from swarm.errors import ConfigError, ToolError
from swarm.otel import trace_headers
from swarm.tools.addresses import classify
from swarm.tools.base import Tool

try:  # zstd is decoded only where the zstandard package is installed (httpx's own extra)
    import zstandard
except ImportError:  # pragma: no cover - depends on the environment
    zstandard = None  # type: ignore[assignment]

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
    - `timeout` bounds the whole call, redirects included; `max_bytes` caps the body kept,
      after decoding: a compressed body is decoded only up to the cap, and an encoding the tool
      cannot decode with a bound (brotli, or any unknown one) is refused, never decoded whole.
    - Every failure (a bad `Location`, an unknown charset, a refused encoding, a network error)
      is a `ToolError`, which an agent shows to the model.
    """

    errors_are_tool_errors = True


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
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
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
        if not 0 < port < 65536:
            raise ToolError(f"port {port} of {url!r} is out of range (1-65535)")
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise ToolError(f"cannot resolve {host!r}: {exc}") from None
        if not addresses:
            raise ToolError(f"{host!r} resolves to no address")
        if not self.allow_private:
            for address in addresses:
                why = classify(address)
                if why is not None:
                    raise ToolError(
                        f"{host!r} resolves to {address}, a private or reserved address "
                        f"({why}); not allowed (allow_private is off)"
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
                        url = _redirect_target(parsed, location)
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
                    "body": _text(content, response.charset_encoding),
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
            # Only encodings this tool decodes with a bound (see _read_capped).
            headers={
                **self.headers,
                **trace_headers(),  # traceparent only while an exported task runs (swarm.otel)
                "Host": host_header,
                "Accept-Encoding": _ACCEPT_ENCODING,
            },
            content=body.encode() if body is not None else None,
            extensions={"sni_hostname": url.host},
        )
        return await client.send(request, stream=True)


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """The body, decoded, cut at `limit` bytes, and whether it was cut.

    The raw (still encoded) bytes are read up to the limit, then decoded by decoders that stop
    at `limit + 1` bytes of output: memory stays near twice the limit whatever the ratio (a
    32 KB zstd body can decode to 1 GiB). Source: zlib's `max_length` and zstandard's
    `stream_reader`, in place of httpx's decoders, which decode each piece in full."""
    encodings = [
        e.strip().lower()
        for e in response.headers.get("content-encoding", "").split(",")
        if e.strip() and e.strip().lower() != "identity"
    ]
    for encoding in encodings:
        if encoding not in _DECODERS:
            raise ToolError(
                f"the server sent a body in {encoding!r} encoding, which this tool cannot decode "
                f"within its size cap; refused (it accepts {_ACCEPT_ENCODING})"
            )
    # Compressed data rarely grows, but a little slack lets a body near the cap decode whole.
    raw_limit = limit + 1 + (1024 if encodings else 0)
    parts: list[bytes] = []
    size = 0
    raw_cut = False
    try:
        async for piece in response.aiter_raw():
            parts.append(piece)
            size += len(piece)
            if size > raw_limit:
                raw_cut = True
                break
    except httpx.StreamConsumed:
        # A response made in memory (a test transport) arrives read and decoded already.
        content = response.content
        return content[:limit], len(content) > limit
    data = b"".join(parts)[:raw_limit]
    for encoding in reversed(encodings):  # the last encoding applied is undone first
        try:
            data = _DECODERS[encoding](data, limit + 1)
        except (zlib.error, ValueError, OSError) as exc:
            raise ToolError(
                f"the server sent a {encoding} body that does not decode: {exc}"
            ) from None
    return data[:limit], raw_cut or len(data) > limit


def _gunzip(data: bytes, limit: int) -> bytes:
    return _inflate(data, limit, 16 + zlib.MAX_WBITS)


def _deflate(data: bytes, limit: int) -> bytes:
    # HTTP's "deflate" is zlib-wrapped (RFC 9110), but some servers send it raw; httpx tries both.
    try:
        return _inflate(data, limit, zlib.MAX_WBITS)
    except zlib.error:
        return _inflate(data, limit, -zlib.MAX_WBITS)


def _inflate(data: bytes, limit: int, wbits: int) -> bytes:
    out: list[bytes] = []
    size = 0
    decoder = zlib.decompressobj(wbits)
    while data and size < limit:
        piece = decoder.decompress(data, limit - size)
        out.append(piece)
        size += len(piece)
        data = decoder.unconsumed_tail
        if decoder.eof:
            # Concatenated gzip members are one body (RFC 1952); anything else after is junk.
            rest = decoder.unused_data
            if not rest or wbits != 16 + zlib.MAX_WBITS:
                break
            decoder, data = zlib.decompressobj(wbits), rest
    return b"".join(out)


def _unzstd(data: bytes, limit: int) -> bytes:
    assert zstandard is not None
    out: list[bytes] = []
    size = 0
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    try:
        while size < limit:
            piece = reader.read(min(65536, limit - size))
            if not piece:
                break
            out.append(piece)
            size += len(piece)
    except zstandard.ZstdError as exc:
        if not out:  # a body cut at the cap ends mid-frame: keep what decoded
            raise ValueError(str(exc)) from None
    return b"".join(out)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _deflate,
}
if zstandard is not None:
    _DECODERS["zstd"] = _unzstd
_ACCEPT_ENCODING = ", ".join(e for e in ("gzip", "deflate", "zstd") if e in _DECODERS)


def _redirect_target(current: httpx.URL, location: str) -> str:
    try:
        return str(current.join(location))
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ToolError(
            f"the server redirected to {location[:200]!r}, which is not a valid URL ({exc})"
        ) from None


def _text(content: bytes, charset: str | None) -> str:
    """`content` decoded by the response's charset; UTF-8 when it names none or one Python does
    not know (a server's typo must not fail the call)."""
    try:
        codec = codecs.lookup(charset) if charset else None
    except LookupError:
        codec = None
    return content.decode(codec.name if codec else "utf-8", errors="replace")


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _norm_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()
