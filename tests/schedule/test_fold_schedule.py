"""The fold schedule's contract (``hfp8sim/schedule/fold_latency.py``): the folds of a tile cover its
(m, n, k) products exactly once in the array's order, within the array, with ordered start/stream/end
cycles, and ``gemm_cycles`` is the latest fold end; plus hand-computed latencies from the module's formulas.
(The formulas themselves are checked against the cycle-stepped register model in
``tests/datapath/test_systolic.py``.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hfp8sim.schedule import fold_latency, gemm_cycles, gemm_fold_schedule, os_pe_step_count
from tests.schedule.conftest import DATAFLOWS, examples


@st.composite
def fold_problems(draw, max_side: int = 8, max_dim: int = 40):
    dataflow = draw(st.sampled_from(DATAFLOWS))
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    m, n, k = (draw(st.integers(1, max_dim)) for _ in range(3))
    options = {"pair": draw(st.booleans()), "overlap": draw(st.booleans())}
    if dataflow == "os":
        options["chunk"] = draw(st.none() | st.integers(1, 9))
    else:
        options["chain"] = draw(st.booleans())
    return dataflow, rows, cols, m, n, k, options


@examples(300)
@given(case=fold_problems())
def test_folds_cover_the_tile_once_in_order_within_the_array(case):
    dataflow, rows, cols, m, n, k, options = case
    folds = gemm_fold_schedule(dataflow, rows, cols, m, n, k, **options)
    per_step = 2 if options["pair"] else 1
    products = np.zeros((m, n, k), dtype=np.int32)
    for fold in folds:
        products[fold.m_range.start:fold.m_range.stop, fold.n_range.start:fold.n_range.stop,
                 fold.k_range.start:fold.k_range.stop] += 1
        for span in (fold.m_range, fold.n_range, fold.k_range):
            assert span.step == 1 and len(span) >= 1
    assert (products == 1).all()
    assert [f.index for f in folds] == list(range(len(folds)))
    if dataflow == "os":  # row blocks of R outputs (outer) x column blocks of C (inner); all of k in each
        assert len(folds) == math.ceil(m / rows) * math.ceil(n / cols)
        assert all(len(f.m_range) <= rows and len(f.n_range) <= cols and len(f.k_range) == k for f in folds)
        order = [(f.m_range.start, f.n_range.start) for f in folds]
    else:  # column blocks of C (ws: n, is: m; outer) x k-blocks of R rows of `per_step` k each (inner)
        wide, streamed = ("n_range", "m_range") if dataflow == "ws" else ("m_range", "n_range")
        assert len(folds) == math.ceil((n if dataflow == "ws" else m) / cols) * math.ceil(k / (rows * per_step))
        for f in folds:
            assert len(getattr(f, wide)) <= cols and math.ceil(len(f.k_range) / per_step) <= rows
            assert len(getattr(f, streamed)) == (m if dataflow == "ws" else n)
        order = [(getattr(f, wide).start, f.k_range.start) for f in folds]
    assert order == sorted(order)


@examples(300)
@given(case=fold_problems())
def test_fold_cycles_are_ordered_and_gemm_cycles_is_the_latest_end(case):
    dataflow, rows, cols, m, n, k, options = case
    folds = gemm_fold_schedule(dataflow, rows, cols, m, n, k, **options)
    for f in folds:
        assert 0 <= f.start <= f.stream_start < f.end
    for before, after in zip(folds, folds[1:]):
        assert before.start <= after.start and before.stream_start <= after.stream_start
        if not options["overlap"]:  # each fold waits for an idle array
            assert after.start == before.end
    assert folds[0].start == 0
    assert gemm_cycles(dataflow, rows, cols, m, n, k, **options) == max(f.end for f in folds)
    if not options["overlap"]:
        assert gemm_cycles(dataflow, rows, cols, m, n, k, **options) == folds[-1].end


@examples(200)
@given(case=fold_problems())
def test_overlapping_folds_is_never_slower(case):
    dataflow, rows, cols, m, n, k, options = case
    overlapped = gemm_cycles(dataflow, rows, cols, m, n, k, **dict(options, overlap=True))
    assert overlapped <= gemm_cycles(dataflow, rows, cols, m, n, k, **dict(options, overlap=False))


@examples(200)
@given(case=fold_problems())
def test_a_gemm_of_one_fold_takes_the_lone_fold_latency(case):
    dataflow, rows, cols, m, n, k, options = case
    per_step = 2 if options["pair"] else 1
    if dataflow == "os":
        m, n = min(m, rows), min(n, cols)
        t_steps, r_used, c_used = os_pe_step_count(k, pair=options["pair"], chunk=options["chunk"]), m, n
    else:
        k = min(k, rows * per_step)
        if dataflow == "ws":
            n = min(n, cols)
            t_steps, c_used = m, n
        else:
            m = min(m, cols)
            t_steps, c_used = n, m
        r_used = math.ceil(k / per_step)
    (fold,) = gemm_fold_schedule(dataflow, rows, cols, m, n, k, **options)
    assert fold.start == 0
    assert fold.end == fold_latency(dataflow, rows, cols, t_steps, r_used, c_used, overlap=options["overlap"])


# ---- hand-computed cases (module notes: ws/is end = s_f + T + R + c - 2, os end = s_f + T + 2r + c - 2) ------


def slots(*args, **options):
    return [(f.start, f.stream_start, f.end) for f in gemm_fold_schedule(*args, **options)]


def test_a_lone_weight_stationary_fold():
    """ws 4x4, M=10 streamed, N=3 columns, K=4 rows: preload rows 0..3 in cycles 0..3, stream from 4,
    the last row leaves column 2 at 4 + 10 + 4 + 3 - 2 = 19; with overlap the stream starts in cycle 1."""
    assert slots("ws", 4, 4, 10, 3, 4) == [(0, 4, 19)]
    assert slots("ws", 4, 4, 10, 3, 4, overlap=True) == [(0, 1, 16)]
    assert fold_latency("ws", 4, 4, 10, 4, 3) == 19
    assert fold_latency("ws", 4, 4, 10, 4, 3, overlap=True) == 16
    # input-stationary is the same with A^T stationary: M on the columns, N streamed
    assert slots("is", 4, 4, 3, 10, 4) == [(0, 4, 19)]
    # pair mode: a row holds two k, so K=8 is still one fold of 4 rows
    assert slots("ws", 4, 4, 10, 3, 8, pair=True) == [(0, 4, 19)]


def test_two_weight_stationary_k_folds_with_and_without_overlap():
    """K=8 on 4 rows: two folds.  Without overlap the second preloads at the first's end (19), streams at 23
    and ends at 38.  With overlap its preload waits for the weight bus (0 + 4) and the shadow registers
    (1 + 3): 4; its stream for the input ports (1 + 10): 11; end 11 + 10 + 4 + 3 - 2 = 26."""
    assert slots("ws", 4, 4, 10, 3, 8) == [(0, 4, 19), (19, 23, 38)]
    assert slots("ws", 4, 4, 10, 3, 8, overlap=True) == [(0, 1, 16), (4, 11, 26)]
    assert gemm_cycles("ws", 4, 4, 10, 3, 8) == 38
    assert gemm_cycles("ws", 4, 4, 10, 3, 8, overlap=True) == 26


def test_each_overlap_bound_can_decide_a_weight_stationary_start():
    """The second fold's preload waits for the weight bus (p + r) or for the shadow registers to empty
    (s + c), and its stream for its own preload (p + 1) or the input ports (s + T)."""
    # one column, four rows: the bus decides (0 + 4 > 1 + 1); the ports decide the stream (1 + 10)
    assert slots("ws", 4, 4, 10, 1, 8, overlap=True) == [(0, 1, 14), (4, 11, 24)]
    # two rows, four columns: the shadow registers decide (1 + 4 > 0 + 2)
    assert slots("ws", 2, 4, 10, 4, 4, overlap=True) == [(0, 1, 15), (5, 11, 25)]
    # one streamed row: the stream follows its preload (4 + 1 > 1 + 1)
    assert slots("ws", 4, 4, 1, 3, 8, overlap=True) == [(0, 1, 7), (4, 5, 11)]


def test_chained_k_folds_wait_for_the_previous_partial_sums():
    """ws 4x1, M=3, N=2, K=5: per column a 4-row and a 1-row k-fold.  The last fold (column 1, second
    k-block) preloads at max(6 + 4, 8 + 1) = 10 and could stream at max(10 + 1, 8 + 3) = 11, but with chain
    its column reads the partial sums the fold before writes, so it waits until 8 + R = 12 (end 18, not 17)."""
    plain = [(0, 1, 7), (4, 5, 11), (6, 8, 14), (10, 11, 17)]
    assert slots("ws", 4, 1, 3, 2, 5, overlap=True) == plain
    assert slots("ws", 4, 1, 3, 2, 5, overlap=True, chain=True) == plain[:3] + [(10, 12, 18)]
    assert gemm_cycles("ws", 4, 1, 3, 2, 5, overlap=True, chain=True) == 18

def test_output_stationary_folds():
    """os 4x4, M=3, N=2, K=5: one fold of T=5 steps ends at 5 + 2*3 + 2 - 2 = 11 (3 steps in pair mode: 9)."""
    assert slots("os", 4, 4, 3, 2, 5) == [(0, 0, 11)]
    assert slots("os", 4, 4, 3, 2, 5, pair=True) == [(0, 0, 9)]
    assert fold_latency("os", 4, 4, 5, 3, 2) == 11
    # M=8: two row blocks.  With overlap the second may start after the first's T steps unless the start gap
    # is even and below 2r = 8 (both would latch into one output register in one cycle)
    assert slots("os", 4, 4, 8, 2, 4) == [(0, 0, 12), (12, 12, 24)]
    assert slots("os", 4, 4, 8, 2, 4, overlap=True) == [(0, 0, 12), (5, 5, 17)]  # gap 4 even: wait to 5
    assert slots("os", 4, 4, 8, 2, 5, overlap=True) == [(0, 0, 13), (5, 5, 18)]  # gap 5 odd
    assert slots("os", 4, 4, 8, 2, 8, overlap=True) == [(0, 0, 16), (8, 8, 24)]  # gap 8 = 2r


def test_a_narrow_last_fold_can_end_before_the_one_before_it():
    """os 2x2, M=3: the second fold uses one row (end 1 + 1 + 2 + 1 - 2 = 3) and finishes before the first
    (end 0 + 1 + 4 + 1 - 2 = 4), so the GEMM takes the latest end, not the last fold's."""
    assert slots("os", 2, 2, 3, 1, 1, overlap=True) == [(0, 0, 4), (1, 1, 3)]
    assert gemm_cycles("os", 2, 2, 3, 1, 1, overlap=True) == 4


@pytest.mark.parametrize(("k", "pair", "chunk", "steps"), [
    (7, False, None, 7), (7, True, None, 4), (8, True, None, 4),
    (7, True, 3, 5),  # chunks 3, 3, 1: 2 + 2 + 1 steps (an odd chunk's last product is a step of its own)
    (7, False, 3, 7), (8, True, 4, 4), (1, True, None, 1),
])
def test_output_stationary_step_counts(k, pair, chunk, steps):
    assert os_pe_step_count(k, pair=pair, chunk=chunk) == steps
