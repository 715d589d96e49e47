"""What stands between the network and the swarm: the bearer token, the refusal to listen beyond
loopback without one, and the request-size limit.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swarm.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_BODY",
    "TOKEN_ENV",
    "BearerToken",
    "BodyLimit",
    "LoopbackHosts",
    "check_bind",
    "is_loopback",
    "token_from_env",
]

TOKEN_ENV = "SWARM_API_TOKEN"
DEFAULT_MAX_BODY = 1 << 20
"""Bytes a request body may hold (1 MiB): larger ones get 413 before the app reads them."""


_BEARER = HTTPBearer(
    auto_error=False, description=f"The token in ${TOKEN_ENV} (only when it is set)."
)
"""Declared as a dependency so that /openapi.json documents the scheme."""


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback one (127.0.0.0/8, ::1, localhost).

    "0.0.0.0", "::" and "" (every interface) are not; a name is resolved, and is loopback only
    when all its addresses are."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
    )


def check_bind(host: str, token: str | None) -> None:
    """Raise `ConfigError` when asked to listen beyond loopback without a token: anyone on the
    network could then submit tasks, read traces and approve refunds."""
    if token or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host!r} without a token: anyone who can reach it could run "
        f"tasks and approve actions. Set {TOKEN_ENV} (clients send `Authorization: Bearer "
        "TOKEN`), or listen on 127.0.0.1"
    )


class BearerToken:
    """A FastAPI dependency: the request must carry `Authorization: Bearer <token>` (compared in
    constant time); else 401 with a `WWW-Authenticate` header (RFC 6750). With `query=True` the
    token may come as `?access_token=` instead, for browsers' `EventSource`, which cannot set
    headers. No token configured: every request passes."""

    def __init__(self, token: str | None, *, query: bool = False) -> None:
        self.token = token
        self.query = query

    async def __call__(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_BEARER),  # noqa: B008
    ) -> None:
        if not self.token:
            return
        given = credentials.credentials if credentials is not None else None
        if given is None and self.query:
            given = request.query_params.get("access_token")
        if given is None:
            raise HTTPException(
                401,
                "this server needs a bearer token: send `Authorization: Bearer TOKEN`",
                headers={"WWW-Authenticate": 'Bearer realm="swarm"'},
            )
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            raise HTTPException(
                401,
                "wrong bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="swarm", error="invalid_token"'},
            )


def token_from_env() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


class BodyLimit:
    """ASGI middleware: a request body over `max_body` bytes gets 413, whether its
    Content-Length says so at once or a chunked body grows past it (then it is read, up to the
    limit, before the app sees it)."""

    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _error(send, 400, "Content-Length is not a number")
                return
            if declared > self.max_body:
                await _drain(receive, {"more_body": True}, min(declared, _DRAIN * self.max_body))
                await _too_large(send, self.max_body)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read it here, so nothing oversized reaches the app.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _drain(receive, message, (_DRAIN - 1) * self.max_body)
                await _too_large(send, self.max_body)
                return
            if not message.get("more_body", False):
                break
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class LoopbackHosts:
    """ASGI middleware for a server without a token: a request whose Host header is not a
    loopback name (localhost, *.localhost, 127.x.x.x, [::1]) gets 421. A web page elsewhere
    could otherwise point its own domain at 127.0.0.1 (DNS rebinding) and use the API from the
    person's browser as if it were same-origin. Names are not resolved: that is the attack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if not _loopback_name(host):
                await _error(
                    send,
                    421,
                    f"this server answers to loopback host names only (not {host!r}); "
                    f"set {TOKEN_ENV} to serve other names",
                )
                return
        await self.app(scope, receive, send)


def _loopback_name(host: str) -> bool:
    name = host.lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1 : name.find("]")] if "]" in name else ""
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


_DRAIN = 4
"""A refused body is read (and dropped) up to this many times the limit, so that the client reads
the 413: a server that closes a socket with unread data resets the connection. Beyond it, the
connection closes unread."""


async def _drain(receive: Receive, message: Message, budget: int) -> None:
    """Read and drop up to `budget` more bytes of a refused body (see `_DRAIN`)."""
    while message.get("more_body", False) and budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))


async def _too_large(send: Send, limit: int) -> None:
    await _error(send, 413, f"request body over {limit} bytes")


async def _error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
