"""Per-layer precision: IBM's HFP8 keeps the first and last layers in FP16, in every pass.

A GEMM layer that names a scheme (``precision``) runs on the same core in that scheme; the others are not
touched.  Checked against independent runs: a layer in fp16 inside an hfp8 run gives the rows an all-fp16 run
gives it, every other row equals the plain hfp8 run's, and the training step keeps the forward layer's
precision in its data and weight gradients."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hfp8sim.cli import main
from hfp8sim.config.arch import load_arch
from hfp8sim.errors import Hfp8SimError, WorkloadError
from hfp8sim.run import core_model, simulate_network
from hfp8sim.schedule.search import gemm_problem
from hfp8sim.workloads import keep_first_last, load_workload, parse_workload_text, resolve_workload, save_workload
from hfp8sim.workloads.training_step import derive_training_step

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "arch_configs" / "default.yaml"

# fields that depend on when a layer ran or on the mapper's alternatives, not on the layer's own work
CLOCKED = {"runner_up_cost"}


def _rows(result):
    return {row.name: row for row in result.layers}


def _same(a, b) -> bool:
    return {k: v for k, v in a.row(True).items() if k not in CLOCKED | {"precision"}} == \
        {k: v for k, v in b.row(True).items() if k not in CLOCKED | {"precision"}}


def test_the_first_and_last_weighted_gemms_are_kept():
    resnet = keep_first_last(load_workload(resolve_workload("resnet50")))
    assert [(layer.name, layer.precision) for layer in resnet.layers if layer.precision] == [("conv1", "fp16"),
                                                                                          ("fc", "fp16")]
    bert = keep_first_last(load_workload(resolve_workload("bert_base_seq128")))
    kept = [layer for layer in bert.layers if layer.precision]
    assert len(kept) == 2 and all(layer.is_gemm and layer.param_elements for layer in kept)
    assert kept[0] is not kept[1] and "First and last layers in fp16" in bert.notes


@pytest.mark.parametrize("workload", ["tiny_cnn", "mobilenet_v2"])
def test_a_kept_layer_runs_as_in_its_scheme_and_the_others_as_before(workload):
    arch = load_arch(DEFAULT)
    plain = load_workload(resolve_workload(workload))
    kept = keep_first_last(plain)
    names = {layer.name for layer in kept.layers if layer.precision}
    mixed, hfp8, fp16 = (simulate_network(arch, kept), simulate_network(arch, plain),
                         simulate_network(arch, plain, scheme="fp16"))
    by_mixed, by_hfp8, by_fp16 = _rows(mixed), _rows(hfp8), _rows(fp16)
    for name in names:  # the kept GEMMs: the rows (cycles, bytes, energy) of the all-fp16 run
        assert _same(by_mixed[name], by_fp16[name]) and by_mixed[name].precision == "fp16", name
    # the element-wise layers in a kept GEMM's output stage ran with it (fused, in fp16); every other row is
    # the plain hfp8 run's
    fused = {name for name, row in by_mixed.items() if row.precision and name not in names}
    assert all(by_mixed[name].kind == "vector" and by_mixed[name].fused for name in fused)
    others = [name for name in by_mixed if name not in names | fused]
    assert all(_same(by_mixed[name], by_hfp8[name]) for name in others) and len(others) > 3
    assert mixed.scheme == "hfp8" and mixed.cycles > hfp8.cycles  # FP16 runs at half the FP8 MAC rate


def test_the_training_step_keeps_the_precision_in_every_pass():
    arch = load_arch(DEFAULT)
    step = derive_training_step(keep_first_last(load_workload(resolve_workload("resnet50"))), batch=2)
    kept = {(layer.source_layer or layer.name, layer.pass_) for layer in step.layers if layer.precision}
    # conv1's input comes from outside: no data gradient
    assert kept == {("conv1", "forward"), ("conv1", "backward_weight"), ("fc", "forward"), ("fc", "backward_data"),
                    ("fc", "backward_weight")}
    fp16, hfp8 = core_model(arch, "fp16"), core_model(arch, "hfp8")
    for layer in step.gemm_layers():
        problem = gemm_problem(layer, fp16 if layer.precision else hfp8)
        assert (problem.a_bytes, problem.b_bytes) == ((2, 2) if layer.precision else (1, 1)), layer.name


def test_precision_is_written_and_read_back(tmp_path):
    kept = keep_first_last(load_workload(resolve_workload("tiny_cnn")))
    path = save_workload(kept, tmp_path / "kept.yaml")
    again = load_workload(path)
    assert [(layer.name, layer.precision) for layer in again.layers] == \
        [(layer.name, layer.precision) for layer in kept.layers]


def test_bad_precisions_are_refused_in_one_line(tmp_path):
    text = ("name: t\nlayers:\n  - {name: fc, op: matmul, M: 4, N: 8, K: 16}\n"
            "  - {name: act, op: relu, precision: fp16}\n")
    with pytest.raises(WorkloadError, match="precision 'fp16': a scheme name, for a GEMM layer"):
        parse_workload_text(text)
    bad = parse_workload_text("name: t\nlayers:\n  - {name: fc, op: matmul, M: 4, N: 8, K: 16, precision: fp12}\n")
    with pytest.raises(Hfp8SimError) as info:
        simulate_network(load_arch(DEFAULT), bad)
    assert str(info.value).startswith("t: layer fc: precision 'fp12': ") and "\n" not in str(info.value)


def test_the_command_writes_each_rows_precision(tmp_path, capsys):
    assert main(["run", "default", "tiny_cnn", "--first-last-fp16", "--out", str(tmp_path)]) == 0
    with (tmp_path / "layers.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    kept = {r["name"] for r in rows if r["precision"] == "fp16" and r["kind"] == "gemm"}
    assert len(kept) == 2 and {r["precision"] for r in rows} == {"hfp8", "fp16"}
    assert "(hfp8: 2 GEMM rows in fp16, every pass of conv1, fc;" in capsys.readouterr().out
    assert main(["run", "default", "tiny_cnn", "--train", "--first-last-fp16", "--batch", "2", "--out",
                 str(tmp_path / "train")]) == 0
    with (tmp_path / "train" / "layers.csv").open(newline="") as handle:
        passes = {(r["pass"], r["precision"]) for r in csv.DictReader(handle) if r["precision"] == "fp16"}
    assert {p for p, _ in passes} == {"forward", "backward_data", "backward_weight"}


def test_sweeps_and_the_distributed_command_take_the_option(tmp_path, capsys):
    from hfp8sim.sweep import Training, build_sweep

    plain, kept = (build_sweep("default", "tiny_cnn", training=Training(first_last_fp16=flag)) for flag in (False, True))
    assert plain.points[0].point_id != kept.points[0].point_id
    assert [layer.precision for layer in kept.networks["tiny_cnn"].layers if layer.precision] == ["fp16", "fp16"]
    assert build_sweep("default", "tiny_cnn").points[0].point_id == plain.points[0].point_id
    steps = {}
    for flag in ([], ["--first-last-fp16"]):
        assert main(["distributed", "default", "tiny_cnn", "--chips", "2", "--protocol", "hfp8",
                     "--csv", str(tmp_path / "d.csv"), *flag]) == 0
        with (tmp_path / "d.csv").open(newline="") as handle:
            steps[bool(flag)] = float(next(csv.DictReader(handle))["compute_seconds"])
    assert steps[True] > steps[False]
