"""Bit-accurate GEMM on operand codes, in the order the modelled array adds (see ``contract.py``).

``gemm(a_bits, b_bits, a_format, b_format, arith)`` returns the accumulated values (float64, exactly the
values the accumulator/buffer holds), or, with ``out_format``, their codes rounded once more into the output
format.  Batched operands (``[G, M, K] x [G, K, N]``) run G independent GEMMs in one parallel call (grouped
and depthwise convolutions use it).

Four kernels give the same bits; ``select_kernel`` takes the fastest one proven for the case, and
``force_exact`` the last:

* **float32** (``_gemm_fast``, vectorised over output columns, ``fast_round.round_f32``): one product per
  step, products exact in float32 and within the accumulator's precision p <= 11, accumulator and running
  formats of at most 11 bits (or float32).  ``round_p(fl32(acc + p))`` is then the correctly rounded sum
  (Figueroa's double-rounding theorem, 24 >= 2p + 2).  This is the FP8 x FP8 kernel.
* **fixed** (``_gemm_fixed``, int64 lanes): products and accumulator as exact integer multiples of the
  quantum Q = (smallest A value) x (smallest B value).  When the accumulator's finest step is at most Q,
  every accumulator value is such a multiple, so ``acc + p0 + p1`` is an exact integer sum, and
  ``_round_fixed`` rounds it once (leading-zero count, nearest-even, saturation).  It needs a saturating
  accumulator and ``(acc max + 2 products) / Q < 2**62``: FP8 pair mode into DLFloat16 (e4m3 x e4m3,
  e5m2 x e4m3).  NaN operands are set aside and put back (a NaN reaches exactly the outputs of its row or
  column), and a zero sum is +0 (no -0 can arise, see ``fixed_path_applies``).
* **float32_odd** (``_gemm_fast_odd``): any products exact in float32 (FP16 x FP16: 22 bits), one or two per
  step.  A float32 TwoSum gives each addition's exact error; setting the last bit toward it (round to odd in
  24 bits, ``fast_round.round_to_odd_f32``) and then rounding into a format of p <= 22 bits equals rounding
  the exact sum once (Boldo and Melquiond, see ``arithmetic.py``); the pair step uses their error-free
  three-term transformation.  A float32 accumulator takes the float32 sum itself (correctly rounded), with
  its values bounded far below float32's overflow.  An infinite (nonsaturating) accumulator takes a plain
  float32 sum instead (``_special_sums``), in loops of their own, so that the common loops carry no test
  for it; an accumulator without subnormals compiles its rounding without a subnormal path.  Pair steps
  into a saturating narrow accumulator (``_gemm_pair_fast``) round the plain float32 sum instead, for every
  column whose sum is exact or provably on the same side of every midpoint of the accumulator's grid as the
  exact sum (``_pair_step_fast``, proof there); a row step with any other column is redone by the
  round-to-odd sum.
* **exact** (float64 with round-to-odd additions, ``arithmetic.py``): everything else, i.e. other accumulator
  roundings, infinite operands, products of more than 24 bits or outside float32's normal range,
  accumulators wider than 22 bits other than float32.

``accumulate_values`` runs the same planning and kernels on operands already decoded (float32 values of
codes, e.g. from an encoder that returned both): no code checks, no decoding pass.

Tests check every kernel against the exact ``fractions`` oracle and against the exact kernel
(``tests/datapath/test_fast_kernels.py``).
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

from ..errors import DatapathError
from ..formats.codec import OVERFLOW_MODES, ROUNDING_MODES, decode_table, encode
from ..formats.spec import FormatSpec, get_format
from .arithmetic import add_rounded, fast_two_sum, mac, mac_pair, round_value, two_sum
from .contract import ArrayArithmetic
from .fast_round import (binade_f32, cell_midpoint_f32, fast_round_params, round_f32, round_to_odd_f32,
                         round_to_odd_noninf_f32)

_FLOAT32_MIN_NORMAL = 2.0**-126
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_F32_ZERO = np.float32(0.0)
_F32_INF = np.float32(np.inf)
_ALL_ONES = np.int32(-1)
_ULP_PER_BINADE = np.float32(2.0**-23)  # ulp(x) = 2**-23 binade(x) for a normal float32 x
# the pair steps' plain float32 sum needs every nonzero value to be a multiple of a power of two at least this
_PAIR_FAST_QUANTUM = 2.0**-100
# round to odd in float32 (24 bits) then to nearest in p bits equals rounding the exact sum once iff p <= 22
_ODD_TARGET_MAX_BITS = 22


# ---- kernels ---------------------------------------------------------------------------------------------

@numba.njit(cache=True, parallel=True)
def _gemm_exact(a_val, b_val_t, seg_len, pair, acc_p, run_p, rounding, overflow, has_init, chain_init, out):
    """a_val [G, M, K], b_val_t [G, N, K] (B transposed so k is contiguous), out [G, M, N] float64.

    ``has_init``: ``out`` holds running values to continue from: every segment is added to them, or, with
    ``chain_init`` (one unbroken chain), the chain itself continues from them."""
    groups, rows, depth = a_val.shape
    cols = b_val_t.shape[1]
    for gi in numba.prange(groups * rows):
        g = gi // rows
        i = gi % rows
        a_row = a_val[g, i]
        for j in range(cols):
            b_col = b_val_t[g, j]
            running = out[g, i, j] if has_init else 0.0
            k0 = 0
            while k0 < depth:
                k1 = min(depth, k0 + seg_len)
                psum = running if (chain_init and k0 == 0) else 0.0
                k = k0
                if pair:
                    while k + 1 < k1:
                        psum = mac_pair(psum, a_row[k], b_col[k], a_row[k + 1], b_col[k + 1], acc_p, rounding,
                                        overflow)
                        k += 2
                while k < k1:
                    psum = mac(psum, a_row[k], b_col[k], acc_p, rounding, overflow)
                    k += 1
                if k0 == 0 and (chain_init or not has_init):
                    running = round_value(psum, run_p, rounding, overflow)
                else:
                    running = add_rounded(running, psum, run_p, rounding, overflow)
                k0 = k1
            out[g, i, j] = running


@numba.njit(cache=True, parallel=True)
def _gemm_fast(a_val, b_val, seg_len, acc_params, acc_magic, run_params, run_magic, has_init, chain_init, out):
    """a_val [G, M, K] float32, b_val [G, K, N] float32, out [G, M, N] float32; vectorised over N."""
    groups, rows, depth = a_val.shape
    cols = b_val.shape[2]
    for gi in numba.prange(groups * rows):
        g = gi // rows
        i = gi % rows
        psum = np.empty(cols, np.float32)
        running = out[g, i]
        if not has_init:
            running[:] = 0.0
        k0 = 0
        while k0 < depth:
            k1 = min(depth, k0 + seg_len)
            if chain_init and k0 == 0:
                psum[:] = running
            else:
                psum[:] = 0.0
            for k in range(k0, k1):
                a = a_val[g, i, k]
                b_row = b_val[g, k]
                for j in range(cols):
                    psum[j] = round_f32(psum[j] + a * b_row[j], acc_params, acc_magic)
            if k0 == 0 and (chain_init or not has_init):
                for j in range(cols):
                    running[j] = round_f32(psum[j], run_params, run_magic)
            else:
                for j in range(cols):
                    running[j] = round_f32(running[j] + psum[j], run_params, run_magic)
            k0 = k1


@numba.njit(cache=True, inline="always")
def _add_rounded_f32(x, y, params, magic, odd_mask):
    """round_p(x + y) for float32 x, y: TwoSum, round to odd in float32 (``odd_mask`` -1: p <= 22 bits), then
    the one rounding into p; for a float32 target (``odd_mask`` 0) the float32 sum is already the answer."""
    s, e = two_sum(x, y)
    return round_f32(round_to_odd_f32(s, e, odd_mask), params, magic)


@numba.njit(cache=True, inline="always")
def _add_rounded_finite_f32(x, y, params, magic, odd_mask):
    """``_add_rounded_f32`` where the sum is never infinite (a saturating accumulator, finite operands)."""
    s, e = two_sum(x, y)
    return round_f32(round_to_odd_noninf_f32(s, e, odd_mask), params, magic)


@numba.njit(cache=True, inline="always")
def _add3_to_odd_f32(x, y, z, odd_mask):
    """x + y + z rounded to odd in float32 (or to nearest with ``odd_mask`` 0), by Boldo and Melquiond's
    error-free transformation (see ``arithmetic.sum3_round_to_odd``), for finite addends.

    An exact zero sum needs its sign: -0 only when every addend is -0, as the plain sum gives it.  The last
    step ``th + v`` would lose a -0 ``th`` to a +0 ``v``; but when ``v`` is zero the exact sum is ``th`` itself
    (then ``tl + ul`` is 0, and ``tl`` is 0 when ``th`` is, so ``uh = y + z`` and ``th = x + uh`` are exact
    plain sums with the plain sum's zero sign), so ``th`` is the answer.

    The last step may be Dekker's Fast2Sum because |th| >= |v| or th = 0: when x and uh are not within a
    factor 2 of each other with opposite signs, |th| > max(|x|, |uh|) / 2 while |tl| <= ulp(th) / 2 and
    |ul| <= ulp(uh) / 2 <= 2**-23 |th|, so |v| is a few ulps of th at most; otherwise x + uh is exact
    (Sterbenz), tl = 0, v = ul, and a nonzero th is a multiple of min(ulp(x), ulp(uh)) >= ulp(uh) / 2 >= |ul|
    (ulps on float32's grid, subnormal quantum included: both transformations stay exact under gradual
    underflow)."""
    uh, ul = two_sum(y, z)
    th, tl = two_sum(x, uh)
    vs, ve = two_sum(tl, ul)
    v = round_to_odd_noninf_f32(vs, ve, _ALL_ONES)
    s, e = fast_two_sum(th, v)
    total = round_to_odd_noninf_f32(s, e, odd_mask)
    return th if v == _F32_ZERO else total


@numba.njit(cache=True, inline="always")
def _add3_rounded_f32(x, y, z, params, magic, odd_mask):
    """round_p(x + y + z), the exact three-term sum rounded once, where no addend is infinite (the
    dispatcher's ``special_sums`` is False)."""
    return round_f32(_add3_to_odd_f32(x, y, z, odd_mask), params, magic)


@numba.njit(cache=True, inline="always")
def _add3_rounded_f32_special(x, y, z, params, magic, odd_mask):
    """``_add3_rounded_f32`` where the accumulator ``x`` may be infinite (nonsaturating overflow): that
    propagates through the plain sum, where TwoSum's error terms would be NaN."""
    total = _add3_to_odd_f32(x, y, z, odd_mask)
    plain = (x + y) + z
    if not abs(plain) < _F32_INF:
        total = plain
    return round_f32(total, params, magic)


@numba.njit(cache=True, parallel=True)
def _gemm_fast_odd(a_val, b_val, seg_len, pair, special_sums, acc_params, acc_magic, acc_odd_mask, run_params,
                   run_magic, run_odd_mask, has_init, chain_init, out):
    """The float32 kernel with round-to-odd additions: any products exact in float32 (FP16 x FP16 too), one
    or two per step (``pair``).  Shapes as ``_gemm_fast``; vectorised over N."""
    groups, rows, depth = a_val.shape
    cols = b_val.shape[2]
    for gi in numba.prange(groups * rows):
        g = gi // rows
        i = gi % rows
        psum = np.empty(cols, np.float32)
        running = out[g, i]
        if not has_init:
            running[:] = 0.0
        k0 = 0
        while k0 < depth:
            k1 = min(depth, k0 + seg_len)
            if chain_init and k0 == 0:
                psum[:] = running
            else:
                psum[:] = 0.0
            k = k0
            if pair:
                while k + 1 < k1:
                    a0 = a_val[g, i, k]
                    a1 = a_val[g, i, k + 1]
                    b0_row = b_val[g, k]
                    b1_row = b_val[g, k + 1]
                    if special_sums:  # two loops, so that the common one carries no special cases
                        for j in range(cols):
                            psum[j] = _add3_rounded_f32_special(psum[j], a0 * b0_row[j], a1 * b1_row[j],
                                                                acc_params, acc_magic, acc_odd_mask)
                    else:
                        for j in range(cols):
                            psum[j] = _add3_rounded_f32(psum[j], a0 * b0_row[j], a1 * b1_row[j], acc_params,
                                                        acc_magic, acc_odd_mask)
                    k += 2
            while k < k1:
                a = a_val[g, i, k]
                b_row = b_val[g, k]
                if special_sums:
                    for j in range(cols):
                        psum[j] = _add_rounded_f32(psum[j], a * b_row[j], acc_params, acc_magic, acc_odd_mask)
                else:
                    for j in range(cols):
                        psum[j] = _add_rounded_finite_f32(psum[j], a * b_row[j], acc_params, acc_magic,
                                                          acc_odd_mask)
                k += 1
            if k0 == 0 and (chain_init or not has_init):
                for j in range(cols):
                    running[j] = round_f32(psum[j], run_params, run_magic)
            else:
                for j in range(cols):
                    running[j] = _add_rounded_f32(running[j], psum[j], run_params, run_magic, run_odd_mask)
            k0 = k1


@numba.njit(cache=True)
def _pair_step_fast(psum, fresh, a0, b0_row, a1, b1_row, params, magic, low_mask, half, subnormal_limit):
    """One pair step of a row, ``fresh[j] = round_p(psum[j] + a0 b0[j] + a1 b1[j])``, from the plain float32
    sum; returns whether some column was ambiguous (then ``fresh`` is not the answer and the caller redoes
    the step by ``_pair_step_odd``).

    Why the plain sum is enough for a column that is not ambiguous.  With x = psum[j], y, z the products
    (exact) and T = x + y + z, the kernel computes u = fl(y + z) and s = fl(u + x), each rounded to
    nearest.  (a) Both additions exact: s = T.  An addition r = fl(a + b) is exact iff fl(r - a) = b and
    fl(r - b) = a: if it is exact both differences are exact; if not, say |a| >= |b|, r - a is computed
    exactly (Dekker's Fast2Sum lemma) and is not b.  (b) Otherwise |T - s| <= B = ulp(u)/2 + ulp(s)/2.  The
    dispatcher takes this path only when every nonzero value is a multiple of a power of two >= 2**-100
    (``_pair_fast_constants``), so u and s are 0 or normal and ulp(v) = 2**-23 binade(v).  Let s be normal,
    in the binade [2**e, 2**(e+1)), and let the accumulator keep 23 - cut fraction bits (cut >= 3).  Its grid
    (exponent unbounded) has, inside that binade, spacing 2**cut ulp(s) and midpoints at
    ``cell_midpoint_f32(s)`` and every 2**cut ulp(s) from there; d = |s - c| (exact: same binade) is the
    distance to the nearest of them.  Outside the binade the nearest midpoints are 2**(cut-2) ulp(s) below
    2**e (the grid below is twice as fine) and 2**cut ulp(s) above 2**(e+1).  The test is
    d > t = fl(binade(u) + binade(s)) 2**-23, and t >= max(ulp(u), ulp(s)).  When it holds: B <= t < d, so T
    is strictly closer to s than any midpoint of the binade; d <= 2**(cut-1) ulp(s) gives
    ulp(u) < 2**(cut-1) ulp(s), so ulp(u) <= 2**(cut-2) ulp(s) (powers of two) and
    B <= (2**(cut-2) + 1) ulp(s)/2 < 2**(cut-2) ulp(s): T stays above the highest midpoint below 2**e, and far
    below the lowest one above 2**(e+1).  No midpoint lies between s and T or on T, so both round to nearest
    onto the same grid point; and |T - s| < d < |s|, so they have the same sign.  In both cases the
    accumulator's rounding (``round_f32``: that grid point, flushed below the smallest normal for formats
    without subnormals, saturated above the largest value) gives round_p(s) = round_p(T), the contract.

    Formats with subnormals round on the fixed quantum below their smallest normal: |s| below
    ``subnormal_limit`` (their smallest normal, else 0) is ambiguous.  An exact zero sum (case a) is the
    plain sum with its sign, -0 only when every addend is -0, as in the exact kernel.  NaN fails the
    comparisons: ambiguous.  Inexact sums within a few ulps of a midpoint, or after heavy cancellation, are
    rare (a few columns in ten thousand for normal data), so most steps take this path; the exactness test
    matters for short products (FP16 x FP8: 15 bits), whose exact sums often sit on a midpoint (a tie that
    ``round_f32`` breaks as the contract does)."""
    ambiguous = False
    for j in range(psum.size):
        x = psum[j]
        y = a0 * b0_row[j]
        z = a1 * b1_row[j]
        u = y + z
        s = u + x
        distance = abs(s - cell_midpoint_f32(s, low_mask, half))
        threshold = (binade_f32(u) + binade_f32(s)) * _ULP_PER_BINADE
        inexact = (u - y != z) | (u - z != y) | (s - u != x) | (s - x != u)
        ambiguous |= (inexact and not (distance > threshold)) or abs(s) < subnormal_limit
        fresh[j] = round_f32(s, params, magic)
    return ambiguous


@numba.njit(cache=True)
def _pair_step_odd(psum, fresh, a0, b0_row, a1, b1_row, params, magic, odd_mask):
    """``_pair_step_fast`` by the round-to-odd three-term sum, exact for any finite addends."""
    for j in range(psum.size):
        fresh[j] = _add3_rounded_f32(psum[j], a0 * b0_row[j], a1 * b1_row[j], params, magic, odd_mask)


@numba.njit(cache=True, parallel=True)
def _gemm_pair_fast(a_val, b_val, seg_len, acc_params, acc_magic, acc_odd_mask, low_mask, half, subnormal_limit,
                    run_params, run_magic, run_odd_mask, has_init, out):
    """Pair mode with a saturating narrow accumulator that starts every segment from 0 (no chain): each row
    step by ``_pair_step_fast``, redone by ``_pair_step_odd`` when a column was ambiguous.  Shapes as
    ``_gemm_fast_odd``.  Returns how many row steps were redone."""
    groups, rows, depth = a_val.shape
    cols = b_val.shape[2]
    redone = 0
    for gi in numba.prange(groups * rows):
        g = gi // rows
        i = gi % rows
        psum = np.empty(cols, np.float32)
        fresh = np.empty(cols, np.float32)  # steps write here, then the two swap: a redone step reads psum
        running = out[g, i]
        if not has_init:
            running[:] = 0.0
        k0 = 0
        while k0 < depth:
            k1 = min(depth, k0 + seg_len)
            psum[:] = 0.0
            k = k0
            while k + 1 < k1:
                a0, a1, b0_row, b1_row = a_val[g, i, k], a_val[g, i, k + 1], b_val[g, k], b_val[g, k + 1]
                if _pair_step_fast(psum, fresh, a0, b0_row, a1, b1_row, acc_params, acc_magic, low_mask, half,
                                   subnormal_limit):
                    redone += 1
                    _pair_step_odd(psum, fresh, a0, b0_row, a1, b1_row, acc_params, acc_magic, acc_odd_mask)
                psum, fresh = fresh, psum
                k += 2
            if k < k1:  # an odd segment length leaves one product
                a = a_val[g, i, k]
                b_row = b_val[g, k]
                for j in range(cols):
                    psum[j] = _add_rounded_finite_f32(psum[j], a * b_row[j], acc_params, acc_magic, acc_odd_mask)
            if k0 == 0 and not has_init:
                for j in range(cols):
                    running[j] = round_f32(psum[j], run_params, run_magic)
            else:
                for j in range(cols):
                    running[j] = _add_rounded_f32(running[j], psum[j], run_params, run_magic, run_odd_mask)
            k0 = k1
    return redone


@numba.njit(cache=True, inline="always")
def _round_fixed(total, sig_bits, max_fixed):
    """Round the integer ``total`` (a multiple of the quantum Q, counted in Q) to ``sig_bits`` significant bits,
    nearest-even, and saturate at ``max_fixed``: the accumulator format's rounding on a grid no finer than Q
    (the dispatcher checks that its subnormals, if any, are finer than Q), all in int64 lanes."""
    magnitude = np.uint64(abs(total))
    top_bit = np.int64(63) - np.int64(leading_zeros(magnitude))  # -1 for zero
    shift = np.uint64(max(top_bit - (sig_bits - 1), 0))
    below = (np.uint64(1) << shift) - np.uint64(1)  # the bits that fall below the result's last place
    last = (magnitude >> shift) & np.uint64(1)
    # add half an ulp less one, plus one more when the kept part is odd: ties go to even; nothing when shift=0
    rounded = min((magnitude + (((below >> np.uint64(1)) + last) & below)) & ~below, max_fixed)
    return -np.int64(rounded) if total < 0 else np.int64(rounded)


@numba.njit(cache=True, parallel=True)
def _gemm_fixed(a_fix, b_fix, seg_len, pair, sig_bits, max_fixed, quantum, run_params, run_magic,
                run_odd_mask, has_init, out):
    """Products and accumulator as exact int64 multiples of the quantum Q (``a_fix * b_fix`` = product / Q):
    the sum of the accumulator and one or two products is exact, and ``_round_fixed`` rounds it once.
    ``a_fix`` [G, M, K] and ``b_fix`` [G, K, N] float32 hold the operands as integers; segment sums go to the
    running values (float32 ``out``) as in ``_gemm_fast_odd``."""
    groups, rows, depth = a_fix.shape
    cols = b_fix.shape[2]
    for gi in numba.prange(groups * rows):
        g = gi // rows
        i = gi % rows
        psum = np.empty(cols, np.int64)
        running = out[g, i]
        if not has_init:
            running[:] = 0.0
        k0 = 0
        while k0 < depth:
            k1 = min(depth, k0 + seg_len)
            psum[:] = 0
            k = k0
            if pair:
                while k + 1 < k1:
                    a0 = a_fix[g, i, k]
                    a1 = a_fix[g, i, k + 1]
                    b0_row = b_fix[g, k]
                    b1_row = b_fix[g, k + 1]
                    for j in range(cols):
                        total = psum[j] + np.int64(a0 * b0_row[j]) + np.int64(a1 * b1_row[j])
                        psum[j] = _round_fixed(total, sig_bits, max_fixed)
                    k += 2
            while k < k1:
                a = a_fix[g, i, k]
                b_row = b_fix[g, k]
                for j in range(cols):
                    psum[j] = _round_fixed(psum[j] + np.int64(a * b_row[j]), sig_bits, max_fixed)
                k += 1
            if k0 == 0 and not has_init:
                for j in range(cols):
                    running[j] = round_f32(np.float32(psum[j]) * quantum, run_params, run_magic)
            else:
                for j in range(cols):
                    running[j] = _add_rounded_f32(running[j], np.float32(psum[j]) * quantum, run_params, run_magic,
                                                  run_odd_mask)
            k0 = k1


# ---- checks and dispatch ---------------------------------------------------------------------------------

def _check_codes(bits, spec: FormatSpec, what: str) -> np.ndarray:
    arr = np.asarray(bits)
    if arr.dtype.kind not in "iu":
        raise DatapathError(f"{what}: expected integer codes of {spec.name}, got dtype {arr.dtype}")
    if spec.bits > 16:
        raise DatapathError(f"{what}: operand format {spec.name} is not supported (16 bits at most)")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= (1 << spec.bits)):
        bad = arr[(arr < 0) | (arr >= (1 << spec.bits))].ravel()[0]
        raise DatapathError(f"{what}: code {int(bad)} is not a valid {spec.bits}-bit code of {spec.name}")
    return arr


def _as_batched(a, b):
    if a.ndim != b.ndim or a.ndim not in (2, 3):
        raise DatapathError(f"operands must both be 2-D [M,K] x [K,N] or 3-D [G,M,K] x [G,K,N]; "
                            f"got shapes {a.shape} and {b.shape}")
    if a.ndim == 2:
        a, b = a[None], b[None]
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise DatapathError(f"shape mismatch: A is {a.shape[-2:]} and B is {b.shape[-2:]} "
                            f"(batch {a.shape[0]} vs {b.shape[0]}); A's columns must equal B's rows")
    return a, b


def _significant_bits(spec: FormatSpec) -> int:
    return spec.man_bits + 1


def fast_path_applies(a_spec: FormatSpec, b_spec: FormatSpec, arith: ArrayArithmetic,
                      operands_have_inf: bool) -> bool:
    """Whether the float32 kernel gives exactly the contract's bits (see the module notes)."""
    acc, run = arith.acc_format, arith.segment_sum_format
    if arith.pair or arith.acc_rounding != "nearest_even" or operands_have_inf:
        return False
    for spec in (acc, run):
        narrow = spec.bits <= 16 and _significant_bits(spec) <= 11 and spec.emin >= -126 and spec.emax <= 127
        if not (narrow or spec.name == "float32"):
            return False
    product_bits = _significant_bits(a_spec) + _significant_bits(b_spec)
    if product_bits > _significant_bits(acc) and acc.name != "float32":
        return False
    if product_bits > 24 or _significant_bits(acc) > _significant_bits(run) and run.name != "float32":
        return False
    smallest = float(a_spec.min_subnormal) * float(b_spec.min_subnormal)
    largest = float(a_spec.max_value) * float(b_spec.max_value)
    return smallest >= _FLOAT32_MIN_NORMAL and largest < _FLOAT32_MAX / 4


def odd_path_applies(a_spec: FormatSpec, b_spec: FormatSpec, arith: ArrayArithmetic, operands_have_inf: bool,
                     depth: int = 0, running_bound: float = 0.0) -> bool:
    """Whether the float32 round-to-odd kernel gives exactly the contract's bits (see the module notes).

    ``depth`` is K and ``running_bound`` the largest magnitude of the running values continued from: a float32
    accumulator or buffer has no saturation of its own that keeps TwoSum away from float32 overflow, so its
    values are bounded by ``running_bound + depth * largest product`` and that must stay far from it."""
    if arith.acc_rounding != "nearest_even" or operands_have_inf:
        return False
    if _significant_bits(a_spec) + _significant_bits(b_spec) > 24:
        return False
    smallest = float(a_spec.min_subnormal) * float(b_spec.min_subnormal)
    largest = float(a_spec.max_value) * float(b_spec.max_value)
    headroom = _FLOAT32_MAX / 16
    if not (smallest >= _FLOAT32_MIN_NORMAL and largest <= headroom):
        return False
    for spec in (arith.acc_format, arith.segment_sum_format):
        if spec.name == "float32":
            if not 2 * (running_bound + depth * largest) <= headroom:  # also refuses a NaN bound
                return False
        elif not _narrow_target(spec):
            return False
    return True


def _narrow_target(spec: FormatSpec) -> bool:
    """A format that round-to-odd float32 values round into correctly: at most 22 significant bits, inside
    float32's normal range, far enough from float32's overflow that TwoSum never overflows."""
    return (spec.bits <= 16 and _significant_bits(spec) <= _ODD_TARGET_MAX_BITS and spec.emin >= -126
            and spec.emax <= 127 and float(spec.max_value) <= _FLOAT32_MAX / 16)


def fixed_path_applies(a_spec: FormatSpec, b_spec: FormatSpec, arith: ArrayArithmetic, operands_have_inf: bool,
                       chain_init: bool = False) -> bool:
    """Whether the int64 fixed-point kernel gives exactly the contract's bits (see the module notes).

    Every product is a multiple of the quantum Q = (smallest A value) x (smallest B value), and so is every
    accumulator value when the accumulator's own finest step is at most Q (then no nonzero sum rounds to
    zero either, so no -0 appears, and a segment starts from +0 unless it continues a chain).  The sums fit
    int64 when (accumulator max + two products) / Q < 2**62; a saturating accumulator never leaves that range."""
    acc, run = arith.acc_format, arith.segment_sum_format
    if (arith.acc_rounding != "nearest_even" or arith.acc_overflow != "saturate" or operands_have_inf
            or chain_init or acc.name == "float32" or acc.bits > 16):
        return False
    if _significant_bits(a_spec) + _significant_bits(b_spec) > 24:
        return False
    quantum = a_spec.min_subnormal * b_spec.min_subnormal
    largest = a_spec.max_value * b_spec.max_value
    if quantum < acc.min_subnormal or quantum < _FLOAT32_MIN_NORMAL:
        return False
    if (acc.max_value + 2 * largest) / quantum >= 2**62:
        return False
    return run.name == "float32" or _narrow_target(run)


def _odd_mask(spec: FormatSpec) -> np.int32:
    """-1 (round to odd, then into ``spec``) for formats of at most 22 bits; 0 for float32 itself."""
    return np.int32(0 if spec.name == "float32" else -1)


def _special_sums(arith: ArrayArithmetic, chain_init: bool) -> bool:
    """Whether a step can meet an infinite accumulator, which takes the loops that carry that case.

    Only a nonsaturating accumulator overflows to infinity (operands are finite on this path), or a chain
    continued from running values the caller passed in.  (An exact zero sum's sign needs no loop of its own:
    ``_add3_to_odd_f32`` keeps it.)"""
    return arith.acc_overflow != "saturate" or chain_init


def select_kernel(a_spec: FormatSpec, b_spec: FormatSpec, arith: ArrayArithmetic, operands_have_inf: bool,
                  depth: int = 0, running_bound: float = 0.0, chain_init: bool = False) -> str:
    """The kernel ``accumulate`` runs, fastest first: ``"float32"`` (FP8-like products, one per step),
    ``"fixed"`` (int64 fixed point: FP8 pair mode into DLFloat16), ``"float32_odd"`` (FP16 products, pair
    mode) or ``"exact"`` (everything no faster kernel is proven for)."""
    if fast_path_applies(a_spec, b_spec, arith, operands_have_inf):
        return "float32"
    if fixed_path_applies(a_spec, b_spec, arith, operands_have_inf, chain_init):
        return "fixed"
    if odd_path_applies(a_spec, b_spec, arith, operands_have_inf, depth, running_bound):
        return "float32_odd"
    return "exact"


@numba.njit(cache=True, parallel=True)
def _to_fixed(values, factor, out):
    """``out = values * factor`` (a power of two: exact), NaN replaced by 0; returns how many were NaN."""
    flat_in, flat_out = values.reshape(-1), out.reshape(-1)
    nans = 0
    for i in numba.prange(flat_in.size):
        v = flat_in[i]
        if v != v:
            nans += 1
            flat_out[i] = 0.0
        else:
            flat_out[i] = v * factor
    return nans


def _accumulate_fixed(a32, b32, a_spec, b_spec, arith, seg_len, run_params, run_magic, has_init, out32):
    """Run ``_gemm_fixed``: operands scaled to integers, NaN operands set aside and put back afterwards (with a
    saturating accumulator and finite operands an output is NaN exactly when a NaN operand reaches it)."""
    a_fix, b_fix = np.empty_like(a32), np.empty_like(b32)
    a_nans = _to_fixed(a32, np.float32(1 / a_spec.min_subnormal), a_fix)
    b_nans = _to_fixed(b32, np.float32(1 / b_spec.min_subnormal), b_fix)
    quantum = a_spec.min_subnormal * b_spec.min_subnormal
    acc = arith.acc_format
    _gemm_fixed(a_fix, b_fix, seg_len, arith.pair, _significant_bits(acc), np.uint64(acc.max_value / quantum),
                np.float32(quantum), run_params, run_magic, _odd_mask(arith.segment_sum_format), has_init, out32)
    if a_nans or b_nans:  # the masks cost two passes: only when a NaN is there to put back
        rows_nan, cols_nan = np.isnan(a32).any(axis=2), np.isnan(b32).any(axis=1)
        out32[rows_nan[:, :, None] | cols_nan[:, None, :]] = np.nan


@functools.lru_cache(maxsize=None)
def _has_infinities(spec: FormatSpec) -> bool:
    """Whether any code of the format decodes to an infinity."""
    return bool(np.isinf(decode_table(spec)).any())


@functools.lru_cache(maxsize=None)
def _inf_codes(spec: FormatSpec) -> np.ndarray:
    return np.isinf(decode_table(spec))


@functools.lru_cache(maxsize=4096)
def _kernel_setup(a_spec: FormatSpec, b_spec: FormatSpec, arith: ArrayArithmetic, has_inf: bool, depth: int,
                  running_bound: float, chain_init: bool, force_exact: bool):
    """(kernel name, its constants): the choice and the rounding constants depend only on these arguments, and
    working them out (exact fractions of the formats' ranges) costs more than a small GEMM."""
    kernel = "exact" if force_exact else select_kernel(a_spec, b_spec, arith, has_inf, depth, running_bound,
                                                       chain_init)
    overflow = OVERFLOW_MODES[arith.acc_overflow]
    if kernel == "exact":
        return kernel, (ROUNDING_MODES[arith.acc_rounding], overflow)
    acc, run = arith.acc_format, arith.segment_sum_format
    acc_params, acc_magic = fast_round_params(acc, overflow)
    run_params, run_magic = fast_round_params(run, overflow)
    if kernel == "float32_odd" and not acc_params[7]:
        acc_magic = None  # compiles round_f32 without a subnormal path for the accumulator (see fast_round)
    special_sums = _special_sums(arith, chain_init)
    pair_fast = None
    if kernel == "float32_odd" and arith.pair and not special_sums:
        pair_fast = _pair_fast_constants(a_spec, b_spec, acc)
    return kernel, (acc_params, acc_magic, run_params, run_magic, _odd_mask(acc), _odd_mask(run), special_sums,
                    pair_fast)


def _pair_fast_constants(a_spec: FormatSpec, b_spec: FormatSpec, acc: FormatSpec):
    """(low_mask, half, subnormal_limit) of ``_pair_step_fast`` for this accumulator, or None where its proof
    does not hold: a float32 accumulator (its own rounding is float32's), fewer than 3 bits cut off, or
    values finer than 2**-100 (products: the quantum of A times that of B; accumulator: its smallest value)."""
    cut = 23 - acc.man_bits
    if acc.name == "float32" or cut < 3:
        return None
    if min(a_spec.min_subnormal * b_spec.min_subnormal, acc.min_subnormal) < _PAIR_FAST_QUANTUM:
        return None
    subnormal_limit = np.float32(acc.min_normal if acc.subnormals else 0.0)
    return (1 << cut) - 1, 1 << (cut - 1), subnormal_limit


def _plan(a_shape, b_shape, a_spec, b_spec, arith, has_inf, running, force_exact):
    """What ``accumulate`` and ``accumulate_values`` share before decoding: (kernel, constants, segment
    length, has_init, chain_init, running values as float64 [G, M, N] or None)."""
    groups, rows, depth = a_shape
    cols = b_shape[2]
    seg_len = arith.segment_length(depth)
    has_init = running is not None
    chain_init = has_init and seg_len >= depth and (
        (arith.dataflow == "os" and arith.chunk is None) or arith.chain)
    if has_init:
        running = np.asarray(running, dtype=np.float64)
        if running.shape != (groups, rows, cols) and running.shape != (rows, cols):
            raise DatapathError(f"running values have shape {running.shape}; the outputs are {(rows, cols)}")
        running = running.reshape(groups, rows, cols)
    running_bound = float(np.abs(running).max()) if has_init and running.size else 0.0
    kernel, constants = _kernel_setup(a_spec, b_spec, arith, bool(has_inf), int(depth), running_bound,
                                      bool(chain_init), bool(force_exact))
    return kernel, constants, seg_len, has_init, chain_init, running


def _run_kernel(plan, a_val, b_val, a_spec, b_spec, arith) -> np.ndarray:
    """Run the planned kernel on decoded operands ([G, M, K] and [G, K, N]); float64 [G, M, N]."""
    kernel, constants, seg_len, has_init, chain_init, running = plan
    groups, rows, cols = a_val.shape[0], a_val.shape[1], b_val.shape[2]
    if kernel == "exact":
        rounding, overflow = constants
        out = np.empty((groups, rows, cols), np.float64)
        if has_init:
            out[...] = running
        _gemm_exact(np.ascontiguousarray(a_val, np.float64),
                    np.ascontiguousarray(np.asarray(b_val, np.float64).transpose(0, 2, 1)), seg_len,
                    arith.pair, arith.acc_format.params, arith.segment_sum_format.params, rounding, overflow,
                    has_init, chain_init, out)
        return out
    acc_params, acc_magic, run_params, run_magic, acc_odd_mask, run_odd_mask, special_sums, pair_fast = constants
    out32 = np.empty((groups, rows, cols), np.float32)
    if has_init:
        out32[...] = running
    a32, b32 = np.ascontiguousarray(a_val, np.float32), np.ascontiguousarray(b_val, np.float32)
    if kernel == "float32":
        _gemm_fast(a32, b32, seg_len, acc_params, acc_magic, run_params, run_magic, has_init, chain_init, out32)
    elif kernel == "fixed":
        _accumulate_fixed(a32, b32, a_spec, b_spec, arith, seg_len, run_params, run_magic, has_init, out32)
    elif pair_fast is not None:
        _gemm_pair_fast(a32, b32, seg_len, acc_params, acc_magic, acc_odd_mask, *pair_fast, run_params, run_magic,
                        run_odd_mask, has_init, out32)
    else:
        _gemm_fast_odd(a32, b32, seg_len, arith.pair, special_sums, acc_params, acc_magic, acc_odd_mask,
                       run_params, run_magic, run_odd_mask, has_init, chain_init, out32)
    return out32.astype(np.float64)


def accumulate(a_bits, b_bits, a_format, b_format, arith: ArrayArithmetic, *, running=None,
               force_exact: bool = False):
    """The accumulated values (float64) of A @ B under ``arith``; 2-D or batched 3-D operands.

    ``running``: the values of these outputs left by earlier k-tiles of the same outputs (a layer whose
    reduction is split into tiles).  With folds or chunks every segment of this call is added to them; for
    one unbroken chain (os without chunks, ws/is ``chain``) the chain continues from them.  Tiles cut at
    segment boundaries (as the mapper cuts them) give bit-identical results to one call.
    """
    a_spec, b_spec = get_format(a_format), get_format(b_format)
    if not isinstance(arith, ArrayArithmetic):
        raise DatapathError(f"arith must be an ArrayArithmetic, got {type(arith).__name__}")
    a = _check_codes(a_bits, a_spec, "A")
    b = _check_codes(b_bits, b_spec, "B")
    squeeze = a.ndim == 2
    a, b = _as_batched(a, b)
    has_inf = bool(_has_infinities(a_spec) and _inf_codes(a_spec)[a].any()) or bool(
        _has_infinities(b_spec) and _inf_codes(b_spec)[b].any())
    plan = _plan(a.shape, b.shape, a_spec, b_spec, arith, has_inf, running, force_exact)
    # decode straight into the dtype the kernel reads (every code's value is exact in float32)
    dtype = np.float64 if plan[0] == "exact" else np.float32
    out = _run_kernel(plan, decode_table(a_spec, dtype)[a], decode_table(b_spec, dtype)[b], a_spec, b_spec, arith)
    return out[0] if squeeze else out


def accumulate_values(a_val, b_val, a_format, b_format, arith: ArrayArithmetic, *, running=None,
                      force_exact: bool = False, operands_have_inf: bool | None = None):
    """``accumulate`` on operands already decoded: float32 (or float64) arrays ``[G, M, K]`` and ``[G, K, N]``
    (or 2-D) whose every element is the value of a code of its format, e.g. the values an encoder returned
    with the codes.  The same kernels and the same bits as ``accumulate`` on those codes, without the code
    checks and the decoding pass; values that are not codes of the format are the caller's error and are
    not detected.  Contiguous float32 operands are read in place.  ``operands_have_inf``: whether an operand
    holds an infinity, when the caller knows (a saturating encoder never writes one); None: looked up, a pass
    over each operand whose format has infinities."""
    a_spec, b_spec = get_format(a_format), get_format(b_format)
    if not isinstance(arith, ArrayArithmetic):
        raise DatapathError(f"arith must be an ArrayArithmetic, got {type(arith).__name__}")
    a, b = np.asarray(a_val), np.asarray(b_val)
    if a.dtype.kind != "f" or b.dtype.kind != "f" or max(a_spec.bits, b_spec.bits) > 16:
        raise DatapathError(f"accumulate_values takes float values of formats of at most 16 bits; got "
                            f"{a.dtype} ({a_spec.name}) and {b.dtype} ({b_spec.name})")
    squeeze = a.ndim == 2
    a, b = _as_batched(a, b)
    if operands_have_inf is None:
        has_inf = bool(_has_infinities(a_spec) and np.isinf(a).any()) or bool(
            _has_infinities(b_spec) and np.isinf(b).any())
    else:
        has_inf = bool(operands_have_inf)
    plan = _plan(a.shape, b.shape, a_spec, b_spec, arith, has_inf, running, force_exact)
    out = _run_kernel(plan, a, b, a_spec, b_spec, arith)
    return out[0] if squeeze else out


def round_output(values, out_format, *, rounding: str = "nearest_even", overflow: str = "saturate",
                 seed: int | None = None) -> np.ndarray:
    """The last rounding of the contract: accumulated values to output codes.  NaN leaves as the format's
    canonical positive NaN (the sign of a NaN carries no meaning and differs between float32 and float64
    hardware paths)."""
    vals = np.array(values, dtype=np.float64, copy=True)
    vals[np.isnan(vals)] = math.nan
    return encode(vals, out_format, rounding=rounding, overflow=overflow, seed=seed)


def gemm(a_bits, b_bits, a_format, b_format, arith: ArrayArithmetic | None = None, out_format=None, *,
         out_rounding: str = "nearest_even", out_overflow: str = "saturate", seed: int | None = None,
         force_exact: bool = False) -> np.ndarray:
    """Bit-accurate ``A @ B`` on codes.

    Returns the accumulated values (float64) when ``out_format`` is None, else codes of ``out_format``.
    ``arith`` defaults to a 128x128 weight-stationary array accumulating in DLFloat16.
    """
    arith = arith or ArrayArithmetic()
    values = accumulate(a_bits, b_bits, a_format, b_format, arith, force_exact=force_exact)
    if out_format is None:
        return values
    return round_output(values, out_format, rounding=out_rounding, overflow=out_overflow, seed=seed)


def reference_gemm(a_bits, b_bits, a_format, b_format, dtype=np.float64) -> np.ndarray:
    """The ideal result for error measurement: decoded operands multiplied in ``dtype`` by numpy."""
    a_spec, b_spec = get_format(a_format), get_format(b_format)
    a = _check_codes(a_bits, a_spec, "A")
    b = _check_codes(b_bits, b_spec, "B")
    _as_batched(a, b)
    return np.matmul(decode_table(a_spec, dtype)[a], decode_table(b_spec, dtype)[b])
