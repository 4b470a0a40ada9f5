"""The study's networks: shapes through every pass, parameter gradients filled, FP16 first and last layers."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.training.layers import SoftmaxCrossEntropy
from hfp8sim.training.models import char_transformer, first_last_fp16_overrides, mlp, small_cnn
from hfp8sim.training.ops import Float64Ops, TrainingOps
from hfp8sim.vocabulary import Pass


def _step(model, x, labels, ops):
    loss_fn = SoftmaxCrossEntropy()
    logits = model.forward(x, ops, train=True)
    loss = loss_fn.forward(logits, labels, ops)
    model.zero_grad()
    model.backward(loss_fn.backward(), ops)
    return logits, loss


@pytest.mark.parametrize("build, x_shape, classes", [
    (lambda: mlp(64, 32, 10, seed=1), (5, 1, 8, 8), 10),
    (lambda: small_cnn(1, 10, width=4, seed=2), (3, 1, 8, 8), 10),
])
def test_image_models_run_forward_and_backward(build, x_shape, classes):
    rng = np.random.default_rng(0)
    model = build()
    x = rng.random(x_shape)
    labels = rng.integers(0, classes, x_shape[0])
    logits, loss = _step(model, x, labels, Float64Ops())
    assert logits.shape == (x_shape[0], classes) and np.isfinite(loss)
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_char_transformer_predicts_every_position():
    rng = np.random.default_rng(0)
    model = char_transformer(11, dim=16, heads=2, blocks=1, context=8, seed=3)
    ids = rng.integers(0, 11, (2, 8))
    logits, loss = _step(model, ids[:, :-1], ids[:, 1:], Float64Ops())
    assert logits.shape == (2, 7, 11) and abs(loss - np.log(11)) < 1.0  # near uniform at initialisation
    grads = {p.name: p.grad for p in model.parameters()}
    assert np.abs(grads["embed.position"][7]).max() == 0  # position 7 never seen with 7 input tokens
    assert np.abs(grads["embed.position"][:7]).max() > 0


def test_first_and_last_layers_stay_in_fp16_under_hfp8():
    ops = TrainingOps("hfp8", overrides=first_last_fp16_overrides())
    model = char_transformer(11, dim=16, heads=2, blocks=1, context=8, seed=3)
    ids = np.random.default_rng(1).integers(0, 11, (2, 8))
    _step(model, ids[:, :-1], ids[:, 1:], ops)
    formats = {(call.layer, str(call.pass_)): (call.a_format, call.b_format) for call in ops.records}
    assert formats[("first.q", str(Pass.FORWARD))] == ("float16", "float16")
    assert formats[("last", str(Pass.BACKWARD_WEIGHT))] == ("float16", "float16")
    assert formats[("block0.mlp.up", str(Pass.FORWARD))] == ("float8_e4m3b11fnuz", "float8_e4m3b11fnuz")
    assert formats[("block0.mlp.up", str(Pass.BACKWARD_DATA))] == ("float8_e5m2", "float8_e4m3b11fnuz")
