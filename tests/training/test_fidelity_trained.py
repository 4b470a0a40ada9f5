"""Inference without retraining of the networks trained here (hfp8sim.studies.fidelity_trained), on a real slice:
200 Fashion-MNIST test images and 40 windows of held-out text, with briefly trained FP32 models.

Oracles: the float32 reference path against a float64 forward written out here in numpy; the BN-folded network
against the unfolded one; the HFP8 path through the training layers against the same network assembled by hand
from DatapathOps and networks.fold_batch_norm (bit for bit); the reference against the training loop's own
evaluation; the weights file round trip."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hfp8sim.config.arch import resolve_arch
from hfp8sim.networks import fold_batch_norm
from hfp8sim.studies import fidelity_trained as study
from hfp8sim.traces import DatapathOps
from hfp8sim.training.inference import InferenceOps, fold_batch_norms, load_parameters, save_parameters
from hfp8sim.training.layers import BatchNorm, Conv2d, Linear
from hfp8sim.training.loop import evaluate, model_and_data, train
from hfp8sim.training.ops import TrainingOps

IMAGES = 200
WINDOWS = 40


@pytest.fixture(scope="module")
def cnn():
    config = dataclasses.replace(study.reference_configs()["cnn"], epochs=1, steps_per_epoch=30, eval_subset=IMAGES)
    result = train(config)
    return result.model, result.final.metric, *study._evaluation_set("cnn", model_and_data(config)[1], 32, IMAGES)


@pytest.fixture(scope="module")
def transformer():
    config = dataclasses.replace(study.reference_configs()["transformer"], steps_per_epoch=15, batch_size=16,
                                 eval_subset=WINDOWS)
    result = train(config)
    data = model_and_data(config)[1]
    return result.model, data, *study._evaluation_set("transformer", data, config.context, WINDOWS)


def _layers(model):
    return {m.name: m for m in model.modules if isinstance(m, (Conv2d, BatchNorm, Linear))}


def _numpy_cnn_float64(model, x):
    """The small CNN's inference forward in float64, written out (convolutions tap by tap, unfolded BN)."""
    layers = _layers(model)

    def conv(x, layer, groups=1):
        w, b = layer.weight.value.astype(np.float64), layer.bias.value.astype(np.float64)
        k, cg, r_dim, s_dim = w.shape
        n, c, h, wd = x.shape
        pad = r_dim // 2
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        out = np.zeros((n, k, h, wd))
        for r in range(r_dim):
            for s in range(s_dim):
                tap = xp[:, :, r:r + h, s:s + wd].reshape(n, groups, cg, h, wd)
                out += np.einsum("ngchw,gkc->ngkhw", tap, w[:, :, r, s].reshape(groups, k // groups, cg)
                                 ).reshape(n, k, h, wd)
        return out + b[None, :, None, None]

    def bn(x, layer):
        scale = layer.gamma.value / np.sqrt(layer.running_var.astype(np.float64) + layer.eps)
        return (x - layer.running_mean[None, :, None, None]) * scale[None, :, None, None] + \
            layer.beta.value.astype(np.float64)[None, :, None, None]

    def pool(x):
        n, c, h, w = x.shape
        return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    x = pool(np.maximum(bn(conv(x.astype(np.float64), layers["first"]), layers["stem.bn"]), 0))
    x = np.clip(bn(conv(x, layers["block.depthwise"], groups=x.shape[1]), layers["block.depthwise.bn"]), 0, 6)
    x = pool(np.maximum(bn(conv(x, layers["block.pointwise"]), layers["block.pointwise.bn"]), 0))
    last = layers["last"]
    return x.mean(axis=(2, 3)) @ last.weight.value.astype(np.float64) + last.bias.value


def test_float32_reference_equals_a_float64_forward_to_float32_rounding(cnn):
    model, _, images, _ = cnn
    logits = model.forward(images, TrainingOps("fp32", record=False), train=False)
    exact = _numpy_cnn_float64(model, images)
    assert logits.dtype == np.float32
    # float32 rounding through a few layers of at most 144-term sums: a few hundred ulps of the logits' scale
    assert np.max(np.abs(logits - exact)) <= 500 * 2.0**-24 * np.max(np.abs(exact))
    assert np.array_equal(logits.argmax(axis=1), exact.argmax(axis=1))


def test_batch_norm_folded_equals_unfolded_to_rounding(cnn):
    model, _, images, _ = cnn
    ops = TrainingOps("fp32", record=False)
    folded = fold_batch_norms(model)
    assert not any(isinstance(m, BatchNorm) for m in folded.modules)
    assert sum(isinstance(m, BatchNorm) for m in model.modules) == 3  # the original is untouched
    a, b = model.forward(images, ops, train=False), folded.forward(images, ops, train=False)
    assert 0 < np.max(np.abs(a - b)) <= 500 * 2.0**-24 * np.max(np.abs(a))  # rounded differently, same function
    assert np.array_equal(a.argmax(axis=1), b.argmax(axis=1))


def test_hfp8_path_is_the_hand_assembled_datapath_network_bit_for_bit(cnn):
    model, _, images, _ = cnn
    arch = resolve_arch(None)
    x = images[:50]
    case = study.TrainedCase("cnn", "hfp8", "per_channel")
    got = fold_batch_norms(model).forward(x, study.case_ops(case, arch), train=False)

    ops = DatapathOps.from_arch(arch, "hfp8", "per_channel", record=False)
    layers = _layers(model)

    def conv(x, name, bn, groups=1):
        conv_layer, norm = layers[name], layers[bn]
        w, b = fold_batch_norm(conv_layer.weight.value, conv_layer.bias.value, norm.gamma.value, norm.beta.value,
                               norm.running_mean, norm.running_var, norm.eps, np.dtype(np.float32))
        return ops.conv2d(name, x, w, (1, 1), (w.shape[2] // 2,) * 4, (1, 1), groups) + b[None, :, None, None]

    def pool(x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    h = pool(np.maximum(conv(x, "first", "stem.bn"), 0))
    h = np.clip(conv(h, "block.depthwise", "block.depthwise.bn", groups=h.shape[1]), 0, 6)
    h = pool(np.maximum(conv(h, "block.pointwise", "block.pointwise.bn"), 0)).mean(axis=(2, 3))
    want = ops.matmul("last", h, layers["last"].weight.value) + layers["last"].bias.value
    assert got.dtype == want.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_the_study_on_a_slice(cnn, transformer):
    arch = resolve_arch(None)
    model, trained_accuracy, images, labels = cnn
    reference, outcome = study.run_trained_case(study.TrainedCase("cnn", "fp32", fold=False), model, images, labels,
                                                None, arch)
    # the reference is the training loop's own evaluation
    assert reference["accuracy"] == trained_accuracy and reference["top1_agreement"] == 1.0
    rows = {}
    for scaling in ("per_tensor", "per_channel"):
        rows[scaling], _ = study.run_trained_case(study.TrainedCase("cnn", "hfp8", scaling), model, images, labels,
                                                  outcome, arch)
        assert rows[scaling]["inputs"] == IMAGES and rows[scaling]["batch_norm"] == "folded"
        assert 0.9 <= rows[scaling]["top1_agreement"] <= 1.0  # FP8 may flip a few close calls
        assert abs(rows[scaling]["accuracy"] - reference["accuracy"]) <= 0.05

    text_model, data, windows, targets = transformer
    ref_row, ref_out = study.run_trained_case(study.TrainedCase("transformer", "fp32", fold=False), text_model,
                                              windows, targets, None, arch)
    loss, perplexity = evaluate(text_model, data, TrainingOps("fp32", record=False), text=True, context=32,
                                limit=WINDOWS)
    assert ref_row["inputs"] == WINDOWS * 32 and math.isclose(ref_row["perplexity"], perplexity, rel_tol=1e-12)
    row, _ = study.run_trained_case(study.TrainedCase("transformer", "hfp8", "per_channel"), text_model, windows,
                                    targets, ref_out, arch)
    assert row["perplexity_ratio"] == pytest.approx(row["perplexity"] / ref_row["perplexity"], rel=1e-9)
    assert 0.97 <= row["perplexity_ratio"] <= 1.05 and 0.9 <= row["top1_agreement"] < 1.0


def test_weights_file_round_trip(cnn, tmp_path):
    model, _, images, _ = cnn
    path = save_parameters(model, tmp_path / "w.npz", {"note": "x"})
    fresh, _ = model_and_data(study.reference_configs()["cnn"])
    assert load_parameters(fresh, path) == {"note": "x"}
    ops = InferenceOps(DatapathOps("hfp8", record=False))
    a, b = model.forward(images[:20], ops, train=False), fresh.forward(images[:20], ops, train=False)
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
