"""Timeline export: Chrome-trace JSON of the recorded events, consistent with the layer results."""

import csv
import json

from hfp8sim.cli import main
from hfp8sim.config.arch import load_arch
from hfp8sim.reports.timeline import chrome_trace
from hfp8sim.run import simulate_network
from hfp8sim.io import default_arch_path
from hfp8sim.workloads import load_workload, resolve_workload


def test_events_lie_inside_their_layer_and_tiles_do_not_overlap():
    arch = load_arch(default_arch_path())
    result = simulate_network(arch, load_workload(resolve_workload("tiny_cnn")), record_events=True)
    plain = simulate_network(arch, load_workload(resolve_workload("tiny_cnn")))
    assert result.cycles == plain.cycles  # recording does not change the timing
    spans = {layer: (start, start + dur) for layer, _, track, start, dur, _ in result.events if track == "layers"}
    # one span per GEMM layer, whether it ran on the array or (a depthwise conv) on the vector unit
    assert len(spans) == sum(1 for layer in result.layers if layer.mapping)
    assert any(layer.mapping == "vector unit" for layer in result.layers)  # tiny_cnn's dw on 128 lanes
    tiles = sorted((start, start + dur) for _, _, track, start, dur, _ in result.events if track == "array")
    assert all(end <= next_start + 1e-9 for (_, end), (next_start, _) in zip(tiles, tiles[1:]))
    for layer, _, track, start, dur, _ in result.events:
        if track in ("array", "dram") and layer in spans:
            lo, hi = spans[layer]
            assert lo - 1e-9 <= start and start + dur <= hi + 1e-9
    trace = chrome_trace(result)
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M"}
    assert {"layers", "array", "dram", "vector"} <= names
    last = max(e["ts"] + e["dur"] for e in trace["traceEvents"] if e["ph"] == "X")
    assert abs(last - result.cycles / (result.clock_ghz * 1e3)) < 1e-3  # microseconds at the core clock


def test_run_writes_a_timeline_per_scheme(tmp_path):
    target = tmp_path / "tl.json"
    assert main(["run", "default", "tiny_cnn", "--compare", "hfp8,fp16", "--timeline", str(target),
                 "--out", str(tmp_path / "out"), "--layers", "0"]) == 0
    for scheme in ("hfp8", "fp16"):
        data = json.loads((tmp_path / f"tl.{scheme}.json").read_text())
        assert data["otherData"]["scheme"] == scheme
        # one per tile of the layers on the array (the depthwise conv runs on the vector unit): in hfp8 conv1,
        # pw, res.conv and fc take 1 each (conv1's input tile is its 3x32x32 tensor, not its 1024x27 im2col
        # matrix); fp16's bytes double and conv1 takes 2
        tiles = sum(1 for e in data["traceEvents"] if e["ph"] == "X" and e["cat"] == "array")
        with open(tmp_path / "out" / scheme / "layers.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert tiles == sum(int(r["tiles"]) for r in rows if r["mapping"] and r["mapping"] != "vector unit")
        assert tiles == {"hfp8": 4, "fp16": 5}[scheme]
