"""A small real HTTP server on 127.0.0.1 for the HTTP tool's tests: pages, redirects, a big body,
a slow answer, compressed bombs, broken headers; it records every request it gets, so a test can
show a refused call never left."""

from __future__ import annotations

import asyncio
import functools
import zlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackServer


class Site(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        pairs = (h.partition(":") for h in head[1:] if h)
        headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append({"method": method, "target": target, "headers": headers, "body": body})
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        status, extra, content = 200, {}, b""
        if parts.path == "/ok":
            content = b"hello from the test site"
        elif parts.path == "/host":
            content = headers.get("host", "").encode()
        elif parts.path == "/big":
            content = b"x" * 1_000_000
        elif parts.path == "/redirect":
            status, extra = int(query.get("status", "302")), {"Location": query["to"]}
        elif parts.path == "/loop":
            status, extra = 302, {"Location": "/loop"}
        elif parts.path == "/slow":
            await asyncio.sleep(float(query.get("s", "5")))
            content = b"late"
        elif parts.path == "/echo":
            content = method.encode() + b" " + body
        elif parts.path == "/bomb":
            # `enc` names the Content-Encoding sent; `size` the MiB of zeros it decodes to.
            encoding = query.get("enc", "gzip")
            content = bomb(encoding, int(query.get("size", "1024")))
            extra = {"Content-Encoding": query.get("header", encoding)}
        elif parts.path == "/compressed":
            encoding = query.get("enc", "gzip")
            content = compress(encoding, b"small and fine " * 10)
            extra = {"Content-Encoding": query.get("header", encoding)}
        elif parts.path == "/charset":
            content = "caf\u00e9".encode()
            extra = {"Content-Type": f"text/plain; charset={query['name']}"}
        elif parts.path == "/bad-location":
            status, extra = 302, {"Location": query.get("to", "http://[::1/x")}
        else:
            status, content = 404, b"not found"
        hdrs = {
            "Content-Length": str(len(content)),
            "Content-Type": "text/plain; charset=utf-8",
            "Connection": "close",
            **extra,
        }
        writer.write(
            f"HTTP/1.1 {status} X\r\n".encode()
            + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()).encode()
            + b"\r\n"
            + content
        )
        await writer.drain()


@functools.cache
def bomb(encoding: str, mib: int) -> bytes:
    """`mib` MiB of zeros, compressed by `encoding` (comma-separated: applied left to right),
    built a MiB at a time so the test itself never holds the decoded size."""
    zero = bytes(1 << 20)
    first, *rest = [e.strip() for e in encoding.split(",")]
    if first == "zstd":
        import zstandard

        out = zstandard.ZstdCompressor(level=3).compressobj()
        data = b"".join(out.compress(zero) for _ in range(mib)) + out.flush()
    elif first == "br":
        data = b"\x1b\xff\xff\x7f"  # not a real stream: brotli is refused before decoding
    else:
        wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}[first]
        packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
        data = b"".join(packer.compress(zero) for _ in range(mib)) + packer.flush()
    for encoding in rest:
        data = compress(encoding, data)
    return data


def compress(encoding: str, data: bytes) -> bytes:
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw-deflate": -15}[encoding]
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return packer.compress(data) + packer.flush()
