"""Inference with a trained model of this library: batch norms folded, the forward pass on any network ops.

* :func:`fold_batch_norms`: a copy of a model in which every BatchNorm that follows a Conv2d (or a Linear) is
  folded into it with :func:`hfp8sim.networks.fold_batch_norm` (``w' = w * gamma / sqrt(var + eps)``, ``b' =
  (b - mean) * s + beta``, computed in float64 and rounded once to float32), as deployment toolchains fold it
  before they quantize the weights: the datapath then quantizes the folded weights.
* :class:`InferenceOps`: the forward GEMMs of a model (``ops.matmul`` / ``ops.conv2d`` as the layers call
  them) run on a :class:`~hfp8sim.networks.GemmOps`, e.g. the bit-accurate
  :class:`~hfp8sim.traces.DatapathOps` with per-tensor or per-channel weight scales; a backward pass is refused.
* :func:`recalibrate_batch_norms`: running statistics recomputed with the final weights over a set of training
  images (the population mean and variance, "precise BN"), in place of the exponential moving average the
  training steps kept: that average follows the weights of the last ~1/momentum steps, which still move when
  the learning rate is high, so the inference function of the model as trained can be far from the one it
  was trained as (measured on the small CNN: 9 points of test accuracy after 313 SGD steps at lr 0.05).
* :func:`save_parameters` / :func:`load_parameters`: a model's parameters and batch-norm running statistics in
  a ``.npz`` file, by name.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from ..errors import TrainingError
from ..networks import fold_batch_norm
from ..vocabulary import Pass, Role
from .layers import BatchNorm, Conv2d, Linear, Module, Residual, Sequential
from .tensors import Parameter

METADATA_KEY = "__metadata__"


def fold_batch_norms(model: Module) -> Module:
    """A copy of ``model`` in which each BatchNorm right after a Conv2d or Linear (in a Sequential) is folded
    into that layer's weights and bias; the original model is not changed.  Running statistics are used, so
    the folded model computes the inference (``train=False``) function of the original."""
    if isinstance(model, Residual):
        folded = copy.copy(model)
        folded.body = fold_batch_norms(model.body)
        return folded
    if not isinstance(model, Sequential):
        return model
    modules: list[Module] = []
    for module in model.modules:
        previous = modules[-1] if modules else None
        if isinstance(module, BatchNorm) and isinstance(previous, (Conv2d, Linear)):
            modules[-1] = _folded_layer(previous, module)
        else:
            modules.append(fold_batch_norms(module))
    return Sequential(*modules, name=model.name)


def _folded_layer(layer: Conv2d | Linear, norm: BatchNorm) -> Conv2d | Linear:
    weight = np.asarray(layer.weight.value, np.float32)
    # a Linear stores [in, out]: the output channel is the last axis, fold_batch_norm scales axis 0
    as_out_first = weight if isinstance(layer, Conv2d) else weight.T
    bias = None if layer.bias is None else np.asarray(layer.bias.value, np.float32)
    folded_w, folded_b = fold_batch_norm(as_out_first, bias, norm.gamma.value, norm.beta.value, norm.running_mean,
                                         norm.running_var, norm.eps, np.dtype(np.float32))
    folded = copy.copy(layer)
    folded.weight = Parameter(layer.weight.name, folded_w if isinstance(layer, Conv2d) else folded_w.T)
    folded.bias = Parameter(f"{layer.name}.bias", folded_b, "bias")
    folded._x = folded._w = None
    return folded


class InferenceOps:
    """The forward pass of a model of this library on a :class:`~hfp8sim.networks.GemmOps` (see the module
    notes): ``matmul`` and ``conv2d`` with the layers' signatures, forwarded with the layer name and roles."""

    def __init__(self, ops):
        self.ops = ops
        self.float_dtype = np.dtype(ops.float_dtype)

    def __repr__(self) -> str:
        return f"InferenceOps({self.ops!r})"

    @staticmethod
    def _forward_only(layer: str, pass_) -> None:
        if Pass(pass_) != Pass.FORWARD:
            raise TrainingError(f"layer {layer}: inference ops run the forward pass only, not {Pass(pass_)}")

    def matmul(self, layer: str, pass_, a, b, a_role, b_role) -> np.ndarray:
        self._forward_only(layer, pass_)
        out = self.ops.matmul(layer, np.asarray(a), np.asarray(b), str(Role(a_role)), str(Role(b_role)))
        return np.asarray(out, dtype=self.float_dtype)

    def conv2d(self, layer: str, x, w, stride=1, padding=0, groups: int = 1) -> np.ndarray:
        stride = (stride, stride) if np.isscalar(stride) else tuple(stride)
        padding = (padding,) * 4 if np.isscalar(padding) else tuple(padding)
        out = self.ops.conv2d(layer, np.asarray(x), np.asarray(w), stride, padding, (1, 1), groups)
        return np.asarray(out, dtype=self.float_dtype)

    def clear_records(self) -> None:
        """Nothing to clear: records, if any, belong to the wrapped ops."""


def batch_norms(model: Module) -> list[BatchNorm]:
    """Every BatchNorm of ``model``, in order."""
    if isinstance(model, BatchNorm):
        return [model]
    if isinstance(model, Sequential):
        return [n for m in model.modules for n in batch_norms(m)]
    if isinstance(model, Residual):
        return batch_norms(model.body)
    return []


def recalibrate_batch_norms(model: Module, images: np.ndarray, ops, batch_size: int = 500) -> int:
    """Set every BatchNorm's running statistics of ``model`` to those of ``images`` with the current weights:
    a forward pass in training mode, batch by batch, each norm's moving-average weight set to the batch's share
    of the images seen so far (``n_k / (n_1 + ... + n_k)``), so that the result is the image-weighted mean over
    the batches of each batch's mean and unbiased variance, whatever the norm's own momentum (restored after).
    The mean is the population mean exactly; the variance leaves out the spread of the batch means, which is
    small for batches of hundreds of images (each norm sees every position of every image).  Parameters are not
    changed.  Returns the number of images used."""
    images = np.asarray(images)
    if len(images) == 0 or batch_size < 1:
        raise TrainingError(f"batch-norm recalibration needs images and a positive batch size, got "
                            f"{len(images)} images in batches of {batch_size}")
    norms = batch_norms(model)
    momenta = [norm.momentum for norm in norms]
    seen = 0
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            seen += len(batch)
            for norm in norms:
                norm.momentum = len(batch) / seen
            model.forward(batch, ops, train=True)
            if hasattr(ops, "clear_records"):
                ops.clear_records()
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
    return seen


def save_parameters(model: Module, path: str | Path, metadata: dict | None = None) -> Path:
    """Write the model's parameter values and batch-norm running statistics (by name) and ``metadata`` (JSON)
    into a compressed ``.npz``."""
    arrays = {p.name: np.asarray(p.value, np.float32) for p in model.parameters()}
    for norm in batch_norms(model):
        arrays[f"{norm.name}.running_mean"] = norm.running_mean
        arrays[f"{norm.name}.running_var"] = norm.running_var
    arrays[METADATA_KEY] = np.array(json.dumps(metadata or {}, sort_keys=True))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def load_parameters(model: Module, path: str | Path) -> dict:
    """Set the model's parameters and running statistics from a file of :func:`save_parameters`; returns its
    metadata.  Every tensor of the model must be in the file with its shape."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        stored = {key: data[key] for key in data.files}
    targets = {p.name: p for p in model.parameters()}
    norms = {n.name: n for n in batch_norms(model)}
    wanted = [*targets, *(f"{n}.{s}" for n in norms for s in ("running_mean", "running_var"))]
    for key in wanted:
        if key not in stored:
            raise TrainingError(f"{path}: no tensor {key!r} for this model")
    for name, parameter in targets.items():
        if stored[name].shape != parameter.shape:
            raise TrainingError(f"{path}: {name} has shape {stored[name].shape}, the model {parameter.shape}")
        parameter.value = stored[name].astype(np.float32)
    for name, norm in norms.items():
        norm.running_mean = stored[f"{name}.running_mean"].astype(np.float32)
        norm.running_var = stored[f"{name}.running_var"].astype(np.float32)
    return json.loads(str(stored[METADATA_KEY])) if METADATA_KEY in stored else {}


__all__ = ["InferenceOps", "batch_norms", "fold_batch_norms", "load_parameters", "recalibrate_batch_norms", "save_parameters"]
