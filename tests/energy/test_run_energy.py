"""Energy of whole runs: breakdown sums, FP8 versus FP16, zero gating from a trace, operating points."""

import copy

import pytest

from hfp8sim.config.arch import parse_arch
from hfp8sim.io import default_arch_path, read_yaml
from hfp8sim.run import simulate_network
from hfp8sim.traces.schema import TRACE_FORMAT, Trace, with_digest
from hfp8sim.traces.timing_view import network_from_trace
from hfp8sim.workloads import load_workload, resolve_workload

COMPONENTS = ("mac", "pe_registers", "sram_input", "sram_weight", "sram_output", "dram", "edge", "noc", "vector",
              "static")


def arch(**energy):
    data = copy.deepcopy(read_yaml(default_arch_path()))
    data["energy"] = energy
    return parse_arch(data, "default+energy")


def test_breakdown_sums_to_the_total_per_layer_and_per_network():
    result = simulate_network(arch(), load_workload(resolve_workload("resnet50")))
    for layer in result.layers:
        parts = sum(layer.energy[f"energy_{c}_pj"] for c in COMPONENTS)
        assert parts == pytest.approx(layer.energy["energy_total_pj"], rel=1e-12)
    s = result.summary()
    assert sum(s[f"energy_{c}_pj"] for c in COMPONENTS) == pytest.approx(s["energy_total_pj"], rel=1e-12)
    assert s["tops_per_watt"] == pytest.approx(2 * s["macs"] / (s["energy_total_pj"] * 1e-12) / 1e12)


def test_fp8_against_fp16_per_mac_traffic_and_end_to_end():
    a = arch()
    for workload in ("resnet50", "bert_base_seq128"):
        net = load_workload(resolve_workload(workload))
        fp8, fp16 = simulate_network(a, net, scheme="hfp8").summary(), simulate_network(a, net, scheme="fp16").summary()
        assert fp16["energy_mac_pj"] / fp8["energy_mac_pj"] == pytest.approx(2.5)  # 0.50 / 0.20 pJ per MAC
        assert fp16["compulsory_dram_bytes"] == 2 * fp8["compulsory_dram_bytes"]
        ratio = fp16["energy_total_pj"] / fp8["energy_total_pj"]
        assert 1.4 < ratio < 2.5  # MACs 2.5x, bytes 2x, leakage over ~1.9x the time


def trace_of(zero_fraction):
    """A hand-made layer trace: two GEMMs and a ReLU, with the measured zero-MAC fraction given."""
    gemm = {"op": "matmul", "zero_mac_fraction": zero_fraction}
    return network_from_trace(Trace.from_document({
        "format": TRACE_FORMAT, "workload": "hand", "tensors": "real", "seed": 0, "scheme": "hfp8",
        "arch": {"name": "hand"}, "hfp8sim_version": "test", "layers": [with_digest(entry) for entry in (
            dict(gemm, name="fc1", gemm={"M": 64, "N": 256, "K": 512, "batch": 1}),
            {"name": "relu", "op": "relu", "gemm": None, "shape": [64, 256], "elements": 16384, "ops": 16384,
             "inputs": ["fc1"]},
            dict(gemm, name="fc2", gemm={"M": 64, "N": 128, "K": 256, "batch": 1}, inputs=["relu"]),
        )]}))


def test_zero_gating_lowers_mac_energy_in_proportion_to_the_zero_fraction():
    plain = simulate_network(arch(zero_gating=True), trace_of(0.0))
    half = simulate_network(arch(zero_gating=True), trace_of(0.5))
    ungated = simulate_network(arch(zero_gating=False), trace_of(0.5))
    gated_fraction = 0.1  # tech_7nm: a gated MAC costs a tenth of one
    for p, h, u in zip(plain.layers, half.layers, ungated.layers):
        if p.kind == "gemm":
            assert h.zero_operand_macs == p.macs / 2
            expected = p.energy["energy_mac_pj"] * (0.5 + 0.5 * gated_fraction)
            assert h.energy["energy_mac_pj"] == pytest.approx(expected)
            assert u.energy["energy_mac_pj"] == pytest.approx(p.energy["energy_mac_pj"])


def test_the_efficient_operating_point_scales_dynamic_energy_with_v_squared():
    net = load_workload(resolve_workload("tiny_cnn"))
    peak = simulate_network(arch(operating_point="peak"), net).summary()
    low = simulate_network(arch(operating_point="efficient"), net).summary()
    assert low["energy_mac_pj"] / peak["energy_mac_pj"] == pytest.approx((0.55 / 0.75) ** 2)
    assert low["energy_dram_pj"] == peak["energy_dram_pj"]  # off-chip: its own supply


def test_energy_mistakes_in_an_arch_config_are_one_located_line(tmp_path, capsys):
    from hfp8sim.cli import main

    base = read_yaml(default_arch_path())
    for energy, message in (
        ({"operating_point": "turbo"}, "energy.operating_point: unknown operating point 'turbo' in tech_7nm; "
                                       "known: peak, efficient"),
        ({"dram_kind": "gddr7"}, "energy.dram_kind: unknown DRAM kind 'gddr7' in tech_7nm; known: hbm2"),
        ({"tech": "tech_3nm"}, "energy.tech: "),
        ({"zero_gate": True}, "energy.zero_gate: unknown key"),
    ):
        data = copy.deepcopy(base)
        data["energy"] = energy
        path = tmp_path / "arch.yaml"
        import yaml

        path.write_text(yaml.safe_dump(data))
        assert main(["run", str(path), "tiny_cnn", "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err
