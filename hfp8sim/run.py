"""Where a workload, an arch config and a scheme meet the timing model: ``simulate_network``.

The story of a run:

1. **Resolve** the core model (``hfp8sim.core.CoreModel``) of the arch under the scheme: array, formats,
   accumulation contract, scratchpads, DRAM, vector unit, chip: read once, used by everything below.
2. **Simulate each layer.**  A GEMM layer (conv, linear, attention matmul) is planned by the schedule search
   (``schedule.search``): the fastest tiling by SimPy simulation (``timing``), and on a chip of several cores
   the fastest partition; identical layers are planned once.  A non-GEMM layer runs on the vector unit
   (``timing.layer_results``), in the output stage of the GEMM that produced its input when
   ``timing.fusion`` places it there, else alone with its DRAM bytes through the DRAM channel.
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
from .schedule.mapper import GemmProblem, LayerSchedule, candidates
from .schedule.search import ChipPlan, gemm_problem, plan_chip, plan_layer
from .timing.engine import LayerTiming
from .timing.fusion import Placement, plan_placements
from .timing.layer_results import FusedGroup, gemm_layer_result, vector_layer_result
from .timing.simulator import CoreSimulator
from .traces.timing_view import TraceNetwork
from .workloads import Network
from .workloads.layers import Layer

Event = tuple[str, str, str, float, float, str]  # (layer, name, track, start cycle, duration, detail)


def core_model(arch: ArchConfig, scheme: str | Scheme | None = None) -> CoreModel:
    """The core model of ``arch`` under ``scheme`` (a name or a Scheme; default: the arch's)."""
    return CoreModel.build(arch, arch.resolve_scheme(scheme))


def plan_and_time(arch: ArchConfig, layer: Layer, scheme: str | Scheme | None = None
                  ) -> tuple[LayerSchedule, LayerTiming]:
    """(schedule, timing) of one GEMM layer on one core: the tiles in execution order and the SimPy counters."""
    model = core_model(arch, scheme)
    return plan_layer(gemm_problem(layer, model), CoreSimulator.of(model))


class _NetworkRun:
    """The state of one network run: the core, its simulator, the plans made so far, the clock."""

    def __init__(self, model: CoreModel, record_events: bool):
        self.model = model
        self.sim = CoreSimulator.of(model)
        self.record_events = record_events
        self.plans: dict[GemmProblem, ChipPlan] = {}  # identical layers (same problem but the name) plan once
        self.recorded: dict[GemmProblem, LayerTiming] = {}
        self.events: list[Event] = []
        self.clock = 0.0
        self.group: FusedGroup | None = None  # the GEMM whose output stage the next fused layers join

    def plan(self, problem: GemmProblem, network: str) -> ChipPlan:
        key = dataclasses.replace(problem, name="")
        if key not in self.plans:
            try:
                self.plans[key] = plan_chip(problem, self.sim) if self.model.cores > 1 else \
                    ChipPlan("single core", 1, *_single(plan_layer(problem, self.sim)))
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
        self.clock += result.cycles
        self.group = None
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

    def vector(self, layer: Layer, placement: Placement, previous: LayerResult | None) -> LayerResult:
        if placement.fused_into is None:
            self.group = None
        elif self.group is None and previous is not None and previous.kind == "gemm":
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
            self.events.append((layer.name, layer.name, "vector", max(start, 0.0), result.vector_cycles,
                                f"{result.vector_elementwise_ops:.0f} elementwise, {result.vector_special_ops:.0f} "
                                f"special, {result.vector_reduction_ops:.0f} reduction lane-ops"))
        moved = result.dram_read_bytes + result.dram_write_bytes
        if moved and result.cycles:
            start = self.clock + (result.compute_cycles if result.fused else 0.0)
            self.events.append((layer.name, f"{layer.name} DRAM", "dram", start, result.cycles - (start - self.clock),
                                f"{result.dram_read_bytes:.0f} B read, {result.dram_write_bytes:.0f} B written"))


def _single(plan: tuple[LayerSchedule, LayerTiming]) -> tuple[list[LayerSchedule], None, LayerTiming]:
    schedule, timing = plan
    return [schedule], None, timing


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
    run = _NetworkRun(model, record_events)
    layers = list(network.layers)
    placements = plan_placements(layers, fuse=model.vector.fuse_elementwise, fits_on_chip=lambda work: (
        (work.in_elements + work.out_elements) * model.activation_bytes <= model.usable_scratchpad_bytes["output"]))
    results: list[LayerResult] = []
    for index, layer in enumerate(layers):
        if progress:
            progress(index, len(layers), layer.name)
        results.append(run.gemm(layer, network.name) if layer.is_gemm else
                       run.vector(layer, placements[layer.name], results[-1] if results else None))
    results = [dataclasses.replace(r, energy=accountant.price(r)) for r in results]
    return NetworkResult(network.name, model.name, model.scheme.name, model.clock_ghz,
                         model.peak_chip_macs_per_cycle, tuple(results), arch.to_dict(), tuple(run.events))
