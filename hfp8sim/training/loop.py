"""A training run: a model, a data set and a scheme, trained on the bit-accurate datapath, logged per step.

:class:`TrainConfig` says what to train (``model``: ``mlp``, ``cnn`` or ``transformer``; ``dataset``:
``digits``, ``fashion_mnist`` or ``pydoc``), in which scheme (every GEMM of every pass through
:class:`~hfp8sim.training.ops.TrainingOps` on the arch's core; ``fp32`` runs float32 numpy GEMMs), with which
tensor scaling recipe, loss scaling, optimizer and weight-update rule, and IBM's precision exceptions (first
and last layers, and the softmax input, in FP16).  :func:`train` runs it and returns a :class:`TrainResult`:
per step the loss, loss scale and skipped flag; per epoch the training loss, the test metric (accuracy for
images, validation loss and perplexity for text), the gradient underflow and saturation per layer, and the
time.  The same config and seed give the same bits (every random choice is seeded).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from ..config.arch import resolve_arch
from ..errors import TrainingError
from .data import evaluation_windows, load_digits, load_fashion_mnist, load_pydoc_text, minibatches, text_windows
from .inference import batch_norms, recalibrate_batch_norms
from .layers import SoftmaxCrossEntropy
from .loss_scaling import make_loss_scaler
from .models import char_transformer, first_last_fp16_overrides, mlp, small_cnn
from .ops import TrainingOps
from .loss_scaling import LOSS_SCALINGS
from .optim import OPTIMIZERS, UPDATE_RULES, Updater, make_optimizer, make_update_rule
from .scaling import CurrentScaling, DelayedScaling, FixedBias

MODELS = ("mlp", "cnn", "transformer")
DATASETS = ("digits", "fashion_mnist", "pydoc")
RECIPES = {"fixed": FixedBias, "current": CurrentScaling, "delayed": DelayedScaling}
Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: str = "mlp"
    dataset: str = "digits"
    scheme: str = "hfp8"
    arch: str | None = None  # arch config (its array and accumulators set the order of additions)
    epochs: int = 1
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    update_rule: str = "fp32_master"
    loss_scaling: str = "dynamic"
    recipe: str = "current"  # tensor scaling of FP8 operands
    first_last_fp16: bool = True
    softmax_fp16: bool = True
    seed: int = 0
    steps_per_epoch: int | None = None  # cut epochs short (text has no natural epoch: default 200 steps)
    context: int = 32  # characters per window (transformer)
    train_subset: int | None = None  # train on this many images only (a fixed seed-0 sample), to bound a study
    eval_subset: int | None = None  # evaluate on the first N test images / validation windows only
    # training images (a seed-0 sample of those the run trains on) whose batch statistics, with the weights of
    # the moment, replace the batch norms' moving averages for each evaluation ("precise BN", see evaluate_epoch);
    # 0: evaluate with the moving averages.  Models without batch norm ignore it.
    bn_recalibration: int = 2000

    # fields that change how a run is evaluated, never its weights (a stored model matches a config without them)
    EVALUATION_ONLY: ClassVar[tuple[str, ...]] = ("eval_subset", "bn_recalibration")

    def check(self) -> None:
        for key, value, allowed in (("model", self.model, MODELS), ("dataset", self.dataset, DATASETS),
                                    ("recipe", self.recipe, tuple(RECIPES)), ("optimizer", self.optimizer, OPTIMIZERS),
                                    ("weight-update rule", self.update_rule, UPDATE_RULES),
                                    ("loss scaling", self.loss_scaling, LOSS_SCALINGS)):
            if value not in allowed:
                raise TrainingError(f"unknown {key} {value!r}; allowed: {', '.join(allowed)}")
        if (self.model == "transformer") != (self.dataset == "pydoc"):
            raise TrainingError(f"model {self.model} cannot train on {self.dataset}: the transformer takes the "
                                "pydoc text, the image models digits or fashion_mnist")
        for key in ("epochs", "batch_size", "context"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise TrainingError(f"{key} must be a positive integer, got {getattr(self, key)!r}")
        for key in ("steps_per_epoch", "train_subset", "eval_subset"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise TrainingError(f"{key} must be a positive integer, got {value!r}")
        if not isinstance(self.bn_recalibration, int) or self.bn_recalibration < 0:
            raise TrainingError(f"bn_recalibration must be a non-negative integer (0: off), got "
                                f"{self.bn_recalibration!r}")
        if self.train_subset is not None and self.dataset == "pydoc":
            raise TrainingError("train_subset applies to image data sets; for text set steps_per_epoch")
        self._check_components()

    def weights_identity(self) -> dict:
        """The config as a dict without :attr:`EVALUATION_ONLY`: equal for two runs that train the same bits."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.EVALUATION_ONLY}

    def _check_components(self) -> None:
        """The optimizer, update rule, loss scaling, arch and scheme, built once by name so that a mistake in
        any of them is reported before the data is loaded and the first step is taken."""
        options = {"momentum": self.momentum} if self.optimizer == "sgd" else {}
        make_optimizer(self.optimizer, self.lr, **options)
        make_update_rule(self.update_rule)
        make_loss_scaler(self.loss_scaling)
        resolve_arch(self.arch).resolve_scheme(self.scheme)


@dataclasses.dataclass
class EpochLog:
    epoch: int
    train_loss: float  # mean over the epoch's steps that were not skipped
    metric_name: str  # "accuracy" or "perplexity"
    metric: float
    test_loss: float
    loss_scale: float  # at the end of the epoch
    skipped_steps: int
    gradient_underflow: dict[str, float]  # per layer: nonzero gradient elements flushed to zero / nonzero
    gradient_saturation: dict[str, float]  # per layer: saturated / elements
    seconds: float


@dataclasses.dataclass
class TrainResult:
    config: TrainConfig
    epochs: list[EpochLog]
    step_losses: list[float]
    loss_scales: list[float]
    skipped: list[bool]
    macs: int  # MACs through the datapath, every pass
    model: object = None  # the trained model (not serialised: ``hfp8sim train`` writes the logs only)

    @property
    def final(self) -> EpochLog:
        return self.epochs[-1]


def _narrow(config: TrainConfig) -> bool:
    """IBM's FP16 exceptions (first/last layers, softmax input) apply to schemes whose operands are narrower
    than 16 bits; an fp16 or fp32 run is left in its own format throughout."""
    return resolve_arch(config.arch).resolve_scheme(config.scheme).forward.bits < 16


def _ops(config: TrainConfig) -> TrainingOps:
    overrides = dict(first_last_fp16_overrides()) if config.first_last_fp16 and _narrow(config) else {}
    recipe = RECIPES[config.recipe]()
    return TrainingOps(config.scheme, config.arch, recipe=recipe, gradient_recipe=RECIPES[config.recipe](),
                       overrides=overrides)


def _softmax_input(config: TrainConfig) -> str:
    return "float16" if config.softmax_fp16 and _narrow(config) else "float32"


def model_and_data(config: TrainConfig):
    """(model, data set) of a checked config: the freshly initialised model (seeded) and the data it trains on."""
    config.check()
    return _model_and_data(config)


def _model_and_data(config: TrainConfig):
    softmax = _softmax_input(config)
    if config.dataset == "pydoc":
        text = load_pydoc_text()
        model = char_transformer(text.vocab_size, context=config.context, softmax_input=softmax, seed=config.seed)
        return model, text
    data = load_digits() if config.dataset == "digits" else load_fashion_mnist()
    channels, height, width = data.image_shape
    if config.model == "mlp":
        model = mlp(channels * height * width, 128 if config.dataset == "digits" else 256, len(data.classes),
                    seed=config.seed)
    else:
        model = small_cnn(channels, len(data.classes), seed=config.seed)
    return model, data


def _training_images(config: TrainConfig, data) -> tuple[np.ndarray, np.ndarray]:
    images, labels = data.train_images, data.train_labels
    if config.train_subset is not None and config.train_subset < len(labels):
        # one sample for every seed and scheme (seed 0), so that runs differ only in what they are meant to
        chosen = np.sort(np.random.default_rng(0).permutation(len(labels))[:config.train_subset])
        images, labels = images[chosen], labels[chosen]
    return images, labels


def _batches(config: TrainConfig, data, epoch: int):
    if config.dataset == "pydoc":
        return text_windows(data.train, config.context, config.batch_size, seed=config.seed, epoch=epoch,
                            batches=config.steps_per_epoch or 200)
    images, labels = _training_images(config, data)
    batches = minibatches(images, labels, config.batch_size, seed=config.seed, epoch=epoch)
    if config.steps_per_epoch is None:
        return batches
    return (batch for _, batch in zip(range(config.steps_per_epoch), batches))


def evaluate(model, data, ops: TrainingOps, *, text: bool, context: int, batch_size: int = 500,
             limit: int | None = None):
    """(test loss, metric): accuracy on the test images, or perplexity on the held-out text (the first ``limit``
    images or windows when given)."""
    loss_fn = SoftmaxCrossEntropy()
    if text:
        inputs, targets = evaluation_windows(data.validation, context)
    else:
        inputs, targets = data.test_images, data.test_labels
    inputs, targets = inputs[:limit], targets[:limit]
    total_loss, correct = 0.0, 0
    for start in range(0, len(inputs), batch_size):
        x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
        logits = model.forward(x, ops, train=False)
        total_loss += loss_fn.forward(logits, y, ops) * y.size
        correct += int((logits.argmax(axis=-1) == y).sum())
        ops.clear_records()
    mean = total_loss / targets.size
    return mean, (math.exp(mean) if text else correct / targets.size)


def evaluate_epoch(model, data, ops: TrainingOps, config: TrainConfig, *, last: bool = False):
    """(test loss, metric) of ``model`` as it stands after an epoch of ``config``, without touching the training:
    the scaling recipes' state (a delayed recipe's amax history) and, except after the ``last`` epoch, the
    batch norms' running statistics are restored afterwards, so that a run trains the same bits whether and
    however it is evaluated.  With ``config.bn_recalibration`` the batch norms first get the statistics of that
    many training images under the current weights, in the run's own forward formats
    (:func:`~hfp8sim.training.inference.recalibrate_batch_norms`): the moving averages follow the weights of
    the last ~10 steps, which still move fast early in training, and evaluating with them scattered the test
    accuracy of identical-looking runs by tens of points.  After the last epoch the recalibrated statistics
    stay, so the returned model computes the metric reported."""
    recipes = copy.deepcopy((ops.recipe, ops.gradient_recipe))
    norms = batch_norms(model)
    running = [(norm.running_mean, norm.running_var) for norm in norms]
    try:
        if config.bn_recalibration and norms:
            images, _ = _training_images(config, data)
            chosen = np.sort(np.random.default_rng(0).permutation(len(images))[:config.bn_recalibration])
            recalibrate_batch_norms(model, images[chosen], ops)
        return evaluate(model, data, ops, text=config.dataset == "pydoc", context=config.context,
                        limit=config.eval_subset)
    finally:
        ops.recipe, ops.gradient_recipe = recipes
        if not last:
            for norm, (mean, var) in zip(norms, running):
                norm.running_mean, norm.running_var = mean, var


def validate(config: TrainConfig) -> None:
    """Raise what a run of ``config`` would fail on before its first step (a bad config, an unknown scheme or one
    without a backward format, a missing data set), so that a command can refuse it before it reports anything."""
    config.check()
    _ops(config)
    _model_and_data(config)  # the data sets are loaded once per process: train() reuses them


def train(config: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` (see the module notes)."""
    config.check()
    ops = _ops(config)  # an unknown scheme, or one without a backward format, fails here: before any data is read
    model, data = _model_and_data(config)
    loss_fn = SoftmaxCrossEntropy(_softmax_input(config))
    scaler = make_loss_scaler(config.loss_scaling)
    options = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
    updater = Updater(model.parameters(), make_optimizer(config.optimizer, config.lr, **options),
                      make_update_rule(config.update_rule, weight_format=ops.scheme.forward, seed=config.seed),
                      non_weight_rule=make_update_rule("fp32_master"))
    result = TrainResult(config, [], [], [], [], 0, model)
    for epoch in range(config.epochs):
        start, losses, skipped_before = time.perf_counter(), [], scaler.skipped_steps
        stats: dict = {"sums": {}}
        for x, y in _batches(config, data, epoch):
            loss, skipped = _step(model, loss_fn, ops, updater, scaler, x, y)
            result.macs += sum(call.macs for call in ops.records)
            _accumulate(stats, ops)
            ops.clear_records()
            result.step_losses.append(loss)
            result.loss_scales.append(scaler.log[-1].scale)
            result.skipped.append(skipped)
            if not skipped:
                losses.append(loss)
        underflow, saturation = _rates(stats)
        test_loss, metric = evaluate_epoch(model, data, ops, config, last=epoch == config.epochs - 1)
        log = EpochLog(epoch, float(np.mean(losses)) if losses else math.nan,
                       "perplexity" if config.dataset == "pydoc" else "accuracy", metric, test_loss, scaler.scale,
                       scaler.skipped_steps - skipped_before, underflow, saturation, time.perf_counter() - start)
        result.epochs.append(log)
        if progress:
            progress(f"epoch {epoch + 1}/{config.epochs}: loss {log.train_loss:.4f}, {log.metric_name} "
                     f"{metric:.4f}, loss scale {scaler.scale:g}, {log.skipped_steps} skipped, {log.seconds:.1f} s")
    return result


def _step(model, loss_fn, ops, updater, scaler, x, y) -> tuple[float, bool]:
    """One training step: forward, loss, scaled backward, unscale/skip, update."""
    logits = model.forward(x, ops, train=True)
    loss = loss_fn.forward(logits, y, ops)
    updater.zero_grad()
    model.backward(loss_fn.backward(loss_scale=scaler.scale), ops)
    return loss, updater.step(scaler)


def _accumulate(stats: dict, ops: TrainingOps) -> None:
    for layer, row in ops.underflow_by_layer().items():
        sums = stats["sums"].setdefault(layer, {"elements": 0, "nonzero": 0, "underflow": 0, "saturated": 0})
        for key in sums:
            sums[key] += row[key]


def _rates(stats: dict) -> tuple[dict[str, float], dict[str, float]]:
    sums = stats["sums"]
    underflow = {layer: (s["underflow"] / s["nonzero"] if s["nonzero"] else 0.0) for layer, s in sums.items()}
    saturation = {layer: (s["saturated"] / s["elements"] if s["elements"] else 0.0)
                  for layer, s in sums.items()}
    return underflow, saturation


__all__ = ["DATASETS", "MODELS", "RECIPES", "EpochLog", "TrainConfig", "TrainResult", "evaluate", "evaluate_epoch",
           "model_and_data", "train", "validate"]
