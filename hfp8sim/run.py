"""Where a workload, an arch config and a scheme meet the timing model: ``simulate_network``.

For every GEMM layer (conv, linear, attention matmul) the mapper cuts the layer into tiles for the array and
dataflow at the scheme's element sizes, and the SimPy model executes the tiles; fold cycles come from the
closed forms proven against the cycle-stepped reference (``schedule.fold_latency``), or, in SCALE-Sim mode,
from SCALE-Sim v3's formulas.  Non-GEMM layers (activations, norms, softmax, pooling, adds) run on the
vector unit (``timing.vector``): elementwise ones right after the GEMM that produces their input are fused
with it and only their excess cycles are exposed; the others take their own cycles, or their DRAM time when
their tensor does not fit the output scratchpad.  On a chip of several cores each GEMM layer is partitioned
(``timing.chip``) the way that simulates fastest.  Every layer's counted actions are then priced by the
energy model (``energy``) at the arch's operating point.

The functional datapath is not needed for timing; it meets the timing model through the schedule (the fold
order and reduction order are the same) and through traces, which carry measured tensor statistics.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import lru_cache

from .config.arch import ArchConfig
from .errors import Hfp8SimError
from .datapath.contract import ArrayArithmetic
from .config.tech import load_tech
from .energy import energy_of
from .formats.spec import FormatSpec, Scheme, get_format
from .results import LayerResult, NetworkResult
from .schedule import scalesim
from .schedule.fold_latency import gemm_fold_schedule
from .schedule.mapper import (
    ArraySpec, Candidate, GemmProblem, LayerSchedule, build_schedule, candidates, tile_shape_counts,
)
from .timing.engine import CoreTiming, LayerTiming, simulate_layer, tile_busy_cycles
from .timing.chip import PARTITIONS, ChipLayerTiming, NocSpec, simulate_chip_layer
from .timing.vector import VectorUnitSpec, VectorWork, vector_cycles, vector_work
from .workloads import Network
from .workloads.layers import ELEMENTWISE_OPS, Elementwise, GemmShape, Layer, Norm, Softmax


def element_bytes(spec: FormatSpec) -> int:
    """Storage bytes of one element (8-bit formats 1, 16-bit 2, float32 4)."""
    return max(1, math.ceil(spec.bits / 8))


def role_format(scheme: Scheme, role: str) -> FormatSpec:
    return scheme.backward if role == "gradient" else scheme.forward


def _core_timing(arch: ArchConfig, pair: bool) -> CoreTiming:
    m = arch.model
    scalesim_mode = m.mode == "scalesim"
    return CoreTiming(
        rows=m.array.rows, cols=m.array.cols, dataflow=m.array.dataflow, pair=pair,
        overlap_folds=m.array.overlap_folds and not scalesim_mode,
        dram_bytes_per_cycle=math.inf if scalesim_mode else arch.dram_bytes_per_cycle,
        dram_latency_cycles=0 if (scalesim_mode or m.dram.ideal) else m.dram.latency_cycles,
        dma_engines=m.interconnect.dma_engines,
        interconnect_bytes_per_cycle=math.inf if scalesim_mode else m.interconnect.bw_bytes_per_cycle,
        input_read_bytes_per_cycle=math.inf if scalesim_mode else m.scratchpads.input.read_bytes_per_cycle,
        weight_read_bytes_per_cycle=math.inf if scalesim_mode else m.scratchpads.weight.read_bytes_per_cycle,
        output_read_bytes_per_cycle=math.inf if scalesim_mode else m.scratchpads.output.read_bytes_per_cycle,
        output_write_bytes_per_cycle=math.inf if scalesim_mode else m.scratchpads.output.write_bytes_per_cycle,
        double_buffered_inputs=m.scratchpads.input.double_buffered and m.scratchpads.weight.double_buffered,
        double_buffered_output=m.scratchpads.output.double_buffered,
    )


@lru_cache(maxsize=8192)
def _tile_cycles(dataflow: str, rows: int, cols: int, pair: bool, overlap: bool, chain: bool,
                 chunk: int | None, mt: int, nt: int, kt: int) -> tuple[float, int, float, float]:
    """(cycles, folds, offered PE positions, used PE positions) of one tile, from the closed forms."""
    slots = gemm_fold_schedule(dataflow, rows, cols, mt, nt, kt, pair=pair, overlap=overlap, chain=chain,
                               chunk=chunk)
    per_step = 2 if pair else 1
    used = 0
    for slot in slots:
        if dataflow == "os":
            used += len(slot.m_range) * len(slot.n_range)
        else:
            wide = len(slot.n_range) if dataflow == "ws" else len(slot.m_range)
            used += math.ceil(len(slot.k_range) / per_step) * wide
    return float(max(s.end for s in slots)), len(slots), float(len(slots) * rows * cols), float(used)


def _scalesim_tile_cycles(dataflow: str, rows: int, cols: int) -> Callable[[int, int, int], tuple]:
    def cycles(mt: int, nt: int, kt: int):
        layer = scalesim.gemm_layer("tile", mt, nt, kt)
        folds = scalesim.fold_count(layer, dataflow, rows, cols)
        used = scalesim.mapping_efficiency(layer, dataflow, rows, cols) * folds * rows * cols
        return float(scalesim.layer_cycles(layer, dataflow, rows, cols)), folds, float(folds * rows * cols), used
    return cycles


def _gemm_problem(layer: Layer, scheme: Scheme, psum_format: FormatSpec) -> GemmProblem:
    g = layer.gemm()
    a_fmt, b_fmt = role_format(scheme, g.a_role), role_format(scheme, g.b_role)
    out_fmt = role_format(scheme, layer.output_role)
    return GemmProblem(layer.name, g.M, g.N, g.K, g.batch, element_bytes(a_fmt), element_bytes(b_fmt),
                       element_bytes(out_fmt), element_bytes(psum_format))


def _flow_shop_bound(schedule: LayerSchedule, core: CoreTiming, tile_cycles, bw: float, latency: float) -> float:
    """A tighter lower bound from the tiles themselves: loads cross the DRAM channel one after another and the
    array computes tiles one after another, each after its own loads, so for every tile k the layer takes at
    least (loads of tiles 0..k) + (fold cycles of tiles k..end) + the last store."""
    if not math.isfinite(bw):
        return 0.0
    loads = [(t.load_a_bytes + t.load_b_bytes) / bw for t in schedule.tiles]
    computes = [tile_busy_cycles(t, schedule, core, tile_cycles(*t.dims)[0]) for t in schedule.tiles]
    best, loaded, remaining = 0.0, 0.0, sum(computes)
    for load, compute in zip(loads, computes):
        loaded += load
        best = max(best, loaded + remaining)
        remaining -= compute
    last = schedule.tiles[-1]
    return best + latency + last.store_bytes / bw


def fastest_schedule(problem: GemmProblem, array: ArraySpec, core: CoreTiming,
                     tile_cycles: Callable[[int, int, int], tuple]) -> tuple[LayerSchedule, LayerTiming]:
    """The candidate tiling with the fewest simulated cycles (ties: fewer DRAM bytes).

    Branch and bound over ``mapper.candidates``: no schedule can beat its lower bound, the larger of
    (first tile's loads + all fold cycles + last tile's store), since the array computes one tile at a time
    and cannot start before its operands arrive nor end before its outputs leave, and (all DRAM bytes /
    bandwidth).  Candidates are simulated in order of that bound until the bound reaches the best time found;
    the search is exact, so more room (bigger scratchpads) or more bandwidth never makes a layer slower.
    """
    bw = core.dram_bytes_per_cycle
    latency = core.dram_latency_cycles if math.isfinite(bw) else 0.0
    bounded = []
    for order, cand in enumerate(candidates(problem, array)):
        shapes = tile_shape_counts(problem, cand.tile_shape)
        fold_sum = sum(count * tile_cycles(*shape)[0] for shape, count in shapes)
        if math.isfinite(bw):
            mt, nt, kt = (min(d, t) for d, t in zip((problem.M, problem.N, problem.K), cand.tile_shape))
            first_load = max(mt * kt * problem.a_bytes, kt * nt * problem.b_bytes) / bw + latency
            # the last tile is the corner tile of the last m-, n- and k-blocks (k is innermost)
            m_last, n_last, k_last = (full - (math.ceil(full / size) - 1) * size
                                      for full, size in zip((problem.M, problem.N, problem.K), (mt, nt, kt)))
            last_store = m_last * n_last * problem.out_bytes / bw + latency
            last_compute = tile_cycles(m_last, n_last, k_last)[0]
            store_bytes = problem.batch * problem.M * problem.N * problem.out_bytes
            bound = max(first_load + fold_sum + last_store,  # the array is serial and waits at both ends
                        cand.dram_bytes / bw,  # every byte crosses the DRAM channel
                        # all loads cross the channel before the last tile can compute and store
                        (cand.dram_bytes - store_bytes) / bw + latency + last_compute + last_store)
        else:
            bound = fold_sum
        bounded.append((bound, order, cand))
    bounded.sort(key=lambda item: (item[0], item[1]))
    best: tuple[LayerSchedule, LayerTiming] | None = None
    for bound, _, cand in bounded:
        if best is not None and bound >= best[1].cycles:
            break
        schedule = build_schedule(problem, array, cand)
        if best is not None and _flow_shop_bound(schedule, core, tile_cycles, bw, latency) >= best[1].cycles:
            continue
        timing = simulate_layer(schedule, core, tile_cycles, give_up_after=best[1].cycles if best else None)
        if timing is not None and (best is None or timing.cycles < best[1].cycles):
            best = (schedule, timing)
    assert best is not None
    return best


def array_arithmetic(arch: ArchConfig, scheme: str | Scheme | None = None) -> ArrayArithmetic:
    """The datapath arithmetic of ``arch`` under ``scheme``: the same array, fold order and accumulators that
    the timing model schedules (pair mode when the PEs do two MACs per cycle at the operand width)."""
    scheme = arch.resolve_scheme(scheme)
    m = arch.model
    acc = m.array.accumulator
    acc_format = arch.accumulator_format() if scheme is arch.scheme else (
        get_format(acc.format) if acc.format else scheme.accumulate)
    return ArrayArithmetic(
        dataflow=m.array.dataflow, rows=m.array.rows, cols=m.array.cols, acc_format=acc_format,
        acc_rounding=acc.rounding, acc_overflow=acc.overflow,
        buffer_format=acc.buffer_format if m.array.dataflow != "os" else None,
        chunk=acc.chunk, chain=acc.chain, pair=arch.macs_per_pe(scheme.forward.bits) == 2)


class _CoreModel:
    """What the timing of one arch under one scheme needs, built once per network run."""

    def __init__(self, arch: ArchConfig, scheme: Scheme):
        m = arch.model
        self.scheme = scheme
        self.arith = array_arithmetic(arch, scheme)
        self.pair = self.arith.pair
        self.core = _core_timing(arch, self.pair)
        self.scalesim_mode = m.mode == "scalesim"
        self.peak = m.array.rows * m.array.cols * (2 if self.pair else 1)
        pads = m.scratchpads
        usable = {name: getattr(pads, name).size_kib * 1024 / (2 if getattr(pads, name).double_buffered else 1)
                  for name in ("input", "weight", "output")}
        unlimited = self.scalesim_mode  # SCALE-Sim's scratchpads only log traffic
        self.array = ArraySpec(m.array.rows, m.array.cols, m.array.dataflow, self.pair, self.arith.chunk,
                               math.inf if unlimited else usable["input"], math.inf if unlimited else usable["weight"],
                               math.inf if unlimited else usable["output"])
        if self.scalesim_mode:
            self.tile_cycles = _scalesim_tile_cycles(m.array.dataflow, m.array.rows, m.array.cols)
        else:
            dataflow, rows, cols, overlap = m.array.dataflow, m.array.rows, m.array.cols, self.core.overlap_folds
            chain, chunk = self.arith.chain, self.arith.chunk

            def tile_cycles(mt: int, nt: int, kt: int):
                return _tile_cycles(dataflow, rows, cols, self.pair, overlap, chain, chunk, mt, nt, kt)

            self.tile_cycles = tile_cycles

        vu = m.vector_unit
        self.vector = VectorUnitSpec(vu.lanes or m.array.cols, vu.special_op_cycles, vu.fp32_rate,
                                     vu.fuse_elementwise)
        self.fp32_vector = scheme.forward.bits > 16
        self.act_bytes = element_bytes(scheme.forward)
        self.output_pad_bytes = math.inf if self.scalesim_mode else usable["output"]

        self._setup_energy(arch)
        chip = m.chip
        self.cores = chip.cores
        self.partitions = PARTITIONS if chip.partition == "auto" else (chip.partition,)
        self.noc = NocSpec(chip.noc.topology, chip.noc.link_bytes_per_cycle, chip.noc.hop_latency_cycles,
                           chip.noc.bidirectional)
        self.peak_chip = self.peak * self.cores

    def vector_layer(self, layer: Layer, done: list[LayerResult]) -> LayerResult:
        """A non-GEMM layer on the vector unit; ``done`` are the results of the layers before it."""
        work = layer.vector_work if isinstance(getattr(layer, "vector_work", None), VectorWork) else vector_work(layer)
        # the cores' vector units share the work of a non-GEMM layer (elements are independent)
        busy = math.ceil(vector_cycles(work, self.vector, fp32=self.fp32_vector) / self.cores)
        tensor_bytes = (work.in_elements + work.out_elements) * self.act_bytes
        dram_read = dram_write = 0.0
        if self.scalesim_mode:  # SCALE-Sim times the array only
            busy = 0.0
        elif tensor_bytes > self.output_pad_bytes:  # streams from and to DRAM
            dram_read, dram_write = work.in_elements * self.act_bytes, work.out_elements * self.act_bytes
            if math.isfinite(self.core.dram_bytes_per_cycle):
                busy = max(busy, (dram_read + dram_write) / self.core.dram_bytes_per_cycle)
        exposed, fused = busy, False
        producer = done[-1] if done else None
        if (work.fusable and self.vector.fuse_elementwise and producer is not None and producer.kind == "gemm"
                and layer.producers and layer.producers[0] == producer.name):
            exposed, fused = max(0.0, busy - producer.cycles), True
        return LayerResult(layer.name, layer.op, "vector", cycles=exposed, compute_cycles=exposed,
                           dram_read_bytes=dram_read, dram_write_bytes=dram_write, vector_cycles=busy,
                           vector_elementwise_ops=work.elementwise, vector_special_ops=work.special,
                           vector_reduction_ops=work.reduction, fused=fused,
                           sram_read_bytes=0.0 if dram_read else work.in_elements * self.act_bytes,
                           sram_write_bytes=0.0 if dram_write else work.out_elements * self.act_bytes,
                           sram_output_read_bytes=0.0 if dram_read else work.in_elements * self.act_bytes,
                           sram_output_write_bytes=0.0 if dram_write else work.out_elements * self.act_bytes)

    def _setup_energy(self, arch: ArchConfig) -> None:
        m = arch.model
        self.energy_cfg = m.energy
        self.tech = load_tech(m.energy.tech)
        point = self.tech.operating_point(m.energy.operating_point)  # unknown names fail here, listed
        self.sram_kib = {name: getattr(m.scratchpads, name).size_kib for name in ("input", "weight", "output")}
        self.width = {8: "fp8", 16: "fp16"}.get(max(self.scheme.forward.bits, self.scheme.backward.bits), "fp32")
        self.vector_precision = "fp32" if self.fp32_vector else "fp16"
        self.operand_bytes = element_bytes(self.scheme.forward)
        self.acc_register_bytes = element_bytes(self.arith.acc_format)
        # Leakage: the table gives it per core of ``static_reference_macs_per_cycle`` MACs per cycle; a core of
        # another size leaks in proportion, and time is cycles at the arch's clock.  Both are folded into the
        # ``cycles`` count passed to the energy model (static = P_core * cores * cycles / clock_of_the_point).
        # the hardware's size does not depend on the scheme: count its PEs at their FP8 rate
        macs_per_core = m.array.rows * m.array.cols * arch.macs_per_pe(8)
        self.leak_factor = (point.clock_ghz / m.clock_ghz) * m.chip.cores * macs_per_core / \
            m.energy.static_reference_macs_per_cycle

    def layer_energy(self, result: LayerResult) -> dict[str, float]:
        """The layer's counted actions priced by the technology table (energy_<component>_pj columns)."""
        r, w, v = result, self.width, self.vector_precision
        actions = {
            f"mac_{w}": float(r.macs), f"mac_zero_{w}": float(r.zero_operand_macs),
            # each MAC latches an operand byte passed to its neighbour and its partial sum
            "pe_register_bytes": float(r.macs) * (self.operand_bytes + self.acc_register_bytes),
            "sram_read_bytes.input": r.sram_input_read_bytes, "sram_write_bytes.input": r.sram_input_write_bytes,
            "sram_read_bytes.weight": r.sram_weight_read_bytes, "sram_write_bytes.weight": r.sram_weight_write_bytes,
            "sram_read_bytes.output": r.sram_output_read_bytes, "sram_write_bytes.output": r.sram_output_write_bytes,
            "dram_read_bytes": r.dram_read_bytes, "dram_write_bytes": r.dram_write_bytes,
            "edge_bytes": r.interconnect_bytes, "noc_byte_hops": r.noc_byte_hops,
            f"vector_ops.elementwise_{v}": r.vector_elementwise_ops, f"vector_ops.special_{v}": r.vector_special_ops,
            f"vector_ops.reduction_{v}": r.vector_reduction_ops,
            "cycles": r.cycles * self.leak_factor,
        }
        e = self.energy_cfg
        breakdown = energy_of(actions, self.tech, op_point=e.operating_point, sram_size_kib=self.sram_kib,
                              dram_kind=e.dram_kind, zero_gating=e.zero_gating)
        return breakdown.as_row()

    def plan_chip(self, problem: GemmProblem) -> tuple[str, int, list[LayerSchedule], ChipLayerTiming | None,
                                                       LayerTiming | None]:
        """The fastest way to run a GEMM layer on the chip: every partition over the cores (and one core
        alone, which wins for layers too small to split), by simulation."""
        schedule, single = self.plan_and_time(problem)
        best = ("single core", 1, [schedule], None, single)
        best_cycles = single.cycles
        if self.cores == 1 or self.scalesim_mode:
            return best
        for partition in self.partitions:
            parts = _split(problem, partition, self.cores)
            if len(parts) < 2:
                continue
            if partition == "reduction" and problem.batch * problem.M * problem.N * problem.psum_bytes > \
                    self.array.output_bytes:
                continue  # partial outputs must stay on chip until the cross-core reduction
            try:
                lead, _ = self.plan_and_time(parts[0])
            except Hfp8SimError:
                continue
            shape = Candidate(lead.tile_shape, lead.loop_order, 0.0, 0)
            schedules = [build_schedule(part, self.array, shape) for part in parts]
            timing = simulate_chip_layer(schedules, partition, self.core, self.tile_cycles, self.noc,
                                         vector_lanes=self.vector.lanes, give_up_after=best_cycles)
            if timing is not None and timing.cycles < best_cycles:
                best, best_cycles = (partition, len(parts), schedules, timing, None), timing.cycles
        return best

    def problem(self, layer: Layer) -> GemmProblem:
        return _gemm_problem(layer, self.scheme, self.arith.segment_sum_format)

    def plan_and_time(self, problem: GemmProblem) -> tuple[LayerSchedule, LayerTiming]:
        if self.scalesim_mode:  # SCALE-Sim maps a layer as one piece
            whole = Candidate((problem.M, problem.N, problem.K), "n,m,k", 0.0, problem.batch)
            schedule = build_schedule(problem, self.array, whole)
            return schedule, simulate_layer(schedule, self.core, self.tile_cycles)
        return fastest_schedule(problem, self.array, self.core, self.tile_cycles)


def _split(problem: GemmProblem, partition: str, cores: int) -> list[GemmProblem]:
    """The per-core sub-problems of a partition (fewer than ``cores`` when the split dimension is small)."""
    dim = {"output_channels": "N", "rows": "M", "reduction": "K"}[partition]
    total = getattr(problem, dim)
    size = math.ceil(total / cores)
    return [dataclasses.replace(problem, name=f"{problem.name}[{i}]", **{dim: min(size, total - lo)})
            for i, lo in enumerate(range(0, total, size))]


def plan_and_time(arch: ArchConfig, layer: Layer, scheme: str | Scheme | None = None):
    """(schedule, timing) of one GEMM layer: the tiles in execution order and the SimPy counters."""
    scheme = arch.resolve_scheme(scheme)
    model = _CoreModel(arch, scheme)
    return model.plan_and_time(model.problem(layer))


def simulate_network(arch: ArchConfig, network: Network, *, scheme: str | Scheme | None = None,
                     progress: Callable[[int, int, str], None] | None = None,
                     record_events: bool = False) -> NetworkResult:
    """Simulate every layer of ``network`` on ``arch`` (scheme: the arch's unless given).

    ``record_events``: also return every DMA transfer, tile and vector-unit span with its cycle (for a
    timeline); layers run one after another, each starting when the previous one ended."""
    scheme = arch.resolve_scheme(scheme)
    m = arch.model
    model = _CoreModel(arch, scheme)
    results = []
    events: list[tuple[str, str, str, float, float, str]] = []
    recorded: dict[GemmProblem, LayerTiming] = {}
    clock = 0.0
    solved: dict[GemmProblem, tuple[LayerSchedule, LayerTiming]] = {}  # identical layers are mapped once
    chip_solved: dict[GemmProblem, tuple] = {}
    layers = list(network.layers)
    for index, layer in enumerate(layers):
        if progress:
            progress(index, len(layers), layer.name)
        if not layer.is_gemm:
            result = model.vector_layer(layer, results)
            if record_events and result.vector_cycles:
                start = clock - (result.vector_cycles - result.cycles)  # a fused layer overlaps its GEMM's end
                events.append((layer.name, layer.name, "vector", start, result.vector_cycles,
                               f"{result.vector_elementwise_ops:.0f} elementwise, {result.vector_special_ops:.0f} "
                               f"special, {result.vector_reduction_ops:.0f} reduction lane-ops"))
            clock += result.cycles
            results.append(result)
            continue
        problem = model.problem(layer)
        key = dataclasses.replace(problem, name="")
        if model.cores > 1:
            try:
                if key not in chip_solved:
                    chip_solved[key] = model.plan_chip(problem)
            except Hfp8SimError as exc:
                raise Hfp8SimError(f"{network.name}: {exc}") from None
            partition, used, schedules, chip_timing, single = chip_solved[key]
            if chip_timing is not None:
                results.append(_with_zeros(_chip_layer_result(layer, problem, schedules, partition, used,
                                                              chip_timing, model.peak_chip), layer))
                clock += chip_timing.cycles
                continue
            solved[key] = (schedules[0], single)
        try:
            if key not in solved:
                solved[key] = model.plan_and_time(problem)
        except Hfp8SimError as exc:
            raise Hfp8SimError(f"{network.name}: {exc}") from None
        schedule, timing = solved[key]
        if record_events:
            if key not in recorded:
                recorded[key] = simulate_layer(schedule, model.core, model.tile_cycles, record=True)
            events.append((layer.name, layer.name, "layers", clock, timing.cycles, f"{problem.M}x{problem.N}x"
                           f"{problem.K} x{problem.batch}, {timing.tiles} tiles"))
            events.extend((layer.name, name, track, clock + start, duration, detail)
                          for name, track, start, duration, detail in recorded[key].events)
        clock += timing.cycles
        cycles = timing.cycles
        results.append(_with_zeros(LayerResult(
            name=layer.name, op=layer.op, kind="gemm", M=problem.M, N=problem.N, K=problem.K, batch=problem.batch,
            macs=timing.macs, cycles=cycles, compute_cycles=timing.compute_cycles, stall_cycles=timing.stall_cycles,
            fold_cycles=timing.fold_cycles, folds=timing.folds, tiles=timing.tiles,
            utilization=timing.macs / (cycles * model.peak_chip) if cycles else 0.0,
            mapping_efficiency=timing.used_pe_slots / timing.pe_slots if timing.pe_slots else 0.0,
            dram_read_bytes=timing.dram_read_bytes, dram_write_bytes=timing.dram_write_bytes,
            compulsory_dram_bytes=schedule.compulsory_bytes,
            sram_read_bytes=timing.sram_input_read_bytes + timing.sram_weight_read_bytes + timing.sram_output_read_bytes,
            sram_write_bytes=timing.sram_output_write_bytes + timing.sram_input_fill_bytes
            + timing.sram_weight_fill_bytes,
            sram_input_read_bytes=timing.sram_input_read_bytes, sram_input_write_bytes=timing.sram_input_fill_bytes,
            sram_weight_read_bytes=timing.sram_weight_read_bytes,
            sram_weight_write_bytes=timing.sram_weight_fill_bytes,
            sram_output_read_bytes=timing.sram_output_read_bytes,
            sram_output_write_bytes=timing.sram_output_write_bytes,
            interconnect_bytes=timing.interconnect_bytes,
            tile_shape="x".join(str(d) for d in schedule.tile_shape), loop_order=schedule.loop_order,
        ), layer))
    results = [dataclasses.replace(r, energy=model.layer_energy(r)) for r in results]
    return NetworkResult(network.name, m.name, scheme.name, m.clock_ghz, model.peak_chip, tuple(results),
                         arch.to_dict(), tuple(events))


def _with_zeros(result: LayerResult, layer) -> LayerResult:
    """Attach the zero-operand MACs a trace measured for this layer (0 for layers without a trace)."""
    fraction = float(getattr(layer, "zero_mac_fraction", 0.0))
    return dataclasses.replace(result, zero_operand_macs=result.macs * fraction) if fraction else result


def _chip_layer_result(layer: Layer, problem: GemmProblem, schedules: list[LayerSchedule], partition: str,
                       cores: int, timing: ChipLayerTiming, peak_chip: int) -> LayerResult:
    macs = int(timing.total("macs"))
    return LayerResult(
        name=layer.name, op=layer.op, kind="gemm", M=problem.M, N=problem.N, K=problem.K, batch=problem.batch,
        macs=macs, cycles=timing.cycles, compute_cycles=max(t.compute_cycles for t in timing.per_core),
        stall_cycles=timing.cycles - max(t.compute_cycles for t in timing.per_core),
        fold_cycles=timing.total("fold_cycles"), folds=int(timing.total("folds")), tiles=int(timing.total("tiles")),
        utilization=macs / (timing.cycles * peak_chip) if timing.cycles else 0.0,
        mapping_efficiency=timing.total("used_pe_slots") / timing.total("pe_slots") if timing.total("pe_slots") else 0.0,
        dram_read_bytes=timing.total("dram_read_bytes"), dram_write_bytes=timing.total("dram_write_bytes"),
        compulsory_dram_bytes=schedules[0].compulsory_bytes if cores == 1 else
        problem.batch * (problem.M * problem.K * problem.a_bytes + problem.K * problem.N * problem.b_bytes
                         + problem.M * problem.N * problem.out_bytes),
        sram_read_bytes=timing.total("sram_input_read_bytes") + timing.total("sram_weight_read_bytes")
        + timing.total("sram_output_read_bytes"),
        sram_write_bytes=timing.total("sram_output_write_bytes") + timing.total("sram_input_fill_bytes")
        + timing.total("sram_weight_fill_bytes"),
        sram_input_read_bytes=timing.total("sram_input_read_bytes"),
        sram_input_write_bytes=timing.total("sram_input_fill_bytes"),
        sram_weight_read_bytes=timing.total("sram_weight_read_bytes"),
        sram_weight_write_bytes=timing.total("sram_weight_fill_bytes"),
        sram_output_read_bytes=timing.total("sram_output_read_bytes"),
        sram_output_write_bytes=timing.total("sram_output_write_bytes"),
        interconnect_bytes=timing.total("interconnect_bytes"),
        tile_shape="x".join(str(d) for d in schedules[0].tile_shape), loop_order=schedules[0].loop_order,
        vector_cycles=0.0, vector_elementwise_ops=timing.vector_add_ops, cores=cores, partition=partition,
        noc_bytes=timing.noc_bytes, noc_byte_hops=timing.noc_byte_hops)


# ---- traces -----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _TraceGemm:
    """A GEMM layer as a trace recorded it: the datapath's lowering and its measured zero-MAC fraction."""

    name: str
    op: str
    shape: GemmShape
    pass_: str
    zero_mac_fraction: float
    inputs: tuple[str, ...] = ()
    is_gemm = True

    def gemm(self) -> GemmShape:
        return self.shape

    @property
    def output_role(self) -> str:
        return "activation" if self.pass_ == "forward" else "gradient"

    @property
    def producers(self) -> tuple[str, ...]:
        return self.inputs


@dataclasses.dataclass(frozen=True)
class _TraceVector:
    name: str
    op: str
    vector_work: VectorWork
    inputs: tuple[str, ...] = ()
    is_gemm = False

    @property
    def producers(self) -> tuple[str, ...]:
        return self.inputs


@dataclasses.dataclass(frozen=True)
class TraceNetwork:
    """The layers of a trace, in execution order, for the timing model."""

    name: str
    layers: tuple
    tensors: str
    zero_mac_fractions: dict


def _trace_vector_work(entry: dict) -> VectorWork:
    """Lane operations of a non-GEMM trace layer from its op, shape, element and op counts."""
    op, shape = entry["op"], tuple(int(d) for d in entry.get("shape") or (entry["elements"],))
    inputs = tuple(i for i in entry.get("inputs", []) if i)
    try:
        if op in ELEMENTWISE_OPS:
            return vector_work(Elementwise(name=entry["name"], kind=op, shape=shape, inputs=inputs))
        if op == "softmax":
            return vector_work(Softmax(name=entry["name"], rows=math.prod(shape[:-1]), cols=shape[-1]))
        if op in ("layernorm", "batchnorm", "lrn"):
            return vector_work(Norm(name=entry["name"], kind=op, shape=shape))
    except Hfp8SimError:
        pass
    elements, ops = float(entry["elements"]), float(entry.get("ops", entry["elements"]))
    if op in ("maxpool", "avgpool", "global_avgpool"):
        return VectorWork(reduction=ops, in_elements=ops, out_elements=elements)
    if op in ("concat", "reshape"):
        return VectorWork()
    return VectorWork(elementwise=ops, in_elements=elements, out_elements=elements)


def network_from_trace(trace: dict) -> TraceNetwork:
    """The timing model's view of a trace (as ``hfp8sim.traces.load_trace`` returns it)."""
    layers, zeros = [], {}
    for entry in trace["layers"]:
        inputs = tuple(i for i in entry.get("inputs", []) if i)
        if entry.get("gemm") is None:
            layers.append(_TraceVector(entry["name"], entry["op"], _trace_vector_work(entry), inputs))
            continue
        g = entry["gemm"]
        shape = GemmShape(g["M"], g["N"], g["K"], g["batch"], entry.get("a_role", "activation"),
                          entry.get("b_role", "weight"))
        fraction = float(entry.get("zero_mac_fraction") or 0.0)
        zeros[entry["name"]] = fraction
        layers.append(_TraceGemm(entry["name"], entry["op"], shape, entry.get("pass", "forward"), fraction, inputs))
    return TraceNetwork(str(trace["workload"]), tuple(layers), str(trace["tensors"]), zeros)
