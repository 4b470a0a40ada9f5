"""Exact (slow) reference of every conversion, in Python ``fractions``: the oracle the Numba codec is tested
against, and the rounding step of the datapath's exact oracle.

Written independently of ``codec``: values are exact Fractions, the exponent comes from integer bit
lengths, and the rounding decision compares exact fractions.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ..errors import FormatError
from .codec import OVERFLOW_SATURATE, ROUND_NEAREST_AWAY, ROUND_NEAREST_EVEN, ROUND_STOCHASTIC, ROUND_TOWARD_ZERO
from .spec import FormatSpec

NAN = "nan"  # exact values are Fractions; NaN and infinities are these markers
POS_INF = "+inf"
NEG_INF = "-inf"

ExactValue = Fraction | str


def decode_exact(code: int, spec: FormatSpec) -> ExactValue:
    """Exact value of a code (Fraction), or one of NAN / POS_INF / NEG_INF.  -0 reads as Fraction(0)."""
    sign = spec.signed and bool(code >> (spec.exp_bits + spec.man_bits) & 1)
    exp_field = (code >> spec.man_bits) & ((1 << spec.exp_bits) - 1)
    mant = code & ((1 << spec.man_bits) - 1)
    all_ones = (1 << spec.exp_bits) - 1
    if spec.nan == "fnuz" and code == 1 << (spec.exp_bits + spec.man_bits):
        return NAN
    if spec.nan == "fn" and exp_field == all_ones and mant == (1 << spec.man_bits) - 1:
        return NAN
    if spec.nan == "ieee" and exp_field == all_ones:
        if mant == 0 and spec.infinities:
            return NEG_INF if sign else POS_INF
        return NAN
    if exp_field == 0:
        magnitude = Fraction(mant) * Fraction(2) ** (1 - spec.bias - spec.man_bits) if spec.subnormals else Fraction(0)
    else:
        magnitude = Fraction((1 << spec.man_bits) + mant) * Fraction(2) ** (exp_field - spec.bias - spec.man_bits)
    return -magnitude if sign else magnitude


def _floor_log2(a: Fraction) -> int:
    """floor(log2(a)) for a > 0, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    elif Fraction(2) ** (e + 1) <= a:
        e += 1
    return e


def _nan_code(spec: FormatSpec, negative: bool) -> int:
    if spec.nan == "fnuz" or not negative:
        return spec.nan_code
    return spec.nan_code | spec.sign_bit


def _zero_code(spec: FormatSpec, negative: bool) -> int:
    return spec.sign_bit if (negative and spec.negative_zero) else 0


def round_exact(x: ExactValue | float, spec: FormatSpec, rounding: int = ROUND_NEAREST_EVEN,
                overflow: int = OVERFLOW_SATURATE, *, negative_zero_input: bool = False,
                u: Fraction | None = None) -> int:
    """The code of ``x`` rounded into ``spec``.

    ``x`` is a Fraction (or a float, converted exactly) or a special marker; ``negative_zero_input`` says a
    zero input is -0.  ``u`` in [0, 1) is the uniform draw of stochastic rounding (round up when u < the
    discarded fraction).
    """
    if isinstance(x, float):
        if math.isnan(x):
            return _nan_code(spec, math.copysign(1.0, x) < 0)
        if math.isinf(x):
            x = POS_INF if x > 0 else NEG_INF
        else:
            negative_zero_input = negative_zero_input or (x == 0 and math.copysign(1.0, x) < 0)
            x = Fraction(x)
    if x == NAN:
        return _nan_code(spec, False)
    negative = x == NEG_INF or (isinstance(x, Fraction) and (x < 0 or (x == 0 and negative_zero_input)))
    max_code = spec.max_code | (spec.sign_bit if negative else 0)

    def overflowed(input_is_inf: bool) -> int:
        if overflow == OVERFLOW_SATURATE or (rounding == ROUND_TOWARD_ZERO and not input_is_inf):
            return max_code
        if spec.inf_code >= 0:
            return spec.inf_code | (spec.sign_bit if negative else 0)
        return _nan_code(spec, negative)

    if negative and not spec.signed:
        return 0 if (x == 0 or overflow == OVERFLOW_SATURATE) else _nan_code(spec, False)
    if x in (POS_INF, NEG_INF):
        return overflowed(True)
    a = abs(x)
    if a == 0:
        return _zero_code(spec, negative)
    e = _floor_log2(a)
    q = max(e, spec.emin) - spec.man_bits if spec.subnormals else e - spec.man_bits
    scaled = a / Fraction(2) ** q
    whole = scaled.numerator // scaled.denominator
    up = _rounds_up(whole, scaled - whole, rounding, u)
    result = (whole + int(up)) * Fraction(2) ** q
    if result == 0 or (not spec.subnormals and result < spec.min_normal):
        return _zero_code(spec, negative)
    if result > spec.max_value:
        return overflowed(False)
    return _finite_code(result, spec) | (spec.sign_bit if negative else 0)


def _rounds_up(whole: int, rest: Fraction, rounding: int, u: Fraction | None) -> bool:
    """Whether ``whole + rest`` (``rest`` in [0, 1), the part below the last place) rounds up to ``whole + 1``."""
    if rounding == ROUND_NEAREST_EVEN:
        return rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1)
    if rounding == ROUND_NEAREST_AWAY:
        return rest >= Fraction(1, 2)
    if rounding == ROUND_TOWARD_ZERO:
        return False
    if rounding == ROUND_STOCHASTIC:
        if u is None:
            raise FormatError("stochastic rounding needs the uniform draw u")
        return u < rest
    raise FormatError(f"unknown rounding {rounding}")


def _finite_code(result: Fraction, spec: FormatSpec) -> int:
    """The unsigned code of a rounded magnitude on the grid of ``spec``, normal or subnormal."""
    if result >= spec.min_normal:
        e = _floor_log2(result)
        exp_field, mant = e + spec.bias, result / Fraction(2) ** (e - spec.man_bits) - (1 << spec.man_bits)
    else:
        exp_field, mant = 0, result / Fraction(2) ** (spec.emin - spec.man_bits)
    assert mant.denominator == 1, "rounded value off the grid"
    return (exp_field << spec.man_bits) | int(mant)
