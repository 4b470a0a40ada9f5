"""Inference without retraining on a real test set: networks trained here in FP32, mapped straight to each scheme.

The small CNN with a depthwise-separable block (Fashion-MNIST) and the character transformer (the pydoc text)
of :mod:`hfp8sim.training.models` are trained once in FP32 with :func:`hfp8sim.training.loop.train`
(:data:`REFERENCE_CONFIGS`: fixed seed, a budget of a few minutes on 2 cores).  Their weights are kept in
``<out>/trained_fp32_<model>.npz`` with the config they came from; a file whose config (or, for the text, whose
vocabulary) does not match is retrained and rewritten, so the study regenerates them deterministically when
they are missing.  Then, with no retraining, every forward GEMM of the full 10,000-image test set and of every
held-out text window runs on the bit-accurate datapath (:class:`~hfp8sim.traces.DatapathOps` with the arch's
own arithmetic: on the default core two FP8 products per PE step, the FMMA pair mode) in each scheme, with
weight scales per tensor and per output channel; batch norm folded into the convolutions first
(:func:`~hfp8sim.training.inference.fold_batch_norms`); activations one scale per tensor from each call's own
amax; batch-norm-free ops (pooling, ReLU/ReLU6, GELU, LayerNorm, softmax with a float32 input) in float32.

Compared with the model as trained (float32 numpy GEMMs, batch norm unfolded, :class:`TrainingOps` ``fp32``,
the path the training loop evaluates with): accuracy and top-1 agreement (the predicted class, or the most
likely next character, equals float32's), mean cross-entropy and, for the text, perplexity and its ratio to
float32's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

SCHEMES = ("hfp8", "fp8_e5m2", "ocp_fp8", "fp16")
SCALINGS = ("per_tensor", "per_channel")
IMAGE_BATCH = 500
TEXT_BATCH = 128
ALL_IN_SCHEME = "all GEMMs in the scheme"
FIRST_LAST_FP16 = "first and last layers in float16"
RESULT_FIELDS = ("network", "dataset", "scheme", "forward_format", "scaling", "batch_norm", "variant",
                 "arithmetic", "inputs", "accuracy", "top1_agreement", "loss", "perplexity", "perplexity_ratio",
                 "seconds")
WEIGHTS_FILE = "trained_fp32_{model}.npz"
# the CNN's batch-norm statistics, recomputed after training (see the module notes): a seed-0 sample of the
# training images, in batches of this size; stored with the weights, so a file made without it is retrained
BN_RECALIBRATION = {"method": "recomputed with the final weights", "images": 10_000, "batch": 500, "seed": 0}


def reference_configs():
    """The FP32 training runs whose weights the study maps: CNN two epochs of Fashion-MNIST (SGD, momentum 0.9),
    transformer 600 steps of 32 windows of 32 characters (Adam); float32 throughout, seed 0."""
    from ..training.loop import TrainConfig

    common = dict(scheme="fp32", first_last_fp16=False, softmax_fp16=False, loss_scaling="none", seed=0)
    return {
        "cnn": TrainConfig(model="cnn", dataset="fashion_mnist", epochs=2, batch_size=64, optimizer="sgd", lr=0.05,
                           **common),
        "transformer": TrainConfig(model="transformer", dataset="pydoc", epochs=1, steps_per_epoch=600,
                                   batch_size=32, optimizer="adam", lr=3e-3, context=32, **common),
    }


@dataclasses.dataclass(frozen=True)
class TrainedCase:
    model: str  # "cnn" or "transformer"
    scheme: str  # "fp32": float32 numpy GEMMs; else a datapath scheme
    scaling: str = "per_tensor"
    fold: bool = True  # batch norms folded (the CNN; the transformer has none)
    variant: str = ALL_IN_SCHEME
    overrides: tuple[tuple[str, str], ...] = ()


def default_trained_cases() -> list[TrainedCase]:
    """Per model: float32 as trained (the reference), float32 with batch norm folded (the CNN), each scheme with
    both weight scalings (``fp16``: per tensor only, 16-bit operands are never scaled up), and ``hfp8`` with
    IBM's first and last layers in FP16."""
    from ..training.models import first_last_fp16_overrides

    cases = []
    for model in ("cnn", "transformer"):
        cases.append(TrainedCase(model, "fp32", fold=False))
        if model == "cnn":
            cases.append(TrainedCase(model, "fp32"))
        for scheme in SCHEMES:
            for scaling in SCALINGS if scheme != "fp16" else ("per_tensor",):
                cases.append(TrainedCase(model, scheme, scaling))
        cases.append(TrainedCase(model, "hfp8", "per_channel", variant=FIRST_LAST_FP16,
                                 overrides=tuple(sorted(first_last_fp16_overrides().items()))))
    return cases


def _vocabulary_sha256(data) -> str | None:
    vocabulary = getattr(data, "vocabulary", None)
    return None if vocabulary is None else hashlib.sha256(vocabulary.encode("utf-8")).hexdigest()


def reference_model(name: str, folder: str | Path, *, retrain: bool = False,
                    progress: Callable[[str], None] | None = None):
    """(model, data, metadata) of a reference run: loaded from ``folder`` when the file matches its config and
    data, else trained (and saved)."""
    from ..training.inference import load_parameters, save_parameters
    from ..training.loop import model_and_data, train

    config = reference_configs()[name]
    model, data = model_and_data(config)
    path = Path(folder) / WEIGHTS_FILE.format(model=name)
    expected = {"config": config.weights_identity(), "vocabulary_sha256": _vocabulary_sha256(data),
                "batch_norm_statistics": BN_RECALIBRATION if name == "cnn" else None}
    if path.is_file() and not retrain:
        stored = load_parameters(model, path)
        # how the training run evaluated itself does not change its weights: those fields are not compared
        stored_config = {k: v for k, v in (stored.get("config") or {}).items() if k not in config.EVALUATION_ONLY}
        if all((stored_config if k == "config" else stored.get(k)) == v for k, v in expected.items()):
            return model, data, stored | {"loaded_from": path.name}
    say = progress or (lambda line: None)
    say(f"fidelity: training the fp32 {name} ({path.name} missing, stale or --retrain)")
    result = train(config, progress=lambda line: say(f"  {name}: {line}"))
    final = result.final
    metadata = expected | {"train_seconds": round(sum(e.seconds for e in result.epochs), 1),
                           "train_metric": final.metric_name, "train_final_metric": final.metric,
                           "train_steps": len(result.step_losses)}
    if expected["batch_norm_statistics"] is not None:
        recalibrate_reference(result.model, data)
    save_parameters(result.model, path, metadata)
    return result.model, data, metadata | {"loaded_from": None}


def recalibrate_reference(model, data) -> None:
    """Replace the moving-average batch-norm statistics of a trained image model by those of its final weights
    over :data:`BN_RECALIBRATION`'s training images (a seed-0 sample, never test images); see the module notes."""
    from ..training.inference import recalibrate_batch_norms
    from ..training.ops import TrainingOps

    chosen = np.sort(np.random.default_rng(BN_RECALIBRATION["seed"]).permutation(len(data.train_labels))
                     [:BN_RECALIBRATION["images"]])
    recalibrate_batch_norms(model, data.train_images[chosen], TrainingOps("fp32", record=False),
                            BN_RECALIBRATION["batch"])


def _evaluation_set(name: str, data, context: int, limit: int | None):
    from ..training.data import evaluation_windows

    if name == "transformer":
        inputs, targets = evaluation_windows(data.validation, context)
    else:
        inputs, targets = data.test_images, data.test_labels
    return inputs[:limit], targets[:limit]


def predict(model, ops, inputs: np.ndarray, targets: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    """(predictions, mean cross-entropy over every target) of a model's forward pass with ``ops``."""
    from ..training.layers import SoftmaxCrossEntropy

    loss_fn = SoftmaxCrossEntropy()
    predictions, total = [], 0.0
    for start in range(0, len(inputs), batch):
        x, y = inputs[start:start + batch], targets[start:start + batch]
        logits = model.forward(x, ops, train=False)
        total += loss_fn.forward(logits, y, ops) * y.size
        predictions.append(logits.argmax(axis=-1))
    return np.concatenate(predictions), total / targets.size


def case_ops(case: TrainedCase, arch):
    """The ops a case runs its forward pass with (see the module notes)."""
    from ..traces import DatapathOps
    from ..training.inference import InferenceOps
    from ..training.ops import TrainingOps

    if case.scheme == "fp32":
        return TrainingOps("fp32", arch, record=False)
    return InferenceOps(DatapathOps.from_arch(arch, case.scheme, case.scaling, overrides=dict(case.overrides),
                                              record=False))


def run_trained_case(case: TrainedCase, model, inputs, targets, reference: dict | None, arch) -> tuple[dict, dict]:
    """One case: its result row, and (predictions, loss) for the reference to compare later cases with."""
    from ..traces.datapath_ops import describe_arith
    from ..training.inference import fold_batch_norms

    text = case.model == "transformer"
    ops = case_ops(case, arch)
    start = time.perf_counter()
    network = fold_batch_norms(model) if case.fold else model
    predictions, loss = predict(network, ops, inputs, targets, TEXT_BATCH if text else IMAGE_BATCH)
    seconds = time.perf_counter() - start
    inner = getattr(ops, "ops", None)
    row = {"network": "char_transformer" if text else "small_cnn", "dataset": "pydoc" if text else "fashion_mnist",
           "scheme": case.scheme, "forward_format": "float32" if inner is None else inner.scheme.forward.name,
           "scaling": "" if case.scheme == "fp32" else case.scaling,
           "batch_norm": "none" if text else ("folded" if case.fold else "as trained"), "variant": case.variant,
           "arithmetic": "numpy float32 matmul" if inner is None else describe_arith(inner.arith),
           "inputs": int(targets.size), "accuracy": float(np.mean(predictions == targets.reshape(predictions.shape))),
           "loss": float(loss), "seconds": round(seconds, 1)}
    ref = reference or {"predictions": predictions, "loss": loss}
    row["top1_agreement"] = float(np.mean(predictions == ref["predictions"]))
    if text:
        row["perplexity"] = math.exp(loss)
        row["perplexity_ratio"] = math.exp(loss - ref["loss"])
    return row, {"predictions": predictions, "loss": loss}


def run_trained_study(out: str | Path, *, arch=None, cases: Sequence[TrainedCase] | None = None,
                      limit: int | None = None, retrain: bool = False,
                      progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Train or load the FP32 reference models, run ``cases`` (default :func:`default_trained_cases`; each
    model's first case is its reference and must be ``fp32`` as trained) on the first ``limit`` test images /
    validation windows (all by default), and write ``fidelity_trained.csv`` and ``fidelity_trained_run.json``
    into ``out``; returns their paths."""
    from ..config.arch import resolve_arch
    from ..errors import TrainingError

    started = time.perf_counter()
    say = progress or (lambda line: None)
    arch_config = resolve_arch(arch)
    cases = list(cases) if cases is not None else default_trained_cases()
    folder = Path(out)
    rows, models = [], {}
    for i, case in enumerate(cases):
        if case.model not in models:
            model, data, metadata = reference_model(case.model, folder, retrain=retrain, progress=say)
            context = reference_configs()[case.model].context
            models[case.model] = {"model": model, "set": _evaluation_set(case.model, data, context, limit),
                                  "metadata": metadata, "reference": None}
            if case.scheme != "fp32" or case.fold:
                raise TrainingError(f"the first {case.model} case is the reference: fp32 with batch norm as "
                                    "trained (fold=False)")
        entry = models[case.model]
        row, outcome = run_trained_case(case, entry["model"], *entry["set"], entry["reference"], arch_config)
        entry["reference"] = entry["reference"] or outcome
        rows.append(row)
        extra = f", perplexity {row['perplexity']:.3f} (x{row['perplexity_ratio']:.4f})" if "perplexity" in row else ""
        say(f"fidelity: [{i + 1}/{len(cases)}] {row['network']} {case.scheme} {row['scaling']} {case.variant}: "
            f"accuracy {row['accuracy']:.4f}, agreement {row['top1_agreement']:.4f}{extra} ({row['seconds']:.0f} s)")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"results": folder / "fidelity_trained.csv", "run": folder / "fidelity_trained_run.json"}
    from .fidelity import _write_csv

    _write_csv(paths["results"], RESULT_FIELDS, rows)
    run = {"wall_seconds": round(time.perf_counter() - started, 1), "arch": arch_config.name, "limit": limit,
           "models": {name: {k: v for k, v in entry["metadata"].items()} for name, entry in models.items()}}
    paths["run"].write_text(json.dumps(run, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return paths
