"""``DatapathOps``: a :class:`~hfp8sim.networks.GemmOps` that runs every GEMM and convolution of a network
through the bit-accurate datapath, and records what each call did.

For each call (a layer name):

1. both operands are scaled and encoded into the scheme's formats (``forward`` for activations and weights,
   ``backward`` for gradients) with round-to-nearest-even and saturation.  Scales are powers of two from the
   operand's own amax (:mod:`hfp8sim.formats.scaling`): one per tensor, or one per output channel for
   weights with ``scaling="per_channel"``; activations always get one scale per tensor, measured on the call's
   own input (dynamic scaling);
2. the datapath accumulates the codes (:func:`hfp8sim.datapath.accumulate` on the operands lowered as
   :func:`hfp8sim.datapath.conv.lower_conv` lowers convolutions), giving the values the accumulator buffer
   holds;
3. the values are divided by the scales and returned as float32, so the float32 operations that follow
   (LayerNorm, GELU, batch norm, ReLU6, softmax) run as before and the next GEMM quantizes its inputs again.

Scales put an operand's amax on the format's largest value, but, unless a fixed ``margin`` is given, no higher
than the accumulator allows: with S the products an accumulator adds before its value leaves it (``min(K,
segment length)``) and amax at most ``sqrt(acc_max / S)`` for both operands, no partial sum can overflow the
accumulator (and likewise ``sqrt(buffer_max / K)`` for the buffer).  That changes nothing for ``hfp8`` (30 is
far below what DLFloat16 sums allow), keeps ``fp8_e5m2`` below 2^13 instead of 57344, and puts ``ocp_fp8``'s
amax at 16 instead of 448, the price of its FP16 sums.  16-bit operands are only ever scaled down.

Every call appends a :class:`GemmRecord`: shapes and formats, bytes, GEMM dimensions as the datapath runs
them, zero codes, saturations and underflows, dynamic range, the error against float32 on the same
(unquantized) inputs, a SHA-256 of each operand's codes and of the accumulated values, so that runs (and the
weights they quantized) can be compared bit for bit.

Equivalences used for speed, both exact: a GEMM with fewer than :data:`TRANSPOSE_BELOW_COLUMNS` columns (a
depthwise convolution has one per group) is computed as ``C^T = B^T A^T``: every output element is still the
same products added in the same order with the same roundings, so its bits do not change, but the kernel
vectorises over the long side.  Weights are encoded once per ops object and an activation read by several
GEMMs (Q, K and V projections) once; both are recognised by object identity, so an array changed in place
between calls needs :meth:`DatapathOps.clear_cache`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..core.model import CoreModel
from ..datapath import ArrayArithmetic, accumulate
from ..datapath.conv import lower_conv
from ..errors import FormatError, NetworkOpError, TraceError
from ..formats import FormatSpec, Scheme, decode_table, encode, get_format, get_scheme
from ..formats.scaling import scale_from_amax
from ..networks.ops import ACTIVATION, ROLES, WEIGHT

SCALINGS = ("per_tensor", "per_channel")
GRADIENT = "gradient"
TRANSPOSE_BELOW_COLUMNS = 16


# ----------------------------------------------------------------------------------------------------------
# records


@dataclasses.dataclass(frozen=True)
class OperandRecord:
    """One operand of a GEMM call, as stored (the input feature map of a convolution, not its im2col)."""

    role: str
    format: str
    shape: tuple[int, ...]
    element_bytes: float  # bits / 8
    bytes: int  # all elements, rounded up to whole bytes
    scale_log2_min: float  # log2 of the scale(s): one value per tensor, or the range over channels
    scale_log2_max: float
    zero_fraction: float  # codes that decode to +-0
    saturated: int  # |x * scale| above the format's largest finite value (clamped to it)
    underflow: int  # non-zero inputs encoded to zero
    dynamic_range_log2: float | None  # log2(max |x| / min non-zero |x|); None when all are zero
    codes_sha256: str = ""  # of the encoded codes as the datapath reads them (op layout, little-endian)

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class GemmRecord:
    """What one GEMM-like call did (see the module docstring)."""

    name: str
    op: str  # "matmul" or "conv2d"
    a: OperandRecord
    b: OperandRecord
    out_shape: tuple[int, ...]  # the op's full output shape
    out_format: str  # format the accumulated values are held in (the buffer for ws/is, else the accumulator)
    out_element_bytes: float
    out_bytes: int
    batch: int  # datapath lowering: batch independent GEMMs [M, K] x [K, N]
    m: int
    n: int
    k: int
    sampled_rows: int  # rows of M computed bit-accurately (per batch entry); m when complete
    zero_mac_fraction: float  # MACs with at least one zero operand (over the whole GEMM)
    saturated_out: int  # accumulated values at the running format's largest finite value, or not finite (a
    # partial sum that saturated in the accumulator and was then added into a wider buffer does not show here)
    rel_error: float | None  # ||out - ref||_F / ||ref||_F over the computed rows; ref = float32 on raw inputs
    sqnr_db: float | None  # 20 log10(||ref|| / ||out - ref||); None when the error is exactly zero
    output_sha256: str  # of the accumulated values, float64 little-endian, GEMM layout [batch, rows, N]
    arith: str  # short description of the arithmetic (dataflow, accumulator, pair)
    conv: dict | None = None  # stride, padding, dilation, groups of a convolution
    err_sq: float = dataclasses.field(default=0.0, repr=False)  # ||out - ref||^2 and ||ref||^2, for sums
    ref_sq: float = dataclasses.field(default=0.0, repr=False)

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.n * self.k


# ----------------------------------------------------------------------------------------------------------
# arithmetic from an arch config


def arithmetic_for_arch(arch, operand_bits: int = 8, scheme: str | Scheme | None = None) -> ArrayArithmetic:
    """The datapath arithmetic of an arch config for operands of ``operand_bits`` (from its core model:
    see :meth:`hfp8sim.core.CoreModel.arithmetic_for_bits`)."""
    return CoreModel.build(arch, arch.resolve_scheme(scheme)).arithmetic_for_bits(operand_bits)


def describe_arith(arith: ArrayArithmetic) -> str:
    parts = [f"{arith.dataflow} {arith.rows}x{arith.cols}", f"acc {arith.acc_format.name}"]
    if arith.dataflow != "os" and arith.buffer_format != arith.acc_format:
        parts.append(f"buffer {arith.buffer_format.name}")
    if arith.chunk:
        parts.append(f"chunk {arith.chunk}")
    if arith.chain:
        parts.append("chain")
    if arith.pair:
        parts.append("pair")
    return ", ".join(parts)


def accumulator_limit(arith: ArrayArithmetic, k: int) -> float:
    """Largest operand magnitude for which no partial sum of a K-long reduction can overflow the accumulator
    or the buffer: ``min(sqrt(acc_max / min(K, segment)), sqrt(running_max / K))``."""
    products = min(k, arith.segment_length(k))
    limit = math.sqrt(float(arith.acc_format.max_value) / max(products, 1))
    return min(limit, math.sqrt(float(arith.segment_sum_format.max_value) / max(k, 1)))


# ----------------------------------------------------------------------------------------------------------
# operands


@dataclasses.dataclass
class _Encoded:
    codes: np.ndarray  # op layout, the format's code dtype
    scale: np.ndarray | float  # broadcastable to the op layout (float32 powers of two)
    record: OperandRecord | None


def _zero_table(spec: FormatSpec) -> np.ndarray:
    return decode_table(spec) == 0


def _amax(x: np.ndarray, channel_axis: int | None) -> np.ndarray:
    mags = np.abs(x)
    if channel_axis is None:
        return np.asarray(mags.max(initial=0.0), dtype=np.float64)
    axes = tuple(a for a in range(x.ndim) if a != channel_axis % x.ndim)
    return mags.max(axis=axes, keepdims=True, initial=0.0).astype(np.float64)


def _operand_record(x: np.ndarray, scaled: np.ndarray, codes: np.ndarray, spec: FormatSpec, role: str,
                    scale) -> OperandRecord:
    zero_codes = _zero_table(spec)[codes]
    mags = np.abs(x)
    nonzero = mags > 0
    count = x.size
    with np.errstate(invalid="ignore"):
        saturated = int(np.count_nonzero(np.abs(scaled) > float(spec.max_value)))
    underflow = int(np.count_nonzero(nonzero & zero_codes))
    finite_nonzero = mags[nonzero & np.isfinite(mags)]
    dynamic_range = (float(np.log2(float(finite_nonzero.max()) / float(finite_nonzero.min())))
                     if finite_nonzero.size else None)
    scale_log2 = np.log2(np.asarray(scale, dtype=np.float64))
    return OperandRecord(
        role=role, format=spec.name, shape=tuple(int(d) for d in x.shape), element_bytes=spec.bits / 8,
        bytes=math.ceil(count * spec.bits / 8), scale_log2_min=float(scale_log2.min()),
        scale_log2_max=float(scale_log2.max()),
        zero_fraction=float(np.count_nonzero(zero_codes) / count) if count else 0.0,
        saturated=saturated, underflow=underflow, dynamic_range_log2=dynamic_range, codes_sha256=codes_sha256(codes))


def codes_sha256(codes: np.ndarray) -> str:
    """SHA-256 of an operand's codes (C order, little-endian): equal hashes mean the datapath read the same
    bits, e.g. the same folded and quantized weights."""
    return hashlib.sha256(np.ascontiguousarray(codes, dtype=codes.dtype.newbyteorder("<")).tobytes()).hexdigest()


# ----------------------------------------------------------------------------------------------------------
# the ops


class DatapathOps:
    """GEMMs and convolutions of a network on the bit-accurate datapath (see the module docstring).

    ``scheme``: a scheme name or :class:`~hfp8sim.formats.Scheme`; ``arith``: the array arithmetic for 8-bit
    operands; ``wide_arith``: the arithmetic when an operand is wider than 8 bits (default ``arith``);
    ``scaling``: ``"per_tensor"`` or ``"per_channel"`` (weights per output channel); ``margin``: factors of two
    below the format's max where amax lands (``None``: as high as :func:`accumulator_limit` allows);
    ``overrides``: ``{layer-name pattern: format}`` giving both operands of matching layers another format
    (fnmatch patterns such as ``"blocks.*.depthwise"``); ``record``: keep a :class:`GemmRecord` per call in
    ``records`` (the statistics cost a float32 reference product and a few passes over the operands).
    """

    float_dtype = np.dtype(np.float32)

    def __init__(self, scheme: str | Scheme = "hfp8", arith: ArrayArithmetic | None = None,
                 scaling: str = "per_tensor", *, wide_arith: ArrayArithmetic | None = None,
                 power_of_two: bool = True, margin: int | None = None,
                 overrides: Mapping[str, str | FormatSpec] | None = None, record: bool = True,
                 progress: Callable[[GemmRecord, float], None] | None = None):
        self.scheme = get_scheme(scheme)
        self.arith = arith if arith is not None else ArrayArithmetic()
        self.wide_arith = wide_arith if wide_arith is not None else self.arith
        for what, value in (("arith", self.arith), ("wide_arith", self.wide_arith)):
            if not isinstance(value, ArrayArithmetic):
                raise TraceError(f"{what} must be an ArrayArithmetic, got {type(value).__name__}")
        if scaling not in SCALINGS:
            raise TraceError(f"unknown scaling {scaling!r}; allowed: {', '.join(SCALINGS)}")
        if margin is not None and (isinstance(margin, bool) or not isinstance(margin, int) or margin < 0):
            raise TraceError(f"margin must be a non-negative integer number of factors of two, got {margin!r}")
        self.scaling = scaling
        self.power_of_two = bool(power_of_two)
        self.margin = margin
        self.overrides = {str(k): get_format(v) for k, v in (overrides or {}).items()}
        for spec in {*self.scheme.operand_formats, *self.overrides.values()}:
            if spec.bits > 16:
                raise FormatError(f"scheme {self.scheme.name}: operand format {spec.name} has {spec.bits} bits; "
                                  "the datapath takes operands of at most 16 bits (Float32Ops is the float32 "
                                  "reference)")
        self.record = bool(record)
        self.progress = progress
        self.records: list[GemmRecord] = []
        self._weights: dict[tuple, tuple[np.ndarray, _Encoded]] = {}
        self._last_activation: tuple[tuple, np.ndarray, _Encoded] | None = None

    def __repr__(self) -> str:
        return (f"DatapathOps({self.scheme.name!r}, {describe_arith(self.arith)}, {self.scaling}"
                f"{', overrides ' + str(sorted(self.overrides)) if self.overrides else ''})")

    @classmethod
    def from_core(cls, core: CoreModel, scaling: str = "per_tensor", **kwargs) -> DatapathOps:
        """Ops with the core's scheme and arithmetic (pair mode by operand width: 8-bit and wider operands)."""
        return cls(core.scheme, core.arithmetic_for_bits(8), scaling, wide_arith=core.arithmetic_for_bits(16),
                   **kwargs)

    @classmethod
    def from_arch(cls, arch, scheme: str | Scheme | None = None, scaling: str = "per_tensor",
                  **kwargs) -> DatapathOps:
        """Ops with the arithmetic of ``arch``; its scheme unless one is given."""
        return cls.from_core(CoreModel.build(arch, arch.resolve_scheme(scheme)), scaling,
                             **kwargs)

    def clear_cache(self) -> None:
        """Forget encoded weights and the last activation (weights are cached by object identity)."""
        self._weights.clear()
        self._last_activation = None

    # ---- formats and scales ------------------------------------------------------------------------------
    def operand_format(self, name: str, role: str) -> FormatSpec:
        for pattern, spec in self.overrides.items():
            if fnmatch.fnmatchcase(name, pattern):
                return spec
        if role == GRADIENT and self.scheme.backward is None:
            raise TraceError(f"{name}: scheme {self.scheme.name} has no backward format (inference only), so a "
                             "gradient operand has no format")
        return self.scheme.backward if role == GRADIENT else self.scheme.forward

    def arithmetic(self, a_spec: FormatSpec, b_spec: FormatSpec) -> ArrayArithmetic:
        return self.arith if max(a_spec.bits, b_spec.bits) <= 8 else self.wide_arith

    def _target(self, spec: FormatSpec, arith: ArrayArithmetic, k: int) -> float:
        """Where amax lands before the power-of-two rounding down: the format's max, or less (see the module)."""
        top = float(spec.max_value)
        if self.margin is not None:
            return math.ldexp(top, -self.margin)
        return min(top, accumulator_limit(arith, k))

    def _encode(self, x: np.ndarray, spec: FormatSpec, role: str, channel_axis: int | None,
                arith: ArrayArithmetic, k: int) -> _Encoded:
        per_channel = role == WEIGHT and self.scaling == "per_channel" and channel_axis is not None
        target = self._target(spec, arith, k)
        key = (id(x), x.shape, spec.name, role, per_channel, target)
        if role == WEIGHT and key in self._weights:
            return self._weights[key][1]
        if role != WEIGHT and self._last_activation is not None and self._last_activation[0] == key:
            return self._last_activation[2]
        original, x = x, np.asarray(x, dtype=np.float32)
        amax = _amax(x, channel_axis if per_channel else None)
        # the scaling module maps amax onto the format's max; a larger amax in proportion lands it on target
        scale = scale_from_amax(amax * (float(spec.max_value) / target), spec, power_of_two=self.power_of_two)
        if spec.bits > 8:
            scale = np.minimum(scale, 1.0)  # 16-bit formats hold trained values as they are: only scale down
        scale = scale.astype(np.float32)
        scaled = x * scale
        codes = encode(scaled, spec)
        record = _operand_record(x, scaled, codes, spec, role, scale) if self.record else None
        encoded = _Encoded(codes, scale if per_channel else float(scale), record)
        if role == WEIGHT:
            self._weights[key] = (original, encoded)  # holding the array keeps its id unique while cached
        else:
            self._last_activation = (key, original, encoded)
        return encoded

    # ---- the GemmOps protocol ----------------------------------------------------------------------------
    def matmul(self, name: str, a: np.ndarray, b: np.ndarray, a_role: str = ACTIVATION,
               b_role: str = WEIGHT) -> np.ndarray:
        return self.run_matmul(name, a, b, a_role, b_role)

    def conv2d(self, name: str, x: np.ndarray, w: np.ndarray, stride=(1, 1), padding=(0, 0, 0, 0),
               dilation=(1, 1), groups: int = 1) -> np.ndarray:
        return self.run_conv2d(name, x, w, stride, padding, dilation, groups)

    # ---- the work, with optional row sampling ------------------------------------------------------------
    def run_matmul(self, name: str, a: np.ndarray, b: np.ndarray, a_role: str = ACTIVATION,
                   b_role: str = WEIGHT, *, rows: Sequence[int] | None = None) -> np.ndarray:
        """``a @ b`` (numpy broadcasting over leading axes).  With ``rows`` only those rows of every batch
        entry's M are computed and returned (``[..., len(rows), N]``)."""
        for role in (a_role, b_role):
            if role not in ROLES + (GRADIENT,):
                raise NetworkOpError(f"{name}: operand role {role!r} is not one of activation, weight, gradient")
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
            raise NetworkOpError(f"{name}: matmul wants a [..., M, K] and b [..., K, N], got {a.shape} and {b.shape}")
        a_spec, b_spec = self.operand_format(name, a_role), self.operand_format(name, b_role)
        arith = self.arithmetic(a_spec, b_spec)
        m_dim, k_dim, n_dim = a.shape[-2], a.shape[-1], b.shape[-1]
        ea = self._encode(a, a_spec, a_role, -2, arith, k_dim)
        eb = self._encode(b, b_spec, b_role, -1, arith, k_dim)
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64)
            if rows.ndim != 1 or not rows.size or rows.min() < 0 or rows.max() >= m_dim:
                raise TraceError(f"{name}: sampled rows must be a non-empty selection of the {m_dim} rows of M")
        if b.ndim == 2 and a_role != WEIGHT:
            # one weight matrix for every leading index: a single GEMM over all rows, as the array runs it
            lead = a.shape[:-2]
            out_shape = (*lead, m_dim, n_dim)
            m_all = int(np.prod(lead, dtype=np.int64)) * m_dim

            def gemm_layout(arr, kind):
                return arr.reshape(1, m_all, k_dim) if kind == "a" else arr.reshape(1, k_dim, n_dim)

            sa = ea.scale  # an activation or a gradient: one scale
            sb = np.asarray(eb.scale, np.float32).reshape(1, 1, n_dim) if np.ndim(eb.scale) else eb.scale
            lead_rows = None if rows is None else np.asarray(rows)
            if lead_rows is not None and lead:
                # the same rows of each leading entry
                lead_rows = (np.arange(m_all // m_dim)[:, None] * m_dim + lead_rows[None, :]).ravel()
        else:
            batch_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            out_shape = (*batch_shape, m_dim, n_dim)
            g = int(np.prod(batch_shape, dtype=np.int64))

            def gemm_layout(arr, kind):
                shape = a.shape[-2:] if kind == "a" else b.shape[-2:]
                return np.broadcast_to(arr, (*batch_shape, *shape)).reshape(g, *shape)

            sa = (np.broadcast_to(np.asarray(ea.scale, np.float32), (*batch_shape, m_dim, 1)).reshape(g, m_dim, 1)
                  if np.ndim(ea.scale) else ea.scale)
            sb = (np.broadcast_to(np.asarray(eb.scale, np.float32), (*batch_shape, 1, n_dim)).reshape(g, 1, n_dim)
                  if np.ndim(eb.scale) else eb.scale)
            lead_rows = None if rows is None else np.asarray(rows)
        a_bits, b_bits = gemm_layout(ea.codes, "a"), gemm_layout(eb.codes, "b")
        values = self._run(name, "matmul", a_bits, b_bits, a_spec, b_spec, arith, sa, sb, ea, eb, out_shape,
                           lambda: (gemm_layout(np.asarray(a, np.float32), "a"),
                                    gemm_layout(np.asarray(b, np.float32), "b")),
                           lead_rows, None)
        if rows is not None:
            return values.reshape(*out_shape[:-2], len(rows), n_dim).astype(np.float32)
        return values.reshape(out_shape).astype(np.float32)

    def run_conv2d(self, name: str, x: np.ndarray, w: np.ndarray, stride=(1, 1), padding=(0, 0, 0, 0),
                   dilation=(1, 1), groups: int = 1, *, rows: Sequence[int] | None = None) -> np.ndarray:
        """NCHW ``x`` with KCRS ``w``; returns NKPQ float32, or with ``rows`` (output pixels ``(n, p, q)``
        row-major) the GEMM-layout result ``[groups, len(rows), K/groups]``."""
        x, w = np.asarray(x), np.asarray(w)
        if x.ndim != 4 or w.ndim != 4:
            raise NetworkOpError(f"{name}: conv2d wants NCHW input and KCRS weights, got {x.shape} and {w.shape}")
        x_spec, w_spec = self.operand_format(name, ACTIVATION), self.operand_format(name, WEIGHT)
        arith = self.arithmetic(x_spec, w_spec)
        k_dim = w.shape[1] * w.shape[2] * w.shape[3]
        ex = self._encode(x, x_spec, ACTIVATION, None, arith, k_dim)
        ew = self._encode(w, w_spec, WEIGHT, 0, arith, k_dim)
        a_bits, b_bits, (n_dim, k_dim, p_dim, q_dim) = lower_conv(ex.codes, ew.codes, stride, padding, dilation,
                                                                 groups)
        kg = k_dim // groups
        sb = np.asarray(ew.scale, np.float32).reshape(groups, 1, kg) if np.ndim(ew.scale) else ew.scale
        conv = {"stride": list(_pair(stride)), "padding": list(_four(padding)), "dilation": list(_pair(dilation)),
                "groups": int(groups)}

        def float_operands():
            fa, fb, _ = lower_conv(np.asarray(x, np.float32), np.asarray(w, np.float32), stride, padding,
                                   dilation, groups)
            return fa, fb

        values = self._run(name, "conv2d", a_bits, b_bits, x_spec, w_spec, arith, ex.scale, sb, ex, ew,
                           (n_dim, k_dim, p_dim, q_dim), float_operands,
                           None if rows is None else np.asarray(rows), conv)
        if rows is not None:
            return values.astype(np.float32)
        return np.ascontiguousarray(values.reshape(groups, n_dim, p_dim, q_dim, kg).transpose(1, 0, 4, 2, 3)
                                    .reshape(n_dim, k_dim, p_dim, q_dim)).astype(np.float32)

    def _run(self, name, op, a_bits, b_bits, a_spec, b_spec, arith, sa, sb, ea, eb, out_shape, float_operands,
             rows, conv) -> np.ndarray:
        """Accumulate on the datapath, unscale, record; returns float64 values in GEMM layout [G, rows, N]."""
        start = time.perf_counter()
        groups, m_dim, k_dim = a_bits.shape
        n_dim = b_bits.shape[2]
        if rows is not None and (len(rows) == 0 or rows.min() < 0 or rows.max() >= m_dim):
            raise TraceError(f"{name}: sampled rows must be a non-empty selection of the {m_dim} rows of M")
        a_used = a_bits if rows is None else a_bits[:, rows]
        acc = accumulate_any_order(a_used, b_bits, a_spec, b_spec, arith)
        sa_used = sa if np.ndim(sa) == 0 or rows is None else sa[:, rows]
        values = acc / (np.asarray(sa_used, np.float64) * np.asarray(sb, np.float64))
        if self.record:
            fa, fb = float_operands()
            ref = np.matmul(fa if rows is None else fa[:, rows], fb).astype(np.float64)  # float32 product
            err_sq = float(np.sum((values - ref) ** 2))
            ref_sq = float(np.sum(ref**2))
            rel_error = math.sqrt(err_sq / ref_sq) if ref_sq > 0 else None
            sqnr = 10 * math.log10(ref_sq / err_sq) if err_sq > 0 and ref_sq > 0 else None
            a_nonzero = ~_zero_table(a_spec)[a_bits]
            b_nonzero = ~_zero_table(b_spec)[b_bits]
            useful = np.einsum("gk,gk->", a_nonzero.sum(axis=1, dtype=np.int64),
                               b_nonzero.sum(axis=2, dtype=np.int64))
            total = groups * m_dim * n_dim * k_dim
            running = arith.segment_sum_format
            with np.errstate(invalid="ignore"):
                saturated_out = int(np.count_nonzero(~(np.abs(acc) < float(running.max_value))))
            out_elements = math.prod(out_shape)
            self.records.append(GemmRecord(
                name=name, op=op, a=ea.record, b=eb.record, out_shape=tuple(int(d) for d in out_shape),
                out_format=running.name, out_element_bytes=running.bits / 8,
                out_bytes=math.ceil(out_elements * running.bits / 8), batch=int(groups), m=int(m_dim),
                n=int(n_dim), k=int(k_dim), sampled_rows=int(m_dim if rows is None else len(rows)),
                zero_mac_fraction=float(1 - useful / total) if total else 0.0, saturated_out=saturated_out,
                rel_error=rel_error, sqnr_db=sqnr, output_sha256=values_sha256(acc), arith=describe_arith(arith),
                conv=conv, err_sq=err_sq, ref_sq=ref_sq))
            if self.progress is not None:
                self.progress(self.records[-1], time.perf_counter() - start)
        return values


def accumulate_any_order(a_bits: np.ndarray, b_bits: np.ndarray, a_spec: FormatSpec, b_spec: FormatSpec,
                         arith: ArrayArithmetic) -> np.ndarray:
    """:func:`hfp8sim.datapath.accumulate` of ``[G, M, K] x [G, K, N]``, computed as ``(B^T A^T)^T`` when N is
    small (see the module docstring: the same bits, a faster loop)."""
    m_dim, n_dim = a_bits.shape[1], b_bits.shape[2]
    if n_dim < TRANSPOSE_BELOW_COLUMNS and m_dim > n_dim:
        out = accumulate(b_bits.transpose(0, 2, 1), a_bits.transpose(0, 2, 1), b_spec, a_spec, arith)
        return np.ascontiguousarray(out.transpose(0, 2, 1))
    return accumulate(a_bits, b_bits, a_spec, b_spec, arith)


def values_sha256(values: np.ndarray) -> str:
    """SHA-256 of float64 values (little-endian, C order): equal hashes mean bit-identical results."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f8").tobytes()).hexdigest()


def summarize_by_layer(records: Sequence[GemmRecord]) -> dict[str, dict]:
    """Per layer name (in first-call order): calls, MACs, relative error over all its calls, zero and
    saturation fractions of its operands."""
    out: dict[str, dict] = {}
    for r in records:
        s = out.setdefault(r.name, {"op": r.op, "calls": 0, "macs": 0, "err_sq": 0.0, "ref_sq": 0.0,
                                    "a_elements": 0, "b_elements": 0, "underflow_a": 0, "underflow_b": 0,
                                    "saturated_a": 0, "saturated_b": 0, "a_format": r.a.format,
                                    "b_format": r.b.format})
        s["calls"] += 1
        s["macs"] += r.macs
        s["err_sq"] += r.err_sq
        s["ref_sq"] += r.ref_sq
        for side, operand in (("a", r.a), ("b", r.b)):
            s[f"{side}_elements"] += operand.elements
            s[f"underflow_{side}"] += operand.underflow
            s[f"saturated_{side}"] += operand.saturated
    for s in out.values():
        s["rel_error"] = math.sqrt(s["err_sq"] / s["ref_sq"]) if s["ref_sq"] > 0 else None
    return out


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def _four(value) -> tuple[int, int, int, int]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * 4
    values = tuple(int(v) for v in value)
    return values if len(values) == 4 else (values[0], values[0], values[1], values[1])  # type: ignore[return-value]


__all__ = ["DatapathOps", "GemmRecord", "OperandRecord", "SCALINGS", "TRANSPOSE_BELOW_COLUMNS",
           "accumulate_any_order", "accumulator_limit", "arithmetic_for_arch", "codes_sha256", "describe_arith",
           "summarize_by_layer",
           "values_sha256"]
