"""Encode, decode and quantize: Numba kernels, callable from numpy and from other ``@njit`` code.

Scalar kernels (use them inside your own ``@njit`` loops; ``p`` is ``FormatSpec.params``):

* ``round_to_format(x, p, rounding, overflow, rbits) -> (code, value)``: one correctly rounded conversion
  of the float64 ``x``; ``value`` is the decoded result as float64 (NaN/inf included).
* ``decode_scalar(code, p) -> float64``.

Rounding modes (``ROUND_*``): nearest-even, toward zero, stochastic, nearest with ties away from zero.
Stochastic rounding rounds up with probability equal to the discarded fraction, using 53 random bits taken
from ``rbits`` (the array functions derive them from ``seed`` and the element index with SplitMix64, so the
result does not depend on thread scheduling).

Overflow (``OVERFLOW_*``): ``saturate`` clamps to +/-max finite (inf inputs too); ``nonsaturating`` follows
IEEE/ml_dtypes: to +/-inf, or NaN where the format has no inf (round-toward-zero still gives max finite for
finite inputs, as IEEE 754 says).

Rules every kernel follows:

* Rounding is exact: the input's full significand is compared with the target's grid (no double rounding).
* Without subnormals a result is first rounded to ``man_bits`` with an unbounded exponent; if it is then
  below the smallest normal it flushes to zero (keeping the sign where the format has -0).
* NaN becomes the canonical NaN code: ``sign | all-ones exponent | quiet bit`` (ieee), ``sign | all ones``
  (fn) or ``0x80`` (fnuz), as ml_dtypes writes them; NaN payloads are not kept.
* -0 becomes +0 in formats without negative zero; negative values in unsigned formats become NaN, or 0 when
  saturating.
* Decoding a non-canonical code: NaN payload codes read as NaN (keeping the sign), subnormal codes of a format without
  subnormals read as zero, and the -0 code of a format without -0 reads as +0.
"""

from __future__ import annotations

import math
import os

# Numba's OpenMP threads spin after every parallel kernel waiting for the next one; on a machine shared with
# other jobs (more runnable threads than cores) the spinning takes the cores the main thread needs, and a
# kernel ran 3-4x slower on two threads than on one.  Sleeping waiters cost microseconds per kernel instead.
# Set before Numba's threading layer loads OpenMP (it reads the variable once); a user's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402  (after the OpenMP setting above)
import numpy as np

from .spec import (
    P_BIAS, P_EMAX, P_EMIN, P_EXP_BITS, P_INF_CODE, P_INFINITIES, P_MAN_BITS, P_MAX_CODE, P_MAX_EXP_FIELD,
    P_MAX_MANT, P_NAN_CODE, P_NAN_STYLE, P_NEG_ZERO, P_SIGN_BIT, P_SIGNED, P_SUBNORMALS, FormatSpec, get_format,
)
from ..errors import FormatError

ROUND_NEAREST_EVEN = 0
ROUND_TOWARD_ZERO = 1
ROUND_STOCHASTIC = 2
ROUND_NEAREST_AWAY = 3
ROUNDING_MODES = {
    "nearest_even": ROUND_NEAREST_EVEN,
    "toward_zero": ROUND_TOWARD_ZERO,
    "stochastic": ROUND_STOCHASTIC,
    "nearest_away": ROUND_NEAREST_AWAY,
}

OVERFLOW_SATURATE = 0
OVERFLOW_NONSATURATING = 1
OVERFLOW_MODES = {"saturate": OVERFLOW_SATURATE, "nonsaturating": OVERFLOW_NONSATURATING}

_NAN_IEEE, _NAN_FN, _NAN_FNUZ = 0, 1, 2
_TWO_POW_M53 = 2.0 ** -53


@numba.njit(cache=True, inline="always")
def splitmix64(x):
    """One SplitMix64 step: a well-mixed 64-bit value from a counter (the stochastic-rounding source)."""
    z = numba.uint64(x) + numba.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> numba.uint64(30))) * numba.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> numba.uint64(27))) * numba.uint64(0x94D049BB133111EB)
    return z ^ (z >> numba.uint64(31))


@numba.njit(cache=True, inline="always")
def random_bits(seed, index):
    """Random bits for element ``index`` of a stream: independent of the order elements are processed."""
    return splitmix64(splitmix64(numba.uint64(seed)) ^ numba.uint64(index))


@numba.njit(cache=True, inline="always")
def _nan(p, sign):
    if p[P_NAN_STYLE] == _NAN_FNUZ:
        return p[P_NAN_CODE], math.nan
    return p[P_NAN_CODE] | (p[P_SIGN_BIT] if sign else 0), math.nan


@numba.njit(cache=True, inline="always")
def _max_finite(p, sign):
    value = math.ldexp(float((1 << p[P_MAN_BITS]) | p[P_MAX_MANT]), p[P_EMAX] - p[P_MAN_BITS])
    if sign:
        return p[P_MAX_CODE] | p[P_SIGN_BIT], -value
    return p[P_MAX_CODE], value


@numba.njit(cache=True, inline="always")
def _overflow(p, sign, overflow, rounding, input_is_inf):
    if overflow == OVERFLOW_SATURATE or (rounding == ROUND_TOWARD_ZERO and not input_is_inf):
        return _max_finite(p, sign)
    if p[P_INFINITIES]:
        return p[P_INF_CODE] | (p[P_SIGN_BIT] if sign else 0), (-math.inf if sign else math.inf)
    return _nan(p, sign)


@numba.njit(cache=True, inline="always")
def _zero(p, sign):
    if sign and p[P_NEG_ZERO]:
        return p[P_SIGN_BIT], -0.0
    return 0, 0.0


@numba.njit(cache=True)
def round_to_format(x, p, rounding, overflow, rbits):
    """Round the float64 ``x`` into the format ``p``: returns (code, decoded value as float64)."""
    if x != x:
        return _nan(p, math.copysign(1.0, x) < 0.0)
    sign = math.copysign(1.0, x) < 0.0
    if sign and not p[P_SIGNED]:
        if x == 0.0:
            return 0, 0.0
        if overflow == OVERFLOW_SATURATE:
            return 0, 0.0
        return _nan(p, False)
    a = abs(x)
    if a == 0.0:
        return _zero(p, sign)
    if a == math.inf:
        return _overflow(p, sign, overflow, rounding, True)
    man_bits = p[P_MAN_BITS]
    frac, e = math.frexp(a)  # a = frac * 2**e, frac in [0.5, 1)
    lg = e - 1  # floor(log2(a))
    if lg > p[P_EMAX]:
        return _overflow(p, sign, overflow, rounding, False)
    sig = np.int64(math.ldexp(frac, 53))  # exact 53-bit significand: a = sig * 2**(e - 53)
    if p[P_SUBNORMALS]:
        q = max(lg, p[P_EMIN]) - man_bits  # exponent of one unit in the last place of the result
    else:
        q = lg - man_bits
    shift = q - (e - 53)  # how many low bits of sig fall below the result's last place
    mi = _round_significand(sig, shift, rounding, rbits)
    return _encode_rounded(mi, q, sign, p, overflow, rounding)


# The two steps of round_to_format are inlined into it (inline="always"): the compiled kernel is the one
# function it was, so the per-element hot path pays no call.

@numba.njit(cache=True, inline="always")
def _round_significand(sig, shift, rounding, rbits):
    """``sig`` with its ``shift`` low bits rounded away by ``rounding`` (``shift <= 0``: shifted up, exact)."""
    if shift <= 0:
        return sig << (-shift)
    if shift >= 63:  # every bit falls below the last place: only stochastic rounding can give one unit
        mi = np.int64(0)
        if rounding == ROUND_STOCHASTIC:
            u = float(rbits >> numba.uint64(11)) * _TWO_POW_M53
            if u < math.ldexp(float(sig), -shift):
                mi = np.int64(1)
        return mi
    mi = sig >> shift
    rem = sig & ((np.int64(1) << shift) - 1)
    half = np.int64(1) << (shift - 1)
    if rounding == ROUND_NEAREST_EVEN:
        if rem > half or (rem == half and (mi & 1) == 1):
            mi += 1
    elif rounding == ROUND_NEAREST_AWAY:
        if rem >= half:
            mi += 1
    elif rounding == ROUND_STOCHASTIC:
        u = float(rbits >> numba.uint64(11)) * _TWO_POW_M53
        if u < math.ldexp(float(rem), -shift):
            mi += 1
    return mi


@numba.njit(cache=True, inline="always")
def _encode_rounded(mi, q, sign, p, overflow, rounding):
    """(code, value) of the rounded magnitude ``mi * 2**q``: zero, flush, overflow, normal or subnormal."""
    man_bits = p[P_MAN_BITS]
    if mi == 0:
        return _zero(p, sign)
    if mi >= (np.int64(2) << man_bits):  # rounding carried into the next binade
        mi >>= 1
        q += 1
    if mi >= (np.int64(1) << man_bits):
        exp_field = q + man_bits + p[P_BIAS]
        if exp_field < 1:  # only without subnormals: below the smallest normal, flush to zero
            return _zero(p, sign)
        mant = mi - (np.int64(1) << man_bits)
        if exp_field > p[P_MAX_EXP_FIELD] or (exp_field == p[P_MAX_EXP_FIELD] and mant > p[P_MAX_MANT]):
            return _overflow(p, sign, overflow, rounding, False)
        code = (exp_field << man_bits) | mant
    else:
        code = mi  # subnormal: exponent field 0
    value = math.ldexp(float(mi), q)
    if sign:
        return code | p[P_SIGN_BIT], -value
    return code, value


@numba.njit(cache=True)
def decode_scalar(code, p):
    """Value of one code as float64 (see the module notes for non-canonical codes)."""
    code = np.int64(code)
    man_bits = p[P_MAN_BITS]
    style = p[P_NAN_STYLE]
    sign_bit = p[P_SIGN_BIT]
    sign = p[P_SIGNED] != 0 and (code & sign_bit) != 0
    magnitude = code & ~sign_bit if p[P_SIGNED] else code
    exp_ones = (np.int64(1) << p[P_EXP_BITS]) - 1
    exp_field = magnitude >> man_bits
    mant = magnitude & ((np.int64(1) << man_bits) - 1)
    if style == _NAN_FNUZ and code == sign_bit:
        return math.nan
    if style == _NAN_FN and magnitude == p[P_NAN_CODE]:
        return math.copysign(math.nan, -1.0) if sign else math.nan
    if style == _NAN_IEEE and exp_field == exp_ones:
        if mant == 0 and p[P_INFINITIES]:
            return -math.inf if sign else math.inf
        return math.copysign(math.nan, -1.0) if sign else math.nan
    if exp_field == 0:
        if mant == 0 or not p[P_SUBNORMALS]:
            return -0.0 if (sign and p[P_NEG_ZERO]) else 0.0
        value = math.ldexp(float(mant), p[P_EMIN] - man_bits)
    else:
        value = math.ldexp(float(mant | (np.int64(1) << man_bits)), exp_field - p[P_BIAS] - man_bits)
    return -value if sign else value


# ---- array kernels -------------------------------------------------------------------------------------

@numba.njit(cache=True, parallel=True)
def _encode_kernel(values, out_codes, out_values, p, rounding, overflow, seed, want_codes, want_values):
    for i in numba.prange(values.size):
        rbits = random_bits(seed, i) if rounding == ROUND_STOCHASTIC else numba.uint64(0)
        code, value = round_to_format(np.float64(values[i]), p, rounding, overflow, rbits)
        if want_codes:
            out_codes[i] = code
        if want_values:
            out_values[i] = value


@numba.njit(cache=True, parallel=True)
def _encode_f32_kernel(values, out_codes, out_values, lut, p, rounding, overflow, seed, want_codes, want_values):
    """float32 input, target of at most 16 bits: integer fast path for results in the normal range.

    The target's codes are a monotone slice of float32's bit patterns once the exponent is re-biased, so
    rounding the float32 pattern to ``man_bits`` and subtracting the bias difference gives the code.  Inputs
    that may land on a subnormal, zero, a flush, an overflow or a special take the general scalar path.

    Three passes, so that the common one has no call in its loop and vectorises: the fast path for every
    input (-1 where it does not apply), the general path for those (skipped when there are none), then the
    outputs.
    """
    bits = values.view(np.uint32)
    n = values.size
    man_bits = p[P_MAN_BITS]
    shift = 23 - man_bits
    low_mask = (np.int64(1) << shift) - 1
    half_minus_one = (np.int64(1) << (shift - 1)) - 1
    rebias = np.int64(127 - p[P_BIAS]) << man_bits
    lo = np.int64(max(p[P_EMIN] + 127, 1)) << 23  # bit pattern of the target's smallest normal
    hi = np.int64(min(p[P_EMAX] + 128, 255)) << 23  # bit pattern of 2**(emax + 1): certain overflow
    max_code = np.int64(p[P_MAX_CODE])
    sign_bit = np.int64(p[P_SIGN_BIT])
    signed = p[P_SIGNED] != 0
    codes = np.empty(n, np.int32)
    general = 0
    for i in numba.prange(n):
        u = np.int64(bits[i])
        a = u & 0x7FFFFFFF
        if rounding == ROUND_NEAREST_EVEN:
            r = (a + half_minus_one + ((a >> shift) & 1)) >> shift
        elif rounding == ROUND_TOWARD_ZERO:
            r = a >> shift
        elif rounding == ROUND_NEAREST_AWAY:
            r = (a + half_minus_one + 1) >> shift
        else:  # stochastic: add uniform bits below the cut, then truncate
            r = (a + np.int64(random_bits(seed, i) & numba.uint64(low_mask))) >> shift
        code = r - rebias
        negative = u != a
        fast = (lo <= a) & (a < hi) & ((not negative) | signed) & (code <= max_code)
        codes[i] = (code | (sign_bit if negative else 0)) if fast else -1
        general += 0 if fast else 1
    if general:
        for i in numba.prange(n):
            if codes[i] < 0:
                rbits = random_bits(seed, i) if rounding == ROUND_STOCHASTIC else numba.uint64(0)
                codes[i] = round_to_format(np.float64(values[i]), p, rounding, overflow, rbits)[0]
    for i in numba.prange(n):
        if want_codes:
            out_codes[i] = codes[i]
        if want_values:
            out_values[i] = lut[codes[i]]


@numba.njit(cache=True, parallel=True)
def _decode_lut_kernel(codes, lut, out):
    for i in numba.prange(codes.size):
        out[i] = lut[codes[i]]


@numba.njit(cache=True)
def _build_lut(p, n):
    lut = np.empty(n, np.float64)
    for c in range(n):
        lut[c] = decode_scalar(c, p)
    return lut


_lut_cache: dict[tuple[FormatSpec, type], np.ndarray] = {}


def decode_table(fmt: str | FormatSpec, dtype: type = np.float64) -> np.ndarray:
    """Value of every code of a format of at most 16 bits (index = code), read-only and cached."""
    spec = get_format(fmt)
    if spec.bits > 16:
        raise FormatError(f"decode_table: {spec.name} has {spec.bits} bits; tables exist for 16 bits or fewer")
    table = _lut_cache.get((spec, dtype))
    if table is None:
        table = _build_lut(spec.params, 1 << spec.bits).astype(dtype)
        table.setflags(write=False)
        _lut_cache[(spec, dtype)] = table
    return table


def _mode(value: str | int, modes: dict[str, int], what: str) -> int:
    if isinstance(value, str) and value in modes:
        return modes[value]
    if isinstance(value, (int, np.integer)) and int(value) in modes.values():
        return int(value)
    raise FormatError(f"unknown {what} {value!r}; allowed: {', '.join(modes)}")


def _as_float_array(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise FormatError(f"cannot convert values of dtype {arr.dtype} to a number format")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return np.ascontiguousarray(arr)


def _seed_value(seed, rounding: int) -> int:
    if rounding != ROUND_STOCHASTIC:
        return 0
    if seed is None:
        raise FormatError("stochastic rounding needs a seed (an integer), so results are reproducible")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise FormatError(f"seed must be an integer, got {seed!r}")
    return int(seed) & 0xFFFFFFFFFFFFFFFF


def _convert(values, fmt, rounding, overflow, seed, want_codes: bool, want_values: bool):
    spec = get_format(fmt)
    r = _mode(rounding, ROUNDING_MODES, "rounding")
    o = _mode(overflow, OVERFLOW_MODES, "overflow")
    arr = _as_float_array(values)
    flat = arr.reshape(-1)
    codes = np.empty(flat.size if want_codes else 0, np.int64 if spec.bits > 16 else spec.code_dtype)
    vals = np.empty(flat.size if want_values else 0, arr.dtype)
    if spec.name == "float32" and arr.dtype == np.float32 and r != ROUND_STOCHASTIC:
        # float32 -> float32 is exact: skip the kernel (only specials and -0 rules could apply, none here).
        if want_codes:
            codes = flat.view(np.uint32).copy()
        return codes.reshape(arr.shape) if want_codes else None, flat.copy().reshape(arr.shape) if want_values else None
    seed_bits = np.uint64(_seed_value(seed, r))
    if arr.dtype == np.float32 and spec.bits <= 16:
        lut = decode_table(spec, np.float32)
        _encode_f32_kernel(flat, codes, vals, lut, spec.params, r, o, seed_bits, want_codes, want_values)
    else:
        _encode_kernel(flat, codes, vals, spec.params, r, o, seed_bits, want_codes, want_values)
    if want_codes and spec.bits > 16:
        codes = codes.astype(np.uint32)
    return (codes.reshape(arr.shape) if want_codes else None), (vals.reshape(arr.shape) if want_values else None)


def encode(values, fmt, *, rounding="nearest_even", overflow="saturate", seed=None) -> np.ndarray:
    """Values to codes (uint8 for 8-bit formats, uint16 for 16-bit ones, uint32 for float32)."""
    return _convert(values, fmt, rounding, overflow, seed, True, False)[0]


def encode_with_values(values, fmt, *, rounding="nearest_even", overflow="saturate", seed=None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(encode(values), quantize(values))`` from one pass of the kernel: the codes and their values (in the
    input's float dtype), for a caller that needs both, e.g. to multiply the values and count the codes."""
    return _convert(values, fmt, rounding, overflow, seed, True, True)


def quantize(values, fmt, *, rounding="nearest_even", overflow="saturate", seed=None) -> np.ndarray:
    """Values to the nearest representable values (same float dtype as the input; float64 for integers)."""
    return _convert(values, fmt, rounding, overflow, seed, False, True)[1]


def decode(codes, fmt) -> np.ndarray:
    """Codes to float32 values (every registered format's values are exact in float32)."""
    spec = get_format(fmt)
    arr = np.asarray(codes)
    if arr.dtype.kind not in "iu":
        raise FormatError(f"decode takes integer codes, got dtype {arr.dtype}")
    if spec.bits > 16:
        return np.ascontiguousarray(arr).astype(np.uint32).view(np.float32)
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= (1 << spec.bits)):
        bad = flat[(flat < 0) | (flat >= (1 << spec.bits))][0]
        raise FormatError(f"code {int(bad)} is not a {spec.bits}-bit code of {spec.name}")
    out = np.empty(flat.size, np.float32)
    _decode_lut_kernel(flat, decode_table(spec, np.float32), out)
    return out.reshape(arr.shape)


def canonical_code(code: int, fmt) -> int:
    """The code that ``encode(decode(code))`` gives: NaN payloads, DAZ subnormals and spare -0 collapse."""
    spec = get_format(fmt)
    value = float(decode_scalar(code, spec.params))
    return int(round_to_format(value, spec.params, ROUND_NEAREST_EVEN, OVERFLOW_NONSATURATING, 0)[0])
