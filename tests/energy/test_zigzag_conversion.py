"""The ZigZag peer comparison's matched configs: ZigZag's per-access costs converted to hfp8sim's per-byte tech
table, the matched arch, and the layers as both tools see them.  Pure arithmetic on a copy of ZigZag's
tpu_like values (tests/energy/data); ZigZag itself is not needed."""

import copy
import importlib.util
import math
import sys

import pytest

from hfp8sim.config.arch import load_arch
from hfp8sim.config.tech import load_tech
from hfp8sim.core.model import CoreModel, element_bytes
from hfp8sim.energy import energy_of
from hfp8sim.io import read_yaml
from hfp8sim.workloads.load import parse_workload
from tests.conftest import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "tests" / "energy" / "data" / "zigzag_tpu_like_sample.yaml"
ARCH = PROJECT_ROOT / "arch_configs" / "validation" / "zigzag_tpu_like.yaml"


@pytest.fixture(scope="module")
def peer():
    spec = importlib.util.spec_from_file_location("validate_zigzag", PROJECT_ROOT / "benchmarks" / "validate_zigzag.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.fixture(scope="module")
def hardware():
    return read_yaml(SAMPLE)


def test_costs_per_access_become_pj_per_byte(peer, hardware):
    tech = peer.tech_from_zigzag(hardware)
    # by hand: cost per access / (port bits / 8)
    assert tech["mac_pj.fp8"] == 0.04
    assert tech["dram.read"] == 700 / 8 == 87.5 and tech["dram.write"] == 750 / 8 == 93.75
    assert tech["sram.io.read"] == 416.16 / 256 == pytest.approx(1.625625, abs=1e-15)
    assert tech["sram.io.write"] == 378.4 / 256 == pytest.approx(1.478125, abs=1e-15)
    assert tech["sram.weight.read"] == tech["sram.weight.write"] == 0.095  # 8-bit ports: one byte an access
    # 1 operand byte at rf_128B's 0.095 pJ/B, 2 partial-sum bytes at rf_2B's 0.021 pJ per 2 B
    assert tech["pe_register_pj_per_byte"] == pytest.approx((0.095 + 2 * 0.0105) / 3, rel=1e-15)
    # 1024 PEs x 1024-bit RFs = 128 KiB; half of the 2 MiB (16,777,216-bit) SRAM each for inputs and outputs
    assert (tech["sram.weight.size_kib"], tech["sram.io.size_kib"]) == (128, 1024)


def test_shipped_tech_table_is_the_conversion(peer, hardware):
    shipped = load_tech("zigzag_tpu_like")
    assert peer.differences(peer.tech_from_zigzag(hardware), peer.shipped_tech_numbers(shipped)) == []
    # ZigZag's events priced by the shipped table cost what ZigZag charges: one 64-bit DRAM read 700 pJ and
    # write 750 pJ, one 2048-bit SRAM read 416.16 pJ, 1000 MACs 40 pJ; no leakage, wires or zero gating
    e = energy_of({"mac_fp8": 1000, "mac_zero_fp8": 500, "dram_read_bytes": 8, "dram_write_bytes": 8,
                   "sram_read_bytes.input": 256, "sram_write_bytes.weight": 1, "edge_bytes": 1e6, "cycles": 1e6},
                  shipped, op_point="nominal", sram_size_kib={"input": 1024, "weight": 128, "output": 1024},
                  dram_kind="zigzag_dram", zero_gating=True)
    assert e["mac"] == pytest.approx(40.0, rel=1e-12)  # zero_gated_fraction 1: a zero MAC costs a full MAC
    assert e["dram"] == pytest.approx(700 + 750, rel=1e-12)
    assert e["sram.input"] == pytest.approx(416.16, rel=1e-12) and e["sram.weight"] == pytest.approx(0.095)
    assert e["edge"] == e["static"] == 0.0
    assert e.total_pj == pytest.approx(40 + 700 + 750 + 416.16 + 0.095, rel=1e-12)


def test_matched_arch_loads_and_is_the_conversion(peer, hardware):
    arch = load_arch(ARCH)
    assert peer.differences(peer.arch_from_zigzag(hardware), peer.shipped_arch_numbers(arch)) == []
    assert (arch.array.dataflow, arch.macs_per_pe(8), arch.dram_bytes_per_cycle) == ("ws", 1, 8.0)
    assert (arch.energy.tech, arch.energy.dram_kind, arch.energy.zero_gating) == ("zigzag_tpu_like", "zigzag_dram",
                                                                                  False)
    # ZigZag's precisions: 8-bit W and I, 16-bit partial sums, 8-bit outputs; hfp8 stores the same bytes
    core = CoreModel.build(arch, arch.scheme)
    assert element_bytes(arch.scheme.forward) == element_bytes(arch.scheme.backward) == 1
    assert element_bytes(core.psum_format) == 2
    assert (peer.ZIGZAG_PRECISION["W"], peer.ZIGZAG_PRECISION["O"], peer.ZIGZAG_PRECISION["O_final"]) == (8, 16, 8)


def test_another_hierarchy_is_refused(peer, hardware):
    no_psum_rf = copy.deepcopy(hardware)
    del no_psum_rf["memories"]["rf_2B"]
    with pytest.raises(ValueError, match="not a tpu_like hierarchy: missing \\['psum_rf'\\]"):
        peer.tech_from_zigzag(no_psum_rf)
    shared_rf = copy.deepcopy(hardware)
    shared_rf["memories"]["rf_128B"]["operands"] = ["I1", "I2"]
    with pytest.raises(ValueError, match="'rf_128B' .* does not fit a tpu_like hierarchy"):
        peer.arch_from_zigzag(shared_rf)


def test_both_tools_get_the_same_layers(peer):
    expected = {"layer1.0.conv1": (115_605_504, 56 * 56 * 64 * 2 + 64 * 64 * 9),
                "layer1.0.conv3": (51_380_224, 56 * 56 * (64 + 256) + 64 * 256),
                "features.3.conv.1.0": (4_064_256, 56 * 56 * 144 * 2 + 144 * 9),
                "layer.0.intermediate": (301_989_888, 128 * 768 + 768 * 3072 + 128 * 3072)}
    assert {layer.name: (layer.macs, layer.tensor_bytes) for layer in peer.LAYERS} == expected
    for layer in peer.LAYERS:
        zz = peer.zigzag_layer(layer)
        assert math.prod(zz["loop_sizes"]) == layer.macs  # ZigZag's loop nest covers every MAC once
        net = parse_workload({"name": "one", "layers": [layer.hfp8sim_layer()]})
        assert net.layers[0].macs == layer.macs
    conv1 = peer.zigzag_layer(peer.LAYERS[0])
    assert dict(zip(conv1["loop_dims"], conv1["loop_sizes"])) == {"B": 1, "K": 64, "C": 64, "OY": 56, "OX": 56,
                                                                   "FY": 3, "FX": 3}
    assert (conv1["pr_loop_sizes"], conv1["padding"]) == ([56, 56], [[1, 1], [1, 1]])
    assert [m["name"] for m in peer.zigzag_extra_mappings(peer.LAYERS)] == ["features.3.conv.1.0"]
