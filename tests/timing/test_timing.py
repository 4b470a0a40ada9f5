"""The timing model: hand-computed transfers, conservation laws and monotonicity (Hypothesis), FP8 versus
FP16, and SCALE-Sim compatibility against SCALE-Sim's own published cycle counts."""

from __future__ import annotations

import csv
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfp8sim.run import simulate_network
from hfp8sim.schedule import scalesim
from hfp8sim.schedule.fold_latency import gemm_cycles
from hfp8sim.workloads import Conv2d, Network, load_workload, resolve_workload
from tests.conftest import WORKLOAD_DATA
from tests.timing.conftest import make_arch, one_gemm, transfer_finish_times


def test_dram_transfers_share_the_bus_after_their_latency():
    # both wait 5 cycles; b queues behind a's 100 bus cycles
    assert transfer_finish_times({"a": 1000, "b": 500})[0] == {"a": 105.0, "b": 155.0}
    # one DMA engine: b's latency starts after a finished
    assert transfer_finish_times({"a": 1000, "b": 500}, dma_engines=1)[0] == {"a": 105.0, "b": 160.0}


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("pair", [False, True])
def test_ideal_memory_cycles_equal_the_fold_schedule(dataflow, overlap, pair):
    arch = make_arch(**{"array.dataflow": dataflow, "array.overlap_folds": overlap, "array.rows": 3,
                        "array.cols": 2, "array.macs_per_pe_per_cycle": {8: 2 if pair else 1, 16: 1, 32: 1}})
    for m, n, k in [(5, 7, 9), (1, 1, 1), (8, 3, 13)]:
        result = simulate_network(arch, one_gemm(m, n, k))
        assert result.cycles == gemm_cycles(dataflow, 3, 2, m, n, k, pair=pair, overlap=overlap)
        assert result.macs == m * n * k


gemm_dims = st.tuples(st.integers(1, 160), st.integers(1, 160), st.integers(1, 160), st.integers(1, 2))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dims=gemm_dims, side=st.sampled_from([4, 8, 16]), dataflow=st.sampled_from(["os", "ws", "is"]),
       bw=st.sampled_from([1, 4, 32]), pad_kib=st.sampled_from([2, 8, 64]), scheme=st.sampled_from(["hfp8", "fp16"]))
def test_conservation_and_bounds(dims, side, dataflow, bw, pad_kib, scheme):
    m, n, k, batch = dims
    pad = {"size_kib": pad_kib, "read_bytes_per_cycle": 64, "write_bytes_per_cycle": 64}
    arch = make_arch(**{"array.rows": side, "array.cols": side, "array.dataflow": dataflow,
                        "array.overlap_folds": True, "dram": {"bw_bytes_per_cycle": bw, "latency_cycles": 10},
                        "scratchpads": {"input": pad, "weight": pad, "output": dict(pad, size_kib=pad_kib * 4)}})
    result = simulate_network(arch, one_gemm(m, n, k, batch), scheme=scheme)
    layer = result.layers[0]
    element = 1 if scheme == "hfp8" else 2
    assert layer.macs == m * n * k * batch  # every MAC counted once
    assert layer.dram_write_bytes == m * n * batch * element  # every output written to DRAM exactly once
    assert layer.dram_read_bytes + layer.dram_write_bytes >= layer.compulsory_dram_bytes
    assert layer.compulsory_dram_bytes == batch * (m * k + k * n + m * n) * element
    assert layer.cycles >= layer.macs / (side * side)  # compute bound
    assert layer.cycles >= (layer.dram_read_bytes + layer.dram_write_bytes) / bw  # bandwidth bound
    # more bandwidth never makes a layer slower
    faster = make_arch(**{"array.rows": side, "array.cols": side, "array.dataflow": dataflow,
                          "array.overlap_folds": True, "dram": {"bw_bytes_per_cycle": bw * 4, "latency_cycles": 10},
                          "scratchpads": {"input": pad, "weight": pad, "output": dict(pad, size_kib=pad_kib * 4)}})
    assert simulate_network(faster, one_gemm(m, n, k, batch), scheme=scheme).cycles <= layer.cycles


def test_fp8_halves_compute_bound_cycles_and_memory_bound_traffic():
    # compute-bound: a big GEMM with ideal memory on a core doing two FP8 or one FP16 MAC per PE per cycle
    arch = make_arch(**{"array.rows": 16, "array.cols": 16, "array.overlap_folds": True,
                        "array.macs_per_pe_per_cycle": {8: 2, 16: 1, 32: 1}})
    big = one_gemm(512, 512, 1024)
    fp8, fp16 = simulate_network(arch, big, scheme="hfp8"), simulate_network(arch, big, scheme="fp16")
    assert fp16.cycles / fp8.cycles == pytest.approx(2.0, rel=0.01)
    # memory-bound: GPT-2 decode (M=1 GEMMs) on the default core moves half the DRAM bytes in FP8
    default = make_arch(**{"array.rows": 128, "array.cols": 128, "dram": {"bw_bytes_per_cycle": 128.0},
                           "array.macs_per_pe_per_cycle": {8: 2, 16: 1, 32: 1}})
    decode = load_workload(resolve_workload("gpt2_decode1024"))
    fp8, fp16 = simulate_network(default, decode, scheme="hfp8"), simulate_network(default, decode, scheme="fp16")
    bytes8 = fp8.total("dram_read_bytes") + fp8.total("dram_write_bytes")
    bytes16 = fp16.total("dram_read_bytes") + fp16.total("dram_write_bytes")
    assert bytes16 == 2 * bytes8
    assert fp16.cycles / fp8.cycles == pytest.approx(2.0, rel=0.1)  # bandwidth-bound: time follows bytes
    # depthwise convolutions and fully connected layers: half the bytes per layer
    mobilenet = load_workload(resolve_workload("mobilenet_v2"))
    fp8, fp16 = simulate_network(default, mobilenet, scheme="hfp8"), simulate_network(default, mobilenet, scheme="fp16")
    checked = 0
    for l8, l16 in zip(fp8.layers, fp16.layers):
        # depthwise convs (any mapping, the same in both schemes) and the classifier
        if l8.mapping and l8.mapping == l16.mapping and (l8.batch > 1 or l8.M == 1):
            assert l16.dram_read_bytes + l16.dram_write_bytes == 2 * (l8.dram_read_bytes + l8.dram_write_bytes)
            checked += 1
    # 12 of the 17 depthwise convs run on the vector unit in both schemes, and the classifier; features.2-6
    # (the large early maps) pack 25 groups a fold in FP8 (pair mode), where in FP16 the vector unit wins
    assert checked == 13


# ---- SCALE-Sim compatibility --------------------------------------------------------------------------------

SCALESIM_PUBLISHED = [  # (layer, rows, dataflow, cycles) from shared/reference/scalesim_semantics.md section 5
    (("Conv3_s", 841, 64, 128), 128, "os", 2225),
    (("FC", 1, 512, 1000), 128, "os", 6127),
    (("gemm", 128, 512, 256), 64, "os", 5103),
    (("Conv2_1a", 2916, 576, 64), 32, "ws", 108359),
    (("Conv2_1a", 2916, 576, 64), 128, "ws", 16489),
    (("FC", 1, 512, 1000), 128, "ws", 12255),
    (("Conv4_s", 225, 128, 256), 128, "is", 1275),
    (("Conv25", 49, 512, 1024), 64, "is", 9711),
    (("gemm", 128, 512, 256), 128, "is", 2551),
]


def scalesim_arch(side: int, dataflow: str):
    return make_arch(**{"mode": "scalesim", "array.rows": side, "array.cols": side, "array.dataflow": dataflow})


@pytest.mark.parametrize(("layer", "side", "dataflow", "cycles"), SCALESIM_PUBLISHED)
def test_scalesim_mode_reproduces_scalesim_reports(layer, side, dataflow, cycles):
    name, p, wn, k = layer
    assert scalesim.layer_cycles(scalesim.ScaleSimLayer(name, p, wn, k), dataflow, side, side) == cycles
    assert simulate_network(scalesim_arch(side, dataflow), one_gemm(p, k, wn)).cycles == cycles


def resnet18_scalesim_network() -> Network:
    layers = []
    with (WORKLOAD_DATA / "scalesim" / "Resnet18.csv").open() as handle:
        for row in csv.reader(handle):
            if not row or not row[1].strip().isdigit():
                continue
            name, h, w, r, s, c, k, stride = (v.strip() for v in row[:8])
            h, w, r, s, c, k, stride = map(int, (h, w, r, s, c, k, stride))
            e_h, e_w = math.ceil((h - r + stride) / stride), math.ceil((w - s + stride) / stride)
            # SCALE-Sim's valid convolution with its ceil output size: an IFMAP enlarged so the floor formula
            # gives the same E (the phantom outputs count as MACs in SCALE-Sim too)
            h_eff, w_eff = (e_h - 1) * stride + r, (e_w - 1) * stride + s
            layers.append(Conv2d(name=name, N=1, C=c, H=h_eff, W=w_eff, K=k, R=r, S=s, stride=(stride, stride),
                                 padding=(0, 0, 0, 0)))
    return Network("resnet18_scalesim", tuple(layers))


@pytest.mark.parametrize(("side", "total"), [(32, 2_519_815), (128, 417_628)])
def test_scalesim_mode_whole_resnet18_matches_scalesim(side, total):
    result = simulate_network(scalesim_arch(side, "ws"), resnet18_scalesim_network())
    assert result.cycles == total


@pytest.mark.parametrize("table", ["resnet50_tv.csv", "mobilenet_v2_tv.csv", "efficientnet_b0_tv.csv"])
@pytest.mark.parametrize("side", [8, 32, 128, 256])
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_scalesim_mode_matches_formulas_on_layer_tables(table, side, dataflow):
    with (WORKLOAD_DATA / "layer_tables" / table).open() as handle:
        rows = list(csv.DictReader(handle))
    arch = scalesim_arch(side, dataflow)
    layers, expected = [], 0
    for row in rows:
        v = {key: int(val) for key, val in row.items() if key not in ("layer", "type")}
        groups = v["groups"]
        p, wn, k = v["H_out"] * v["W_out"], v["KH"] * v["KW"] * v["C_in"] // groups, v["C_out"] // groups
        # SCALE-Sim splits a grouped/depthwise layer into one layer per group
        expected += groups * scalesim.layer_cycles(scalesim.ScaleSimLayer(row["layer"], p, wn, k), dataflow, side, side)
        layers.append(Conv2d(name=row["layer"], N=v["N"], C=v["C_in"], H=v["H_in"], W=v["W_in"], K=v["C_out"],
                             R=v["KH"], S=v["KW"], stride=(v["stride"], v["stride"]), padding=v["pad"],
                             groups=groups))
    result = simulate_network(arch, Network(table, tuple(layers)))
    assert result.cycles == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dims=gemm_dims, side=st.sampled_from([4, 8, 16]), dataflow=st.sampled_from(["os", "ws", "is"]),
       bw=st.sampled_from([1, 4, 32]), pad_kib=st.sampled_from([1, 2, 8]))
def test_bigger_scratchpads_never_make_a_layer_slower(dims, side, dataflow, bw, pad_kib):
    m, n, k, batch = dims
    cycles = []
    for scale in (1, 2, 8):
        pad = {"size_kib": pad_kib * scale, "read_bytes_per_cycle": 64, "write_bytes_per_cycle": 64}
        arch = make_arch(**{"array.rows": side, "array.cols": side, "array.dataflow": dataflow,
                            "array.overlap_folds": True, "dram": {"bw_bytes_per_cycle": bw, "latency_cycles": 10},
                            "scratchpads": {"input": pad, "weight": pad, "output": dict(pad, size_kib=pad_kib * scale * 4)}})
        cycles.append(simulate_network(arch, one_gemm(m, n, k, batch)).cycles)
    assert cycles[0] >= cycles[1] >= cycles[2]
