"""Exact oracle of the datapath contract, in Python ``fractions`` (no Numba, no floats): slow, for small
shapes, written independently of the kernels.

Every accumulator value is held as its *code* in the accumulator (or running) format, so signed zeros and
specials are exact too.  A step computes the exact sum with IEEE 754 rules for specials and zeros
(NaN absorbs; inf - inf is NaN; an exact zero sum is -0 only when every addend is -0) and rounds it once
with ``formats.oracle.round_exact``.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from ..formats.codec import OVERFLOW_MODES, ROUNDING_MODES
from ..formats.oracle import NAN, NEG_INF, POS_INF, decode_exact, round_exact
from ..formats.spec import FormatSpec, get_format
from .contract import ArrayArithmetic


@dataclasses.dataclass(frozen=True)
class Exact:
    """An exact value: kind 'num' (value, with the sign of zero in ``negative``), 'inf' or 'nan'."""

    kind: str
    value: Fraction = Fraction(0)
    negative: bool = False

    @staticmethod
    def of_code(code: int, spec: FormatSpec) -> Exact:
        v = decode_exact(int(code), spec)
        negative = spec.signed and bool(int(code) & spec.sign_bit)
        if v == NAN:
            return Exact("nan")
        if v in (POS_INF, NEG_INF):
            return Exact("inf", negative=v == NEG_INF)
        return Exact("num", v, negative if v == 0 else v < 0)


ZERO = Exact("num")


def product(x: Exact, y: Exact) -> Exact:
    if "nan" in (x.kind, y.kind):
        return Exact("nan")
    negative = x.negative != y.negative
    if "inf" in (x.kind, y.kind):
        if (x.kind == "num" and x.value == 0) or (y.kind == "num" and y.value == 0):
            return Exact("nan")
        return Exact("inf", negative=negative)
    return Exact("num", x.value * y.value, negative)


def exact_sum(*terms: Exact) -> Exact:
    if any(t.kind == "nan" for t in terms):
        return Exact("nan")
    infs = {t.negative for t in terms if t.kind == "inf"}
    if len(infs) == 2:
        return Exact("nan")
    if infs:
        return Exact("inf", negative=infs.pop())
    total = sum((t.value for t in terms), Fraction(0))
    if total == 0:
        return Exact("num", Fraction(0), all(t.negative for t in terms))
    return Exact("num", total, total < 0)


def round_into(x: Exact, spec: FormatSpec, rounding: int, overflow: int) -> int:
    if x.kind == "nan":
        return round_exact(NAN, spec, rounding, overflow)
    if x.kind == "inf":
        return round_exact(NEG_INF if x.negative else POS_INF, spec, rounding, overflow)
    return round_exact(x.value, spec, rounding, overflow, negative_zero_input=x.negative)


def oracle_accumulate(a_bits, b_bits, a_format, b_format, arith: ArrayArithmetic) -> np.ndarray:
    """Codes, in ``arith.segment_sum_format``, of every output of A @ B (2-D operands)."""
    a_spec, b_spec = get_format(a_format), get_format(b_format)
    acc, run = arith.acc_format, arith.segment_sum_format
    rounding, overflow = ROUNDING_MODES[arith.acc_rounding], OVERFLOW_MODES[arith.acc_overflow]
    a = np.asarray(a_bits)
    b = np.asarray(b_bits)
    m_dim, k_dim = a.shape
    n_dim = b.shape[1]
    seg_len = arith.segment_length(k_dim)
    out = np.zeros((m_dim, n_dim), np.int64)
    for i in range(m_dim):
        for j in range(n_dim):
            products = [product(Exact.of_code(a[i, k], a_spec), Exact.of_code(b[k, j], b_spec)) for k in range(k_dim)]
            running_code = 0
            for seg_index, k0 in enumerate(range(0, k_dim, seg_len)):
                seg = products[k0:k0 + seg_len]
                psum_code = 0
                step = 2 if arith.pair else 1
                for s in range(0, len(seg), step):
                    terms = seg[s:s + step]
                    psum = Exact.of_code(psum_code, acc)
                    psum_code = round_into(exact_sum(psum, *terms), acc, rounding, overflow)
                psum_value = Exact.of_code(psum_code, acc)
                if seg_index == 0:
                    running_code = round_into(psum_value, run, rounding, overflow)
                else:
                    running = Exact.of_code(running_code, run)
                    running_code = round_into(exact_sum(running, psum_value), run, rounding, overflow)
            out[i, j] = running_code
    return out
