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
              "clock", "static")
AREA_MM2 = {8: 1.03e-4, 16: 1.80e-4, "kib": 3.2e-4, "lane": 1.35e-3}  # tech_7nm
LEAKAGE_MW_PER_MM2 = 37.4


def arch(base=None, **energy):
    data = copy.deepcopy(read_yaml(base or default_arch_path()))
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
    # the chip's own energy leaves out exactly the DRAM charge
    assert s["energy_on_chip_pj"] + s["energy_dram_pj"] == pytest.approx(s["energy_total_pj"], rel=1e-12)
    assert s["on_chip_tflops_per_watt"] == pytest.approx(2 * s["macs"] / s["energy_on_chip_pj"], rel=1e-12)
    assert s["on_chip_tflops_per_watt"] > s["tflops_per_watt"]


def leakage_pj_per_cycle(result):
    """Leakage and clock of a run, per elapsed cycle (the arch's clock is the operating point's: 1.6 GHz)."""
    s = result.summary()
    return s["energy_static_pj"] / s["cycles"], s["energy_clock_pj"] / s["cycles"]


@pytest.mark.parametrize("rows, cols, lanes, bits, units", [
    (128, 128, None, [8, 16], 1),  # the default core: FP16 datapath shared by the FP8 pairs
    (64, 32, 8, [8, 16], 1),
    (64, 32, 8, [8], 2),  # an FP8-only PE doing two FP8 MACs per cycle holds two FP8 units
])
def test_leakage_and_clock_scale_with_the_array_the_sram_and_the_lanes(rows, cols, lanes, bits, units):
    data = copy.deepcopy(read_yaml(default_arch_path()))
    data["array"].update(rows=rows, cols=cols)
    data["vector_unit"] = {"lanes": lanes} if lanes else {}
    data["energy"] = {"pe_operand_bits": bits}
    result = simulate_network(parse_arch(data, "scaled"), load_workload(resolve_workload("tiny_cnn")))
    pes, lanes = rows * cols, lanes or cols  # lanes default to the array's columns
    unit_area = AREA_MM2[max(bits)] * units
    area = pes * unit_area + 3 * 1024 * AREA_MM2["kib"] + lanes * AREA_MM2["lane"]  # three 1 MiB pads
    static, clock = leakage_pj_per_cycle(result)
    assert static == pytest.approx(LEAKAGE_MW_PER_MM2 * area / 1.6, rel=1e-9)  # mW x ns per cycle at 1.6 GHz
    assert clock == pytest.approx(pes * 0.05 + lanes * 0.05 + 5.0, rel=1e-9)


def test_leakage_is_the_same_per_cycle_for_hfp8_and_fp16_on_hardware_built_for_both():
    a, net = arch(pe_operand_bits=[8, 16]), load_workload(resolve_workload("tiny_cnn"))
    hfp8, fp16 = simulate_network(a, net, scheme="hfp8"), simulate_network(a, net, scheme="fp16")
    assert leakage_pj_per_cycle(hfp8) == pytest.approx(leakage_pj_per_cycle(fp16), rel=1e-12)
    # without pe_operand_bits the array is built for the scheme it runs: FP8 pairs vs one FP16 unit per PE
    b = arch()
    ratio = leakage_pj_per_cycle(simulate_network(b, net, scheme="hfp8"))[0] / \
        leakage_pj_per_cycle(simulate_network(b, net, scheme="fp16"))[0]
    pe8, pe16, rest = 16384 * 2 * 1.03e-4, 16384 * 1.80e-4, 3072 * 3.2e-4 + 128 * 1.35e-3
    assert ratio == pytest.approx((pe8 + rest) / (pe16 + rest), rel=1e-9)


def test_scratchpad_banks_come_from_size_banks_and_port_bandwidth():
    from hfp8sim.core.model import CoreModel

    banks = CoreModel.build(arch()).scratchpad_banks  # 1 MiB pads of 16 banks; 256 B/cycle in, 512 out
    assert banks == {"input": (64, 128, 128), "weight": (64, 128, 128), "output": (64, 256, 256)}


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
