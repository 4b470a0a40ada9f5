"""Layer traces of shipped workloads with synthetic tensors; the file format; bad input through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hfp8sim.cli import main
from hfp8sim.errors import Hfp8SimError, TraceError
from hfp8sim.traces.schema import TRACE_FORMAT, Trace, with_digest
from hfp8sim.traces.trace import trace_workload
from hfp8sim.workloads import load_workload, resolve_workload


@pytest.fixture(scope="module")
def tiny_cnn_trace():
    return trace_workload("tiny_cnn", seed=3)


def test_tiny_cnn_trace_follows_the_workload(tiny_cnn_trace):
    network = load_workload(resolve_workload("tiny_cnn"))
    trace = tiny_cnn_trace.document
    assert (trace["format"], trace["workload"], trace["tensors"], trace["seed"]) == (
        TRACE_FORMAT, "tiny_cnn", "synthetic (seed 3)", 3)
    assert trace["scheme"] == {"name": "hfp8", "forward": "float8_e4m3b11fnuz", "backward": "float8_e5m2",
                               "accumulate": "dlfloat16"}
    assert (trace["arch"]["rows"], trace["arch"]["dataflow"], trace["arch"]["arithmetic_8bit"]) == (
        128, "ws", "ws 128x128, acc dlfloat16, buffer float32, pair")
    assert [layer["name"] for layer in trace["layers"]] == list(network.names)
    for entry, layer in zip(trace["layers"], network.layers):
        assert entry["inputs"] == list(layer.inputs)
        if not layer.is_gemm:
            assert entry["gemm"] is None and entry["elements"] == layer.elements and entry["ops"] == layer.ops
            continue
        g = layer.gemm()
        assert entry["gemm"] == {"M": g.M, "N": g.N, "K": g.K, "batch": g.batch}
        assert entry["macs"] == layer.macs and entry["sampled_rows"] == g.M
        assert entry["out_bytes"] == 4 * int(np.prod(layer.output_shape))  # float32 accumulator buffer
        assert entry["a_format"] == entry["b_format"] == "float8_e4m3b11fnuz"
        assert entry["b_bytes"] == layer.weight_elements  # one byte per FP8 weight
    conv1 = trace["layers"][0]
    assert (conv1["a_shape"], conv1["a_bytes"], conv1["b_shape"]) == ([1, 3, 32, 32], 3 * 32 * 32, [16, 3, 3, 3])
    assert trace["totals"]["macs"] == trace["totals"]["macs_computed"] == network.macs


def test_tiny_cnn_trace_statistics_are_sensible(tiny_cnn_trace):
    layers = {layer["name"]: layer for layer in tiny_cnn_trace.document["layers"]}
    # post-ReLU activations are max(z, 0): half of them zero
    for name in ("dw", "pw", "res.conv"):
        assert 0.45 < layers[name]["zero_fraction_a"] < 0.55, name
        assert layers[name]["zero_mac_fraction"] >= layers[name]["zero_fraction_a"] - 0.05
    assert layers["conv1"]["zero_fraction_a"] < 0.01  # the network input is normal
    assert layers["fc"]["zero_fraction_a"] == 0  # a global average of ReLU outputs is positive
    assert layers["dw"]["gemm"] == {"M": 256, "N": 1, "K": 9, "batch": 16}  # depthwise: one GEMM per channel
    for name in ("conv1", "dw", "pw", "res.conv", "fc"):
        layer = layers[name]
        assert 0.01 < layer["rel_error"] < 0.1, name  # FP8 E4M3 operands: a few percent, never exact
        assert layer["sqnr_db"] == pytest.approx(-20 * np.log10(layer["rel_error"]), abs=1e-3)
        assert layer["saturated_a"] == layer["saturated_b"] == layer["saturated_out"] == 0
        assert len(layer["output_sha256"]) == 64


def test_big_layers_are_sampled():
    trace = trace_workload("tiny_cnn", max_rows=100, max_macs=10**9)
    conv1 = trace.document["layers"][0]
    assert (conv1["gemm"]["M"], conv1["sampled_rows"], conv1["a_bytes"]) == (1024, 100, 3072)
    trace = trace_workload("tiny_cnn", max_macs=16 * 27 * 64)
    assert trace.document["layers"][0]["sampled_rows"] == 64
    assert trace.document["totals"]["macs_computed"] < trace.document["totals"]["macs"]


def test_same_inputs_and_seed_give_the_same_bytes(tmp_path, capsys):
    paths = [tmp_path / f"{i}.json" for i in range(3)]
    for path, seed in zip(paths, (7, 7, 8)):
        assert main(["trace", "tiny_transformer", "--seed", str(seed), "--out", str(path), "--quiet"]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    trace = Trace.load(paths[0])
    qk = [layer for layer in trace.document["layers"] if layer["gemm"] and layer["a_role"] == layer["b_role"]]
    assert qk and all(layer["gemm"]["batch"] > 1 for layer in qk)  # attention: two activations, one GEMM per head
    assert "wrote" in capsys.readouterr().out
    assert trace.dumps() == paths[0].read_text()  # load and write give the same text


def test_trace_files_are_checked(tmp_path, tiny_cnn_trace, capsys):
    good = tiny_cnn_trace.write(tmp_path / "good.json")
    assert Trace.load(good).layers[0].name == "conv1"
    assert main(["trace", str(good)]) == 0 and "14 layers (5 GEMM)" in capsys.readouterr().out
    broken = json.loads(good.read_text())
    broken["layers"][3]["gemm"] = {"M": 0, "N": 1, "K": 9, "batch": 16}
    broken["layers"][3] = with_digest(broken["layers"][3])  # a consistent digest: the field check must catch it
    assert broken["layers"][2]["name"] == "conv1.relu" and broken["layers"][2]["vector_work"]["out_elements"] > 0
    negative, typo = json.loads(good.read_text()), json.loads(good.read_text())
    negative["layers"][2]["vector_work"]["reduction"] = -1
    typo["layers"][2]["vector_work"]["elementwize"] = 3
    negative["layers"][2], typo["layers"][2] = with_digest(negative["layers"][2]), with_digest(typo["layers"][2])
    # edited by hand, consistently (M and macs together) but without a new digest: the digest names the layer
    edited = json.loads(good.read_text())
    edited["layers"][3]["gemm"]["M"] *= 2
    edited["layers"][3]["macs"] *= 2
    # a new digest but fields that contradict each other: the key is named
    macs, zeros = json.loads(good.read_text()), json.loads(good.read_text())
    macs["layers"][3]["macs"] += 1
    zeros["layers"][3]["zero_mac_fraction"] = 1.5
    macs["layers"][3], zeros["layers"][3] = with_digest(macs["layers"][3]), with_digest(zeros["layers"][3])
    old = json.loads(good.read_text()) | {"format": "hfp8sim-trace/1"}
    cases = {
        "missing.json": (None, "trace file not found"),
        "text.json": ("not json", "not a JSON trace"),
        "other.json": (json.dumps({"format": "other/1"}), "format is 'other/1', expected 'hfp8sim-trace/2'"),
        "nolayers.json": (json.dumps({"format": TRACE_FORMAT}), "missing key"),
        "broken.json": (json.dumps(broken), r"layers\[3\] \(dw\): gemm must be null or \{M, N, K, batch\}"),
        "negative.json": (json.dumps(negative),
                          r"layers\[2\] \(conv1.relu\): vector_work.reduction must be a finite number >= 0, got -1"),
        "edited.json": (json.dumps(edited), r"layers\[3\] \(dw\): the layer was changed after it was traced"),
        "macs.json": (json.dumps(macs), r"layers\[3\] \(dw\): macs is 36865 but gemm M\*N\*K\*batch is 36864"),
        "zeros.json": (json.dumps(zeros), r"layers\[3\] \(dw\): zero_mac_fraction must be a fraction in \[0, 1\]"),
        "old.json": (json.dumps(old), "format is 'hfp8sim-trace/1', expected 'hfp8sim-trace/2'"),
        "typo.json": (json.dumps(typo), r"layers\[2\] \(conv1.relu\): vector_work.elementwize is not a vector-work "
                                        "key; allowed: elementwise"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(TraceError, match=message):
            Trace.load(path)
        assert main(["trace", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"hfp8sim: error: {path}") and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["trace", "tiny_cnnn"], "tiny_cnnn: unknown workload; shipped workloads: bert_base_seq128"),
    (["trace", "tiny_cnn", "--scheme", "hfp9"], "unknown scheme 'hfp9'"),
    (["trace", "tiny_cnn", "--arch", "no/such_arch.yaml"], "no/such_arch.yaml: arch config file not found"),
    (["trace", "tiny_cnn", "--scheme", "fp32"], "operand format float32 has 32 bits"),
    (["trace", "efficientnet_lite0", "--images", "8"], "--images must be between 1 and 7"),
])
def test_bad_input_gives_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hfp8sim: error: ") and message in err and err.count("\n") == 1
    assert "real networks: minilm, efficientnet_lite0" in err or "unknown workload" not in message


def test_bad_arguments_of_the_api_are_refused():
    with pytest.raises(TraceError, match="max_rows must be a positive integer"):
        trace_workload("tiny_cnn", max_rows=0)
    with pytest.raises(Hfp8SimError, match="unknown scaling"):
        trace_workload("tiny_cnn", scaling="per_row")


@pytest.mark.parametrize("workload", ["tiny_cnn", "tiny_transformer"])
@pytest.mark.parametrize("output_kib", [1024, 1])  # 1 KiB: every vector layer's tensors stream through DRAM
def test_a_synthetic_trace_times_exactly_like_its_workload(workload, output_kib):
    """A trace changes what is measured (zero operands, hence energy), never the work: every layer's cycles,
    bytes and lane operations equal the workload's, also when vector layers stream their tensors from DRAM
    (a pooling layer reads its input tensor, not its window taps)."""
    from hfp8sim.config.arch import parse_arch, resolve_arch
    from hfp8sim.io import read_yaml
    from hfp8sim.run import simulate_network
    from hfp8sim.traces.timing_view import network_from_trace

    raw = read_yaml(resolve_arch("default").source)
    raw["scratchpads"]["output"]["size_kib"] = output_kib
    arch = parse_arch(raw, f"default core, {output_kib} KiB output scratchpad")
    network = load_workload(resolve_workload(workload))
    from_trace = simulate_network(arch, network_from_trace(trace_workload(workload, seed=1, max_macs=10**5)))
    from_workload = simulate_network(arch, network)
    streamed, previous = [], None
    for traced, planned, layer in zip(from_trace.layers, from_workload.layers, network.layers, strict=True):
        assert traced.name == planned.name
        for field in ("cycles", "dram_read_bytes", "dram_write_bytes", "vector_cycles", "vector_elementwise_ops",
                      "vector_special_ops", "vector_reduction_ops", "sram_read_bytes", "sram_write_bytes", "macs"):
            assert getattr(traced, field) == getattr(planned, field), (traced.name, field)
        if planned.kind == "vector" and not planned.mapping and not planned.fused and planned.dram_read_bytes > 0:
            streamed.append((layer, previous))
        previous = layer.name
    if output_kib == 1:  # tensors do not fit: layers alone stream them from DRAM
        assert streamed
    else:  # the previous layer's output is still on chip: only other operands and tables come from DRAM
        assert all(not layer.producers or set(layer.producers) - {previous} for layer, previous in streamed)


def test_a_trace_runs_only_on_the_arithmetic_and_scheme_it_was_made_with(tmp_path, tiny_cnn_trace, capsys):
    """Its measured zeros and errors belong to the array's rounding: another arch or scheme is refused in one
    line naming both, unless --retime says to time the layers anyway."""
    path = tiny_cnn_trace.write(tmp_path / "t.json")
    out = str(tmp_path / "out")
    assert main(["run", "eyeriss_like", str(path), "--out", out]) == 2
    err, = capsys.readouterr().err.splitlines()  # one line: the trace is named only once it is accepted
    assert err.startswith("hfp8sim: error: ") and (
        f"{path}: traced on hfp8_core (default.yaml: 8-bit arithmetic ws 128x128, acc dlfloat16, buffer float32, "
        "pair), but eyeriss_like computes os 12x14, acc dlfloat16") in err and "--retime" in err
    assert main(["run", "default", str(path), "--scheme", "fp16", "--out", out]) == 2
    assert "traced with scheme hfp8, not fp16" in capsys.readouterr().err
    assert main(["run", "eyeriss_like", str(path), "--retime", "--out", out, "--layers", "0"]) == 0
    assert main(["run", "default", str(path), "--out", out, "--layers", "0"]) == 0
