"""The energy model: counted actions x a per-action energy table (Timeloop/Accelergy ERT style).

The timing model only counts actions (:data:`ACTIONS`); :func:`energy_of` turns the counts of a layer into
picojoules by component at an operating point of a technology table (:func:`load_tech`, shipped tables in
``arch_configs/tech/``).  A pure layer: no simulation, no state.  See ``docs/energy.md``.
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
from .table import DEFAULT_TECH, OperatingPoint, TechTable, load_tech, parse_tech, shipped_tech_files

__all__ = [
    "ACTIONS", "COMPONENTS", "DEFAULT_TECH", "SCRATCHPADS", "VECTOR_OPS", "WIDTHS", "EnergyBreakdown",
    "OperatingPoint", "TechTable", "average_power_w", "energy_of", "load_tech", "parse_tech",
    "shipped_tech_files", "sum_breakdowns", "tflops_per_watt", "tops_per_watt",
]
