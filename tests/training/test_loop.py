"""Training runs end to end: deterministic for a seed, every pass through the datapath, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hfp8sim.cli import main
from hfp8sim.errors import TrainingError
from hfp8sim.training.loop import TrainConfig, train

QUICK = dict(epochs=1, steps_per_epoch=6, batch_size=16)


def test_the_same_seed_gives_the_same_bits():
    config = TrainConfig(model="cnn", dataset="digits", scheme="hfp8", seed=3, **QUICK)
    first, second = train(config), train(config)
    assert first.step_losses == second.step_losses and first.loss_scales == second.loss_scales
    assert first.final.metric == second.final.metric and first.final.test_loss == second.final.test_loss
    other = train(TrainConfig(model="cnn", dataset="digits", scheme="hfp8", seed=4, **QUICK))
    assert other.step_losses != first.step_losses


def test_every_pass_of_every_layer_runs_on_the_datapath():
    result = train(TrainConfig(model="cnn", dataset="digits", **QUICK))
    # MACs of one pass at 16 digits (8x8) per step, by hand: stem 3x3 conv 1->16 on 8x8, depthwise 3x3 on 4x4
    # x16 channels, pointwise 16->32 on 4x4, classifier 32->10; forward, backward-data and weight-gradient
    # each do as many (stride 1), and every one of the 6 steps runs all three
    per_pass = 16 * (64 * 16 * 9 + 16 * 16 * 9 + 16 * 16 * 32 + 32 * 10)
    assert per_pass == 320_512 and result.macs == 6 * 3 * per_pass
    assert len(result.step_losses) == 6
    assert set(result.final.gradient_underflow) == {"first", "block.depthwise", "block.pointwise", "last"}


def test_the_transformer_trains_on_real_text():
    result = train(TrainConfig(model="transformer", dataset="pydoc", scheme="hfp8", context=16, epochs=1,
                               steps_per_epoch=3, batch_size=4, optimizer="adam", lr=1e-3))
    assert result.final.metric_name == "perplexity" and math.isfinite(result.final.metric)
    assert result.final.metric == pytest.approx(math.exp(result.final.test_loss))


@pytest.mark.parametrize("changes, message", [
    ({"model": "transformer"}, "cannot train on digits"),
    ({"recipe": "lazy"}, "unknown recipe 'lazy'"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"bn_recalibration": -1}, "bn_recalibration must be a non-negative integer"),
])
def test_bad_configs_are_refused(changes, message):
    with pytest.raises(TrainingError, match=message):
        train(TrainConfig(**{**QUICK, **changes}))


def test_cli_train_writes_its_log_and_refuses_bad_input(tmp_path, capsys):
    assert main(["train", "--steps-per-epoch", "3", "--batch-size", "8", "--out", str(tmp_path)]) == 0
    log = json.loads((tmp_path / "train.json").read_text())
    assert log["config"]["scheme"] == "hfp8" and len(log["step_losses"]) == 3 and log["epochs"][0]["metric"] > 0
    assert main(["train", "--update-rule", "fp8_magic", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hfp8sim: error: unknown weight-update rule 'fp8_magic'")


def test_fp16_exceptions_apply_to_fp8_schemes_only():
    from hfp8sim.training.loop import _ops, _softmax_input

    for scheme, narrow in (("hfp8", True), ("fp8_e5m2", True), ("fp16", False), ("fp32", False)):
        config = TrainConfig(scheme=scheme)
        assert bool(_ops(config).overrides) == narrow, scheme
        assert _softmax_input(config) == ("float16" if narrow else "float32"), scheme


def test_evaluation_never_changes_the_training():
    """Recalibrating batch norms and evaluating after each epoch leave the weights, the step losses and a delayed
    recipe's amax history as they would be without any evaluation; after the last epoch the model keeps the
    recalibrated statistics, so it computes the metric reported."""
    from hfp8sim.training.inference import batch_norms, recalibrate_batch_norms
    from hfp8sim.training.loop import _ops, model_and_data

    base = dict(model="cnn", dataset="digits", scheme="hfp8", recipe="delayed", epochs=2, steps_per_epoch=4,
                batch_size=16, seed=1)
    moving = train(TrainConfig(**base, bn_recalibration=0))
    precise = train(TrainConfig(**base, bn_recalibration=300))
    assert moving.step_losses == precise.step_losses and moving.loss_scales == precise.loss_scales
    for a, b in zip(moving.model.parameters(), precise.model.parameters()):
        assert np.array_equal(a.value, b.value) and np.array_equal(a.compute_value, b.compute_value)
    assert precise.final.metric != moving.final.metric  # the statistics differ, and so does the prediction
    # by hand, with a stateless recipe (current scaling): the moving-average model recalibrated over the same
    # 300-image sample in the run's formats has the statistics the reporting run kept, bit for bit
    current = {**base, "recipe": "current"}
    moving, precise = (train(TrainConfig(**current, bn_recalibration=n)) for n in (0, 300))
    _, data = model_and_data(TrainConfig(**current))
    chosen = np.sort(np.random.default_rng(0).permutation(len(data.train_labels))[:300])
    recalibrate_batch_norms(moving.model, data.train_images[chosen], _ops(TrainConfig(**current)))
    for a, b in zip(batch_norms(moving.model), batch_norms(precise.model)):
        assert np.array_equal(a.running_mean, b.running_mean) and np.array_equal(a.running_var, b.running_var)


def test_a_stored_model_matches_a_config_that_differs_only_in_its_evaluation():
    a = TrainConfig(model="cnn", dataset="digits", bn_recalibration=0, eval_subset=10)
    b = TrainConfig(model="cnn", dataset="digits")
    assert a.weights_identity() == b.weights_identity() and "bn_recalibration" not in a.weights_identity()
    assert TrainConfig(model="cnn", dataset="digits", seed=1).weights_identity() != b.weights_identity()
