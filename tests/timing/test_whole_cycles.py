"""Whole cycles: a transfer holds its link for ceil(bytes / width) cycles, a tile's port stretch and the
vector unit count whole cycles, latencies are integers, and every cycle count written is an integer; the
array's cycles split exactly into fold, port-stretch and stall cycles."""

from __future__ import annotations

import copy
import csv
import json
import math
import re

import pytest
import simpy
import yaml

from hfp8sim.cli import main
from hfp8sim.config.arch import load_arch, parse_arch
from hfp8sim.core.cycles import whole_cycles
from hfp8sim.errors import ConfigError
from hfp8sim.io import ARCH_CONFIGS
from hfp8sim.reports.timeline import chrome_trace
from hfp8sim.run import core_model, simulate_network
from hfp8sim.schedule.fold_latency import gemm_cycles
from hfp8sim.schedule.mapper import build_schedule, candidates
from hfp8sim.schedule.search import _candidate_bound, _pipeline_bound, gemm_problem
from hfp8sim.timing.chip import Noc, NocSpec
from hfp8sim.timing.simulator import CoreSimulator
from hfp8sim.workloads import Conv2d, Network, load_workload, resolve_workload
from hfp8sim.workloads.scalesim_import import import_scalesim_csv
from tests.conftest import WORKLOAD_DATA
from tests.timing.conftest import BASE, make_arch, one_gemm, transfer_finish_times

CYCLE_FIELDS = ("cycles", "compute_cycles", "stall_cycles", "fold_cycles", "port_stall_cycles", "vector_cycles")
SHIPPED_ARCHS = ARCH_CONFIGS.files()  # name -> path, the array-size variants too


def test_whole_cycles_round_a_partly_used_cycle_up():
    assert (whole_cycles(1000, 10), whole_cycles(1001, 10), whole_cycles(1, 1e9)) == (100, 101, 1)
    assert whole_cycles(0, 10) == 0 and whole_cycles(5, math.inf) == 0
    assert whole_cycles(2 * 10**15 + 1, 2) == 10**15 + 1  # integers divide exactly, however large
    # decimal rates: a binary quotient a hair off the integer it means counts as that integer
    assert 1.2 / 0.4 < 3 and whole_cycles(1.2, 0.4) == 3
    assert 0.1 * 3 / 0.1 > 3 and whole_cycles(0.1 * 3, 0.1) == 3
    assert whole_cycles(100, 64 / 3) == 5  # 4.6875 cycles of bus: the fifth, partly used, counts


def test_a_dram_transfer_holds_the_channel_whole_cycles():
    done, moved = transfer_finish_times({"a": 1001, "b": 501})
    # a: 5 latency + ceil(100.1) = 101 bus cycles; b queues behind a and holds the bus ceil(50.1) = 51 cycles
    assert done == {"a": 106, "b": 157} and all(isinstance(t, int) for t in done.values())
    assert moved == 1502  # bytes are counted as they are, only time is rounded


def test_a_ring_transfer_holds_its_links_whole_cycles():
    env = simpy.Environment()
    noc = Noc(env, 4, NocSpec("ring", link_bytes_per_cycle=64, hop_latency_cycles=1, bidirectional=True))
    env.process(noc.transfer(0, 2, 100))
    env.run()
    assert env.now == math.ceil(100 / 64) + 2 * 1 == 4


def test_port_stretch_is_whole_cycles_and_its_own_column():
    # one 5x4x4 tile on a 4x4 ws array, ideal DRAM; the tile writes 5 x 4 DLFloat16 partial sums (40 bytes) through
    # an output write port of 1.5 B/cycle: ceil(40 / 1.5) = 27 cycles, against 15 fold cycles (4 preload + 5
    # streamed rows + 3 + 3 of skew)
    narrow = dict(BASE["scratchpads"]["output"], write_bytes_per_cycle=1.5)
    layer = simulate_network(make_arch(**{"scratchpads.output": narrow}), one_gemm(5, 4, 4)).layers[0]
    assert gemm_cycles("ws", 4, 4, 5, 4, 4, pair=False, overlap=False) == 15
    assert (layer.cycles, layer.fold_cycles, layer.port_stall_cycles, layer.stall_cycles) == (27, 15, 12, 0)
    wide = simulate_network(make_arch(), one_gemm(5, 4, 4)).layers[0]
    assert (wide.cycles, wide.fold_cycles, wide.port_stall_cycles) == (15, 15, 0)


@pytest.mark.parametrize(("key", "value"), [("dram.latency_cycles", 2.5), ("interconnect.latency_cycles", 0.5),
                                            ("chip.noc.hop_latency_cycles", 1.5),
                                            ("array.pipeline_latency_cycles", 2.0)])
def test_a_latency_that_is_not_a_whole_number_of_cycles_is_refused(key, value):
    data = copy.deepcopy(BASE)
    data["dram"] = {"bw_bytes_per_cycle": 8, "latency_cycles": 0}
    data["chip"] = {"cores": 2}
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    with pytest.raises(ConfigError, match=re.escape(key)):
        parse_arch(data, "latency.yaml")


@pytest.mark.parametrize("arch_name", sorted(SHIPPED_ARCHS))
def test_every_cycle_count_is_an_integer_and_the_array_time_adds_up(arch_name):
    arch = load_arch(SHIPPED_ARCHS[arch_name])
    for workload in ("tiny_cnn", "tiny_transformer"):
        result = simulate_network(arch, load_workload(resolve_workload(workload)), record_events=True)
        for layer in result.layers:
            assert all(type(getattr(layer, field)) is int for field in CYCLE_FIELDS), (layer.name, layer)
            if layer.kind == "gemm":
                assert layer.cycles == layer.fold_cycles + layer.port_stall_cycles + layer.stall_cycles
                assert layer.port_stall_cycles >= 0 and layer.stall_cycles >= 0
        assert all(type(start) is int and type(duration) is int for *_, start, duration, _ in result.events)
        summary = result.summary()
        assert all(type(summary[field]) is int for field in CYCLE_FIELDS)
        trace = chrome_trace(result)
        assert all(type(event["args"][key]) is int for event in trace["traceEvents"] if event["ph"] == "X"
                   for key in ("start_cycle", "cycles"))


def test_run_files_hold_integer_cycles(tmp_path):
    out, timeline = tmp_path / "out", tmp_path / "tl.json"
    assert main(["run", "tpu_v1_like", "tiny_cnn", "--out", str(out), "--timeline", str(timeline),
                 "--layers", "0"]) == 0  # tpu_v1_like: 34 GB/s at 0.7 GHz, a fractional bytes per cycle
    with (out / "layers.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(re.fullmatch(r"\d+", row[field]) for row in rows for field in CYCLE_FIELDS)
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert all(type(summary[field]) is int for field in CYCLE_FIELDS)
    assert summary["cycles"] == summary["fold_cycles"] + summary["port_stall_cycles"] + summary["stall_cycles"] \
        + summary["exposed_vector_cycles"]
    events = json.loads(timeline.read_text())["traceEvents"]
    assert type(json.loads(timeline.read_text())["otherData"]["total_cycles"]) is int
    assert all(type(e["args"]["cycles"]) is int for e in events if e["ph"] == "X")


@pytest.mark.parametrize(("dims", "bw", "pad_kib"), [((30, 21, 26, 1), 4.4, 0.25), ((13, 37, 19, 2), 13.3, 0.25),
                                                     ((45, 9, 50, 1), 1.7, 0.5), ((16, 16, 16, 3), 0.9, 0.25),
                                                     ("conv", 2.3, 0.25), ("conv_s2", 5.1, 0.5)])
def test_search_bounds_stay_below_the_simulated_cycles_of_every_candidate(dims, bw, pad_kib):
    """The branch and bound prunes on these bounds: with transfers rounded up per transfer they must still
    never exceed what the simulation gives, candidate by candidate (fractional bandwidths on purpose), also
    for convs, whose input tiles are footprints that a resident block may leave with nothing new to load."""
    pad = {"size_kib": pad_kib, "read_bytes_per_cycle": 3.5, "write_bytes_per_cycle": 5.5}
    arch = make_arch(**{"array.overlap_folds": True, "dram": {"bw_bytes_per_cycle": bw, "latency_cycles": 7},
                        "scratchpads": {"input": pad, "weight": pad, "output": dict(pad, size_kib=pad_kib * 4)}})
    model = core_model(arch)
    sim = CoreSimulator.of(model)
    if dims in ("conv", "conv_s2"):
        layer = Conv2d(name="c", C=8, H=12, W=12, K=20, R=3, S=3, padding=1, stride=1 if dims == "conv" else 2)
    else:
        layer = one_gemm(*dims).layers[0]
    problem = gemm_problem(layer, model)
    assert (problem.conv is not None) == (dims in ("conv", "conv_s2"))
    checked = 0
    every = candidates(problem, model.array)
    for cand in every[::max(1, len(every) // 40)]:  # 40 of them, spread over the mapper's order
        schedule = build_schedule(problem, model.array, cand)
        cycles = sim.simulate(schedule).cycles
        assert _candidate_bound(problem, cand, sim, bw, 7, sim.counted(problem, cand).compute_cycles) <= cycles
        assert _pipeline_bound(schedule, sim, bw, 7) <= cycles
        checked += 1
    assert checked >= 3


def resnet18_own_mode(port_bytes_per_cycle: float | None = None):
    """scalesim_32x32.yaml in hfp8sim's own mode with fold overlap (ideal DRAM as shipped), its scratchpad ports
    widened to ``port_bytes_per_cycle`` when given."""
    data = yaml.safe_load(SHIPPED_ARCHS["scalesim_32x32"].read_text())
    data["mode"], data["array"]["overlap_folds"] = "hfp8sim", True
    if port_bytes_per_cycle:
        for pad in data["scratchpads"].values():
            pad["read_bytes_per_cycle"] = pad["write_bytes_per_cycle"] = port_bytes_per_cycle
    return parse_arch(data, "scalesim_32x32 own mode")


def test_resnet18_own_mode_cycles_are_folds_plus_port_stretch():
    """docs/design.md, "Where the array's cycles go": SCALE-Sim counts 2,519,815 stall-free cycles for ResNet-18
    at 32x32 ws; hfp8sim's own mode on the same config counts more because the shipped 32 B/cycle output
    scratchpad ports cannot take a ws fold's partial sums (32 columns x 2-byte DLFloat16 = 64 B per streamed
    row, read back as much); with ports wide enough the count is the fold count, below SCALE-Sim's."""
    network = import_scalesim_csv(WORKLOAD_DATA / "scalesim" / "Resnet18.csv")
    wide = simulate_network(resnet18_own_mode(1024), network)
    assert wide.cycles == wide.total("fold_cycles") == 1_565_535 < 2_519_815
    assert wide.total("port_stall_cycles") == 0 == wide.total("stall_cycles")
    # Conv1 (M = 110 x 110 outputs, N = 64 filters, K = 7 x 7 x 3 = 147) on the shipped ports: every tile writes its
    # outputs once per k-fold (ceil(147 / 32) = 5) as 2-byte partial sums through the 32 B/cycle write port
    conv1 = simulate_network(resnet18_own_mode(), Network("conv1", network.layers[:1])).layers[0]
    assert conv1.sram_output_write_bytes == 12_100 * 64 * 2 * 5 == 7_744_000
    assert conv1.cycles == 7_744_000 // 32 == conv1.fold_cycles + conv1.port_stall_cycles
    assert conv1.stall_cycles == 0 and conv1.port_stall_cycles > conv1.fold_cycles / 2
