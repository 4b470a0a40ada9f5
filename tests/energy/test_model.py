"""energy_of: counted actions x the per-action table, pinned with exact numbers."""

import copy

import pytest
import yaml

from hfp8sim.energy import (
    ACTIONS,
    COMPONENTS,
    EnergyBreakdown,
    average_power_w,
    energy_of,
    sum_breakdowns,
    tflops_per_watt,
    tops_per_watt,
)
from hfp8sim.config.tech import load_tech, parse_tech
from hfp8sim.errors import ConfigError

from ..config.test_tech import SMALL

PADS = {"input": 1024, "weight": 1024, "output": 1024}


@pytest.fixture(scope="module")
def tech():
    return load_tech()


def every_action(scale: float = 1.0) -> dict[str, float]:
    """Every action counted (zero MACs a subset of the MACs), distinct magnitudes."""
    counts = {name: (i + 1) * 1000.0 * scale for i, name in enumerate(ACTIONS)}
    for width in ("fp8", "fp16", "fp32"):
        counts[f"mac_{width}"] = 1e6 * scale
        counts[f"mac_zero_{width}"] = 2.5e5 * scale
    return counts


def run(tech, counts, op_point="peak", zero_gating=True, dram_kind="hbm2", cores=1, pads=PADS):
    return energy_of(counts, tech, op_point=op_point, sram_size_kib=pads, dram_kind=dram_kind,
                     zero_gating=zero_gating, cores=cores)


def test_action_and_component_names_are_the_contract():
    assert ACTIONS == (
        "mac_fp8", "mac_fp16", "mac_fp32", "mac_zero_fp8", "mac_zero_fp16", "mac_zero_fp32", "pe_register_bytes",
        "sram_read_bytes.input", "sram_read_bytes.weight", "sram_read_bytes.output",
        "sram_write_bytes.input", "sram_write_bytes.weight", "sram_write_bytes.output",
        "dram_read_bytes", "dram_write_bytes", "edge_bytes", "noc_byte_hops",
        "vector_ops.elementwise_fp16", "vector_ops.elementwise_fp32", "vector_ops.special_fp16",
        "vector_ops.special_fp32", "vector_ops.reduction_fp16", "vector_ops.reduction_fp32", "cycles")
    assert COMPONENTS == ("mac", "pe_registers", "sram.input", "sram.weight", "sram.output", "dram", "edge", "noc",
                          "vector", "static")


@pytest.mark.parametrize("op_point", ["peak", "efficient"])
def test_breakdown_sums_exactly_to_the_total(tech, op_point):
    b = run(tech, every_action(), op_point=op_point)
    assert tuple(b.components) == COMPONENTS and all(v > 0 for v in b.components.values())
    assert sum(b.components.values()) == b.total_pj  # exactly
    assert b.dynamic_pj + b.static_pj == b.total_pj
    assert b.static_pj == b["static"] and b.sram_pj == b["sram.input"] + b["sram.weight"] + b["sram.output"]
    row = b.as_row()
    columns = [f"energy_{name.replace('.', '_')}_pj" for name in COMPONENTS]
    assert set(row) == {*columns, "energy_dynamic_pj", "energy_total_pj"}  # energy_static_pj is the component
    assert sum(row[c] for c in columns) == row["energy_total_pj"]
    assert set(row) >= {"energy_mac_pj", "energy_sram_input_pj", "energy_static_pj", "energy_total_pj"}
    assert b.as_dict()["components_pj"] == dict(b.components)


def test_every_component_pinned_at_the_peak_point(tech):
    counts = {"mac_fp8": 1000, "mac_fp16": 100, "mac_fp32": 10, "pe_register_bytes": 500,
              "sram_read_bytes.input": 1000, "sram_write_bytes.output": 100, "sram_read_bytes.weight": 10,
              "dram_read_bytes": 100, "dram_write_bytes": 10, "edge_bytes": 400, "noc_byte_hops": 30,
              "vector_ops.elementwise_fp16": 100, "vector_ops.special_fp32": 10, "vector_ops.reduction_fp16": 50,
              "cycles": 1600}
    b = run(tech, counts, pads={"input": 64, "weight": 2048, "output": 4096})
    expected = {"mac": 1000 * 0.2 + 100 * 0.5 + 10 * 1.69, "pe_registers": 500 * 0.02,
                "sram.input": 1000 * 0.6, "sram.weight": 10 * 2.0, "sram.output": 100 * 2.2,
                "dram": 100 * 32 + 10 * 32, "edge": 400 * 0.25, "noc": 30 * 1.0,
                "vector": 100 * 0.64 + 10 * 7.36 + 50 * 0.26,
                "static": 340 * 1600 / 1.6}  # mW x ns = pJ; 1600 cycles at 1.6 GHz = 1000 ns
    assert b.components == pytest.approx(expected, rel=1e-12)
    assert b.static_pj == pytest.approx(340_000.0, rel=1e-12)
    assert (b.op_point, b.voltage_v, b.clock_ghz, b.cycles, b.seconds) == ("peak", 0.75, 1.6, 1600, 1e-6)


def test_doubling_every_count_doubles_dynamic_energy(tech):
    one = run(tech, every_action(1.0))
    two = run(tech, every_action(2.0))
    for name in COMPONENTS[:-1]:
        assert two[name] == pytest.approx(2 * one[name], rel=1e-12)
    assert two.dynamic_pj == pytest.approx(2 * one.dynamic_pj, rel=1e-12)


def test_static_energy_scales_with_time_not_with_work(tech):
    base = every_action()
    more_work = {**every_action(3.0), "cycles": base["cycles"]}
    longer = {**base, "cycles": 2 * base["cycles"]}
    b, w, t = run(tech, base), run(tech, more_work), run(tech, longer)
    assert w.static_pj == b.static_pj and w.dynamic_pj > 2.9 * b.dynamic_pj
    assert t.static_pj == pytest.approx(2 * b.static_pj, rel=1e-12) and t.dynamic_pj == b.dynamic_pj
    assert run(tech, {"cycles": 1e6}, cores=4).static_pj == pytest.approx(4 * 340 * 1e6 / 1.6, rel=1e-12)
    assert run(tech, {"mac_fp8": 1e6}).static_pj == 0.0  # no time, no leakage


def test_voltage_scaling_between_operating_points(tech):
    counts = every_action()
    peak, eff = run(tech, counts, op_point="peak"), run(tech, counts, op_point="efficient")
    logic = (0.55 / 0.75) ** 2
    sram = (0.70 / 0.95) ** 2
    for name in ("mac", "pe_registers", "edge", "noc", "vector"):
        assert eff[name] == pytest.approx(logic * peak[name], rel=1e-12)
    for pad in ("input", "weight", "output"):
        assert eff[f"sram.{pad}"] == pytest.approx(sram * peak[f"sram.{pad}"], rel=1e-12)
    assert eff["dram"] == peak["dram"]  # off-chip, its own supply
    # static: power linear in V, time = cycles / clock
    assert eff.static_pj == pytest.approx(peak.static_pj * (0.55 / 0.75) * (1.6 / 1.0), rel=1e-12)
    assert eff.static_pj == pytest.approx(340 * (0.55 / 0.75) * counts["cycles"] / 1.0, rel=1e-12)


def test_sram_shares_the_logic_rail_without_its_own_voltage():
    data = copy.deepcopy(SMALL)
    data["operating_points"]["low"] = {"clock_ghz": 0.5, "voltage_v": 0.5}
    data["static_power_mw_per_core"] = 100
    data["static_voltage_exponent"] = 2
    tech = parse_tech(data)
    counts = {"mac_fp8": 10, "sram_read_bytes.weight": 10, "cycles": 1000}
    nominal = run(tech, counts, op_point="nominal", pads={"weight": 10})
    low = run(tech, counts, op_point="low", pads={"weight": 10})
    assert nominal["sram.weight"] == pytest.approx(10 * 10 ** 0.5, rel=1e-12)  # sqrt(10) pJ/B at 10 KiB
    assert low["sram.weight"] == pytest.approx(0.25 * nominal["sram.weight"], rel=1e-12)
    assert low["mac"] == pytest.approx(0.25 * 10 * 0.2, rel=1e-12)
    assert low.static_pj == pytest.approx(100 * 0.5 ** 2 * 1000 / 0.5, rel=1e-12)  # exponent 2


def test_zero_gating_lowers_mac_energy_in_proportion(tech):
    def mac(total, zeros, gating, width="fp8"):
        return run(tech, {f"mac_{width}": total, f"mac_zero_{width}": zeros}, zero_gating=gating)["mac"]

    assert mac(1000, 0, True) == pytest.approx(200.0, rel=1e-12)
    assert mac(1000, 400, False) == pytest.approx(200.0, rel=1e-12)  # no gating: zeros cost a full MAC
    assert mac(1000, 400, True) == pytest.approx((600 + 400 * 0.1) * 0.2, rel=1e-12)  # 128 pJ
    assert mac(1000, 500, True) == pytest.approx(110.0, rel=1e-12)  # 50% zeros: 1 - 0.5 * (1 - 0.1) = 0.55
    assert mac(1000, 1000, True) == pytest.approx(20.0, rel=1e-12)
    assert mac(1000, 1000, True, "fp16") == pytest.approx(50.0, rel=1e-12)
    assert mac(1000, 250, True, "fp32") == pytest.approx((750 + 25) * 1.69, rel=1e-12)
    # linear in the zero fraction z: E = E_full * (1 - z * (1 - 0.1))
    for z in (0.0, 0.1, 0.37, 0.9):
        assert mac(1e6, z * 1e6, True) == pytest.approx(0.2e6 * (1 - 0.9 * z), rel=1e-12)


def test_fp16_mac_costs_two_and_a_half_fp8_macs(tech):
    for op_point in ("peak", "efficient"):
        fp8 = run(tech, {"mac_fp8": 1e9}, op_point=op_point)["mac"]
        fp16 = run(tech, {"mac_fp16": 1e9}, op_point=op_point)["mac"]
        assert fp16 / fp8 == pytest.approx(2.5, rel=1e-12)
    assert run(tech, {"mac_fp8": 1e9})["mac"] == pytest.approx(0.2e9, rel=1e-12)


def test_energy_is_additive_over_layers(tech):
    a, b = every_action(1.0), every_action(0.3)
    a["dram_read_bytes"] = 7e6
    both = {name: a[name] + b[name] for name in ACTIONS}
    total = sum_breakdowns([run(tech, a), run(tech, b)])
    whole = run(tech, both)
    assert total.components == pytest.approx(whole.components, rel=1e-12)
    assert total.cycles == whole.cycles and sum(total.components.values()) == total.total_pj
    with pytest.raises(ValueError, match="different operating points"):
        run(tech, a) + run(tech, b, op_point="efficient")
    with pytest.raises(ValueError, match="at least one"):
        sum_breakdowns([])


def test_dram_kinds(tech):
    counts = {"dram_read_bytes": 1000, "dram_write_bytes": 100}
    assert {kind: run(tech, counts, dram_kind=kind)["dram"] for kind in ("hbm2", "hbm3", "lpddr4", "ddr4")} == \
        pytest.approx({"hbm2": 35200.0, "hbm3": 30800.0, "lpddr4": 70400.0, "ddr4": 176000.0}, rel=1e-12)
    small = parse_tech(SMALL)
    assert run(small, counts, op_point="nominal")["dram"] == pytest.approx(1000 * 32 + 100 * 40, rel=1e-12)


def test_power_and_efficiency_helpers(tech):
    b = EnergyBreakdown.from_components({"mac": 4e5, "static": 6e5}, op_point="x", voltage_v=1, clock_ghz=1)
    assert b.total_pj == 1e6
    assert average_power_w(b, cycles=1e6, clock_ghz=1.0) == pytest.approx(1e-3)  # 1e6 pJ in 1e6 ns = 1 mW
    assert average_power_w(b, cycles=1e6, clock_ghz=2.0) == pytest.approx(2e-3)
    assert tops_per_watt(1e6, b) == pytest.approx(2.0) and tflops_per_watt(1e6, b) == pytest.approx(2.0)
    # 0.2 pJ per FP8 MAC alone: 10 TFLOPS/W at the nominal voltage
    assert tflops_per_watt(1e9, run(tech, {"mac_fp8": 1e9})) == pytest.approx(10.0, rel=1e-12)
    with pytest.raises(ValueError):
        average_power_w(b, cycles=0, clock_ghz=1.0)
    with pytest.raises(ValueError, match="unknown energy components"):
        EnergyBreakdown.from_components({"sram": 1.0}, op_point="x", voltage_v=1, clock_ghz=1)


# --- mistakes ---------------------------------------------------------------------------------------------------

def test_missing_action_used_by_the_counts_names_action_and_file(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    tech = load_tech(path)
    ok = run(tech, {"mac_fp8": 10, "mac_fp32": 0, "noc_byte_hops": 0}, op_point="nominal")  # zero counts are fine
    assert ok["mac"] == pytest.approx(2.0)
    cases = {
        "mac_fp32": "mac_pj.fp32: action 'mac_fp32' is counted (5) but the tech table has no energy for it "
                    "(add mac_pj.fp32)",
        "noc_byte_hops": "noc_pj_per_byte_hop: action 'noc_byte_hops' is counted (5) but the tech table has no "
                         "energy for it (add noc_pj_per_byte_hop)",
        "vector_ops.special_fp16": "vector_pj.special_fp16: action 'vector_ops.special_fp16' is counted (5)",
        "cycles": "static_power_mw_per_core: action 'cycles' is counted (5)",
        "pe_register_bytes": "pe_register_pj_per_byte: action 'pe_register_bytes' is counted (5)",
        "edge_bytes": "edge_pj_per_byte: action 'edge_bytes' is counted (5)",
    }
    for action, message in cases.items():
        with pytest.raises(ConfigError) as info:
            run(tech, {action: 5}, op_point="nominal")
        assert str(info.value).startswith(f"{path}: {message}")
    with pytest.raises(ConfigError, match=r"partial\.yaml: zero_gated_fraction: action 'mac_zero_fp8' is counted"):
        run(tech, {"mac_fp8": 5, "mac_zero_fp8": 2}, op_point="nominal", zero_gating=True)
    assert run(tech, {"mac_fp8": 5, "mac_zero_fp8": 2}, op_point="nominal", zero_gating=False)["mac"] == \
        pytest.approx(1.0)
    no_sram = {k: v for k, v in SMALL.items() if k != "sram_pj_per_byte"}
    path.write_text(yaml.safe_dump(no_sram))
    with pytest.raises(ConfigError, match=r"partial\.yaml: sram_pj_per_byte: action 'sram_write_bytes.output' is "
                                          r"counted \(3\)"):
        run(load_tech(path), {"sram_write_bytes.output": 3}, op_point="nominal")


def test_unknown_operating_point_lists_the_known_ones(tech):
    with pytest.raises(ConfigError) as info:
        run(tech, {"mac_fp8": 1}, op_point="turbo")
    assert str(info.value) == \
        f"{tech.source}: operating_points: unknown operating point 'turbo'; known: peak, efficient"


def test_unknown_dram_kind_lists_the_known_ones(tech):
    with pytest.raises(ConfigError) as info:
        run(tech, {"mac_fp8": 1}, dram_kind="gddr6")
    assert str(info.value) == f"{tech.source}: dram_pj_per_byte: unknown DRAM kind 'gddr6'; known: hbm2, hbm3, " \
                              "lpddr4, ddr4"


def test_bad_counts_are_rejected(tech):
    with pytest.raises(ConfigError, match=r"unknown action 'mac_fp9'.*\(actions: mac_fp8, mac_fp16"):
        run(tech, {"mac_fp9": 1})
    with pytest.raises(ConfigError, match=r"unknown action 'sram_read_bytes'"):
        run(tech, {"sram_read_bytes": 1})
    for bad in (-1, float("nan"), float("inf"), "3", True):
        with pytest.raises(ConfigError, match=r"action 'edge_bytes': count must be a finite number >= 0"):
            run(tech, {"edge_bytes": bad})
    with pytest.raises(ConfigError, match=r"'mac_zero_fp16' \(11\) exceeds 'mac_fp16' \(10\)"):
        run(tech, {"mac_fp16": 10, "mac_zero_fp16": 11})
    with pytest.raises(ConfigError, match=r"sram_size_kib has no size for scratchpad 'output'"):
        run(tech, {"sram_read_bytes.output": 1}, pads={"input": 64})
    with pytest.raises(ConfigError, match=r"scratchpad size_kib must be a positive number, not 0"):
        run(tech, {"sram_read_bytes.output": 1}, pads={"output": 0})
    with pytest.raises(ValueError, match="cores must be an integer >= 1"):
        run(tech, {"cycles": 1}, cores=0)


def test_calibration_example_of_the_docs(tech):
    """docs/energy.md: one IBM-sized core cycle (2048 FP8 MACs), 3 B of PE registers per MAC, 1 B of input and
    1 B of weight per 32 MACs from 1 MiB pads; the chip measures 1.9 (peak) and 3.5 (efficient) TFLOPS/W."""
    macs = 2048e6
    counts = {"mac_fp8": macs, "pe_register_bytes": 3 * macs, "sram_read_bytes.input": macs / 32,
              "sram_read_bytes.weight": macs / 32, "edge_bytes": macs / 16, "cycles": 1e6}
    peak, eff = run(tech, counts, op_point="peak"), run(tech, counts, op_point="efficient")
    assert peak.total_pj / macs == pytest.approx(0.2 + 0.06 + 2 * 1.5720062 / 32 + 0.25 / 16 + 340 / 1.6 / 2048,
                                                 rel=1e-7)
    assert peak.total_pj / macs == pytest.approx(0.4776, abs=1e-4)
    assert eff.total_pj / macs == pytest.approx(0.3233, abs=1e-4)
    assert tflops_per_watt(macs, peak) == pytest.approx(4.19, abs=0.01)
    assert tflops_per_watt(macs, eff) == pytest.approx(6.19, abs=0.01)
    assert average_power_w(peak, 1e6, 1.6) == pytest.approx(1.565, abs=1e-3)
