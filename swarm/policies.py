"""Small policy objects the scheduler consults: how long to wait before a retry."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RetryPolicy"]


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * factor**n)).

    Full jitter spreads retries of many failing tasks apart (AWS architecture blog, "Exponential
    Backoff and Jitter"); `rng` is injectable so tests get the same delays every time.
    """

    base: float = 0.2
    factor: float = 2.0
    cap: float = 30.0
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.cap, self.base * self.factor ** (attempt - 1))
        return self.rng.uniform(0, ceiling) if self.jitter else ceiling
