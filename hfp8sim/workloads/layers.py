"""Layer types: the shapes of the work a network asks of the core, and nothing else.

Every layer is a frozen dataclass that checks itself when built (positive sizes, consistent groups, an output
that is not empty) and raises :class:`~hfp8sim.errors.WorkloadError` otherwise.  Layers carry no data and no
timing: the schedule, the datapath and the timing model read their shapes.

The checks and properties every layer shares live once, in :class:`Layer` and a few bases
(:class:`VectorLayer`, :class:`ShapedLayer` for a declared ``shape``, :class:`ImageLayer` for an N,C,H,W
input, :class:`WindowLayer` for a sliding window); each layer type states only what differs.  Two families:

* **GEMM layers** run on the array: :class:`Conv2d` and :class:`MatMul`.  Each has ``macs`` and ``gemm()``,
  the lowering the datapath and the timing model both use (see :class:`GemmShape`).
* **Vector layers** run on the vector unit: :class:`Elementwise`, :class:`Softmax`, :class:`Norm`,
  :class:`Pool`, :class:`GlobalAvgPool`, :class:`Embedding`, and the data-movement layers :class:`Concat`
  and :class:`Reshape`.  Each has ``elements`` (output elements), ``ops`` (element operations) and
  ``vector_work()``, its lane operations (see :class:`VectorWork`).

Every layer also says which of its operands are activations, weights or gradients (``operand_roles``), so a
precision scheme can pick each operand's format, which training pass it belongs to (``pass_``), and how a
workload file writes it (``yaml_fields()``, ``default_inputs()``).

Connectivity: ``inputs`` names the layers whose outputs feed this one, in operand order; ``None`` (or an
empty tuple) means the operand comes from outside the network (the image, the token ids, a KV cache).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from ..errors import WorkloadError
from ..vocabulary import Pass, Role

PASSES: tuple[str, ...] = tuple(p.value for p in Pass)  # forward, backward_data, backward_weight, update
"""Training passes: the forward pass, the data-gradient pass (dX), the weight-gradient pass (dW) and the
optimizer's update of the parameters (vector unit only)."""

ROLES: tuple[str, ...] = tuple(r.value for r in Role)  # activation, weight, gradient
"""Tensor roles.  A precision scheme maps each role (and the pass) to a number format."""

CONVENTIONS = ("native", "scalesim")
"""Shape conventions: ``native`` follows PyTorch/ONNX (floor output size, padding); ``scalesim`` follows
SCALE-Sim (valid convolution, ``ceil((H - R + s) / s)`` outputs including phantom edge pixels)."""

ELEMENTWISE_OPS = (
    "add", "sub", "mul", "div",
    "relu", "relu6", "clip", "gelu", "silu", "sigmoid", "tanh",
    "convert", "scale",
)  # fmt: skip
"""Element-wise operations.  ``add``/``sub``/``mul``/``div`` are binary (with one producer, the other
operand is a parameter such as a bias or a mask); ``scale`` multiplies by a parameter (a scalar or one
value per channel); ``convert`` changes number format (e.g. FP16 accumulator output to FP8)."""

BINARY_OPS = ("add", "sub", "mul", "div")
SPECIAL_ELEMENTWISE = ("gelu", "silu", "sigmoid", "tanh", "div")
"""Element-wise operations that need the special-function unit (exp, erf, a reciprocal) on the vector unit."""

NORM_OPS = ("batchnorm", "layernorm", "lrn")
POOL_OPS = ("maxpool", "avgpool")

Shape = tuple[int, ...]


# ----------------------------------------------------------------------------------------------- helpers


def _fail(layer_name: str, message: str) -> WorkloadError:
    return WorkloadError(message, key_path=f"layer {layer_name!r}" if layer_name else None)


def _check_positive(layer_name: str, **values: object) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(layer_name, f"{key} must be a positive integer, got {value!r}")


def _pair(layer_name: str, key: str, value: object) -> tuple[int, int]:
    """An int or an (h, w) pair -> (h, w)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (value[0], value[1])
    raise _fail(layer_name, f"{key} must be an integer or a pair [h, w], got {value!r}")


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding along one axis: (before, after), the odd pixel going after.

    The output size is ``ceil(size / stride)``; the total padding is what that output needs, never negative.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return (total // 2, total - total // 2)


def _padding4(
    layer_name: str,
    value: object,
    H: int,
    W: int,
    R: int,
    S: int,
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    """Padding as (top, bottom, left, right) from an int, an (h, w) pair, four numbers, or "same"."""
    if value == "same":
        return same_padding(H, R, stride[0], dilation[0]) + same_padding(W, S, stride[1], dilation[1])
    if isinstance(value, int) and not isinstance(value, bool):
        pads = (value,) * 4
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pads = (value[0], value[0], value[1], value[1])
    elif isinstance(value, (tuple, list)) and len(value) == 4:
        pads = tuple(value)
    else:
        raise _fail(
            layer_name,
            f'padding must be an integer, [h, w], [top, bottom, left, right] or "same", got {value!r}',
        )
    for p in pads:
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise _fail(layer_name, f"padding values must be non-negative integers, got {value!r}")
    return pads  # type: ignore[return-value]


def _out_size(
    size: int,
    pad_before: int,
    pad_after: int,
    kernel: int,
    stride: int,
    dilation: int,
    convention: str,
    ceil_mode: bool = False,
) -> int:
    """Output size along one axis (0 when the window does not fit).

    ``native``: PyTorch's ``floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1``; with ``ceil_mode``
    (pooling) PyTorch rounds up but drops a last window that would start in the trailing padding.
    ``scalesim``: SCALE-Sim's ``ceil((size - kernel + stride) / stride)``, which counts a phantom last output
    whenever the stride does not divide ``size - kernel``.
    """
    span = size + pad_before + pad_after - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if convention == "scalesim":
        return -(-span // stride) + 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad_before:
            out -= 1
        return out
    return span // stride + 1


def shape_features(shape: Shape) -> int:
    """The feature (channel) count of a tensor: C of an N,C,H,W tensor, the last axis otherwise."""
    return shape[1] if len(shape) == 4 else shape[-1]


def shape_elements(shape: Shape) -> int:
    return math.prod(shape)


def _fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _pair_value(pair: tuple[int, int]) -> int | list[int]:
    """The shortest form of an (h, w) pair that :func:`_pair` reads back."""
    return pair[0] if pair[0] == pair[1] else list(pair)


def _padding_value(pads: tuple[int, int, int, int]) -> int | list[int]:
    """The shortest form of (top, bottom, left, right) that :func:`_padding4` reads back."""
    top, bottom, left, right = pads
    if top == bottom == left == right:
        return top
    if top == bottom and left == right:
        return [top, left]
    return list(pads)


# ----------------------------------------------------------------------------------- descriptions of work


@dataclass(frozen=True)
class GemmShape:
    """One (batched) GEMM as the datapath runs it: ``batch`` independent products ``A[M,K] @ B[K,N]``.

    ``row_index``, ``col_index`` and ``reduction_index`` name the axes that make up M, N and K, outermost
    first (row-major), so a consumer knows how a conv's operands are laid out in the lowered matrices.  For
    a forward conv: rows are (n, p, q), columns k, and the reduction is (r, s, c) with the channel fastest,
    i.e. reduction index ``(r*S + s)*(C/groups) + c``.  The batch index is the group.
    """

    M: int
    N: int
    K: int
    batch: int = 1
    a_role: str = "activation"
    b_role: str = "weight"
    row_index: tuple[str, ...] = ("m",)
    col_index: tuple[str, ...] = ("n",)
    reduction_index: tuple[str, ...] = ("k",)

    @property
    def macs(self) -> int:
        return self.batch * self.M * self.N * self.K


@dataclass(frozen=True)
class VectorWork:
    """The lane operations a non-GEMM layer asks of the vector unit (what it does, not how long it takes).

    * ``elementwise``: add, multiply, ReLU, clamp, scale/shift, format conversion: one lane-op per element
      and operand;
    * ``special``: exp, erf (GELU), sigmoid/tanh, reciprocal, rsqrt: each costs more than one lane-op (the
      timing model says how many cycles);
    * ``reduction``: max/sum over rows (softmax, norms) and pooling windows: one lane-op per input element.

    ``in_elements`` and ``out_elements`` are the tensor elements read and written, in the scheme's element
    size; ``extra_read_bytes`` and ``extra_write_bytes`` are bytes of tensors whose format does not follow the
    scheme (an optimizer's FP32 master weights and states, an FP16 round-off residual); ``fp32`` says the
    lanes compute in FP32 whatever the scheme (an optimizer step).  ``fusable`` marks element-wise work that
    can ride on the producing GEMM's output drain; ``folded`` marks a layer that was folded into its
    producer's weights and bias at load (an inference batch norm): it has no work at all.
    """

    elementwise: float = 0.0
    special: float = 0.0
    reduction: float = 0.0
    in_elements: float = 0.0
    out_elements: float = 0.0
    fusable: bool = False
    folded: bool = False
    extra_read_bytes: float = 0.0
    extra_write_bytes: float = 0.0
    fp32: bool = False

    @property
    def lane_ops(self) -> float:
        return self.elementwise + self.special + self.reduction


class YamlField(NamedTuple):
    """One key of a layer as a workload file writes it.

    The writer leaves the key out when ``value`` equals ``default`` (what the loader would fill in; None:
    there is none) or, when ``inferable``, when the loader would take the same value from the layer's input.
    """

    key: str
    value: Any
    default: Any = None
    inferable: bool = False


def _given(layer: Layer, keys: str, *, inferable: bool = False) -> tuple[YamlField, ...]:
    """The space-separated ``keys`` of ``layer`` as fields with no default."""
    return tuple(YamlField(key, getattr(layer, key), inferable=inferable) for key in keys.split())


# ------------------------------------------------------------------------------------------- base class


@dataclass(frozen=True, kw_only=True)
class Layer:
    """Common part of every layer: its name, its producers, its training pass, and the checks every layer
    makes when built.

    ``inputs`` lists the producer layer of each non-weight operand in operand order (``None`` = from outside
    the network); ``pass_`` is one of :data:`PASSES`.  A subclass states what differs: its fields and
    ``output_shape``, the class attributes that drive the shared checks (``kinds``, ``sizes``,
    ``single_input``), its operand roles, its GEMM lowering or vector-unit work, and how a file writes it.
    """

    op: ClassVar[str] = ""
    is_gemm: ClassVar[bool] = False
    """Whether the layer runs on the array (it has ``gemm()``)."""
    is_conv: ClassVar[bool] = False
    """Whether the layer is a convolution (its forward pass can run as one on the datapath, im2col inside)."""

    kinds: ClassVar[tuple[str, ...]] = ()
    """The values allowed for the layer's ``kind`` field (empty: the layer has no kind)."""
    kind_noun: ClassVar[str] = ""
    """What an error calls the kind: ``unknown <kind_noun> 'x'``."""
    sizes: ClassVar[tuple[str, ...]] = ()
    """Fields that must be positive integers, checked (and reported) in this order."""
    single_input: ClassVar[bool] = False
    """Whether the layer reads at most one producer."""

    name: str
    inputs: tuple[str | None, ...] = ()
    pass_: str = "forward"
    source_layer: str = ""
    """The forward layer a training step's backward or update layer belongs to ("": the layer itself)."""
    precision: str = ""
    """A precision scheme for this GEMM layer's operands in place of the run's ("": the run's), e.g. ``fp16`` for
    the first and last layers IBM keeps in FP16 (:func:`~hfp8sim.workloads.network.keep_first_last`); vector
    layers run in the run's scheme."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise _fail("", f"a layer name must be a non-empty string, got {self.name!r}")
        if isinstance(self.inputs, str) or not isinstance(self.inputs, (tuple, list)):
            raise _fail(self.name, f"inputs must be a list of layer names, got {self.inputs!r}")
        if any(not (i is None or (isinstance(i, str) and i)) for i in self.inputs):
            raise _fail(self.name, f"inputs must be layer names or null, got {list(self.inputs)!r}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if self.pass_ not in PASSES:
            raise _fail(self.name, f"pass must be one of {', '.join(PASSES)}; got {self.pass_!r}")
        if not isinstance(self.precision, str) or (self.precision and not self.is_gemm):
            raise _fail(self.name, f"precision {self.precision!r}: a scheme name, for a GEMM layer (conv2d or "
                                   "matmul) only; vector layers run in the run's scheme")
        # the order of the checks below is the order in which a layer with several mistakes reports them
        self._check_declared()
        _check_positive(self.name, **{key: getattr(self, key) for key in self.sizes})
        self._check_fields()
        problem = self._input_count_problem()
        if problem:
            raise _fail(self.name, problem)
        self._check_output()

    # -- construction hooks, in the order __post_init__ calls them
    def _check_declared(self) -> None:
        """Check what the layer is: its kind (and, for a shaped layer, its shape)."""
        kind = getattr(self, "kind", None)
        if self.kinds and kind not in self.kinds:
            raise _fail(self.name, f"unknown {self.kind_noun} {kind!r}; known: {', '.join(self.kinds)}")

    def _check_fields(self) -> None:
        """Check (and normalise) the fields only this layer type has."""

    def _input_count_problem(self) -> str | None:
        if self.single_input and len(self.inputs) > 1:
            return f"{self.op_name} takes one input, got {len(self.inputs)}"
        return None

    def _check_output(self) -> None:
        """Check that the output is not empty (for the layers whose sizes do not already ensure it)."""

    # -- what every layer answers; overridden where a layer type differs
    @property
    def op_name(self) -> str:
        """The YAML ``op`` of the layer: its kind for element-wise, norm and pool layers, else its type's op."""
        return getattr(self, "kind", None) or self.op

    @property
    def output_shape(self) -> Shape:
        raise NotImplementedError

    @property
    def macs(self) -> int:
        """Multiply-accumulates on the array (zero for vector layers)."""
        return 0

    @property
    def weight_elements(self) -> int:
        """Elements of the layer's own parameters read from memory (weights, tables); biases not counted."""
        return 0

    @property
    def param_elements(self) -> int:
        """Trainable parameter elements a forward layer owns (what an optimizer updates); 0 for layers without
        parameters and for every backward or update layer.  Biases are not counted: no layer type says
        whether it has one (a bias added in a GEMM's epilogue is not a layer of the workload)."""
        return 0

    @property
    def output_elements(self) -> int:
        return shape_elements(self.output_shape)

    @property
    def operand_roles(self) -> tuple[tuple[str, str], ...]:
        """(operand name, role) for each input operand; roles are from :data:`ROLES`."""
        return tuple((f"input{i}", self.output_role) for i in range(max(len(self.inputs), 1)))

    @property
    def output_role(self) -> str:
        return "activation" if self.pass_ == "forward" else "gradient"

    @property
    def producers(self) -> tuple[str, ...]:
        """Names of the layers feeding this one (operands from outside the network left out)."""
        return tuple(i for i in self.inputs if i is not None)

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        """Problem with operand ``index`` fed by ``producer`` of output ``shape``, or None if it fits."""
        return None

    def check_input_count(self) -> str | None:
        """Problem with the number of inputs as a network sees it (every operand accounted for), or None."""
        return None

    def vector_work(self) -> VectorWork:
        """The lane operations of the layer on the vector unit: none for GEMM layers and data movement."""
        return VectorWork()

    def default_inputs(self, previous: str | None) -> tuple[str | None, ...] | None:
        """The inputs a workload file's loader gives the layer when the file names none: the previous layer
        (``previous``), or None where the loader refuses to guess and the file must name them."""
        return (previous,)

    def yaml_fields(self) -> tuple[YamlField, ...]:
        """The layer's own keys in a workload file, in the order written (``name``, ``op``, the inputs and
        the pass are common to every layer and written by :mod:`~hfp8sim.workloads.dump`)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class VectorLayer(Layer):
    """A layer the vector unit runs: ``elements`` are its output elements, ``ops`` its element operations."""

    @property
    def elements(self) -> int:
        return self.output_elements

    @property
    def ops(self) -> int:
        """Element operations: one per output element unless the layer type says otherwise."""
        return self.elements


@dataclass(frozen=True, kw_only=True)
class ShapedLayer(VectorLayer):
    """A vector layer whose output is a tensor of the ``shape`` it declares (given as any sequence)."""

    shape: Shape

    @property
    def output_shape(self) -> Shape:
        return self.shape

    def _check_declared(self) -> None:
        super()._check_declared()
        _check_shape(self.name, "shape", self.shape)
        object.__setattr__(self, "shape", tuple(self.shape))


@dataclass(frozen=True, kw_only=True)
class ImageLayer(Layer):
    """A layer that reads one N,C,H,W image and must get exactly the image it declares."""

    C: int
    H: int
    W: int
    N: int = 1

    @property
    def input_shape(self) -> Shape:
        return (self.N, self.C, self.H, self.W)

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        return _check_nchw(self, producer, shape, self.input_shape)


@dataclass(frozen=True, kw_only=True)
class WindowLayer(ImageLayer):
    """An R x S window sliding over the image (a conv's filters, a pooling window), output N,?,P,Q.

    ``stride`` is (h, w) and ``padding`` (top, bottom, left, right); give ``stride`` as an int or a pair,
    ``padding`` as one int, an (h, w) pair, four numbers, or ``"same"`` (TensorFlow rule: output
    ``ceil(H/stride)``, the odd pixel at the bottom/right).  Both are stored as the explicit tuples.
    """

    R: int
    S: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    def _place_window(self, dilation: object = (1, 1)) -> tuple[int, int]:
        """Check and store ``stride`` and ``padding`` as explicit tuples; returns ``dilation`` as a pair."""
        n = self.name
        stride = _pair(n, "stride", self.stride)
        dilation_pair = _pair(n, "dilation", dilation)
        _check_positive(n, stride_h=stride[0], stride_w=stride[1],
                        dilation_h=dilation_pair[0], dilation_w=dilation_pair[1])  # fmt: skip
        padding = _padding4(n, self.padding, self.H, self.W, self.R, self.S, stride, dilation_pair)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", padding)
        return dilation_pair

    def _output_rule(self) -> tuple[tuple[int, int], str, bool]:
        """What besides the window, stride and padding sets P and Q: (dilation, convention, ceil_mode)."""
        return (1, 1), "native", False

    def _output_size(self, axis: int) -> int:
        dilation, convention, ceil_mode = self._output_rule()
        size, kernel = (self.H, self.R) if axis == 0 else (self.W, self.S)
        before, after = self.padding[2 * axis : 2 * axis + 2]
        return _out_size(size, before, after, kernel, self.stride[axis], dilation[axis], convention, ceil_mode)

    @property
    def P(self) -> int:
        """Output height."""
        return self._output_size(0)

    @property
    def Q(self) -> int:
        """Output width."""
        return self._output_size(1)


# ------------------------------------------------------------------------------------------ GEMM layers


@dataclass(frozen=True, kw_only=True)
class Conv2d(WindowLayer):
    """2-D convolution, N,C,H,W input, K filters of R x S, output N,K,P,Q.

    ``stride``, ``padding`` as for every :class:`WindowLayer`; ``dilation`` is (h, w).  ``groups`` splits C
    and K into independent convolutions; depthwise is ``groups == C == K``.  With ``convention="scalesim"``
    the output size follows SCALE-Sim (no padding, ceil), so P and Q count its phantom edge outputs.
    """

    op: ClassVar[str] = "conv2d"
    is_gemm: ClassVar[bool] = True
    is_conv: ClassVar[bool] = True
    sizes: ClassVar[tuple[str, ...]] = ("N", "C", "H", "W", "K", "R", "S", "groups")

    K: int
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    convention: str = "native"

    def _check_fields(self) -> None:
        n = self.name
        object.__setattr__(self, "dilation", self._place_window(self.dilation))
        if self.convention not in CONVENTIONS:
            raise _fail(n, f"convention must be one of {', '.join(CONVENTIONS)}; got {self.convention!r}")
        if self.C % self.groups or self.K % self.groups:
            raise _fail(n, f"groups={self.groups} must divide both C={self.C} and K={self.K}")
        if self.convention == "scalesim":
            if any(self.padding) or self.dilation != (1, 1):
                raise _fail(n, "a SCALE-Sim convention conv has no padding and no dilation")
            if self.R > self.H or self.S > self.W:
                raise _fail(n, f"filter {self.R}x{self.S} is larger than the {self.H}x{self.W} input")

    def _check_output(self) -> None:
        if self.P < 1 or self.Q < 1:
            raise _fail(
                self.name,
                f"the {self.R}x{self.S} filter (dilation {self.dilation}) does not fit the padded "
                f"{self.H}x{self.W} input: output would be {self.P}x{self.Q}",
            )

    def _output_rule(self) -> tuple[tuple[int, int], str, bool]:
        return self.dilation, self.convention, False

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.C == self.K

    @property
    def output_shape(self) -> Shape:
        """Forward: Y (N, K, P, Q).  Weight gradient: dW in the weight's layout.  Data gradient: dX when the
        lowering is the identity (1x1, stride 1, no padding or dilation), else the col2im form's ``dX_col``
        (groups x (N*P*Q, (C/g)*R*S)) that a col2im scatter-add turns into dX."""
        if self.pass_ == "backward_weight":
            return self.weight_shape
        if self.pass_ == "backward_data":
            if self.lowering_is_identity:
                return self.input_shape
            cols = (self.N * self.P * self.Q, self.C // self.groups * self.R * self.S)
            return (self.groups, *cols) if self.groups > 1 else cols
        return (self.N, self.K, self.P, self.Q)

    @property
    def lowering_is_identity(self) -> bool:
        """Whether im2col is a plain relayout of the input (each input element in exactly one row)."""
        return (self.R, self.S, self.stride, self.dilation) == (1, 1, (1, 1), (1, 1)) and not any(self.padding)

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        """Forward: operand 0 is X.  A backward pass reads dY first (any layout of N*K*P*Q elements), and the
        weight gradient then reads X."""
        if self.pass_ == "forward" or index == 1:
            return _check_nchw(self, producer, shape, self.input_shape)
        want = self.N * self.K * self.P * self.Q
        if shape_elements(shape) != want:
            return f"the output gradient has N*K*P*Q={want} elements but its input {producer} gives " \
                   f"{shape_elements(shape)}"
        return None

    @property
    def param_elements(self) -> int:
        return self.weight_elements if self.pass_ == "forward" else 0

    @property
    def weight_shape(self) -> Shape:
        """(K, C/groups, R, S), the PyTorch/ONNX weight layout."""
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def weight_elements(self) -> int:
        return shape_elements(self.weight_shape)

    @property
    def macs(self) -> int:
        return self.N * self.P * self.Q * self.K * (self.C // self.groups) * self.R * self.S

    @property
    def operand_roles(self) -> tuple[tuple[str, str], ...]:
        if self.pass_ == "forward":
            return (("input", "activation"), ("weight", "weight"))
        if self.pass_ == "backward_data":
            return (("output_grad", "gradient"), ("weight", "weight"))
        return (("output_grad", "gradient"), ("input", "activation"))

    def gemm(self) -> GemmShape:
        """The lowering the datapath runs: one GEMM per group (``batch = groups``).

        * forward: ``Y[NPQ, K/g] = X_col[NPQ, (C/g)RS] @ W[(C/g)RS, K/g]``; rows (n, p, q) row-major, columns
          k, reduction ``(r*S + s)*(C/g) + c`` (order r, s, c; channel fastest).
        * backward_data (col2im form): ``dX_col[NPQ, (C/g)RS] = dY[NPQ, K/g] @ W^T[K/g, (C/g)RS]``, then a
          col2im scatter-add on the vector unit; reduction over k.
        * backward_weight: ``dW^T[K/g, (C/g)RS] = dY^T[K/g, NPQ] @ X_col[NPQ, (C/g)RS]``; reduction over
          (n, p, q).

        All three passes do the same number of MACs.
        """
        g = self.groups
        npq, cg, kg = self.N * self.P * self.Q, self.C // g, self.K // g
        rsc = ("r", "s", "c")
        if self.pass_ == "forward":
            return GemmShape(npq, kg, cg * self.R * self.S, g, "activation", "weight",
                             ("n", "p", "q"), ("k",), rsc)  # fmt: skip
        if self.pass_ == "backward_data":
            return GemmShape(npq, cg * self.R * self.S, kg, g, "gradient", "weight",
                             ("n", "p", "q"), rsc, ("k",))  # fmt: skip
        return GemmShape(kg, cg * self.R * self.S, npq, g, "gradient", "activation",
                         ("k",), rsc, ("n", "p", "q"))  # fmt: skip

    def vector_unit_work(self) -> VectorWork:
        """The conv as lane work, for running it on the vector unit instead of the array (what accelerators
        do with depthwise convs): one fused multiply-add lane-op per MAC; the input tensor and the weights
        are read, the output tensor written (``vector_work()`` stays empty: by default a conv is a GEMM)."""
        read = shape_elements(self.input_shape) + self.weight_elements
        return VectorWork(elementwise=float(self.macs), in_elements=float(read), out_elements=float(self.output_elements))

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return (
            YamlField("N", self.N, 1),
            *_given(self, "C H W K R S"),
            YamlField("stride", _pair_value(self.stride), 1),
            YamlField("padding", _padding_value(self.padding), 0),
            YamlField("dilation", _pair_value(self.dilation), 1),
            YamlField("groups", self.groups, 1),
            YamlField("convention", self.convention, "native"),
        )


@dataclass(frozen=True, kw_only=True)
class MatMul(Layer):
    """``batch`` independent GEMMs ``A[M,K] @ B[K,N]`` (a fully connected layer, a projection, or an
    attention product with ``batch`` = heads).

    ``a_role`` and ``b_role`` (from :data:`ROLES`) say which operands are weights: a linear layer is
    ``activation @ weight``; attention's ``Q K^T`` and ``P V`` have two activations.  ``inputs`` names the
    producers of the non-weight operands in order (A first).
    """

    op: ClassVar[str] = "matmul"
    is_gemm: ClassVar[bool] = True
    sizes: ClassVar[tuple[str, ...]] = ("M", "N", "K", "batch")

    # in the order of the output, (batch, M, N), then the reduction
    batch: int = 1
    M: int
    N: int
    K: int
    a_role: str = "activation"
    b_role: str = "weight"
    convention: str = "native"

    def _check_fields(self) -> None:
        for key, role in (("a_role", self.a_role), ("b_role", self.b_role)):
            if role not in ROLES:
                raise _fail(self.name, f"{key} must be one of {', '.join(ROLES)}; got {role!r}")
        if self.a_role == "weight" and self.b_role == "weight":
            raise _fail(self.name, "a matmul of two weights is a constant: at most one operand is a weight")
        if self.convention not in CONVENTIONS:
            raise _fail(self.name, f"convention must be one of {', '.join(CONVENTIONS)}; got {self.convention!r}")

    def _input_count_problem(self) -> str | None:
        if len(self.inputs) > self.num_data_operands:
            return f"has {len(self.inputs)} inputs but only {self.num_data_operands} non-weight operand(s)"
        return None

    def check_input_count(self) -> str | None:
        if len(self.inputs) in (0, self.num_data_operands):
            return None
        return (
            f"has {self.num_data_operands} non-weight operand(s) (a_role={self.a_role}, b_role={self.b_role}) "
            f"but {len(self.inputs)} input(s); use null for an operand from outside the network"
        )

    def default_inputs(self, previous: str | None) -> tuple[str | None, ...] | None:
        return None if self.num_data_operands == 2 else (previous,)

    @property
    def num_data_operands(self) -> int:
        """Operands that are not weights (they come from producers or from outside the network)."""
        return (self.a_role != "weight") + (self.b_role != "weight")

    @property
    def output_shape(self) -> Shape:
        return (self.batch, self.M, self.N) if self.batch > 1 else (self.M, self.N)

    @property
    def macs(self) -> int:
        return self.batch * self.M * self.N * self.K

    @property
    def weight_elements(self) -> int:
        if self.a_role == "weight":
            return self.batch * self.M * self.K
        if self.b_role == "weight":
            return self.batch * self.K * self.N
        return 0

    @property
    def param_elements(self) -> int:
        return self.weight_elements if self.pass_ == "forward" else 0

    @property
    def operand_roles(self) -> tuple[tuple[str, str], ...]:
        return (("a", self.a_role), ("b", self.b_role))

    def gemm(self) -> GemmShape:
        return GemmShape(self.M, self.N, self.K, self.batch, self.a_role, self.b_role)

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        operands = [(op, role) for op, role in self.operand_roles if role != "weight"]
        which, _ = operands[index]
        rows, cols = (self.M, self.K) if which == "a" else (self.K, self.N)
        need = self.batch * rows * cols
        have = shape_elements(shape)
        if self.num_data_operands == 1 and self.batch == 1 and which == "a":
            # a linear layer: its input's features are the reduction, read as the last axis, as C*H*W of a
            # flattened image, or as heads*head_size of attention heads merged back (h, L, dh) -> (L, h*dh)
            flattened = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            merged_heads = shape[-3] * shape[-1] if len(shape) >= 3 else None
            # heads of several sequences (batch*heads, L, dh) merged back: the same elements as (M, K)
            merged_batch = self.K if len(shape) >= 3 and shape_elements(shape) == self.M * self.K else None
            if self.K not in (shape[-1], flattened, merged_heads, merged_batch):
                if len(shape) == 4:
                    return f"K={self.K} but its input {producer} gives {flattened} features (C*H*W)"
                return f"K={self.K} but its input {producer} gives {shape[-1]} features"
            if len(shape) == 4 and self.K == flattened and shape[0] != self.M:
                return f"M={self.M} but its input {producer} gives batch N={shape[0]}"
        # otherwise the operand may be a view of the producer's output (heads split from a fused QKV
        # projection, a transpose, one token's row): it must fit inside it
        if need > have or have % need:
            return (
                f"operand {which.upper()} has {need} elements (batch*{'M*K' if which == 'a' else 'K*N'}) but "
                f"its input {producer} gives {have} ({_fmt_shape(shape)}), not a whole multiple"
            )
        return None

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return (
            *_given(self, "M N K"),
            YamlField("batch", self.batch, 1),
            YamlField("a_role", self.a_role, "activation"),
            YamlField("b_role", self.b_role, "weight"),
            YamlField("convention", self.convention, "native"),
        )


# ---------------------------------------------------------------------------------------- vector layers


@dataclass(frozen=True, kw_only=True)
class Elementwise(ShapedLayer):
    """An element-wise operation over a tensor of ``shape`` (one of :data:`ELEMENTWISE_OPS`).

    Binary ops take their operands from ``inputs``; with a single producer the other operand is a
    parameter (a bias, a mask).  ``add`` with n producers sums n tensors (a residual add has two).  An
    operand of a binary op may broadcast to ``shape`` (numpy rules), like a squeeze-excite gate.
    """

    op: ClassVar[str] = "elementwise"
    kinds: ClassVar[tuple[str, ...]] = ELEMENTWISE_OPS
    kind_noun: ClassVar[str] = "element-wise op"

    kind: str

    def _input_count_problem(self) -> str | None:
        if self.kind in BINARY_OPS or len(self.inputs) <= 1:
            return None
        return f"{self.kind} takes one input, got {len(self.inputs)}"

    @property
    def num_operands(self) -> int:
        """Tensors read per output element (a binary op with one producer also reads a parameter)."""
        return max(len(self.inputs), 2) if self.kind in BINARY_OPS else 1

    @property
    def ops(self) -> int:
        return self.elements * max(self.num_operands - 1, 1)

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        if self.kind in BINARY_OPS and _broadcasts(shape, self.shape):
            return None  # e.g. a squeeze-excite gate: (N, C, 1, 1) times (N, C, H, W)
        return _check_same_tensor(self, producer, shape, self.shape)

    def vector_work(self) -> VectorWork:
        n = float(self.elements)
        read = n * self.num_operands
        if self.kind in SPECIAL_ELEMENTWISE:  # e.g. GELU: erf, then x * 0.5 * (1 + erf)
            return VectorWork(elementwise=3 * n, special=n, in_elements=read, out_elements=n)
        return VectorWork(elementwise=float(self.ops), in_elements=read, out_elements=n, fusable=True)

    def default_inputs(self, previous: str | None) -> tuple[str | None, ...] | None:
        return None if self.kind in BINARY_OPS else (previous,)

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return (YamlField("shape", list(self.shape), inferable=True),)


@dataclass(frozen=True, kw_only=True)
class Softmax(VectorLayer):
    """Softmax over ``cols`` for each of ``rows`` rows."""

    op: ClassVar[str] = "softmax"
    sizes: ClassVar[tuple[str, ...]] = ("rows", "cols")
    single_input: ClassVar[bool] = True

    rows: int
    cols: int

    @property
    def output_shape(self) -> Shape:
        return (self.rows, self.cols)

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        have = shape_elements(shape)
        if have != self.elements:
            return f"rows*cols={self.rows}*{self.cols}={self.elements} but its input {producer} gives {have} elements"
        if len(shape) != 4 and shape[-1] != self.cols:
            return f"cols={self.cols} but its input {producer} gives rows of {shape[-1]}"
        return None

    def vector_work(self) -> VectorWork:
        n = float(self.elements)
        # max and sum reductions, subtract max and scale by 1/sum, exp per element and a reciprocal per row
        return VectorWork(elementwise=2 * n, special=n + self.rows, reduction=2 * n, in_elements=n, out_elements=n)

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return _given(self, "rows cols", inferable=True)


@dataclass(frozen=True, kw_only=True)
class Norm(ShapedLayer):
    """A normalisation over a tensor of ``shape``: ``batchnorm`` (per channel, axis 1 of N,C,H,W or N,C),
    ``layernorm`` (over the last axis) or ``lrn`` (local response norm across ``size`` channels).

    ``elements`` and ``channels`` are what the vector unit needs: the inference cost is one scale-and-shift
    per element (batchnorm), a mean/variance per row of ``channels`` (layernorm).

    ``folded``: an inference batch norm folded into the weights and bias of the conv or linear layer that
    produces its input (the :class:`~hfp8sim.workloads.network.Network` decides, see
    :func:`~hfp8sim.workloads.network.folds_batch_norm`); it then costs nothing on the vector unit and moves
    no bytes: the per-channel scale is in the weights and the shift is the GEMM's output-stage bias.
    """

    op: ClassVar[str] = "norm"
    kinds: ClassVar[tuple[str, ...]] = NORM_OPS
    kind_noun: ClassVar[str] = "normalisation"
    sizes: ClassVar[tuple[str, ...]] = ("size",)
    single_input: ClassVar[bool] = True

    kind: str
    size: int = 1
    folded: bool = False
    batch_statistics: bool = False
    """(batchnorm) Normalise with the batch's own mean and variance, as training does, instead of constants."""

    def _check_fields(self) -> None:
        if self.kind in ("batchnorm", "lrn") and len(self.shape) < 2:
            raise _fail(self.name, f"{self.kind} needs at least N,C axes, got shape {_fmt_shape(self.shape)}")
        if self.batch_statistics and self.kind != "batchnorm":
            raise _fail(self.name, f"batch_statistics is a batchnorm's, not a {self.kind}'s")
        if self.folded and (self.kind != "batchnorm" or self.pass_ != "forward" or self.batch_statistics):
            raise _fail(self.name, f"only a forward batchnorm folds into its producer's weights, not a "
                                   f"{self.kind} in pass {self.pass_}")

    @property
    def channels(self) -> int:
        """Normalised features: C for batchnorm/lrn (axis 1), the last axis for layernorm."""
        return self.shape[-1] if self.kind == "layernorm" else self.shape[1]

    @property
    def rows(self) -> int:
        """Independent normalisations (layernorm): elements / channels."""
        return self.elements // self.channels

    @property
    def ops(self) -> int:
        return self.elements * (self.size if self.kind == "lrn" else 1)

    @property
    def weight_elements(self) -> int:
        # scale and shift per channel (batchnorm also has running mean and variance, folded at inference)
        return 2 * self.channels if self.kind != "lrn" else 0

    @property
    def param_elements(self) -> int:
        return self.weight_elements if self.pass_ == "forward" else 0

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        if self.kind != "layernorm" and len(self.shape) == 4:
            return _check_nchw(self, producer, shape, self.shape)
        problem = _check_same_tensor(self, producer, shape, self.shape)
        if problem is None and self.kind == "layernorm" and len(shape) != 4 and shape[-1] != self.channels:
            return f"channels={self.channels} but its input {producer} gives {shape[-1]} features"
        return problem

    def vector_work(self) -> VectorWork:
        n = float(self.elements)
        if self.kind == "layernorm":  # mean and variance, normalise, scale and shift; rsqrt per row
            return VectorWork(elementwise=3 * n, special=float(self.rows), reduction=2 * n, in_elements=n,
                              out_elements=n)  # fmt: skip
        if self.kind == "batchnorm" and self.folded:  # in the producer's weights and output-stage bias
            return VectorWork(folded=True)
        if self.kind == "batchnorm" and self.batch_statistics:
            # a statistics pass (sum, sum of squares per channel; rsqrt per channel), then a pass that
            # normalises, scales and shifts: the input is read twice and the layer cannot ride on the
            # producing GEMM's output stage (the statistics need every tile first)
            return VectorWork(elementwise=3 * n, special=float(self.channels), reduction=2 * n,
                              in_elements=2 * n, out_elements=n)
        if self.kind == "batchnorm":  # inference: one scale and one shift per element
            return VectorWork(elementwise=2 * n, in_elements=n, out_elements=n, fusable=True)
        return VectorWork(elementwise=float(self.ops), special=n, in_elements=n, out_elements=n)  # lrn

    def yaml_fields(self) -> tuple[YamlField, ...]:
        shape = YamlField("shape", list(self.shape), inferable=True)
        return (shape, YamlField("size", self.size)) if self.kind == "lrn" else (shape,)


@dataclass(frozen=True, kw_only=True)
class Pool(VectorLayer, WindowLayer):
    """``maxpool`` or ``avgpool`` of an R x S window over an N,C,H,W tensor (``stride`` and ``padding`` as
    for every :class:`WindowLayer`; ``ceil_mode`` rounds the output size up as PyTorch does)."""

    op: ClassVar[str] = "pool"
    kinds: ClassVar[tuple[str, ...]] = POOL_OPS
    kind_noun: ClassVar[str] = "pooling"
    sizes: ClassVar[tuple[str, ...]] = ("N", "C", "H", "W", "R", "S")
    single_input: ClassVar[bool] = True

    kind: str
    # no default (a pooling window's stride is always given); field() keeps the window's (1, 1) from
    # being inherited as one
    stride: tuple[int, int] = field()
    ceil_mode: bool = False

    def _check_fields(self) -> None:
        self._place_window()
        if not isinstance(self.ceil_mode, bool):
            raise _fail(self.name, f"ceil_mode must be true or false, got {self.ceil_mode!r}")

    def _check_output(self) -> None:
        if self.P < 1 or self.Q < 1:
            raise _fail(self.name, f"the {self.R}x{self.S} window does not fit the padded {self.H}x{self.W} input")

    def _output_rule(self) -> tuple[tuple[int, int], str, bool]:
        return (1, 1), "native", self.ceil_mode

    @property
    def output_shape(self) -> Shape:
        return (self.N, self.C, self.P, self.Q)

    @property
    def ops(self) -> int:
        """Window taps: one compare (max) or add (avg) per input element of every window."""
        return self.elements * self.R * self.S

    def vector_work(self) -> VectorWork:
        return VectorWork(reduction=float(self.ops), in_elements=float(shape_elements(self.input_shape)),
                          out_elements=float(self.elements))  # fmt: skip

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return (
            *_given(self, "N C H W", inferable=True),
            *_given(self, "R S"),
            YamlField("stride", _pair_value(self.stride)),
            YamlField("padding", _padding_value(self.padding), 0),
            YamlField("ceil_mode", self.ceil_mode, False),
        )


@dataclass(frozen=True, kw_only=True)
class GlobalAvgPool(VectorLayer, ImageLayer):
    """Average over all H x W positions of each channel: N,C,H,W -> N,C,1,1."""

    op: ClassVar[str] = "global_avgpool"
    sizes: ClassVar[tuple[str, ...]] = ("N", "C", "H", "W")
    single_input: ClassVar[bool] = True

    @property
    def output_shape(self) -> Shape:
        return (self.N, self.C, 1, 1)

    @property
    def ops(self) -> int:
        return self.N * self.C * self.H * self.W

    def vector_work(self) -> VectorWork:  # sum every position, then one scale per channel
        n_in = float(self.ops)
        return VectorWork(reduction=n_in, elementwise=float(self.elements), in_elements=n_in,
                          out_elements=float(self.elements))  # fmt: skip

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return _given(self, "N C H W", inferable=True)


@dataclass(frozen=True, kw_only=True)
class Embedding(VectorLayer):
    """``lookups`` rows gathered from a ``vocab`` x ``dim`` table (token, position or type embeddings).

    The indices come from outside the network, so an embedding has no producer.
    """

    op: ClassVar[str] = "embedding"
    sizes: ClassVar[tuple[str, ...]] = ("lookups", "dim", "vocab")

    lookups: int
    dim: int
    vocab: int

    def _input_count_problem(self) -> str | None:
        if self.producers:
            return "an embedding reads token ids from outside the network; it has no input layer"
        return None

    @property
    def output_shape(self) -> Shape:
        return (self.lookups, self.dim)

    @property
    def ops(self) -> int:
        """Row gathers."""
        return self.lookups

    @property
    def weight_elements(self) -> int:
        """The rows actually read (the table itself is ``vocab * dim``)."""
        return self.lookups * self.dim

    @property
    def param_elements(self) -> int:
        """The whole table: a dense optimizer step updates every row, not only the rows looked up."""
        return self.vocab * self.dim if self.pass_ == "forward" else 0

    @property
    def operand_roles(self) -> tuple[tuple[str, str], ...]:
        return (("table", "weight"),)

    def vector_work(self) -> VectorWork:
        n = float(self.elements)
        return VectorWork(elementwise=n, in_elements=n, out_elements=n)

    def default_inputs(self, previous: str | None) -> tuple[str | None, ...] | None:
        return ()

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return _given(self, "lookups dim vocab")


@dataclass(frozen=True, kw_only=True)
class Concat(ShapedLayer):
    """Concatenation of its inputs along ``axis`` into ``shape`` (data movement, no arithmetic)."""

    op: ClassVar[str] = "concat"

    axis: int = 1

    def _check_fields(self) -> None:
        if not -len(self.shape) <= self.axis < len(self.shape):
            raise _fail(self.name, f"axis {self.axis} is out of range for shape {_fmt_shape(self.shape)}")

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        axis = self.axis % len(self.shape)
        if len(shape) != len(self.shape) or any(
            a != b for i, (a, b) in enumerate(zip(shape, self.shape)) if i != axis
        ):
            return (
                f"its input {producer} gives shape {_fmt_shape(shape)}, which cannot be concatenated along "
                f"axis {self.axis} into {_fmt_shape(self.shape)}"
            )
        return None

    def default_inputs(self, previous: str | None) -> tuple[str | None, ...] | None:
        return None

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return (YamlField("shape", list(self.shape), inferable=True), YamlField("axis", self.axis, 1))


@dataclass(frozen=True, kw_only=True)
class Reshape(ShapedLayer):
    """A view of its input as ``shape`` (flatten, heads split, N,C,H,W to tokens); costs nothing here."""

    op: ClassVar[str] = "reshape"
    single_input: ClassVar[bool] = True

    @property
    def ops(self) -> int:
        return 0

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        if shape_elements(shape) != self.elements:
            return (
                f"shape {_fmt_shape(self.shape)} has {self.elements} elements but its input {producer} "
                f"gives {shape_elements(shape)} ({_fmt_shape(shape)})"
            )
        return None

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return (YamlField("shape", list(self.shape)),)


# -------------------------------------------------------------------------------------- shape checks


def _check_shape(layer_name: str, key: str, shape: object) -> None:
    if isinstance(shape, str) or not isinstance(shape, (tuple, list)) or not shape:
        raise _fail(layer_name, f"{key} must be a non-empty list of positive integers, got {shape!r}")
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise _fail(layer_name, f"{key} must be a non-empty list of positive integers, got {list(shape)!r}")


def _check_nchw(layer: Layer, producer: str, shape: Shape, expected: Shape) -> str | None:
    """An N,C,H,W consumer must get exactly the tensor it declares."""
    N, C, H, W = expected
    if len(shape) != 4:
        return f"expects an N,C,H,W input but its input {producer} gives shape {_fmt_shape(shape)}"
    if shape[1] != C:
        return f"C={C} but its input {producer} gives {shape[1]} channels"
    if (shape[2], shape[3]) != (H, W):
        return f"H,W={H},{W} but its input {producer} gives {shape[2]},{shape[3]}"
    if shape[0] != N:
        return f"N={N} but its input {producer} gives batch {shape[0]}"
    return None


def _broadcasts(shape: Shape, target: Shape) -> bool:
    """Whether ``shape`` broadcasts to ``target`` (numpy rules: right-aligned, each axis equal or 1)."""
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(reversed(shape), reversed(target)))


def _check_same_tensor(layer: Layer, producer: str, shape: Shape, expected: Shape) -> str | None:
    """An element-wise consumer must get a tensor of its own size (and, for images, its own shape)."""
    if len(shape) == 4 and len(expected) == 4:
        if shape[1] != expected[1]:
            return f"C={expected[1]} but its input {producer} gives {shape[1]} channels"
        if shape != expected:
            return f"shape {_fmt_shape(expected)} but its input {producer} gives {_fmt_shape(shape)}"
        return None
    if shape_elements(shape) != shape_elements(expected):
        return f"shape {_fmt_shape(expected)} but its input {producer} gives {_fmt_shape(shape)}"
    return None


# ------------------------------------------------------------------------------------------- registry

LAYER_TYPES: tuple[type[Layer], ...] = (
    Conv2d, MatMul, Elementwise, Softmax, Norm, Pool, GlobalAvgPool, Embedding, Concat, Reshape,
)  # fmt: skip

__all__ = [  # fmt: skip
    # vocabularies
    "BINARY_OPS", "CONVENTIONS", "ELEMENTWISE_OPS", "NORM_OPS", "PASSES", "POOL_OPS", "ROLES", "SPECIAL_ELEMENTWISE",
    # what a layer asks of the core, and how a file writes it
    "GemmShape", "VectorWork", "YamlField", "Shape",
    # the shared bases
    "Layer", "VectorLayer", "ShapedLayer", "ImageLayer", "WindowLayer",
    # the layer types
    "Conv2d", "MatMul", "Elementwise", "Softmax", "Norm", "Pool", "GlobalAvgPool", "Embedding", "Concat", "Reshape",
    "LAYER_TYPES",
    # shape arithmetic
    "same_padding", "shape_elements", "shape_features",
]
