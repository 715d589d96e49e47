"""Several endpoints behind one client: each request goes to the endpoint that serves its model
(a local server for the small model, a hosted API for the large one), else to the default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from swarm.errors import ConfigError
from swarm.llm.backend import Backend
from swarm.llm.config import EndpointConfig
from swarm.llm.http import HTTPBackend
from swarm.llm.types import ChatChunk, ChatRequest, ChatResponse

__all__ = ["RoutedBackend"]


class RoutedBackend(Backend):
    """Sends a request to `routes[request.model]`, or to `default` for models not listed."""

    name = "routed"

    def __init__(self, routes: Mapping[str, Backend], *, default: Backend) -> None:
        self.routes = dict(routes)
        self.default = default
        self.default_model = default.default_model
        self._all = list({id(b): b for b in [default, *self.routes.values()]}.values())

    @classmethod
    def from_configs(cls, configs: Sequence[EndpointConfig | Mapping[str, Any]]) -> RoutedBackend:
        """One HTTP backend per endpoint; each serves its `model` and its `models`. The first
        endpoint is the default. A model claimed by two endpoints is a ConfigError."""
        if not configs:
            raise ConfigError("no LLM endpoints configured")
        routes: dict[str, Backend] = {}
        backends: list[HTTPBackend] = []
        for i, item in enumerate(configs):
            config = (
                item
                if isinstance(item, EndpointConfig)
                else EndpointConfig.from_mapping(item, source=f"endpoints[{i}]")
            )
            backend = HTTPBackend(config)
            backends.append(backend)
            for model in dict.fromkeys([config.model, *config.models]):
                if model in routes:
                    raise ConfigError(
                        f"model {model!r} is served by two endpoints: "
                        f"{routes[model].name} and {backend.name} (endpoints[{i}])"
                    )
                routes[model] = backend
        return cls(routes, default=backends[0])

    @property
    def secrets(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(s for b in self._all for s in b.secrets)

    def pick(self, request: ChatRequest) -> Backend:
        return self.routes.get(request.model, self.default)

    def endpoint(self, request: ChatRequest) -> str:
        return self.pick(request).endpoint(request)

    async def complete(
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> ChatResponse:
        return await self.pick(request).complete(request, attempt_timeout=attempt_timeout)

    def stream(  # type: ignore[override]
        self, request: ChatRequest, *, attempt_timeout: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        return self.pick(request).stream(request, attempt_timeout=attempt_timeout)

    async def aclose(self) -> None:
        for backend in self._all:
            await backend.aclose()
