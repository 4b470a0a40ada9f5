"""The SimPy resources of a multi-chip system: links and compute engines (``Server``), and the two views of
the chips (``FullFabric``: every chip; ``ReducedFabric``: one chip standing for all of them).

**Arbitration.**  A server does one job at a time.  When it is free and jobs wait, it takes the one that became
ready first, ties broken by the job's key (bucket, chunk, phase, step; or the compute order).  The choice is made
in an event of lower priority than any other event of the same instant (``_LATE``), after every process that
could submit a job at that instant has done so.  The choice therefore never depends on the order in which
SimPy happens to process same-time events, which is what lets the full and the reduced model agree to the bit.

**The reduced model.**  Data parallelism is symmetric: every chip computes the same layers in the same time and
every ring of a dimension runs the same steps at the same times.  A chip's step ``s`` waits for the message its
predecessor sent in step ``s - 1``; by symmetry that message arrives exactly when the chip's own step ``s - 1``
message arrives at its successor.  So one chip, with one link per dimension, whose sends arrive back at itself,
reproduces every chip's timeline (checked against ``FullFabric`` for N <= 16 in tests/distributed).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable

import simpy
from simpy.events import Event

from ..errors import DistributedError
from .topology import Topology

_LATE = 2  # SimPy's priorities are URGENT 0 and NORMAL 1; arbitration runs after both at the same instant
MAX_FULL_CHIPS = 64
"""The full model simulates every chip; it exists to check the reduced one and is refused above this."""


class _Late(Event):
    """An already-successful event scheduled after every normal event of the current instant."""

    def __init__(self, env: simpy.Environment):
        super().__init__(env)
        self._ok, self._value = True, None
        env.schedule(self, priority=_LATE)


class Server:
    """A link or a compute engine: one job at a time, earliest ready first, ties by key."""

    def __init__(self, env: simpy.Environment, record_spans: bool = False):
        self.env = env
        self.busy_seconds = 0.0
        self.jobs = 0
        self.spans: list[tuple[float, float]] | None = [] if record_spans else None
        self._pending: list[tuple[float, Hashable, float, Event]] = []
        self._busy = False
        self._wake_pending = False

    def submit(self, key: Hashable, seconds: float) -> Event:
        """An event that succeeds when this job of ``seconds`` has been served."""
        done = Event(self.env)
        heapq.heappush(self._pending, (self.env.now, key, seconds, done))
        self._schedule_choice()
        return done

    def _schedule_choice(self) -> None:
        if not self._busy and not self._wake_pending and self._pending:
            self._wake_pending = True
            _Late(self.env).callbacks.append(self._start_next)

    def _start_next(self, _event: Event) -> None:
        self._wake_pending = False
        _ready, _key, seconds, done = heapq.heappop(self._pending)
        self._busy = True
        self.jobs += 1
        self.busy_seconds += seconds
        if self.spans is not None:
            self.spans.append((self.env.now, self.env.now + seconds))
        self.env.timeout(seconds).callbacks.append(lambda _e: self._finish(done))

    def _finish(self, done: Event) -> None:
        self._busy = False
        done.succeed()
        self._schedule_choice()


class ReducedFabric:
    """One chip stands for all: one link per dimension, its messages arrive back at itself."""

    def __init__(self, env: simpy.Environment, topology: Topology):
        self.env, self.topology = env, topology
        self.chips = (0,)
        self.engines = [Server(env, record_spans=True)]
        self.links = [[Server(env) for _ in topology.dimensions]]
        self.bytes_sent = [[0.0] * len(topology.dimensions)]

    def transfer(self, chip: int, dimension: int, tag: Hashable, nbytes: float):
        """A generator for ``yield from`` in a chip's process: serialise ``nbytes`` on the chip's link of
        ``dimension``, then wait for the predecessor's message of the same step (tag) to arrive at the chip
        (in the reduced model, by symmetry: the chip's own message, one latency after its last byte left)."""
        dim = self.topology.dimensions[dimension]
        self.bytes_sent[chip][dimension] += nbytes
        yield self.links[chip][dimension].submit(tag, nbytes / dim.bytes_per_s)
        yield self.env.timeout(dim.latency_s)


class FullFabric(ReducedFabric):
    """Every chip with its own engine and links; a message wakes the chip it was sent to."""

    def __init__(self, env: simpy.Environment, topology: Topology):
        if topology.chips > MAX_FULL_CHIPS:
            raise DistributedError(f"the full model simulates every chip and takes at most {MAX_FULL_CHIPS}; "
                                   f"{topology.chips} chips need the reduced model")
        self.env, self.topology = env, topology
        self.chips = tuple(range(topology.chips))
        self.engines = [Server(env, record_spans=True) for _ in self.chips]
        self.links = [[Server(env) for _ in topology.dimensions] for _ in self.chips]
        self.bytes_sent = [[0.0] * len(topology.dimensions) for _ in self.chips]
        self._arrivals: dict[tuple[int, int, Hashable], Event] = {}

    def _arrival(self, chip: int, dimension: int, tag: Hashable) -> Event:
        key = (chip, dimension, tag)
        if key not in self._arrivals:
            self._arrivals[key] = Event(self.env)
        return self._arrivals[key]

    def transfer(self, chip: int, dimension: int, tag: Hashable, nbytes: float):
        dim = self.topology.dimensions[dimension]
        self.bytes_sent[chip][dimension] += nbytes
        yield self.links[chip][dimension].submit(tag, nbytes / dim.bytes_per_s)
        receiver = self.topology.successor(chip, dimension)
        arrived = self._arrival(receiver, dimension, tag)
        self.env.timeout(dim.latency_s).callbacks.append(lambda _e: arrived.succeed())
        # the data this chip needs next is its predecessor's message of the same step
        yield self._arrival(chip, dimension, tag)
        del self._arrivals[(chip, dimension, tag)]


def make_fabric(env: simpy.Environment, topology: Topology, model: str) -> ReducedFabric:
    if model == "reduced":
        return ReducedFabric(env, topology)
    if model == "full":
        return FullFabric(env, topology)
    raise DistributedError(f"unknown model {model!r}; known: reduced, full")
