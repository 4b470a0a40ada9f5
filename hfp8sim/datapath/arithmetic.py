"""The arithmetic contract of one PE and of the accumulator buffer.

* Operands are codes of their formats; products are exact.  Every product of two operands of at most 24
  significant bits is exact in float64, so a product is simply ``a_val * b_val`` in float64.
* Accumulation is fused: ``acc = round_acc(acc + p)``, one rounding per step into the accumulator format.
  Pair mode (IBM's FMMA): ``acc = round_acc(acc + p0 + p1)``, the exact three-term sum rounded once.
* The partial sum of a fold is added to the output's value in the accumulator buffer with one rounding into
  the buffer format.

A float64 addition may itself round, which would round twice.  The kernels here avoid that by adding with
*round-to-odd* (the float64 sum, with its last bit forced odd when the addition was inexact, found with
TwoSum); rounding a round-to-odd result of 53 bits to any format of at most 51 bits equals rounding the
exact sum (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using
rounding to odd", IEEE TC 2008).  The three-term sum uses their error-free transformation: the exact sum
``a + b + c`` is ``th + tl + ul``; ``th + RO(tl + ul)`` rounded to odd is the round-to-odd of the exact sum.
The tests check both against exact ``fractions`` arithmetic.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..formats.codec import round_to_format


@numba.njit(cache=True, inline="always")
def two_sum(a, b):
    """s = fl(a + b) and the exact error e, so that a + b = s + e (Knuth)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@numba.njit(cache=True, inline="always")
def fast_two_sum(a, b):
    """s = fl(a + b) and its exact error e, when |a| >= |b| or a = 0 (Dekker): three additions, not six."""
    s = a + b
    e = b - (s - a)
    return s, e


@numba.njit(cache=True, inline="always")
def _force_odd(s, e):
    """Round-to-odd fix-up: if the exact value is s + e with e != 0 and s has an even last bit, step to the
    neighbour of s on the side of e (that neighbour is odd)."""
    if e != 0.0 and math.isfinite(s):
        frac, exp = math.frexp(s)
        significand = np.int64(math.ldexp(abs(frac), 53))
        if (significand & 1) == 0:
            s = np.nextafter(s, math.inf if e > 0.0 else -math.inf)
    return s


@numba.njit(cache=True, inline="always")
def add_round_to_odd(a, b):
    """a + b rounded to odd in 53 bits (exact when the float64 sum is exact)."""
    s, e = two_sum(a, b)
    return _force_odd(s, e)


@numba.njit(cache=True, inline="always")
def sum3_round_to_odd(a, b, c):
    """a + b + c rounded to odd in 53 bits.

    Two cases take the plain sum instead: an exact zero sum, whose sign is -0 only when every addend is -0
    (TwoSum's error terms are +0 there, and th + (+0) would lose the sign), and an infinite or NaN addend
    (an accumulator that overflowed without saturating), where TwoSum's error terms are NaN.  Finite
    addends of at most 24 significant bits from formats of at most 8 exponent bits never overflow float64."""
    uh, ul = two_sum(b, c)
    th, tl = two_sum(a, uh)
    v = add_round_to_odd(tl, ul)
    total = add_round_to_odd(th, v)
    if total == 0.0 or not math.isfinite(total):
        return (a + b) + c
    return total


@numba.njit(cache=True, inline="always")
def round_value(x, p, rounding, overflow):
    """Value of x rounded into format p (rounding/overflow as in formats.codec; never stochastic here)."""
    return round_to_format(x, p, rounding, overflow, numba.uint64(0))[1]


@numba.njit(cache=True)
def mac(acc, a_val, b_val, acc_p, rounding, overflow):
    """One fused multiply-accumulate: round_acc(acc + a*b)."""
    return round_value(add_round_to_odd(acc, a_val * b_val), acc_p, rounding, overflow)


@numba.njit(cache=True)
def mac_pair(acc, a0, b0, a1, b1, acc_p, rounding, overflow):
    """IBM-style FMMA: round_acc(acc + a0*b0 + a1*b1), the exact three-term sum rounded once."""
    return round_value(sum3_round_to_odd(acc, a0 * b0, a1 * b1), acc_p, rounding, overflow)


@numba.njit(cache=True)
def add_rounded(x, y, p, rounding, overflow):
    """round_p(x + y): the accumulator-buffer update and the chunk-sum update."""
    return round_value(add_round_to_odd(x, y), p, rounding, overflow)
