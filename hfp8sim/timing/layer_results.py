"""The timing model's counters as result rows: one :class:`~hfp8sim.results.LayerResult` per layer.

A GEMM layer's row comes from its chosen plan (one core, or the cores of a chip added up); a non-GEMM
layer's row from the vector unit, fused with the GEMM that produced its input when the unit allows it.
"""

from __future__ import annotations

import math

from ..core.cycles import whole_cycles
from ..core.model import CoreModel
from ..results import LayerResult
from ..schedule.grouped import GEMM, VECTOR_UNIT
from ..schedule.mapper import GemmProblem, LayerSchedule
from .chip import ChipLayerTiming
from .engine import LayerTiming
from ..workloads.layers import VectorWork
from .vector import vector_cycles


def gemm_layer_result(name: str, op: str, problem: GemmProblem, schedules: list[LayerSchedule],
                      timing: LayerTiming | ChipLayerTiming, peak_macs_per_cycle: int, *,
                      partition: str = "", mapping: str = GEMM) -> LayerResult:
    """The row of a GEMM layer that ran on one core (``timing`` a LayerTiming) or was split over several
    (a ChipLayerTiming, whose cores' counters are added)."""
    chip = timing if isinstance(timing, ChipLayerTiming) else None
    t = chip.totals if chip else timing
    cycles = timing.cycles
    # a chip layer's array time is its busiest core's (the cores compute at once): its fold and port cycles
    busiest = max(chip.per_core, key=lambda c: c.compute_cycles) if chip else t
    compute = busiest.compute_cycles
    extras = dict(vector_elementwise_ops=chip.vector_add_ops, cores=len(chip.per_core), partition=partition,
                  noc_bytes=chip.noc_bytes, noc_byte_hops=chip.noc_byte_hops) if chip else {}
    return LayerResult(
        name=name, op=op, kind="gemm", M=problem.M, N=problem.N, K=problem.K, batch=problem.batch,
        macs=int(t.macs), cycles=cycles, compute_cycles=compute,
        stall_cycles=cycles - compute if chip else t.stall_cycles,
        fold_cycles=busiest.fold_cycles, port_stall_cycles=busiest.port_stall_cycles, folds=int(t.folds),
        tiles=int(t.tiles),
        utilization=t.macs / (cycles * peak_macs_per_cycle) if cycles else 0.0,
        mapping_efficiency=t.used_pe_slots / t.pe_slots if t.pe_slots else 0.0,
        dram_read_bytes=t.dram_read_bytes, dram_write_bytes=t.dram_write_bytes,
        compulsory_dram_bytes=problem.compulsory_bytes,
        sram_read_bytes=t.sram_input_read_bytes + t.sram_weight_read_bytes + t.sram_output_read_bytes,
        sram_write_bytes=t.sram_output_write_bytes + t.sram_input_fill_bytes + t.sram_weight_fill_bytes,
        sram_input_read_bytes=t.sram_input_read_bytes, sram_input_write_bytes=t.sram_input_fill_bytes,
        sram_weight_read_bytes=t.sram_weight_read_bytes, sram_weight_write_bytes=t.sram_weight_fill_bytes,
        sram_output_read_bytes=t.sram_output_read_bytes, sram_output_write_bytes=t.sram_output_write_bytes,
        interconnect_bytes=t.interconnect_bytes,
        tile_shape="x".join(str(d) for d in schedules[0].tile_shape), loop_order=schedules[0].loop_order,
        mapping=mapping, **extras)


def vector_layer_result(name: str, op: str, work: VectorWork, core: CoreModel, *,
                        fuse_with: LayerResult | None = None) -> LayerResult:
    """The row of a non-GEMM layer on the vector unit.  The cores' vector units share its work (elements are
    independent); a tensor larger than the output scratchpad streams from and to DRAM and takes at least its
    bytes / bandwidth; fusable work after the GEMM that produced its input (``fuse_with``) hides behind it and
    only its excess cycles are exposed.  SCALE-Sim mode times the array only."""
    busy = whole_cycles(vector_cycles(work, core.vector, fp32=core.fp32_vector), core.cores)
    act = core.activation_bytes
    tensor_bytes = (work.in_elements + work.out_elements) * act
    dram_read = dram_write = 0.0
    bandwidth = core.timing.dram_bytes_per_cycle
    if core.scalesim_mode:
        busy = 0
    elif tensor_bytes > core.usable_scratchpad_bytes["output"]:
        dram_read, dram_write = work.in_elements * act, work.out_elements * act
        if math.isfinite(bandwidth):
            busy = max(busy, whole_cycles(dram_read + dram_write, bandwidth))
    exposed, fused = busy, False
    if work.fusable and core.vector.fuse_elementwise and fuse_with is not None:
        # hidden behind the producer's cycles in which the lanes are free (all of them for a GEMM on the
        # array; for a conv on the vector unit, those it waits for DRAM)
        exposed, fused = max(0, busy - (fuse_with.cycles - fuse_with.vector_cycles)), True
    on_chip_read = 0.0 if dram_read else work.in_elements * act
    on_chip_write = 0.0 if dram_write else work.out_elements * act
    return LayerResult(name, op, "vector", cycles=exposed, compute_cycles=exposed, dram_read_bytes=dram_read,
                       dram_write_bytes=dram_write, vector_cycles=busy, vector_elementwise_ops=work.elementwise,
                       vector_special_ops=work.special, vector_reduction_ops=work.reduction, fused=fused,
                       folded=work.folded,
                       sram_read_bytes=on_chip_read, sram_write_bytes=on_chip_write,
                       sram_output_read_bytes=on_chip_read, sram_output_write_bytes=on_chip_write)


def vector_conv_layer_result(name: str, op: str, problem: GemmProblem, work: VectorWork, core: CoreModel
                             ) -> LayerResult:
    """The row of a conv run on the vector unit (``work``: one FMA lane-op per MAC, see
    ``Conv2d.vector_unit_work``), with the cores' vector units sharing its output channels.

    Like a conv on the array it starts and ends in DRAM: its input tensor and weights are read once and its
    output written once, streamed through the scratchpads while the lanes compute, so the layer takes one
    DRAM latency plus the larger of its lane cycles and its bytes / DRAM bandwidth.  Each FMA reads its
    activation from the input scratchpad (a lane keeps its channel's R*S weights in registers); the MACs are
    priced as vector lane-ops, not array MACs (``energy.accounting``)."""
    busy = math.ceil(vector_cycles(work, core.vector, fp32=core.fp32_vector) / core.cores)
    act = core.activation_bytes
    read, write = work.in_elements * act, work.out_elements * act
    bandwidth = core.timing.dram_bytes_per_cycle
    cycles = busy
    if math.isfinite(bandwidth):
        cycles = core.timing.dram_latency_cycles + max(busy, whole_cycles(read + write, bandwidth))
    macs = problem.batch * problem.M * problem.N * problem.K
    lane_reads = work.elementwise * act
    return LayerResult(
        name, op, "vector", M=problem.M, N=problem.N, K=problem.K, batch=problem.batch, macs=macs,
        cycles=cycles, compute_cycles=busy, stall_cycles=cycles - busy,
        utilization=macs / (cycles * core.peak_chip_macs_per_cycle) if cycles else 0.0,
        dram_read_bytes=read, dram_write_bytes=write, compulsory_dram_bytes=read + write,
        sram_read_bytes=lane_reads + write, sram_write_bytes=read + write,
        sram_input_read_bytes=lane_reads, sram_input_write_bytes=read,
        sram_output_read_bytes=write, sram_output_write_bytes=write,
        vector_cycles=busy, vector_elementwise_ops=work.elementwise, mapping=VECTOR_UNIT)
