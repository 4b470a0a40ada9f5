"""Fusion on chip: which layers run in a GEMM's output stage, the DRAM bytes they still move and the time the
group takes; layers alone stream their bytes through the DRAM channel."""

from __future__ import annotations

import dataclasses

import pytest

from hfp8sim.run import core_model, simulate_network
from hfp8sim.timing.fusion import plan_placements
from hfp8sim.timing.vector import streamed_cycles, vector_cycles
from hfp8sim.workloads import Conv2d, Elementwise, Network, Norm, Reshape, Softmax
from hfp8sim.workloads.layers import VectorWork
from tests.timing.conftest import make_arch

SHAPE = (1, 8, 8, 8)  # 512 elements: one FP8 byte each under hfp8


def _conv(name: str, inputs=()):
    return Conv2d(name=name, C=8, H=8, W=8, K=8, R=1, S=1, inputs=inputs)


def _arch(bw: float, **extra):
    return make_arch(**{"array.rows": 8, "array.cols": 8, "dram": {"bw_bytes_per_cycle": bw}, **extra})


def _fits(work: VectorWork) -> bool:
    return True


def test_a_bn_relu_add_chain_runs_in_the_conv_output_stage_with_the_residual_read_once():
    net = Network("n", (_conv("conv0"), _conv("conv", ("conv0",)),
                        Norm(name="bn", kind="batchnorm", shape=SHAPE, inputs=("conv",)),
                        Elementwise(name="relu", kind="relu", shape=SHAPE, inputs=("bn",)),
                        Elementwise(name="add", kind="add", shape=SHAPE, inputs=("relu", "conv0"))))
    arch = _arch(1e6)
    rows = {r.name: r for r in simulate_network(arch, net).layers}
    assert all(rows[name].fused for name in ("bn", "relu", "add"))
    # the tile operand never goes to DRAM; the add's other operand (conv0's 512 bytes) is read once
    assert [(rows[n].dram_read_bytes, rows[n].dram_write_bytes) for n in ("bn", "relu", "add")] == \
        [(0, 0), (0, 0), (512, 0)]
    assert rows["conv"].dram_write_bytes == 512  # the group's last value, written once by the conv's stores
    # with plenty of bandwidth the fused work hides behind the conv: the batch norm is folded into the conv's
    # weights (no lane-ops, it only keeps the chain), then 512 + 512 lane-ops on 8 lanes
    assert rows["bn"].folded and not rows["relu"].folded
    busy = [vector_cycles(net.layers[i].vector_work(), core_model(arch).vector, fp32=False) for i in (2, 3, 4)]
    assert busy == [0, 64, 64]
    assert sum(rows[n].cycles for n in ("bn", "relu", "add")) == max(0, sum(busy) - rows["conv"].cycles)


def test_a_fused_group_takes_at_least_its_dram_bytes_over_the_bandwidth():
    net = Network("n", (_conv("conv0"), _conv("conv", ("conv0",)),
                        Elementwise(name="add", kind="add", shape=SHAPE, inputs=("conv", "conv0"))))
    result = simulate_network(_arch(2.0), net)
    conv, add = result.layers[1], result.layers[2]
    group_bytes = conv.dram_read_bytes + conv.dram_write_bytes + 512
    assert add.dram_read_bytes == 512
    assert conv.cycles + add.cycles == pytest.approx(max(conv.cycles, group_bytes / 2.0))
    assert conv.cycles + add.cycles >= group_bytes / 2.0


def test_a_tile_operand_another_layer_needs_is_written_once_from_the_output_stage():
    net = Network("n", (_conv("conv"), Elementwise(name="relu", kind="relu", shape=SHAPE, inputs=("conv",)),
                        Elementwise(name="add", kind="add", shape=SHAPE, inputs=("relu", "conv"))))
    rows = {r.name: r for r in simulate_network(_arch(1e6), net).layers}
    assert rows["relu"].fused and rows["relu"].dram_write_bytes == 512  # conv's value, also read by the add
    assert rows["add"].fused and rows["add"].dram_read_bytes == 512  # ... read back once as the residual


def test_zero_work_layers_keep_the_chain_and_a_folded_batch_norm_does_not_break_it():
    folded = dataclasses.make_dataclass("Folded", [("name", str), ("producers", tuple)],
                                        namespace={"is_gemm": False,
                                                   "vector_work": lambda self: VectorWork(in_elements=512,
                                                                                          out_elements=512)})
    layers = [_conv("conv"), folded("bn", ("conv",)), Reshape(name="view", shape=SHAPE, inputs=("bn",)),
              Elementwise(name="relu", kind="relu", shape=SHAPE, inputs=("view",)),
              Softmax(name="sm", rows=8, cols=64, inputs=("relu",))]
    placements = plan_placements(layers, fuse=True, fits_on_chip=_fits)
    assert [placements[n].fused_into for n in ("bn", "view", "relu", "sm")] == ["conv", "conv", "conv", None]
    assert placements["sm"].on_chip_input == "relu"  # the group's last value drained through the scratchpad
    assert all(p.fused_into is None for p in plan_placements(layers, fuse=False, fits_on_chip=_fits).values())


def test_a_layer_alone_keeps_its_output_on_chip_only_for_the_next_layer_reading_it_there():
    layers = [_conv("conv"), Softmax(name="sm", rows=8, cols=64, inputs=("conv",)),
              Norm(name="ln", kind="layernorm", shape=(8, 64), inputs=("sm",)),
              Softmax(name="sm2", rows=8, cols=64, inputs=("ln",)), _conv("next", ("sm2",))]
    placements = plan_placements(layers, fuse=True, fits_on_chip=_fits)
    assert [(placements[n].on_chip_input, placements[n].writes_output) for n in ("sm", "ln", "sm2")] == \
        [("conv", False), ("sm", False), ("ln", True)]  # a GEMM reads its input from DRAM
    tight = plan_placements(layers, fuse=True, fits_on_chip=lambda work: False)
    assert all((tight[n].on_chip_input, tight[n].writes_output) == (None, True) for n in ("sm", "ln", "sm2"))


def test_streaming_goes_through_the_channel_latency_and_bandwidth():
    timing = core_model(_arch(10.0, **{"dram.latency_cycles": 100})).timing
    # one piece: latency, 1000 B at 10 B/cycle, 10 busy cycles, latency, 1000 B out
    assert streamed_cycles(1000.0, 1000.0, 10.0, timing, 1) == 410
    # two pieces on two DMA engines: load 0 [100, 150], load 1 [250, 300], store 0 waits for the bus
    # [300, 350], store 1 after its latency [405, 455]
    assert streamed_cycles(1000.0, 1000.0, 10.0, timing, 2) == 455


def test_a_layer_alone_is_never_faster_than_its_bytes_over_the_bandwidth():
    net = Network("n", (Softmax(name="sm", rows=64, cols=64),))
    layer = simulate_network(_arch(2.0, **{"dram.latency_cycles": 50}), net).layers[0]
    assert (layer.dram_read_bytes, layer.dram_write_bytes) == (4096, 4096)
    assert layer.cycles >= 50 + 8192 / 2.0
    assert layer.stall_cycles == layer.cycles - layer.compute_cycles
