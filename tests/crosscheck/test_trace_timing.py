"""A layer trace drives the timing model: the same layers and cycles as the workload it was made from, plus
the zero-operand MACs measured on its tensors (which zero gating turns into energy savings)."""

import pytest

from hfp8sim.config.arch import load_arch
from hfp8sim.io import default_arch_path
from hfp8sim.run import simulate_network
from hfp8sim.traces.schema import Trace
from hfp8sim.traces.timing_view import network_from_trace
from hfp8sim.traces.trace import trace_workload
from hfp8sim.workloads import load_workload, resolve_workload


def test_trace_of_a_relu_network_times_like_its_workload_and_counts_zero_operands(tmp_path):
    arch = load_arch(default_arch_path())
    path = trace_workload("tiny_cnn", arch=arch, seed=3).write(tmp_path / "tiny.json")
    traced = network_from_trace(Trace.load(path))
    from_trace = simulate_network(arch, traced)
    from_yaml = simulate_network(arch, load_workload(resolve_workload("tiny_cnn")))
    gemm_t = [layer for layer in from_trace.layers if layer.kind == "gemm"]
    gemm_y = [layer for layer in from_yaml.layers if layer.kind == "gemm"]
    assert [(g.M, g.N, g.K, g.batch, g.cycles) for g in gemm_t] == [(g.M, g.N, g.K, g.batch, g.cycles) for g in gemm_y]
    # post-ReLU activations are about half zeros, so are the MACs that read them
    after_relu = [g for g in gemm_t if g.name != "conv1"]
    assert all(0.2 < g.zero_operand_macs / g.macs < 0.8 for g in after_relu if g.name != "fc")
    gated = sum(g.energy["energy_mac_pj"] for g in gemm_t)
    ungated = sum(g.energy["energy_mac_pj"] for g in gemm_y)
    fraction = sum(g.zero_operand_macs for g in gemm_t) / sum(g.macs for g in gemm_t)
    # mac energy = full MACs + gated ones at a tenth (tech_7nm), all layers at the same pJ per MAC
    assert gated == pytest.approx(ungated * (1 - fraction * (1 - 0.1)), rel=1e-9)
