"""Training steps derived from forward networks: MACs, operand roles and formats per pass, the update's
traffic per rule, per-pass results that add up, and the bad inputs that must fail in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hfp8sim.config.arch import load_arch
from hfp8sim.errors import WorkloadError
from hfp8sim.formats.spec import Scheme, get_format
from hfp8sim.results import LayerResult
from hfp8sim.run import core_model, simulate_network
from hfp8sim.schedule.search import gemm_problem
from hfp8sim.workloads import Conv2d, MatMul, load_workload, resolve_workload
from hfp8sim.workloads.training_layers import OptimizerUpdate
from hfp8sim.workloads.training_step import derive_training_step, per_chip_batch, rescale_batch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "arch_configs" / "default.yaml"

# (workload, the forward GEMM whose input comes from outside the network: it has no data gradient)
FIRST_LAYERS = {"resnet50": "conv1", "mobilenet_v2": "features.0.0", "bert_base_seq128": None}


def _forward(name: str):
    return load_workload(resolve_workload(name))


@pytest.mark.parametrize("name", sorted(FIRST_LAYERS))
@pytest.mark.parametrize("batch", [None, 4])
def test_training_macs_are_three_forward_passes_less_the_first_data_gradient(name, batch):
    forward = _forward(name)
    step = derive_training_step(forward, batch=batch)
    scale = batch or 1
    first = forward[FIRST_LAYERS[name]].macs if FIRST_LAYERS[name] else 0  # BERT starts with embeddings
    assert step.macs == scale * (3 * forward.macs - first)
    by_pass = {p: sum(layer.macs for layer in step.layers if layer.pass_ == p)
               for p in ("forward", "backward_data", "backward_weight", "update")}
    attention = _activation_only_macs(forward)  # both gradients of a product of activations are data's
    assert by_pass == {"forward": scale * forward.macs, "backward_data": scale * (forward.macs - first + attention),
                       "backward_weight": scale * (forward.macs - attention), "update": 0}
    if FIRST_LAYERS[name]:
        assert f"{FIRST_LAYERS[name]}.dX" not in step and f"{FIRST_LAYERS[name]}.dW" in step


def _activation_only_macs(forward) -> int:
    """MACs of products of two activations (attention): both their gradients are data gradients."""
    return sum(layer.macs for layer in forward.layers if isinstance(layer, MatMul)
               and "weight" not in (layer.a_role, layer.b_role))


def test_the_gemm_shapes_of_each_pass():
    step = derive_training_step(_forward("resnet50"))
    conv = step["layer1.0.conv2"]  # 64 -> 64, 3x3, 56x56
    dx, dw = step["layer1.0.conv2.dX"], step["layer1.0.conv2.dW"]
    assert (dx.gemm().M, dx.gemm().N, dx.gemm().K) == (3136, 576, 64)  # dX_col = dY W^T
    assert (dw.gemm().M, dw.gemm().N, dw.gemm().K) == (64, 576, 3136)  # dW^T = dY^T X_col
    assert dx.inputs == dw.inputs[:1] and dw.inputs[1] == conv.inputs[0]  # dW reads the stashed input
    col2im = step["layer1.0.conv2.col2im"]  # the col2im scatter-add back to an N,C,H,W gradient
    assert col2im.output_shape == (1, 64, 56, 56) and col2im.vector_work().in_elements == 3136 * 576
    assert "layer1.0.conv1.col2im" not in step  # a 1x1 stride-1 conv's dX_col is dX
    bert = derive_training_step(_forward("bert_base_seq128"))
    qk = bert["layer.0.attention.qk"]  # batch 12: Q[128,64] K^T[64,128]
    da, db = bert["layer.0.attention.qk.dA"], bert["layer.0.attention.qk.dB"]
    assert (da.batch, da.M, da.N, da.K, da.pass_) == (12, 128, 64, 128, "backward_data")
    assert (db.batch, db.M, db.N, db.K, db.pass_) == (12, 64, 128, 128, "backward_data")
    assert da.inputs[1] == qk.inputs[1] and db.inputs == (qk.inputs[0], da.inputs[0])  # the stashed Q and K
    mobilenet = derive_training_step(_forward("mobilenet_v2"))
    depthwise = mobilenet["features.2.conv.1.0.dW"]
    assert isinstance(depthwise, Conv2d) and depthwise.groups == 96 and depthwise.gemm().batch == 96


def test_operand_roles_and_formats_follow_the_scheme_in_every_pass():
    """A scheme whose forward and backward formats differ in size: each GEMM operand's bytes are its role's."""
    scheme = Scheme("fwd8_bwd16", get_format("float8_e4m3fn"), get_format("float16"), get_format("float32"))
    model = core_model(load_arch(DEFAULT), scheme)
    bytes_of = {"activation": 1, "weight": 1, "gradient": 2}
    expected_roles = {  # (a, b, output) of a layer with weights
        "forward": ("activation", "weight", "activation"),
        "backward_data": ("gradient", "weight", "gradient"),
    }
    for name in ("resnet50", "bert_base_seq128"):
        for layer in derive_training_step(_forward(name)).gemm_layers():
            g, problem = layer.gemm(), gemm_problem(layer, model)
            roles = (g.a_role, g.b_role, layer.output_role)
            if layer.pass_ in expected_roles and "weight" in roles[:2]:
                assert roles == expected_roles[layer.pass_], layer.name
            if layer.pass_ == "backward_weight":
                assert sorted(roles[:2]) == ["activation", "gradient"] and roles[2] == "gradient", layer.name
            if layer.pass_ == "backward_data" and "weight" not in roles[:2]:  # attention: dY with a stash
                assert "gradient" in roles[:2] and "activation" in roles[:2], layer.name
            assert (problem.a_bytes, problem.b_bytes, problem.out_bytes) == tuple(bytes_of[r] for r in roles)


def test_the_update_moves_master_weights_and_states_per_rule():
    cases = {("momentum", "fp32_master"): ((1 + 4 + 4), (1 + 4 + 4)),  # grad, master, momentum; copy, ...
             ("adam", "fp32_master"): ((1 + 4 + 8), (1 + 4 + 8)),
             ("sgd", "round_off_residual"): ((1 + 1 + 2), (1 + 2)),  # grad, FP8 weight, FP16 residual
             ("adam", "round_off_residual"): ((1 + 1 + 2 + 8), (1 + 2 + 8))}
    arch = load_arch(DEFAULT)
    for (optimizer, rule), (read, written) in cases.items():
        step = derive_training_step(_forward("tiny_cnn"), optimizer=optimizer, update_rule=rule)
        result = simulate_network(arch, step)  # hfp8: gradients and weight copies are 1 byte
        rows = [r for r in result.layers if r.pass_ == "update"]
        assert [r.source_layer for r in rows] == [layer.source_layer for layer in step.layers
                                                  if isinstance(layer, OptimizerUpdate)]
        params = {layer.source_layer: layer.params for layer in step.layers if isinstance(layer, OptimizerUpdate)}
        assert sum(params.values()) == sum(layer.param_elements for layer in step.layers) > 0
        for row in rows:
            assert row.dram_write_bytes == params[row.source_layer] * written, (optimizer, rule, row.name)
            # the first update may find its gradient still on chip (the last backward layer wrote it)
            assert params[row.source_layer] * (read - 1) <= row.dram_read_bytes <= params[row.source_layer] * read


def test_per_pass_results_add_up_to_the_totals_and_name_their_forward_layer():
    step = derive_training_step(_forward("tiny_cnn"), batch=2)
    result = simulate_network(load_arch(DEFAULT), step)
    passes = result.per_pass()
    assert list(passes) == ["forward", "backward_data", "backward_weight", "update"]
    summed = sum(passes.values(), LayerResult.zero())
    for field in ("cycles", "stall_cycles", "macs", "dram_read_bytes", "dram_write_bytes", "vector_cycles"):
        assert getattr(summed, field) == getattr(result.totals, field), field
    assert summed.energy["energy_total_pj"] == pytest.approx(result.totals.energy["energy_total_pj"], rel=1e-12)
    summary = result.summary()
    assert sum(summary[f"{p}_cycles"] for p in passes) == summary["cycles"]
    forward_names = {layer.name for layer in step.layers if layer.pass_ == "forward"}
    for row, layer in zip(result.layers, step.layers):
        assert row.pass_ == layer.pass_ and row.source_layer in forward_names
        assert row.param_elements == (layer.param_elements if layer.pass_ == "forward" else 0)
    assert result.layers[0].param_elements == step.layers[0].weight_elements > 0  # the first conv's weights


def test_batch_rescales_every_shipped_forward_network():
    for name in ("resnet50", "bert_base_seq128", "vit_b16", "gpt2_prefill1024", "efficientnet_lite0"):
        forward = _forward(name)
        assert rescale_batch(forward, 3).macs == 3 * forward.macs, name


def test_bad_training_inputs_are_one_line_errors():
    with pytest.raises(WorkloadError, match="batch 30 does not divide across 4 chips"):
        per_chip_batch(30, 4)
    assert per_chip_batch(32, 4) == 8
    with pytest.raises(WorkloadError, match="already holds a training step"):
        derive_training_step(_forward("tiny_mlp"))
    with pytest.raises(WorkloadError, match="unknown optimizer 'lamb'"):
        derive_training_step(_forward("tiny_cnn"), optimizer="lamb")
    doubled = rescale_batch(_forward("tiny_cnn"), 2)
    with pytest.raises(WorkloadError, match="--batch 3 is not a multiple of the workload's own batch 2"):
        rescale_batch(doubled, 3)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hfp8sim.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args, message", [
    (["run", "default", "tiny_mlp", "--train"], "tiny_mlp already holds a training step"),
    (["run", "default", "tiny_cnn", "--optimizer", "adam"], "describe a training step: add --train"),
    (["run", "default", "tiny_cnn", "--train", "--formats", "{lib}", "--scheme", "infer8"],
     "scheme infer8 has no backward format"),
])
def test_the_cli_refuses_bad_training_inputs_in_one_line(tmp_path, args, message):
    library = tmp_path / "lib.yaml"
    library.write_text("schemes:\n  infer8:\n    forward: float8_e4m3fn\n    accumulate: float16\n")
    done = _cli([a.replace("{lib}", str(library)) for a in args] + ["--out", str(tmp_path / "out")], tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()


def test_the_cli_runs_a_training_step_and_writes_the_passes(tmp_path):
    done = _cli(["run", "default", "tiny_cnn", "--train", "--batch", "2", "--compare", "hfp8,fp16,fp32",
                 "--out", str(tmp_path / "out")], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "per pass (training step)" in done.stdout and "backward_weight" in done.stdout
    summaries = {s: json.loads((tmp_path / "out" / s / "summary.json").read_text())["summary"]
                 for s in ("hfp8", "fp16", "fp32")}
    for summary in summaries.values():
        assert sum(summary[f"{p}_cycles"] for p in ("forward", "backward_data", "backward_weight", "update")) \
            == summary["cycles"]
    # narrower formats move fewer bytes in every GEMM pass
    for p in ("forward", "backward_data", "backward_weight"):
        assert summaries["hfp8"][f"{p}_dram_bytes"] < summaries["fp16"][f"{p}_dram_bytes"] \
            < summaries["fp32"][f"{p}_dram_bytes"], p
    header = (tmp_path / "out" / "hfp8" / "layers.csv").read_text().splitlines()[0].split(",")
    assert {"pass", "source_layer", "param_elements"} <= set(header)
