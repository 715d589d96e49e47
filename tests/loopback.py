"""A base for the tests' real HTTP servers on 127.0.0.1: start, connection bookkeeping, and a
close that ends every open connection; subclasses write `_serve(reader, writer)`."""

from __future__ import annotations

import asyncio


class LoopbackServer:
    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.disconnects = 0
        """Clients that hung up mid-answer."""

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.disconnects += 1
        except asyncio.CancelledError:
            # Stopped by close(); ending cancelled would make asyncio's stream callback log it.
            pass
        finally:
            self._conns.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass
