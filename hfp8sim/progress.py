"""Time left for long work, from the share of the work done so far (not from the number of steps: the
layers of a network differ in size by orders of magnitude, so the work is weighted, e.g. by MACs)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Eta:
    """``advance(work)`` after each piece; ``status()`` says the elapsed time and a linear estimate of the time
    left (elapsed x work left / work done)."""

    def __init__(self, total_work: float, clock: Callable[[], float] = time.perf_counter):
        self.total = float(total_work)
        self.done = 0.0
        self.clock = clock
        self.start = clock()

    def advance(self, work: float) -> str:
        self.done += work
        return self.status()

    def status(self) -> str:
        elapsed = self.clock() - self.start
        if self.done <= 0 or self.total <= 0:
            return f"{elapsed:.0f} s elapsed"
        left = max(0.0, elapsed * (self.total - self.done) / self.done)
        return f"{min(self.done / self.total, 1.0):.0%} of the work in {elapsed:.0f} s, about {_duration(left)} left"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
