"""Batch-norm statistics recomputed with the final weights (training.inference.recalibrate_batch_norms).

Oracles: the stem norm's statistics against a numpy float64 convolution and per-batch mean / unbiased variance
written out here (uneven batches, so the size weighting shows); the model's inference function against its
training-mode function on the very images it was calibrated on; and, on a real short run of the fidelity study's
CNN config, the train/eval accuracy gap that the moving-average statistics leave and recalibration closes."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from hfp8sim.errors import TrainingError
from hfp8sim.studies import fidelity_trained as study
from hfp8sim.training.data import load_digits
from hfp8sim.training.inference import recalibrate_batch_norms
from hfp8sim.training.layers import BatchNorm
from hfp8sim.training import loop
from hfp8sim.training.loop import train
from hfp8sim.training.models import small_cnn
from hfp8sim.training.ops import TrainingOps


def _norms(model):
    return [m for m in model.modules if isinstance(m, BatchNorm)]


def _trained_digits_cnn(steps: int = 5):
    """A digits CNN after a few float32 steps, so that its moving-average statistics are not the images'."""
    config = study.reference_configs()["cnn"]
    config = dataclasses.replace(config, dataset="digits", epochs=1, steps_per_epoch=steps, eval_subset=50)
    return train(config).model, load_digits()


def _stem_statistics(model, images, batch):
    """Image-weighted mean over the batches of each batch's per-channel mean and unbiased variance of the stem
    convolution's output, in float64 (a 3x3, padding 1, convolution written tap by tap)."""
    conv = model.modules[0]
    w, b = conv.weight.value.astype(np.float64), conv.bias.value.astype(np.float64)
    x = np.pad(images.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, wd = images.shape[2:]
    y = sum(np.einsum("nhw,k->nkhw", x[:, 0, r:r + h, s:s + wd], w[:, 0, r, s]) for r in range(3) for s in range(3))
    y = y + b[None, :, None, None]
    means, variances, sizes = [], [], []
    for start in range(0, len(images), batch):
        part = y[start:start + batch]
        means.append(part.mean(axis=(0, 2, 3)))
        variances.append(part.var(axis=(0, 2, 3), ddof=1))
        sizes.append(len(part))
    weights = np.array(sizes, np.float64) / sum(sizes)
    return weights @ np.array(means), weights @ np.array(variances)


def test_statistics_equal_a_numpy_reference_with_uneven_batches():
    model, data = _trained_digits_cnn()
    images = data.train_images[:300]
    before = [p.value.copy() for p in model.parameters()]
    momenta = [n.momentum for n in _norms(model)]
    assert recalibrate_batch_norms(model, images, TrainingOps("fp32", record=False), batch_size=128) == 300
    mean, var = _stem_statistics(model, images, 128)  # batches of 128, 128 and 44 images
    stem = _norms(model)[0]
    np.testing.assert_allclose(stem.running_mean, mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stem.running_var, var, rtol=1e-4)
    assert [n.momentum for n in _norms(model)] == momenta == [0.1, 0.1, 0.1]
    assert all(np.array_equal(a, p.value) for a, p in zip(before, model.parameters()))  # weights untouched


def test_calibrated_on_one_batch_inference_is_the_training_mode_function():
    model, data = _trained_digits_cnn()
    images = data.test_images[:200]
    ops = TrainingOps("fp32", record=False)
    moving_average = model.forward(images, ops, train=False)
    recalibrate_batch_norms(model, images, ops, batch_size=len(images))
    inference = model.forward(images, ops, train=False)
    training_mode = copy.deepcopy(model).forward(images, ops, train=True)
    # same statistics but for the variance's count/(count - 1) factor, count >= 200 * 4 * 4 positions: ~1e-4
    scale = np.max(np.abs(training_mode))
    assert np.max(np.abs(inference - training_mode)) <= 2e-3 * scale
    assert np.max(np.abs(moving_average - training_mode)) > 20 * np.max(np.abs(inference - training_mode))


def test_bad_arguments_are_one_line_errors():
    model = small_cnn(1, 10)
    with pytest.raises(TrainingError, match="needs images"):
        recalibrate_batch_norms(model, np.zeros((0, 1, 8, 8), np.float32), TrainingOps("fp32", record=False))


def test_fidelity_reference_cnn_has_no_train_eval_gap(tmp_path, monkeypatch):
    """The regression the fidelity report showed: on a short real run of the study's CNN config (SGD lr 0.05,
    momentum 0.9), the moving-average statistics put test accuracy far below the training-mode function's;
    the reference the study maps to FP8 is within a few images of it."""
    config = dataclasses.replace(study.reference_configs()["cnn"], epochs=1, steps_per_epoch=30, eval_subset=100,
                                 bn_recalibration=0)  # the model as the training steps left it
    monkeypatch.setattr(study, "reference_configs", lambda: {"cnn": config})
    monkeypatch.setitem(study.BN_RECALIBRATION, "images", 2000)
    runs = []

    def train_and_keep_a_copy(*args, **kwargs):
        result = train(*args, **kwargs)
        runs.append(copy.deepcopy(result.model))  # statistics as the training steps left them
        return result

    monkeypatch.setattr(loop, "train", train_and_keep_a_copy)
    model, data, metadata = study.reference_model("cnn", tmp_path)
    assert metadata["batch_norm_statistics"] == study.BN_RECALIBRATION and metadata["loaded_from"] is None
    images, labels = data.test_images[:500], data.test_labels[:500]
    ops = TrainingOps("fp32", record=False)

    def accuracy(network, train):
        return float(np.mean(network.forward(images, ops, train=train).argmax(axis=1) == labels))

    batch_statistics = accuracy(copy.deepcopy(model), True)
    assert abs(accuracy(model, False) - batch_statistics) <= 0.03
    [as_trained] = runs
    assert all(np.array_equal(a.value, b.value) for a, b in zip(as_trained.parameters(), model.parameters()))
    assert batch_statistics - accuracy(as_trained, False) >= 0.05
    # the file keeps the recomputed statistics; a file made with another recalibration is stale (retrained)
    loaded, _, again = study.reference_model("cnn", tmp_path)
    assert again["loaded_from"] == study.WEIGHTS_FILE.format(model="cnn")
    assert all(np.array_equal(a.running_var, b.running_var) for a, b in zip(_norms(loaded), _norms(model)))
    monkeypatch.setitem(study.BN_RECALIBRATION, "images", 1000)

    def refuse(*args, **kwargs):
        raise RuntimeError("retrained")

    monkeypatch.setattr(loop, "train", refuse)
    with pytest.raises(RuntimeError, match="retrained"):
        study.reference_model("cnn", tmp_path)
