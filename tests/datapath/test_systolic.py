"""The cycle-stepped register model against the closed-form fold latency (cycles) and against the contract
and the fast kernel (bits)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfp8sim.datapath import gemm
from hfp8sim.datapath.arithmetic import add_rounded, mac, mac_pair, round_value
from hfp8sim.datapath.contract import ArrayArithmetic
from hfp8sim.datapath.systolic import replay_gemm, simulate_gemm
from hfp8sim.errors import StructuralHazard
from hfp8sim.formats import OVERFLOW_MODES, ROUNDING_MODES, decode, decode_table, get_format
from hfp8sim.schedule import fold_latency, gemm_cycles, gemm_fold_schedule, os_pe_step_count

FWD, BWD = "float8_e4m3b11fnuz", "float8_e5m2"
OPERAND_PAIRS = [(FWD, FWD), (BWD, FWD), (BWD, BWD)]


def examples(count):
    """Hypothesis settings for a pure-Python model: no deadline; counts sized so the file runs in ~30 s."""
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def timings(folds):
    return [(f.start, f.stream_start, f.end) for f in folds]


def schedule_for(arith, m, n, k, overlap):
    return gemm_fold_schedule(arith.dataflow, arith.rows, arith.cols, m, n, k, pair=arith.pair, overlap=overlap,
                              chain=arith.chain, chunk=arith.chunk)


@st.composite
def arrays(draw, max_dim=8):
    dataflow = draw(st.sampled_from(["os", "ws", "is"]))
    rows, cols = draw(st.integers(1, max_dim)), draw(st.integers(1, max_dim))
    pair = draw(st.booleans())
    chain = dataflow != "os" and draw(st.booleans())
    chunk = draw(st.sampled_from([None, 1, 2, 3, 5])) if dataflow == "os" else None
    return ArrayArithmetic(dataflow, rows=rows, cols=cols, pair=pair, chain=chain, chunk=chunk)


def fold_count(arith, m, n, k):
    per_fold_k = arith.rows * arith.products_per_step
    if arith.dataflow == "os":
        return -(-m // arith.rows) * -(-n // arith.cols)
    wide = n if arith.dataflow == "ws" else m
    return -(-wide // arith.cols) * -(-k // per_fold_k)


@st.composite
def gemm_cases(draw, max_dim=8, max_size=20, max_folds=40):
    """An array and a GEMM shape with a bounded number of folds (a 1 x 1 array folds a 20^3 GEMM 400 times)."""
    arith = draw(arrays(max_dim))
    m, n, k = (draw(st.integers(1, max_size)) for _ in range(3))
    while fold_count(arith, m, n, k) > max_folds:
        m, n, k = max(1, m // 2), max(1, n // 2), max(1, k // 2)
    return arith, m, n, k


# ---- cycles ---------------------------------------------------------------------------------------------

@examples(500)
@given(case=gemm_cases(), overlap=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_every_fold_starts_and_ends_when_the_closed_form_says(case, overlap, seed):
    arith, m, n, k = case
    rng = np.random.default_rng(seed)
    result = simulate_gemm(rng.standard_normal((m, k)), rng.standard_normal((k, n)), arith, overlap=overlap)
    expected = schedule_for(arith, m, n, k, overlap)
    assert timings(result.folds) == timings(expected)
    assert [(f.m_range, f.n_range, f.k_range) for f in result.folds] == [
        (f.m_range, f.n_range, f.k_range) for f in expected]
    assert result.total_cycles == gemm_cycles(arith.dataflow, arith.rows, arith.cols, m, n, k, pair=arith.pair,
                                              overlap=overlap, chain=arith.chain, chunk=arith.chunk)


@examples(200)
@given(case=gemm_cases(max_dim=5, max_size=10, max_folds=12), data=st.data())
def test_the_overlap_controller_picks_the_earliest_hazard_free_cycles(case, data):
    """Replaying the controller's schedule is clean; moving any fold's start or stream one cycle earlier,
    with the folds before it where they were, is a hazard."""
    arith, m, n, k = case
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    result = simulate_gemm(a, b, arith, overlap=True)
    starts = [(f.start, f.stream_start) for f in result.folds]
    replayed = replay_gemm(a, b, arith, starts)
    assert timings(replayed.folds) == timings(result.folds)
    assert np.array_equal(replayed.out, result.out, equal_nan=True)
    checked = sorted(data.draw(st.sets(st.integers(0, len(starts) - 1), min_size=1, max_size=4)))
    for f in checked:
        start, stream = starts[f]
        if arith.dataflow == "os":
            earlier = [(start - 1, stream - 1)] if f > 0 else []
        else:
            earlier = ([(start - 1, stream)] if f > 0 else []) + [(start, stream - 1)]
        for moved in earlier:
            with pytest.raises(StructuralHazard):
                replay_gemm(a, b, arith, starts[:f] + [moved])


def test_lone_fold_latency_is_the_simulated_single_fold_gemm():
    for dataflow in ("os", "ws", "is"):
        for rows, cols, t_len, r_used, c_used in [(1, 1, 1, 1, 1), (4, 3, 5, 2, 3), (3, 5, 2, 3, 1), (8, 8, 7, 8, 8)]:
            arith = ArrayArithmetic(dataflow, rows=rows, cols=cols)
            if dataflow == "os":
                shape = (r_used, t_len, c_used)  # M, K, N
            elif dataflow == "ws":
                shape = (t_len, r_used, c_used)
            else:
                shape = (c_used, r_used, t_len)
            m, k, n = shape
            for overlap in (False, True):
                result = simulate_gemm(np.ones((m, k)), np.ones((k, n)), arith, overlap=overlap)
                assert len(result.folds) == 1
                assert result.total_cycles == fold_latency(dataflow, rows, cols, t_len, r_used, c_used,
                                                           overlap=overlap)


def test_golden_cycles_on_a_2x2_array_derived_by_hand():
    """M = N = K = 3 on 2 x 2: folds (k 0-1 | k 2) x (cols 0-1 | col 2); T = 3, so every fold ends at
    stream + T + R + c - 2 (ws/is) or stream + T + 2r + c - 2 (os)."""
    ones = np.ones((3, 3))
    golden = {
        # ws/is, no overlap: preload r rows, stream, wait for idle.  f0: stream 0+2, end 2+3+2+2-2 = 7 ...
        ("ws", False): ([(0, 2, 7), (7, 8, 13), (13, 15, 19), (19, 20, 24)], 24),
        # ws/is, overlap: p_f = max(p + r, s + c), s_f = max(p_f + 1, s + T).
        # f1: p = max(0+2, 1+2) = 3, s = max(4, 1+3) = 4; f2: p = max(3+1, 4+2) = 6, s = max(7, 4+3) = 7;
        # f3: p = max(6+2, 7+1) = 8, s = max(9, 7+3) = 10, end 10+3+2+1-2 = 14.
        ("ws", True): ([(0, 1, 6), (3, 4, 9), (6, 7, 11), (8, 10, 14)], 14),
        # os, no overlap: folds (m 0-1, n 0-1) r2 c2, (m 0-1, n 2) r2 c1, (m 2, n 0-1) r1 c2, (m 2, n 2) r1 c1
        ("os", False): ([(0, 0, 7), (7, 7, 13), (13, 13, 18), (18, 18, 22)], 22),
        # os, overlap: s >= s_prev + 3 and s - s_h odd or >= 2 r_h; 3, 6, 9 all qualify
        ("os", True): ([(0, 0, 7), (3, 3, 9), (6, 6, 11), (9, 9, 13)], 13),
    }
    for (dataflow, overlap), (folds, total) in golden.items():
        for df in (("ws", "is") if dataflow == "ws" else ("os",)):
            result = simulate_gemm(ones, ones, ArrayArithmetic(df, rows=2, cols=2), overlap=overlap)
            assert timings(result.folds) == folds, (df, overlap)
            assert result.total_cycles == total
    is_ranges = [(f.m_range, f.n_range, f.k_range) for f in simulate_gemm(ones, ones, ArrayArithmetic(
        "is", rows=2, cols=2)).folds]
    assert is_ranges == [(range(0, 2), range(3), range(0, 2)), (range(0, 2), range(3), range(2, 3)),
                         (range(2, 3), range(3), range(0, 2)), (range(2, 3), range(3), range(2, 3))]
    # os parity: 2 x 1 array, M = 4, K = 2.  Fold 0's PE(1,0) result moves into output register (0,0) in
    # cycle 3, when fold 1 started at cycle 2 would latch PE(0,0)'s result there; so fold 1 starts at 3.
    result = simulate_gemm(np.ones((4, 2)), np.ones((2, 1)), ArrayArithmetic("os", rows=2, cols=1), overlap=True)
    assert timings(result.folds) == [(0, 0, 5), (3, 3, 8)]
    with pytest.raises(StructuralHazard, match=r"cycle 3: register \('o', 0, 0\) written twice"):
        replay_gemm(np.ones((4, 2)), np.ones((2, 1)), ArrayArithmetic("os", rows=2, cols=1), [(0, 0), (2, 2)])


def test_chain_mode_waits_for_the_previous_k_block_to_reach_the_buffer():
    """ws 4 x 1, M = 3, N = 2, K = 5 (k-blocks of 4 and 1 rows).  Fold 3 (column 1, k 4) would stream at
    max(p + 1, s + T) = 11, but its column top reads output (0, 1), which fold 2 (stream 8) writes at
    8 + 0 + R - 1 = 11: the read must come at 12."""
    a, b = np.ones((3, 5)), np.ones((5, 2))
    plain = simulate_gemm(a, b, ArrayArithmetic("ws", rows=4, cols=1), overlap=True)
    chained = simulate_gemm(a, b, ArrayArithmetic("ws", rows=4, cols=1, chain=True), overlap=True)
    assert timings(plain.folds) == [(0, 1, 7), (4, 5, 11), (6, 8, 14), (10, 11, 17)]
    assert timings(chained.folds) == [(0, 1, 7), (4, 5, 11), (6, 8, 14), (10, 12, 18)]
    with pytest.raises(StructuralHazard, match=r"cycle 11: fold 3 reads output \(0,1\) .* after 0 of the 1"):
        replay_gemm(a, b, ArrayArithmetic("ws", rows=4, cols=1, chain=True), [(0, 1), (4, 5), (6, 8), (10, 11)])


def test_each_kind_of_hazard_is_reported():
    ones = np.ones((3, 3))
    ws = ArrayArithmetic("ws", rows=2, cols=2)
    with pytest.raises(StructuralHazard, match=r"cycle 3: two values on the input port of row 0 "
                                               r"\(fold 0 row 2 and fold 1 row 0\)"):
        replay_gemm(ones, ones, ws, [(0, 1), (3, 3)])
    with pytest.raises(StructuralHazard, match="cycle 0: fold 0 input reached PE.0,0. before its weight"):
        replay_gemm(ones, ones, ws, [(0, 0)])
    with pytest.raises(StructuralHazard, match=r"cycle 2: fold 1 weight row 0: the shadow register of PE\(0,1\) "
                                               "still holds fold 0's weight"):
        replay_gemm(ones, ones, ws, [(0, 1), (2, 4)])
    with pytest.raises(StructuralHazard, match="cycle 1: two values on the weight bus"):
        replay_gemm(ones, ones, ws, [(0, 1), (1, 4)])
    os_ = ArrayArithmetic("os", rows=2, cols=2)
    with pytest.raises(StructuralHazard, match="cycle 1: two values on the input port of row 0"):
        replay_gemm(ones, ones, os_, [(0, 0), (1, 1)])
    replay_gemm(ones, ones, os_, [(0, 0), (3, 3)])  # the controller's choice is clean


def test_schedule_rejects_impossible_arguments():
    with pytest.raises(ValueError, match="unknown dataflow 'xs'"):
        gemm_fold_schedule("xs", 2, 2, 1, 1, 1)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        fold_latency("ws", 0, 2, 1, 1, 1)
    with pytest.raises(ValueError, match="at most 2 x 2 PEs"):
        fold_latency("os", 2, 2, 1, 3, 1)
    with pytest.raises(ValueError, match="chunk applies to the output-stationary"):
        gemm_fold_schedule("ws", 2, 2, 1, 1, 1, chunk=2)
    assert os_pe_step_count(7, pair=True) == 4
    assert os_pe_step_count(7, pair=True, chunk=3) == 2 + 2 + 1  # chunks 3, 3, 1: odd last products alone
    assert os_pe_step_count(7, chunk=3) == 7


# ---- bits -----------------------------------------------------------------------------------------------

def contract_gemm(a_val, b_val, arith):
    """A slow direct reading of contract.py: segments from +0 in the accumulator format, pairs within a
    segment (an odd last product alone), the first segment rounded into the running format, later ones added
    with one rounding.  No array, no folds, no data movement."""
    acc_p, run_p = arith.acc_format.params, arith.segment_sum_format.params
    rnd, ovf = ROUNDING_MODES[arith.acc_rounding], OVERFLOW_MODES[arith.acc_overflow]
    m_len, k_len = a_val.shape
    segment = arith.segment_length(k_len)
    out = np.empty((m_len, b_val.shape[1]))
    for i in range(m_len):
        for j in range(b_val.shape[1]):
            running = 0.0
            for k0 in range(0, k_len, segment):
                k1, k, psum = min(k_len, k0 + segment), k0, 0.0
                while k < k1:
                    if arith.pair and k + 1 < k1:
                        psum = mac_pair(psum, a_val[i, k], b_val[k, j], a_val[i, k + 1], b_val[k + 1, j], acc_p,
                                        rnd, ovf)
                        k += 2
                    else:
                        psum = mac(psum, a_val[i, k], b_val[k, j], acc_p, rnd, ovf)
                        k += 1
                running = round_value(psum, run_p, rnd, ovf) if k0 == 0 else add_rounded(running, psum, run_p,
                                                                                          rnd, ovf)
            out[i, j] = running
    return out


def operand_codes(rng, shape, fmt, profile, nan_rate):
    """Codes of one profile: 'spread' (every finite code), 'tiny' (zeros, subnormals and the smallest normals,
    so products underflow the accumulator to signed zeros) or 'large' (the top binades, so sums saturate a
    float16 accumulator); a share of exact zeros of both signs and, at nan_rate, NaN codes."""
    spec = get_format(fmt)
    table = decode_table(spec)
    codes = np.arange(1 << spec.bits)
    finite = codes[np.isfinite(table)]
    magnitude = np.abs(table[finite])
    if profile == "tiny":
        finite = finite[magnitude <= float(spec.min_subnormal) * 4]
    elif profile == "large":
        finite = finite[magnitude >= float(spec.max_value) / 16]
    out = rng.choice(finite, size=shape)
    zeros = rng.random(shape) < 0.15
    out[zeros] = rng.choice(codes[table == 0], size=int(zeros.sum()))
    nans = rng.random(shape) < nan_rate
    out[nans] = rng.choice(codes[np.isnan(table)], size=int(nans.sum()))
    return out.astype(spec.code_dtype)


@st.composite
def operands(draw, max_size=12):
    fa, fb = draw(st.sampled_from(OPERAND_PAIRS))
    m, n, k = (draw(st.integers(1, max_size)) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    nan_rate = draw(st.sampled_from([0.0, 0.0, 0.03]))
    a = operand_codes(rng, (m, k), fa, draw(st.sampled_from(["spread", "tiny", "large"])), nan_rate)
    b = operand_codes(rng, (k, n), fb, draw(st.sampled_from(["spread", "tiny", "large"])), nan_rate)
    return a, b, fa, fb


@st.composite
def arithmetics(draw, max_dim=6):
    arith = draw(arrays(max_dim))
    return ArrayArithmetic(
        arith.dataflow, rows=arith.rows, cols=arith.cols, pair=arith.pair, chain=arith.chain, chunk=arith.chunk,
        acc_format=draw(st.sampled_from(["dlfloat16", "float16"])),
        buffer_format=draw(st.sampled_from([None, None, "float32"])),
        acc_rounding=draw(st.sampled_from(["nearest_even", "nearest_even", "toward_zero", "nearest_away"])),
        acc_overflow=draw(st.sampled_from(["saturate", "saturate", "nonsaturating"])))


def assert_same_bits(got, expected, *, nan_sign=True):
    assert got.dtype == np.float64 and got.shape == expected.shape
    assert np.array_equal(got, expected, equal_nan=True)
    signs = np.ones(got.shape, bool) if nan_sign else ~np.isnan(expected)
    assert np.array_equal(np.signbit(got[signs]), np.signbit(expected[signs]))


@examples(300)
@given(ops=operands(), arith=arithmetics(), overlap=st.booleans())
def test_outputs_equal_a_direct_evaluation_of_the_contract(ops, arith, overlap):
    a, b, fa, fb = ops
    a_val, b_val = decode(a, fa).astype(np.float64), decode(b, fb).astype(np.float64)
    result = simulate_gemm(a_val, b_val, arith, overlap=overlap)
    assert_same_bits(result.out, contract_gemm(a_val, b_val, arith))


@examples(200)
@given(ops=operands(), arith=arithmetics())
def test_outputs_equal_the_fast_kernel(ops, arith):
    a, b, fa, fb = ops
    result = simulate_gemm(decode(a, fa).astype(np.float64), decode(b, fb).astype(np.float64), arith)
    assert_same_bits(result.out, gemm(a, b, fa, fb, arith), nan_sign=False)  # float32 NaN signs may differ


def test_signed_zeros_and_saturation_are_produced_and_kept():
    """Two corners the bit tests must get right, directly: a -0 accumulated value (a tiny negative product
    underflows float16; the first fold must *write* it, as +0 + -0 would give +0) and float16 saturation.
    And the operand generators of the bit tests do reach both."""
    tiny = 2.0**-13  # smallest float8_e4m3b11fnuz subnormal: its square is below half float16's smallest
    # -tiny*tiny underflows to -0 in float16; +0 + (-0) would give +0, the contract keeps -0
    for dataflow in ("os", "ws", "is"):
        arith = ArrayArithmetic(dataflow, rows=2, cols=2, acc_format="float16", buffer_format="float32")
        out = simulate_gemm(np.array([[-tiny]]), np.array([[tiny]]), arith).out
        assert out[0, 0] == 0.0 and np.signbit(out[0, 0])
    big = 57344.0  # largest float8_e5m2
    for dataflow in ("os", "ws", "is"):
        out = simulate_gemm(np.full((1, 3), big), np.full((3, 1), 30.0),
                            ArrayArithmetic(dataflow, rows=2, cols=2, acc_format="float16")).out
        assert out[0, 0] == 65504.0  # saturated, not inf
    rng = np.random.default_rng(7)
    arith = ArrayArithmetic("ws", rows=2, cols=2, acc_format="float16")
    tiny_a = decode(operand_codes(rng, (20, 3), BWD, "tiny", 0.0), BWD).astype(np.float64)
    tiny_b = decode(operand_codes(rng, (3, 20), FWD, "tiny", 0.0), FWD).astype(np.float64)
    zeros = contract_gemm(tiny_a, tiny_b, arith)
    assert np.any((zeros == 0) & np.signbit(zeros))
    large_a = decode(operand_codes(rng, (20, 3), BWD, "large", 0.0), BWD).astype(np.float64)
    large_b = decode(operand_codes(rng, (3, 20), FWD, "large", 0.0), FWD).astype(np.float64)
    assert np.any(np.abs(contract_gemm(large_a, large_b, arith)) == 65504.0)


def test_golden_values_follow_the_order_of_additions():
    """float16 accumulation of 1 + 2^-11 + 2^-11 (2^-11 is half an ulp of 1): one chain ties to even twice
    and stays 1; ws folds of 2 rows keep the first 2^-11 in the float32 buffer; chain mode does not."""
    a_val, b_val = np.array([[1.0, 2.0**-11, 2.0**-11]]), np.ones((3, 1))
    cases = [(ArrayArithmetic("os", rows=2, cols=2, acc_format="float16"), 1.0),
             (ArrayArithmetic("ws", rows=2, cols=2, acc_format="float16", buffer_format="float32"), 1 + 2.0**-11),
             (ArrayArithmetic("is", rows=2, cols=2, acc_format="float16", buffer_format="float32"), 1 + 2.0**-11),
             (ArrayArithmetic("ws", rows=2, cols=2, acc_format="float16", buffer_format="float32", chain=True), 1.0),
             (ArrayArithmetic("os", rows=2, cols=2, acc_format="float16", chunk=1), 1.0),
             (ArrayArithmetic("ws", rows=1, cols=1, acc_format="float16", buffer_format="float32", pair=True),
              1 + 2.0**-11),  # pair: 1 + 2^-11 rounds once to 1, then the lone 2^-11 fold is added in float32
             (ArrayArithmetic("os", rows=1, cols=1, acc_format="float16", pair=True), 1.0)]
    for arith, expected in cases:
        for overlap in (False, True):
            assert simulate_gemm(a_val, b_val, arith, overlap=overlap).out[0, 0] == expected, arith
