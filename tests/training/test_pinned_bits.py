"""Speed work must not change a bit: a few training steps on the datapath give the losses, weights and
per-call operand statistics pinned here, computed before the training path was optimised (commit 5f5814a).

Each case runs its steps with the public pieces (ops, model, data, loss, loss scaler, updater) and hashes,
per step, the loss, the loss scale and every GEMM call's layer, pass, formats, shape and operand statistics,
then every parameter's master and compute copy.  The cases cover the datapath's kernels the training path
reaches: HFP8's FMMA pair mode (int64 fixed-point kernel) and FP16 first/last layers (round-to-odd kernel),
single-product FP8 (float32 kernel), grouped (depthwise) convolutions with one column per group (the
transposed product), an MLP, delayed scaling, and float32 layers on numpy's matmul (whose summation order
follows the operands' memory layout, so the lowering must keep it).

The hashes cover float32 numpy code outside the datapath too (batch norm, softmax), so they are pinned for
this project's numpy; a different numpy or CPU whose float32 ``exp`` rounds differently would change them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hfp8sim.training.data import load_digits, minibatches
from hfp8sim.training.layers import SoftmaxCrossEntropy
from hfp8sim.training.loss_scaling import make_loss_scaler
from hfp8sim.training.models import first_last_fp16_overrides, mlp, small_cnn
from hfp8sim.training.ops import TrainingOps
from hfp8sim.training.optim import Updater, make_optimizer, make_update_rule
from hfp8sim.training.scaling import CurrentScaling, DelayedScaling

PINNED = {
    ("cnn", "hfp8", "current"): "64c371609da4d438568ac132251b2d16d9abb90ed65f0e56993946a942a6e72a",
    ("cnn", "fp8_e5m2", "current"): "2e0148d01797641f48904f0048e3ea1291993e1b4e108ac677af0663fb4cc1b3",
    ("cnn", "hfp8", "delayed"): "16c0820acfc609311a646299fdece3ef2773f29faa166f8a0586e72b3e9cabfa",
    ("cnn", "fp32", "current"): "d9c82c8683b972ca68aa2238b573e1a4d6b14f476f12019aa0372bd87c2867bd",
    ("mlp", "hfp8", "current"): "70f4cc4de0c02c30cd11075bbdc0fe8d3d6b91f0f9f44ef5e3baef9591c93f1d",
}


def _steps_hash(model_name: str, scheme: str, recipe: str, steps: int = 3, batch_size: int = 64) -> str:
    recipes = {"current": CurrentScaling, "delayed": DelayedScaling}
    ops = TrainingOps(scheme, recipe=recipes[recipe](), gradient_recipe=recipes[recipe](),
                      overrides=first_last_fp16_overrides())
    data = load_digits()
    model = small_cnn(1, 10, seed=0) if model_name == "cnn" else mlp(64, 128, 10, seed=0)
    loss_fn = SoftmaxCrossEntropy("float16")
    scaler = make_loss_scaler("dynamic")
    updater = Updater(model.parameters(), make_optimizer("sgd", 0.05, momentum=0.9),
                      make_update_rule("fp32_master", weight_format=ops.scheme.forward, seed=0),
                      non_weight_rule=make_update_rule("fp32_master"))
    digest = hashlib.sha256()
    batches = minibatches(data.train_images, data.train_labels, batch_size, seed=0, epoch=0)
    for _, (x, y) in zip(range(steps), batches):
        logits = model.forward(x, ops, train=True)
        loss = loss_fn.forward(logits, y, ops)
        updater.zero_grad()
        model.backward(loss_fn.backward(loss_scale=scaler.scale), ops)
        skipped = updater.step(scaler)
        digest.update(repr((float(loss), float(scaler.scale), bool(skipped))).encode())
        for call in ops.records:
            digest.update(repr((call.layer, str(call.pass_), call.a_format, call.b_format, call.groups, call.m,
                                call.n, call.k, call.a, call.b)).encode())
        ops.clear_records()
    for parameter in model.parameters():
        digest.update(np.ascontiguousarray(parameter.value, "<f4").tobytes())
        digest.update(np.ascontiguousarray(parameter.compute_value, "<f4").tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("case", sorted(PINNED))
def test_training_steps_give_the_pinned_bits(case):
    assert _steps_hash(*case) == PINNED[case]
