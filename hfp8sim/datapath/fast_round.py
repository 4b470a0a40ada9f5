"""Round a float32 to a narrow accumulator format with integer operations that vectorise.

Used by the fast GEMM path.  The accumulator value and the product are both float32 there, and
``round_p(fl32(acc + p))`` equals the correctly rounded ``round_p(acc + p)`` because both operands have at
most p <= 11 significant bits and float32 has 24 >= 2p + 2 (the double-rounding theorem for addition,
Figueroa 1995); the GEMM dispatcher only takes this path when those conditions hold.

The rounding itself is written as an LLVM intrinsic on the float32 bit pattern (Numba would widen 32-bit
integer arithmetic to 64 bits and the loop would not vectorise as well):

* normal range: add ``half - 1 + lsb`` below the cut and clear the cut bits (round to nearest, ties to
  even), exactly as on the codes of the target format, whose bit patterns are a re-biased slice of float32's;
* below the smallest normal: formats with subnormals round to the fixed quantum ``2**(emin - man_bits)``
  by adding and subtracting a power of two whose float32 ulp is that quantum; formats without subnormals
  keep the unbounded-exponent result and flush it to (signed) zero if it is below the smallest normal;
* above max finite: the overflow pattern (max finite, inf or NaN, per the overflow mode);
* NaN stays NaN.  The sign is put back last.

The float32 round-to-odd kernel feeds ``round_f32`` with the round-to-odd of an exact sum instead
(``round_to_odd_f32``): rounding that to any format of at most 22 significant bits equals rounding the
exact sum, including into the subnormal quantum and at the overflow threshold.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ..formats.codec import OVERFLOW_SATURATE
from ..formats.spec import FormatSpec

_I32 = ir.IntType(32)
_F32 = ir.FloatType()


def fast_round_params(spec: FormatSpec, overflow: int) -> tuple[tuple[int, ...], np.float32]:
    """Constants of ``round_f32`` for ``spec``: (int32 tuple, subnormal magic constant)."""
    cut = 23 - spec.man_bits
    half_minus_one = (1 << (cut - 1)) - 1 if cut > 0 else 0
    lsb_mask = 1 if cut > 0 else 0
    keep_mask = (~((1 << cut) - 1)) & 0xFFFFFFFF
    # float32 itself: no flush (the fast path never produces float32 subnormals anyway)
    min_normal_bits = 0 if spec.name == "float32" else int(np.float32(spec.min_normal).view(np.uint32))
    max_bits = int(np.float32(spec.max_value).view(np.uint32))
    if overflow == OVERFLOW_SATURATE:
        overflow_bits = max_bits
    elif spec.infinities:
        overflow_bits = 0x7F800000
    else:
        overflow_bits = 0x7FC00000
    has_subnormals = int(spec.subnormals and spec.name != "float32")
    magic = np.float32(math.ldexp(1.0, spec.emin - spec.man_bits + 23))  # its float32 ulp is the quantum
    ints = (cut, half_minus_one, lsb_mask, keep_mask, min_normal_bits, max_bits, overflow_bits, has_subnormals)
    return tuple(int(np.int32(np.uint32(v))) if v > 0x7FFFFFFF else int(v) for v in ints), magic


@intrinsic
def round_f32(typingctx, value, params, magic):
    """round_f32(value: float32, params: 8-tuple of ints from fast_round_params, magic: float32 or None) ->
    float32.  ``magic`` None compiles a version without the subnormal path, for a format without subnormals
    (or float32, which ``round_f32`` never flushes): two float additions and two selects fewer per call."""
    no_subnormals = isinstance(magic, types.NoneType)
    if value != types.float32 or (magic != types.float32 and not no_subnormals):
        return None
    if not isinstance(params, types.BaseTuple) or len(params) != 8:
        return None

    def codegen(context, builder, signature, args):
        x, packed, magic_value = args
        fields = []
        for index in range(8):
            field = builder.extract_value(packed, index)
            fields.append(builder.trunc(field, _I32) if field.type.width > 32 else field)
        cut, half_minus_one, lsb_mask, keep_mask, min_normal, max_bits, overflow_bits, has_subnormals = fields
        bits = builder.bitcast(x, _I32)
        magnitude = builder.and_(bits, _I32(0x7FFFFFFF))
        sign = builder.and_(bits, _I32(-0x80000000))
        lsb = builder.and_(builder.lshr(magnitude, cut), lsb_mask)
        rounded = builder.and_(builder.add(builder.add(magnitude, half_minus_one), lsb), keep_mask)
        # below the smallest normal
        result = builder.select(builder.icmp_unsigned("<", rounded, min_normal), _I32(0), rounded)
        if not no_subnormals:
            abs_x = builder.bitcast(magnitude, _F32)
            sub_value = builder.fsub(builder.fadd(abs_x, magic_value), magic_value)
            sub_bits = builder.bitcast(sub_value, _I32)
            below = builder.icmp_unsigned("<", magnitude, min_normal)
            use_sub = builder.and_(below, builder.icmp_unsigned("!=", has_subnormals, _I32(0)))
            result = builder.select(use_sub, sub_bits, result)
        result = builder.select(builder.icmp_unsigned(">", result, max_bits), overflow_bits, result)
        result = builder.select(builder.icmp_unsigned(">", magnitude, _I32(0x7F800000)), magnitude, result)
        return builder.bitcast(builder.or_(result, sign), _F32)

    return types.float32(value, params, magic), codegen


def _round_to_odd_codegen(keep_infinities: bool):
    def codegen(context, builder, signature, args):
        s, e, mask = args
        s_bits = builder.bitcast(s, _I32)
        e_bits = builder.and_(builder.bitcast(e, _I32), builder.trunc(mask, _I32) if mask.type.width > 32 else mask)
        step = builder.icmp_unsigned("!=", builder.and_(e_bits, _I32(0x7FFFFFFF)), _I32(0))  # inexact
        if keep_infinities:
            finite = builder.icmp_unsigned("!=", builder.and_(s_bits, _I32(0x7F800000)), _I32(0x7F800000))
            step = builder.and_(step, finite)
        toward_zero = builder.ashr(builder.xor(s_bits, e_bits), _I32(31))  # -1 when the signs differ
        odd = builder.or_(builder.add(s_bits, toward_zero), _I32(1))
        return builder.bitcast(builder.select(step, odd, s_bits), _F32)

    return codegen


def _round_to_odd_signature(rounded_sum, error, error_mask):
    if rounded_sum != types.float32 or error != types.float32 or not isinstance(error_mask, types.Integer):
        return None
    return types.float32(rounded_sum, error, error_mask)


@intrinsic
def round_to_odd_f32(typingctx, rounded_sum, error, error_mask):
    """round_to_odd_f32(s: float32, e: float32, error_mask: int32) -> float32: the float32 sum ``s = fl(x + y)``
    with its error ``e`` (``x + y = s + e`` exactly) turned into the round-to-odd of ``x + y``.

    When the sum was inexact, step to the neighbour of ``s`` on the side of ``e`` if ``s`` is even, i.e. set
    the last bit after moving one unit toward zero when ``e`` has the other sign: ``((s - [signs differ]) | 1)``
    on the bit pattern (below a power of two that lands on the all-ones significand of the binade below, which
    is odd).  Infinite and NaN sums are left alone (their error is NaN).  ``error_mask`` is -1, or 0 to return
    ``s`` unchanged (a float32 target, where ``s`` itself is the correctly rounded sum) at the cost of one AND
    instead of a second loop."""
    signature = _round_to_odd_signature(rounded_sum, error, error_mask)
    return None if signature is None else (signature, _round_to_odd_codegen(keep_infinities=True))


@intrinsic
def round_to_odd_noninf_f32(typingctx, rounded_sum, error, error_mask):
    """``round_to_odd_f32`` for a sum that is never infinite (the caller's proof), one test fewer: a NaN sum
    stays NaN through the step anyway (its exponent is all ones and ``(bits - 1) | 1`` keeps a nonzero
    significand); only an infinity would step onto the largest finite value."""
    signature = _round_to_odd_signature(rounded_sum, error, error_mask)
    return None if signature is None else (signature, _round_to_odd_codegen(keep_infinities=False))


def _bit_mask_codegen(keep_mask: int | None):
    """Codegen of a float32 -> float32 function that keeps ``keep_mask`` of the bit pattern, or (None) replaces
    the bits a narrow format cuts off by the pattern of its cell's midpoint (args: x, low_mask, half)."""
    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], _I32)
        if keep_mask is not None:
            return builder.bitcast(builder.and_(bits, _I32(keep_mask)), _F32)
        low_mask, half = (builder.trunc(a, _I32) if a.type.width > 32 else a for a in args[1:])
        return builder.bitcast(builder.or_(builder.and_(bits, builder.not_(low_mask)), half), _F32)

    return codegen


@intrinsic
def binade_f32(typingctx, value):
    """binade_f32(x: float32) -> float32: 2**exponent(x), i.e. 2**23 ulp(x) for a normal x (0 for 0), by
    clearing the sign and significand bits."""
    if value != types.float32:
        return None
    return types.float32(value), _bit_mask_codegen(0x7F800000)


@intrinsic
def cell_midpoint_f32(typingctx, value, low_mask, half):
    """cell_midpoint_f32(x: float32, low_mask, half) -> float32: for a normal x, the midpoint between the two
    neighbours of x on the grid of a narrow format of ``23 - cut`` fraction bits in x's binade (``low_mask``
    = 2**cut - 1, ``half`` = 2**(cut - 1)): the bits below the format's last place set to 100...0."""
    if value != types.float32 or not isinstance(low_mask, types.Integer) or not isinstance(half, types.Integer):
        return None
    return types.float32(value, low_mask, half), _bit_mask_codegen(None)
