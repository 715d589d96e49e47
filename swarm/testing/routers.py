"""Deterministic routers for tests and examples: no model, no encoder, same answer every time.
`KeywordRouter` lives in the product (`swarm.router.keyword`, the CLI's `--router keyword`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from swarm.models import Decision
from swarm.router.keyword import KeywordRouter

__all__ = ["FakeRouter", "KeywordRouter"]


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
