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
from hfp8sim.config.tech import SramBank, load_tech, parse_tech
from hfp8sim.errors import ConfigError

from ..config.test_tech import SMALL

PADS = {"input": 1024, "weight": 1024, "output": 1024}
BANKS = {pad: SramBank(64, 128, 128) for pad in PADS}  # 16 banks of a 1 MiB pad, 256 B/cycle over them
# actions that measure time (unit-cycles), not work
TIME = ("cycles", "mac_unit_cycles.fp8", "mac_unit_cycles.fp16", "mac_unit_cycles.fp32", "sram_kib_cycles",
        "vector_lane_cycles", "pe_cycles", "core_cycles")
AREA = {"mac_unit_cycles.fp8": 1.03e-4, "mac_unit_cycles.fp16": 1.80e-4, "mac_unit_cycles.fp32": 7.13e-4,
        "sram_kib_cycles": 3.2e-4, "vector_lane_cycles": 1.35e-3}  # mm^2 per unit (tech_7nm)
CLOCK = {"pe_cycles": 0.05, "vector_lane_cycles": 0.05, "core_cycles": 5.0}  # pJ per unit-cycle (tech_7nm)


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


def run(tech, counts, op_point="peak", zero_gating=True, dram_kind="hbm2", cores=1, pads=PADS, banks=BANKS):
    return energy_of(counts, tech, op_point=op_point, sram_size_kib=pads, sram_banks=banks, dram_kind=dram_kind,
                     zero_gating=zero_gating, cores=cores)


def test_action_and_component_names_are_the_contract():
    assert ACTIONS == (
        "mac_fp8", "mac_fp16", "mac_fp32", "mac_zero_fp8", "mac_zero_fp16", "mac_zero_fp32", "pe_register_bytes",
        "sram_read_bytes.input", "sram_read_bytes.weight", "sram_read_bytes.output",
        "sram_write_bytes.input", "sram_write_bytes.weight", "sram_write_bytes.output",
        "dram_read_bytes", "dram_write_bytes", "edge_bytes", "noc_byte_hops",
        "vector_ops.elementwise_fp16", "vector_ops.elementwise_fp32", "vector_ops.special_fp16",
        "vector_ops.special_fp32", "vector_ops.reduction_fp16", "vector_ops.reduction_fp32", "cycles",
        "mac_unit_cycles.fp8", "mac_unit_cycles.fp16", "mac_unit_cycles.fp32", "sram_kib_cycles",
        "vector_lane_cycles", "pe_cycles", "core_cycles")
    assert COMPONENTS == ("mac", "pe_registers", "sram.input", "sram.weight", "sram.output", "dram", "edge", "noc",
                          "vector", "clock", "static")


@pytest.mark.parametrize("op_point", ["peak", "efficient"])
def test_breakdown_sums_exactly_to_the_total(tech, op_point):
    b = run(tech, every_action(), op_point=op_point)
    assert tuple(b.components) == COMPONENTS and all(v > 0 for v in b.components.values())
    assert sum(b.components.values()) == b.total_pj  # exactly
    assert b.dynamic_pj + b.static_pj == b.total_pj
    assert b.static_pj == b["static"] and b.sram_pj == b["sram.input"] + b["sram.weight"] + b["sram.output"]
    row = b.as_row()
    columns = [f"energy_{name.replace('.', '_')}_pj" for name in COMPONENTS]
    # energy_static_pj is the component
    assert set(row) == {*columns, "energy_dynamic_pj", "energy_on_chip_pj", "energy_total_pj"}
    assert b.on_chip_pj + b["dram"] == pytest.approx(b.total_pj, rel=1e-15) and b.on_chip_pj < b.total_pj
    assert sum(row[c] for c in columns) == row["energy_total_pj"]
    assert set(row) >= {"energy_mac_pj", "energy_sram_input_pj", "energy_static_pj", "energy_total_pj"}
    assert b.as_dict()["components_pj"] == dict(b.components)


def test_every_component_pinned_at_the_peak_point(tech):
    counts = {"mac_fp8": 1000, "mac_fp16": 100, "mac_fp32": 10, "pe_register_bytes": 500,
              "sram_read_bytes.input": 1000, "sram_write_bytes.output": 100, "sram_read_bytes.weight": 10,
              "dram_read_bytes": 100, "dram_write_bytes": 10, "edge_bytes": 400, "noc_byte_hops": 30,
              "vector_ops.elementwise_fp16": 100, "vector_ops.special_fp32": 10, "vector_ops.reduction_fp16": 50,
              "cycles": 1600, "mac_unit_cycles.fp16": 1600 * 1024, "sram_kib_cycles": 1600 * 1536,
              "vector_lane_cycles": 1600 * 32, "pe_cycles": 1600 * 1024, "core_cycles": 1600}
    # banks at grid points of the CACTI table: 8 KiB/64 b, 2 MiB/2048 b, 512 KiB with a 512-bit write port
    banks = {"input": SramBank(8, 64, 64), "weight": SramBank(2048, 2048, 2048), "output": SramBank(512, 256, 512)}
    b = run(tech, counts, banks=banks)
    leak_mm2 = 1024 * 1.80e-4 + 1536 * 3.2e-4 + 32 * 1.35e-3  # an IBM-like core: 0.71904 mm^2
    expected = {"mac": 1000 * 0.2 + 100 * 0.5 + 10 * 1.69, "pe_registers": 500 * 0.02,
                "sram.input": 1000 * 1.727 / 8, "sram.weight": 10 * 629.4 / 256, "sram.output": 100 * 77.42 / 64,
                "dram": 100 * 32 + 10 * 32, "edge": 400 * 0.25, "noc": 30 * 2.0,
                "vector": 100 * 0.64 + 10 * 7.36 + 50 * 0.26,
                "clock": 1600 * (1024 * 0.05 + 32 * 0.05 + 5.0),
                "static": 37.4 * leak_mm2 * 1600 / 1.6}  # mW/mm^2 x mm^2 x ns = pJ; 1600 cycles at 1.6 GHz = 1000 ns
    assert b.components == pytest.approx(expected, rel=1e-12)
    assert leak_mm2 == pytest.approx(0.71904, rel=1e-12) and b.static_pj == pytest.approx(26892.096, rel=1e-12)
    assert (b.op_point, b.voltage_v, b.clock_ghz, b.cycles, b.seconds) == ("peak", 0.75, 1.6, 1600, 1e-6)


def test_legacy_table_keeps_its_per_core_leakage_and_capacity_curve():
    data = copy.deepcopy(SMALL)
    data["static_power_mw_per_core"] = 100
    tech = parse_tech(data)
    b = energy_of({"cycles": 1000, "sram_read_bytes.weight": 10}, tech, op_point="nominal", cores=2,
                  sram_size_kib={"weight": 100}, dram_kind="hbm2", zero_gating=True)
    assert b.static_pj == pytest.approx(100 * 2 * 1000 / 1.0, rel=1e-12) and b["sram.weight"] == 10 * 10.0
    assert b["clock"] == 0.0
    with pytest.raises(ConfigError, match=r"leakage_mw_per_mm2: action 'mac_unit_cycles.fp8' is counted \(5\)"):
        energy_of({"mac_unit_cycles.fp8": 5}, tech, op_point="nominal", dram_kind="hbm2", zero_gating=True)


def test_doubling_every_count_doubles_dynamic_energy(tech):
    one = run(tech, every_action(1.0))
    two = run(tech, every_action(2.0))
    for name in COMPONENTS[:-1]:
        assert two[name] == pytest.approx(2 * one[name], rel=1e-12)
    assert two.dynamic_pj == pytest.approx(2 * one.dynamic_pj, rel=1e-12)


def test_static_energy_scales_with_time_not_with_work(tech):
    base = every_action()
    more_work = {**every_action(3.0), **{name: base[name] for name in TIME}}
    longer = {**base, **{name: 2 * base[name] for name in TIME}}
    b, w, t = run(tech, base), run(tech, more_work), run(tech, longer)
    assert w.static_pj == b.static_pj and w["clock"] == b["clock"]
    assert w.dynamic_pj - w["clock"] == pytest.approx(3 * (b.dynamic_pj - b["clock"]), rel=1e-12)
    assert t.static_pj == pytest.approx(2 * b.static_pj, rel=1e-12) and t["clock"] == pytest.approx(2 * b["clock"])
    assert t.dynamic_pj - t["clock"] == pytest.approx(b.dynamic_pj - b["clock"], rel=1e-12)
    # leakage = area x density x time, each unit on its own: 1.6e6 unit-cycles at 1.6 GHz = 1e6 ns
    for action, area in AREA.items():
        assert run(tech, {action: 1.6e6}).static_pj == pytest.approx(area * 37.4 * 1e6, rel=1e-12)
    assert run(tech, {"mac_fp8": 1e6, "cycles": 1e6}).static_pj == 0.0  # elapsed cycles alone carry no leakage
    for action, pj in CLOCK.items():
        assert run(tech, {action: 1e6})["clock"] == pytest.approx(pj * 1e6, rel=1e-12)


def test_voltage_scaling_between_operating_points(tech):
    counts = every_action()
    peak, eff = run(tech, counts, op_point="peak"), run(tech, counts, op_point="efficient")
    logic = (0.55 / 0.75) ** 2
    sram = (0.70 / 0.95) ** 2
    for name in ("mac", "pe_registers", "edge", "noc", "vector", "clock"):
        assert eff[name] == pytest.approx(logic * peak[name], rel=1e-12)
    for pad in ("input", "weight", "output"):
        assert eff[f"sram.{pad}"] == pytest.approx(sram * peak[f"sram.{pad}"], rel=1e-12)
    assert eff["dram"] == peak["dram"]  # off-chip, its own supply
    # static: power linear in V, time = cycles / clock
    assert eff.static_pj == pytest.approx(peak.static_pj * (0.55 / 0.75) * (1.6 / 1.0), rel=1e-12)
    area_cycles = sum(counts[action] * area for action, area in AREA.items())
    assert eff.static_pj == pytest.approx(37.4 * area_cycles * (0.55 / 0.75) / 1.0, rel=1e-12)


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
    with pytest.raises(ConfigError, match=r"partial\.yaml: sram_access_pj: action 'sram_write_bytes.output' is "
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
    with pytest.raises(ConfigError, match=r"sram_banks has no bank for scratchpad 'output'"):
        run(tech, {"sram_read_bytes.output": 1}, banks={"input": SramBank(64, 128, 128)})
    with pytest.raises(ConfigError, match=r"scratchpad bank size \(KiB\) must be a positive number, not 0"):
        run(tech, {"sram_read_bytes.output": 1}, banks={"output": SramBank(0, 128, 128)})
    with pytest.raises(ConfigError, match=r"sram_size_kib has no size for scratchpad 'output'"):
        energy_of({"sram_read_bytes.output": 1}, parse_tech(SMALL), op_point="nominal", sram_size_kib={"input": 64},
                  dram_kind="hbm2", zero_gating=True)
    with pytest.raises(ValueError, match="cores must be an integer >= 1"):
        run(tech, {"cycles": 1}, cores=0)


def test_calibration_example_of_the_docs(tech):
    """docs/energy.md: one IBM-like core cycle (1024 PEs x 2 FP8 MACs), 3 B of PE registers per MAC, 1 B of input
    and 1 B of weight per 32 MACs from 64 KiB banks with 128-bit ports, 1/16 B of edge traffic per MAC; 1024 FP16
    MAC units, 1.5 MiB of SRAM and 32 lanes leaking and clocked.  The chip measures 1.9 (peak) and 3.5
    (efficient) TFLOPS/W; this on-chip model comes out well above both."""
    macs, cycles = 2048e6, 1e6
    counts = {"mac_fp8": macs, "pe_register_bytes": 3 * macs, "sram_read_bytes.input": macs / 32,
              "sram_read_bytes.weight": macs / 32, "edge_bytes": macs / 16, "cycles": cycles,
              "mac_unit_cycles.fp16": 1024 * cycles, "sram_kib_cycles": 1536 * cycles,
              "vector_lane_cycles": 32 * cycles, "pe_cycles": 1024 * cycles, "core_cycles": cycles}
    peak, eff = run(tech, counts, op_point="peak"), run(tech, counts, op_point="efficient")
    sram_per_byte = tech.sram_access_pj(64, 128) / 16  # between the 32 and 128 KiB points, log-log
    assert sram_per_byte == pytest.approx((6.105 * (12.05 / 6.105) ** 0.5) / 16, rel=1e-12)
    clock = 1024 * 0.05 + 32 * 0.05 + 5.0  # pJ per cycle
    leak = 37.4 * (1024 * 1.80e-4 + 1536 * 3.2e-4 + 32 * 1.35e-3) / 1.6  # pJ per cycle at 1.6 GHz
    per_mac = 0.2 + 0.06 + 2 * sram_per_byte / 32 + 0.25 / 16 + (clock + leak) / 2048
    assert peak.total_pj / macs == pytest.approx(per_mac, rel=1e-12)
    assert peak.total_pj / macs == pytest.approx(0.3456, abs=1e-4)
    assert eff.total_pj / macs == pytest.approx(0.1912, abs=1e-4)
    assert tflops_per_watt(macs, peak) == pytest.approx(5.79, abs=0.01)  # published: ~1.9
    assert tflops_per_watt(macs, eff) == pytest.approx(10.46, abs=0.01)  # published: 3.5-3.58
