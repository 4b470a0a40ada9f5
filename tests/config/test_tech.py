"""Tech tables: the shipped file loads with the energy_facts.md §0 defaults; every mistake is one located error."""

import copy
import math
import pickle

import pytest
import yaml

from hfp8sim.config.tech import DEFAULT_TECH, load_tech, parse_tech, shipped_tech_files
from hfp8sim.errors import ConfigError

SMALL = {
    "name": "small",
    "nominal_voltage_v": 1.0,
    "mac_pj": {"fp8": 0.2, "fp16": {"value": 0.5, "source": "test"}},
    "sram_pj_per_byte": {"points": [{"size_kib": 1, "read": 1.0, "write": 2.0},
                                    {"size_kib": 100, "read": 10.0, "write": 20.0},
                                    {"size_kib": 10000, "read": 20.0, "write": 40.0}]},
    "dram_pj_per_byte": {"hbm2": {"read": 32, "write": 40}},
    "operating_points": {"nominal": {"clock_ghz": 1.0, "voltage_v": 1.0}},
}


def write(tmp_path, data, name="tech.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def error_of(tmp_path, data) -> str:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_tech(path)
    return str(info.value)


# --- the shipped table -------------------------------------------------------------------------------------------

def test_shipped_tech_file_loads_with_the_recommended_defaults(project_root):
    path = project_root / "arch_configs" / "tech" / "tech_7nm.yaml"
    assert shipped_tech_files()[DEFAULT_TECH] == path
    tech = load_tech(path)
    by_name = load_tech("tech_7nm")
    assert by_name.model == tech.model and by_name.source == str(path)
    assert pickle.loads(pickle.dumps(tech)).model == tech.model  # sweeps send tables to worker processes
    m = tech.model
    assert (m.name, m.node_nm, m.nominal_voltage_v, m.nominal_sram_voltage_v) == ("tech_7nm", 7, 0.75, 0.95)
    assert (m.mac_pj.fp8.value, m.mac_pj.fp16.value, m.mac_pj.fp32.value) == (0.20, 0.50, 1.69)
    assert m.mac_pj.fp16.value / m.mac_pj.fp8.value == pytest.approx(2.5, rel=1e-12)
    assert m.zero_gated_fraction.value == 0.10
    assert m.pe_register_pj_per_byte.value == 0.02
    assert m.sram_pj_per_byte is None and m.static_power_mw_per_core is None  # migrated to the models below
    grid = {(p.bank_kib, p.port_bits): (p.read, p.write) for p in m.sram_access_pj.points}
    assert len(grid) == 5 * 6  # 8 KiB .. 2 MiB x 64 .. 2048 bits
    # the CACTI 7 22 nm points of energy_facts.md §4.3 (8 KB/64 b, 32 KB/64 b, 2 MB/512 b, 2 MB/2048 b)
    assert (grid[(8, 64)][0], grid[(32, 64)][0], grid[(2048, 512)][0], grid[(2048, 2048)][0]) == \
        (1.727, 4.001, 181.4, 629.4)
    a = m.area_mm2
    assert (a.mac_unit_fp8.value, a.mac_unit_fp16.value, a.mac_unit_fp32.value, a.sram_per_kib.value,
            a.vector_lane.value) == (1.03e-4, 1.80e-4, 7.13e-4, 3.2e-4, 1.35e-3)
    assert m.leakage_mw_per_mm2.value == 37.4  # 10% of 13.5 W over 36 mm^2
    c = m.clock_pj_per_cycle
    assert (c.per_pe.value, c.per_vector_lane.value, c.per_core.value) == (0.05, 0.05, 5.0)
    assert {k: (d.read, d.write) for k, d in m.dram_pj_per_byte.items()} == {
        "hbm2": (32, 32), "hbm3": (28, 28), "lpddr4": (64, 64), "ddr4": (160, 160)}
    assert (m.edge_pj_per_byte.value, m.noc_pj_per_byte_hop.value) == (0.25, 2.0)
    assert {op: getattr(m.vector_pj, op).value for op in ("elementwise_fp16", "elementwise_fp32", "special_fp16",
                                                          "special_fp32", "reduction_fp16", "reduction_fp32")} == {
        "elementwise_fp16": 0.64, "elementwise_fp32": 1.91, "special_fp16": 2.30, "special_fp32": 7.36,
        "reduction_fp16": 0.26, "reduction_fp32": 0.58}
    assert m.static_voltage_exponent.value == 1.0
    points = {n: (p.clock_ghz, p.voltage_v, p.sram_voltage_v) for n, p in m.operating_points.items()}
    assert points == {"peak": (1.6, 0.75, 0.95), "efficient": (1.0, 0.55, 0.70)}


def test_every_shipped_number_has_a_source(project_root):
    for path in shipped_tech_files().values():
        tech = load_tech(path)
        data = tech.model.model_dump()
        entries = []

        def walk(node, key):
            if isinstance(node, dict):
                if "value" in node or "read" in node or "clock_ghz" in node or "points" in node:
                    entries.append((key, node))
                    return
                for k, v in node.items():
                    walk(v, f"{key}.{k}" if key else k)

        walk(data, "")
        # tech_7nm: 22 entries before the calibration, less the SRAM curve and per-core leakage, plus the SRAM
        # bank grid, 5 areas, the leakage density and 3 clock entries; zigzag_tpu_like has one DRAM kind and one
        # operating point
        assert len(entries) == {"tech_7nm": 30, "zigzag_tpu_like": 18}[path.stem]
        missing = [key for key, node in entries if not node.get("source")]
        assert missing == [], f"{path.name}: entries without a source: {missing}"
        tagged = [key for key, node in entries if "[" in node["source"]]  # energy_facts.md tags [P] [S] [D] ...
        assert len(tagged) >= len(entries) - 1  # the voltage-exponent entry is a stated assumption


def test_sram_curve_interpolates_log_log_and_clamps():
    tech = parse_tech(SMALL)
    assert tech.sram_pj_per_byte(0.25) == 1.0 and tech.sram_pj_per_byte(1e6) == 20.0  # clamped
    assert tech.sram_pj_per_byte(1) == 1.0 and tech.sram_pj_per_byte(100) == 10.0  # exactly at the points
    assert tech.sram_pj_per_byte(10) == pytest.approx(math.sqrt(10), rel=1e-12)  # geometric midpoint
    assert tech.sram_pj_per_byte(1000) == pytest.approx(10 * math.sqrt(2), rel=1e-12)
    assert tech.sram_pj_per_byte(10, "write") == pytest.approx(2 * math.sqrt(10), rel=1e-12)
    assert tech.sram_pj_per_byte(1e6, "write") == 40.0


def test_shipped_sram_bank_energy_is_monotone_in_capacity_and_width():
    tech = load_tech()
    caps = [4, 8, 12, 32, 64, 100, 128, 512, 1000, 2048, 4096]
    widths = [32, 64, 96, 128, 256, 384, 512, 1024, 2048, 4096]
    for access in ("read", "write"):
        table = [[tech.sram_access_pj(c, w, access) for w in widths] for c in caps]
        for row in table:  # wider ports move more bits per access: never cheaper
            assert all(a <= b for a, b in zip(row, row[1:]))
        for column in zip(*table):  # bigger banks: longer bit- and word-lines
            assert all(a <= b for a, b in zip(column, column[1:]))
    # clamped outside the grid: below 8 KiB / 64 b and above 2 MiB / 2048 b the edge values
    assert tech.sram_access_pj(1, 8) == 1.727 and tech.sram_access_pj(1e6, 1e5, "write") == 870.2
    # a wider port is cheaper per byte (fewer accesses): 64 KiB banks, 128 b vs 512 b
    assert tech.sram_access_pj(64, 512) / 64 < tech.sram_access_pj(64, 128) / 16


def test_sram_bank_table_is_bilinear_in_log_log():
    data = copy.deepcopy(SMALL)
    data["sram_access_pj"] = {"points": [
        {"bank_kib": 8, "port_bits": 64, "read": 2.0, "write": 3.0},
        {"bank_kib": 8, "port_bits": 1024, "read": 8.0, "write": 9.0},
        {"bank_kib": 2048, "port_bits": 64, "read": 32.0, "write": 30.0},
        {"bank_kib": 2048, "port_bits": 1024, "read": 512.0, "write": 300.0}]}
    tech = parse_tech(data)
    assert tech.sram_access_pj(8, 64) == 2.0 and tech.sram_access_pj(2048, 1024, "write") == 300.0  # exact
    # halfway in log capacity (128 KiB) at 64 b: sqrt(2 * 32) = 8; halfway in log width (256 b) at 8 KiB: 4
    assert tech.sram_access_pj(128, 64) == pytest.approx(8.0, rel=1e-12)
    assert tech.sram_access_pj(8, 256) == pytest.approx(4.0, rel=1e-12)
    # both halfway: the geometric mean of the four corners = (2 * 8 * 32 * 512)^(1/4) = 2^4.5
    assert tech.sram_access_pj(128, 256) == pytest.approx(16 * math.sqrt(2), rel=1e-12)
    assert tech.sram_access_pj(1, 1) == 2.0 and tech.sram_access_pj(1e5, 1e5) == 512.0  # clamped per axis
    assert tech.sram_access_pj(1e5, 64, "write") == 30.0


def test_sram_bank_table_must_be_a_full_grid(tmp_path):
    data = copy.deepcopy(SMALL)
    data["sram_access_pj"] = {"points": [
        {"bank_kib": 8, "port_bits": 64, "read": 2.0, "write": 3.0},
        {"bank_kib": 8, "port_bits": 1024, "read": 8.0, "write": 9.0},
        {"bank_kib": 2048, "port_bits": 64, "read": 32.0, "write": 30.0}]}
    assert error_of(tmp_path, data).endswith("tech.yaml: sram_access_pj.points: the points must form a full grid: "
                                             "2 capacities x 2 widths need 4 points, not 3")
    data["sram_access_pj"]["points"].append(dict(data["sram_access_pj"]["points"][0]))
    assert error_of(tmp_path, data).endswith("sram_access_pj.points: each (bank_kib, port_bits) may appear once")


def test_one_leakage_model_per_table(tmp_path):
    data = copy.deepcopy(SMALL)
    data["leakage_mw_per_mm2"] = 40
    data["static_power_mw_per_core"] = 300
    assert error_of(tmp_path, data).endswith("tech.yaml: static_power_mw_per_core: give either the area model "
                                             "(leakage_mw_per_mm2) or the legacy per-core leakage, not both")


def test_a_single_point_curve_is_constant():
    data = copy.deepcopy(SMALL)
    data["sram_pj_per_byte"]["points"] = [{"size_kib": 64, "read": 0.5, "write": 0.7}]
    tech = parse_tech(data)
    assert [tech.sram_pj_per_byte(s) for s in (1, 64, 1e5)] == [0.5, 0.5, 0.5]
    assert tech.sram_pj_per_byte(1, "write") == 0.7


# --- mistakes ---------------------------------------------------------------------------------------------------

def test_negative_energy_names_the_key(tmp_path):
    data = copy.deepcopy(SMALL)
    data["mac_pj"]["fp8"] = -0.2
    assert error_of(tmp_path, data) == \
        f"{tmp_path / 'tech.yaml'}: mac_pj.fp8.value: input should be greater than or equal to 0"
    data = copy.deepcopy(SMALL)
    data["dram_pj_per_byte"]["hbm2"]["write"] = -1
    assert error_of(tmp_path, data).endswith(
        "tech.yaml: dram_pj_per_byte.hbm2.write: input should be greater than or equal to 0")


def test_unknown_key_is_an_error(tmp_path):
    data = copy.deepcopy(SMALL)
    data["mac_pj"]["fp9"] = 0.1
    assert error_of(tmp_path, data).endswith("tech.yaml: mac_pj.fp9: unknown key")
    data = copy.deepcopy(SMALL)
    data["static_power_mw"] = 100
    assert error_of(tmp_path, data).endswith("tech.yaml: static_power_mw: unknown key")


def test_every_problem_is_reported_at_once(tmp_path):
    data = copy.deepcopy(SMALL)
    data["mac_pj"]["fp16"]["value"] = -1
    data["edge_pj_per_byte"] = "cheap"
    data["operating_points"]["nominal"]["clock_ghz"] = 0
    data["noc_pj"] = 1.0
    del data["nominal_voltage_v"]
    message = error_of(tmp_path, data)
    assert message.startswith(f"{tmp_path / 'tech.yaml'}: 5 problems: ")
    for part in ("nominal_voltage_v: required key is missing", "mac_pj.fp16.value: input should be greater than or "
                 "equal to 0", "edge_pj_per_byte: ", "operating_points.nominal.clock_ghz: input should be greater "
                 "than 0", "noc_pj: unknown key"):
        assert part in message


def test_sram_sizes_must_increase_and_energies_be_positive(tmp_path):
    data = copy.deepcopy(SMALL)
    data["sram_pj_per_byte"]["points"][2]["size_kib"] = 50
    assert error_of(tmp_path, data).endswith(
        "tech.yaml: sram_pj_per_byte.points: sizes must increase: point 2 has size_kib 50.0 after 100.0")
    data["sram_pj_per_byte"]["points"] = []
    assert error_of(tmp_path, data).endswith("sram_pj_per_byte.points: give at least one point (size_kib, read, "
                                             "write)")
    data = copy.deepcopy(SMALL)
    data["sram_pj_per_byte"]["points"][0]["read"] = 0  # log-log needs > 0
    assert error_of(tmp_path, data).endswith("sram_pj_per_byte.points.0.read: input should be greater than 0")


def test_value_outside_its_sweep_range_is_an_error(tmp_path):
    data = copy.deepcopy(SMALL)
    data["mac_pj"]["fp8"] = {"value": 0.4, "range": [0.12, 0.30]}
    assert error_of(tmp_path, data).endswith("mac_pj.fp8: value 0.4 is outside its range [0.12, 0.3]")
    data["mac_pj"]["fp8"] = {"value": 0.2, "range": [0.3, 0.1]}
    assert error_of(tmp_path, data).endswith("mac_pj.fp8: range [0.3, 0.1] must be [low, high]")


def test_zero_gated_fraction_is_a_fraction(tmp_path):
    data = copy.deepcopy(SMALL)
    data["zero_gated_fraction"] = 1.5
    assert error_of(tmp_path, data).endswith("zero_gated_fraction.value: input should be less than or equal to 1")


def test_split_sram_rail_needs_every_operating_point(tmp_path):
    data = copy.deepcopy(SMALL)
    data["nominal_sram_voltage_v"] = 0.9
    data["operating_points"]["low"] = {"clock_ghz": 0.5, "voltage_v": 0.6, "sram_voltage_v": 0.7}
    assert error_of(tmp_path, data).endswith("tech.yaml: operating_points.nominal.sram_voltage_v: required key is "
                                             "missing (the table gives nominal_sram_voltage_v)")
    del data["nominal_sram_voltage_v"]
    assert error_of(tmp_path, data).endswith(
        "tech.yaml: operating_points.low.sram_voltage_v: needs nominal_sram_voltage_v in the table")


def test_operating_points_are_required(tmp_path):
    data = copy.deepcopy(SMALL)
    data["operating_points"] = {}
    assert error_of(tmp_path, data).endswith("tech.yaml: operating_points: give at least one operating point "
                                             "{clock_ghz, voltage_v}")


def test_missing_file_and_unknown_shipped_name(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_tech(tmp_path / "nope.yaml")
    assert str(info.value) == (f"{tmp_path / 'nope.yaml'}: tech table file not found; shipped tech tables: tech_7nm, "
                               "zigzag_tpu_like")
    with pytest.raises(ConfigError) as info:
        load_tech("tech_3nm")
    assert str(info.value) == "tech_3nm: unknown tech table; shipped tech tables: tech_7nm, zigzag_tpu_like"


def test_yaml_mistakes_are_located(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\nname: b\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: line 2, column 1: invalid YAML: duplicate key 'name'"):
        load_tech(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: a tech file is a mapping"):
        load_tech(path)
