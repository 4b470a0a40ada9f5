"""Whole cycles: how long an amount of work holds a resource that moves ``per_cycle`` units per cycle.

A cycle-level simulator counts whole cycles: a link, port or lane array that moves ``per_cycle`` units a
cycle is busy for the last, partly used cycle too, so ``amount`` units take ``ceil(amount / per_cycle)``
cycles.  Integer amounts at integer rates are divided exactly.  Other rates come from configs as decimals (a
bandwidth in GB/s over a clock in GHz), whose binary quotients land a hair above or below the integer they
mean (``1.2 / 0.4 == 2.9999999999999996``, ``0.3 * 10 / 0.3`` may be ``10.000000000000002``), so a quotient
within a relative 1e-12 of an integer counts as that integer rather than taking one more cycle (float
quotients are good to about 1e-15; only an amount above 1e12 units could be misjudged by this, far beyond
one transfer or one layer's lane operations).

Used by the timing model (DRAM transfers, edge traffic of a tile, ring transfers, the vector unit) and by the
schedule search's lower bounds, which must round the same way to stay lower bounds.
"""

from __future__ import annotations

import math

__all__ = ["whole_cycles"]

_INTEGER_TOLERANCE = 1e-12  # relative


def whole_cycles(amount: float, per_cycle: float) -> int:
    """Cycles to move ``amount`` at ``per_cycle`` per cycle, rounded up to whole cycles (0 for no work or an
    infinite rate)."""
    if amount <= 0 or math.isinf(per_cycle):
        return 0
    if float(amount).is_integer() and float(per_cycle).is_integer():
        return -(-int(amount) // int(per_cycle))
    quotient = amount / per_cycle
    nearest = round(quotient)
    if nearest and abs(quotient - nearest) <= _INTEGER_TOLERANCE * max(1.0, quotient):
        return int(nearest)  # never 0: any work takes at least a cycle
    return math.ceil(quotient)
