"""``TrainingOps``: every GEMM of every training pass on the bit-accurate datapath, and what each call did.

The three passes of a layer whose forward GEMM is ``Y = X W`` (``X`` [M, K], ``W`` [K, N]):

* ``forward``          ``Y  = X  x W``    activation x weight,   both in the scheme's forward format;
* ``backward_data``    ``dX = dY x W^T``  gradient x weight,     dY in the backward format;
* ``backward_weight``  ``dW = X^T x dY``  activation x gradient.

So a Linear layer ``[B, I] -> [B, O]`` runs forward M=B, K=I, N=O; backward_data M=B, K=O, N=I;
backward_weight M=I, K=B, N=O.  A convolution is lowered by im2col (:func:`hfp8sim.datapath.conv.lower_conv`,
reduction order (r, s, c)); its backward_data is the transposed convolution, run as a convolution of the
stride-dilated gradient with the 180-degree-rotated, channel-swapped filters (K = R*S*K/G), so every sum of
the pass happens in the array; its backward_weight is ``im2col(X)^T x dY`` (K = N*P*Q).

Each operand is scaled by a power of two chosen by its :mod:`scaling recipe <hfp8sim.training.scaling>`
(the gradient role may have its own) and encoded, round to nearest even and saturating, in the format of its
role (activation and weight: ``scheme.forward``; gradient: ``scheme.backward``), unless a per-layer override
(fnmatch pattern -> format, e.g. ``{"fc1": "float16", "head": "float16"}`` for IBM's FP16 first and last
layers) gives all operands of the layer another format.  The datapath accumulates the codes with the core
model's contract for operands of that width (:meth:`hfp8sim.core.CoreModel.arithmetic_for_bits`: DLFloat16
pair steps, folds of 2*rows products into a float32 buffer on the default core), the result is divided by
the scales (exact) and returned as float32.  (For speed the codes reach the datapath as their float32 values,
which the one encoding pass gives with them, lowered in the layout its kernel reads: see
:func:`products_transposed`.)  An 8-bit operand's amax lands at most at the format's max and no
higher than the accumulator allows (:func:`hfp8sim.traces.datapath_ops.accumulator_limit`); a 16-bit operand
is only ever scaled down; float32 operands (the ``fp32`` scheme, or a float32 override) are not scaled and
their GEMM is a float32 numpy matmul (the datapath takes operands of at most 16 bits).

Error bound (:func:`gemm_error_bound`, checked on every call by ``check_bounds=True``).  For real operands
``a``, ``b`` with exact product sum ``c = sum_k a_k b_k`` and no saturated operand, the returned value obeys,
element by element,

    |c_hat - c| <= E_q + E_acc + 2^-24 (|A||B| + E_q + E_acc) + gamma_K(2^-53) |A||B|

* quantization: a format with m mantissa bits has unit roundoff ``u = 2^-(m+1)`` (e4m3: 2^-4, e5m2: 2^-3)
  and, at scale s, an absolute error of at most ``eta = (smallest subnormal / 2) / s`` below its normal
  range (the smallest normal / s without subnormals), so ``|q(a) - a| <= u|a| + eta``, and a product's error
  is at most ``(u_a + u_b + u_a u_b)|a||b| + eta_a (1+u_b)|b| + eta_b (1+u_a)|a| + eta_a eta_b``: relative
  2^-4 + 2^-4 + 2^-8 for e4m3 x e4m3 (forward), 2^-4 + 2^-3 + 2^-7 for e4m3 x e5m2 (both backward passes).
  Summed over k this is E_q (float32 operands are taken exactly: u = eta = 0);
* accumulation (the DLFloat16 contract): products are exact, each PE step rounds once; a segment of
  ``L = arith.segment_length(K)`` products has ``n_acc = ceil(min(K, L) / products_per_step)`` roundings in
  the accumulator format (u = 2^-10 for DLFloat16) and its sum passes through ``n_run = ceil(K / L)``
  roundings of the running format (the float32 buffer: 2^-24), so with ``gamma_n(u) = n u / (1 - n u)``,
  ``E_acc = (gamma_{n_acc}(u_acc) + gamma_{n_run}(u_run)(1 + gamma_{n_acc}(u_acc))) (|A||B| + E_q)``, plus,
  for an accumulator without subnormals (DLFloat16 flushes), one smallest normal per rounding (divided by
  the scales); a float32 numpy matmul has ``E_acc = gamma_K(2^-24) (|A||B| + E_q)``;
* the result's rounding to float32 (2^-24) and the float64 reference's own error (gamma_K(2^-53)).

For the ``fp32`` scheme this reduces to ``gamma_K(2^-24)|A||B|`` plus the output rounding: float32 rounding.

Every call appends a :class:`GemmCall` to ``records``: layer, pass, roles, formats, G/M/N/K, the arithmetic,
and per operand the :class:`~hfp8sim.training.scaling.QuantStats` (elements, underflow, saturation, amax,
scale).  :class:`Float64Ops` runs the same lowering with float64 numpy GEMMs: the reference for gradient
checks and finite differences.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import math
from collections.abc import Callable, Mapping

import numpy as np

from ..config.arch import ArchConfig, resolve_arch
from ..core.model import CoreModel
from ..datapath import ArrayArithmetic, accumulate_values
from ..datapath.conv import conv_geometry, lower_conv
from ..formats import FormatSpec, Scheme, decode_table, get_format, get_scheme
from ..traces.datapath_ops import accumulator_limit, describe_arith
from ..vocabulary import Pass, Role
from .scaling import CurrentScaling, QuantStats, ScalingRecipe, encode_scaled, tensor_amax
from .tensors import TrainingError

F32_UNIT_ROUNDOFF = 2.0**-24
F64_UNIT_ROUNDOFF = 2.0**-53


@dataclasses.dataclass(frozen=True)
class GemmCall:
    """One GEMM of one pass, as the datapath ran it: ``groups`` independent ``[M, K] x [K, N]`` products.

    ``a`` / ``b``: what encoding each operand did (for a convolution, the stored tensor, not its im2col);
    ``arith``: the datapath arithmetic, None for a numpy matmul (float32 or float64 operands);
    ``bound_ratio``: with ``check_bounds``, the largest |error| / :func:`gemm_error_bound` over the outputs
    (<= 1 when the documented bound holds; None when not checked)."""

    layer: str
    pass_: Pass
    op: str  # "matmul" or "conv2d"
    a_role: Role
    b_role: Role
    a_format: str
    b_format: str
    groups: int
    m: int
    n: int
    k: int
    a: QuantStats
    b: QuantStats
    arith: ArrayArithmetic | None
    bound_ratio: float | None = None

    @property
    def macs(self) -> int:
        return self.groups * self.m * self.n * self.k

    @property
    def arithmetic(self) -> str:
        return describe_arith(self.arith) if self.arith is not None else "numpy matmul"


@dataclasses.dataclass
class _Operand:
    data: np.ndarray  # codes (formats of <= 16 bits) or scaled float values, in the tensor's own layout
    spec: FormatSpec | None  # None: a float64 reference operand
    scale: float
    stats: QuantStats
    values: np.ndarray | None = None  # float32 values of ``data`` (what the GEMM multiplies); None: ``data``


# Products with at most this many columns (and more rows) run transposed.  Measured on the Fashion-MNIST CNN
# (batch 64): its 16-channel stem convolution ran about 2x faster so (its im2col, then stored column-major,
# is also about 10x cheaper to build); the inference traces use 16 exclusive
# (:data:`hfp8sim.traces.datapath_ops.TRANSPOSE_BELOW_COLUMNS`).
TRANSPOSE_UP_TO_COLUMNS = 16


def products_transposed(m: int, n: int) -> bool:
    """Whether the datapath computes an ``[M, K] x [K, N]`` product as ``(B^T A^T)^T``: the kernels vectorise
    over the columns, so a product with few of them runs faster over its rows, and every output is the same
    products added in the same order with the same roundings (the result's bits do not depend on this)."""
    return n <= TRANSPOSE_UP_TO_COLUMNS and m > n


# ----------------------------------------------------------------------------------------------------------
# lowering of the convolution passes (generic over the array dtype: codes, float32 or float64)
#
# ``transposed``, for the datapath: True when the product will be computed as (B^T A^T)^T
# (:func:`products_transposed`), so A^T and B^T are the arrays the kernel reads: they are built contiguous
# and A and B returned as their transposed views; False: A and B themselves contiguous.  The datapath's bits
# do not depend on it; it saves a copy of the larger operand.  None, for numpy's matmul: the memory layout
# the lowering has always given, because BLAS's summation order (so the float32 bits) can depend on it.


def conv_forward_lowering(x: np.ndarray, w: np.ndarray, stride, padding, groups: int, *,
                          transposed: bool | None = None):
    """(A [G, N*P*Q, R*S*C/G], B [G, R*S*C/G, K/G], (N, K, P, Q)) of the forward convolution."""
    return lower_conv(x, w, stride, padding, 1, groups, columns_first=bool(transposed))


def conv_output_from_gemm(out: np.ndarray, shape, dtype=None) -> np.ndarray:
    """GEMM layout [G, N*P*Q, K/G] back to NKPQ (in ``dtype``, default ``out``'s)."""
    n_dim, k_dim, p_dim, q_dim = shape
    groups, _, kg = out.shape
    return np.ascontiguousarray(out.reshape(groups, n_dim, p_dim, q_dim, kg).transpose(1, 0, 4, 2, 3)
                                .reshape(n_dim, k_dim, p_dim, q_dim), dtype=dtype)


def _geometry(x_shape, w_shape, stride, padding, groups):
    (n_dim, c_dim, h_dim, w_dim, k_dim, r_dim, s_dim, p_dim, q_dim, st, pads, _dil,
     groups) = conv_geometry(tuple(x_shape), tuple(w_shape), stride, padding, 1, groups)
    return n_dim, c_dim, h_dim, w_dim, k_dim, r_dim, s_dim, p_dim, q_dim, st, pads, groups


def conv_backward_data_lowering(dy: np.ndarray, w: np.ndarray, x_shape, stride, padding, groups: int, *,
                                transposed: bool | None = None):
    """The transposed convolution as a convolution: (A, B, (N, C, H, W)) with A the im2col of the
    stride-dilated, re-padded gradient and B the rotated filters with input and output channels swapped."""
    (n_dim, c_dim, h_dim, w_dim, k_dim, r_dim, s_dim, p_dim, q_dim, (sh, sw), (pt, pb, pl, pr),
     groups) = _geometry(x_shape, w.shape, stride, padding, groups)
    if dy.shape != (n_dim, k_dim, p_dim, q_dim):
        raise TrainingError(f"conv backward: gradient has shape {dy.shape}, the layer's output is "
                            f"{(n_dim, k_dim, p_dim, q_dim)}")
    if max(pt, pb) > r_dim - 1 or max(pl, pr) > s_dim - 1:
        raise TrainingError(f"conv backward: padding {(pt, pb, pl, pr)} larger than the filter extent minus one "
                            f"({r_dim - 1}, {s_dim - 1}) is not supported")
    if sh == sw == 1:
        dilated = dy  # nothing to dilate
    else:
        dilated = np.zeros((n_dim, k_dim, (p_dim - 1) * sh + 1, (q_dim - 1) * sw + 1), dy.dtype)
        dilated[:, :, ::sh, ::sw] = dy  # code 0 is +0 in every format
    # rows of the input no output position reached (the floor in P) read zero gradient: extra bottom padding
    extra_h = h_dim + pt + pb - r_dim - (p_dim - 1) * sh
    extra_w = w_dim + pl + pr - s_dim - (q_dim - 1) * sw
    pads = (r_dim - 1 - pt, r_dim - 1 - pb + extra_h, s_dim - 1 - pl, s_dim - 1 - pr + extra_w)
    kg, cg = k_dim // groups, c_dim // groups
    rotated = (np.asarray(w).reshape(groups, kg, cg, r_dim, s_dim)[:, :, :, ::-1, ::-1]
               .transpose(0, 2, 1, 3, 4).reshape(c_dim, kg, r_dim, s_dim))
    a, b, shape = lower_conv(dilated, np.ascontiguousarray(rotated), 1, pads, 1, groups,
                             columns_first=bool(transposed))
    assert shape == (n_dim, c_dim, h_dim, w_dim), (shape, x_shape)
    return a, b, shape


def conv_backward_weight_lowering(x: np.ndarray, dy: np.ndarray, w_shape, stride, padding, groups: int, *,
                                  transposed: bool | None = None):
    """(A = im2col(x)^T [G, R*S*C/G, N*P*Q], B = dY [G, N*P*Q, K/G])."""
    n_dim, _c, _h, _w, k_dim, _r, _s, p_dim, q_dim, _st, _pads, groups = _geometry(x.shape, w_shape, stride,
                                                                                   padding, groups)
    if dy.shape != (n_dim, k_dim, p_dim, q_dim):
        raise TrainingError(f"conv backward: gradient has shape {dy.shape}, the layer's output is "
                            f"{(n_dim, k_dim, p_dim, q_dim)}")
    # A is im2col(x) transposed: stored columns first, it is contiguous for a datapath kernel that reads A
    cols, _, _ = lower_conv(x, np.zeros(w_shape, x.dtype), stride, padding, 1, groups,
                            columns_first=transposed is False)
    kg = k_dim // groups
    by_group = dy.reshape(n_dim, groups, kg, p_dim * q_dim)
    if transposed:  # B^T [G, K/G, N*P*Q] contiguous
        b = np.ascontiguousarray(by_group.transpose(1, 2, 0, 3)).reshape(groups, kg, -1).transpose(0, 2, 1)
    else:
        b = by_group.transpose(1, 0, 3, 2).reshape(groups, -1, kg)
    return cols.transpose(0, 2, 1), b


def conv_weight_from_gemm(out: np.ndarray, w_shape) -> np.ndarray:
    """[G, (r, s, c), K/G] back to KCRS."""
    k_dim, cg, r_dim, s_dim = w_shape
    groups, _, kg = out.shape
    return np.ascontiguousarray(out.reshape(groups, r_dim, s_dim, cg, kg).transpose(0, 4, 3, 1, 2)
                                .reshape(k_dim, cg, r_dim, s_dim))


# ----------------------------------------------------------------------------------------------------------
# the error bound


def _gamma(n: int, u: float) -> float:
    return n * u / (1 - n * u)


def _unit_roundoff(spec: FormatSpec | None) -> float:
    return 0.0 if spec is None or spec.bits > 16 else 2.0 ** -(spec.man_bits + 1)


def _underflow_step(spec: FormatSpec | None, scale: float) -> float:
    if spec is None or spec.bits > 16:
        return 0.0
    step = float(spec.min_subnormal) / 2 if spec.subnormals else float(spec.min_normal)
    return step / scale


def gemm_error_bound(abs_a: np.ndarray, abs_b: np.ndarray, a_spec: FormatSpec | None, b_spec: FormatSpec | None,
                     a_scale: float, b_scale: float, arith: ArrayArithmetic | None) -> np.ndarray:
    """Elementwise bound on |result - exact product| of ``[G, M, K] x [G, K, N]`` (see the module notes);
    ``abs_a``, ``abs_b``: magnitudes of the real (unquantized) operands, float64; ``arith`` None: numpy
    float32 matmul."""
    k_dim = abs_a.shape[-1]
    prod = np.matmul(abs_a, abs_b)
    ua, ub = _unit_roundoff(a_spec), _unit_roundoff(b_spec)
    ea, eb = _underflow_step(a_spec, a_scale), _underflow_step(b_spec, b_scale)
    quant = ((ua + ub + ua * ub) * prod + ea * (1 + ub) * abs_b.sum(axis=-2, keepdims=True)
             + eb * (1 + ua) * abs_a.sum(axis=-1, keepdims=True) + k_dim * ea * eb)
    magnitude = prod + quant
    if arith is None:
        acc = _gamma(k_dim, F32_UNIT_ROUNDOFF) * magnitude
    else:
        seg = arith.segment_length(k_dim)
        acc_spec, run_spec = arith.acc_format, arith.segment_sum_format
        n_acc = math.ceil(min(k_dim, seg) / arith.products_per_step)
        n_run = math.ceil(k_dim / seg)
        g_acc = _gamma(n_acc, _unit_roundoff_any(acc_spec))
        g_run = _gamma(n_run, _unit_roundoff_any(run_spec))
        acc = (g_acc + g_run * (1 + g_acc)) * magnitude
        flush = 0.0  # formats without subnormals flush a small sum: at most one smallest normal per rounding
        if not acc_spec.subnormals:
            flush += math.ceil(k_dim / arith.products_per_step) * float(acc_spec.min_normal) * (1 + g_run)
        if not run_spec.subnormals:
            flush += n_run * float(run_spec.min_normal)
        acc = acc + flush / (a_scale * b_scale)
    return (quant + acc + F32_UNIT_ROUNDOFF * (magnitude + acc)
            + _gamma(k_dim, F64_UNIT_ROUNDOFF) * prod)


def _unit_roundoff_any(spec: FormatSpec) -> float:
    return 2.0 ** -(spec.man_bits + 1)


# ----------------------------------------------------------------------------------------------------------
# the ops


class TrainingOps:
    """The GEMMs of training on the datapath of one core under one scheme (see the module notes).

    ``scheme``: name or :class:`Scheme` (default: the core's); ``arch``: an ArchConfig, a shipped arch name
    or file (default: the default core), or give ``core`` directly; ``recipe``: the scaling recipe of
    activations and weights (default :class:`CurrentScaling`), ``gradient_recipe`` that of gradients
    (default: ``recipe``); ``overrides``: ``{layer-name pattern: format}`` for all operands of matching
    layers; ``record``: keep a :class:`GemmCall` per call; ``check_bounds``: also compute each call's
    ``bound_ratio`` against a float64 product of the unquantized operands (for tests; costs a float64 GEMM).
    """

    float_dtype = np.dtype(np.float32)

    def __init__(self, scheme: str | Scheme | None = None, arch: ArchConfig | str | None = None, *,
                 core: CoreModel | None = None, recipe: ScalingRecipe | None = None,
                 gradient_recipe: ScalingRecipe | None = None,
                 overrides: Mapping[str, str | FormatSpec] | None = None, record: bool = True,
                 check_bounds: bool = False):
        if core is None:
            arch_config = resolve_arch(arch)
            core = CoreModel.build(arch_config, arch_config.resolve_scheme(scheme))
        elif scheme is not None and get_scheme(scheme) != core.scheme:
            core = CoreModel.build(core.arch, get_scheme(scheme))
        self.core = core
        self.scheme = core.scheme
        if self.scheme.backward is None:
            raise TrainingError(f"scheme {self.scheme.name} has no backward format (an inference-only scheme); "
                                "training needs one for gradients: give it `backward:` in its format library")
        self.recipe = recipe if recipe is not None else CurrentScaling()
        self.gradient_recipe = gradient_recipe if gradient_recipe is not None else self.recipe
        for what, value in (("recipe", self.recipe), ("gradient_recipe", self.gradient_recipe)):
            if not isinstance(value, ScalingRecipe):
                raise TrainingError(f"{what} must be a scaling recipe (FixedBias, CurrentScaling, DelayedScaling), "
                                    f"got {type(value).__name__}")
        self.overrides = {str(k): get_format(v) for k, v in (overrides or {}).items()}
        self.record = bool(record)
        self.check_bounds = bool(check_bounds)
        self.records: list[GemmCall] = []

    @classmethod
    def from_core(cls, core: CoreModel, **kwargs) -> TrainingOps:
        return cls(core=core, **kwargs)

    def __repr__(self) -> str:
        return (f"TrainingOps({self.scheme.name!r}, {describe_arith(self.core.arithmetic)}, recipe={self.recipe!r}"
                f"{', overrides ' + str(sorted(self.overrides)) if self.overrides else ''})")

    # ---- formats ---------------------------------------------------------------------------------------
    def operand_format(self, layer: str, role: Role | str) -> FormatSpec:
        """The format of an operand of ``layer``: the first matching override, else the scheme's for the role."""
        for pattern, spec in self.overrides.items():
            if fnmatch.fnmatchcase(layer, pattern):
                return spec
        return self.scheme.backward if role == Role.GRADIENT else self.scheme.forward

    def arithmetic(self, a_spec: FormatSpec | None, b_spec: FormatSpec | None) -> ArrayArithmetic | None:
        """The core's contract for operands this wide; None (numpy matmul) when one is wider than 16 bits."""
        if a_spec is None or b_spec is None or max(a_spec.bits, b_spec.bits) > 16:
            return None
        return self.core.arithmetic_for_bits(max(a_spec.bits, b_spec.bits))

    # ---- operands --------------------------------------------------------------------------------------
    def _target(self, spec: FormatSpec, arith: ArrayArithmetic | None, k: int) -> float:
        top = float(spec.max_value)
        return top if arith is None else min(top, accumulator_limit(arith, k))

    def _prepare(self, layer: str, pass_: Pass, side: str, x: np.ndarray, role: Role, spec: FormatSpec,
                 arith: ArrayArithmetic | None, k: int) -> _Operand:
        x = np.asarray(x, dtype=np.float32)
        amax = tensor_amax(x)
        if spec.bits > 16:
            scale = 1.0  # float32 operands are taken as they are
        else:
            recipe = self.gradient_recipe if role == Role.GRADIENT else self.recipe
            key = f"{layer}/{pass_}/{side}"
            scale = recipe.scale(key, amax, spec, self._target(spec, arith, k))
            if spec.bits > 8:
                scale = min(scale, 1.0)  # 16-bit formats hold the values as they are: only scale down
            recipe.observe(key, amax)
        data, stats, values = encode_scaled(x, spec, scale, amax=amax, with_values=True)
        return _Operand(data, spec, scale, stats, values)

    def _products(self, a: np.ndarray, b: np.ndarray, a_op: _Operand, b_op: _Operand,
                  arith: ArrayArithmetic | None, transposed: bool | None = None) -> np.ndarray:
        """Accumulated values of the scaled operands (lowered float values), float64 [G, M, N]; ``transposed``:
        computed as ``(B^T A^T)^T`` (:func:`products_transposed`)."""
        if arith is None:
            return np.matmul(a, b).astype(np.float64)
        # encode_scaled saturates: an infinite input becomes the largest finite code, so no operand holds an inf
        if transposed:
            out = accumulate_values(b.transpose(0, 2, 1), a.transpose(0, 2, 1), b_op.spec, a_op.spec, arith,
                                    operands_have_inf=False)
            return out.transpose(0, 2, 1)
        return accumulate_values(a, b, a_op.spec, b_op.spec, arith, operands_have_inf=False)

    # ---- the one path every GEMM takes -----------------------------------------------------------------
    def _gemm(self, layer: str, pass_: Pass, op: str, a_in: np.ndarray, a_role: Role, b_in: np.ndarray,
              b_role: Role, m: int, n: int, k: int,
              lower: Callable[[np.ndarray, np.ndarray, bool | None], tuple[np.ndarray, np.ndarray]]):
        """Prepare both stored tensors, lower them with ``lower`` (a function of the two arrays and the layout
        the product wants, see the lowering notes, giving ``[G, M, K]`` and ``[G, K, N]``), accumulate,
        unscale; returns float64 [G, M, N].  The operands are lowered as float values (the codes' values):
        the lowering only moves elements and fills zeros (see :func:`_lowered`)."""
        a_role, b_role, pass_ = Role(a_role), Role(b_role), Pass(pass_)
        a_spec, b_spec = self.operand_format(layer, a_role), self.operand_format(layer, b_role)
        arith = self.arithmetic(a_spec, b_spec)
        a_op = self._prepare(layer, pass_, "a", a_in, a_role, a_spec, arith, k)
        b_op = self._prepare(layer, pass_, "b", b_in, b_role, b_spec, arith, k)
        transposed = products_transposed(m, n) if arith is not None else None
        a_low, b_low = lower(_lowered(a_op), _lowered(b_op), transposed)
        a_low, b_low = _lowered_values(a_low, a_op), _lowered_values(b_low, b_op)
        acc = self._products(a_low, b_low, a_op, b_op, arith, transposed)
        values = acc / (a_op.scale * b_op.scale)
        if self.record:
            ratio = None
            if self.check_bounds:
                fa, fb = lower(np.asarray(a_in, np.float64), np.asarray(b_in, np.float64), None)
                exact = np.matmul(fa, fb)
                bound = gemm_error_bound(np.abs(fa), np.abs(fb), a_op.spec, b_op.spec, a_op.scale, b_op.scale,
                                         arith)
                # float32 results: compare what the caller gets
                err = np.abs(values.astype(self.float_dtype).astype(np.float64) - exact)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = float(np.max(np.where(err == 0, 0.0, err / bound), initial=0.0))
            self.records.append(GemmCall(
                layer=layer, pass_=pass_, op=op, a_role=a_role, b_role=b_role, a_format=_format_name(a_op.spec),
                b_format=_format_name(b_op.spec), groups=int(a_low.shape[0]), m=int(a_low.shape[1]),
                n=int(b_low.shape[2]), k=int(a_low.shape[2]), a=a_op.stats, b=b_op.stats, arith=arith,
                bound_ratio=ratio))
        return values

    # ---- public GEMMs ----------------------------------------------------------------------------------
    def matmul(self, layer: str, pass_: Pass | str, a: np.ndarray, b: np.ndarray, a_role: Role | str,
               b_role: Role | str) -> np.ndarray:
        """``a @ b`` for ``[M, K] x [K, N]`` or batched ``[G, M, K] x [G, K, N]`` (one scale per tensor)."""
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim != b.ndim or a.ndim not in (2, 3) or a.shape[-1] != b.shape[-2] or a.shape[:-2] != b.shape[:-2]:
            raise TrainingError(f"{layer}: {Pass(pass_)} matmul takes [M,K] x [K,N] or [G,M,K] x [G,K,N], got "
                                f"{a.shape} and {b.shape}")
        squeeze = a.ndim == 2

        def lower(x, y, transposed):
            return (x[None], y[None]) if squeeze else (x, y)

        out = self._gemm(layer, pass_, "matmul", a, a_role, b, b_role, a.shape[-2], b.shape[-1], a.shape[-1], lower)
        # C order whatever the kernel's layout: numpy reductions downstream add in an order that follows it
        return np.ascontiguousarray(out[0] if squeeze else out, dtype=self.float_dtype)

    def conv2d(self, layer: str, x: np.ndarray, w: np.ndarray, stride=1, padding=0, groups: int = 1) -> np.ndarray:
        """Forward convolution: NCHW activations x KCRS weights -> NKPQ."""
        x, w = np.asarray(x), np.asarray(w)
        shape = _geometry(x.shape, w.shape, stride, padding, groups)
        n_dim, k_dim, p_dim, q_dim = shape[0], shape[4], shape[7], shape[8]
        groups = shape[-1]
        out = self._gemm(layer, Pass.FORWARD, "conv2d", x, Role.ACTIVATION, w, Role.WEIGHT, n_dim * p_dim * q_dim,
                         k_dim // groups, w.shape[1] * w.shape[2] * w.shape[3],
                         lambda xs, ws, tr: conv_forward_lowering(xs, ws, stride, padding, groups, transposed=tr)[:2])
        return conv_output_from_gemm(out, (n_dim, k_dim, p_dim, q_dim), self.float_dtype)

    def conv2d_backward_data(self, layer: str, dy: np.ndarray, w: np.ndarray, x_shape, stride=1, padding=0,
                             groups: int = 1) -> np.ndarray:
        """dX (NCHW) from dY (NKPQ) and the weights: the transposed convolution (see the module notes)."""
        dy, w = np.asarray(dy), np.asarray(w)
        x_shape = tuple(int(d) for d in x_shape)
        groups = _geometry(x_shape, w.shape, stride, padding, groups)[-1]
        kg = w.shape[0] // groups
        out = self._gemm(layer, Pass.BACKWARD_DATA, "conv2d", dy, Role.GRADIENT, w, Role.WEIGHT,
                         x_shape[0] * x_shape[2] * x_shape[3], x_shape[1] // groups, kg * w.shape[2] * w.shape[3],
                         lambda ds, ws, tr: conv_backward_data_lowering(ds, ws, x_shape, stride, padding, groups,
                                                                        transposed=tr)[:2])
        return conv_output_from_gemm(out, x_shape, self.float_dtype)

    def conv2d_backward_weight(self, layer: str, x: np.ndarray, dy: np.ndarray, w_shape, stride=1, padding=0,
                               groups: int = 1) -> np.ndarray:
        """dW (KCRS) from the layer's input and dY: ``im2col(x)^T x dY`` per group."""
        x, dy = np.asarray(x), np.asarray(dy)
        w_shape = tuple(int(d) for d in w_shape)
        groups = _geometry(x.shape, w_shape, stride, padding, groups)[-1]
        out = self._gemm(layer, Pass.BACKWARD_WEIGHT, "conv2d", x, Role.ACTIVATION, dy, Role.GRADIENT,
                         w_shape[1] * w_shape[2] * w_shape[3], w_shape[0] // groups,
                         dy.shape[0] * dy.shape[2] * dy.shape[3],
                         lambda xs, ds, tr: conv_backward_weight_lowering(xs, ds, w_shape, stride, padding, groups,
                                                                          transposed=tr))
        return conv_weight_from_gemm(out, w_shape).astype(self.float_dtype)

    # ---- statistics ------------------------------------------------------------------------------------
    def clear_records(self) -> None:
        self.records.clear()

    def underflow_by_layer(self, role: Role | str = Role.GRADIENT) -> dict[str, dict[str, int]]:
        """Per layer (first-call order): elements, nonzero, underflow and saturated counts of the operands of
        ``role`` over the recorded calls (gradients by default: what loss scaling is for)."""
        role = Role(role)
        out: dict[str, dict[str, int]] = {}
        for call in self.records:
            for operand_role, stats in ((call.a_role, call.a), (call.b_role, call.b)):
                if operand_role != role:
                    continue
                row = out.setdefault(call.layer, {"elements": 0, "nonzero": 0, "underflow": 0, "saturated": 0})
                row["elements"] += stats.elements
                row["nonzero"] += stats.nonzero
                row["underflow"] += stats.underflow
                row["saturated"] += stats.saturated
        return out


class Float64Ops(TrainingOps):
    """The same passes and lowering with float64 numpy GEMMs and no quantization: the reference for gradient
    checks and finite differences (layers compute in ``float_dtype``, float64 here)."""

    float_dtype = np.dtype(np.float64)

    def __init__(self, *, record: bool = True):
        super().__init__("fp32", record=record)

    def operand_format(self, layer: str, role: Role | str) -> FormatSpec | None:  # type: ignore[override]
        return None

    def _prepare(self, layer, pass_, side, x, role, spec, arith, k) -> _Operand:
        x = np.asarray(x, dtype=np.float64)
        nonzero = int(np.count_nonzero(x))
        return _Operand(x, None, 1.0, QuantStats(int(x.size), nonzero, 0, 0, tensor_amax(x), 1.0))

    def _products(self, a, b, a_op, b_op, arith, transposed=False) -> np.ndarray:
        return np.matmul(a, b)


@functools.lru_cache(maxsize=None)
def _zero_code_is_plus_zero(spec: FormatSpec) -> bool:
    value = decode_table(spec)[0]
    return bool(value == 0 and math.copysign(1.0, value) > 0)


def _lowered(op: _Operand) -> np.ndarray:
    """What the lowering moves: the operand's float values, which it pads with +0, the value of code 0 in every
    shipped format; the codes themselves for a format where code 0 means something else (decoded after the
    lowering by :func:`_lowered_values`); the float64 reference's data."""
    if op.values is None or (op.spec.bits <= 16 and not _zero_code_is_plus_zero(op.spec)):
        return op.data
    return op.values


def _lowered_values(low: np.ndarray, op: _Operand) -> np.ndarray:
    return decode_table(op.spec, np.float32)[low] if low.dtype.kind in "iu" else low


def _format_name(spec: FormatSpec | None) -> str:
    return "float64" if spec is None else spec.name


__all__ = ["Float64Ops", "GemmCall", "TrainingOps", "conv_backward_data_lowering", "conv_backward_weight_lowering",
           "conv_forward_lowering", "gemm_error_bound"]
