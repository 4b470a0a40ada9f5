"""The mapper's contract (``hfp8sim/schedule/mapper.py``): every tiling of every candidate covers each output
and each product exactly once, keeps the reduction innermost, fits the scratchpads at the scheme's element
sizes, never moves less than the compulsory bytes and follows the array's granularity; plus hand-computed
plans and errors."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hfp8sim.errors import Hfp8SimError
from hfp8sim.schedule.mapper import (
    ArraySpec, GemmProblem, build_schedule, candidates, plan_gemm, tile_shape_counts,
)
from tests.schedule.conftest import array_specs, element_bytes, examples, gemm_problems


def array_steps(array: ArraySpec) -> dict[str, int]:
    """Tile granularity per GEMM dimension, from the module's rules: the dimensions on the array are cut in
    multiples of its side (rows hold two k each in pair mode for ws/is), the streamed one freely; os cuts k
    only at chunk boundaries (and never inside a pair)."""
    row_k = array.rows * (2 if array.pair else 1)
    if array.dataflow == "ws":
        return {"m": 1, "n": array.cols, "k": row_k}
    if array.dataflow == "is":
        return {"m": array.cols, "n": 1, "k": row_k}
    return {"m": array.rows, "n": array.cols, "k": array.chunk or (2 if array.pair else 1)}


def smallest_tile(problem: GemmProblem, array: ArraySpec) -> tuple[int, int, int]:
    steps = array_steps(array)
    return min(problem.M, steps["m"]), min(problem.N, steps["n"]), min(problem.K, steps["k"])


def fits(problem: GemmProblem, array: ArraySpec, mt: int, nt: int, kt: int) -> bool:
    return (mt * kt * problem.a_bytes <= array.input_bytes and kt * nt * problem.b_bytes <= array.weight_bytes
            and mt * nt * problem.psum_bytes <= array.output_bytes)


def candidates_or_none(problem: GemmProblem, array: ArraySpec):
    """The candidates, or None when nothing fits; then even the smallest tile the array allows must not fit."""
    try:
        return candidates(problem, array)
    except Hfp8SimError as error:
        assert not fits(problem, array, *smallest_tile(problem, array))
        assert f"layer {problem.name}: even the smallest tile" in str(error)
        return None


# ---- every tiling of every candidate --------------------------------------------------------------------


def check_coverage(schedule) -> None:
    """Each product (batch, m, n, k) is computed by exactly one tile; each output (batch, m, n) is stored
    once, by the tile that adds its last k."""
    p = schedule.problem
    products = np.zeros((p.batch, p.M, p.N, p.K), dtype=np.int32)
    stores = np.zeros((p.batch, p.M, p.N), dtype=np.int32)
    for t in schedule.tiles:
        products[t.group, t.m[0]:t.m[1], t.n[0]:t.n[1], t.k[0]:t.k[1]] += 1
        if t.store_bytes:
            stores[t.group, t.m[0]:t.m[1], t.n[0]:t.n[1]] += 1
    assert (products == 1).all()
    assert (stores == 1).all()


def check_reduction_innermost(schedule) -> None:
    """For each output tile its k-tiles run back to back in increasing, contiguous k from 0 to K; only the
    first writes the buffer (first_k) and only the last stores its outputs."""
    p = schedule.problem
    runs: list[list] = []
    for t in schedule.tiles:
        if runs and (runs[-1][0].group, runs[-1][0].m, runs[-1][0].n) == (t.group, t.m, t.n):
            runs[-1].append(t)
        else:
            runs.append([t])
    keys = [(run[0].group, run[0].m, run[0].n) for run in runs]
    assert len(keys) == len(set(keys)), "an output tile's k-tiles are interrupted by another output tile"
    for run in runs:
        assert run[0].k[0] == 0 and run[-1].k[1] == p.K
        assert all(a.k[1] == b.k[0] for a, b in zip(run, run[1:]))
        assert [t.first_k for t in run] == [True] + [False] * (len(run) - 1)
        mt, nt, _ = run[-1].dims
        assert [t.store_bytes for t in run] == [0.0] * (len(run) - 1) + [mt * nt * p.out_bytes]


def check_loop_order(schedule) -> None:
    """Tiles are numbered in execution order: batch element, then the two outer loops as named, then k."""
    tiles = schedule.tiles
    assert [t.index for t in tiles] == list(range(len(tiles)))
    if schedule.loop_order == "n,m,k":
        key = [(t.group, t.n[0], t.m[0], t.k[0]) for t in tiles]
    else:
        assert schedule.loop_order == "m,n,k"
        key = [(t.group, t.m[0], t.n[0], t.k[0]) for t in tiles]
    assert key == sorted(key)


def check_fits_and_granularity(schedule) -> None:
    """Every tile fits the usable scratchpad bytes; its extent on each array axis starts on a multiple of the
    step and is a multiple of it unless the tile ends at the edge of the GEMM."""
    p, array = schedule.problem, schedule.array
    steps = array_steps(array)
    mt, nt, kt = schedule.tile_shape
    for size, full, step in ((mt, p.M, steps["m"]), (nt, p.N, steps["n"]), (kt, p.K, steps["k"])):
        assert size == full or size % step == 0
    for t in schedule.tiles:
        assert fits(p, array, *t.dims)
        for (lo, hi), full, step, tile_size in ((t.m, p.M, steps["m"], mt), (t.n, p.N, steps["n"], nt),
                                                 (t.k, p.K, steps["k"], kt)):
            assert lo % tile_size == 0 and lo % step == 0
            assert hi - lo == tile_size or hi == full
            assert (hi - lo) % step == 0 or hi == full


def check_loads(schedule) -> None:
    """Each operand block is loaded before its first use; a tile that loads nothing for an operand reuses a
    block loaded earlier, and everything touched since that load still fits the operand's scratchpad."""
    p, array = schedule.problem, schedule.array
    for which, size_of, pad, elem in (("a", lambda t: (t.group, t.m, t.k), array.input_bytes, p.a_bytes),
                                      ("b", lambda t: (t.group, t.k, t.n), array.weight_bytes, p.b_bytes)):
        last_load: dict = {}
        blocks = [size_of(t) for t in schedule.tiles]
        for i, t in enumerate(schedule.tiles):
            block = blocks[i]
            nbytes = (block[1][1] - block[1][0]) * (block[2][1] - block[2][0]) * elem
            loaded = t.load_a_bytes if which == "a" else t.load_b_bytes
            if loaded:
                assert loaded == nbytes
                last_load[block] = i
                continue
            assert block in last_load, f"tile {i} uses {which.upper()} block {block} that was never loaded"
            resident = set(blocks[last_load[block]:i + 1])
            footprint = sum((b[1][1] - b[1][0]) * (b[2][1] - b[2][0]) * elem for b in resident)
            assert footprint <= pad, f"tile {i} reuses {which.upper()} block {block} that cannot still be resident"


def check_traffic(schedule, candidate) -> None:
    """The tiles move exactly the bytes the candidate was ranked by, and never less than the compulsory
    bytes; outputs are written exactly once."""
    p = schedule.problem
    assert schedule.dram_read_bytes + schedule.dram_write_bytes == candidate.dram_bytes
    assert candidate.dram_bytes >= schedule.compulsory_bytes
    assert schedule.dram_write_bytes == p.batch * p.M * p.N * p.out_bytes
    assert len(schedule.tiles) == candidate.tiles


@examples(150)
@given(problem=gemm_problems(), array=array_specs())
def test_every_tiling_of_every_candidate_keeps_the_contract(problem, array):
    found = candidates_or_none(problem, array)
    assume(found is not None)
    for candidate in found:
        schedule = build_schedule(problem, array, candidate)
        assert (schedule.tile_shape, schedule.loop_order) == (candidate.tile_shape, candidate.loop_order)
        check_coverage(schedule)
        check_reduction_innermost(schedule)
        check_loop_order(schedule)
        check_fits_and_granularity(schedule)
        check_loads(schedule)
        check_traffic(schedule, candidate)


@examples(100)
@given(problem=gemm_problems(max_dim=40, max_batch=3), array=array_specs(max_side=16), data=st.data())
def test_one_candidate_of_a_larger_gemm_keeps_the_contract(problem, array, data):
    found = candidates_or_none(problem, array)
    assume(found is not None)
    candidate = data.draw(st.sampled_from(found))
    schedule = build_schedule(problem, array, candidate)
    check_coverage(schedule)
    check_reduction_innermost(schedule)
    check_loop_order(schedule)
    check_fits_and_granularity(schedule)
    check_loads(schedule)
    check_traffic(schedule, candidate)


@examples(60)
@given(problem=gemm_problems(max_dim=64, max_batch=3), array=array_specs(max_side=16))
def test_candidates_are_every_fitting_tiling_once_fewest_bytes_first(problem, array):
    found = candidates_or_none(problem, array)
    assume(found is not None)
    shapes = [(c.tile_shape, c.loop_order) for c in found]
    assert len(shapes) == len(set(shapes))
    assert all(fits(problem, array, *c.tile_shape) for c in found)
    ranks = [(c.dram_bytes, c.tiles) for c in found]
    assert ranks == sorted(ranks)
    mt, nt, kt = smallest_tile(problem, array)
    assert ((mt, nt, kt), "n,m,k") in shapes  # the smallest tile is always a candidate when it fits
    for c in found:
        m_tiles, n_tiles, k_tiles = (math.ceil(full / size) for full, size in zip((problem.M, problem.N, problem.K),
                                                                                   c.tile_shape))
        assert c.tiles == m_tiles * n_tiles * k_tiles * problem.batch
        # one block along an outer dimension makes both loop orders the same: only "n,m,k" is kept
        assert c.loop_order == "n,m,k" or (m_tiles > 1 and n_tiles > 1)
    plan = plan_gemm(problem, array)
    assert (plan.tile_shape, plan.loop_order) == shapes[0]
    assert plan.dram_read_bytes + plan.dram_write_bytes == min(c.dram_bytes for c in found)


@examples(60)
@given(problem=gemm_problems(max_dim=64, max_batch=2, scheme="fp16"), array=array_specs(max_side=16))
def test_fp8_elements_fit_every_fp16_tile_and_move_at_most_half_the_bytes(problem, array):
    """The same layer with 1-byte operands and outputs instead of 2-byte ones (the same accumulator buffer):
    every tiling that fits at FP16 fits at FP8 and moves at most half the bytes (reuse only gets easier)."""
    fp8 = GemmProblem(problem.name, problem.M, problem.N, problem.K, problem.batch,
                      element_bytes("float8_e4m3b11fnuz"), element_bytes("float8_e5m2"),
                      element_bytes("float8_e4m3b11fnuz"), problem.psum_bytes)
    assert (problem.a_bytes, problem.b_bytes, problem.out_bytes) == (2, 2, 2)
    fp16_found, fp8_found = candidates_or_none(problem, array), candidates_or_none(fp8, array)
    if fp8_found is None:
        assert fp16_found is None
        return
    fp8_by_shape = {(c.tile_shape, c.loop_order): c for c in fp8_found}
    assert len(fp8_found) >= len(fp16_found or [])
    for c in fp16_found or []:
        assert (c.tile_shape, c.loop_order) in fp8_by_shape
        assert fp8_by_shape[(c.tile_shape, c.loop_order)].dram_bytes <= c.dram_bytes / 2
    if fp16_found:
        assert fp8_found[0].dram_bytes <= fp16_found[0].dram_bytes / 2


@examples(40)
@given(problem=gemm_problems(max_dim=64, max_batch=3), array=array_specs(max_side=16))
def test_tile_shape_counts_match_the_built_tiles(problem, array):
    found = candidates_or_none(problem, array)
    assume(found is not None)
    for candidate in (found[0], found[-1]):
        schedule = build_schedule(problem, array, candidate)
        counts = tile_shape_counts(problem, candidate.tile_shape)
        assert dict(counts) == Counter(t.dims for t in schedule.tiles)
        assert len({shape for shape, _ in counts}) == len(counts)


# ---- hand-computed cases ------------------------------------------------------------------------------------


def test_unlimited_scratchpads_read_everything_once_in_one_tile():
    """ws 4x4, an 8x8x8 FP8 GEMM, unlimited scratchpads: every tiling moves the compulsory 3 * 64 bytes.
    Tile sizes: m free {1, 2, 4, 8}, n and k in fours {4, 8}: 16 tilings with n outside m, and 6 with m
    outside n (only where both outer dimensions have more than one block: m in {1, 2, 4}, n = 4)."""
    problem = GemmProblem("fc", 8, 8, 8)
    array = ArraySpec(4, 4, "ws")
    found = candidates(problem, array)
    assert len(found) == 22
    assert {c.dram_bytes for c in found} == {192.0}
    assert sum(c.loop_order == "m,n,k" for c in found) == 6
    plan = plan_gemm(problem, array)
    assert (plan.tile_shape, plan.loop_order, len(plan.tiles)) == ((8, 8, 8), "n,m,k", 1)
    assert plan.compulsory_bytes == 192.0


def test_limited_scratchpads_choose_the_tile_that_reads_each_operand_once():
    """ws 4x4, an 8x8x8 FP8 GEMM, 32 usable bytes for each operand: all of A (64 B) or B (64 B) never fits,
    but an 8x8x4 tile (A 32 B, B 32 B) covers M and N in one block each, so each k-half of A and of B is
    read once: 192 bytes in 2 tiles, the compulsory traffic."""
    problem = GemmProblem("fc", 8, 8, 8)
    array = ArraySpec(4, 4, "ws", input_bytes=32, weight_bytes=32)
    plan = plan_gemm(problem, array)
    assert (plan.tile_shape, plan.loop_order) == ((8, 8, 4), "n,m,k")
    assert [(t.m, t.n, t.k, t.load_a_bytes, t.load_b_bytes, t.store_bytes, t.first_k) for t in plan.tiles] == [
        ((0, 8), (0, 8), (0, 4), 32.0, 32.0, 0.0, True),
        ((0, 8), (0, 8), (4, 8), 32.0, 32.0, 64.0, False),
    ]


def test_an_operand_that_does_not_fit_is_read_again_for_every_outer_block():
    """The 8x4x4 tiling of the same GEMM with n outside m: B's 8x4 column block (32 B) stays for the m loop,
    but all of A (64 B) does not fit, so A is read again for the second column block: 128 + 64 + 64 B."""
    problem = GemmProblem("fc", 8, 8, 8)
    array = ArraySpec(4, 4, "ws", input_bytes=32, weight_bytes=32)
    candidate = next(c for c in candidates(problem, array) if (c.tile_shape, c.loop_order) == ((8, 4, 4), "n,m,k"))
    assert (candidate.dram_bytes, candidate.tiles) == (256.0, 4)
    schedule = build_schedule(problem, array, candidate)
    assert [(t.n, t.k, t.load_a_bytes, t.load_b_bytes, t.store_bytes) for t in schedule.tiles] == [
        ((0, 4), (0, 4), 32.0, 16.0, 0.0),
        ((0, 4), (4, 8), 32.0, 16.0, 32.0),
        ((4, 8), (0, 4), 32.0, 16.0, 0.0),
        ((4, 8), (4, 8), 32.0, 16.0, 32.0),
    ]


def test_fp16_halves_the_tile_that_fits():
    """os 4x4 with 64 usable bytes per operand and a K=64 reduction: FP8 fits a 4x4x16 tile (64 B each),
    FP16 only 4x4x8, so FP16 needs twice the k-tiles."""
    array = ArraySpec(4, 4, "os", input_bytes=64, weight_bytes=64)
    fp8 = GemmProblem("l", 4, 4, 64, a_bytes=1, b_bytes=1, out_bytes=1)
    fp16 = GemmProblem("l", 4, 4, 64, a_bytes=2, b_bytes=2, out_bytes=2)
    assert plan_gemm(fp8, array).tile_shape == (4, 4, 16)
    assert plan_gemm(fp16, array).tile_shape == (4, 4, 8)
    assert (len(plan_gemm(fp8, array).tiles), len(plan_gemm(fp16, array).tiles)) == (4, 8)


def test_pair_mode_cuts_k_in_twice_the_array_rows():
    problem = GemmProblem("l", 3, 4, 20)
    assert {c.tile_shape[2] for c in candidates(problem, ArraySpec(4, 4, "ws"))} == {4, 8, 16, 20}
    assert {c.tile_shape[2] for c in candidates(problem, ArraySpec(4, 4, "ws", pair=True))} == {8, 16, 20}
    # os: k is cut only at chunk boundaries (or between pairs)
    assert {c.tile_shape[2] for c in candidates(problem, ArraySpec(4, 4, "os", chunk=6))} == {6, 12, 20}
    assert {c.tile_shape[2] for c in candidates(problem, ArraySpec(4, 4, "os", pair=True))} == {2, 4, 8, 16, 20}


def test_tile_shape_counts_by_hand():
    """M=10, N=6, K=5 in 4x4x2 tiles, batch 2: m blocks 4, 4, 2; n blocks 4, 2; k blocks 2, 2, 1."""
    problem = GemmProblem("l", 10, 6, 5, batch=2)
    assert tile_shape_counts(problem, (4, 4, 2)) == [
        ((4, 4, 2), 8), ((4, 4, 1), 4), ((4, 2, 2), 8), ((4, 2, 1), 4),
        ((2, 4, 2), 4), ((2, 4, 1), 2), ((2, 2, 2), 4), ((2, 2, 1), 2),
    ]


def test_a_layer_that_cannot_be_mapped_names_itself_and_the_scratchpads():
    """os 4x4: the smallest tile is 4x4x1, whose 16 partial sums of 4 bytes need 64 output bytes."""
    problem = GemmProblem("conv1", 8, 8, 8)
    with pytest.raises(Hfp8SimError, match=r"^layer conv1: even the smallest tile \(4x4x1\) does not fit the "
                                           r"scratchpads \(input inf B, weight inf B, output 32 B usable per tile\)"):
        candidates(problem, ArraySpec(4, 4, "os", output_bytes=32))
    assert plan_gemm(problem, ArraySpec(4, 4, "os", output_bytes=64)).tile_shape == (4, 4, 8)


@pytest.mark.parametrize("dims", [(0, 4, 4, 1), (4, 0, 4, 1), (4, 4, 0, 1), (4, 4, 4, 0)])
def test_empty_gemms_are_refused(dims):
    m, n, k, batch = dims
    with pytest.raises(Hfp8SimError, match=r"^layer empty: GEMM dimensions must be positive"):
        candidates(GemmProblem("empty", m, n, k, batch), ArraySpec(4, 4, "ws"))
