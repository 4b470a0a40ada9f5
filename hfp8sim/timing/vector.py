"""The vector / special-function unit: cycles of the layers that are not GEMMs.

Each non-GEMM layer is broken into three kinds of lane operations (``VectorWork``):

* elementwise: add, multiply, ReLU, clamp, scale/shift, format conversion: one lane-op per element and
  operand;
* special: exp, erf (GELU), sigmoid/tanh, reciprocal, rsqrt: ``special_op_cycles`` lane-cycles each;
* reduction: max/sum over rows (softmax, norms) and pooling windows: one lane-op per input element.

A unit of ``lanes`` lanes does ``rate`` lane-ops per lane per cycle (FP16 lanes do one, FP32 ones half as
many when ``fp32_rate`` is 0.5).  A layer whose tensor does not fit the output scratchpad streams it from and to
DRAM, and then takes at least its bytes / DRAM bandwidth.  Elementwise layers that directly follow the GEMM
producing their input are fused with it (applied as outputs drain) when ``fuse_elementwise`` is set: their
cycles are hidden behind the GEMM's, and only what exceeds it is exposed.
"""

from __future__ import annotations

import dataclasses
import math

from ..core.model import VectorUnitSpec
from ..workloads.layers import Concat, Elementwise, Embedding, GlobalAvgPool, Layer, Norm, Pool, Reshape, Softmax

SPECIAL_ELEMENTWISE = ("gelu", "silu", "sigmoid", "tanh", "div")


@dataclasses.dataclass(frozen=True)
class VectorWork:
    elementwise: float = 0.0
    special: float = 0.0
    reduction: float = 0.0
    in_elements: float = 0.0
    out_elements: float = 0.0
    fusable: bool = False  # elementwise work that can ride on the producing GEMM's output drain

    @property
    def lane_ops(self) -> float:
        return self.elementwise + self.special + self.reduction


def vector_work(layer: Layer) -> VectorWork:
    """The lane operations of one non-GEMM layer (see the module notes)."""
    if isinstance(layer, Elementwise):
        n = float(layer.elements)
        operands = float(layer.num_operands)
        if layer.kind in SPECIAL_ELEMENTWISE:  # e.g. GELU: erf, then x * 0.5 * (1 + erf)
            return VectorWork(elementwise=3 * n, special=n, in_elements=n * operands, out_elements=n)
        return VectorWork(elementwise=float(layer.ops), in_elements=n * operands, out_elements=n, fusable=True)
    if isinstance(layer, Softmax):
        n = float(layer.elements)
        # max and sum reductions, subtract max and scale by 1/sum, exp per element and a reciprocal per row
        return VectorWork(elementwise=2 * n, special=n + layer.rows, reduction=2 * n, in_elements=n, out_elements=n)
    if isinstance(layer, Norm):
        n = float(layer.elements)
        if layer.kind == "layernorm":  # mean and variance, normalise, scale and shift; rsqrt per row
            return VectorWork(elementwise=3 * n, special=float(layer.rows), reduction=2 * n, in_elements=n,
                              out_elements=n)
        if layer.kind == "batchnorm":  # inference: folded into one scale and one shift per element
            return VectorWork(elementwise=2 * n, in_elements=n, out_elements=n, fusable=True)
        return VectorWork(elementwise=float(layer.ops), special=n, in_elements=n, out_elements=n)  # lrn
    if isinstance(layer, Pool):
        return VectorWork(reduction=float(layer.ops), in_elements=float(layer.N * layer.C * layer.H * layer.W),
                          out_elements=float(layer.elements))
    if isinstance(layer, GlobalAvgPool):  # sum every position, then one scale per channel
        n_in = float(layer.ops)
        return VectorWork(reduction=n_in, elementwise=float(layer.elements), in_elements=n_in,
                          out_elements=float(layer.elements))
    if isinstance(layer, Embedding):
        n = float(layer.elements)
        return VectorWork(elementwise=n, in_elements=n, out_elements=n)
    if isinstance(layer, (Concat, Reshape)):
        return VectorWork()
    n = float(getattr(layer, "elements", 0) or 0)
    return VectorWork(elementwise=float(getattr(layer, "ops", n) or 0), in_elements=n, out_elements=n)


def vector_cycles(work: VectorWork, unit: VectorUnitSpec, *, fp32: bool) -> float:
    """Cycles of the vector unit for ``work`` (compute only)."""
    rate = unit.lanes * (unit.fp32_rate if fp32 else 1.0)
    if work.lane_ops == 0:
        return 0.0
    return math.ceil((work.elementwise + work.reduction + work.special * unit.special_op_cycles) / rate)
