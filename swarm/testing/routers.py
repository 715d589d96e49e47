"""Deterministic routers for tests and examples: no model, no encoder, same answer every time.
`KeywordRouter` lives in the product (`swarm.router.keyword`, the CLI's `--router keyword`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from swarm.models import Decision
from swarm.router.keyword import KeywordRouter

__all__ = ["FakeRouter", "KeywordRouter", "centroid_router"]


class FakeRouter:
    """Routes by rules: a mapping keyword -> agent (first keyword found in the text wins), or a
    function text -> agent name or None. Anything unmatched goes to `default` (None: out of scope).
    """

    blocking = False  # cheap enough to call on the event loop
    version = "fake"

    def __init__(
        self,
        rules: Mapping[str, str] | Callable[[str], str | None] | None = None,
        *,
        default: str | None = None,
    ) -> None:
        self.rules = rules or {}
        self.default = default
        self.calls: list[list[str]] = []
        """Every batch it was asked to route, for tests of micro-batching."""

    def route(self, texts: list[str]) -> list[Decision]:
        self.calls.append(list(texts))
        return [self._decide(t) for t in texts]

    def _decide(self, text: str) -> Decision:
        if callable(self.rules):
            agent = self.rules(text)
        else:
            low = text.lower()
            agent = next((a for k, a in self.rules.items() if k.lower() in low), self.default)
        if agent is None:
            return Decision(None, 1.0, version=self.version, status="out_of_scope")
        return Decision(agent, 1.0, ((agent, 1.0),), version=self.version)


def centroid_router(agents: Iterable[Any], version: str, *, dim: int = 64) -> Any:
    """A saved-able `Router` made in milliseconds, without training or a model: each agent's score
    is the cosine of the text to the mean of its examples and description, hash-encoded
    (`HashEncoder(dim)`). It keeps its examples, so it explains decisions (neighbours) like a
    trained one. `agents`: an `AgentRegistry`, or anything with `name`, `description` and
    `examples`. For tests of what surrounds a router: versions, serving, explanations."""
    import numpy as np

    from swarm.router import ExampleBank, Router, RoutingPolicy
    from swarm.testing.encoders import HashEncoder

    registered = getattr(agents, "names", None)  # a registry's own order of its agents
    agents = list(agents)
    encoder = HashEncoder(dim)
    texts = [t for a in agents for t in [*a.examples, a.description]]
    labels = [a.name for a in agents for _ in [*a.examples, a.description]]
    names = list(registered) if registered is not None else [a.name for a in agents]
    vectors = encoder.encode(texts)  # (n, dim)
    centroids = np.stack(
        [vectors[[i for i, label in enumerate(labels) if label == n]].mean(0) for n in names]
    )  # (agents, dim)
    return Router(
        encoder,
        {"out.weight": (centroids.T * 20.0).astype(np.float32)},  # (dim, agents)
        names,
        RoutingPolicy(oos_label=None),
        version=version,
        examples=ExampleBank(texts, labels, vectors),
    )
