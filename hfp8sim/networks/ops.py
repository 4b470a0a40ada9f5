"""Pluggable arithmetic for the GEMM-like operations of the real networks.

Every matrix product and convolution of a network forward goes through an *ops* object, called with a stable
layer name (``layer.2.attention.qk``, ``blocks.3.expand``), so the project's bit-accurate FP8 datapath can
replace float arithmetic layer by layer and a trace can attribute statistics to layers.  Everything else
(LayerNorm, softmax, GELU, batch norm, ReLU6, pooling, biases) stays in the caller, in ``ops.float_dtype``.

The contract (:class:`GemmOps`):

- ``float_dtype``: the numpy dtype the network computes everything else in, and the dtype the results must
  have (float32 for the FP8 datapath, float64 for the reference);
- ``matmul(name, a, b, a_role, b_role)``: ``a`` is ``[..., M, K]``, ``b`` is ``[K, N]`` or batched
  ``[..., K, N]`` (numpy broadcasting); returns ``[..., M, N]``.  Roles say where an operand comes from
  (``"activation"`` or ``"weight"``), which is what an FP8 scheme keys its formats and scales on.
- ``conv2d(name, x, w, stride, padding, dilation, groups)``: NCHW input, KCRS weight (``C`` = channels per
  group), no bias; ``padding`` is ``(top, bottom, left, right)`` with zeros; returns NKPQ.

The reference lowering of a convolution (:func:`im2col`, :func:`conv_weight_matrix`) is the one the datapath
uses: one GEMM per group, ``M = N*P*Q`` output pixels, ``N = K/groups`` filters, and a reduction of length
``R*S*C`` ordered ``(r, s, c)`` with the channel fastest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import NetworkOpError

ACTIVATION = "activation"
WEIGHT = "weight"
ROLES = (ACTIVATION, WEIGHT)

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]


@runtime_checkable
class GemmOps(Protocol):
    """What a network forward needs from its arithmetic (see the module docstring for the contract)."""

    float_dtype: np.dtype

    def matmul(self, name: str, a: np.ndarray, b: np.ndarray, a_role: str = ACTIVATION,
               b_role: str = WEIGHT) -> np.ndarray: ...

    def conv2d(self, name: str, x: np.ndarray, w: np.ndarray, stride: Pair = (1, 1),
               padding: Padding = (0, 0, 0, 0), dilation: Pair = (1, 1), groups: int = 1) -> np.ndarray: ...


# ----------------------------------------------------------------------------------------------------------
# convolution geometry and lowering, shared by every ops implementation


def conv2d_output_size(height: int, width: int, kernel: Pair, stride: Pair = (1, 1),
                       padding: Padding = (0, 0, 0, 0), dilation: Pair = (1, 1)) -> Pair:
    """Output ``(P, Q)`` of a convolution; raises NetworkOpError when the padded input is smaller than the kernel."""
    (r, s), (sh, sw), (dh, dw) = kernel, stride, dilation
    top, bottom, left, right = padding
    span_h, span_w = (r - 1) * dh + 1, (s - 1) * dw + 1
    padded_h, padded_w = height + top + bottom, width + left + right
    if padded_h < span_h or padded_w < span_w:
        raise NetworkOpError(f"conv2d: padded input {padded_h}x{padded_w} is smaller than the kernel span "
                         f"{span_h}x{span_w}")
    return (padded_h - span_h) // sh + 1, (padded_w - span_w) // sw + 1


def tf_same_padding(height: int, width: int, kernel: Pair, stride: Pair, dilation: Pair = (1, 1)) -> Padding:
    """TensorFlow ``padding="SAME"``: output ``ceil(H / stride)``, any odd padding goes to the bottom/right.

    Models converted from TensorFlow (EfficientNet-Lite) were trained with it; PyTorch's symmetric ``k // 2``
    shifts the sampling grid of stride-2 layers by one pixel.
    """
    pads = []
    for size, k, s, d in ((height, kernel[0], stride[0], dilation[0]), (width, kernel[1], stride[1], dilation[1])):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return pads[0], pads[1], pads[2], pads[3]


def im2col(x: np.ndarray, kernel: Pair, stride: Pair = (1, 1), padding: Padding = (0, 0, 0, 0),
           dilation: Pair = (1, 1)) -> np.ndarray:
    """Lower an NCHW input to the GEMM activation matrix ``[N*P*Q, R*S*C]``, reduction order ``(r, s, c)``.

    Row ``(n, p, q)`` holds, for each kernel tap ``(r, s)`` in row-major order, the ``C`` input channels at
    that tap, so the channel index varies fastest along the reduction.
    """
    n, c, h, w = x.shape
    (r_taps, s_taps), (sh, sw), (dh, dw) = kernel, stride, dilation
    p, q = conv2d_output_size(h, w, kernel, stride, padding, dilation)
    top, bottom, left, right = padding
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding) else x
    columns = np.empty((n, p, q, r_taps, s_taps, c), dtype=x.dtype)
    for r in range(r_taps):
        for s in range(s_taps):
            tap = padded[:, :, r * dh: r * dh + sh * (p - 1) + 1: sh, s * dw: s * dw + sw * (q - 1) + 1: sw]
            columns[:, :, :, r, s, :] = tap.transpose(0, 2, 3, 1)
    return columns.reshape(n * p * q, r_taps * s_taps * c)


def conv_weight_matrix(w: np.ndarray) -> np.ndarray:
    """KCRS weights as the GEMM weight matrix ``[R*S*C, K]``, rows in the ``(r, s, c)`` order of :func:`im2col`."""
    k, c, r, s = w.shape
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(r * s * c, k))


def _check_conv_operands(name: str, x: np.ndarray, w: np.ndarray, groups: int) -> None:
    if x.ndim != 4 or w.ndim != 4:
        raise NetworkOpError(f"{name}: conv2d wants NCHW input and KCRS weights, got {x.shape} and {w.shape}")
    if groups < 1 or x.shape[1] % groups or w.shape[0] % groups or x.shape[1] // groups != w.shape[1]:
        raise NetworkOpError(f"{name}: {groups} groups do not split input {x.shape} and weights {w.shape}")


def _check_roles(name: str, *roles: str) -> None:
    for role in roles:
        if role not in ROLES:
            raise NetworkOpError(f"{name}: operand role {role!r} is not one of {ROLES}")


def conv2d_bias(ops: GemmOps, name: str, x: np.ndarray, w: np.ndarray, bias: np.ndarray, stride: Pair = (1, 1),
                padding: Padding = (0, 0, 0, 0), dilation: Pair = (1, 1), groups: int = 1) -> np.ndarray:
    """``ops.conv2d`` then a per-output-channel ``bias`` added in ``ops.float_dtype``: the output stage of a
    conv with a bias (a folded batch norm's shift), after the array's accumulation."""
    out = ops.conv2d(name, x, w, stride, padding, dilation, groups)
    return out + bias.astype(ops.float_dtype, copy=False)[None, :, None, None]


# ----------------------------------------------------------------------------------------------------------
# reference arithmetic in numpy floats


class NumpyOps:
    """GEMMs in one numpy float dtype; the reference the FP8 datapath is compared against.

    Convolutions use the :func:`im2col` lowering, one GEMM per group, except depthwise ones (one input channel
    per group), which would be thousands of 1-column GEMMs: those sum the same products, tap by tap in the same
    ``(r, s)`` order, directly on the feature map.
    """

    def __init__(self, dtype: type | np.dtype):
        self.float_dtype = np.dtype(dtype)
        if self.float_dtype.kind != "f":
            raise NetworkOpError(f"NumpyOps needs a float dtype, got {self.float_dtype}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def matmul(self, name: str, a: np.ndarray, b: np.ndarray, a_role: str = ACTIVATION,
               b_role: str = WEIGHT) -> np.ndarray:
        _check_roles(name, a_role, b_role)
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise NetworkOpError(f"{name}: matmul wants a [..., M, K] and b [..., K, N], got {a.shape} and {b.shape}")
        return np.matmul(a.astype(self.float_dtype, copy=False), b.astype(self.float_dtype, copy=False))

    def conv2d(self, name: str, x: np.ndarray, w: np.ndarray, stride: Pair = (1, 1),
               padding: Padding = (0, 0, 0, 0), dilation: Pair = (1, 1), groups: int = 1) -> np.ndarray:
        _check_conv_operands(name, x, w, groups)
        x = x.astype(self.float_dtype, copy=False)
        w = w.astype(self.float_dtype, copy=False)
        if groups == x.shape[1] == w.shape[0]:
            return self._depthwise(x, w, stride, padding, dilation)
        n = x.shape[0]
        k, c_group, r, s = w.shape
        k_group = k // groups
        p, q = conv2d_output_size(x.shape[2], x.shape[3], (r, s), stride, padding, dilation)
        out = np.empty((n, k, p, q), dtype=self.float_dtype)
        for g in range(groups):
            columns = im2col(x[:, g * c_group:(g + 1) * c_group], (r, s), stride, padding, dilation)
            product = columns @ conv_weight_matrix(w[g * k_group:(g + 1) * k_group])
            out[:, g * k_group:(g + 1) * k_group] = product.reshape(n, p, q, k_group).transpose(0, 3, 1, 2)
        return out

    def _depthwise(self, x: np.ndarray, w: np.ndarray, stride: Pair, padding: Padding,
                   dilation: Pair) -> np.ndarray:
        n, c, h, width = x.shape
        _, _, r_taps, s_taps = w.shape
        (sh, sw), (dh, dw) = stride, dilation
        p, q = conv2d_output_size(h, width, (r_taps, s_taps), stride, padding, dilation)
        top, bottom, left, right = padding
        padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding) else x
        out = np.zeros((n, c, p, q), dtype=self.float_dtype)
        product = np.empty_like(out)
        for r in range(r_taps):
            for s in range(s_taps):
                tap = padded[:, :, r * dh: r * dh + sh * (p - 1) + 1: sh, s * dw: s * dw + sw * (q - 1) + 1: sw]
                np.multiply(tap, w[:, 0, r, s][None, :, None, None], out=product)
                out += product
        return out


class Float32Ops(NumpyOps):
    """Float32 GEMMs: what the trained networks were run with, and the baseline for FP8."""

    def __init__(self) -> None:
        super().__init__(np.float32)


class Float64Ops(NumpyOps):
    """Float64 GEMMs (and float64 around them): the reference float32 results are checked against."""

    def __init__(self) -> None:
        super().__init__(np.float64)


# ----------------------------------------------------------------------------------------------------------
# recording what a forward asked for


@dataclass(frozen=True)
class GemmCall:
    """One GEMM-like call of a forward: its layer name, kind and GEMM shape.

    ``count`` independent ``m x n x k`` GEMMs (batch entries and heads of a batched matmul, groups of a conv).
    """

    name: str
    kind: str
    count: int
    m: int
    n: int
    k: int
    a_role: str
    b_role: str

    @property
    def macs(self) -> int:
        return self.count * self.m * self.n * self.k


@dataclass
class RecordingOps:
    """Delegates to ``inner`` and records a :class:`GemmCall` per call, in call order (a layer trace)."""

    inner: GemmOps = field(default_factory=Float32Ops)
    calls: list[GemmCall] = field(default_factory=list)

    @property
    def float_dtype(self) -> np.dtype:
        return self.inner.float_dtype

    def matmul(self, name: str, a: np.ndarray, b: np.ndarray, a_role: str = ACTIVATION,
               b_role: str = WEIGHT) -> np.ndarray:
        out = self.inner.matmul(name, a, b, a_role, b_role)
        count = int(np.prod(out.shape[:-2], dtype=np.int64))
        self.calls.append(GemmCall(name, "matmul", count, a.shape[-2], b.shape[-1], a.shape[-1], a_role, b_role))
        return out

    def conv2d(self, name: str, x: np.ndarray, w: np.ndarray, stride: Pair = (1, 1),
               padding: Padding = (0, 0, 0, 0), dilation: Pair = (1, 1), groups: int = 1) -> np.ndarray:
        out = self.inner.conv2d(name, x, w, stride, padding, dilation, groups)
        n, k, p, q = out.shape
        _, c_group, r, s = w.shape
        self.calls.append(GemmCall(name, "conv2d", groups, n * p * q, k // groups, r * s * c_group,
                                   ACTIVATION, WEIGHT))
        return out

    @property
    def total_macs(self) -> int:
        return sum(call.macs for call in self.calls)
