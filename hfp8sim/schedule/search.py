"""The schedule search: the best tiling of a GEMM layer on a core, and the best way to split it over the
cores of a chip, both decided by simulating the candidates, for the arch's objective (``mapper.objective``):
time (cycles), energy (pJ) or EDP (pJ x cycles).

The search is exact branch and bound over ``mapper.candidates``: no plan of a candidate costs less than its
lower bound, so candidates are simulated in order of that bound until the bound passes the second-best cost
found (the best two are kept, so the runner-up's cost is exact too).  More room (bigger scratchpads) or more
bandwidth therefore never makes a layer slower under the time objective.  Ties go to the first candidate in
the mapper's order (fewest DRAM bytes first).  The simulator is handed in (a :class:`Simulator`, e.g.
``hfp8sim.timing.simulator.CoreSimulator``) because the timing model sits above the schedule in the layers
of the package; so is the pricing of an objective other than time (a :class:`CandidateCost`, e.g.
``hfp8sim.run.EnergyCost``), because the energy model sits above both.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from typing import Any, NamedTuple, Protocol

from ..core.cycles import whole_cycles
from ..core.model import CoreModel, CoreTiming, element_bytes
from ..errors import Hfp8SimError
from ..vocabulary import Objective, Partition
from .conv_footprint import conv_geometry
from .mapper import ArraySpec, Candidate, GemmProblem, LayerSchedule, Tile, build_schedule, candidates, \
    first_tile_bytes, tile_classes
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

    def counted(self, problem: GemmProblem, candidate: Candidate) -> Any: ...


class CandidateCost(Protocol):
    """What the search minimises: the cost of a simulated plan, and a lower bound on the cost of any plan of
    a candidate tiling from the counts all its schedules share (``Simulator.counted``) and a lower bound on
    its cycles.  Time is the search's own (:class:`CyclesCost`); energy and EDP price counted actions with
    the energy model, above the schedule, so the run layer hands them in."""

    objective: Objective

    def of_plan(self, problem: GemmProblem, schedules: list[LayerSchedule], timing: Any) -> float: ...

    def lower_bound(self, problem: GemmProblem, candidate: Candidate, counted: Any, cycles_bound: float
                    ) -> float: ...

    def give_up_cycles(self, cost: float) -> float | None:
        """Simulated cycles after which a plan surely costs more than ``cost`` (None: not known)."""


def gemm_problem(layer, core: CoreModel) -> GemmProblem:
    """What the mapper needs of a GEMM layer on ``core``: its shape and the element bytes of its operands
    (by role), of its output and of the partial sums kept between folds."""
    g = layer.gemm()
    conv = conv_geometry(layer) if core.conv_input_layout == "tensor" else None
    return GemmProblem(layer.name, g.M, g.N, g.K, g.batch, core.element_bytes(g.a_role),
                       core.element_bytes(g.b_role), core.element_bytes(layer.output_role),
                       element_bytes(core.psum_format), conv)


def _pipeline_bound(schedule: LayerSchedule, sim: Simulator, bw: float, latency: float,
                    busy: dict[tuple[tuple[int, int, int], bool], float] | None = None) -> float:
    """A tighter lower bound from the tiles themselves: the earliest times that satisfy conditions every run
    of the engine meets, computed tile by tile (no SimPy).

    The loader fetches one tile's operands at a time, and only into a free input slot (freed when the array
    finishes the tile ``slots`` places earlier); a tile's transfers take at least their latency + bytes /
    bandwidth on the channel, and hold the DMA engines for latency + bytes / bandwidth each; the array takes
    tiles in order, each after its loads, busy for its folds stretched by the edges; a tile that starts new
    outputs needs a free output slot (all but ``slots - 1`` of the earlier output tiles stored, each at least
    latency + bytes / bandwidth after its last tile); the layer ends with the last store.  Every condition
    holds in the simulation, which only adds waits (stores and loads sharing the channel), so its times are
    never earlier than these.  ``busy``: busy cycles by (tile dims, first k) known so far (filled in here)."""
    if not math.isfinite(bw):
        return 0.0
    core = sim.core
    in_slots = 2 if core.double_buffered_inputs else 1
    out_slots = 2 if core.double_buffered_output else 1
    busy = {} if busy is None else busy
    loads_done = compute_end = 0.0
    computed: list[float] = []  # when the array finished each tile
    stored: list[float] = []  # the ``out_slots`` latest earliest ends of the output tiles' stores (a heap)
    engines = core.dma_engines
    for index, (_, _, m, n, k, load_a, load_b, store_bytes, first_k) in enumerate(schedule.tiles):
        start = max(loads_done, computed[index - in_slots]) if index >= in_slots else loads_done
        if load_a > 0 or load_b > 0:
            both = load_a > 0 and load_b > 0
            on_bus = (load_a + load_b if both else load_a if load_a > 0 else load_b) / bw
            start += max(latency + on_bus, (2 * latency + on_bus) / min(engines, 2)) if both else latency + on_bus
        loads_done = start
        begin = max(loads_done, compute_end)
        if first_k and len(stored) == out_slots:
            begin = max(begin, stored[0])  # stores may end out of order: the out_slots-th latest
        key = ((m[1] - m[0], n[1] - n[0], k[1] - k[0]), first_k)
        if key not in busy:
            busy[key] = sim.busy_cycles(schedule.tiles[index], schedule)
        compute_end = begin + busy[key]
        computed.append(compute_end)
        if store_bytes > 0:
            store_end = compute_end + latency + store_bytes / bw
            (heapq.heappush if len(stored) < out_slots else heapq.heappushpop)(stored, store_end)
    return max(stored + [compute_end])


def _candidate_bound(problem: GemmProblem, cand: Candidate, sim: Simulator, bw: float, latency: float,
                     busy_cycles: float) -> float:
    """No schedule of ``cand`` is faster than the largest of: the first tile's loads + the array's busy cycles
    (``busy_cycles``: every tile's folds, stretched by the edges; the array is serial and waits at both ends)
    + the last tile's store; all loads before the last tile computes and stores; and
    :func:`_transfer_bound`.  With infinite bandwidth, loads and stores take no time and the bound is exact:
    the busy cycles."""
    if not math.isfinite(bw):
        return busy_cycles
    mt, nt, kt = (min(d, t) for d, t in zip((problem.M, problem.N, problem.K), cand.tile_shape))
    a_first, b_first = first_tile_bytes(problem, mt, nt, kt)  # the im2col operand's tile is its footprint
    first_load = max(whole_cycles(a_first, bw), whole_cycles(b_first, bw)) + latency
    # the last tile is the corner tile of the last m-, n- and k-blocks (k is innermost)
    m_last, n_last, k_last = (full - (math.ceil(full / size) - 1) * size
                              for full, size in zip((problem.M, problem.N, problem.K), (mt, nt, kt)))
    last_store = m_last * n_last * problem.out_bytes / bw + latency
    last_compute = sim.tile_cycles(m_last, n_last, k_last)[0]
    store_bytes = problem.batch * problem.M * problem.N * problem.out_bytes
    return max(first_load + busy_cycles + last_store, _transfer_bound(problem, cand, sim, bw, latency),
               (cand.dram_bytes - store_bytes) / bw + latency + last_compute + last_store)


def _transfer_bound(problem: GemmProblem, cand: Candidate, sim: Simulator, bw: float, latency: float) -> float:
    """The part of :func:`_candidate_bound` known from the candidate alone (no tile is timed): all DRAM bytes
    / bandwidth, and the DMA engines' time (each transfer holds an engine for its latency and bytes /
    bandwidth; every operand block is fetched at least once and every output tile stored once)."""
    if not math.isfinite(bw):
        return 0.0
    m_blocks, n_blocks, k_blocks = (math.ceil(full / size) for full, size in
                                    zip((problem.M, problem.N, problem.K), cand.tile_shape))
    a_blocks, b_blocks = m_blocks * k_blocks, n_blocks * k_blocks
    if problem.conv is not None:  # an im2col operand's tile may load nothing when its footprint is on chip
        a_blocks, b_blocks = (0, b_blocks) if problem.conv.operand == "a" else (a_blocks, 0)
    transfers = problem.batch * (a_blocks + b_blocks + m_blocks * n_blocks)
    return max(cand.dram_bytes / bw, (transfers * latency + cand.dram_bytes / bw) / sim.core.dma_engines)


class CyclesCost:
    """The time objective: a plan costs its simulated cycles, bounded by the candidate's cycle bound."""

    objective = Objective.TIME

    def of_plan(self, problem: GemmProblem, schedules: list[LayerSchedule], timing: Any) -> float:
        return timing.cycles

    def lower_bound(self, problem: GemmProblem, candidate: Candidate, counted: Any, cycles_bound: float) -> float:
        return cycles_bound

    def give_up_cycles(self, cost: float) -> float | None:
        return cost


class _Podium:
    """The two cheapest plans offered so far, ranked by (cost, mapper order): the best and the runner-up.
    A plan is anything; the runner-up may be a bare cost (``plan`` None) known from a search below."""

    def __init__(self) -> None:
        self.places: list[tuple[float, int, Any]] = []

    def offer(self, cost: float, order: int, plan: Any) -> None:
        self.places = sorted([*self.places, (cost, order, plan)], key=lambda place: place[:2])[:2]

    def excludes(self, bound: float, order: int) -> bool:
        """Whether a candidate that costs at least ``bound`` can no longer reach the podium."""
        return len(self.places) == 2 and (bound, order) > self.places[1][:2]

    def give_up_after(self, cost: CandidateCost) -> float | None:
        """Simulated cycles after which a plan is surely off the podium (None: simulate it to the end)."""
        return cost.give_up_cycles(self.places[1][0]) if len(self.places) == 2 else None

    @property
    def best(self) -> tuple[float, Any]:
        return self.places[0][0], self.places[0][2]

    @property
    def runner_up(self) -> float | None:
        return self.places[1][0] if len(self.places) == 2 else None


class ScheduleChoice(NamedTuple):
    """The chosen plan of a layer on one core, its cost under the objective, and the runner-up's cost (the
    best other candidate's; None when there was no other)."""

    schedule: LayerSchedule
    timing: Any  # LayerTiming
    cost: float
    runner_up: float | None


class _Ranked(NamedTuple):
    bound: float  # lower bound on the objective's cost
    order: int  # place in the mapper's order (ties)
    candidate: Candidate
    counted: Any  # LayerTiming: the counts every schedule of the candidate has (Simulator.counted)
    cycles_bound: float


class _Bounds:
    """The lower bounds of one problem's candidates under an objective, each computed when the search first
    needs it: a quick one from the candidate alone (:func:`_transfer_bound` under time, nothing under the
    energy objectives) and the full one (:func:`_candidate_bound` and the objective's bound on top)."""

    def __init__(self, problem: GemmProblem, sim: Simulator, cost: CandidateCost, bw: float, latency: float):
        self.problem, self.sim, self.cost, self.bw, self.latency = problem, sim, cost, bw, latency
        self.busy: dict[tuple[tuple[int, int, int], bool], float] = {}  # (tile dims, first k) -> busy cycles

    def tile_busy(self, dims: tuple[int, int, int], first_k: bool) -> float:
        key = (dims, first_k)
        if key not in self.busy:
            tile = Tile(0, 0, (0, dims[0]), (0, dims[1]), (0, dims[2]), 0.0, 0.0, 0.0, first_k)
            self.busy[key] = self.sim.busy_cycles(tile, LayerSchedule(self.problem, None, dims, "", ()))
        return self.busy[key]

    def quick(self, cand: Candidate) -> float:
        if self.cost.objective != Objective.TIME:
            return -math.inf
        return _transfer_bound(self.problem, cand, self.sim, self.bw, self.latency)

    def full(self, order: int, cand: Candidate) -> _Ranked:
        if self.cost.objective == Objective.TIME:  # only the busy cycles of the counts matter (as counted sums them)
            counted, busy = None, 0
            for dims, first_k, count in tile_classes(self.problem, cand.tile_shape):
                busy += count * self.tile_busy(dims, first_k)
        else:
            counted = self.sim.counted(self.problem, cand)
            busy = counted.compute_cycles
        cycles = _candidate_bound(self.problem, cand, self.sim, self.bw, self.latency, busy)
        return _Ranked(self.cost.lower_bound(self.problem, cand, counted, cycles), order, cand, counted, cycles)


def _in_bound_order(bounds: _Bounds, array: ArraySpec):
    """Every candidate with its lower bounds, cheapest bound first (ties: the mapper's order), each full bound
    computed only when its quick bound (never above it) reaches the front: so the order is the full bounds'
    order, and a search that stops early never computes the full bounds behind it."""
    heap: list[tuple[float, int, _Ranked | None, Candidate]] = [
        (bounds.quick(cand), order, None, cand) for order, cand in enumerate(candidates(bounds.problem, array))]
    heapq.heapify(heap)  # (bound, order) is unique per candidate, so entries never compare further
    while heap:
        _, order, ranked, cand = heapq.heappop(heap)
        if ranked is None:
            ranked = bounds.full(order, cand)
            heapq.heappush(heap, (ranked.bound, order, ranked, cand))
        else:
            yield ranked


def _ranked_candidates(problem: GemmProblem, array: ArraySpec, sim: Simulator, cost: CandidateCost,
                       bw: float, latency: float) -> list[_Ranked]:
    """Every candidate with its lower bounds, cheapest bound first (ties: the mapper's order)."""
    return list(_in_bound_order(_Bounds(problem, sim, cost, bw, latency), array))


def best_schedule(problem: GemmProblem, array: ArraySpec, sim: Simulator, cost: CandidateCost | None = None
                  ) -> ScheduleChoice:
    """The candidate tiling of least cost (ties: the first in the mapper's order), and the runner-up's cost."""
    cost = cost or CyclesCost()
    bw = sim.core.dram_bytes_per_cycle
    latency = sim.core.dram_latency_cycles if math.isfinite(bw) else 0.0
    bounds = _Bounds(problem, sim, cost, bw, latency)
    ranked = _in_bound_order(bounds, array)
    if not math.isfinite(bw) and cost.objective == Objective.TIME:
        return _ideal_memory_fastest(problem, array, sim, list(itertools.islice(ranked, 2)))
    podium = _Podium()
    for entry in ranked:
        if podium.excludes(entry.bound, entry.order):
            break
        schedule = build_schedule(problem, array, entry.candidate)
        if podium.runner_up is not None:
            pipeline = _pipeline_bound(schedule, sim, bw, latency, bounds.busy)  # O(tiles): once it can exclude
            if pipeline > entry.cycles_bound and podium.excludes(
                    cost.lower_bound(problem, entry.candidate, entry.counted, pipeline), entry.order):
                continue
        timing = sim.simulate(schedule, give_up_after=podium.give_up_after(cost))
        if timing is not None:
            podium.offer(cost.of_plan(problem, [schedule], timing), entry.order, (schedule, timing))
    best_cost, (schedule, timing) = podium.best
    return ScheduleChoice(schedule, timing, best_cost, podium.runner_up)


def _ideal_memory_fastest(problem: GemmProblem, array: ArraySpec, sim: Simulator, ranked: list[_Ranked]
                          ) -> ScheduleChoice:
    """With infinite DRAM bandwidth every load and store takes no time, so a schedule's cycles are exactly
    its array's busy cycles (each tile's folds, stretched by the edges: the candidate's bound): the ranking
    is final and only the winner is simulated, for its counts.  ``ranked``: the first two of the ranking (or
    the only one)."""
    best = ranked[0]
    schedule = build_schedule(problem, array, best.candidate)
    timing = sim.simulate(schedule)
    # the closed form is what makes skipping the simulations exact: a disagreement is a bug, not a choice
    assert math.isclose(timing.cycles, best.bound, rel_tol=1e-9), (problem.name, timing.cycles, best.bound)
    return ScheduleChoice(schedule, timing, timing.cycles, ranked[1].bound if len(ranked) > 1 else None)


def plan_layer(problem: GemmProblem, sim: Simulator, cost: CandidateCost | None = None) -> ScheduleChoice:
    """The plan of a GEMM layer on one core; SCALE-Sim mode maps a layer as one piece."""
    model = sim.model
    if model.scalesim_mode:
        whole = Candidate((problem.M, problem.N, problem.K), "n,m,k", 0.0, problem.batch)
        schedule = build_schedule(problem, model.array, whole)
        timing = sim.simulate(schedule)
        return ScheduleChoice(schedule, timing, (cost or CyclesCost()).of_plan(problem, [schedule], timing), None)
    return best_schedule(problem, model.array, sim, cost)


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
    cost: float = 0.0  # under the objective
    runner_up: float | None = None  # the best other plan's cost (other tilings and partitions)


def plan_chip(problem: GemmProblem, sim: Simulator, cost: CandidateCost | None = None) -> ChipPlan:
    """The best way under the objective to run a GEMM layer on the chip: one core alone with every tiling
    (which wins for layers too small to split), and every allowed partition over the cores, by simulation."""
    cost = cost or CyclesCost()
    model = sim.model
    single = plan_layer(problem, sim, cost)
    podium = _Podium()
    podium.offer(single.cost, 0, ChipPlan("single core", 1, [single.schedule], None, single.timing))
    if single.runner_up is not None:
        podium.offer(single.runner_up, 1, None)  # another tiling on one core
    if model.cores > 1 and not model.scalesim_mode:
        for order, partition in enumerate(model.partitions, start=2):
            plan = _partitioned(problem, partition, sim, cost, podium.give_up_after(cost))
            if plan is not None:
                podium.offer(plan.cost, order, plan)
    best_cost, best = podium.best
    return best._replace(cost=best_cost, runner_up=podium.runner_up)


def _partitioned(problem: GemmProblem, partition: Partition, sim: Simulator, cost: CandidateCost,
                 give_up_after: float | None) -> ChipPlan | None:
    """The layer split over the cores by ``partition``, every core with the fastest tiling of the first part
    (under every objective: so each objective chooses among the same plans, and no objective's choice is
    worse under another objective than that objective's own choice); None when the partition does not apply
    or the simulation gave up."""
    model = sim.model
    parts = split_problem(problem, partition, model.cores)
    if len(parts) < 2:
        return None
    if partition == Partition.REDUCTION and \
            problem.batch * problem.M * problem.N * problem.psum_bytes > model.array.output_bytes:
        return None  # partial outputs must stay on chip until the cross-core reduction
    try:
        lead = plan_layer(parts[0], sim).schedule
    except Hfp8SimError:
        return None
    shape = Candidate(lead.tile_shape, lead.loop_order, 0.0, 0)
    schedules = [build_schedule(part, model.array, shape) for part in parts]
    timing = sim.simulate_chip(schedules, partition, give_up_after=give_up_after)
    if timing is None:
        return None
    return ChipPlan(str(partition), len(parts), schedules, timing, None, cost.of_plan(problem, schedules, timing))
