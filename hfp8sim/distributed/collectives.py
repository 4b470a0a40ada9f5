"""Collectives as ring steps per dimension, at chunk granularity; their closed forms on an idle network.

**The algorithm.**  A reduce-scatter runs the ring reduce-scatter on each dimension in turn, first to last:
on dimension d of size k_d, k_d - 1 steps, each sending the chip's current data divided by k_d.  After
dimension d a chip holds 1 / P_d of the data, P_d = k_1 x ... x k_d.  An all-gather is the mirror image (last
dimension first, the same step sizes).  An all-reduce is a reduce-scatter followed by an all-gather.  So for a
message of S bytes, step sizes S / P_d, and per step one link latency a_d plus S / (P_d B_d) of serialisation:

    reduce-scatter (idle, one chunk) = sum_d (k_d - 1) (a_d + S / (P_d B_d))       = all-gather
    all-reduce     (idle, one chunk) = 2 sum_d (k_d - 1) (a_d + S / (P_d B_d))

On a ring (one dimension, k = N) the all-reduce is the textbook 2 (N - 1) / N x S / B + 2 (N - 1) a.  The bytes
a chip sends do not depend on the topology: sum_d (k_d - 1) S / P_d = (1 - 1 / N) S per reduce-scatter or
all-gather (the sum telescopes), twice that per all-reduce.

**Chunks.**  A collective of S bytes is cut into C equal chunks, each running the whole algorithm as its own
process; the chunks share the links (earliest ready first, see ``fabric.py``), so a chunk can be on one
dimension while the next is on another, and latency of one chunk hides behind the serialisation of the next.
On one ring (K steps, sigma = S / (C N B) per chunk step) the link serves the chunks of step s back to back,
then waits for chunk 0's step-s message to arrive before its step s + 1, so each round takes
max(C sigma, sigma + a) and the collective

    (K - 1) max(C sigma, sigma + a) + C sigma + a

(one chunk: K (sigma + a), the formula above; many chunks: K S / (N B) + a, the latency hidden; tested).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable

import simpy

from ..errors import DistributedError
from .fabric import ReducedFabric, make_fabric
from .topology import Topology

ALL_REDUCE, REDUCE_SCATTER, ALL_GATHER = "all_reduce", "reduce_scatter", "all_gather"
COLLECTIVES = (ALL_REDUCE, REDUCE_SCATTER, ALL_GATHER)


@dataclasses.dataclass(frozen=True)
class Phase:
    """The ring steps of one collective on one dimension: each step sends ``fraction`` of the message."""

    dimension: int
    steps: int
    fraction: float


def phases(topology: Topology, kind: str) -> tuple[Phase, ...]:
    """The phases of collective ``kind`` on ``topology``, in the order they run (dimensions of size 1 have no
    steps and are left out)."""
    if kind not in COLLECTIVES:
        raise DistributedError(f"unknown collective {kind!r}; known: {', '.join(COLLECTIVES)}")
    scatter: list[Phase] = []
    held = 1
    for index, dim in enumerate(topology.dimensions):
        held *= dim.size
        if dim.size > 1:
            scatter.append(Phase(index, dim.size - 1, 1.0 / held))
    gather = list(reversed(scatter))
    return tuple({REDUCE_SCATTER: scatter, ALL_GATHER: gather, ALL_REDUCE: scatter + gather}[kind])


def idle_seconds(topology: Topology, kind: str, nbytes: float) -> float:
    """The closed form of one unchunked collective on an idle network (the module docstring)."""
    return sum(p.steps * (topology.dimensions[p.dimension].latency_s +
                          nbytes * p.fraction / topology.dimensions[p.dimension].bytes_per_s)
               for p in phases(topology, kind))


def bytes_sent_per_chip(topology: Topology, kind: str, nbytes: float) -> float:
    return nbytes * sum(p.steps * p.fraction for p in phases(topology, kind))


def run_collective(fabric: ReducedFabric, chip: int, kind: str, nbytes: float, chunks: int,
                   key: tuple[Hashable, ...]) -> simpy.Event:
    """Start collective ``kind`` of ``nbytes`` on ``chip`` in ``chunks`` chunks; the event fires when the chip
    holds its result (every chunk done).  ``key`` orders its messages against others on the same link."""
    plan = phases(fabric.topology, kind)
    env = fabric.env
    return simpy.AllOf(env, [env.process(_chunk(fabric, chip, plan, nbytes / chunks, (*key, chunk)))
                             for chunk in range(chunks)])


def _chunk(fabric: ReducedFabric, chip: int, plan: tuple[Phase, ...], chunk_bytes: float,
           key: tuple[Hashable, ...]):
    for number, phase in enumerate(plan):
        step_bytes = chunk_bytes * phase.fraction
        for step in range(phase.steps):
            yield from fabric.transfer(chip, phase.dimension, (*key, number, step), step_bytes)


@dataclasses.dataclass(frozen=True)
class CollectiveRun:
    seconds: float
    bytes_sent: tuple[float, ...]  # per chip simulated (one in the reduced model)
    transfers: int  # link jobs, every chip


def simulate_collective(topology: Topology, kind: str, nbytes: float, *, chunks: int = 1,
                        model: str = "reduced") -> CollectiveRun:
    """One collective alone on an idle network: its time and the bytes each chip sent."""
    if not (isinstance(chunks, int) and chunks >= 1):
        raise DistributedError(f"chunks: {chunks!r}; a collective is cut into at least 1 chunk")
    env = simpy.Environment()
    fabric = make_fabric(env, topology, model)
    done = [run_collective(fabric, chip, kind, nbytes, chunks, ()) for chip in fabric.chips]
    env.run(simpy.AllOf(env, done))
    return CollectiveRun(env.now, tuple(sum(per_dim) for per_dim in fabric.bytes_sent),
                         sum(link.jobs for links in fabric.links for link in links))
