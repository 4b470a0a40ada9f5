"""Conv2d lowered onto the GEMM by one im2col mapping, shared with the timing model.

For input ``x[N, C, H, W]`` and weights ``w[K, C/G, R, S]`` with G groups, group g is the GEMM

    A_g[(n, p, q), (r, s, c)] = x[n, g*C/G + c, p*stride_h - pad_top + r*dil_h, q*stride_w - pad_left + s*dil_w]
    B_g[(r, s, c), k]         = w[g*K/G + k, c, r, s]
    out[n, g*K/G + k, p, q]   = (A_g @ B_g)[(n, p, q), k]

so M = N*P*Q (row index n, p, q row-major), the GEMM's N = K/G and its K = R*S*C/G with the **reduction order
(r, s, c)**: channel fastest, then filter column, then filter row.  Positions outside the input read code 0
(+0 in every format).  Depthwise convolution is G = C = K.  P and Q follow the usual floor formula
``(H + pad_top + pad_bottom - dil_h*(R-1) - 1) // stride_h + 1``.
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import DatapathError
from ..formats.spec import get_format
from .contract import ArrayArithmetic
from .gemm import _check_codes, accumulate, reference_gemm, round_output


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    try:
        first, second = value
    except (TypeError, ValueError):
        raise DatapathError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    return int(first), int(second)


def _padding(value) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a (h, w) pair or a 4-tuple."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * 4
    values = tuple(int(v) for v in value)
    if len(values) == 2:
        return values[0], values[0], values[1], values[1]
    if len(values) == 4:
        return values  # type: ignore[return-value]
    raise DatapathError(f"padding must be an int, (h, w) or (top, bottom, left, right); got {value!r}")


@numba.njit(cache=True, parallel=True)
def _im2col(x, groups, r_dim, s_dim, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, p_dim, q_dim, cols):
    """cols[g, (n, p, q), (r, s, c)] = x[n, g*Cg + c, ...] or 0 outside the input.

    One task per (group, image, output row): it writes a contiguous block of Q rows of cols and reads the
    input along its rows."""
    n_dim, c_dim, h_dim, w_dim = x.shape
    cg = c_dim // groups
    for index in numba.prange(groups * n_dim * p_dim):
        g = index // (n_dim * p_dim)
        n = (index // p_dim) % n_dim
        p = index % p_dim
        first_row = (n * p_dim + p) * q_dim
        for r in range(r_dim):
            h = p * stride_h - pad_top + r * dil_h
            row_inside = 0 <= h < h_dim
            for s in range(s_dim):
                base = (r * s_dim + s) * cg
                for q in range(q_dim):
                    wpos = q * stride_w - pad_left + s * dil_w
                    out = cols[g, first_row + q]
                    if row_inside and 0 <= wpos < w_dim:
                        for c in range(cg):
                            out[base + c] = x[n, g * cg + c, h, wpos]
                    else:
                        for c in range(cg):
                            out[base + c] = 0


@numba.njit(cache=True, parallel=True)
def _im2col_columns(x, groups, r_dim, s_dim, stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, p_dim, q_dim,
                    cols_t):
    """The same matrix stored transposed: cols_t[g, (r, s, c), (n, p, q)] (one contiguous row per reduction
    index, read along the input's rows)."""
    n_dim, c_dim, h_dim, w_dim = x.shape
    cg = c_dim // groups
    for index in numba.prange(groups * r_dim * s_dim * cg):
        g = index // (r_dim * s_dim * cg)
        r = (index // (s_dim * cg)) % r_dim
        s = (index // cg) % s_dim
        c = index % cg
        out = cols_t[g, (r * s_dim + s) * cg + c]
        channel = g * cg + c
        for n in range(n_dim):
            for p in range(p_dim):
                h = p * stride_h - pad_top + r * dil_h
                base = (n * p_dim + p) * q_dim
                if 0 <= h < h_dim:
                    for q in range(q_dim):
                        wpos = q * stride_w - pad_left + s * dil_w
                        out[base + q] = x[n, channel, h, wpos] if 0 <= wpos < w_dim else 0
                else:
                    for q in range(q_dim):
                        out[base + q] = 0


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Checked conv dimensions: (N, C, H, W, K, R, S, P, Q, stride, pad(t,b,l,r), dilation, groups)."""
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise DatapathError(f"conv2d takes x[N,C,H,W] and w[K,C/groups,R,S]; got shapes {x_shape} and {w_shape}")
    n_dim, c_dim, h_dim, w_dim = x_shape
    k_dim, cg, r_dim, s_dim = w_shape
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise DatapathError(f"groups must be a positive integer, got {groups!r}")
    if c_dim % groups or k_dim % groups:
        raise DatapathError(f"groups={groups} must divide both input channels C={c_dim} and output channels K={k_dim}")
    if cg != c_dim // groups:
        raise DatapathError(f"weights have {cg} input channels per group; x has C={c_dim}, groups={groups} "
                            f"so each group needs {c_dim // groups}")
    stride_hw, dil_hw, pads = _pair(stride, "stride"), _pair(dilation, "dilation"), _padding(padding)
    if min(stride_hw) < 1 or min(dil_hw) < 1 or min(pads) < 0:
        raise DatapathError(f"stride and dilation must be >= 1 and padding >= 0; got {stride}, {dilation}, {padding}")
    p_dim = (h_dim + pads[0] + pads[1] - dil_hw[0] * (r_dim - 1) - 1) // stride_hw[0] + 1
    q_dim = (w_dim + pads[2] + pads[3] - dil_hw[1] * (s_dim - 1) - 1) // stride_hw[1] + 1
    if p_dim < 1 or q_dim < 1:
        raise DatapathError(f"the {r_dim}x{s_dim} filter does not fit the padded {h_dim}x{w_dim} input")
    return n_dim, c_dim, h_dim, w_dim, k_dim, r_dim, s_dim, p_dim, q_dim, stride_hw, pads, dil_hw, groups


def lower_conv(x_bits, w_bits, stride=1, padding=0, dilation=1, groups=1, *, columns_first: bool = False):
    """The im2col lowering: (A [G, N*P*Q, R*S*C/G], B [G, R*S*C/G, K/G], (N, K, P, Q)).

    ``columns_first``: A is stored transposed ([G, R*S*C/G, N*P*Q] contiguous) and returned as the transposed
    view, the same matrix, for a caller that multiplies ``A^T`` (a product computed as ``(B^T A^T)^T``)."""
    x = np.ascontiguousarray(x_bits)
    w = np.asarray(w_bits)
    n_dim, c_dim, _, _, k_dim, r_dim, s_dim, p_dim, q_dim, st, pads, dil, groups = conv_geometry(
        x.shape, w.shape, stride, padding, dilation, groups)
    cg, kg = c_dim // groups, k_dim // groups
    if columns_first:
        cols_t = np.empty((groups, r_dim * s_dim * cg, n_dim * p_dim * q_dim), x.dtype)
        _im2col_columns(x, groups, r_dim, s_dim, st[0], st[1], pads[0], pads[2], dil[0], dil[1], p_dim, q_dim,
                        cols_t)
        cols = cols_t.transpose(0, 2, 1)
    else:
        cols = np.empty((groups, n_dim * p_dim * q_dim, r_dim * s_dim * cg), x.dtype)
        _im2col(x, groups, r_dim, s_dim, st[0], st[1], pads[0], pads[2], dil[0], dil[1], p_dim, q_dim, cols)
    # B_g[(r, s, c), k] = w[g*Kg + k, c, r, s]
    b = np.ascontiguousarray(
        w.reshape(groups, kg, cg, r_dim, s_dim).transpose(0, 3, 4, 2, 1).reshape(groups, r_dim * s_dim * cg, kg))
    return cols, b, (n_dim, k_dim, p_dim, q_dim)


def _to_nkpq(out_g: np.ndarray, shape) -> np.ndarray:
    n_dim, k_dim, p_dim, q_dim = shape
    groups, _, kg = out_g.shape
    return np.ascontiguousarray(
        out_g.reshape(groups, n_dim, p_dim, q_dim, kg).transpose(1, 0, 4, 2, 3).reshape(n_dim, k_dim, p_dim, q_dim))


def conv2d(x_bits, w_bits, x_format, w_format, arith: ArrayArithmetic | None = None, out_format=None, *,
           stride=1, padding=0, dilation=1, groups: int = 1, out_rounding: str = "nearest_even",
           out_overflow: str = "saturate", seed: int | None = None, force_exact: bool = False) -> np.ndarray:
    """Bit-accurate conv2d on codes (NCHW input, KCRS weights, NKPQ output), through ``lower_conv``.

    Returns accumulated values (float64) without ``out_format``, else codes of ``out_format``.
    """
    x_spec, w_spec = get_format(x_format), get_format(w_format)
    _check_codes(x_bits, x_spec, "x")
    _check_codes(w_bits, w_spec, "w")
    a, b, shape = lower_conv(x_bits, w_bits, stride, padding, dilation, groups)
    values = _to_nkpq(accumulate(a, b, x_spec, w_spec, arith or ArrayArithmetic(), force_exact=force_exact), shape)
    if out_format is None:
        return values
    return round_output(values, out_format, rounding=out_rounding, overflow=out_overflow, seed=seed)


def reference_conv2d(x_bits, w_bits, x_format, w_format, *, stride=1, padding=0, dilation=1, groups=1,
                     dtype=np.float64) -> np.ndarray:
    """The ideal conv for error measurement: decoded operands, numpy matmul in ``dtype``."""
    a, b, shape = lower_conv(x_bits, w_bits, stride, padding, dilation, groups)
    return _to_nkpq(reference_gemm(a, b, x_format, w_format, dtype), shape)
