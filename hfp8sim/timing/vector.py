"""The vector / special-function unit: cycles of the layers that are not GEMMs.

A layer's lane operations are a description of its work and come from the layer itself
(:meth:`~hfp8sim.workloads.layers.Layer.vector_work`, a :class:`~hfp8sim.workloads.layers.VectorWork`):
element-wise, special-function (exp, erf, rsqrt ...) and reduction lane-ops.  This module times them.

A unit of ``lanes`` lanes does ``rate`` lane-ops per lane per cycle (FP16 lanes do one, FP32 ones half as
many when ``fp32_rate`` is 0.5); a special op takes ``special_op_cycles`` lane-cycles.  A layer whose tensor
does not fit the output scratchpad streams it from and to DRAM, and then takes at least its bytes / DRAM
bandwidth.  Elementwise layers that directly follow the GEMM producing their input are fused with it
(applied as outputs drain) when ``fuse_elementwise`` is set: their cycles are hidden behind the GEMM's, and
only what exceeds it is exposed.
"""

from __future__ import annotations

from ..core.cycles import whole_cycles
from ..core.model import VectorUnitSpec
from ..workloads.layers import VectorWork

__all__ = ["vector_cycles"]



def vector_cycles(work: VectorWork, unit: VectorUnitSpec, *, fp32: bool) -> int:
    """Cycles of the vector unit for ``work`` (compute only), whole cycles: the last, partly filled issue of
    the lanes takes its cycle."""
    rate = unit.lanes * (unit.fp32_rate if fp32 else 1.0)
    if work.lane_ops == 0:
        return 0
    return whole_cycles(work.elementwise + work.reduction + work.special * unit.special_op_cycles, rate)
