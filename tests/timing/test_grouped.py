"""Grouped and depthwise convs: groups packed across a weight-stationary array, or the vector unit, chosen by
simulated cycles (``hfp8sim.schedule.grouped``, the run layer's choice)."""

from __future__ import annotations

import math

import numpy as np

from hfp8sim.datapath import ArrayArithmetic, gemm
from hfp8sim.formats import encode, get_format
from hfp8sim.results import read_run_folder
from hfp8sim.run import _NetworkRun, core_model, simulate_network
from hfp8sim.schedule import grouped
from hfp8sim.schedule.mapper import plan_gemm
from hfp8sim.schedule.search import gemm_problem
from hfp8sim.timing.layer_results import vector_conv_layer_result
from hfp8sim.workloads import Conv2d, Network
from tests.timing.conftest import make_arch

# 8x4 ws array in pair mode (two FP8 products per PE step: 16 k per column)
PAIR_8x4 = {"array.rows": 8, "array.cols": 4, "array.macs_per_pe_per_cycle": {8: 2, 16: 1, 32: 1}}


def depthwise(name="dw", channels=10, size=4, kernel=2) -> Conv2d:
    return Conv2d(name=name, C=channels, H=size, W=size, K=channels, R=kernel, S=kernel, groups=channels)


def test_packed_depthwise_folds_macs_and_pe_positions_by_hand():
    # 2x2 depthwise, 10 channels, 4x4 input: M = 3*3 = 9, K_g = 4, N_g = 1.  A group spans ceil(4/2) = 2 PE
    # rows, so min(8 // 2, 4 // 1) = 4 groups share a fold: two folds of 4 groups, one of the 2 left.
    arch = make_arch(**PAIR_8x4, **{"vector_unit": {"lanes": 1}})
    layer = depthwise()
    problem = gemm_problem(layer, core_model(arch))
    assert grouped.groups_per_fold(problem, core_model(arch).array) == 4
    parts = grouped.packed_parts(problem, 4)
    assert [(p.groups, p.problem.batch, p.problem.N, p.problem.K) for p in parts] == [(4, 2, 4, 16), (2, 1, 2, 8)]
    row = simulate_network(arch, Network("n", (layer,))).layers[0]
    assert row.mapping == "packed x4"
    assert (row.folds, row.tiles) == (3, 3)  # unpacked: 10 folds
    assert row.macs == layer.macs == 9 * 10 * 4  # every MAC once: the diagonal blocks only
    # used PE positions: 4 groups x 2 rows x 1 column per full fold, 2 x 2 x 1 in the last; offered 3 x 8 x 4
    assert math.isclose(row.mapping_efficiency, (2 * 8 + 4) / (3 * 32))
    # DRAM holds the diagonal blocks only: weights 10*4 bytes; the input is read as its tensor (every element of
    # the 4x4 maps is in some 2x2 window): 10 * 4 * 4 bytes, not the 10 * 9 * 4 of its im2col columns
    assert row.dram_read_bytes == 10 * 4 + 10 * 4 * 4
    assert row.dram_write_bytes == 10 * 9


def test_useful_macs_are_the_layer_macs_for_every_part_and_mapping():
    for channels, kernel, size in ((10, 2, 4), (7, 3, 6), (32, 3, 9), (5, 1, 3)):
        arch = make_arch(**PAIR_8x4)
        layer = depthwise(channels=channels, kernel=kernel, size=size)
        model = core_model(arch)
        problem = gemm_problem(layer, model)
        packing = grouped.groups_per_fold(problem, model.array)
        useful = sum(grouped.diagonal_macs(plan_gemm(part.problem, model.array), part)
                     for part in grouped.packed_parts(problem, packing))
        assert useful == layer.macs
        assert simulate_network(arch, Network("n", (layer,))).layers[0].macs == layer.macs


def test_the_chosen_mapping_is_never_slower_than_one_gemm_per_group():
    layers = tuple(depthwise(name=f"dw{i}", channels=c, kernel=k, size=s)
                   for i, (c, k, s) in enumerate(((10, 2, 4), (7, 3, 6), (32, 3, 9), (96, 3, 8), (3, 2, 12))))
    for lanes in (1, 4, 64):
        for dram in ({"ideal": True}, {"bw_bytes_per_cycle": 4, "latency_cycles": 20}):
            arch = make_arch(**PAIR_8x4, vector_unit={"lanes": lanes}, dram=dram)
            chosen = simulate_network(arch, Network("n", layers)).layers
            model = core_model(arch)
            for layer, row in zip(layers, chosen):
                gemm_row = _NetworkRun(model, False)._gemm_row(layer, gemm_problem(layer, model), "n")
                assert row.cycles <= gemm_row.cycles
                assert row.mapping in ("gemm", "vector unit") or row.mapping.startswith("packed x")


def test_vector_unit_cycles_come_from_its_lanes_and_dram():
    layer = depthwise(channels=16, kernel=3, size=10)  # 8x8 outputs per channel, 9 MACs each: 9216 MACs
    arch = make_arch(**PAIR_8x4, vector_unit={"lanes": 4}, dram={"bw_bytes_per_cycle": 8, "latency_cycles": 20})
    model = core_model(arch)
    row = vector_conv_layer_result("dw", "conv2d", gemm_problem(layer, model), layer.vector_unit_work(), model)
    assert row.vector_cycles == 9216 / 4  # one FMA lane-op per MAC, 4 lanes
    read, write = 16 * 100 + 16 * 9, 16 * 64  # input tensor and weights, output tensor (FP8: 1 byte)
    assert (row.dram_read_bytes, row.dram_write_bytes) == (read, write)
    assert row.cycles == 20 + max(9216 / 4, (read + write) / 8)
    assert (row.kind, row.mapping, row.macs) == ("vector", "vector unit", 9216)
    # a slow array and a fast vector unit: the run takes the vector unit, and prices no array MACs
    fast = make_arch(**PAIR_8x4, vector_unit={"lanes": 4096})
    result = simulate_network(fast, Network("n", (layer,)))
    assert result.layers[0].mapping == "vector unit" and result.layers[0].cycles == math.ceil(9216 / 4096)
    assert result.layers[0].energy["energy_mac_pj"] == 0 and result.layers[0].energy["energy_vector_pj"] > 0


def test_mapping_is_a_layers_csv_column(tmp_path):
    arch = make_arch(**PAIR_8x4)
    result = simulate_network(arch, Network("n", (depthwise(), Conv2d(name="c", C=4, H=4, W=4, K=4, R=1, S=1))))
    result.write(tmp_path)
    _, rows = read_run_folder(tmp_path)
    assert [row["mapping"] for row in rows] == [result.layers[0].mapping, "gemm"]


def _codes(rng, shape):
    spec = get_format("float8_e4m3b11fnuz")
    values = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(1, 2, size=shape) * np.exp2(rng.integers(-6, 4, shape))
    return encode(values, spec)


def test_packed_fold_gives_the_grouped_gemm_bits_when_groups_start_on_a_pe_row():
    # 4 groups of K_g = 3 (a 1x3 depthwise), N_g = 1, on an 8x4 pair-mode array: a group spans 2 PE rows,
    # so the block-diagonal weights put group j at k = 4j (one zero pad row each)
    arith = ArrayArithmetic("ws", rows=8, cols=4, pair=True, buffer_format="float32")
    rng = np.random.default_rng(7)
    fmt, groups, k_g, m = "float8_e4m3b11fnuz", 4, 3, 512
    a, w = _codes(rng, (groups, m, k_g)), _codes(rng, (groups, k_g, 1))
    by_group = gemm(a, w, fmt, fmt, arith)[:, :, 0]  # (groups, m): what the datapath runs

    def packed(pad: int):
        a_packed = np.zeros((m, groups * (k_g + pad)), dtype=a.dtype)
        w_packed = np.zeros((groups * (k_g + pad), groups), dtype=w.dtype)
        for j in range(groups):
            lo = j * (k_g + pad)
            a_packed[:, lo:lo + k_g] = a[j]
            w_packed[lo:lo + k_g, j] = w[j, :, 0]
        return gemm(a_packed, w_packed, fmt, fmt, arith).T

    assert np.array_equal(packed(pad=1), by_group)  # off-diagonal zeros add +0: same sums, same bits
    # without the pad row, pair mode would add products of two groups in one PE step: other pairs, other bits
    assert not np.array_equal(packed(pad=0), by_group)
