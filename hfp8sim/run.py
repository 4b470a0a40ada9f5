"""Where a workload, an arch config and a scheme meet the timing model: ``simulate_network``.

The story of a run:

1. **Resolve** the core model (``hfp8sim.core.CoreModel``) of the arch under the scheme: array, formats,
   accumulation contract, scratchpads, DRAM, vector unit, chip: read once, used by everything below.
2. **Simulate each layer.**  A GEMM layer (conv, linear, attention matmul) is planned by the schedule search
   (``schedule.search``): the best tiling under the arch's ``mapper.objective`` by SimPy simulation
   (``timing``), and on a chip of several cores the best partition; identical layers are planned once.  The
   energy and EDP objectives are priced here (:class:`EnergyCost`), where timing and energy meet.  A grouped
   conv also gets its packed and vector-unit mappings (``schedule.grouped``), the objective choosing.  A
   non-GEMM layer runs on the vector unit (``timing.layer_results``), in the output stage of the GEMM whose
   tile it works on when ``timing.fusion`` places it there, else alone, its bytes through the DRAM channel.
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
from .schedule import grouped
from .schedule.mapper import Candidate, GemmProblem, LayerSchedule, candidates
from .schedule.search import CandidateCost, ChipPlan, gemm_problem, plan_chip, plan_layer
from .timing.engine import LayerTiming
from .timing.fusion import Placement, plan_placements
from .timing.layer_results import FusedGroup, gemm_layer_result, vector_conv_layer_result, vector_layer_result
from .timing.simulator import CoreSimulator
from .traces.timing_view import TraceNetwork
from .workloads import Network
from .vocabulary import Objective
from .workloads.layers import Layer, VectorWork

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
        return self.of_row(gemm_layer_result(problem.name, "", problem, schedules, timing,
                                             self.model.peak_chip_macs_per_cycle))

    def of_row(self, row: LayerResult) -> float:
        """The objective's cost of a priced layer row (a grouped conv's mapping, with its fused consumer)."""
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

    def __init__(self, model: CoreModel, record_events: bool, cost: CandidateCost | None = None,
                 precision: str = ""):
        self.model = model
        self.precision = precision  # "" for the run's own scheme, else the scheme its layers name
        self.sim = CoreSimulator.of(model)
        self.cost = cost
        self.record_events = record_events
        self.plans: dict[GemmProblem, ChipPlan] = {}  # identical layers (same problem but the name) plan once
        self.recorded: dict[tuple[LayerSchedule, str], LayerTiming] = {}
        self.grouped: dict[tuple[GemmProblem, VectorWork | None], LayerResult] = {}  # a grouped conv's chosen mapping
        self.packed: dict[GemmProblem, list[tuple[LayerSchedule, CoreSimulator]]] = {}
        self.events: list[Event] = []
        self.clock = 0  # whole cycles, like every duration added to it
        self.group: FusedGroup | None = None  # the GEMM whose output stage the next fused layers join

    def plan(self, problem: GemmProblem, network: str) -> ChipPlan:
        key = dataclasses.replace(problem, name="")
        if key not in self.plans:
            try:
                self.plans[key] = plan_chip(problem, self.sim, self.cost)
            except Hfp8SimError as exc:
                raise Hfp8SimError(f"{network}: {exc}") from None
        return self.plans[key]

    def gemm(self, layer: Layer, network: str, consumer: tuple[Layer, Placement] | None = None) -> LayerResult:
        """The row of a GEMM layer; ``consumer``, the next layer and its placement, may fuse with it (see
        ``_grouped_row``)."""
        problem = gemm_problem(layer, self.model)
        result = self._gemm_row(layer, problem, network)
        if _runs_grouped(layer, self.model):
            fused = None
            if consumer is not None and consumer[1].fused_into == layer.name:
                fused = (consumer[0].vector_work(), consumer[1])
            result = self._grouped_row(layer, problem, result, fused)
        if self.record_events:
            self._record(layer, problem, result)
        self.clock += result.cycles
        self.group = None
        fraction = float(getattr(layer, "zero_mac_fraction", 0.0))  # measured by a trace, else 0
        if not fraction or result.kind != "gemm":
            return result
        return dataclasses.replace(result, zero_operand_macs=result.macs * fraction)

    def _gemm_row(self, layer: Layer, problem: GemmProblem, network: str) -> LayerResult:
        """The layer as one GEMM per group (batch element), on one core or split over the chip, with the
        objective it was mapped for and the runner-up plan's cost."""
        plan = self.plan(problem, network)
        if plan.chip_timing is not None:
            row = gemm_layer_result(layer.name, layer.op, problem, plan.schedules, plan.chip_timing,
                                    self.model.peak_chip_macs_per_cycle, partition=plan.partition)
        else:
            row = gemm_layer_result(layer.name, layer.op, problem, plan.schedules, plan.single_timing,
                                    self.model.peak_chip_macs_per_cycle)
        return dataclasses.replace(row, objective=str(self.model.objective), runner_up_cost=plan.runner_up)

    def _grouped_row(self, layer: Layer, problem: GemmProblem, gemm_row: LayerResult,
                     consumer: tuple[VectorWork, Placement] | None) -> LayerResult:
        """The best mapping of a grouped conv (``schedule.grouped``): one GEMM per group, groups packed
        across the array, or the vector unit, by the mapper's objective (fewest cycles, counting the
        exposed cycles of the ``consumer`` work fused with it: the lanes hide it behind a conv on the array,
        not behind one they compute; ties keep the earlier option).  Identical layers decide once."""
        key = (dataclasses.replace(problem, name=""), consumer)
        if key not in self.grouped:
            options = [gemm_row]
            packing = grouped.groups_per_fold(problem, self.model.array)
            if packing > 1:
                schedules, timing = self._packed(problem, packing)
                options.append(gemm_layer_result("", "", problem, schedules, timing,
                                                 self.model.peak_chip_macs_per_cycle,
                                                 mapping=grouped.packed_label(packing)))
            options.append(vector_conv_layer_result("", "", problem, layer.vector_unit_work(), self.model))
            def cost(row: LayerResult) -> float:
                after = vector_layer_result("", "", consumer[0], self.model, consumer[1],
                                            group=FusedGroup.of(row)) if consumer else None
                return self._mapping_cost(row + after if after else row)
            self.grouped[key] = min(options, key=cost)  # min keeps the first of equal costs
        return dataclasses.replace(self.grouped[key], name=layer.name, op=layer.op)

    def _mapping_cost(self, row: LayerResult) -> float:
        """What the choice between a grouped conv's mappings minimises: the mapper's objective (cycles, or the
        row priced by the energy model for energy and EDP)."""
        return row.cycles if self.cost is None else self.cost.of_row(row)

    def _packed(self, problem: GemmProblem, packing: int) -> tuple[list[LayerSchedule], LayerTiming]:
        """Schedules and timing (the parts one after another) of ``problem`` packed ``packing`` groups to a
        fold, on one core; MACs are the diagonal blocks' alone."""
        runs, timings = [], []
        for part in grouped.packed_parts(problem, packing):
            sim = dataclasses.replace(self.sim, tile_cycles=grouped.packed_tile_cycles(part, self.sim.tile_cycles,
                                                                                      self.model.pair))
            choice = plan_layer(part.problem, sim, self.cost)
            schedule, timing = choice.schedule, choice.timing
            runs.append((schedule, sim))
            timings.append(dataclasses.replace(timing, macs=grouped.diagonal_macs(schedule, part)))
        self.packed[dataclasses.replace(problem, name="")] = runs
        return [schedule for schedule, _ in runs], sum(timings[1:], timings[0])

    def _record(self, layer: Layer, problem: GemmProblem, result: LayerResult) -> None:
        """The layer's span and, when it ran on one core's array, its DMA transfers and tiles."""
        if result.cores > 1:
            return
        detail = f"{problem.M}x{problem.N}x{problem.K} x{problem.batch}, {result.mapping}"
        self.events.append((layer.name, layer.name, "layers", self.clock, result.cycles,
                            f"{detail}, {result.tiles} tiles"))
        if result.mapping == grouped.VECTOR_UNIT:
            self.events.append((layer.name, layer.name, "vector", self.clock, result.vector_cycles,
                                f"{result.vector_elementwise_ops:.0f} FMA lane-ops"))
            return
        key = dataclasses.replace(problem, name="")
        runs = [(self.plans[key].schedules[0], self.sim)] if result.mapping == grouped.GEMM else self.packed[key]
        start = self.clock
        for schedule, sim in runs:
            if (schedule, result.mapping) not in self.recorded:
                self.recorded[schedule, result.mapping] = sim.simulate(schedule, record=True)
            recorded = self.recorded[schedule, result.mapping]
            self.events.extend((layer.name, name, track, start + at, duration, detail)
                               for name, track, at, duration, detail in recorded.events)
            start += recorded.cycles

    def vector(self, layer: Layer, placement: Placement, previous: LayerResult | None) -> LayerResult:
        if placement.fused_into is None:
            self.group = None
        elif self.group is None and previous is not None and previous.mapping:  # a GEMM or a conv on the lanes
            self.group = FusedGroup.of(previous)
        result = vector_layer_result(layer.name, layer.op, layer.vector_work(), self.model, placement,
                                     group=self.group)
        if self.record_events:
            self._record_vector(layer, result)
        self.clock += result.cycles
        return result

    def _record_vector(self, layer: Layer, result: LayerResult) -> None:
        """The vector unit's span (a fused layer's overlaps its GEMM's end) and, when the layer's DRAM bytes
        take time of their own, the channel's span."""
        if result.vector_cycles:
            start = self.clock + result.compute_cycles - result.vector_cycles if result.fused else self.clock
            self.events.append((layer.name, layer.name, "vector", max(start, 0), result.vector_cycles,
                                f"{result.vector_elementwise_ops:.0f} elementwise, {result.vector_special_ops:.0f} "
                                f"special, {result.vector_reduction_ops:.0f} reduction lane-ops"))
        moved = result.dram_read_bytes + result.dram_write_bytes
        if moved and result.cycles:
            start = self.clock + (result.compute_cycles if result.fused else 0)
            self.events.append((layer.name, f"{layer.name} DRAM", "dram", start, result.cycles - (start - self.clock),
                                f"{result.dram_read_bytes:.0f} B read, {result.dram_write_bytes:.0f} B written"))


def _runs_grouped(layer: Layer, model: CoreModel) -> bool:
    """A forward grouped conv gets the choice of mappings (``schedule.grouped``); SCALE-Sim mode maps every
    group as its own GEMM, as SCALE-Sim splits a depthwise layer."""
    return (layer.is_conv and getattr(layer, "groups", 1) > 1 and layer.pass_ == "forward"
            and not model.scalesim_mode)



def _training_fields(layer: Layer) -> dict:
    """What a row says of its place in a training step: its pass, the forward layer it belongs to, and the
    parameter elements a forward layer owns (a trace's layers have no parameters to report)."""
    return dict(pass_=str(getattr(layer, "pass_", "forward")), source_layer=getattr(layer, "source_layer", "") or layer.name,
                param_elements=int(getattr(layer, "param_elements", 0)))


def check_limits(arch: ArchConfig, network: Network | TraceNetwork, scheme: str | Scheme | None = None) -> None:
    """Refuse, before anything is simulated, a GEMM layer that needs more tiles than
    ``limits.MAX_TILES_PER_LAYER`` on this core (the mapper's candidate tilings are cheap to count and
    cached for the run that follows).  SCALE-Sim mode maps a layer as one piece and has nothing to bound."""
    model = core_model(arch, scheme)
    if model.scalesim_mode:
        return
    models = {"": model}  # a layer that names a precision is tiled in it (an unknown name fails in the run)
    for layer in network.layers:
        if layer.is_gemm:
            precision = getattr(layer, "precision", "")
            if precision not in models:
                try:
                    models[precision] = core_model(arch, precision)
                except Hfp8SimError:
                    models[precision] = model
            try:
                candidates(gemm_problem(layer, models[precision]), model.array)
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
    placements = plan_placements(layers, fuse=model.vector.fuse_elementwise, fits_on_chip=lambda work: (
        (work.in_elements + work.out_elements) * model.activation_bytes + work.extra_read_bytes
        + work.extra_write_bytes <= model.usable_scratchpad_bytes["output"]))
    runs = _precision_runs(arch, network, run, accountant)
    chosen = _runs_by_layer(layers, placements, run, runs)
    results: list[LayerResult] = []
    for index, layer in enumerate(layers):
        if progress:
            progress(index, len(layers), layer.name)
        after = layers[index + 1] if index + 1 < len(layers) else None
        consumer = (after, placements[after.name]) if after is not None and not after.is_gemm else None
        this = chosen[index]
        this.clock = run.clock  # one clock for the run, whichever core model a layer runs on
        results.append(this.gemm(layer, network.name, consumer) if layer.is_gemm else
                       this.vector(layer, placements[layer.name], results[-1] if results else None))
        run.clock = this.clock
    if any(getattr(layer, "pass_", "forward") != "forward" for layer in layers):  # an inference run's rows keep the defaults
        results = [dataclasses.replace(r, **_training_fields(layer)) for r, layer in zip(results, layers)]
    results = [dataclasses.replace(r, energy=runs.get(this, accountant).price(r), precision=this.precision)
               for r, this in zip(results, chosen)]
    return NetworkResult(network.name, model.name, model.scheme.name, model.clock_ghz,
                         model.peak_chip_macs_per_cycle, tuple(results), arch.to_dict(), tuple(run.events))


def _precision_runs(arch: ArchConfig, network, run: _NetworkRun,
                    accountant: EnergyAccountant) -> dict[_NetworkRun, EnergyAccountant]:
    """A run and an accountant per precision some GEMM layer names in place of the run's scheme (IBM's FP16
    first and last layers): the same core in that scheme, recording into the run's events."""
    runs: dict[_NetworkRun, EnergyAccountant] = {}
    for name in dict.fromkeys(getattr(layer, "precision", "") for layer in network.layers):
        if not name or name == run.model.scheme.name:
            continue
        try:
            model = core_model(arch, name)
        except Hfp8SimError as exc:
            layer = next(layer.name for layer in network.layers if getattr(layer, "precision", "") == name)
            raise Hfp8SimError(f"{network.name}: layer {layer}: precision {name!r}: {exc}") from None
        other_accountant = EnergyAccountant(model)
        other = _NetworkRun(model, run.record_events, objective_cost(model, other_accountant), name)
        other.events = run.events
        runs[other] = other_accountant
    return runs


def _runs_by_layer(layers: list, placements: dict, run: _NetworkRun,
                   runs: dict[_NetworkRun, EnergyAccountant]) -> list[_NetworkRun]:
    """The run each layer is simulated on: a GEMM's precision's, a vector layer fused into a GEMM's output
    stage that GEMM's, every other layer the run's own."""
    by_precision = {other.precision: other for other in runs}
    chosen: dict[str, _NetworkRun] = {}
    for layer in layers:
        if layer.is_gemm:
            chosen[layer.name] = by_precision.get(getattr(layer, "precision", ""), run)
        else:
            into = placements[layer.name].fused_into
            chosen[layer.name] = chosen.get(into, run) if into is not None else run
    return [chosen[layer.name] for layer in layers]
