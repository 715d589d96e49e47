"""A small real HTTP server on 127.0.0.1 for the HTTP tool's tests: pages, redirects, a big body,
a slow answer; it records every request it gets, so a test can show a refused call never left."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Site:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

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
        hdrs = {"Content-Length": str(len(content)), "Content-Type": "text/plain; charset=utf-8",
                "Connection": "close", **extra}
        writer.write(f"HTTP/1.1 {status} X\r\n".encode()
                     + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()).encode() + b"\r\n"
                     + content)
        await writer.drain()
