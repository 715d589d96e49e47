"""Why the router decided what it did: the top candidates with their probabilities, and the training
examples nearest to the text, per candidate; a rich renderable for people and a dict for JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from swarm.models import Decision
from swarm.router.policy import Neighbour, RoutingPolicy

__all__ = ["Explanation"]

_STATUS_STYLE = {"routed": "green", "ambiguous": "yellow", "out_of_scope": "magenta"}


@dataclass(frozen=True)
class Explanation:
    text: str
    decision: Decision
    behind: dict[str, list[Neighbour]]
    """For each top candidate, its training examples nearest to the text."""
    nearest: list[Neighbour]
    """The nearest training examples whatever their label."""
    policy: RoutingPolicy
    oos_probability: float | None = None
    similarity: dict[str, float] = field(default_factory=dict)
    """Per agent, the cosine similarity of its nearest training example (empty when the policy
    uses no similarity rule)."""

    def _shown(self) -> list[tuple[str, float]]:
        """The candidates explained (the top k asked for), or all when there are no examples."""
        return [c for c in self.decision.candidates if c[0] in self.behind] or list(
            self.decision.candidates
        )

    def to_dict(self) -> dict[str, Any]:
        def rows(ns: list[Neighbour]) -> list[dict[str, Any]]:
            return [
                {"text": n.text, "label": n.label, "similarity": round(n.similarity, 4)} for n in ns
            ]

        return {
            "text": self.text,
            "decision": self.decision.to_dict(),
            "reason": self.decision.reason,
            "rule": self.decision.rule,
            "threshold": self.policy.threshold,
            "ambiguity_margin": self.policy.ambiguity_margin,
            "far_similarity": self.policy.far_similarity,
            "near_similarity": self.policy.near_similarity,
            "oos_probability": self.oos_probability,
            "candidates": [
                {
                    "agent": a,
                    "probability": p,
                    "nearest_similarity": self.similarity.get(a),
                    "examples": rows(self.behind.get(a, [])),
                }
                for a, p in self._shown()
            ],
            "nearest": rows(self.nearest),
        }

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        d = self.decision
        style = _STATUS_STYLE.get(d.status, "white")
        yield Text.assemble(("› ", "bold"), self.text)
        # The reason of an ambiguous decision already starts with the word.
        repeats = d.reason.startswith(d.status.replace("_", " "))
        yield Text.assemble(
            ("" if repeats else f"{d.status}: ", f"bold {style}"),
            (f"{d.reason}  ", f"bold {style}" if repeats else ""),
            (f"rule {d.rule}  " if d.rule else "", "bold"),
            (f"[router {d.version}, {d.latency_ms:.1f} ms]", "grey50"),
        )
        p = self.policy
        rules = f"threshold {p.threshold:.2f}, ambiguity margin {p.ambiguity_margin:.2f}"
        if p.far_similarity is not None:
            rules += f", far below similarity {p.far_similarity:.2f}"
        if p.near_similarity is not None:
            rules += f", runner-up near from {p.near_similarity:.2f}"
        if self.oos_probability is not None:
            rules += f", out-of-scope probability {self.oos_probability:.2f}"
        yield Text(rules, style="grey50")
        table = Table(show_edge=False, expand=False, pad_edge=False)
        table.add_column("agent", style="bold")
        table.add_column("prob", justify="right")
        table.add_column("nearest training examples (similarity)")
        for agent, prob in self._shown():
            examples = self.behind.get(agent, [])
            shown = "\n".join(f"{n.text}  ({n.similarity:.2f})" for n in examples) or "-"
            table.add_row(agent, f"{prob:.3f}", shown)
        yield table
        if self.nearest:
            nearest = Table(title="nearest examples, any label", show_edge=False, pad_edge=False)
            nearest.add_column("example")
            nearest.add_column("label")
            nearest.add_column("sim", justify="right")
            for n in self.nearest:
                nearest.add_row(n.text, n.label, f"{n.similarity:.2f}")
            yield nearest
