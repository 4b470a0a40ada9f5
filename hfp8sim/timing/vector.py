"""The vector / special-function unit: cycles of the layers that are not GEMMs.

A layer's lane operations are a description of its work and come from the layer itself
(:meth:`~hfp8sim.workloads.layers.Layer.vector_work`, a :class:`~hfp8sim.workloads.layers.VectorWork`):
element-wise, special-function (exp, erf, rsqrt ...) and reduction lane-ops.  This module times them.

A unit of ``lanes`` lanes does ``rate`` lane-ops per lane per cycle (FP16 lanes do one, FP32 ones half as
many when ``fp32_rate`` is 0.5); a special op takes ``special_op_cycles`` lane-cycles.  Element-wise layers
after a GEMM run in its output stage when ``fuse_elementwise`` is set (``timing.fusion`` decides the groups,
``timing.layer_results`` times them): their cycles hide behind the GEMM's and only what exceeds it, or what
the group's DRAM bytes need, is exposed.

A layer that runs alone moves its DRAM bytes through the same SimPy ``DramChannel`` and DMA engines as a GEMM
layer (:func:`streamed_cycles`): its tensors in chunks of the output scratchpad, load, compute and store
overlapping over two chunk slots.
"""

from __future__ import annotations

import functools
import math

import simpy

from ..core.cycles import whole_cycles
from ..core.model import CoreTiming, VectorUnitSpec
from ..workloads.layers import VectorWork
from .engine import DramChannel

__all__ = ["streamed_cycles", "vector_cycles"]


def vector_cycles(work: VectorWork, unit: VectorUnitSpec, *, fp32: bool) -> int:
    """Cycles of the vector unit for ``work`` (compute only), whole cycles: the last, partly filled issue of
    the lanes takes its cycle."""
    rate = unit.lanes * (unit.fp32_rate if fp32 or work.fp32 else 1.0)  # an optimizer step computes in FP32
    if work.lane_ops == 0:
        return 0
    return whole_cycles(work.elementwise + work.reduction + work.special * unit.special_op_cycles, rate)


@functools.lru_cache(maxsize=4096)
def streamed_cycles(read_bytes: float, write_bytes: float, busy_cycles: int, timing: CoreTiming,
                    chunks: int) -> int:
    """Cycles of a vector layer that reads ``read_bytes`` from DRAM and writes ``write_bytes`` to it while its
    unit is busy ``busy_cycles``, simulated in ``chunks`` equal pieces: each piece is loaded through the DRAM
    channel (a DMA engine, the latency, the shared bus), processed, and stored the same way; two slots of
    the output scratchpad let the next piece load while one is processed and an earlier one drains.  Never
    less than the latency plus all bytes over the bandwidth, nor than the busy cycles."""
    env = simpy.Environment()
    dram = DramChannel(env, timing.dram_bytes_per_cycle, timing.dram_latency_cycles, timing.dma_engines)
    slots, loaded, stores = simpy.Container(env, capacity=2, init=2), simpy.Store(env), []

    def loader():
        for piece in range(chunks):
            yield slots.get(1)
            yield env.process(dram.transfer(read_bytes / chunks))
            yield loaded.put(piece)

    def store():
        yield env.process(dram.transfer(write_bytes / chunks))
        yield slots.put(1)

    def compute():
        for _ in range(chunks):
            yield loaded.get()
            yield env.timeout(busy_cycles / chunks)
            stores.append(env.process(store()))

    env.process(loader())
    env.run(until=env.process(compute()))
    env.run(until=simpy.AllOf(env, stores))
    return math.ceil(env.now)  # a piece of the busy cycles may end mid-cycle; the layer ends on a whole one
