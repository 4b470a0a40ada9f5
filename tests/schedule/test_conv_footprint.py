"""Conv inputs in DRAM as tensors (``hfp8sim/schedule/conv_footprint.py`` and the mapper's use of it): the DRAM
reads of a conv's input equal the exact footprints (halos included) of the tiles the schedule loads, computed
here by brute force from the im2col index map, and never exceed the im2col bytes; DRAM bytes are at least the
tensors' bytes; a candidate's bytes are its tiles' loads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hfp8sim.errors import Hfp8SimError
from hfp8sim.schedule.conv_footprint import ConvGeometry, block_footprint, conv_geometry, footprint_grid
from hfp8sim.schedule.mapper import ArraySpec, GemmProblem, _im2col_plan, build_schedule, candidates
from hfp8sim.workloads.layers import Conv2d
from tests.schedule.conftest import examples


def im2col_index(layer: Conv2d) -> np.ndarray:
    """The input element each entry of one group's im2col matrix reads: [n*P*Q + p*Q + q, (r*S + s)*Cg + c] ->
    flat (n, c, h, w) index within the group, -1 for padding (numpy index arithmetic, no footprint logic)."""
    cg = layer.C // layer.groups
    n, p, q, r, s, c = np.meshgrid(np.arange(layer.N), np.arange(layer.P), np.arange(layer.Q), np.arange(layer.R),
                                   np.arange(layer.S), np.arange(cg), indexing="ij")
    h = p * layer.stride[0] - layer.padding[0] + r * layer.dilation[0]
    w = q * layer.stride[1] - layer.padding[2] + s * layer.dilation[1]
    inside = (h >= 0) & (h < layer.H) & (w >= 0) & (w < layer.W)
    flat = ((n * cg + c) * layer.H + h) * layer.W + w
    return np.where(inside, flat, -1).reshape(layer.N * layer.P * layer.Q, layer.R * layer.S * cg)


def touched(index: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> set[int]:
    block = index[rows[0]:rows[1], cols[0]:cols[1]]
    return set(block[block >= 0].tolist())


def oracle_input_loads(schedule, index: np.ndarray, mode: str) -> list[float]:
    """Bytes of the conv input each tile must load, by the rules docs/design.md states, from sets of touched
    input elements: ``tile``: every tile its footprint; ``block``: what its footprint adds to its outer block
    (one position block of A, one tap-channel block of B, resident over the reduction); ``all``: the first
    tile of an outer block loads what that block over the whole reduction adds to everything loaded so far."""
    p = schedule.problem
    which = p.conv.operand
    elem = p.a_bytes if which == "a" else p.b_bytes
    held: dict = {}
    loads = []
    for t in schedule.tiles:
        pos, tc = (t.m, t.k) if which == "a" else (t.k, t.n)
        outer = t.m if which == "a" else t.n
        scope = (t.group,) if mode == "all" else (t.group, outer)
        if mode == "tile":
            new = touched(index, pos, tc)
        elif mode == "block":
            new = touched(index, pos, tc) - held.setdefault(scope, set())
        elif (tc if which == "a" else pos)[0] == 0:  # all resident: the outer block's first tile
            whole = (pos, (0, p.K)) if which == "a" else ((0, p.K), tc)
            new = touched(index, *whole) - held.setdefault(scope, set())
        else:
            new = set()
        held.setdefault(scope, set()).update(new)
        loads.append(len(new) * elem)
    return loads


@st.composite
def conv_layers(draw) -> Conv2d:
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    kernel = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    fields = dict(N=draw(st.integers(1, 2)), C=groups * draw(st.integers(1, 3)), K=groups * draw(st.integers(1, 3)),
                  H=draw(st.integers(3, 9)), W=draw(st.integers(3, 9)), R=kernel[0], S=kernel[1],
                  stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                  padding=tuple(draw(st.integers(0, 2)) for _ in range(4)),
                  dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))), groups=groups,
                  pass_=draw(st.sampled_from(["forward", "forward", "backward_weight"])))
    try:
        return Conv2d(name="conv", **fields)
    except Hfp8SimError:  # the window does not fit the padded input
        assume(False)


def problem_of(layer: Conv2d, a_bytes: int, b_bytes: int) -> GemmProblem:
    g = layer.gemm()
    return GemmProblem(layer.name, g.M, g.N, g.K, g.batch, a_bytes, b_bytes, 1, 4, conv_geometry(layer))


PADS = st.sampled_from([math.inf, 512, 96, 40, 20, 10, 6])


@examples(120)
@given(layer=conv_layers(), dataflow=st.sampled_from(["ws", "os", "is"]), side=st.integers(1, 4),
       pads=st.tuples(PADS, PADS, PADS), elem=st.tuples(st.sampled_from([1, 2]), st.sampled_from([1, 2])),
       choice=st.integers(0, 10**6))
def test_input_reads_are_the_tiles_footprints(layer, dataflow, side, pads, elem, choice):
    problem = problem_of(layer, *elem)
    array = ArraySpec(side, side, dataflow, False, None, *pads)
    try:
        found = candidates(problem, array)
    except Hfp8SimError:
        assume(False)
    index = im2col_index(layer)
    which = problem.conv.operand
    elem_im2col = problem.a_bytes if which == "a" else problem.b_bytes
    for cand in (found[0], found[choice % len(found)], found[-1]):
        schedule = build_schedule(problem, array, cand)
        loads = [t.load_a_bytes if which == "a" else t.load_b_bytes for t in schedule.tiles]
        mode = _im2col_plan(problem, array, *cand.tile_shape, cand.loop_order).mode
        assert loads == oracle_input_loads(schedule, index, mode)
        reads = sum(loads)
        # never more than the lowered matrix the GEMM view would fetch on the same loop nest
        reloads = math.ceil(problem.N / cand.tile_shape[1]) if which == "a" else math.ceil(problem.M / cand.tile_shape[0])
        assert reads <= problem.batch * index.size * elem_im2col * reloads
        assert cand.dram_bytes == schedule.dram_read_bytes + schedule.dram_write_bytes
        assert cand.dram_bytes >= problem.compulsory_bytes
    # compulsory: the input elements the windows read (the tensor when they cover it), weights, outputs
    reads_input = len(set(index[index >= 0].tolist()))
    other = problem.K * problem.N * problem.b_bytes if which == "a" else problem.M * problem.K * problem.a_bytes
    assert problem.compulsory_bytes == problem.batch * (reads_input * elem_im2col + other + problem.M * problem.N)


@examples(60)
@given(layer=conv_layers(), sizes=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       offsets=st.tuples(st.integers(0, 30), st.integers(0, 30)))
def test_grid_and_single_block_counts_are_the_touched_sets(layer, sizes, offsets):
    """Every entry of a footprint grid (positions by tap-channels, blocks cut from a core's share that starts
    at ``offsets``) and the same block counted alone equal the input elements the im2col index map touches:
    through one tap (counted by prefix sums), through several (unions of row and column sets), across images."""
    pos_index = im2col_index(layer)  # [positions, tap-channels] for either operand
    positions, tap_channels = pos_index.shape
    base = conv_geometry(layer)
    pos_offset, tc_offset = offsets[0] % positions, offsets[1] % tap_channels
    g = base.shifted(base.position_dim, pos_offset).shifted(base.tap_channel_dim, tc_offset)
    pos_total, tc_total = positions - pos_offset, tap_channels - tc_offset
    grid = footprint_grid(g, (pos_total, sizes[0], False), (tc_total, sizes[1], False))
    for i, p_lo in enumerate(range(0, pos_total, sizes[0])):
        for j, t_lo in enumerate(range(0, tc_total, sizes[1])):
            block = ((p_lo, min(p_lo + sizes[0], pos_total)), (t_lo, min(t_lo + sizes[1], tc_total)))
            (p0, p1), (t0, t1) = block
            expected = len(touched(pos_index, (p0 + pos_offset, p1 + pos_offset), (t0 + tc_offset, t1 + tc_offset)))
            assert grid[i, j] == block_footprint(g, *block) == expected


def test_input_tensor_read_once_when_resident_and_halo_reread_otherwise():
    # 8x8x1 input, 3x3 pad 1: 64 input elements, im2col 64 x 9 = 576
    layer = Conv2d(name="c", C=1, H=8, W=8, K=4, R=3, S=3, padding=1)
    problem = problem_of(layer, 1, 1)
    assert problem.compulsory_bytes == 64 + 36 + 256
    whole = build_schedule(problem, ArraySpec(4, 4, "ws"), next(c for c in candidates(problem, ArraySpec(4, 4, "ws"))
                                                             if c.tile_shape == (64, 4, 9)))
    assert sum(t.load_a_bytes for t in whole.tiles) == 64
    # two output rows per m-tile (mt=16) and every tile re-loading its footprint (input pad too small to keep
    # a block): rows 0-1 read input rows 0-2, rows 2-3 read 1-4, 4-5 read 3-6, 6-7 read 5-7 -> 3+4+4+3 = 14
    # rows of 8 = 112 elements, the halo rows counted once per neighbour
    array = ArraySpec(4, 4, "ws", input_bytes=40)
    cand = next(c for c in candidates(problem, array) if c.tile_shape == (16, 4, 9))
    schedule = build_schedule(problem, array, cand)
    assert [t.load_a_bytes for t in schedule.tiles] == [24.0, 32.0, 32.0, 24.0]


def test_resnet18_layer1_conv1_moves_about_its_tensors():
    """ResNet-18 layer1.0.conv1 on a 32x32 ws array, 2 MiB I/O SRAM (1 MiB per buffer), FP8: the tensors are
    56*56*64 input + 3*3*64*64 weights + 56*56*64 output = 438,272 bytes; the im2col view moved 2.04 MB."""
    layer = Conv2d(name="layer1.0.conv1", C=64, H=56, W=56, K=64, R=3, S=3, padding=1)
    problem = problem_of(layer, 1, 1)
    assert problem.compulsory_bytes == 56 * 56 * 64 * 2 + 9 * 64 * 64 == 438_272
    array = ArraySpec(32, 32, "ws", input_bytes=1 << 20, weight_bytes=1 << 20, output_bytes=1 << 20)
    best = candidates(problem, array)[0]
    assert best.dram_bytes == 438_272
    im2col_view = candidates(GemmProblem("im2col", 3136, 64, 576, 1, 1, 1, 1, 4), array)[0]
    assert im2col_view.dram_bytes == 2_043_904


def test_geometry_covers_forward_and_weight_gradient_only():
    layer = Conv2d(name="c", C=4, H=6, W=6, K=4, R=3, S=3)
    assert conv_geometry(layer).operand == "a"
    assert conv_geometry(Conv2d(name="c", C=4, H=6, W=6, K=4, R=3, S=3, pass_="backward_weight")).operand == "b"
    assert conv_geometry(Conv2d(name="c", C=4, H=6, W=6, K=4, R=3, S=3, pass_="backward_data")) is None
    assert isinstance(conv_geometry(layer), ConvGeometry)


def layer1_conv1_run(layout: str | None):
    """ResNet-18 layer1.0.conv1 through a whole run on a 32x32 ws core with 2 MiB scratchpads (double-buffered:
    1 MiB per tile) and 8 B/cycle DRAM, FP8."""
    from hfp8sim.run import simulate_network
    from hfp8sim.workloads import Network
    from tests.timing.conftest import make_arch

    dram = {"bw_bytes_per_cycle": 8.0, "latency_cycles": 10} | ({"conv_input_layout": layout} if layout else {})
    pad = {"size_kib": 2048, "read_bytes_per_cycle": 1e9, "write_bytes_per_cycle": 1e9}
    arch = make_arch(**{"array.rows": 32, "array.cols": 32, "dram": dram,
                        "scratchpads": {"input": pad, "weight": pad, "output": pad}})
    layer = Conv2d(name="layer1.0.conv1", C=64, H=56, W=56, K=64, R=3, S=3, padding=1)
    return simulate_network(arch, Network("l1", (layer,))).layers[0]


def test_layer1_conv1_dram_bytes_within_1_5x_of_its_tensors():
    tensor = layer1_conv1_run(None)
    moved = tensor.dram_read_bytes + tensor.dram_write_bytes
    assert tensor.compulsory_dram_bytes == 438_272
    assert 438_272 <= moved <= 1.5 * 438_272
    # the explicit im2col layout keeps the lowered matrix in DRAM: 3136 x 576 input + weights + outputs at least
    lowered = layer1_conv1_run("im2col")
    assert lowered.compulsory_dram_bytes == 3136 * 576 + 576 * 64 + 3136 * 64 == 2_043_904
    assert lowered.dram_read_bytes + lowered.dram_write_bytes >= 2_043_904


def test_conv_input_layout_is_checked():
    from hfp8sim.errors import ConfigError
    from tests.timing.conftest import make_arch

    with pytest.raises(ConfigError, match="conv_input_layout"):
        make_arch(dram={"ideal": True, "conv_input_layout": "nhwc"})
