"""The float32 round-to-odd kernel (FP16 products, pair mode) against the exact kernel and the fractions oracle.

Every case runs ``gemm`` twice, once as dispatched and once with ``force_exact``, and compares the values as
codes of the running format (NaN canonical: its sign carries no meaning) and, for numbers, their sign bits
(-0 matters).  A smaller share of the cases also goes through the exact oracle.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hfp8sim.datapath import ArrayArithmetic, accumulate, gemm, round_output
from hfp8sim.datapath.conv import conv2d
from hfp8sim.datapath.gemm import select_kernel
from hfp8sim.datapath.oracle import oracle_accumulate
from hfp8sim.formats import FormatSpec, decode, encode, get_format

FWD, BWD, FP16 = "float8_e4m3b11fnuz", "float8_e5m2", "float16"
KERNELS = importlib.import_module("hfp8sim.datapath.gemm")  # the module, not the function of that name
OPERANDS = [(FP16, FP16), (FP16, FWD), (FWD, FP16), (BWD, FP16), (FWD, FWD), (BWD, FWD), (BWD, BWD)]


def examples(count):
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def codes_for(rng, shape, fmt, style, nan_rate):
    """Codes of ``fmt``: ``wide`` spans the whole range (subnormals, saturation), ``narrow`` is normal data
    (long accumulations whose sums keep many bits), ``short`` has few significant bits (ties)."""
    spec = get_format(fmt)
    if style == "wide":
        exponent = rng.integers(spec.smallest_positive_exponent - 1, spec.emax + 2, size=shape)
        values = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(1, 2, size=shape) * np.exp2(exponent)
    elif style == "narrow":
        values = rng.standard_normal(shape) * 2.0 ** rng.integers(-3, 4)
    else:
        values = rng.integers(-8, 9, size=shape) * 2.0 ** rng.integers(-4, 1, size=shape)
    values[rng.random(shape) < 0.1] = 0.0
    values[rng.random(shape) < 0.05] = -0.0
    codes = encode(values, spec)
    if nan_rate:
        codes[rng.random(shape) < nan_rate] = spec.nan_code
    return codes


def fp16(values):
    return encode(np.asarray(values, dtype=np.float64), FP16)


def as_codes(values, arith):
    """Accumulated values as codes of the running format, NaN canonical."""
    return round_output(values, arith.segment_sum_format, overflow="nonsaturating")


def assert_same_bits(got, expected):
    assert got.shape == expected.shape
    both_nan = np.isnan(got) & np.isnan(expected)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(got[~both_nan], expected[~both_nan])
    assert np.array_equal(np.signbit(got[~both_nan]), np.signbit(expected[~both_nan]))


@st.composite
def arithmetics(draw):
    dataflow = draw(st.sampled_from(["os", "ws", "is"]))
    rows = draw(st.integers(1, 6))
    chunk = draw(st.sampled_from([None, 1, 3, 4, 7])) if dataflow == "os" else None
    chain = dataflow != "os" and draw(st.booleans())
    return ArrayArithmetic(
        dataflow, rows=rows, cols=4, pair=draw(st.booleans()), chunk=chunk, chain=chain,
        acc_format=draw(st.sampled_from(["dlfloat16", "float16", "float32"])),
        buffer_format=draw(st.sampled_from([None, "float32", "dlfloat16", "float16"])) if dataflow != "os" else None,
        acc_overflow=draw(st.sampled_from(["saturate", "nonsaturating"])))


@st.composite
def cases(draw, max_k=40):
    arith = draw(arithmetics())
    fa, fb = draw(st.sampled_from(OPERANDS))
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(0, max_k)), draw(st.integers(1, 5))
    style = draw(st.sampled_from(["wide", "narrow", "short"]))
    nan_rate = draw(st.sampled_from([0.0, 0.0, 0.03]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = codes_for(rng, (m, k), fa, style, nan_rate)
    b = codes_for(rng, (k, n), fb, style, 0.0)
    return arith, fa, fb, a, b


@examples(400)
@given(cases(max_k=300))
def test_dispatched_kernel_is_bit_identical_to_the_exact_kernel(case):
    arith, fa, fb, a, b = case
    assert_same_bits(gemm(a, b, fa, fb, arith), gemm(a, b, fa, fb, arith, force_exact=True))


@examples(60)
@given(cases(max_k=24))
def test_dispatched_kernel_is_bit_identical_to_the_oracle(case):
    arith, fa, fb, a, b = case
    expected = oracle_accumulate(a, b, fa, fb, arith)
    spec = arith.segment_sum_format
    expected[np.isnan(decode(expected, spec))] = spec.nan_code
    assert np.array_equal(as_codes(gemm(a, b, fa, fb, arith), arith), expected)


@examples(60)
@given(cases(max_k=60), st.integers(2, 4))
def test_tiles_continued_through_running_values_agree(case, tiles):
    """K split into tiles, each continuing from the last one's values (``running``): the dispatched kernel's
    continuation (chain or added segments) equals the exact kernel's."""
    arith, fa, fb, a, b = case
    k = a.shape[1]
    assume(k > 0)
    cuts = sorted({0, k} | {2 * (k * t // (2 * tiles)) for t in range(1, tiles)})
    fast = exact = None
    for k0, k1 in zip(cuts, cuts[1:]):
        fast = accumulate(a[:, k0:k1], b[k0:k1], fa, fb, arith, running=fast)
        exact = accumulate(a[:, k0:k1], b[k0:k1], fa, fb, arith, running=exact, force_exact=True)
    assert_same_bits(fast, exact)


def special_codes(rng, shape, fmt, with_inf):
    """Codes of ``fmt`` drawn from its edge values: signed zeros, the smallest subnormal and normal, the
    largest finite value (products that saturate the accumulator), 1 and values whose products cancel
    exactly, NaN, and, with ``with_inf``, the infinities of a format that has them."""
    spec = get_format(fmt)
    magnitudes = [0.0, float(spec.min_subnormal), float(spec.min_normal), 1.0, 1.5, 2.0 ** -11,
                  float(spec.max_value)]
    # a different mix per example: some mostly zeros and subnormals (a flush to -0, then zero products
    # that must keep it), some mostly large (saturation)
    weights = rng.dirichlet(np.full(len(magnitudes), 0.3))
    values = rng.choice(magnitudes, size=shape, p=weights) * rng.choice([-1.0, 1.0], size=shape)
    codes = encode(values, spec)
    extra = rng.random(shape)
    codes[extra < 0.02] = spec.nan_code
    if with_inf and spec.infinities:
        codes[extra > 0.98] = encode(np.array([np.inf]), spec)[0]
    return codes


@examples(150)
@given(st.sampled_from([(FP16, FP16), (FP16, FWD), (FWD, FP16), (FP16, BWD)]), st.booleans(),
       st.sampled_from(["dlfloat16", "float16", "float32"]), st.sampled_from(["saturate", "nonsaturating"]),
       st.sampled_from(["os", "ws"]), st.booleans(), st.integers(0, 2**32 - 1))
def test_fp16_operands_with_edge_values_agree_with_the_exact_kernel(formats, pair, acc, overflow, dataflow,
                                                                    with_inf, seed):
    """FP16 x FP16 and FP16 x FP8 operands, one product or pair steps, made of edge values: exact zero sums of
    signed zeros and cancelling products, flushes to -0, saturation or overflow, NaN, and infinities (which
    the dispatcher sends to the exact kernel)."""
    fa, fb = formats
    rng = np.random.default_rng(seed)
    arith = ArrayArithmetic(dataflow, rows=3, pair=pair, acc_format=acc, acc_overflow=overflow)
    a = special_codes(rng, (3, 17), fa, with_inf)
    b = special_codes(rng, (17, 4), fb, with_inf)
    # a tail of -0 in A times nonnegative B: after a sum that flushed to -0, the -0 products that follow
    # must keep its sign
    tail = rng.integers(0, 18)
    a[:, tail:] = encode(np.array([-0.0]), fa)[0]
    b[tail:] = encode(np.abs(decode(b[tail:], fb)), fb)
    assert_same_bits(gemm(a, b, fa, fb, arith), gemm(a, b, fa, fb, arith, force_exact=True))


def test_the_round_to_odd_kernel_is_chosen_for_fp16_products_and_pair_mode():
    fp16, fwd, bwd = get_format(FP16), get_format(FWD), get_format(BWD)
    default = ArrayArithmetic()
    assert select_kernel(fwd, fwd, default, False, 512) == "float32"
    for spec_a, spec_b in [(fp16, fp16), (fp16, fwd), (fwd, fp16), (bwd, fp16)]:
        for arith in (default, ArrayArithmetic(pair=True), ArrayArithmetic("os", acc_format="float16"),
                      ArrayArithmetic("is", acc_format="float32", pair=True)):
            assert select_kernel(spec_a, spec_b, arith, False, 512) == "float32_odd"
    # FP8 pair mode into DLFloat16: exact int64 fixed point, unless the range needs more than 62 bits
    assert select_kernel(fwd, fwd, ArrayArithmetic(pair=True), False, 512) == "fixed"
    assert select_kernel(bwd, fwd, ArrayArithmetic(pair=True), False, 512) == "fixed"
    assert select_kernel(bwd, bwd, ArrayArithmetic(pair=True), False, 512) == "float32_odd"
    # ... and when a step could round a nonzero sum to zero, continue a chain, or overflow without saturating
    assert select_kernel(fwd, fwd, ArrayArithmetic(pair=True, acc_format="float16"), False, 512) == "float32_odd"
    assert select_kernel(fwd, fwd, ArrayArithmetic(pair=True), False, 512, chain_init=True) == "float32_odd"
    nonsaturating = ArrayArithmetic(pair=True, acc_overflow="nonsaturating")
    assert select_kernel(fwd, fwd, nonsaturating, False, 512) == "float32_odd"


def test_the_exact_kernel_stays_where_float32_is_not_proven():
    fp16, fwd = get_format(FP16), get_format(FWD)
    pair = ArrayArithmetic(pair=True)
    assert select_kernel(fp16, fp16, pair, True, 64) == "exact"  # infinite operands
    assert select_kernel(fp16, fp16, ArrayArithmetic(acc_rounding="toward_zero"), False, 64) == "exact"
    assert select_kernel(fwd, fwd, ArrayArithmetic(acc_format="bfloat16", pair=True), False, 64) == "exact"
    bf16 = get_format("bfloat16")
    assert select_kernel(bf16, bf16, pair, False, 64) == "exact"  # products below float32's normal range
    wide = get_format("e2m13")  # 14 significant bits: products of 28 bits are not exact in float32
    assert select_kernel(wide, wide, pair, False, 64) == "exact"
    # a float32 buffer fed by a running value far too large to keep TwoSum away from overflow
    f32_buffer = ArrayArithmetic("ws", acc_format="float32", pair=True)
    assert select_kernel(fp16, fp16, f32_buffer, False, 64, running_bound=1e38) == "exact"
    assert select_kernel(fp16, fp16, f32_buffer, False, 64, running_bound=float("nan")) == "exact"


@pytest.mark.parametrize("acc", ["float16", "dlfloat16"])
def test_a_sum_that_float32_rounds_onto_a_midpoint_still_rounds_once(acc):
    """1 + 1141/1024 * 1838 * 2**-(m+12) = 1 + 2**-(m+1) + 6 * 2**-(m+22) (the product has 22 significant bits,
    1141 * 1838 = 2**21 + 6).  float32 drops the 6 * 2**-(m+22) and lands on the accumulator's midpoint
    1 + 2**-(m+1), whose tie goes down to 1; the exact sum is above it and rounds up to 1 + 2**-m."""
    man = get_format(acc).man_bits
    a = fp16([[1.0, 1141 / 1024]])
    b = fp16([[1.0], [1838 * 2.0 ** -(man + 12)]])
    exact_sum = 1 + 2.0 ** -(man + 1) + 6 * 2.0 ** -(man + 22)
    assert float(np.float32(exact_sum)) == 1 + 2.0 ** -(man + 1)  # the float32 sum is a tie
    for arith in (ArrayArithmetic("os", acc_format=acc), ArrayArithmetic("os", acc_format=acc, pair=True)):
        assert select_kernel(get_format(FP16), get_format(FP16), arith, False, 2) == "float32_odd"
        for force_exact in (False, True):
            assert gemm(a, b, FP16, FP16, arith, force_exact=force_exact)[0, 0] == 1 + 2.0 ** -man


def redone_pair_steps(a, b, fa, fb, arith):
    """Run the pair kernel with the plain-sum fast path on codes; how many row steps it redid exactly."""
    kernel, constants = KERNELS._kernel_setup(get_format(fa), get_format(fb), arith, False, a.shape[1], 0.0, False,
                                              False)
    acc_params, acc_magic, run_params, run_magic, acc_odd_mask, run_odd_mask, _, pair_fast = constants
    assert kernel == "float32_odd" and pair_fast is not None
    a32, b32 = decode(a, fa).astype(np.float32)[None], decode(b, fb).astype(np.float32)[None]
    out = np.empty((1, a.shape[0], b.shape[1]), np.float32)
    return KERNELS._gemm_pair_fast(a32, b32, arith.segment_length(a.shape[1]), acc_params, acc_magic, acc_odd_mask,
                                   *pair_fast, run_params, run_magic, run_odd_mask, False, out)


@examples(80)
@given(st.sampled_from(["dlfloat16", "float16"]), st.integers(0, 24), st.integers(0, 2**32 - 1))
def test_pair_steps_near_accumulator_midpoints_take_both_routes_and_agree(acc, shift, seed):
    """The plain-sum pair step at its boundary.  Rows of A are [1, 0, 1, 2**-s] and columns of B [X, W, Y, W]:
    the first step leaves the accumulator value X, the second adds Y, which puts X + Y on one of the
    accumulator's midpoints or a few FP16 ulps of Y beside it, and 2**-s W, from about 1 down to 2**-48.  So
    the float32 sums are exact (ties), or a few ulps from a midpoint, or far from it, each in some column.
    Row 0 (s = 24, a column exactly on a midpoint with W = 2**-48 ...) must be redone exactly, row 1 (no third
    product: exact sums) must not; the dispatched kernel equals the exact kernel and the fractions oracle."""
    rng = np.random.default_rng(seed)
    man = get_format(acc).man_bits
    cols = 12
    exponent = rng.integers(-3, 9, size=cols)  # Y stays an FP16 normal
    sign = rng.choice([-1.0, 1.0], size=cols)
    x = sign * (1 + rng.integers(0, 2**man, size=cols) / 2**man) * 2.0**exponent
    offset = rng.integers(-3, 4, size=cols)  # FP16 ulps of Y beside the midpoint
    offset[0] = 0
    y = rng.choice([-1.0, 1.0], size=cols) * 2.0 ** (exponent - man - 1) * (1 + offset / 1024)
    w_exponent = rng.integers(0, 25, size=cols)
    w_exponent[0] = 24
    w = rng.choice([-1.0, 1.0], size=cols) * (1 + rng.integers(0, 1024, size=cols) / 1024) * 2.0**-w_exponent
    b = fp16(np.stack([x, w, y, w]))
    a = fp16([[1.0, 0.0, 1.0, 2.0**-24], [1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 2.0**-shift]])
    arith = ArrayArithmetic("os", acc_format=acc, pair=True)
    assert np.array_equal(decode(b[0], FP16), x) and np.array_equal(decode(b[2], FP16), y)
    redone = redone_pair_steps(a, b, FP16, FP16, arith)
    assert 1 <= redone <= 2  # row 0's second step, perhaps row 2's; never a first step nor row 1
    got = gemm(a, b, FP16, FP16, arith)
    assert_same_bits(got, gemm(a, b, FP16, FP16, arith, force_exact=True))
    assert np.array_equal(as_codes(got, arith), oracle_accumulate(a, b, FP16, FP16, arith))


def test_pair_steps_below_the_smallest_normal_are_redone():
    """FP16 accumulator, subnormal range: 2**-12 * 9 * 2**-13 = 4.5 quanta (2**-24) is a midpoint of the fixed
    quantum grid, not of the float32 binade's grid; adding +-2**-48 is lost in float32, whose sum is the tie
    (which goes to 4 quanta).  The exact sums round to 5 and 4 quanta: the step must be redone."""
    a = fp16([[2.0**-12, 2.0**-24]])
    b = fp16([[9 * 2.0**-13, 9 * 2.0**-13], [2.0**-24, -(2.0**-24)]])
    arith = ArrayArithmetic("os", acc_format="float16", pair=True)
    assert redone_pair_steps(a, b, FP16, FP16, arith) == 1
    for force_exact in (False, True):
        assert np.array_equal(gemm(a, b, FP16, FP16, arith, force_exact=force_exact), [[5 * 2.0**-24, 4 * 2.0**-24]])


@pytest.mark.parametrize("acc", ["float16", "dlfloat16"])
def test_pair_steps_keep_a_negative_zero_and_an_infinite_accumulator(acc):
    """A tiny negative product flushes the accumulator to -0; then -0 + -0 + -0 is -0.  And an accumulator that
    overflowed to infinity (nonsaturating FP16) stays infinite through later pair steps."""
    a = fp16([[-2.0**-24, -0.0, -0.0, -0.0]])
    b = fp16([[2.0**-24], [1.0], [1.0], [1.0]])
    arith = ArrayArithmetic("os", acc_format=acc, pair=True)
    assert_same_bits(gemm(a, b, FP16, FP16, arith), np.array([[-0.0]]))
    assert_same_bits(gemm(a, b, FP16, FP16, arith, force_exact=True), np.array([[-0.0]]))
    a = fp16([[60000.0, 1.0, 1.0, 1.0]])
    b = fp16([[60000.0], [1.0], [1.0], [1.0]])
    arith = ArrayArithmetic("os", acc_format=acc, pair=True, acc_overflow="nonsaturating")
    expected = oracle_accumulate(a, b, FP16, FP16, arith)
    for force_exact in (False, True):
        assert np.array_equal(as_codes(gemm(a, b, FP16, FP16, arith, force_exact=force_exact), arith), expected)


def test_the_fixed_point_kernel_saturates_and_puts_nan_back_on_its_rows_and_columns():
    """Products of 30 * 30 into a narrow accumulator (1,6,9) with bias 50, max about 16376: the chain
    saturates.  NaN codes in A and B reach exactly their row and column."""
    narrow = FormatSpec("e6m9b50fn", 6, 9, 50, subnormals=False, nan="fn")
    arith = ArrayArithmetic("os", pair=True, acc_format=narrow)
    a = encode(np.full((3, 100), 30.0), FWD)
    b = encode(np.full((100, 4), 30.0), FWD)
    a[1, 50] = get_format(FWD).nan_code
    b[7, 2] = get_format(FWD).nan_code
    assert select_kernel(get_format(FWD), get_format(FWD), arith, False, 100) == "fixed"
    got = gemm(a, b, FWD, FWD, arith)
    assert_same_bits(got, gemm(a, b, FWD, FWD, arith, force_exact=True))
    assert np.isnan(got[1]).all() and np.isnan(got[:, 2]).all()
    assert np.count_nonzero(np.isnan(got)) == 4 + 3 - 1
    assert got[0, 0] == float(narrow.max_value)
    # random tiles added to running values in a float32 buffer
    rng = np.random.default_rng(13)
    a = codes_for(rng, (5, 96), BWD, "wide", 0.02)
    b = codes_for(rng, (96, 6), FWD, "wide", 0.0)
    arith = ArrayArithmetic("ws", rows=8, pair=True, buffer_format="float32")
    fast = exact = None
    for k0 in range(0, 96, 32):
        fast = accumulate(a[:, k0:k0 + 32], b[k0:k0 + 32], BWD, FWD, arith, running=fast)
        exact = accumulate(a[:, k0:k0 + 32], b[k0:k0 + 32], BWD, FWD, arith, running=exact, force_exact=True)
    assert_same_bits(fast, exact)


def test_large_random_gemms_agree_for_every_operand_pair():
    rng = np.random.default_rng(11)
    for fa, fb in OPERANDS:
        for arith in (ArrayArithmetic("ws", rows=32, pair=True), ArrayArithmetic("os", chunk=64),
                      ArrayArithmetic("is", rows=16, acc_format="float16", buffer_format="float32", pair=True)):
            a = codes_for(rng, (24, 256), fa, "narrow", 0.001)
            b = codes_for(rng, (256, 33), fb, "narrow", 0.0)
            assert_same_bits(gemm(a, b, fa, fb, arith), gemm(a, b, fa, fb, arith, force_exact=True))


def test_conv2d_in_pair_mode_with_fp16_operands_takes_the_fast_kernel_and_matches_the_exact_one():
    rng = np.random.default_rng(12)
    x = codes_for(rng, (2, 4, 6, 6), FP16, "narrow", 0.0)
    w = codes_for(rng, (8, 2, 3, 3), FWD, "narrow", 0.0)
    arith = ArrayArithmetic("ws", rows=4, pair=True)
    got = conv2d(x, w, FP16, FWD, arith, padding=1, groups=2)
    assert_same_bits(got, conv2d(x, w, FP16, FWD, arith, padding=1, groups=2, force_exact=True))
