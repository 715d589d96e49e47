"""`/retrain`: learn people's feedback on top of the serving router, through the one learning
pipeline and its one gate (`swarm.router.learn`), as `swarm router train --feedback` does.

The gate compares the new version with the serving one on held-out texts the new one never
trained on: the routing expectations of the scenario suites under `scenarios/` (or those given).
The corrections themselves are training data, never evidence; with too few held-out texts the new
version is saved beside, not serving, and the reason says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from swarm.models import OUT_OF_SCOPE
from swarm.router.learn import HeldOut, LearnCancelled, LearnOutcome

__all__ = ["DEFAULT_SUITES", "RetrainCancelled", "retrain", "suite_held_out", "suite_pairs"]

DEFAULT_SUITES = ("scenarios",)
RetrainCancelled = LearnCancelled
"""Ctrl-C during `/retrain`: learning stopped, nothing saved."""

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def suite_pairs(
    paths: Sequence[str], labels: Iterable[str], oos_label: str, *, explicit: bool
) -> list[tuple[str, str]]:
    """(text, label) from scenario steps the router decides and whose routing is expected, for
    the `labels` a router knows (the default scenarios/ folder may hold other swarms' suites).

    Raises the first suite's error when the paths were given (`explicit`); a default folder that
    is missing or broken gives nothing.
    """
    from swarm.scenarios.format import NONE_LABEL
    from swarm.scenarios.loader import load_suites

    if not explicit:  # default folders that are not there hold nothing
        paths = [p for p in paths if Path(p).is_dir()]
        if not paths:
            return []
    loaded = load_suites(list(paths))
    if loaded.errors and explicit:
        raise loaded.errors[0]
    known = set(labels)
    pairs = []
    for suite in loaded.suites:
        for scenario in suite.expanded():
            for step in scenario.steps:
                label = step.expect.label
                if step.agent is not None or label is None:
                    continue
                label = oos_label if label == NONE_LABEL else label
                if label in known:
                    pairs.append((step.user, label))
    return pairs


def suite_held_out(paths: Sequence[str], router: Any, *, explicit: bool = False) -> HeldOut:
    """The gate's held-out set from scenario suites, for `router`'s labels."""
    oos = router.policy.oos_label or OUT_OF_SCOPE
    pairs = suite_pairs(paths, router.head_labels, oos, explicit=explicit)
    return HeldOut.of(f"suites {', '.join(paths)}", pairs)


def retrain(
    old: Any,
    rows: Iterable[Mapping[str, Any]],
    models_dir: str | Path,
    *,
    held_out: HeldOut | None = None,
    suites: Sequence[str] = DEFAULT_SUITES,
    tolerance: float = 0.01,
    cancelled: threading.Event | None = None,
    bandit: Any = None,
) -> LearnOutcome:
    """Learn the feedback `rows` (as `TraceStore.feedback()` returns them) on top of `old`, gate
    it on `held_out` (default: the routing expectations in `suites`) and save it; CURRENT moves
    only when the gate promotes it. Blocking: call it from a thread; setting `cancelled` stops it
    before anything is saved (RetrainCancelled). Raises DataError when there is nothing to learn.
    """
    from swarm.router.learn import learn

    if held_out is None:
        held_out = suite_held_out(suites, old)
    return learn(
        models_dir,
        base=old,
        feedback_rows=rows,
        held_out=held_out,
        tolerance=tolerance,
        cancelled=cancelled,
        bandit=bandit,
    )
