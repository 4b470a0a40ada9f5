"""Where a workload, an arch config and a scheme meet the timing model: ``simulate_network``.

The story of a run:

1. **Resolve** the core model (``hfp8sim.core.CoreModel``) of the arch under the scheme: array, formats,
   accumulation contract, scratchpads, DRAM, vector unit, chip: read once, used by everything below.
2. **Simulate each layer.**  A GEMM layer (conv, linear, attention matmul) is planned by the schedule search
   (``schedule.search``): the best tiling under the arch's ``mapper.objective`` by SimPy simulation
   (``timing``), and on a chip of several cores the best partition; identical layers are planned once.  The
   energy and EDP objectives are priced here (:class:`EnergyCost`), where timing and energy meet.  A non-GEMM layer runs on the vector unit
   (``timing.layer_results``), fused with the GEMM that produced its input when it can be.
3. **Collect** the rows, priced by the energy model (``energy.accounting``), into a ``NetworkResult``.

The functional datapath is not needed for timing; it meets the timing model through the core model (the same
array and fold order) and through traces (``traces.timing_view``), which carry measured tensor statistics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .config.arch import ArchConfig
from .core.model import CoreModel
from .energy.accounting import EnergyAccountant
from .errors import Hfp8SimError
from .formats.spec import Scheme
from .results import LayerResult, NetworkResult
from .schedule.mapper import Candidate, GemmProblem, LayerSchedule, candidates
from .schedule.search import CandidateCost, ChipPlan, gemm_problem, plan_chip, plan_layer
from .timing.engine import LayerTiming
from .timing.layer_results import gemm_layer_result, vector_layer_result
from .timing.simulator import CoreSimulator
from .traces.timing_view import TraceNetwork
from .workloads import Network
from .vocabulary import Objective
from .workloads.layers import Layer

Event = tuple[str, str, str, float, float, str]  # (layer, name, track, start cycle, duration, detail)


def core_model(arch: ArchConfig, scheme: str | Scheme | None = None) -> CoreModel:
    """The core model of ``arch`` under ``scheme`` (a name or a Scheme; default: the arch's)."""
    return CoreModel.build(arch, arch.resolve_scheme(scheme))


def plan_and_time(arch: ArchConfig, layer: Layer, scheme: str | Scheme | None = None
                  ) -> tuple[LayerSchedule, LayerTiming]:
    """(schedule, timing) of one GEMM layer on one core: the tiles in execution order and the SimPy counters."""
    model = core_model(arch, scheme)
    choice = plan_layer(gemm_problem(layer, model), CoreSimulator.of(model), objective_cost(model))
    return choice.schedule, choice.timing


class EnergyCost:
    """The energy and EDP objectives of the schedule search: a plan's row priced by the run's accountant.

    The lower bound of a candidate prices a row with the counts every schedule of it has (MACs, PE
    registers, DRAM bytes, scratchpad reads at the array edges, edge bytes; ``Simulator.counted``) and the
    candidate's lower bound on cycles for the time-proportional terms; only the scratchpad fills are left out
    (their split between pads is known per tile only).  Every term of the energy model grows with its count,
    so this never exceeds the energy of a schedule of the candidate; EDP's bound is energy bound x cycle
    bound."""

    def __init__(self, model: CoreModel, accountant: EnergyAccountant, objective: Objective):
        self.model, self.accountant, self.objective = model, accountant, objective

    def of_plan(self, problem: GemmProblem, schedules: list[LayerSchedule], timing) -> float:
        """The objective's cost of a simulated plan (one core's LayerTiming or a chip's ChipLayerTiming)."""
        row = gemm_layer_result(problem.name, "", problem, schedules, timing, self.model.peak_chip_macs_per_cycle)
        energy = self.accountant.price(row)["energy_total_pj"]
        return energy * row.cycles if self.objective == Objective.EDP else energy

    def lower_bound(self, problem: GemmProblem, candidate: Candidate, counted: LayerTiming,
                    cycles_bound: float) -> float:
        stub = LayerSchedule(problem, self.model.array, candidate.tile_shape, candidate.loop_order, ())
        return self.of_plan(problem, [stub], dataclasses.replace(counted, cycles=cycles_bound))

    def give_up_cycles(self, cost: float) -> float | None:
        return None  # energy is not a function of cycles alone


def objective_cost(model: CoreModel, accountant: EnergyAccountant | None = None) -> CandidateCost | None:
    """What the schedule search is handed to price the core's objective (None: time, the search's own)."""
    if model.objective == Objective.TIME:
        return None
    return EnergyCost(model, accountant or EnergyAccountant(model), model.objective)


class _NetworkRun:
    """The state of one network run: the core, its simulator, the plans made so far, the clock."""

    def __init__(self, model: CoreModel, record_events: bool, cost: CandidateCost | None = None):
        self.model = model
        self.sim = CoreSimulator.of(model)
        self.cost = cost
        self.record_events = record_events
        self.plans: dict[GemmProblem, ChipPlan] = {}  # identical layers (same problem but the name) plan once
        self.recorded: dict[GemmProblem, LayerTiming] = {}
        self.events: list[Event] = []
        self.clock = 0.0

    def plan(self, problem: GemmProblem, network: str) -> ChipPlan:
        key = dataclasses.replace(problem, name="")
        if key not in self.plans:
            try:
                self.plans[key] = plan_chip(problem, self.sim, self.cost)
            except Hfp8SimError as exc:
                raise Hfp8SimError(f"{network}: {exc}") from None
        return self.plans[key]

    def gemm(self, layer: Layer, network: str) -> LayerResult:
        problem = gemm_problem(layer, self.model)
        plan = self.plan(problem, network)
        if plan.chip_timing is not None:
            result = gemm_layer_result(layer.name, layer.op, problem, plan.schedules, plan.chip_timing,
                                       self.model.peak_chip_macs_per_cycle, partition=plan.partition)
        else:
            if self.record_events:
                self._record_tiles(layer, problem, plan)
            result = gemm_layer_result(layer.name, layer.op, problem, plan.schedules, plan.single_timing,
                                       self.model.peak_chip_macs_per_cycle)
        result = dataclasses.replace(result, objective=str(self.model.objective), runner_up_cost=plan.runner_up)
        self.clock += result.cycles
        fraction = float(getattr(layer, "zero_mac_fraction", 0.0))  # measured by a trace, else 0
        return dataclasses.replace(result, zero_operand_macs=result.macs * fraction) if fraction else result

    def _record_tiles(self, layer: Layer, problem: GemmProblem, plan: ChipPlan) -> None:
        key = dataclasses.replace(problem, name="")
        if key not in self.recorded:
            self.recorded[key] = self.sim.simulate(plan.schedules[0], record=True)
        cycles = plan.single_timing.cycles
        self.events.append((layer.name, layer.name, "layers", self.clock, cycles,
                            f"{problem.M}x{problem.N}x{problem.K} x{problem.batch}, {plan.single_timing.tiles} tiles"))
        self.events.extend((layer.name, name, track, self.clock + start, duration, detail)
                           for name, track, start, duration, detail in self.recorded[key].events)

    def vector(self, layer: Layer, previous: LayerResult | None) -> LayerResult:
        work = layer.vector_work()
        producer = previous if (previous is not None and previous.kind == "gemm" and layer.producers
                                and layer.producers[0] == previous.name) else None
        result = vector_layer_result(layer.name, layer.op, work, self.model, fuse_with=producer)
        if self.record_events and result.vector_cycles:
            start = self.clock - (result.vector_cycles - result.cycles)  # a fused layer overlaps its GEMM's end
            self.events.append((layer.name, layer.name, "vector", start, result.vector_cycles,
                                f"{result.vector_elementwise_ops:.0f} elementwise, {result.vector_special_ops:.0f} "
                                f"special, {result.vector_reduction_ops:.0f} reduction lane-ops"))
        self.clock += result.cycles
        return result


def check_limits(arch: ArchConfig, network: Network | TraceNetwork, scheme: str | Scheme | None = None) -> None:
    """Refuse, before anything is simulated, a GEMM layer that needs more tiles than
    ``limits.MAX_TILES_PER_LAYER`` on this core (the mapper's candidate tilings are cheap to count and
    cached for the run that follows).  SCALE-Sim mode maps a layer as one piece and has nothing to bound."""
    model = core_model(arch, scheme)
    if model.scalesim_mode:
        return
    for layer in network.layers:
        if layer.is_gemm:
            try:
                candidates(gemm_problem(layer, model), model.array)
            except Hfp8SimError as exc:
                raise Hfp8SimError(f"{network.name}: {exc}") from None  # as the planner says it


def simulate_network(arch: ArchConfig, network: Network | TraceNetwork, *, scheme: str | Scheme | None = None,
                     progress: Callable[[int, int, str], None] | None = None,
                     record_events: bool = False) -> NetworkResult:
    """Simulate every layer of ``network`` on ``arch`` (scheme: the arch's unless given).

    ``record_events``: also return every DMA transfer, tile and vector-unit span with its cycle (for a
    timeline); layers run one after another, each starting when the previous one ended."""
    check_limits(arch, network, scheme)
    model = core_model(arch, scheme)
    accountant = EnergyAccountant(model)  # a bad energy section fails before any simulation
    run = _NetworkRun(model, record_events, objective_cost(model, accountant))
    layers = list(network.layers)
    results: list[LayerResult] = []
    for index, layer in enumerate(layers):
        if progress:
            progress(index, len(layers), layer.name)
        results.append(run.gemm(layer, network.name) if layer.is_gemm else
                       run.vector(layer, results[-1] if results else None))
    results = [dataclasses.replace(r, energy=accountant.price(r)) for r in results]
    return NetworkResult(network.name, model.name, model.scheme.name, model.clock_ghz,
                         model.peak_chip_macs_per_cycle, tuple(results), arch.to_dict(), tuple(run.events))
