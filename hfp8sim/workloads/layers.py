"""Layer types: the shapes of the work a network asks of the core, and nothing else.

Every layer is a frozen dataclass that checks itself when built (positive sizes, consistent groups, an output
that is not empty) and raises :class:`~hfp8sim.errors.WorkloadError` otherwise.  Layers carry no data and no
timing: the schedule, the datapath and the timing model read their shapes.

Two families:

* **GEMM layers** run on the array: :class:`Conv2d` and :class:`MatMul`.  Each has ``macs`` and ``gemm()``,
  the lowering the datapath and the timing model both use (see :class:`GemmShape`).
* **Vector layers** run on the vector unit: :class:`Elementwise`, :class:`Softmax`, :class:`Norm`,
  :class:`Pool`, :class:`Embedding`, and the data-movement layers :class:`Concat` and :class:`Reshape`.  Each
  has ``elements`` (output elements) and ``ops`` (element operations) for the vector-unit model.

Every layer also says which of its operands are activations, weights or gradients (``operand_roles``), so a
precision scheme can pick each operand's format, and which training pass it belongs to (``pass_``).

Connectivity: ``inputs`` names the layers whose outputs feed this one, in operand order; ``None`` (or an
empty tuple) means the operand comes from outside the network (the image, the token ids, a KV cache).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ..errors import WorkloadError

PASSES = ("forward", "backward_data", "backward_weight")
"""Training passes: the forward pass, the data-gradient pass (dX) and the weight-gradient pass (dW)."""

ROLES = ("activation", "weight", "gradient")
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


# ------------------------------------------------------------------------------------------- GEMM shape


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


# ------------------------------------------------------------------------------------------- base class


@dataclass(frozen=True, kw_only=True)
class Layer:
    """Common part of every layer: its name, its producers, and its training pass.

    ``inputs`` lists the producer layer of each non-weight operand in operand order (``None`` = from outside
    the network); ``pass_`` is one of :data:`PASSES`.  Subclasses define ``output_shape``, the operand roles
    and the work counts.
    """

    op: ClassVar[str] = ""
    is_gemm: ClassVar[bool] = False

    name: str
    inputs: tuple[str | None, ...] = ()
    pass_: str = "forward"

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

    # -- what every layer answers; overridden below
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
    def output_elements(self) -> int:
        return shape_elements(self.output_shape)

    @property
    def operand_roles(self) -> tuple[tuple[str, str], ...]:
        """(operand name, role) for each input operand; roles are from :data:`ROLES`."""
        role = "activation" if self.pass_ == "forward" else "gradient"
        return tuple((f"input{i}", role) for i in range(max(len(self.inputs), 1)))

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


# ------------------------------------------------------------------------------------------ GEMM layers


@dataclass(frozen=True, kw_only=True)
class Conv2d(Layer):
    """2-D convolution, N,C,H,W input, K filters of R x S, output N,K,P,Q.

    ``stride`` and ``dilation`` are (h, w); ``padding`` is (top, bottom, left, right).  Give ``padding`` as
    one int, an (h, w) pair, four numbers, or ``"same"`` (TensorFlow rule: output ``ceil(H/stride)``, the odd
    pixel at the bottom/right); it is stored as the four explicit numbers.  ``groups`` splits C and K into
    independent convolutions; depthwise is ``groups == C == K``.  With ``convention="scalesim"`` the output
    size follows SCALE-Sim (no padding, ceil), so P and Q count its phantom edge outputs.
    """

    op: ClassVar[str] = "conv2d"
    is_gemm: ClassVar[bool] = True

    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    N: int = 1
    # given as an int, a pair (or "same" / four numbers for padding); stored as the explicit tuples
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    convention: str = "native"

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        _check_positive(n, N=self.N, C=self.C, H=self.H, W=self.W, K=self.K, R=self.R, S=self.S,
                        groups=self.groups)  # fmt: skip
        stride = _pair(n, "stride", self.stride)
        dilation = _pair(n, "dilation", self.dilation)
        _check_positive(n, stride_h=stride[0], stride_w=stride[1],
                        dilation_h=dilation[0], dilation_w=dilation[1])  # fmt: skip
        padding = _padding4(n, self.padding, self.H, self.W, self.R, self.S, stride, dilation)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "dilation", dilation)
        object.__setattr__(self, "padding", padding)
        if self.convention not in CONVENTIONS:
            raise _fail(n, f"convention must be one of {', '.join(CONVENTIONS)}; got {self.convention!r}")
        if self.C % self.groups or self.K % self.groups:
            raise _fail(n, f"groups={self.groups} must divide both C={self.C} and K={self.K}")
        if self.convention == "scalesim":
            if any(padding) or dilation != (1, 1):
                raise _fail(n, "a SCALE-Sim convention conv has no padding and no dilation")
            if self.R > self.H or self.S > self.W:
                raise _fail(n, f"filter {self.R}x{self.S} is larger than the {self.H}x{self.W} input")
        if self.P < 1 or self.Q < 1:
            raise _fail(
                n,
                f"the {self.R}x{self.S} filter (dilation {dilation}) does not fit the padded "
                f"{self.H}x{self.W} input: output would be {self.P}x{self.Q}",
            )

    @property
    def P(self) -> int:
        """Output height."""
        top, bottom, _, _ = self.padding
        return _out_size(self.H, top, bottom, self.R, self.stride[0], self.dilation[0], self.convention)

    @property
    def Q(self) -> int:
        """Output width."""
        _, _, left, right = self.padding
        return _out_size(self.W, left, right, self.S, self.stride[1], self.dilation[1], self.convention)

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.C == self.K

    @property
    def output_shape(self) -> Shape:
        return (self.N, self.K, self.P, self.Q)

    @property
    def input_shape(self) -> Shape:
        return (self.N, self.C, self.H, self.W)

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

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        return _check_nchw(self, producer, shape, (self.N, self.C, self.H, self.W))


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

    M: int
    N: int
    K: int
    batch: int = 1
    a_role: str = "activation"
    b_role: str = "weight"
    convention: str = "native"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(self.name, M=self.M, N=self.N, K=self.K, batch=self.batch)
        for key, role in (("a_role", self.a_role), ("b_role", self.b_role)):
            if role not in ROLES:
                raise _fail(self.name, f"{key} must be one of {', '.join(ROLES)}; got {role!r}")
        if self.a_role == "weight" and self.b_role == "weight":
            raise _fail(self.name, "a matmul of two weights is a constant: at most one operand is a weight")
        if self.convention not in CONVENTIONS:
            raise _fail(self.name, f"convention must be one of {', '.join(CONVENTIONS)}; got {self.convention!r}")
        if len(self.inputs) > self.num_data_operands:
            raise _fail(
                self.name,
                f"has {len(self.inputs)} inputs but only {self.num_data_operands} non-weight operand(s)",
            )

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
            if self.K not in (shape[-1], flattened, merged_heads):
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


# ---------------------------------------------------------------------------------------- vector layers


@dataclass(frozen=True, kw_only=True)
class Elementwise(Layer):
    """An element-wise operation over a tensor of ``shape`` (one of :data:`ELEMENTWISE_OPS`).

    Binary ops take their operands from ``inputs``; with a single producer the other operand is a
    parameter (a bias, a mask).  ``add`` with n producers sums n tensors (a residual add has two).  An
    operand of a binary op may broadcast to ``shape`` (numpy rules), like a squeeze-excite gate.
    """

    op: ClassVar[str] = "elementwise"

    kind: str
    shape: Shape

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in ELEMENTWISE_OPS:
            raise _fail(self.name, f"unknown element-wise op {self.kind!r}; known: {', '.join(ELEMENTWISE_OPS)}")
        _check_shape(self.name, "shape", self.shape)
        object.__setattr__(self, "shape", tuple(self.shape))
        if self.kind not in BINARY_OPS and len(self.inputs) > 1:
            raise _fail(self.name, f"{self.kind} takes one input, got {len(self.inputs)}")

    @property
    def output_shape(self) -> Shape:
        return self.shape

    @property
    def elements(self) -> int:
        return shape_elements(self.shape)

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


@dataclass(frozen=True, kw_only=True)
class Softmax(Layer):
    """Softmax over ``cols`` for each of ``rows`` rows."""

    op: ClassVar[str] = "softmax"

    rows: int
    cols: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(self.name, rows=self.rows, cols=self.cols)
        if len(self.inputs) > 1:
            raise _fail(self.name, f"softmax takes one input, got {len(self.inputs)}")

    @property
    def output_shape(self) -> Shape:
        return (self.rows, self.cols)

    @property
    def elements(self) -> int:
        return self.rows * self.cols

    @property
    def ops(self) -> int:
        return self.elements

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        have = shape_elements(shape)
        if have != self.elements:
            return f"rows*cols={self.rows}*{self.cols}={self.elements} but its input {producer} gives {have} elements"
        if len(shape) != 4 and shape[-1] != self.cols:
            return f"cols={self.cols} but its input {producer} gives rows of {shape[-1]}"
        return None


@dataclass(frozen=True, kw_only=True)
class Norm(Layer):
    """A normalisation over a tensor of ``shape``: ``batchnorm`` (per channel, axis 1 of N,C,H,W or N,C),
    ``layernorm`` (over the last axis) or ``lrn`` (local response norm across ``size`` channels).

    ``elements`` and ``channels`` are what the vector unit needs: the inference cost is one scale-and-shift
    per element (batchnorm), a mean/variance per row of ``channels`` (layernorm).
    """

    op: ClassVar[str] = "norm"

    kind: str
    shape: Shape
    size: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in NORM_OPS:
            raise _fail(self.name, f"unknown normalisation {self.kind!r}; known: {', '.join(NORM_OPS)}")
        _check_shape(self.name, "shape", self.shape)
        object.__setattr__(self, "shape", tuple(self.shape))
        _check_positive(self.name, size=self.size)
        if self.kind in ("batchnorm", "lrn") and len(self.shape) < 2:
            raise _fail(self.name, f"{self.kind} needs at least N,C axes, got shape {_fmt_shape(self.shape)}")
        if len(self.inputs) > 1:
            raise _fail(self.name, f"{self.kind} takes one input, got {len(self.inputs)}")

    @property
    def output_shape(self) -> Shape:
        return self.shape

    @property
    def elements(self) -> int:
        return shape_elements(self.shape)

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

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        if self.kind != "layernorm" and len(self.shape) == 4:
            return _check_nchw(self, producer, shape, self.shape)
        problem = _check_same_tensor(self, producer, shape, self.shape)
        if problem is None and self.kind == "layernorm" and len(shape) != 4 and shape[-1] != self.channels:
            return f"channels={self.channels} but its input {producer} gives {shape[-1]} features"
        return problem


@dataclass(frozen=True, kw_only=True)
class Pool(Layer):
    """``maxpool`` or ``avgpool`` of an R x S window over an N,C,H,W tensor (padding as for
    :class:`Conv2d`; ``ceil_mode`` rounds the output size up as PyTorch does)."""

    op: ClassVar[str] = "pool"

    kind: str
    C: int
    H: int
    W: int
    R: int
    S: int
    stride: tuple[int, int]
    N: int = 1
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        if self.kind not in POOL_OPS:
            raise _fail(n, f"unknown pooling {self.kind!r}; known: {', '.join(POOL_OPS)}")
        _check_positive(n, N=self.N, C=self.C, H=self.H, W=self.W, R=self.R, S=self.S)
        stride = _pair(n, "stride", self.stride)
        _check_positive(n, stride_h=stride[0], stride_w=stride[1])
        padding = _padding4(n, self.padding, self.H, self.W, self.R, self.S, stride, (1, 1))
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", padding)
        if not isinstance(self.ceil_mode, bool):
            raise _fail(n, f"ceil_mode must be true or false, got {self.ceil_mode!r}")
        if len(self.inputs) > 1:
            raise _fail(n, f"{self.kind} takes one input, got {len(self.inputs)}")
        if self.P < 1 or self.Q < 1:
            raise _fail(n, f"the {self.R}x{self.S} window does not fit the padded {self.H}x{self.W} input")

    @property
    def P(self) -> int:
        top, bottom, _, _ = self.padding
        return _out_size(self.H, top, bottom, self.R, self.stride[0], 1, "native", self.ceil_mode)

    @property
    def Q(self) -> int:
        _, _, left, right = self.padding
        return _out_size(self.W, left, right, self.S, self.stride[1], 1, "native", self.ceil_mode)

    @property
    def output_shape(self) -> Shape:
        return (self.N, self.C, self.P, self.Q)

    @property
    def elements(self) -> int:
        return self.N * self.C * self.P * self.Q

    @property
    def ops(self) -> int:
        """Window taps: one compare (max) or add (avg) per input element of every window."""
        return self.elements * self.R * self.S

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        return _check_nchw(self, producer, shape, (self.N, self.C, self.H, self.W))


@dataclass(frozen=True, kw_only=True)
class GlobalAvgPool(Layer):
    """Average over all H x W positions of each channel: N,C,H,W -> N,C,1,1."""

    op: ClassVar[str] = "global_avgpool"

    C: int
    H: int
    W: int
    N: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(self.name, N=self.N, C=self.C, H=self.H, W=self.W)
        if len(self.inputs) > 1:
            raise _fail(self.name, f"global_avgpool takes one input, got {len(self.inputs)}")

    @property
    def output_shape(self) -> Shape:
        return (self.N, self.C, 1, 1)

    @property
    def elements(self) -> int:
        return self.N * self.C

    @property
    def ops(self) -> int:
        return self.N * self.C * self.H * self.W

    def check_input(self, index: int, producer: str, shape: Shape) -> str | None:
        return _check_nchw(self, producer, shape, (self.N, self.C, self.H, self.W))


@dataclass(frozen=True, kw_only=True)
class Embedding(Layer):
    """``lookups`` rows gathered from a ``vocab`` x ``dim`` table (token, position or type embeddings).

    The indices come from outside the network, so an embedding has no producer.
    """

    op: ClassVar[str] = "embedding"

    lookups: int
    dim: int
    vocab: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(self.name, lookups=self.lookups, dim=self.dim, vocab=self.vocab)
        if self.producers:
            raise _fail(self.name, "an embedding reads token ids from outside the network; it has no input layer")

    @property
    def output_shape(self) -> Shape:
        return (self.lookups, self.dim)

    @property
    def elements(self) -> int:
        return self.lookups * self.dim

    @property
    def ops(self) -> int:
        """Row gathers."""
        return self.lookups

    @property
    def weight_elements(self) -> int:
        """The rows actually read (the table itself is ``vocab * dim``)."""
        return self.lookups * self.dim

    @property
    def operand_roles(self) -> tuple[tuple[str, str], ...]:
        return (("table", "weight"),)


@dataclass(frozen=True, kw_only=True)
class Concat(Layer):
    """Concatenation of its inputs along ``axis`` into ``shape`` (data movement, no arithmetic)."""

    op: ClassVar[str] = "concat"

    shape: Shape
    axis: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_shape(self.name, "shape", self.shape)
        object.__setattr__(self, "shape", tuple(self.shape))
        if not -len(self.shape) <= self.axis < len(self.shape):
            raise _fail(self.name, f"axis {self.axis} is out of range for shape {_fmt_shape(self.shape)}")

    @property
    def output_shape(self) -> Shape:
        return self.shape

    @property
    def elements(self) -> int:
        return shape_elements(self.shape)

    @property
    def ops(self) -> int:
        return self.elements

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


@dataclass(frozen=True, kw_only=True)
class Reshape(Layer):
    """A view of its input as ``shape`` (flatten, heads split, N,C,H,W to tokens); costs nothing here."""

    op: ClassVar[str] = "reshape"

    shape: Shape

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_shape(self.name, "shape", self.shape)
        object.__setattr__(self, "shape", tuple(self.shape))
        if len(self.inputs) > 1:
            raise _fail(self.name, f"reshape takes one input, got {len(self.inputs)}")

    @property
    def output_shape(self) -> Shape:
        return self.shape

    @property
    def elements(self) -> int:
        return shape_elements(self.shape)

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

__all__ = [
    "BINARY_OPS",
    "CONVENTIONS",
    "ELEMENTWISE_OPS",
    "LAYER_TYPES",
    "NORM_OPS",
    "PASSES",
    "POOL_OPS",
    "ROLES",
    "Concat",
    "Conv2d",
    "Elementwise",
    "Embedding",
    "GemmShape",
    "GlobalAvgPool",
    "Layer",
    "MatMul",
    "Norm",
    "Pool",
    "Reshape",
    "Shape",
    "Softmax",
    "same_padding",
    "shape_elements",
    "shape_features",
]
