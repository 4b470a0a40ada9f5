"""The timing model's counters as result rows: one :class:`~hfp8sim.results.LayerResult` per layer.

A GEMM layer's row comes from its chosen plan (one core, or the cores of a chip added up); a non-GEMM
layer's row from the vector unit, fused into the output stage of the GEMM that produced its input when
``timing.fusion`` places it there, else alone with its DRAM traffic through the DRAM channel.
"""

from __future__ import annotations

import dataclasses
import math

from ..core.cycles import whole_cycles
from ..core.model import CoreModel
from ..results import LayerResult
from ..schedule.grouped import GEMM, VECTOR_UNIT
from ..schedule.mapper import GemmProblem, LayerSchedule
from .chip import ChipLayerTiming
from .engine import LayerTiming
from ..workloads.layers import VectorWork
from .fusion import Placement
from .vector import streamed_cycles, vector_cycles


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


@dataclasses.dataclass
class FusedGroup:
    """A GEMM and the layers fused into its output stage so far: its DRAM bytes, the vector unit's busy
    cycles, and its time, which starts as the GEMM's and stretches when the fused work or the group's DRAM
    bytes need more (every byte of the group goes through the one DRAM channel during the group's time)."""

    dram_bytes: float
    vector_busy: int
    cycles: int

    @classmethod
    def of(cls, gemm: LayerResult) -> FusedGroup:
        """A group opened by a GEMM's row: an array GEMM leaves the lanes free; a conv on the vector unit
        (``mapping`` vector unit) has them busy for its own ``vector_cycles`` already."""
        return cls(gemm.dram_read_bytes + gemm.dram_write_bytes, gemm.vector_cycles, gemm.cycles)


def vector_layer_result(name: str, op: str, work: VectorWork, core: CoreModel, placement: Placement, *,
                        group: FusedGroup | None = None) -> LayerResult:
    """The row of a non-GEMM layer on the vector unit, placed by ``timing.fusion``: fused into the output
    stage of the GEMM of ``group`` (which it updates), or alone.  The cores' vector units share its work
    (elements are independent).  SCALE-Sim mode times the array only."""
    busy = whole_cycles(vector_cycles(work, core.vector, fp32=core.fp32_vector), core.cores)
    act = core.activation_bytes
    ops = dict(folded=work.folded, vector_elementwise_ops=work.elementwise, vector_special_ops=work.special,
               vector_reduction_ops=work.reduction)
    if core.scalesim_mode:
        read, write = work.in_elements * act + work.extra_read_bytes, work.out_elements * act + work.extra_write_bytes
        return LayerResult(name, op, "vector", fused=placement.fused_into is not None, sram_read_bytes=read,
                           sram_write_bytes=write, sram_output_read_bytes=read, sram_output_write_bytes=write, **ops)
    if placement.fused_into is not None and group is not None:
        return _fused_result(name, op, work, core, placement, group, busy, ops)
    return _alone_result(name, op, work, core, placement, busy, ops)


def _fused_result(name: str, op: str, work: VectorWork, core: CoreModel, placement: Placement,
                  group: FusedGroup, busy: int, ops: dict) -> LayerResult:
    """Applied to the output tile as it drains: no scratchpad round trip for the tile operand.  A residual
    operand is read once from DRAM (DMA'd into the output scratchpad, read by the stage); a tile operand
    another layer needs is staged in the scratchpad and written to DRAM.  The row's cycles are what the
    layer adds to its group's time (see :class:`FusedGroup`)."""
    act = core.activation_bytes
    residual = max(0.0, work.in_elements - placement.tile_elements) * act + work.extra_read_bytes
    spill = placement.tile_elements * act if placement.spill_tile_operand else 0.0
    spill += work.extra_write_bytes
    group.dram_bytes += residual + spill
    group.vector_busy += busy
    with_vector = max(group.cycles, group.vector_busy)
    bandwidth = core.timing.dram_bytes_per_cycle
    with_dram = max(with_vector, whole_cycles(group.dram_bytes, bandwidth)) if math.isfinite(bandwidth) \
        else with_vector
    compute, stall, exposed = with_vector - group.cycles, with_dram - with_vector, with_dram - group.cycles
    group.cycles = with_dram
    staged = residual + spill
    return LayerResult(name, op, "vector", cycles=exposed, compute_cycles=compute, stall_cycles=stall,
                       dram_read_bytes=residual, dram_write_bytes=spill, vector_cycles=busy, fused=True,
                       sram_read_bytes=staged, sram_write_bytes=staged, sram_output_read_bytes=staged,
                       sram_output_write_bytes=staged, **ops)


def _alone_result(name: str, op: str, work: VectorWork, core: CoreModel, placement: Placement, busy: int,
                  ops: dict) -> LayerResult:
    """Reads its inputs from the output scratchpad and writes its outputs there; what it reads from DRAM is
    DMA'd in first and what it writes to DRAM is DMA'd out, through the DRAM channel (``streamed_cycles``)."""
    act = core.activation_bytes
    # fixed-format tensors (an optimizer's master weights and states) always come from and go to DRAM
    inputs = work.in_elements * act + work.extra_read_bytes
    outputs = work.out_elements * act + work.extra_write_bytes
    dram_read = max(0.0, inputs - placement.on_chip_elements * act)
    dram_write = outputs if placement.writes_output else 0.0
    cycles = busy
    if dram_read or dram_write:
        usable = core.usable_scratchpad_bytes["output"]
        chunks = max(1, math.ceil((inputs + outputs) / usable)) if math.isfinite(usable) else 1
        cycles = streamed_cycles(dram_read, dram_write, busy, core.timing, chunks)
    return LayerResult(name, op, "vector", cycles=cycles, compute_cycles=busy, stall_cycles=cycles - busy,
                       dram_read_bytes=dram_read, dram_write_bytes=dram_write, vector_cycles=busy,
                       sram_read_bytes=inputs + dram_write, sram_write_bytes=outputs + dram_read,
                       sram_output_read_bytes=inputs + dram_write, sram_output_write_bytes=outputs + dram_read,
                       **ops)


def vector_conv_layer_result(name: str, op: str, problem: GemmProblem, work: VectorWork, core: CoreModel
                             ) -> LayerResult:
    """The row of a conv run on the vector unit (``work``: one FMA lane-op per MAC, see
    ``Conv2d.vector_unit_work``), with the cores' vector units sharing its output channels.

    Like a conv on the array it starts and ends in DRAM: its input tensor and weights are read once and its
    output written once, streamed through the scratchpads while the lanes compute, so the layer takes one
    DRAM latency plus the larger of its lane cycles and its bytes / DRAM bandwidth.  Each FMA reads its
    activation from the input scratchpad (a lane keeps its channel's R*S weights in registers); the MACs are
    priced as vector lane-ops, not array MACs (``energy.accounting``)."""
    busy = whole_cycles(vector_cycles(work, core.vector, fp32=core.fp32_vector), core.cores)
    act = core.activation_bytes
    read, write = work.in_elements * act, work.out_elements * act
    bandwidth = core.timing.dram_bytes_per_cycle
    cycles = busy
    if math.isfinite(bandwidth):
        cycles = core.timing.dram_latency_cycles + max(busy, whole_cycles(read + write, bandwidth))
    macs = problem.batch * problem.M * problem.N * problem.K
    lane_reads = work.elementwise * act
    # the weights are DMA'd into the weight scratchpad and read once into the lanes' registers
    weights = problem.batch * problem.K * problem.N * problem.b_bytes
    return LayerResult(
        name, op, "vector", M=problem.M, N=problem.N, K=problem.K, batch=problem.batch, macs=macs,
        cycles=cycles, compute_cycles=busy, stall_cycles=cycles - busy,
        utilization=macs / (cycles * core.peak_chip_macs_per_cycle) if cycles else 0.0,
        dram_read_bytes=read, dram_write_bytes=write, compulsory_dram_bytes=read + write,
        sram_read_bytes=lane_reads + weights + write, sram_write_bytes=read + write,
        sram_input_read_bytes=lane_reads, sram_input_write_bytes=read - weights,
        sram_weight_read_bytes=weights, sram_weight_write_bytes=weights,
        sram_output_read_bytes=write, sram_output_write_bytes=write,
        vector_cycles=busy, vector_elementwise_ops=work.elementwise, mapping=VECTOR_UNIT)
