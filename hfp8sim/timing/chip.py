"""A chip of several cores sharing DRAM, linked by an on-chip network, executing one layer together.

Network (``Noc``):

* ``ring`` (IBM's chip: a pair of rings, one each way when ``bidirectional``): C links per direction, link
  i -> i+1.  A transfer takes the shorter way round and holds every link of its path for
  ``ceil(bytes / link_bw) + hops * hop_latency`` whole cycles (cut-through), so transfers that share a link
  queue.
  A multicast from one core goes once round each half of the ring (both directions in parallel).
* ``crossbar``: one hop between any two cores; each core's receive port is a link.

Partitions of a GEMM layer over the cores (``partition_gemm``):

* ``output_channels``: N is split; every core needs all of A (activations), which one core reads from DRAM
  and multicasts; each core reads its own slice of B.
* ``rows``: M is split; B (weights) is read once and multicast; each core reads its slice of A.
* ``reduction``: K is split; each core reads its own slices of A and B and keeps its partial outputs on chip;
  a ring reduce-scatter then combines them ((C-1) steps of 1/C of the outputs per link, each step adding on
  the vector units) and every core writes its 1/C of the outputs.  The additions change the order of the
  sums (core partials are combined in the accumulator buffer's format), which a bit-accurate run of this
  partition must follow.

All cores run in one SimPy environment: they contend for the DRAM channel and for network links.
"""

from __future__ import annotations

import dataclasses
import math

import simpy

from ..core.cycles import whole_cycles
from ..core.model import CoreTiming, NocSpec
from ..schedule.mapper import LayerSchedule
from ..vocabulary import Partition
from .engine import DramChannel, LayerTiming, SharedOperand, TileCycles, start_core_processes


class Noc:
    def __init__(self, env: simpy.Environment, cores: int, spec: NocSpec):
        self.env = env
        self.cores = cores
        self.spec = spec
        directions = (1, -1) if spec.bidirectional else (1,)
        self.links = {(i, d): simpy.Resource(env, capacity=1) for i in range(cores) for d in directions}
        self.byte_hops = 0.0
        self.bytes = 0.0

    def _path(self, src: int, dst: int) -> list[tuple[int, int]]:
        if self.spec.topology == "crossbar":
            return [(dst, 1)]  # the destination's receive port
        forward = (dst - src) % self.cores
        backward = (src - dst) % self.cores
        if self.spec.bidirectional and backward < forward:
            return [((src - h) % self.cores, -1) for h in range(backward)]
        return [((src + h) % self.cores, 1) for h in range(forward)]

    def _hold(self, links: list[tuple[int, int]], nbytes: float):
        requests = [self.links[link].request() for link in sorted(links)]  # a global order avoids deadlock
        for request in requests:
            yield request
        yield self.env.timeout(whole_cycles(nbytes, self.spec.link_bytes_per_cycle)
                               + len(links) * self.spec.hop_latency_cycles)
        for link, request in zip(sorted(links), requests):
            self.links[link].release(request)
        self.byte_hops += nbytes * len(links)
        self.bytes += nbytes

    def transfer(self, src: int, dst: int, nbytes: float):
        if src == dst or nbytes <= 0:
            return
        yield from self._hold(self._path(src, dst), nbytes)

    def multicast(self, src: int, nbytes: float):
        """``nbytes`` from ``src`` to every other core."""
        if self.cores == 1 or nbytes <= 0:
            return
        if self.spec.topology == "crossbar":
            sends = [self.env.process(self._hold([(dst, 1)], nbytes)) for dst in range(self.cores) if dst != src]
        else:
            others = self.cores - 1
            ahead = others - others // 2 if self.spec.bidirectional else others
            paths = [[((src + h) % self.cores, 1) for h in range(ahead)]]
            if self.spec.bidirectional and others - ahead:
                paths.append([((src - h) % self.cores, -1) for h in range(others - ahead)])
            sends = [self.env.process(self._hold(path, nbytes)) for path in paths]
        yield simpy.AllOf(self.env, sends)


@dataclasses.dataclass
class ChipLayerTiming:
    cycles: int
    per_core: list[LayerTiming]
    noc_bytes: float
    noc_byte_hops: float
    reduction_cycles: int = 0
    vector_add_ops: float = 0.0  # additions of the cross-core reduction (on the vector units)

    @property
    def totals(self) -> LayerTiming:
        """The cores' counters added up."""
        return sum(self.per_core, LayerTiming())


def simulate_chip_layer(schedules: list[LayerSchedule], partition: str, core: CoreTiming, tile_cycles: TileCycles,
                        noc_spec: NocSpec, *, vector_lanes: int, give_up_after: float | None = None,
                        record_events: list | None = None) -> ChipLayerTiming | None:
    """Run one layer on ``len(schedules)`` cores (one schedule per core, the same tiling for all)."""
    cores = len(schedules)
    env = simpy.Environment()
    dram = DramChannel(env, core.dram_bytes_per_cycle, core.dram_latency_cycles, core.dma_engines * cores)
    noc = Noc(env, cores, noc_spec)
    shared = None
    if partition in (Partition.OUTPUT_CHANNELS, Partition.ROWS):
        which = "a" if partition == Partition.OUTPUT_CHANNELS else "b"
        arrivals = {t.index: env.event() for t in schedules[0].tiles}
        shared = SharedOperand(which, 0, arrivals, lambda nbytes: noc.multicast(0, nbytes))
    results = [LayerTiming(tiles=len(s.tiles)) for s in schedules]
    procs = []
    for index, schedule in enumerate(schedules):
        pipe, stores = start_core_processes(env, dram, schedule, core, tile_cycles, results[index],
                                            record_events, index=index, shared=shared,
                                            keep_outputs=partition == Partition.REDUCTION)
        procs.append((pipe.compute, stores))
    done = [c for c, _ in procs]
    if give_up_after is not None:
        env.run(until=simpy.AnyOf(env, [simpy.AllOf(env, done), env.timeout(give_up_after)]))
        if not all(c.triggered for c in done):
            return None
    else:
        env.run(until=simpy.AllOf(env, done))
    reduction_cycles, adds = 0, 0.0
    if partition == Partition.REDUCTION and cores > 1:
        p = schedules[0].problem
        outputs = p.batch * p.M * p.N
        chunk = math.ceil(outputs / cores)
        start = env.now

        def reduce_scatter():
            for _step in range(cores - 1):  # every core sends one chunk to its neighbour, all links at once
                sends = [env.process(noc.transfer(i, (i + 1) % cores, chunk * p.psum_bytes)) for i in range(cores)]
                yield simpy.AllOf(env, sends)
                yield env.timeout(math.ceil(chunk / vector_lanes))  # add the received partial sums
            stores = [env.process(dram.transfer(chunk * p.out_bytes, record_events, f"core {i} store reduced"))
                      for i in range(cores)]
            yield simpy.AllOf(env, stores)

        env.run(until=env.process(reduce_scatter()))
        reduction_cycles = env.now - start
        adds = float((cores - 1) * chunk * cores)
        results[0].dram_write_bytes += outputs * p.out_bytes
    else:
        stores = [s for _, ss in procs for s in ss]
        if stores:
            env.run(until=simpy.AllOf(env, stores))
    if give_up_after is not None and env.now > give_up_after:
        return None
    for r in results:
        r.cycles = env.now
        r.stall_cycles = env.now - r.compute_cycles
    return ChipLayerTiming(env.now, results, noc.bytes, noc.byte_hops, reduction_cycles, adds)
