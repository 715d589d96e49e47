"""Test doubles for the LLM room's tests: a scripted OpenAI-shaped HTTP server on 127.0.0.1 (in the
test's event loop), a span sink, and a handle on the real llama.cpp server process.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from loopback import LoopbackServer

from swarm.context import Span
from swarm.models import Task

REPO = Path(__file__).resolve().parents[2]


# -- a scripted OpenAI-compatible server ---------------------------------------------------------


def completion(content: str = "hello", *, model: str = "m", **extra: Any) -> dict[str, Any]:
    """A chat.completion body as an OpenAI-compatible server sends it."""
    message = {"role": "assistant", "content": content, **extra.pop("message", {})}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": extra.pop("finish_reason", "stop")}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        **extra,
    }


def chunk(content: str | None = None, *, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Any] | None = None  # SSE: dicts (JSON), str (sent raw as data)
    done: bool = True  # end an SSE stream with `data: [DONE]`
    cut: bool = False  # stop an SSE stream mid-chunk and drop the connection
    delay: float = 0.0  # seconds before answering
    gap: float = 0.0  # seconds between SSE events
    drop: bool = False  # close the connection without any answer


class FakeOpenAI(LoopbackServer):
    """Serves scripted replies in order; once they run out, a default completion.

    `requests` keeps every request (method, path, headers, parsed JSON body); `in_flight` and
    `peak` count concurrent requests; `disconnects` counts clients that hung up mid-answer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting
    def json(self, body: Any, status: int = 200, **headers: str) -> FakeOpenAI:
        data = json.dumps(body).encode()
        self.replies.append(Reply(status, data, {"Content-Type": "application/json", **headers}))
        return self

    def raw(self, body: bytes, status: int = 200, content_type: str = "text/html") -> FakeOpenAI:
        self.replies.append(Reply(status, body, {"Content-Type": content_type}))
        return self

    def add(self, reply: Reply) -> FakeOpenAI:
        self.replies.append(reply)
        return self

    def sse(self, events: list[Any], **options: Any) -> FakeOpenAI:
        return self.add(Reply(events=events, **options))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "0"))
        raw = await reader.readexactly(size) if size else b""
        body = json.loads(raw) if raw else None
        self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        reply = self.replies.popleft() if self.replies else None
        if reply is None:
            reply = Reply(
                body=json.dumps(completion()).encode(), headers={"Content-Type": "application/json"}
            )
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.drop:
                return
            if reply.events is not None:
                await self._stream(writer, reply)
                return
            status_line = f"HTTP/1.1 {reply.status} X\r\n"
            hdrs = {"Content-Length": str(len(reply.body)), "Connection": "close", **reply.headers}
            writer.write(status_line.encode() + _headers(hdrs) + reply.body)
            await writer.drain()
        finally:
            self.in_flight -= 1

    async def _stream(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        hdrs = {
            "Content-Type": "text/event-stream",
            "Transfer-Encoding": "chunked",
            "Connection": "close",
            **reply.headers,
        }
        writer.write(f"HTTP/1.1 {reply.status} OK\r\n".encode() + _headers(hdrs))
        assert reply.events is not None
        for event in reply.events:
            data = event if isinstance(event, str) else json.dumps(event)
            payload = f"data: {data}\n\n".encode()
            writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            await writer.drain()
            if reply.gap:
                await asyncio.sleep(reply.gap)
        if reply.cut:
            # Half a chunk, then hang up: the HTTP body is incomplete.
            writer.write(b'40\r\ndata: {"id"')
            await writer.drain()
            return
        if reply.done:
            payload = b"data: [DONE]\n\n"
            writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        writer.write(b"0\r\n\r\n")
        await writer.drain()


def _headers(headers: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


class Sleeps:
    """An injected `sleep` that records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


# -- a context that keeps its spans --------------------------------------------------------------


class ListSink:
    def __init__(self) -> None:
        self.spans: list[Span] = []

    def record_span(self, span: Span) -> None:
        self.spans.append(span)

    def of(self, kind: str) -> list[Span]:
        return [s for s in self.spans if s.kind == kind]


class NoDelegation:
    async def delegate(self, parent: Task, child: Task) -> Any:
        raise AssertionError("not used")


# -- the real server ----------------------------------------------------------------------------

LLM_VENV = Path(os.environ.get("SWARM_LLM_VENV", REPO / ".llm-venv"))
REQUIRED = bool(os.environ.get("SWARM_REQUIRE_LLM_SERVER"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """One llama.cpp server; `stop()` and `start()` again on the same port."""

    python: Path
    model: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, *, wait: bool = True) -> None:
        cmd = [
            str(self.python),
            "-m",
            "llama_cpp.server",
            "--model",
            self.model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            "1",
            "--n_ctx",
            "2048",
            "--verbose",
            "False",
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 180.0) -> None:
        assert self.proc is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama.cpp server exited with {self.proc.returncode}:\n{tail}")
            try:
                if httpx.get(self.url + "/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"llama.cpp server on port {self.port} not ready after {timeout:g}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def server_python() -> tuple[Path, str]:
    """The server venv's python and the model path, or skip/fail saying how to get them."""
    python = LLM_VENV / "bin" / "python"
    hint = "build it with `scripts/llm_server.sh build`"
    if not python.exists():
        message = f"no llama.cpp server venv at {LLM_VENV}; {hint}"
        if REQUIRED:
            pytest.fail(f"SWARM_REQUIRE_LLM_SERVER is set but {message}")
        pytest.skip(message)
    found = subprocess.run(
        [str(REPO / "scripts" / "llm_server.sh"), "model"],
        capture_output=True,
        text=True,
        env={**os.environ, "SWARM_LLM_VENV": str(LLM_VENV)},
    )
    if found.returncode != 0:
        message = f"the server venv has no model ({found.stderr.strip()}); {hint}"
        if REQUIRED:
            pytest.fail(f"SWARM_REQUIRE_LLM_SERVER is set but {message}")
        pytest.skip(message)
    return python, found.stdout.strip()
