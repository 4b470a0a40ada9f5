"""The SimPy models of one core and of a chip, bundled with the core they model.

:class:`CoreSimulator` is what the schedule search (``hfp8sim.schedule.search``) is handed: it times a
candidate schedule on one core, or a partitioned layer on every core of a chip, and it gives the busy cycles
of a tile for the search's lower bound.  The search lives below the timing model and only sees this object.
"""

from __future__ import annotations

import dataclasses

from ..core.model import CoreModel, CoreTiming
from ..schedule.mapper import LayerSchedule, Tile
from ..schedule.tile_cycles import TileCyclesFn, tile_cycles_for
from .chip import ChipLayerTiming, simulate_chip_layer
from .engine import LayerTiming, simulate_layer, tile_busy_cycles


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
