"""The SimPy models of one core and of a chip, bundled with the core they model.

:class:`CoreSimulator` is what the schedule search (``hfp8sim.schedule.search``) is handed: it times a
candidate schedule on one core, or a partitioned layer on every core of a chip, and it gives the busy cycles
of a tile and the counts every schedule of a candidate tiling has, for the search's lower bounds.  The search
lives below the timing model and only sees this object.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from ..core.model import CoreModel, CoreTiming
from ..schedule.mapper import Candidate, GemmProblem, LayerSchedule, Tile, tile_classes
from ..schedule.tile_cycles import TileCyclesFn, tile_cycles_for
from .chip import ChipLayerTiming, simulate_chip_layer
from .engine import LayerTiming, simulate_layer, tile_busy_cycles
from .engine import _edge_bytes as edge_bytes  # the engine's count of a tile's scratchpad traffic


@dataclasses.dataclass(frozen=True)
class CoreSimulator:
    model: CoreModel
    tile_cycles: TileCyclesFn

    @classmethod
    def of(cls, model: CoreModel) -> CoreSimulator:
        return cls(model, tile_cycles_for(model))

    @property
    def core(self) -> CoreTiming:
        return self.model.timing

    def simulate(self, schedule: LayerSchedule, *, give_up_after: float | None = None,
                 record: bool = False) -> LayerTiming | None:
        """One layer on one core (None once simulated time passes ``give_up_after``)."""
        return simulate_layer(schedule, self.core, self.tile_cycles, give_up_after=give_up_after, record=record)

    def busy_cycles(self, tile: Tile, schedule: LayerSchedule) -> float:
        """Cycles the array is busy with ``tile``: its folds, stretched by edge bandwidth."""
        return tile_busy_cycles(tile, schedule, self.core, self.tile_cycles(*tile.dims)[0])

    def simulate_chip(self, schedules: list[LayerSchedule], partition: str, *,
                      give_up_after: float | None = None) -> ChipLayerTiming | None:
        """One layer split over the chip's cores (one schedule per core)."""
        return simulate_chip_layer(schedules, partition, self.core, self.tile_cycles, self.model.noc,
                                   vector_lanes=self.model.vector.lanes, give_up_after=give_up_after)

    def counted(self, problem: GemmProblem, candidate: Candidate) -> LayerTiming:
        """What every schedule of ``candidate`` counts, whatever the DRAM channel does, without simulating:
        MACs, folds, busy cycles (``compute_cycles``: the array is serial, so no schedule is faster), edge and
        scratchpad traffic, DRAM bytes.  Left at 0: ``cycles`` and stalls (the simulation's), and the
        scratchpad fills (how DRAM reads split between the input and weight pads is known per tile only)."""
        result = LayerTiming(tiles=candidate.tiles)
        for dims, first_k, count in tile_classes(problem, candidate.tile_shape):
            busy, cycles, folds, offered, used, edges = _tile_counts(self.core, self.tile_cycles, problem, dims,
                                                                     first_k)
            input_b, weight_b, psum_r, psum_w = edges
            result.compute_cycles += count * busy
            result.fold_cycles += count * cycles
            result.port_stall_cycles += count * (busy - cycles)  # as the engine counts the ports' stretch
            result.folds += count * folds
            result.pe_slots += count * offered
            result.used_pe_slots += count * used
            result.macs += count * dims[0] * dims[1] * dims[2]
            result.sram_input_read_bytes += count * input_b
            result.sram_weight_read_bytes += count * weight_b
            result.sram_output_read_bytes += count * psum_r
            result.sram_output_write_bytes += count * psum_w
            result.interconnect_bytes += count * (input_b + weight_b + psum_r + psum_w)
        stores = problem.batch * problem.M * problem.N * problem.out_bytes
        result.dram_write_bytes = stores
        result.dram_read_bytes = candidate.dram_bytes - stores
        result.sram_output_read_bytes += stores  # the output pad is read to store each final tile
        return result


@lru_cache(maxsize=65536)
def _tile_counts(core: CoreTiming, tile_cycles: TileCyclesFn, problem: GemmProblem, dims: tuple[int, int, int],
                 first_k: bool) -> tuple[float, float, int, float, float, tuple[float, float, float, float]]:
    """(busy cycles, fold cycles, folds, offered and used PE slots, edge bytes) of one tile, as the engine
    counts them (cached: the candidates of a layer share most of their tile shapes)."""
    mt, nt, kt = dims
    tile = Tile(0, 0, (0, mt), (0, nt), (0, kt), 0.0, 0.0, 0.0, first_k)
    stub = LayerSchedule(problem, None, dims, "", ())  # the engine reads only the problem of the schedule
    cycles, folds, offered, used = tile_cycles(mt, nt, kt)
    return (tile_busy_cycles(tile, stub, core, cycles), cycles, folds, offered, used, edge_bytes(tile, stub, core))
