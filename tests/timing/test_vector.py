"""The vector unit: lane operations per layer type, cycles, fusion with the producing GEMM, DRAM spills."""

import pytest

from hfp8sim.run import simulate_network
from hfp8sim.core.model import VectorUnitSpec
from hfp8sim.timing.vector import vector_cycles
from hfp8sim.workloads import Conv2d, Elementwise, MatMul, Network, Norm, Softmax
from tests.timing.conftest import make_arch


def test_lane_operations_by_layer_type():
    softmax = Softmax(name="sm", rows=4, cols=8).vector_work()
    assert (softmax.elementwise, softmax.special, softmax.reduction) == (64, 32 + 4, 64)
    ln = Norm(name="ln", kind="layernorm", shape=(4, 8)).vector_work()
    assert (ln.elementwise, ln.special, ln.reduction) == (96, 4, 64)
    gelu = Elementwise(name="g", kind="gelu", shape=(4, 8)).vector_work()
    assert (gelu.elementwise, gelu.special, gelu.fusable) == (96, 32, False)
    relu = Elementwise(name="r", kind="relu", shape=(4, 8)).vector_work()
    assert (relu.elementwise, relu.special, relu.fusable) == (32, 0, True)


def test_cycles_follow_lanes_special_cost_and_precision():
    unit = VectorUnitSpec(lanes=16, special_op_cycles=4, fp32_rate=0.5)
    work = Softmax(name="sm", rows=4, cols=8).vector_work()  # 64 + 64 lane-ops + 36 specials * 4
    assert vector_cycles(work, unit, fp32=False) == 17  # ceil(272 / 16)
    assert vector_cycles(work, unit, fp32=True) == 34


def test_fused_relu_hides_behind_its_conv_and_a_softmax_does_not():
    arch = make_arch(**{"array.rows": 8, "array.cols": 8})
    conv = Conv2d(name="conv", C=8, H=8, W=8, K=8, R=3, S=3, padding=1)
    net = Network("n", (conv, Elementwise(name="relu", kind="relu", shape=(1, 8, 8, 8), inputs=("conv",)),
                        MatMul(name="fc", M=8, N=64, K=64),
                        Softmax(name="sm", rows=8, cols=64, inputs=("fc",))))
    result = simulate_network(arch, net)
    conv_r, relu_r, _, sm_r = result.layers
    assert relu_r.fused and relu_r.cycles == 0 and relu_r.vector_cycles == 64  # 512 elements / 8 lanes
    # 2*512 elementwise + 2*512 reduction + (512 exps + 8 reciprocals) * 4 cycles, over 8 lanes
    assert not sm_r.fused and sm_r.cycles == sm_r.vector_cycles == (1024 + 1024 + 520 * 4) / 8
    assert result.cycles == sum(layer.cycles for layer in result.layers)


def test_a_tensor_larger_than_the_output_scratchpad_streams_through_dram():
    pad = {"size_kib": 2, "read_bytes_per_cycle": 1e9, "write_bytes_per_cycle": 1e9}
    arch = make_arch(**{"array.rows": 4, "array.cols": 4, "dram": {"bw_bytes_per_cycle": 2.0},
                        "scratchpads": {"input": pad, "weight": pad, "output": pad}, "vector_unit": {"lanes": 1024}})
    net = Network("n", (Softmax(name="sm", rows=64, cols=64),))
    layer = simulate_network(arch, net).layers[0]
    assert (layer.dram_read_bytes, layer.dram_write_bytes) == (4096, 4096)  # one FP8 byte per element each way
    assert layer.cycles == pytest.approx(8192 / 2.0)  # bandwidth-bound: 8 KiB over 2 B/cycle
