"""Steady-state extrapolation of a layer's SimPy run: once the pipeline's whole state repeats, skip whole periods.

A layer's tiles come in a regular order (the mapper's loop nest), so after a few tiles the loader, the DMA
engines, the DRAM bus, the array and the stores settle into a cycle: every P tiles the state is the same,
D cycles later.  From then on the full simulation would replay the same events, shifted by P tiles and D
cycles, for as long as the coming tiles repeat the same P classes; so those periods are skipped: time
advances by m x D, every counter by m x its growth over one period, and the run continues with the rest.

The state is compared at *quiescent* instants (every event of the current cycle processed, so every process
is suspended and every event still in SimPy's queue is a timeout in the future), the first after the array
starts a tile.  Its signature holds everything the future depends on, with tile indices taken relative to
the loader's tile and times relative to now:

* the pending timeouts in SimPy's processing order (time, priority, then event id: so ties between events
  of one cycle are resolved in the same order), each with the process it wakes and that process's phase;
* the FIFO queues of the DMA engines and of the DRAM bus, and how many hold each;
* the free input and output buffer slots, the tiles waiting in the ready queue, and what the loader and the
  array are waiting for.

Processes refer to tiles by *logical* index (the engine's ``TileCursor``: real index = logical + offset), so
a jump only adds m x P to the offset; no process holds a tile object across a wait.  A jump over m periods
is taken only when the tiles from the oldest one still in flight at the first occurrence up to the loader's
tile after the jump repeat with period P (same dims, first/last reduction tile, load and store bytes), and
when every floating-point counter stays exact (all its increments and values multiples of one power of two
below 2^53, so the full run's sums are exact and equal m x the period's growth).  Otherwise nothing is
skipped and the run is the full simulation.

SimPy's queue and clock are private (``Environment._queue``, ``_now``); the engine uses this module only when
they exist as SimPy 4 lays them out, else it simulates fully.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import operator
from typing import Any

import simpy

HISTORY_LIMIT = 8192
"""Signatures remembered (one per tile started, kept since the last time the memory was full)."""


@dataclasses.dataclass
class SteadyStats:
    """How much extrapolation did (for tests and benchmarks)."""

    jumps: int = 0
    tiles_skipped: int = 0
    cycles_skipped: int = 0


def supported(env: simpy.Environment) -> bool:
    """SimPy lays out its clock and queue as this module expects (SimPy 4)."""
    queue = getattr(env, "_queue", None)
    return isinstance(queue, list) and isinstance(getattr(env, "_now", None), (int, float))


@dataclasses.dataclass
class _Snapshot:
    now: int
    ref: int  # real index of the loader's tile
    low: int  # real index of the oldest tile any process still refers to
    counters: tuple
    finished: int  # tiles in result.tile_finish_order
    moved: float  # the DRAM channel's bytes_moved


class _TileKeys:
    """Each tile's class as an int (equal ints: the processes do the same with both tiles)."""

    def __init__(self, tiles, last_k: int):
        self.tiles = tiles
        self.last_k = last_k
        self.ids: list[int] = []
        self.classes: dict[tuple, int] = {}
        self.mismatch: dict[int, tuple[int, int]] = {}  # period -> (scan start, first index breaking it)

    _fields = operator.attrgetter("m", "n", "k", "first_k", "load_a_bytes", "load_b_bytes", "store_bytes")

    def _extend(self, upto: int) -> None:
        """Classify tiles up to ``upto``: dims, first and last reduction tile, load and store bytes."""
        classes, ids, last_k = self.classes, self.ids, self.last_k
        for m, n, k, first, load_a, load_b, store in map(self._fields, self.tiles[len(ids):upto]):
            key = (m[1] - m[0], n[1] - n[0], k[1] - k[0], first, k[1] == last_k, load_a, load_b, store)
            ids.append(classes.setdefault(key, len(classes)))

    def representatives(self, low: int, high: int) -> list:
        """One tile of each class among tiles[low:high] (already classified)."""
        first = {}
        for index in range(low, high):
            first.setdefault(self.ids[index], index)
        return [self.tiles[index] for index in first.values()]

    def periodic_until(self, low: int, period: int) -> int:
        """The first index j >= low + period whose tile differs from tile j - period (len(tiles) if none)."""
        start, found = self.mismatch.get(period, (None, None))
        if start is not None and start <= low and found >= low + period:
            return found
        j, n, chunk = low + period, len(self.tiles), 1024
        while j < n:
            self._extend(min(n, j + chunk))
            ids = self.ids
            for i in range(j, min(n, j + chunk)):
                if ids[i] != ids[i - period]:
                    self.mismatch[period] = (low, i)
                    return i
            j, chunk = j + chunk, chunk * 2
        self.mismatch[period] = (low, n)
        return n


def _binary_places(value: float) -> int:
    """The power of two 2^-e that ``value`` is a multiple of (e >= 0)."""
    return max(0, int(float(value).as_integer_ratio()[1]).bit_length() - 1)


class SteadyState:
    """Watches one core's layer run (:func:`hfp8sim.timing.engine.simulate_layer`) and skips repeated periods.

    ``pipeline``: the engine's ``CorePipeline`` (the core's SimPy processes and stores, its logical tile
    indices and the array's ``armed`` flag);
    ``increments``: tile -> every amount the processes add to a float counter for it (for exactness);
    ``deadline``: the give-up timeout, which stays where it is."""

    def __init__(self, env: simpy.Environment, tiles, last_k: int, pipeline, result, increments,
                 deadline: tuple[simpy.Event, float] | None = None, stats: SteadyStats | None = None):
        self.env, self.tiles, self.cursor, self.pipe, self.result = env, tiles, pipeline, pipeline, result
        self.increments, self.stats = increments, stats
        self.deadline, self.deadline_time = deadline if deadline is not None else (None, math.inf)
        self.keys = _TileKeys(tiles, last_k)
        self.history: dict[tuple, _Snapshot] = {}
        self.float_fields = [f.name for f in dataclasses.fields(result) if isinstance(getattr(result, f.name), float)]
        self.count_fields = [f.name for f in dataclasses.fields(result)
                             if isinstance(getattr(result, f.name), (int, float)) and f.name not in ("cycles",)]

    def run_until(self, until: simpy.Event) -> None:
        """``env.run(until=until)``, observing the state at the first quiescent instant after each tile starts."""
        env, cursor = self.env, self.cursor
        while until.callbacks is not None:
            if cursor.armed and env.peek() > env.now:
                cursor.armed = False
                self.observe()
            if not env._queue:
                raise RuntimeError("no scheduled events left but the layer has not finished")
            env.step()

    def observe(self) -> None:
        described = self._signature()
        if described is None:
            return
        signature, low_rel = described
        ref = self.cursor.loading + self.cursor.offset
        now = self._snapshot(ref, ref + low_rel)
        before = self.history.get(signature)
        if before is not None:
            skipped = self._periods_to_skip(before, now)
            if skipped:
                now = self._jump(before, now, skipped)
        if len(self.history) >= HISTORY_LIMIT:
            self.history.clear()
        self.history[signature] = now

    def _snapshot(self, ref: int, low: int) -> _Snapshot:
        r = self.result
        return _Snapshot(self.env.now, ref, low, tuple(getattr(r, f) for f in self.count_fields),
                         len(r.tile_finish_order), self.pipe.dram.bytes_moved)

    def _describe(self, proc: Any, ref: int) -> tuple | None:
        if proc is self.pipe.compute:
            return ("compute",)
        key = getattr(proc, "steady_key", None)
        return None if key is None else (key[0], key[1] - ref)

    def _signature(self) -> tuple[tuple, int] | None:
        """The state as a hashable tuple (tile indices relative to the loader's, times to now), and the
        oldest tile referred to (relative); None when some pending event is not one the engine knows."""
        env, pipe, cursor = self.env, self.pipe, self.cursor
        if cursor.loading + cursor.offset >= len(self.tiles):
            return None  # everything is loaded: nothing left to skip
        ref = cursor.loading
        bus_holders = {request.proc for request in pipe.dram.bus.users}
        pending = []
        for time, priority, _eid, event in sorted(env._queue, key=lambda entry: entry[:3]):
            if event is self.deadline:
                continue
            callbacks = event.callbacks or []
            proc = getattr(callbacks[0], "__self__", None) if len(callbacks) == 1 else None
            described = self._describe(proc, ref) if isinstance(event, simpy.Timeout) else None
            if described is None:
                return None
            pending.append((time - env.now, priority, described, proc in bus_holders))
        queues = []
        for resource in (pipe.dram.dma, pipe.dram.bus):
            waiting = tuple(self._describe(request.proc, ref) for request in resource.queue)
            if None in waiting:
                return None
            queues.append((waiting, len(resource.users)))
        loader, compute = pipe.loader.target, pipe.compute.target
        ready = tuple(j - ref for j in pipe.ready.items)
        state = (tuple(pending), tuple(queues), pipe.in_slots.level, pipe.out_slots.level,
                 type(loader).__name__, type(compute).__name__, cursor.computed - ref, ready)
        referred = [d[2][1] for d in pending if len(d[2]) == 2] + [d[1] for w, _ in queues for d in w]
        low = min(referred + list(ready) + [cursor.computed - 1 - ref])
        return state, low

    def _periods_to_skip(self, before: _Snapshot, now: _Snapshot) -> int:
        """How many more periods (before -> now) the full run would repeat exactly from here (0: none)."""
        period, span = now.ref - before.ref, now.now - before.now
        if period <= 0 or span <= 0 or before.low < 0:
            return 0
        breaks = self.keys.periodic_until(before.low, period)
        periods = (breaks - 1 - now.ref) // period  # the loader's tile after the jump still repeats the period
        if periods > 0 and math.isfinite(self.deadline_time):  # land before the give-up time: after it the run is over
            periods = min(periods, math.ceil((self.deadline_time - now.now) / span) - 1)
        if periods <= 0:
            return 0
        return periods if self._exact(before, now, periods) else 0

    def _exact(self, before: _Snapshot, now: _Snapshot, periods: int) -> bool:
        """Every float counter's full-run sum is exact over the skipped periods, so it equals the scaled one."""
        places = 0
        for tile in self.keys.representatives(before.low, now.ref + 1):
            for amount in self.increments(tile):
                places = max(places, _binary_places(amount))
        values = list(before.counters) + list(now.counters) + [before.moved, now.moved]
        growth = [b - a for a, b in zip(before.counters + (before.moved,), now.counters + (now.moved,))]
        for value in values:
            if isinstance(value, float):
                places = max(places, _binary_places(value))
        limit = 2.0 ** (53 - places)
        return all(abs(v + periods * g) < limit for v, g in zip(now.counters + (now.moved,), growth)
                   if isinstance(v, float))

    def _jump(self, before: _Snapshot, now: _Snapshot, periods: int) -> _Snapshot:
        """Advance the run by ``periods`` periods: the clock, every pending timeout, every counter, the tile
        offset and the finish order, exactly as the full run would have them."""
        env, result = self.env, self.result
        period, span = now.ref - before.ref, now.now - before.now
        shift = periods * span
        env._queue = [(time if event is self.deadline else time + shift, priority, eid, event)
                      for time, priority, eid, event in env._queue]
        heapq.heapify(env._queue)
        env._now += shift
        for name, a, b in zip(self.count_fields, before.counters, now.counters):
            setattr(result, name, b + periods * (b - a))
        self.pipe.dram.bytes_moved = now.moved + periods * (now.moved - before.moved)
        finished = result.tile_finish_order[before.finished:now.finished]
        result.tile_finish_order.extend(index + step * period for step in range(1, periods + 1) for index in finished)
        self.cursor.offset += periods * period
        if self.stats is not None:
            self.stats.jumps += 1
            self.stats.tiles_skipped += periods * period
            self.stats.cycles_skipped += shift
        return self._snapshot(now.ref + periods * period, now.low + periods * period)
