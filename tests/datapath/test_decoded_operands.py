"""``accumulate_values`` (operands already decoded) gives the bits of ``accumulate`` on the codes, whichever
kernel runs; ``lower_conv(columns_first=True)`` is the same matrix as the plain im2col."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from hfp8sim.datapath import ArrayArithmetic, accumulate, accumulate_values
from hfp8sim.datapath.conv import lower_conv
from hfp8sim.datapath.gemm import select_kernel
from hfp8sim.errors import DatapathError
from hfp8sim.formats import decode_table, encode, get_format

FWD, BWD, FP16 = "float8_e4m3b11fnuz", "float8_e5m2", "float16"
ARITHS = {
    "ws_float32_buffer": ArrayArithmetic("ws", rows=8, cols=8, buffer_format="float32"),
    "ws_pair": ArrayArithmetic("ws", rows=8, cols=8, buffer_format="float32", pair=True),
    "os_chunks": ArrayArithmetic("os", rows=8, cols=8, chunk=5),
    "toward_zero": ArrayArithmetic("ws", rows=8, cols=8, acc_rounding="toward_zero"),  # the exact kernel
}


def _codes(rng, shape, fmt, specials: bool):
    spec = get_format(fmt)
    values = rng.standard_normal(shape) * 2.0 ** rng.integers(-12, 12, size=shape)
    values[rng.random(shape) < 0.1] = 0.0
    codes = encode(values, spec)
    if specials:
        codes[rng.random(shape) < 0.03] = spec.nan_code
        if spec.infinities:
            codes[rng.random(shape) < 0.03] = spec.inf_code
    return codes


def _same_bits(got, expected):
    assert got.dtype == expected.dtype == np.float64 and got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    numbers = ~np.isnan(expected)
    assert np.array_equal(got[numbers].view(np.uint64), expected[numbers].view(np.uint64))


@pytest.mark.parametrize("arith_name", sorted(ARITHS))
@pytest.mark.parametrize("a_fmt, b_fmt", [(FWD, FWD), (BWD, FWD), (FP16, FP16), (FP16, FWD)])
@pytest.mark.parametrize("specials", [False, True])
def test_decoded_operands_give_the_bits_of_the_codes(arith_name, a_fmt, b_fmt, specials):
    arith = ARITHS[arith_name]
    rng = np.random.default_rng(zlib.crc32(repr((arith_name, a_fmt, b_fmt, specials)).encode()))
    a, b = _codes(rng, (3, 7, 21), a_fmt, specials), _codes(rng, (3, 21, 6), b_fmt, specials)
    running = rng.standard_normal((3, 7, 6)) * 4
    for kwargs in ({}, {"running": running}, {"force_exact": True}):
        expected = accumulate(a, b, a_fmt, b_fmt, arith, **kwargs)
        a32, b32 = decode_table(a_fmt, np.float32)[a], decode_table(b_fmt, np.float32)[b]
        _same_bits(accumulate_values(a32, b32, a_fmt, b_fmt, arith, **kwargs), expected)
        # the caller may say whether an operand is infinite instead of having it looked up
        known = bool(np.isinf(a32).any() or np.isinf(b32).any())
        _same_bits(accumulate_values(a32, b32, a_fmt, b_fmt, arith, operands_have_inf=known, **kwargs), expected)
        # float64 values and a 2-D product take the same path
        _same_bits(accumulate_values(a32.astype(np.float64), b32, a_fmt, b_fmt, arith, **kwargs), expected)
    _same_bits(accumulate_values(decode_table(a_fmt, np.float32)[a[1]], decode_table(b_fmt, np.float32)[b[1]],
                                 a_fmt, b_fmt, arith), accumulate(a[1], b[1], a_fmt, b_fmt, arith))


def test_the_cases_above_reach_every_kernel():
    kernels = {select_kernel(get_format(a), get_format(b), arith, has_inf)
               for arith in ARITHS.values() for a, b in [(FWD, FWD), (FP16, FP16)] for has_inf in (False, True)}
    assert kernels == {"float32", "fixed", "float32_odd", "exact"}


def test_decoded_operands_must_be_float_values_of_narrow_formats():
    arith = ARITHS["ws_pair"]
    with pytest.raises(DatapathError, match="float values of formats of at most 16 bits"):
        accumulate_values(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.float32), FWD, FWD, arith)
    with pytest.raises(DatapathError, match="float values of formats of at most 16 bits"):
        accumulate_values(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32), "float32", FWD, arith)
    with pytest.raises(DatapathError, match="shape mismatch"):
        accumulate_values(np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32), FWD, FWD, arith)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", [
    ((2, 4, 7, 6), (6, 2, 3, 2), 1, 1, 1, 2),
    ((1, 3, 9, 9), (3, 1, 3, 3), 2, (1, 0, 2, 1), 1, 3),
    ((3, 2, 5, 8), (4, 2, 2, 3), (2, 1), 2, (2, 1), 1),
    ((2, 16, 14, 14), (16, 1, 3, 3), 1, 1, 1, 16),
])
def test_im2col_stored_columns_first_is_the_same_matrix(x_shape, w_shape, stride, padding, dilation, groups):
    rng = np.random.default_rng(7)
    for x in (rng.integers(0, 256, x_shape).astype(np.uint8), rng.standard_normal(x_shape).astype(np.float32)):
        w = rng.integers(0, 256, w_shape).astype(np.uint8)
        a, b, shape = lower_conv(x, w, stride, padding, dilation, groups)
        a_t, b_t, shape_t = lower_conv(x, w, stride, padding, dilation, groups, columns_first=True)
        assert shape == shape_t and np.array_equal(a, a_t) and np.array_equal(b, b_t)
        assert a_t.transpose(0, 2, 1).flags.c_contiguous and a.flags.c_contiguous
