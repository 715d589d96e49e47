"""Numbers a test report shows: routing accuracy per agent, the confusion between agents, latency
percentiles and the router's calibration (confidence against accuracy, in bins).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from swarm.scenarios.runner import StepResult

__all__ = ["MIN_CALIBRATION_STEPS", "AgentAccuracy", "Metrics", "percentile"]

MIN_CALIBRATION_STEPS = 50
"""Fewer scored steps than this and an ECE is noise, not a measurement: with 10 bins, most hold a
handful of steps (or one), and one step more or less moves the figure by several points."""


@dataclass(frozen=True, slots=True)
class AgentAccuracy:
    agent: str
    steps: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.steps if self.steps else 0.0


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


@dataclass(slots=True)
class Metrics:
    labelled: int
    correct: int
    per_agent: list[AgentAccuracy]
    confusion: dict[tuple[str, str], int]
    """(expected, actual) -> steps."""
    labels: list[str]
    latencies_ms: list[float]
    calibration: list[CalibrationBin]

    @classmethod
    def of(cls, steps: Sequence[StepResult], bins: int = 10) -> Metrics:
        labelled = [s for s in steps if s.expected is not None]
        confusion: Counter[tuple[str, str]] = Counter()
        per: dict[str, list[int]] = {}
        for s in labelled:
            assert s.expected is not None
            confusion[(s.expected, s.actual)] += 1
            counts = per.setdefault(s.expected, [0, 0])
            counts[0] += 1
            counts[1] += s.expected == s.actual
        labels = sorted({x for pair in confusion for x in pair})
        return cls(
            labelled=len(labelled),
            correct=sum(s.expected == s.actual for s in labelled),
            per_agent=[AgentAccuracy(a, n, c) for a, (n, c) in sorted(per.items())],
            confusion=dict(confusion),
            labels=labels,
            latencies_ms=[s.latency_ms for s in steps],
            calibration=_calibration(labelled, bins),
        )

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies_ms, 95)

    @property
    def calibration_steps(self) -> int:
        """Steps the calibration is measured on (labelled, and routed with a confidence)."""
        return sum(b.count for b in self.calibration)

    @property
    def calibration_measured(self) -> bool:
        """Enough steps (`MIN_CALIBRATION_STEPS`) for the ECE to mean something."""
        return self.calibration_steps >= MIN_CALIBRATION_STEPS

    @property
    def ece(self) -> float:
        """Expected calibration error: the bins' |confidence - accuracy|, weighted by count."""
        total = sum(b.count for b in self.calibration)
        if not total:
            return 0.0
        return sum(b.count * abs(b.confidence - b.accuracy) for b in self.calibration) / total


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), 0.0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _calibration(steps: Sequence[StepResult], bins: int) -> list[CalibrationBin]:
    out = []
    scored = [s for s in steps if s.confidence is not None]
    for i in range(bins):
        low, high = i / bins, (i + 1) / bins
        inside = [
            s
            for s in scored
            if s.confidence is not None
            and (low <= s.confidence < high or (i == bins - 1 and s.confidence == 1.0))
        ]
        if inside:
            conf = sum(s.confidence or 0.0 for s in inside) / len(inside)
            acc = sum(s.expected == s.actual for s in inside) / len(inside)
            out.append(CalibrationBin(low, high, len(inside), conf, acc))
    return out
