"""Arch configs: every shipped file loads; mistakes are reported all at once with their key paths."""

import copy

import pytest

from hfp8sim.config.arch import load_arch, parse_arch
from hfp8sim.errors import ConfigError, FormatError
from hfp8sim.formats import get_scheme, scheme_names
from hfp8sim.io import read_yaml


def shipped(project_root):
    return sorted(p for p in (project_root / "arch_configs").rglob("*.yaml") if not {"formats", "tech"} & set(p.parts))


def test_every_shipped_arch_config_loads(project_root):
    files = shipped(project_root)
    assert len(files) >= 10
    archs = {p.stem: load_arch(p) for p in files}
    default = archs["default"]
    assert (default.array.rows, default.array.cols, default.array.dataflow) == (128, 128, "ws")
    assert default.scheme.name == "hfp8" and default.macs_per_pe(8) == 2 and default.macs_per_pe(16) == 1
    assert default.dram_bytes_per_cycle == pytest.approx(128.0)  # 204.8 GB/s at 1.6 GHz
    assert archs["scalesim_32x32"].mode == "scalesim" and archs["scalesim_32x32"].dram_bytes_per_cycle == float("inf")
    assert {archs[f"array_{n}x{n}"].array.rows for n in (8, 16, 32, 64, 128, 256)} == {8, 16, 32, 64, 128, 256}
    assert default.to_dict()["scheme"]["accumulate"] == "dlfloat16"


@pytest.fixture
def default_data(project_root):
    return read_yaml(project_root / "arch_configs" / "default.yaml")


def test_type_mistakes_are_all_reported_with_key_paths(default_data):
    data = copy.deepcopy(default_data)
    data["array"]["rows"] = -4
    data["array"]["dataflow"] = "rs"
    data["scratchpads"]["input"]["sram_kb"] = 12
    data["clock_ghz"] = "fast"
    with pytest.raises(ConfigError) as info:
        parse_arch(data, "my.yaml")
    message = str(info.value)
    assert message.startswith("my.yaml: 4 problems: ")
    for part in ("array.rows: input should be greater than 0", "array.dataflow: input should be 'os', 'ws' or 'is'",
                 "scratchpads.input.sram_kb: unknown key", "clock_ghz: input should be a valid number"):
        assert part in message


def test_pe_operand_bits_are_widths_the_pes_can_be_built_for(default_data):
    assert parse_arch(default_data, "default.yaml").model.energy.pe_operand_bits == [8, 16]
    for bad, message in (([12], "energy.pe_operand_bits.0: input should be 8, 16 or 32"),
                         ([], "energy.pe_operand_bits: list should have at least 1 item after validation, not 0")):
        data = copy.deepcopy(default_data)
        data["energy"] = {"pe_operand_bits": bad}
        with pytest.raises(ConfigError) as info:
            parse_arch(data, "my.yaml")
        assert str(info.value) == f"my.yaml: {message}"


def test_cross_field_conflicts_are_reported(default_data):
    data = copy.deepcopy(default_data)
    data["scratchpads"]["weight"]["size_kib"] = 8  # a 128x128 FP8 weight tile is 16 KiB
    data["array"]["accumulator"]["chunk"] = 64  # chunks are for os
    data["dram"]["bw_bytes_per_cycle"] = 64  # and bw_gb_per_s is given too
    with pytest.raises(ConfigError) as info:
        parse_arch(data, "my.yaml")
    message = str(info.value)
    assert "3 problems" in message
    assert "scratchpads.weight.size_kib: 8 KiB cannot hold a minimal tile of 16.00 KiB" in message
    assert "array.accumulator.chunk: applies to dataflow os only" in message
    assert "dram: give bw_bytes_per_cycle or bw_gb_per_s, not both" in message


def test_unknown_scheme_and_format_names(default_data):
    data = copy.deepcopy(default_data)
    data["scheme"] = "hfp9"
    with pytest.raises(ConfigError, match=r"my.yaml: scheme: unknown scheme 'hfp9' \(did you mean 'hfp8'\?\)"):
        parse_arch(data, "my.yaml")
    data["scheme"] = {"forward": "float8_e4m3fn", "backward": "float8_e5m2", "accumulate": "float16"}
    assert parse_arch(data, "my.yaml").scheme.forward.name == "float8_e4m3fn"
    data["array"]["accumulator"]["buffer_format"] = "float33"
    with pytest.raises(ConfigError, match="array.accumulator.buffer_format: unknown format 'float33'"):
        parse_arch(data, "my.yaml")


def test_inline_schemes_belong_to_their_arch_and_register_nothing(default_data):
    registered = scheme_names()
    one, two = copy.deepcopy(default_data), copy.deepcopy(default_data)
    one["scheme"] = {"forward": "float8_e4m3fn", "backward": "float8_e5m2", "accumulate": "float16"}
    two["scheme"] = {"forward": "float8_e5m2", "backward": "float8_e5m2", "accumulate": "float32"}
    arch_one, arch_two = parse_arch(one, "one.yaml"), parse_arch(two, "two.yaml")  # same name, different schemes
    assert scheme_names() == registered
    assert arch_one.scheme.name == arch_two.scheme.name == f"{default_data['name']}:scheme"
    # each arch resolves its own scheme's name to its own scheme, and other names through the registry
    assert arch_one.resolve_scheme(arch_one.scheme.name).accumulate.name == "float16"
    assert arch_two.resolve_scheme(arch_two.scheme.name).accumulate.name == "float32"
    assert arch_one.resolve_scheme(None) is arch_one.scheme
    assert arch_one.resolve_scheme("fp16") is get_scheme("fp16")
    with pytest.raises(FormatError, match="unknown scheme"):
        get_scheme(arch_one.scheme.name)
    with pytest.raises(FormatError, match="unknown scheme 'hfp9'"):
        arch_one.resolve_scheme("hfp9")


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_arch(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: an arch config is a mapping"):
        load_arch(tmp_path / "list.yaml")
