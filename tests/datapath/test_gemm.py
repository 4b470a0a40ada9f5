"""The fast datapath against the exact oracle, numpy anchors, and bad input."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from hfp8sim.datapath import ArrayArithmetic, gemm, reference_gemm, round_output
from hfp8sim.datapath.arithmetic import add_rounded
from hfp8sim.datapath.conv import conv2d, lower_conv, reference_conv2d
from hfp8sim.datapath.gemm import fast_path_applies
from hfp8sim.datapath.oracle import oracle_accumulate
from hfp8sim.errors import DatapathError, FormatError
from hfp8sim.formats import decode, encode, get_format

FWD, BWD = "float8_e4m3b11fnuz", "float8_e5m2"
OPERAND_PAIRS = [(FWD, FWD), (BWD, FWD), (BWD, BWD)]


def random_codes(rng, shape, fmt, *, nan_rate=0.0):
    """Codes spanning the whole range: subnormals, large values (accumulator saturation), zeros, NaN."""
    spec = get_format(fmt)
    exponent = rng.integers(spec.smallest_positive_exponent - 1, spec.emax + 2, size=shape)
    values = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(1, 2, size=shape) * np.exp2(exponent)
    values[rng.random(shape) < 0.1] = 0.0
    codes = encode(values, spec)
    if nan_rate:
        codes[rng.random(shape) < nan_rate] = spec.nan_code
    return codes


def as_codes(values, arith):
    """Accumulated values as codes of the running format (NaN canonical: its sign carries no meaning)."""
    return round_output(values, arith.segment_sum_format, overflow="nonsaturating")


def canonical_nan(codes, arith):
    spec = arith.segment_sum_format
    codes = np.array(codes, dtype=np.int64)
    codes[np.isnan(decode(codes, spec))] = spec.nan_code
    return codes


ARITHMETICS = [
    ArrayArithmetic("os", rows=3, cols=2),
    ArrayArithmetic("os", rows=3, cols=2, chunk=4),
    ArrayArithmetic("os", rows=2, cols=2, acc_format="float16", pair=True),
    ArrayArithmetic("ws", rows=4, cols=3),
    ArrayArithmetic("ws", rows=3, cols=3, acc_format="float16"),
    ArrayArithmetic("ws", rows=3, cols=3, buffer_format="float32", pair=True),
    ArrayArithmetic("ws", rows=2, cols=2, chain=True),
    ArrayArithmetic("is", rows=5, cols=2, acc_format="float16", buffer_format="float32"),
    ArrayArithmetic("is", rows=4, cols=4, pair=True),
    ArrayArithmetic("ws", rows=3, cols=3, acc_format="float16", acc_overflow="nonsaturating"),
    ArrayArithmetic("os", rows=3, cols=3, acc_rounding="toward_zero"),
]


@pytest.mark.parametrize("arith", ARITHMETICS, ids=lambda a: f"{a.dataflow}-{a.acc_format.name}-"
                         f"{a.buffer_format.name}-chunk{a.chunk}-pair{int(a.pair)}-chain{int(a.chain)}-"
                         f"{a.acc_overflow}-{a.acc_rounding}")
@pytest.mark.parametrize("operands", OPERAND_PAIRS, ids=lambda p: f"{p[0][7:]}x{p[1][7:]}")
def test_gemm_is_bit_identical_to_the_exact_oracle(arith, operands):
    # crc32, not hash(): string hashes change with PYTHONHASHSEED, and the codes must be the same every run
    rng = np.random.default_rng(zlib.crc32(repr((arith.dataflow, arith.rows, arith.pair, operands)).encode()))
    fa, fb = operands
    for m, k, n in [(3, 11, 2), (2, 17, 3), (1, 1, 1), (2, 0, 2)]:
        a = random_codes(rng, (m, k), fa, nan_rate=0.02)
        b = random_codes(rng, (k, n), fb)
        expected = oracle_accumulate(a, b, fa, fb, arith)
        for force_exact in (False, True):
            got = as_codes(gemm(a, b, fa, fb, arith, force_exact=force_exact), arith)
            assert np.array_equal(got, canonical_nan(expected, arith)), (m, k, n, force_exact)


def test_fast_path_is_taken_for_hfp8_and_equals_the_exact_path_on_large_random_gemms():
    rng = np.random.default_rng(1)
    for arith in (ArrayArithmetic("ws", rows=32), ArrayArithmetic("os", chunk=64, acc_format="float16"),
                  ArrayArithmetic("is", rows=16, acc_format="float16", buffer_format="float32")):
        for fa, fb in OPERAND_PAIRS:
            assert fast_path_applies(get_format(fa), get_format(fb), arith, False)
            a = random_codes(rng, (40, 300), fa, nan_rate=0.001)
            b = random_codes(rng, (300, 37), fb)
            fast = gemm(a, b, fa, fb, arith)
            exact = gemm(a, b, fa, fb, arith, force_exact=True)
            assert np.array_equal(fast, exact, equal_nan=True)
            assert np.array_equal(np.signbit(fast), np.signbit(exact))


def test_fast_path_is_refused_where_float32_would_round_twice():
    fp16 = get_format("float16")
    assert not fast_path_applies(fp16, fp16, ArrayArithmetic(acc_format="float16"), False)  # 22-bit products
    assert not fast_path_applies(get_format(FWD), get_format(FWD), ArrayArithmetic(pair=True), False)
    assert not fast_path_applies(get_format(FWD), get_format(FWD), ArrayArithmetic(), True)  # inf operands


CONV_ARITHMETICS = [
    ArrayArithmetic("ws", rows=5, cols=3),
    ArrayArithmetic("os", rows=3, cols=3, chunk=4, acc_format="float16"),
    ArrayArithmetic("is", rows=2, cols=4, acc_format="float16", buffer_format="float32", pair=True),
    ArrayArithmetic("os", rows=2, cols=2, pair=True),
]


@pytest.mark.parametrize("arith", CONV_ARITHMETICS, ids=lambda a: f"{a.dataflow}-{a.acc_format.name}-pair{int(a.pair)}")
def test_conv2d_equals_the_oracle_on_an_independent_lowering(arith):
    rng = np.random.default_rng(3)
    cases = [  # (N, C, H, W, K, R, S, stride, padding, dilation, groups)
        (2, 3, 5, 4, 4, 3, 2, 1, 1, 1, 1),
        (1, 4, 6, 6, 4, 3, 3, 2, (1, 0, 2, 1), 1, 4),  # depthwise, asymmetric padding
        (1, 4, 7, 5, 6, 2, 2, (2, 1), 0, 2, 2),  # grouped, dilated
    ]
    for n, c, h, w, k, r, s, stride, padding, dilation, groups in cases:
        x = random_codes(rng, (n, c, h, w), FWD, nan_rate=0.01)
        wt = random_codes(rng, (k, c // groups, r, s), BWD)
        got = conv2d(x, wt, FWD, BWD, arith, stride=stride, padding=padding, dilation=dilation, groups=groups)
        # independent lowering: explicit loops over the (r, s, c) reduction order
        st = (stride, stride) if isinstance(stride, int) else stride
        pad = (padding,) * 4 if isinstance(padding, int) else padding
        p_dim = (h + pad[0] + pad[1] - dilation * (r - 1) - 1) // st[0] + 1
        q_dim = (w + pad[2] + pad[3] - dilation * (s - 1) - 1) // st[1] + 1
        assert got.shape == (n, k, p_dim, q_dim)
        cg, kg = c // groups, k // groups
        for g in range(groups):
            a = np.zeros((n * p_dim * q_dim, r * s * cg), np.uint8)
            for row, (nn, pp, qq) in enumerate(np.ndindex(n, p_dim, q_dim)):
                for col, (rr, ss, cc) in enumerate(np.ndindex(r, s, cg)):
                    hh, ww = pp * st[0] - pad[0] + rr * dilation, qq * st[1] - pad[2] + ss * dilation
                    if 0 <= hh < h and 0 <= ww < w:
                        a[row, col] = x[nn, g * cg + cc, hh, ww]
            b = np.array([[wt[g * kg + kk, cc, rr, ss] for kk in range(kg)] for rr, ss, cc in np.ndindex(r, s, cg)],
                         np.uint8)
            expected = oracle_accumulate(a, b, FWD, BWD, arith).reshape(n, p_dim, q_dim, kg).transpose(0, 3, 1, 2)
            got_codes = as_codes(got[:, g * kg:(g + 1) * kg], arith)
            assert np.array_equal(got_codes, canonical_nan(expected, arith))
        ref = reference_conv2d(x, wt, FWD, BWD, stride=stride, padding=padding, dilation=dilation, groups=groups)
        assert ref.shape == got.shape


def test_reference_conv_matches_a_direct_convolution():
    rng = np.random.default_rng(4)
    x = random_codes(rng, (1, 2, 5, 5), FWD)
    w = random_codes(rng, (3, 2, 3, 3), FWD)
    xv, wv = decode(x, FWD).astype(np.float64), decode(w, FWD).astype(np.float64)
    ref = reference_conv2d(x, w, FWD, FWD, padding=1)
    padded = np.pad(xv, ((0, 0), (0, 0), (1, 1), (1, 1)))
    direct = np.zeros((1, 3, 5, 5))
    for k in range(3):
        for p in range(5):
            for q in range(5):
                direct[0, k, p, q] = np.sum(padded[0, :, p:p + 3, q:q + 3] * wv[k])
    assert np.allclose(ref, direct, rtol=1e-12, atol=0)


def test_float32_accumulation_of_exact_inputs_equals_numpy_float32_matmul():
    """Small integers: every partial sum is exact in float32, so any order gives numpy's result."""
    rng = np.random.default_rng(5)
    a = encode(rng.integers(-8, 9, (17, 45)).astype(np.float32), FWD)
    b = encode(rng.integers(-8, 9, (45, 13)).astype(np.float32), FWD)
    expected = decode(a, FWD) @ decode(b, FWD)
    for arith in (ArrayArithmetic("os", acc_format="float32"), ArrayArithmetic("ws", rows=8, acc_format="float32"),
                  ArrayArithmetic("is", rows=3, acc_format="float32", pair=True)):
        assert np.array_equal(gemm(a, b, FWD, FWD, arith), expected.astype(np.float64))
    assert np.array_equal(reference_gemm(a, b, FWD, FWD, np.float32), expected)


def test_single_fp16_additions_equal_numpy_float16():
    rng = np.random.default_rng(6)
    bits = rng.integers(0, 1 << 16, size=(200_000, 2), dtype=np.uint16)
    x = bits.view(np.float16)
    finite = np.isfinite(x).all(axis=1)
    x = x[finite]
    with np.errstate(over="ignore", invalid="ignore"):
        expected = (x[:, 0] + x[:, 1]).astype(np.float64)
    fp16 = get_format("float16").params
    got = np.array([add_rounded(float(p), float(q), fp16, 0, 1) for p, q in x[:8000].astype(np.float64)])
    assert np.array_equal(got, expected[:8000], equal_nan=True)
    # and through the GEMM kernel: [x, y] @ [1, 1]^T with an FP16 accumulator is one FP16 addition
    codes = x[20_000:40_000].view(np.uint16)
    ones = encode(np.ones((2, 1)), "float16")
    arith = ArrayArithmetic("os", acc_format="float16", acc_overflow="nonsaturating")
    sums = np.array([gemm(row[None, :], ones, "float16", "float16", arith)[0, 0] for row in codes[:1000]])
    assert np.array_equal(sums, expected[20_000:21_000], equal_nan=True)


def test_order_of_additions_matters_and_follows_the_dataflow():
    """FP16 swamping: 1 followed by 4096 products of 2**-12 stays 1 in one long FP16 chain, while folds and
    chunks sum the small products among themselves first and keep most of them."""
    k = 4097
    a = encode(np.r_[1.0, np.full(k - 1, 2.0**-6)][None, :], FWD)
    b = encode(np.r_[1.0, np.full(k - 1, 2.0**-6)][:, None], FWD)
    chain = gemm(a, b, FWD, FWD, ArrayArithmetic("os", acc_format="float16"))[0, 0]
    folded = gemm(a, b, FWD, FWD, ArrayArithmetic("ws", rows=8, acc_format="float16",
                                                  buffer_format="float32"))[0, 0]
    chunked = gemm(a, b, FWD, FWD, ArrayArithmetic("os", chunk=64, acc_format="float16"))[0, 0]
    assert chain == 1.0  # every 2**-12 is below half an ulp of 1 in FP16 (2**-11)
    # fold 0 holds the 1 and 7 small products (lost); then 511 folds of 8 (2**-9 each, exact) and one of 1
    assert folded == 1 + 511 * 2.0**-9 + 2.0**-12
    # chunk 0 holds the 1 and 63 lost products; 63 chunks of 64 (2**-6 each) and a lone 2**-12 (lost again)
    assert chunked == 1 + 63 * 2.0**-6


def test_bad_input_gives_one_clear_error():
    a = np.zeros((2, 3), np.uint8)
    with pytest.raises(DatapathError, match=r"shape mismatch: A is \(2, 3\) and B is \(4, 2\)"):
        gemm(a, np.zeros((4, 2), np.uint8), FWD, FWD)
    with pytest.raises(DatapathError, match="code 300 is not a valid 8-bit code of float8_e5m2"):
        gemm(np.array([[300]]), np.zeros((1, 1), np.uint16), BWD, FWD)
    with pytest.raises(DatapathError, match="expected integer codes of float8_e4m3b11fnuz, got dtype float32"):
        gemm(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.uint8), FWD, FWD)
    with pytest.raises(DatapathError, match="unknown dataflow 'rs'; allowed: os, ws, is"):
        ArrayArithmetic("rs")
    with pytest.raises(FormatError, match="unknown format 'dlfloat17'"):
        ArrayArithmetic(acc_format="dlfloat17")
    with pytest.raises(DatapathError, match="chunk applies to the output-stationary dataflow only"):
        ArrayArithmetic("ws", chunk=8)
    with pytest.raises(DatapathError, match="array rows must be a positive integer, got 0"):
        ArrayArithmetic(rows=0)
    with pytest.raises(DatapathError, match="groups=3 must divide both input channels C=4"):
        conv2d(np.zeros((1, 4, 3, 3), np.uint8), np.zeros((6, 1, 1, 1), np.uint8), FWD, FWD, groups=3)
    with pytest.raises(DatapathError, match="weights have 2 input channels per group"):
        lower_conv(np.zeros((1, 4, 3, 3), np.uint8), np.zeros((4, 2, 1, 1), np.uint8), groups=4)


def test_round_to_odd_sums_round_correctly_across_wide_exponent_gaps():
    """acc + p0 + p1 with exponents far apart (where float64 itself must round): one correct rounding."""
    from fractions import Fraction

    from hfp8sim.datapath.arithmetic import add_round_to_odd, round_value, sum3_round_to_odd
    from hfp8sim.formats.oracle import round_exact

    rng = np.random.default_rng(8)
    for fmt in ("float16", "dlfloat16", "bfloat16", "float32"):
        spec = get_format(fmt)
        for _ in range(800):
            terms = [float(rng.choice([-1, 1]) * rng.integers(1, 1 << 11) * 2.0 ** int(rng.integers(-70, 40)))
                     for _ in range(3)]
            if rng.random() < 0.5:  # a double-rounding trap: a midpoint of the target plus a far smaller term
                binade = 2.0 ** int(rng.integers(-20, 20))
                midpoint = binade * (1 + (2 * int(rng.integers(0, 1 << spec.man_bits)) + 1) * 2.0 ** -(spec.man_bits + 1))
                terms = [midpoint, float(rng.choice([-1, 1])) * binade * 2.0**-60, terms[2] * 2.0**-80]
            exact3 = sum(Fraction(t) for t in terms)
            exact2 = Fraction(terms[0]) + Fraction(terms[1])
            got3 = round_value(sum3_round_to_odd(*terms), spec.params, 0, 0)
            got2 = round_value(add_round_to_odd(terms[0], terms[1]), spec.params, 0, 0)
            want3 = decode(np.array([round_exact(exact3, spec)]), spec)[0]
            want2 = decode(np.array([round_exact(exact2, spec)]), spec)[0]
            assert got3 == want3 or (got3 == 0 and want3 == 0), (fmt, terms)
            assert got2 == want2 or (got2 == 0 and want2 == 0), (fmt, terms)
