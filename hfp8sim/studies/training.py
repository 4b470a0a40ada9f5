"""The training study: every scheme trains the same small real networks from the same seeds on the datapath.

A study is a grid of :class:`~hfp8sim.training.loop.TrainConfig`\\ s: tasks (the MLP and the CNN with the
depthwise-separable block on Fashion-MNIST, the character transformer on the pydoc text) x variants (the
schemes ``fp32``, ``hfp8``, ``fp8_e5m2``, ``ocp_fp8``, ``fp16``, and ``hfp8`` without loss scaling and with plain
FP16 round-to-nearest weight updates) x seeds, then :data:`EXTRA_VARIANTS` (``hfp8`` with the formats' fixed
exponent bias instead of per-tensor scales, with and without loss scaling: with per-tensor scales a loss scale
has almost nothing left to do).  Each run writes one record, ``runs/<run id>.json``: what
``hfp8sim train`` writes to ``train.json`` plus the run's id, task, variant, wall time and, when it failed, the
error.  ``study.json`` holds the study's budget (epochs, steps per epoch, training subset, batch size,
optimizer, seeds), the machine and the wall time.  The report (:mod:`hfp8sim.reports.training`) is built from
these files alone.

Runs are independent: they run in ``jobs`` worker processes (spawned, each with ``threads`` Numba threads, so
that two jobs on two cores do not fight over them), a run that raises is recorded with its error and the
others go on, and a record already in the folder for the same config is kept (a study that was stopped
resumes where it was).  Records are written in sorted-key JSON; apart from the timing fields
(:data:`TIMING_KEYS`) the same study gives the same records.

Cost (measured on the 2-core machine shared with other work): the CNN trains at about 0.25 s per step of 64
images alone and about 0.5 s with two runs side by side, so one full 60,000-image epoch takes 4-8 minutes per
run, and a pass over the 10,000 test images about 10 s.  81 runs of full epochs are out of reach, so
:func:`full_study` trains the image models for one epoch of a fixed 10,000-image subset (157 steps; all 10,000
test images are evaluated) and the transformer for 150 steps of 32 windows (validation on 500 windows); the
81 runs take about 40 minutes with two jobs (the report states the measured times).  :func:`quick_study` is the
test-sized version on scikit-learn's digits.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import json
import multiprocessing
import os
import platform
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from ..reports.training import RUNS_FOLDER, STUDY_FILE

TIMING_KEYS = ("seconds", "wall_seconds")  # the fields of a record that differ between identical runs


@dataclasses.dataclass(frozen=True)
class Task:
    """One network on one data set, with its training budget."""

    model: str
    dataset: str
    epochs: int
    batch_size: int
    steps_per_epoch: int | None = None  # None: whole (subset) epochs
    train_subset: int | None = None  # images; None: the whole training set
    optimizer: str = "sgd"
    lr: float = 0.05
    context: int = 32
    eval_subset: int | None = None  # test images / validation windows; None: all of them
    # IBM keeps the first and last GEMM layers in FP16; the MLP has no other layer, so the study turns that off
    # for it (with it on, every FP8 variant of the MLP would run FP16 GEMMs only)
    first_last_fp16: bool = True


@dataclasses.dataclass(frozen=True)
class Variant:
    """A scheme and the changes to the default training recipe that go with it."""

    label: str
    scheme: str
    loss_scaling: str = "dynamic"
    update_rule: str = "fp32_master"
    note: str = ""
    recipe: str = "current"  # tensor scaling of FP8 operands (TrainConfig.recipe)
    # IBM's FP16 exceptions (first and last layers, softmax input); off for the float32 baseline, which they
    # would otherwise turn into a partly FP16 network
    fp16_exceptions: bool = True


VARIANTS = (
    Variant("fp32", "fp32", note="float32 GEMMs and softmax, the baseline", fp16_exceptions=False),
    Variant("hfp8", "hfp8", note="(1,4,3) forward, (1,5,2) gradients, dynamic loss scaling, FP32 masters"),
    Variant("fp8_e5m2", "fp8_e5m2", note="(1,5,2) everywhere, the earlier single-format scheme"),
    Variant("ocp_fp8", "ocp_fp8", note="OCP E4M3 forward, E5M2 gradients"),
    Variant("fp16", "fp16", note="FP16 operands, FP16 accumulation"),
    Variant("hfp8_no_loss_scaling", "hfp8", loss_scaling="none", note="hfp8 with a loss scale of 1"),
    Variant("hfp8_fp16_nearest", "hfp8", update_rule="fp16_nearest",
            note="hfp8 with FP16 weights updated by round-to-nearest"),
)

# With per-tensor (current) scaling a power-of-two loss scale is undone by each gradient tensor's own scale, so
# loss scaling can only matter with a fixed exponent bias (HFP8's own recipe): this pair measures it there.
EXTRA_VARIANTS = (
    Variant("hfp8_fixed", "hfp8", recipe="fixed", note="hfp8 with the formats' fixed exponent bias, no tensor scales"),
    Variant("hfp8_fixed_no_loss_scaling", "hfp8", recipe="fixed", loss_scaling="none",
            note="hfp8_fixed with a loss scale of 1"),
)


@dataclasses.dataclass(frozen=True)
class Study:
    name: str
    tasks: tuple[Task, ...]
    variants: tuple[Variant, ...] = VARIANTS
    seeds: tuple[int, ...] = (0, 1, 2)
    extra_variants: tuple[Variant, ...] = EXTRA_VARIANTS  # run after the whole grid of ``variants``

    def runs(self) -> list[StudyRun]:
        # seed-major order: a study stopped early has every task and variant for its first seeds
        return [StudyRun(task, variant, seed) for variants in (self.variants, self.extra_variants)
                for seed in self.seeds for task in self.tasks for variant in variants]

    def budget(self) -> dict:
        return {"name": self.name, "seeds": list(self.seeds), "tasks": [dataclasses.asdict(t) for t in self.tasks],
                "variants": [dataclasses.asdict(v) for v in self.variants + self.extra_variants]}


@dataclasses.dataclass(frozen=True)
class StudyRun:
    task: Task
    variant: Variant
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.task.model}-{self.variant.label}-seed{self.seed}"

    def config(self):
        from ..training.loop import TrainConfig

        t = self.task
        return TrainConfig(model=t.model, dataset=t.dataset, scheme=self.variant.scheme, epochs=t.epochs,
                           batch_size=t.batch_size, optimizer=t.optimizer, lr=t.lr,
                           update_rule=self.variant.update_rule, loss_scaling=self.variant.loss_scaling,
                           seed=self.seed, steps_per_epoch=t.steps_per_epoch, context=t.context,
                           train_subset=t.train_subset, eval_subset=t.eval_subset,
                           first_last_fp16=t.first_last_fp16 and self.variant.fp16_exceptions,
                           softmax_fp16=self.variant.fp16_exceptions, recipe=self.variant.recipe)


def full_study(seeds: Sequence[int] = (0, 1, 2)) -> Study:
    """The committed study's budget: about 45 minutes of 63 runs on 2 shared cores (see the module notes)."""
    return Study("full", (
        Task("mlp", "fashion_mnist", epochs=1, batch_size=64, train_subset=10_000, first_last_fp16=False),
        Task("cnn", "fashion_mnist", epochs=1, batch_size=64, train_subset=10_000),
        Task("transformer", "pydoc", epochs=1, batch_size=32, steps_per_epoch=150, optimizer="adam", lr=3e-3,
             eval_subset=500),
    ), seeds=tuple(seeds))


def quick_study(seeds: Sequence[int] = (0, 1, 2)) -> Study:
    """Test-sized: the MLP and CNN on the digits and a tiny transformer run, a few steps each."""
    return Study("quick", (
        Task("mlp", "digits", epochs=2, batch_size=32, steps_per_epoch=4, first_last_fp16=False),
        Task("cnn", "digits", epochs=1, batch_size=16, steps_per_epoch=3),
        Task("transformer", "pydoc", epochs=1, batch_size=4, steps_per_epoch=2, optimizer="adam", lr=1e-3,
             context=8, eval_subset=16),
    ), seeds=tuple(seeds))


def run_record(run: StudyRun) -> dict:
    """Train one run and return its record; an error is caught and recorded, never raised."""
    from .. import __version__
    from ..training.loop import train

    config = run.config()
    record = {"hfp8sim_version": __version__, "run": run.run_id, "task": run.task.model,
              "variant": run.variant.label, "seed": run.seed, "config": dataclasses.asdict(config), "error": None}
    start = time.perf_counter()
    try:
        result = train(config)
    except Exception as error:  # noqa: BLE001 - the study records any failure and goes on with the other runs
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        record.update(error=last, traceback=traceback.format_exc())
    else:
        record.update(epochs=[dataclasses.asdict(e) for e in result.epochs], step_losses=result.step_losses,
                      loss_scales=result.loss_scales, skipped=result.skipped, macs=result.macs)
    record["wall_seconds"] = time.perf_counter() - start
    return record


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, allow_nan=True) + "\n", encoding="utf-8")
    tmp.replace(path)  # a study killed mid-write leaves no half record behind


def _existing(path: Path, run: StudyRun) -> dict | None:
    """A finished record of the same config (kept on resume); failed or different ones are rerun."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    same = record.get("config") == json.loads(json.dumps(dataclasses.asdict(run.config())))
    return record if same and record.get("error") is None else None


def run_training_study(out: str | Path, study: Study, *, jobs: int = 1, threads: int | None = None,
                       progress: Callable[[str], None] | None = None, resume: bool = True) -> list[dict]:
    """Run every run of ``study`` (those without a finished record in ``out/runs``), write the records and
    ``study.json``; return the records in the study's order.  ``progress`` gets one line per finished run."""
    out = Path(out)
    (out / RUNS_FOLDER).mkdir(parents=True, exist_ok=True)
    runs = study.runs()
    records: dict[str, dict] = {}
    todo = []
    for run in runs:
        kept = _existing(out / RUNS_FOLDER / f"{run.run_id}.json", run) if resume else None
        if kept is None:
            todo.append(run)
        else:
            records[run.run_id] = kept
    start = time.perf_counter()
    ticker = _Ticker(len(todo), start, progress)
    if jobs <= 1:
        for run in todo:
            records[run.run_id] = _finish(out, run_record(run), ticker)
    else:
        records.update(_run_parallel(out, todo, jobs, threads or max(1, (os.cpu_count() or 2) // jobs), ticker))
    ordered = [records[run.run_id] for run in runs]
    _write_json(out / STUDY_FILE, {
        "budget": study.budget(), "jobs": jobs, "runs": len(runs), "runs_this_time": len(todo),
        "kept_from_before": len(runs) - len(todo), "failed": sum(r.get("error") is not None for r in ordered),
        "wall_seconds": time.perf_counter() - start, "machine": {
            "python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "hfp8sim_version": ordered[0]["hfp8sim_version"] if ordered else None})
    return ordered


def _run_parallel(out: Path, todo: list[StudyRun], jobs: int, threads: int, ticker: _Ticker) -> dict[str, dict]:
    records = {}
    # spawned workers read NUMBA_NUM_THREADS when they import numba: set it while the pool starts them
    saved = os.environ.get("NUMBA_NUM_THREADS")
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    try:
        with futures.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = {pool.submit(run_record, run): run for run in todo}
            for done in futures.as_completed(pending):
                run = pending[done]
                try:
                    record = done.result()
                except Exception as error:  # noqa: BLE001 - a worker that died (killed, out of memory)
                    record = {"run": run.run_id, "task": run.task.model, "variant": run.variant.label,
                              "seed": run.seed, "config": dataclasses.asdict(run.config()),
                              "error": f"worker process failed: {error!r}", "wall_seconds": None,
                              "hfp8sim_version": None}
                records[run.run_id] = _finish(out, record, ticker)
    finally:
        if saved is None:
            os.environ.pop("NUMBA_NUM_THREADS", None)
        else:
            os.environ["NUMBA_NUM_THREADS"] = saved
    return records


class _Ticker:
    """One progress line per finished run: what it measured and an estimate of the time left."""

    def __init__(self, total: int, start: float, progress: Callable[[str], None] | None):
        self.total, self.start, self.progress, self.done = total, start, progress, 0

    def __call__(self, record: dict) -> None:
        self.done += 1
        if not self.progress:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        if record.get("error"):
            what = f"FAILED: {record['error']}"
        else:
            final = record["epochs"][-1]
            what = f"{final['metric_name']} {final['metric']:.4f}, {sum(record['skipped'])} skipped steps"
        wall = record.get("wall_seconds")
        took = f"{wall:.0f} s" if wall is not None else "?"
        self.progress(f"[{self.done}/{self.total}] {record['run']}: {what} ({took}); "
                      f"elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min")


def _finish(out: Path, record: dict, ticker: _Ticker) -> dict:
    _write_json(out / RUNS_FOLDER / f"{record['run']}.json", record)
    ticker(record)
    return record


def comparable(record: dict) -> dict:
    """A record without its timing fields (what must be equal between two runs of the same study)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS and k != "traceback"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(record)


__all__ = ["EXTRA_VARIANTS", "STUDY_FILE", "RUNS_FOLDER", "TIMING_KEYS", "VARIANTS", "Study", "StudyRun", "Task", "Variant",
           "comparable", "full_study", "quick_study", "run_record", "run_training_study"]
