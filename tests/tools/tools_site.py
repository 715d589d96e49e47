"""A small real HTTP server on 127.0.0.1 for the HTTP tool's tests: pages, redirects, a big body,
a slow answer; it records every request it gets, so a test can show a refused call never left."""

from __future__ import annotations

import asyncio
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
