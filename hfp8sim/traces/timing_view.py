"""A trace as the timing model sees it: its layers, in execution order, with the datapath's lowering of each
GEMM and its measured zero-operand fraction (which lowers the energy of zero-gated PEs).

``network_from_trace`` turns a loaded trace into a :class:`TraceNetwork` that ``hfp8sim.run.simulate_network``
executes like any workload.  Non-GEMM layers get their vector-unit work from the same layer types the
workloads use, so a trace and its workload cost the same lane operations.
"""

from __future__ import annotations

import dataclasses
import math

from ..core.model import CoreModel
from ..errors import Hfp8SimError, TraceError
from ..workloads.layers import ELEMENTWISE_OPS, Conv2d, Elementwise, GemmShape, Norm, Softmax, VectorWork
from .datapath_ops import describe_arith
from .schema import Trace, TraceLayer


def check_trace_arch(trace: Trace, arch, source: str) -> None:
    """Refuse to time ``trace`` on ``arch`` when the arch would round differently: a trace's measured zeros and
    errors belong to the array arithmetic (dataflow, size, accumulators, pair mode) and scheme it was made
    with, which its ``arch`` record states."""
    recorded = trace.document["arch"]
    model = CoreModel.build(arch, arch.resolve_scheme(trace.scheme_name))
    here = {bits: describe_arith(model.arithmetic_for_bits(bits)) for bits in (8, 16)}
    for bits, description in here.items():
        made_on = recorded.get(f"arithmetic_{bits}bit")
        if made_on != description:
            raise TraceError(
                f"{source}: traced on {recorded.get('name')} ({recorded.get('file')}: {bits}-bit arithmetic "
                f"{made_on}), but {arch.name} computes {description}; run it on the arch it was made on, or pass "
                "--retime to time its layers on this arch anyway")

@dataclasses.dataclass(frozen=True)
class _TraceGemm:
    """A GEMM layer as a trace recorded it: the datapath's lowering and its measured zero-MAC fraction."""

    name: str
    op: str
    shape: GemmShape
    pass_: str
    zero_mac_fraction: float
    inputs: tuple[str, ...] = ()
    conv_layer: Conv2d | None = None  # a forward conv: its input is read as a tensor, as the workload's is
    tensor_elements: tuple[int, int, int] | None = None  # A, B, output as traced
    is_gemm = True

    def gemm(self) -> GemmShape:
        return self.shape

    @property
    def output_role(self) -> str:
        return "activation" if self.pass_ == "forward" else "gradient"

    @property
    def is_conv(self) -> bool:
        """A traced conv whose tensors are known can be mapped as its workload layer can (grouped)."""
        return self.op == "conv2d" and self.tensor_elements is not None

    @property
    def groups(self) -> int:
        return self.shape.batch

    def vector_unit_work(self) -> VectorWork:
        """As ``Conv2d.vector_unit_work``: one FMA lane-op per MAC, the traced tensors read and written."""
        a, b, out = self.tensor_elements or (0, 0, 0)
        return VectorWork(elementwise=float(self.shape.macs), in_elements=float(a + b), out_elements=float(out))

    @property
    def producers(self) -> tuple[str, ...]:
        return self.inputs


@dataclasses.dataclass(frozen=True)
class _TraceVector:
    """A non-GEMM layer as a trace recorded it: its vector-unit work from its op and counts."""

    name: str
    op: str
    work: VectorWork
    inputs: tuple[str, ...] = ()
    is_gemm = False

    def vector_work(self) -> VectorWork:
        return self.work

    @property
    def producers(self) -> tuple[str, ...]:
        return self.inputs


@dataclasses.dataclass(frozen=True)
class TraceNetwork:
    """The layers of a trace, in execution order, for the timing model."""

    name: str
    layers: tuple
    tensors: str
    zero_mac_fractions: dict


def _trace_vector_work(layer: TraceLayer) -> VectorWork:
    """Lane operations of a non-GEMM trace layer from its op, shape, element and op counts."""
    if layer.vector_work is not None:
        return VectorWork(**layer.vector_work)
    op, shape = layer.op, layer.shape
    try:
        if op in ELEMENTWISE_OPS:
            return Elementwise(name=layer.name, kind=op, shape=shape, inputs=layer.inputs).vector_work()
        if op == "softmax":
            return Softmax(name=layer.name, rows=math.prod(shape[:-1]), cols=shape[-1]).vector_work()
        if op in ("layernorm", "batchnorm", "lrn"):
            return Norm(name=layer.name, kind=op, shape=shape, folded=layer.folded).vector_work()
    except Hfp8SimError:
        pass
    elements, ops = float(layer.elements), float(layer.ops)
    if op in ("maxpool", "avgpool", "global_avgpool"):
        return VectorWork(reduction=ops, in_elements=ops, out_elements=elements)
    if op in ("concat", "reshape"):
        return VectorWork()
    return VectorWork(elementwise=ops, in_elements=elements, out_elements=elements)


def _conv_layer(layer: TraceLayer) -> Conv2d | None:
    """The conv a trace entry recorded, rebuilt from its shapes (None if it is not one or does not check)."""
    if layer.conv is None:
        return None
    (n, c, h, w), (k, _, r, s) = layer.conv["input_shape"], layer.conv["weight_shape"]
    try:
        return Conv2d(name=layer.name, N=n, C=c, H=h, W=w, K=k, R=r, S=s, stride=tuple(layer.conv["stride"]),
                      padding=tuple(layer.conv["padding"]), dilation=tuple(layer.conv["dilation"]),
                      groups=layer.conv["groups"])
    except (Hfp8SimError, KeyError, TypeError):
        return None


def network_from_trace(trace: Trace) -> TraceNetwork:
    """The timing model's view of a trace."""
    layers, zeros = [], {}
    for layer in trace.layers:
        if layer.gemm is None:
            layers.append(_TraceVector(layer.name, layer.op, _trace_vector_work(layer), layer.inputs))
            continue
        g = layer.gemm
        shape = GemmShape(g["M"], g["N"], g["K"], g["batch"], layer.a_role, layer.b_role)
        zeros[layer.name] = layer.zero_mac_fraction
        layers.append(_TraceGemm(layer.name, layer.op, shape, layer.pass_, layer.zero_mac_fraction, layer.inputs,
                                 conv_layer=_conv_layer(layer), tensor_elements=layer.tensor_elements))
    return TraceNetwork(trace.workload, tuple(layers), trace.tensors, zeros)
