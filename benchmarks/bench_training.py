"""Training throughput on the bit-accurate datapath: the Fashion-MNIST CNN (``small_cnn``) under ``hfp8``, batch
64, every GEMM of every pass through the datapath, against the same step under ``fp32`` (float32 numpy GEMMs)
measured in the same run.

    python benchmarks/bench_training.py [--steps 30] [--dataset fashion_mnist] [--batch-size 64]
                                        [--eval-images 10000] [--full-epoch]

Target (issue 13): one epoch (60,000 images, 938 steps of 64, then the 10,000-image test set) in <= 5 minutes
on the 2-core machine.  The projection is the median step time x steps per epoch + the measured evaluation
of ``--eval-images`` test images scaled to the whole test set; ``--full-epoch`` also runs
``hfp8sim.training.loop.train`` for one real epoch and prints its wall time.  The setup follows
``TrainConfig``'s defaults (current scaling, FP16 first and last layers and softmax input, SGD with momentum,
FP32 master weights, dynamic loss scaling).  Steps are timed after two warm-up steps (Numba compiles or loads
its cache in the first), the two schemes in turns so that both see the same load; the machine's load average
is printed, since a busy machine slows every figure.  numpy's BLAS runs on one thread (see below).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

# numpy's OpenBLAS threads busy-wait between calls; on the shared 2-core machine that made the fp32 baseline's
# steps about 5x slower (355 ms against 61 ms with one thread) and the ratio meaningless.  One BLAS thread
# unless the caller sets another count (it must be set before numpy loads OpenBLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numba  # noqa: E402

from hfp8sim.training.data import load_digits, load_fashion_mnist, minibatches  # noqa: E402
from hfp8sim.training.layers import SoftmaxCrossEntropy  # noqa: E402
from hfp8sim.training.loop import TrainConfig, evaluate, train  # noqa: E402
from hfp8sim.training.loss_scaling import make_loss_scaler  # noqa: E402
from hfp8sim.training.models import first_last_fp16_overrides, small_cnn  # noqa: E402
from hfp8sim.training.ops import TrainingOps  # noqa: E402
from hfp8sim.training.optim import Updater, make_optimizer, make_update_rule  # noqa: E402
from hfp8sim.training.scaling import CurrentScaling  # noqa: E402

TARGET_SECONDS = 300.0
WARMUP_STEPS = 2


def _load(dataset: str):
    return load_fashion_mnist() if dataset == "fashion_mnist" else load_digits()


class Trainer:
    """One model, its ops and optimizer under one scheme, stepping through the shuffled training set."""

    def __init__(self, scheme: str, data, batch_size: int):
        defaults = TrainConfig()
        self.data = data
        self.ops = TrainingOps(scheme, recipe=CurrentScaling(), gradient_recipe=CurrentScaling(),
                               overrides=first_last_fp16_overrides())
        self.model = small_cnn(data.image_shape[0], len(data.classes), seed=0)
        self.loss_fn = SoftmaxCrossEntropy("float16")
        self.scaler = make_loss_scaler(defaults.loss_scaling)
        self.updater = Updater(self.model.parameters(),
                               make_optimizer("sgd", defaults.lr, momentum=defaults.momentum),
                               make_update_rule(defaults.update_rule, weight_format=self.ops.scheme.forward, seed=0),
                               non_weight_rule=make_update_rule("fp32_master"))
        self.batches = minibatches(data.train_images, data.train_labels, batch_size, seed=0, epoch=0)

    def step(self) -> tuple[float, int]:
        """(seconds, MACs through the GEMMs of every pass) of one training step."""
        x, y = next(self.batches)
        start = time.perf_counter()
        logits = self.model.forward(x, self.ops, train=True)
        self.loss_fn.forward(logits, y, self.ops)
        self.updater.zero_grad()
        self.model.backward(self.loss_fn.backward(loss_scale=self.scaler.scale), self.ops)
        self.updater.step(self.scaler)
        elapsed = time.perf_counter() - start
        macs = sum(call.macs for call in self.ops.records)
        self.ops.clear_records()
        return elapsed, macs

    def evaluate(self, images: int) -> tuple[float, int]:
        """(seconds, images) to evaluate the first ``images`` test images (forward passes only)."""
        data = self.data
        subset = type(data)(data.name, data.train_images[:0], data.train_labels[:0], data.test_images[:images],
                            data.test_labels[:images], data.classes)
        start = time.perf_counter()
        evaluate(self.model, subset, self.ops, text=False, context=0)
        return time.perf_counter() - start, len(subset.test_labels)


def time_schemes(schemes, data, steps: int, batch_size: int, eval_images: int) -> dict:
    """Per scheme: median seconds per step, MACs per step, evaluation seconds and images.  The schemes step in
    turns, so a change in the machine's load hits all of them alike."""
    trainers = {scheme: Trainer(scheme, data, batch_size) for scheme in schemes}
    times: dict = {scheme: [] for scheme in schemes}
    macs: dict = {scheme: [] for scheme in schemes}
    for index in range(WARMUP_STEPS + steps):
        for scheme, trainer in trainers.items():
            seconds, count = trainer.step()
            if index >= WARMUP_STEPS:
                times[scheme].append(seconds)
                macs[scheme].append(count)
    results = {}
    for scheme, trainer in trainers.items():
        eval_seconds, eval_count = trainer.evaluate(eval_images)
        results[scheme] = {"step": statistics.median(times[scheme]), "macs": statistics.median(macs[scheme]),
                           "eval": eval_seconds, "eval_images": eval_count}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--dataset", choices=("fashion_mnist", "digits"), default="fashion_mnist")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--eval-images", type=int, default=10_000)
    ap.add_argument("--full-epoch", action="store_true", help="also train one real epoch with hfp8sim's loop")
    args = ap.parse_args()
    data = _load(args.dataset)
    steps_per_epoch = math.ceil(len(data.train_labels) / args.batch_size)
    print(f"small_cnn on {args.dataset} ({len(data.train_labels)} training images, batch {args.batch_size}: "
          f"{steps_per_epoch} steps per epoch); numba threads {numba.get_num_threads()}, OMP_WAIT_POLICY "
          f"{os.environ.get('OMP_WAIT_POLICY')}, OPENBLAS_NUM_THREADS {os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    results = time_schemes(("hfp8", "fp32"), data, args.steps, args.batch_size, args.eval_images)
    for scheme, r in results.items():
        images_per_s = args.batch_size / r["step"]
        epoch = r["step"] * steps_per_epoch + r["eval"] * len(data.test_labels) / r["eval_images"]
        what = "bit-accurate datapath" if scheme == "hfp8" else "float32 numpy GEMMs"
        print(f"  {scheme:5s} {what:22s} {r['step'] * 1e3:8.1f} ms/step  {images_per_s:8.0f} images/s  "
              f"{r['macs'] / r['step'] / 1e9:6.3f} G MAC/s ({r['macs'] / 1e6:.1f} M MAC/step, all passes)  "
              f"projected epoch {epoch:6.1f} s")
    ratio = results["fp32"]["step"] / results["hfp8"]["step"]
    print(f"  ratio hfp8/fp32 throughput {ratio:.3f} (the datapath's cost over float32 numpy, same steps)")
    hfp8 = results["hfp8"]
    projected = hfp8["step"] * steps_per_epoch + hfp8["eval"] * len(data.test_labels) / hfp8["eval_images"]
    print(f"  target one hfp8 epoch <= {TARGET_SECONDS:.0f} s: {'met' if projected <= TARGET_SECONDS else 'NOT met'}"
          f" (projected {projected:.1f} s)")
    if args.full_epoch:
        start = time.perf_counter()
        result = train(TrainConfig(model="cnn", dataset=args.dataset, scheme="hfp8", batch_size=args.batch_size))
        seconds = time.perf_counter() - start
        print(f"  one real hfp8 epoch with train(): {seconds:.1f} s (test accuracy {result.final.metric:.4f}, "
              f"load average now {os.getloadavg()[0]:.2f}): target {'met' if seconds <= TARGET_SECONDS else 'NOT met'}")


if __name__ == "__main__":
    main()
