"""The schedule search: the fastest tiling of a GEMM layer on a core, and the fastest way to split it over
the cores of a chip, both decided by simulating the candidates.

The search is exact branch and bound over ``mapper.candidates``: no schedule can beat its lower bound, so
candidates are simulated in order of that bound until the bound reaches the best time found.  More room
(bigger scratchpads) or more bandwidth therefore never makes a layer slower.  The simulator is handed in (a
:class:`Simulator`, e.g. ``hfp8sim.timing.simulator.CoreSimulator``) because the timing model sits above
the schedule in the layers of the package.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Protocol

from ..core.cycles import whole_cycles
from ..core.model import CoreModel, CoreTiming, element_bytes
from ..errors import Hfp8SimError
from ..vocabulary import Partition
from .conv_footprint import conv_geometry
from .mapper import ArraySpec, Candidate, GemmProblem, LayerSchedule, Tile, build_schedule, candidates, \
    first_tile_bytes, tile_shape_counts
from .tile_cycles import TileCyclesFn


class Simulator(Protocol):
    """What the search needs of a timing model (``hfp8sim.timing.simulator.CoreSimulator``)."""

    model: CoreModel
    tile_cycles: TileCyclesFn

    @property
    def core(self) -> CoreTiming: ...

    def simulate(self, schedule: LayerSchedule, *, give_up_after: float | None = None) -> Any: ...

    def busy_cycles(self, tile: Tile, schedule: LayerSchedule) -> float: ...

    def simulate_chip(self, schedules: list[LayerSchedule], partition: str, *,
                      give_up_after: float | None = None) -> Any: ...


def gemm_problem(layer, core: CoreModel) -> GemmProblem:
    """What the mapper needs of a GEMM layer on ``core``: its shape and the element bytes of its operands
    (by role), of its output and of the partial sums kept between folds."""
    g = layer.gemm()
    conv = conv_geometry(layer) if core.conv_input_layout == "tensor" else None
    return GemmProblem(layer.name, g.M, g.N, g.K, g.batch, core.element_bytes(g.a_role),
                       core.element_bytes(g.b_role), core.element_bytes(layer.output_role),
                       element_bytes(core.psum_format), conv)


def _flow_shop_bound(schedule: LayerSchedule, sim: Simulator, bw: float, latency: float) -> float:
    """A tighter lower bound from the tiles themselves: loads cross the DRAM channel one after another and the
    array computes tiles one after another, each after its own loads, so for every tile k the layer takes at
    least (loads of tiles 0..k) + (busy cycles of tiles k..end) + the last store.  Each load and store is
    one DMA transfer holding the channel whole cycles, rounded up as the channel rounds it."""
    if not math.isfinite(bw):
        return 0.0
    loads = [whole_cycles(t.load_a_bytes, bw) + whole_cycles(t.load_b_bytes, bw) for t in schedule.tiles]
    computes = [sim.busy_cycles(t, schedule) for t in schedule.tiles]
    best, loaded, remaining = 0, 0, sum(computes)
    for load, compute in zip(loads, computes):
        loaded += load
        best = max(best, loaded + remaining)
        remaining -= compute
    last = schedule.tiles[-1]
    return best + latency + whole_cycles(last.store_bytes, bw)


def _candidate_bound(problem: GemmProblem, cand: Candidate, tile_cycles: TileCyclesFn, bw: float,
                     latency: float) -> float:
    """No schedule of ``cand`` is faster than the larger of: the first tile's loads + all fold cycles + the
    last tile's store (the array is serial and waits at both ends); all DRAM bytes / bandwidth; and all loads
    before the last tile computes and stores.  Transfers hold the channel whole cycles; a sum of per-transfer
    ceilings is at least the ceiling of the summed bytes, so the all-bytes terms round their sums up once."""
    shapes = tile_shape_counts(problem, cand.tile_shape)
    fold_sum = sum(count * tile_cycles(*shape)[0] for shape, count in shapes)
    if not math.isfinite(bw):
        return fold_sum
    mt, nt, kt = (min(d, t) for d, t in zip((problem.M, problem.N, problem.K), cand.tile_shape))
    a_first, b_first = first_tile_bytes(problem, mt, nt, kt)  # the im2col operand's tile is its footprint
    first_load = max(whole_cycles(a_first, bw), whole_cycles(b_first, bw)) + latency
    # the last tile is the corner tile of the last m-, n- and k-blocks (k is innermost)
    m_last, n_last, k_last = (full - (math.ceil(full / size) - 1) * size
                              for full, size in zip((problem.M, problem.N, problem.K), (mt, nt, kt)))
    last_store = whole_cycles(m_last * n_last * problem.out_bytes, bw) + latency
    last_compute = tile_cycles(m_last, n_last, k_last)[0]
    store_bytes = problem.batch * problem.M * problem.N * problem.out_bytes
    return max(first_load + fold_sum + last_store, whole_cycles(cand.dram_bytes, bw),
               whole_cycles(cand.dram_bytes - store_bytes, bw) + latency + last_compute + last_store)


def fastest_schedule(problem: GemmProblem, array: ArraySpec, sim: Simulator) -> tuple[LayerSchedule, Any]:
    """The candidate tiling with the fewest simulated cycles (ties: the first in the mapper's order)."""
    bw = sim.core.dram_bytes_per_cycle
    latency = sim.core.dram_latency_cycles if math.isfinite(bw) else 0.0
    bounded = sorted(((_candidate_bound(problem, cand, sim.tile_cycles, bw, latency), order, cand)
                      for order, cand in enumerate(candidates(problem, array))), key=lambda item: item[:2])
    best = None
    for bound, _, cand in bounded:
        if best is not None and bound >= best[1].cycles:
            break
        schedule = build_schedule(problem, array, cand)
        if best is not None and _flow_shop_bound(schedule, sim, bw, latency) >= best[1].cycles:
            continue
        timing = sim.simulate(schedule, give_up_after=best[1].cycles if best else None)
        if timing is not None and (best is None or timing.cycles < best[1].cycles):
            best = (schedule, timing)
    assert best is not None, "the mapper always offers at least one candidate or raises"
    return best


def plan_layer(problem: GemmProblem, sim: Simulator) -> tuple[LayerSchedule, Any]:
    """(schedule, timing) of a GEMM layer on one core; SCALE-Sim mode maps a layer as one piece."""
    model = sim.model
    if model.scalesim_mode:
        whole = Candidate((problem.M, problem.N, problem.K), "n,m,k", 0.0, problem.batch)
        schedule = build_schedule(problem, model.array, whole)
        return schedule, sim.simulate(schedule)
    return fastest_schedule(problem, model.array, sim)


def split_problem(problem: GemmProblem, partition: Partition, cores: int) -> list[GemmProblem]:
    """The per-core sub-problems of a partition (fewer than ``cores`` when the split dimension is small)."""
    dim = {Partition.OUTPUT_CHANNELS: "N", Partition.ROWS: "M", Partition.REDUCTION: "K"}[partition]
    total = getattr(problem, dim)
    size = math.ceil(total / cores)
    return [dataclasses.replace(problem, name=f"{problem.name}[{i}]", **{dim: min(size, total - lo)},
                                conv=problem.conv.shifted(dim, lo) if problem.conv is not None else None)
            for i, lo in enumerate(range(0, total, size))]


class ChipPlan(NamedTuple):
    """How a GEMM layer runs on a chip: one core alone (``chip_timing`` None), or split over ``cores``."""

    partition: str  # "single core" or a Partition
    cores: int
    schedules: list[LayerSchedule]
    chip_timing: Any  # ChipLayerTiming when split
    single_timing: Any  # LayerTiming when on one core


def plan_chip(problem: GemmProblem, sim: Simulator) -> ChipPlan:
    """The fastest way to run a GEMM layer on the chip: every allowed partition over the cores, and one core
    alone (which wins for layers too small to split), by simulation."""
    model = sim.model
    schedule, single = plan_layer(problem, sim)
    best, best_cycles = ChipPlan("single core", 1, [schedule], None, single), single.cycles
    if model.cores == 1 or model.scalesim_mode:
        return best
    for partition in model.partitions:
        parts = split_problem(problem, partition, model.cores)
        if len(parts) < 2:
            continue
        if partition == Partition.REDUCTION and \
                problem.batch * problem.M * problem.N * problem.psum_bytes > model.array.output_bytes:
            continue  # partial outputs must stay on chip until the cross-core reduction
        try:
            lead, _ = plan_layer(parts[0], sim)
        except Hfp8SimError:
            continue
        shape = Candidate(lead.tile_shape, lead.loop_order, 0.0, 0)
        schedules = [build_schedule(part, model.array, shape) for part in parts]
        timing = sim.simulate_chip(schedules, partition, give_up_after=best_cycles)
        if timing is not None and timing.cycles < best_cycles:
            best, best_cycles = ChipPlan(str(partition), len(parts), schedules, timing, None), timing.cycles
    return best
