"""The energy model: counted actions x a per-action energy table (Timeloop/Accelergy ERT style).

The timing model only counts actions (:data:`ACTIONS`); :func:`energy_of` turns the counts of a layer into
picojoules by component at an operating point of a technology table (:func:`hfp8sim.config.tech.load_tech`,
shipped tables in ``arch_configs/tech/``).  A pure layer: no simulation, no state.  See ``docs/energy.md``.
"""

from .model import (
    ACTIONS,
    COMPONENTS,
    SCRATCHPADS,
    VECTOR_OPS,
    WIDTHS,
    EnergyBreakdown,
    average_power_w,
    energy_of,
    sum_breakdowns,
    tflops_per_watt,
    tops_per_watt,
)

__all__ = [
    "ACTIONS", "COMPONENTS", "SCRATCHPADS", "VECTOR_OPS", "WIDTHS", "EnergyBreakdown", "average_power_w",
    "energy_of", "sum_breakdowns", "tflops_per_watt", "tops_per_watt",
]
