"""A router without a model: each agent scores by the words its examples share with the text. The
CLI's `--router keyword`, and a stand-in in tests (`swarm.testing` re-exports it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from swarm.models import Decision

__all__ = ["KeywordRouter"]

_WORD = re.compile(r"[a-z0-9']+")


class Describable(Protocol):
    """What the keyword router reads of an agent."""

    name: str
    description: str
    examples: Sequence[str]


class KeywordRouter:
    """Scores each agent by the words its examples and description share with the text.

    A stand-in for the learned router where loading an encoder would be too slow (unit tests, the
    `--router keyword` option of the CLI). No shared word: out of scope; a tie: ambiguous.
    `agents`: anything with `name`, `description` and `examples` (an `AgentRegistry` will do).
    """

    blocking = False
    version = "keyword"

    def __init__(self, agents: Iterable[Describable]) -> None:
        self.vocab: dict[str, set[str]] = {}
        for a in agents:
            words: set[str] = set()
            for line in [*a.examples, a.description, a.name.replace("_", " ")]:
                words |= _words(line)
            self.vocab[a.name] = words
        self.labels = sorted(self.vocab)

    def route(self, texts: list[str]) -> list[Decision]:
        return [self._decide(t) for t in texts]

    def _decide(self, text: str) -> Decision:
        start = time.perf_counter()
        words = _words(text)
        scores = sorted(
            ((len(words & vocab), name) for name, vocab in self.vocab.items()),
            key=lambda s: (-s[0], s[1]),
        )
        total = sum(s for s, _ in scores) or 1
        candidates = tuple((name, s / total) for s, name in scores[:3] if s > 0)
        ms = (time.perf_counter() - start) * 1000
        if not candidates:
            return Decision(None, 0.0, version=self.version, latency_ms=ms, status="out_of_scope")
        best, p = candidates[0]
        if len(scores) > 1 and scores[0][0] == scores[1][0]:
            return Decision(best, p, candidates, self.version, ms, status="ambiguous")
        return Decision(best, p, candidates, self.version, ms)


_STOP = frozenset("a an the i my me to is it of for and or in on can you do how what".split())


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}
