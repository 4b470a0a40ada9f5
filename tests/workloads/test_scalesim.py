"""SCALE-Sim topology CSVs: import with SCALE-Sim's conventions, export, round trips, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hfp8sim.errors import WorkloadError
from hfp8sim.workloads import (
    Conv2d,
    MatMul,
    Network,
    export_scalesim_csv,
    import_scalesim_csv,
    load_workload,
    resolve_workload,
)

# (layers, MACs) of SCALE-Sim's example topologies, as SCALE-Sim counts them:
# conv MACs = ceil((H-R+s)/s) * ceil((W-S+s)/s) * R*S*C * filters, GEMM MACs = M*N*K
TOPOLOGIES = {
    "FasterRCNN.csv": (46, 3_560_764_160),
    "Googlenet.csv": (58, 1_352_365_952),
    "Resnet18.csv": (21, 1_471_181_568),
    "alexnet.csv": (5, 805_118_496),
    "alexnet_part.csv": (1, 105_415_200),
    "gemm1000.csv": (1, 1_000_000_000),
    "gemm128x256x512.csv": (1, 16_777_216),
    "gemm64.csv": (1, 262_144),
    "gpt2.csv": (6, 20_686_307_328),
    "mobilenet.csv": (27, 565_519_488),
    "test_mnk_input.csv": (1, 8_388_608),
    "vit_s.csv": (5, 275_165_184),
    "yolo_tiny.csv": (9, 1_753_649_072),
}


def _scalesim_macs(path: Path) -> int:
    """SCALE-Sim's own MAC count, computed from the raw rows (an oracle independent of the importer)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    fields = [[f.strip() for f in line.split(",")[:-1]] for line in lines]
    total = 0
    for row in fields[1:]:
        if "ifmap" in fields[0][1].lower():
            H, W, R, S, C, F, s = (int(v) for v in row[1:8])
            total += math.ceil((H - R + s) / s) * math.ceil((W - S + s) / s) * R * S * C * F
        else:
            total += int(row[1]) * int(row[2]) * int(row[3])
    return total


@pytest.mark.parametrize("file", sorted(TOPOLOGIES))
def test_import_of_scalesim_example_topologies(scalesim_topologies, file):
    net = import_scalesim_csv(scalesim_topologies / file)
    layers, macs = TOPOLOGIES[file]
    assert (len(net), net.macs) == (layers, macs)
    assert net.macs == _scalesim_macs(scalesim_topologies / file)
    assert all(layer.convention == "scalesim" and layer.inputs == () for layer in net)
    assert net.name == Path(file).stem


def test_resnet18_layers_have_scalesim_sizes(scalesim_topologies):
    """The (P, Wn, K) of layers in shared/reference/scalesim_semantics.md's check table."""
    net = import_scalesim_csv(scalesim_topologies / "Resnet18.csv")

    def p_wn_k(name):
        g = net[name].gemm()
        return (g.M, g.K, g.N)

    assert p_wn_k("Conv3_s") == (841, 64, 128)  # 29x29: the phantom row and column of a 1x1 stride-2 conv
    assert p_wn_k("Conv2_1a") == (2916, 576, 64)  # valid 3x3 conv: 56 -> 54
    assert p_wn_k("Conv4_s") == (225, 128, 256)
    assert p_wn_k("FC") == (1, 512, 1000)
    conv = net["Conv3_s"]
    assert isinstance(conv, Conv2d) and (conv.P, conv.Q, conv.padding) == (29, 29, (0, 0, 0, 0))
    mobilenet = import_scalesim_csv(scalesim_topologies / "mobilenet.csv")
    g = mobilenet["Conv25"].gemm()
    assert (g.M, g.K, g.N) == (49, 512, 1024)


def test_quirks_of_real_files(scalesim_topologies):
    # text after the last comma is ignored ("...,4,1" is stride 4), blank lines are skipped, CRLF is fine
    part = import_scalesim_csv(scalesim_topologies / "alexnet_part.csv")["Conv1"]
    assert (part.stride, part.P) == ((4, 4), 55)
    mnk = import_scalesim_csv(scalesim_topologies / "test_mnk_input.csv")["Test 1"]
    assert isinstance(mnk, MatMul) and (mnk.M, mnk.N, mnk.K) == (256, 128, 256)
    assert import_scalesim_csv(scalesim_topologies / "Googlenet.csv")[0].name == "Conv1"
    gpt2 = import_scalesim_csv(scalesim_topologies / "gpt2.csv")
    assert gpt2["PW-FF-L2"].gemm().K == 3072  # CRLF lines, no final newline


def test_dp_layers_are_depthwise(tmp_path):
    path = tmp_path / "dw.csv"
    path.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nConv2DP, 112, 112, 3, 3, 32, 1, 1,\nMultDP, 14, 14, 3, 3, 8, 2, 2,\n")  # fmt: skip
    net = import_scalesim_csv(path)
    dw = net["Conv2DP"]
    assert (dw.C, dw.K, dw.groups, dw.P) == (32, 32, 32, 110)
    assert (dw.gemm().batch, dw.gemm().M, dw.gemm().N, dw.gemm().K) == (32, 12100, 1, 9)
    assert dw.macs == 32 * 110 * 110 * 9  # SCALE-Sim: 32 one-channel layers of 110x110x9 MACs
    mult = net["MultDP"]  # a channel multiplier: each of the 8 channels has 2 filters
    assert (mult.K, mult.groups, mult.gemm().N, mult.P) == (16, 8, 2, 7)


def test_form_can_be_forced_and_duplicates_renamed(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("Layer, M, N, K,\nfc, 4, 5, 6,\nfc, 7, 8, 9,\n")
    net = import_scalesim_csv(path, form="gemm", name="twice")
    assert net.name == "twice" and net.names == ("fc", "fc#2") and net["fc#2"].macs == 504


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Layer, M, N, K,\nfc, 4, 5, 6\n",
         "line 2: 3 fields once the last is dropped, gemm rows need 4: SCALE-Sim ignores whatever follows the "
         "last comma, so every row must end with a trailing comma"),
        ("Layer, M, N, K,\nfc, 4, -5, 6,\n", "line 2 (fc): N must be a positive integer, got -5"),
        ("Layer, M, N, K,\nfc, 4, x, 6,\n", "line 2 (fc): N must be a positive integer, got 'x'"),
        ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
         "c, 8, 8, 3, 3, 4, 4, 1, 2:4,\n",
         "line 2: an N:M sparsity column is not supported (hfp8sim models dense layers only)"),
        ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
         "c, 2, 8, 3, 3, 4, 4, 1,\n", "line 2 (c): filter 3x3 is larger than the 2x8 input"),
        ("Name, rows, cols,\n", "line 1: cannot tell the topology form from the header"),
        ("Layer, M, N, K,\n", "the topology has a header but no layers"),
        ("\n\n", "empty topology file"),
    ],
)  # fmt: skip
def test_import_errors_name_the_file_and_line(tmp_path, text, expected):
    path = tmp_path / "topo.csv"
    path.write_text(text)
    with pytest.raises(WorkloadError) as info:
        import_scalesim_csv(path)
    assert str(info.value).startswith(f"{path}: {expected}")
    with pytest.raises(WorkloadError, match="absent.csv: SCALE-Sim topology not found"):
        import_scalesim_csv(tmp_path / "absent.csv")


# ------------------------------------------------------------------------------------------- export


def _normalised_rows(path: Path) -> list[list[str]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [[f.strip() for f in line.split(",")[:-1]] for line in lines[1:]]


@pytest.mark.parametrize("file", sorted(TOPOLOGIES))
def test_round_trip_of_example_topologies(tmp_path, scalesim_topologies, file):
    original = import_scalesim_csv(scalesim_topologies / file)
    form = "gemm" if isinstance(original[0], MatMul) else "conv"
    out = tmp_path / file
    assert export_scalesim_csv(original, out, form=form) == len(original)
    again = import_scalesim_csv(out)
    assert again.layers == original.layers
    # the rows are SCALE-Sim's own, field for field (what follows the last comma was ignored anyway)
    written = _normalised_rows(out)
    assert written == [row[: len(written[0])] for row in _normalised_rows(scalesim_topologies / file)]


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "efficientnet_lite0", "vit_b16"])
def test_export_of_shipped_networks_keeps_every_gemm(tmp_path, name):
    """Padding and PyTorch's floor become an IFMAP of (P-1)*s + R rows, so SCALE-Sim's ceil gives our P."""
    net = load_workload(resolve_workload(name))
    out = tmp_path / f"{name}.csv"
    rows = export_scalesim_csv(net, out)
    back = import_scalesim_csv(out)
    assert back.macs == net.macs and len(back) == rows
    ours = sorted((g.M, g.N, g.K) for layer in net.gemm_layers() for g in [layer.gemm()] for _ in range(g.batch))
    theirs = sorted((g.M, g.N, g.K) for layer in back for g in [layer.gemm()] for _ in range(g.batch))
    assert ours == theirs
    if name == "resnet50":
        conv1 = back["conv1"]
        assert (conv1.H, conv1.R, conv1.stride, conv1.P) == (229, 7, (2, 2), 112)  # 224 + 3 + 3 -> 229 read
    if name == "mobilenet_v2":
        dw = back["features.1.conv.0.0_DP"]
        assert (dw.groups, dw.H, dw.P) == (32, 114, 112)


def test_gemm_form_export_and_its_limits(tmp_path):
    net = load_workload(resolve_workload("tiny_transformer"))
    out = tmp_path / "tiny.csv"
    rows = export_scalesim_csv(net, out)  # no conv: GEMM form
    assert out.read_text().splitlines()[0] == "Layer, M, N, K,"
    back = import_scalesim_csv(out)
    assert rows == len(back) == 2 * (4 + 2 * 2) + 1 and back.macs == net.macs
    assert back["layers.0.attn.qk_b1"].gemm() == back["layers.0.attn.qk_b0"].gemm()
    batched = Network("b", (Conv2d(name="c", N=2, C=3, H=8, W=8, K=4, R=3, S=3),))
    with pytest.raises(WorkloadError, match="has batch N=2; SCALE-Sim convs have batch 1"):
        export_scalesim_csv(batched, tmp_path / "b.csv")
    export_scalesim_csv(batched, tmp_path / "b.csv", form="gemm")
    assert import_scalesim_csv(tmp_path / "b.csv")["c"].gemm().M == 2 * 36
    misnamed = Network("m", (Conv2d(name="blockDP1", C=3, H=8, W=8, K=4, R=3, S=3),))
    with pytest.raises(WorkloadError, match="its name contains 'DP', which makes SCALE-Sim split it per channel"):
        export_scalesim_csv(misnamed, tmp_path / "m.csv")
    grouped = Network("g", (Conv2d(name="g", C=8, H=8, W=8, K=8, R=1, S=1, groups=2),))
    export_scalesim_csv(grouped, tmp_path / "g.csv")
    assert import_scalesim_csv(tmp_path / "g.csv").names == ("g_g0", "g_g1")
