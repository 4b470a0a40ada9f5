"""The functional and timing models agree: the timing model's cycles equal the cycle-stepped reference end
to end, and replaying the tiles in the order the timing model finished them gives the datapath's bits."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.datapath import accumulate
from hfp8sim.datapath.systolic import simulate_gemm
from hfp8sim.formats import decode, encode
from hfp8sim.core import CoreModel
from hfp8sim.run import plan_and_time, simulate_network
from hfp8sim.workloads import MatMul
from tests.timing.conftest import make_arch, one_gemm

FWD = "float8_e4m3b11fnuz"


def operands(rng, m, n, k):
    a = encode(rng.standard_normal((m, k)) * 4, FWD)
    b = encode(rng.standard_normal((k, n)), FWD)
    return a, b


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("pair", [False, True])
def test_timing_model_cycles_equal_the_cycle_stepped_reference(dataflow, overlap, pair):
    rng = np.random.default_rng(1)
    arch = make_arch(**{"array.dataflow": dataflow, "array.overlap_folds": overlap, "array.rows": 3,
                        "array.cols": 4, "array.macs_per_pe_per_cycle": {8: 2 if pair else 1, 16: 1, 32: 1}})
    arith = CoreModel.build(arch).arithmetic
    for m, n, k in [(7, 9, 11), (2, 5, 13), (5, 3, 4)]:  # several folds in every direction
        a, b = operands(rng, m, n, k)
        reference = simulate_gemm(decode(a, FWD).astype(np.float64), decode(b, FWD).astype(np.float64), arith,
                                  overlap=overlap)
        timed = simulate_network(arch, one_gemm(m, n, k))
        assert timed.cycles == reference.total_cycles
        assert np.array_equal(reference.out, accumulate(a, b, FWD, FWD, arith), equal_nan=True)


@pytest.mark.parametrize(("dataflow", "extra"), [
    ("ws", {}), ("is", {}), ("os", {}), ("os", {"array.accumulator": {"chunk": 8}}),
    ("ws", {"array.macs_per_pe_per_cycle": {8: 2, 16: 1, 32: 1}}),
    ("os", {"array.macs_per_pe_per_cycle": {8: 2, 16: 1, 32: 1}}),
    ("ws", {"array.accumulator": {"chain": True}}),
    ("ws", {"array.accumulator": {"buffer_format": "float32"}}),
])
def test_replaying_tiles_in_timing_order_gives_the_datapath_bits(dataflow, extra):
    """Tiny scratchpads force the layer into many tiles, the reduction among them."""
    small = {"size_kib": 0.25, "read_bytes_per_cycle": 64, "write_bytes_per_cycle": 64}
    arch = make_arch(**{"array.dataflow": dataflow, "array.rows": 4, "array.cols": 4, "array.overlap_folds": True,
                        "dram": {"bw_bytes_per_cycle": 8, "latency_cycles": 3},
                        "scratchpads": {"input": small, "weight": small, "output": dict(small, size_kib=1)}, **extra})
    arith = CoreModel.build(arch).arithmetic
    rng = np.random.default_rng(2)
    m, n, k = 37, 29, 90
    a, b = operands(rng, m, n, k)
    schedule, timing = plan_and_time(arch, MatMul(name="mm", M=m, N=n, K=k))
    assert len({t.k for t in schedule.tiles}) > 2  # the reduction really is split
    out = np.zeros((m, n))
    for index in timing.tile_finish_order:
        tile = schedule.tiles[index]
        rows, cols, ks = slice(*tile.m), slice(*tile.n), slice(*tile.k)
        running = None if tile.first_k else out[rows, cols]
        out[rows, cols] = accumulate(a[rows, ks], b[ks, cols], FWD, FWD, arith, running=running)
    whole = accumulate(a, b, FWD, FWD, arith)
    assert np.array_equal(out, whole, equal_nan=True)
    assert sorted(timing.tile_finish_order) == list(range(len(schedule.tiles)))  # every tile exactly once
