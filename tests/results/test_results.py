"""Results add with + and are read back by the module that writes them."""

from __future__ import annotations

import dataclasses

import pytest

from hfp8sim.config.arch import resolve_arch
from hfp8sim.errors import ResultsError
from hfp8sim.results import LayerResult, NetworkResult, read_result_json, read_run_folder
from hfp8sim.run import simulate_network
from hfp8sim.workloads import load_workload, resolve_workload


@pytest.fixture(scope="module")
def tiny_run() -> NetworkResult:
    return simulate_network(resolve_arch("default"), load_workload(resolve_workload("tiny_cnn")))


def test_layer_results_add_their_counts_and_energies():
    a = LayerResult("conv", "conv2d", "gemm", M=4, N=8, K=16, macs=512, cycles=100.0, dram_read_bytes=64.0,
                    folds=2, tile_shape="4x8x16", energy={"energy_mac_pj": 1.5, "energy_total_pj": 2.0})
    b = LayerResult("relu", "elementwise", "vector", cycles=10.0, vector_cycles=10.0, fused=True,
                    energy={"energy_vector_pj": 0.25, "energy_total_pj": 0.25})
    total = a + b
    assert (total.macs, total.cycles, total.dram_read_bytes, total.folds, total.vector_cycles) == (
        512, 110.0, 64.0, 2, 10.0)
    assert total.energy == {"energy_mac_pj": 1.5, "energy_total_pj": 2.25, "energy_vector_pj": 0.25}
    # what describes one layer survives only where both sides agree (or one side is blank)
    assert (total.name, total.kind, total.M, total.tile_shape, total.fused) == ("", "", 4, "4x8x16", False)
    assert a + LayerResult.zero() == dataclasses.replace(a, utilization=0.0, mapping_efficiency=0.0)


def test_network_totals_are_the_sum_of_its_layers(tiny_run):
    summed = sum(tiny_run.layers, LayerResult.zero())
    assert summed == tiny_run.totals
    s = tiny_run.summary()
    assert s["cycles"] == sum(layer.cycles for layer in tiny_run.layers) == summed.cycles
    assert s["macs"] == 1_200_448 and s["energy_total_pj"] == pytest.approx(
        sum(layer.energy["energy_total_pj"] for layer in tiny_run.layers), rel=1e-15)


def test_a_run_folder_reads_back_what_was_written(tiny_run, tmp_path):
    tiny_run.write(tmp_path)
    payload, rows = read_run_folder(tmp_path)
    assert payload["summary"]["cycles"] == tiny_run.cycles
    assert [row["name"] for row in rows] == [layer.name for layer in tiny_run.layers]
    first = tiny_run.layers[0]
    assert (rows[0]["macs"], rows[0]["cycles"], rows[0]["fused"], rows[0]["energy_total_pj"]) == (
        first.macs, first.cycles, first.fused, first.energy["energy_total_pj"])


def test_unreadable_result_files_name_the_file(tmp_path):
    bad = tmp_path / "summary.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ResultsError, match="summary.json: not a result file"):
        read_result_json(bad)
    bad.write_text("{}")
    with pytest.raises(ResultsError, match="layers.csv: cannot read"):
        read_run_folder(tmp_path)
