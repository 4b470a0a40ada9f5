"""Tables, findings and figures of the training study (``hfp8sim train-report``), read from its run records.

Reads ``runs/*.json`` (one record per run, written by :mod:`hfp8sim.studies.training`) and ``study.json`` (the
budget); never trains.  Writes ``training.md``, ``training.csv`` (final metric per task and variant: mean,
standard deviation and min..max over the seeds), ``training_runs.csv`` (one row per run),
``training_underflow.csv`` (gradient underflow and saturation per layer) and three figures, PNG and SVG:
``training_curves`` (training loss per step and the final test metric of every seed), ``loss_scale`` (the loss
scale per step) and ``underflow`` (per layer).  Every number and every statement of the findings comes from
the records.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RUNS_FOLDER = "runs"
STUDY_FILE = "study.json"
VARIANT_ORDER = ("fp32", "hfp8", "fp8_e5m2", "ocp_fp8", "fp16", "hfp8_no_loss_scaling", "hfp8_fp16_nearest",
                 "hfp8_fixed", "hfp8_fixed_no_loss_scaling")
# (variant, what it is compared with) in the findings beyond the two claims
COMPARISONS = (("ocp_fp8", "fp32"), ("fp16", "fp32"), ("hfp8_no_loss_scaling", "hfp8"),
               ("hfp8_fp16_nearest", "hfp8"), ("hfp8_fixed", "fp32"), ("hfp8_fixed_no_loss_scaling", "hfp8_fixed"))
LOSS_SCALING_PAIRS = (("hfp8", "hfp8_no_loss_scaling"), ("hfp8_fixed", "hfp8_fixed_no_loss_scaling"))
TASK_ORDER = ("mlp", "cnn", "transformer")
WITH_BATCH_NORM = ("cnn",)  # the tasks whose model has batch norms (training.models.small_cnn)
TASK_TITLES = {"mlp": "MLP", "cnn": "CNN with a depthwise-separable block", "transformer": "character transformer"}
COLORS = {"fp32": "black", "hfp8": "tab:blue", "fp8_e5m2": "tab:red", "ocp_fp8": "tab:green", "fp16": "tab:gray",
          "hfp8_no_loss_scaling": "tab:orange", "hfp8_fp16_nearest": "tab:purple", "hfp8_fixed": "tab:cyan",
          "hfp8_fixed_no_loss_scaling": "tab:brown"}
SUMMARY_FIELDS = ("task", "dataset", "variant", "scheme", "loss_scaling", "update_rule", "metric", "seeds",
                  "failed", "mean", "std", "min", "max", "delta_vs_fp32", "noise_vs_fp32", "tail_loss_mean",
                  "tail_loss_std", "tail_loss_min", "tail_loss_max", "final_train_loss",
                  "skipped_steps", "final_loss_scale_min", "final_loss_scale_max", "mean_gradient_underflow",
                  "steps", "wall_seconds_mean")
RUN_FIELDS = ("run", "task", "variant", "seed", "metric_name", "metric", "test_loss", "final_train_loss",
              "skipped_steps", "final_loss_scale", "steps", "macs", "wall_seconds", "error")
TAIL_STEPS = 20  # the training loss compared between schemes is the mean of a run's last steps
TRAIN_IMAGES = {"fashion_mnist": 60_000}  # training-set sizes, for what a full epoch would cost
UNDERFLOW_FIELDS = ("task", "variant", "layer", "seeds", "underflow_mean", "underflow_min", "underflow_max",
                    "saturation_mean")


def load_records(folder: str | Path) -> tuple[list[dict], dict]:
    """The run records in ``folder/runs`` (sorted by run id) and ``study.json`` ({} when missing)."""
    folder = Path(folder)
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / RUNS_FOLDER).glob("*.json"))]
    study_path = folder / STUDY_FILE
    study = json.loads(study_path.read_text(encoding="utf-8")) if study_path.is_file() else {}
    return records, study


def _order(items, key, order):
    rank = {name: i for i, name in enumerate(order)}
    return sorted(items, key=lambda item: (rank.get(key(item), len(order)), key(item)))


def _ok(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("error") is None]


def _groups(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups = defaultdict(list)
    for record in records:
        groups[(record["task"], record["variant"])].append(record)
    for runs in groups.values():
        runs.sort(key=lambda r: r["seed"])
    return groups


def _tasks(records: list[dict]) -> list[str]:
    return _order({r["task"] for r in records}, lambda t: t, TASK_ORDER)


def _variants(records: list[dict], task: str | None = None) -> list[str]:
    names = {r["variant"] for r in records if task is None or r["task"] == task}
    return _order(names, lambda v: v, VARIANT_ORDER)


# ----------------------------------------------------------------------------------------------------------
# numbers


def higher_is_better(metric_name: str) -> bool:
    return metric_name != "perplexity"


def _spread(values: list[float], prefix: str = "") -> dict:
    if not values:
        return {f"{prefix}{key}": None for key in ("mean", "std", "min", "max")}
    return {f"{prefix}mean": statistics.fmean(values),
            f"{prefix}std": statistics.stdev(values) if len(values) > 1 else None,
            f"{prefix}min": min(values), f"{prefix}max": max(values)}


def _noise(a: dict, b: dict, n_a: int, n_b: int, prefix: str = "") -> float | None:
    """Two standard errors of a difference of two means of seeds (None with fewer than two seeds a side)."""
    std_a, std_b = a[f"{prefix}std"], b[f"{prefix}std"]
    if std_a is None or std_b is None:
        return None
    return 2.0 * math.sqrt(std_a ** 2 / n_a + std_b ** 2 / n_b)


def tail_loss(record: dict) -> float:
    """Mean training loss of the last :data:`TAIL_STEPS` steps: how far training got, without the test pass."""
    return statistics.fmean(record["step_losses"][-TAIL_STEPS:])


def _mean_underflow(record: dict) -> float:
    rates = [rate for epoch in record["epochs"] for rate in epoch["gradient_underflow"].values()]
    return statistics.fmean(rates) if rates else 0.0


def summarize(records: list[dict]) -> list[dict]:
    """One row per (task, variant): the final test metric over the seeds and what the runs logged."""
    groups = _groups(records)
    rows = []
    for task in _tasks(records):
        for variant in _variants(records, task):
            rows.append(_summary_row(task, variant, groups))
    baseline = {row["task"]: row for row in rows if row["variant"] == "fp32"}
    for row in rows:
        base = baseline.get(row["task"])
        if base is None or row["mean"] is None or base["mean"] is None:
            row["delta_vs_fp32"] = row["noise_vs_fp32"] = None
            continue
        row["delta_vs_fp32"] = row["mean"] - base["mean"]
        row["noise_vs_fp32"] = _noise(row, base, row["seeds"], base["seeds"])
    return rows


def _summary_row(task: str, variant: str, groups: dict) -> dict:
    runs = groups[(task, variant)]
    ok = _ok(runs)
    config = runs[0]["config"]
    row = {"task": task, "dataset": config["dataset"], "variant": variant, "scheme": config["scheme"],
           "loss_scaling": config["loss_scaling"], "update_rule": config["update_rule"],
           "metric": ok[0]["epochs"][-1]["metric_name"] if ok else None, "seeds": len(ok),
           "failed": len(runs) - len(ok)}
    row.update(_spread([r["epochs"][-1]["metric"] for r in ok]))
    row.update(_spread([tail_loss(r) for r in ok], "tail_loss_"))
    scales = [r["loss_scales"][-1] for r in ok if r["loss_scales"]]
    row.update(final_train_loss=statistics.fmean([r["epochs"][-1]["train_loss"] for r in ok]) if ok else None,
               skipped_steps=sum(sum(r["skipped"]) for r in ok), final_loss_scale_min=min(scales, default=None),
               final_loss_scale_max=max(scales, default=None),
               mean_gradient_underflow=statistics.fmean(map(_mean_underflow, ok)) if ok else None,
               steps=len(ok[0]["step_losses"]) if ok else None,
               wall_seconds_mean=statistics.fmean([r["wall_seconds"] for r in ok]) if ok else None)
    return row


def run_rows(records: list[dict]) -> list[dict]:
    rows = []
    for record in _order(records, lambda r: r["task"], TASK_ORDER):
        row = {key: record.get(key) for key in ("run", "task", "variant", "seed", "macs", "wall_seconds", "error")}
        if record.get("error") is None:
            final = record["epochs"][-1]
            row.update(metric_name=final["metric_name"], metric=final["metric"], test_loss=final["test_loss"],
                       final_train_loss=final["train_loss"], skipped_steps=sum(record["skipped"]),
                       final_loss_scale=record["loss_scales"][-1] if record["loss_scales"] else None,
                       steps=len(record["step_losses"]))
        rows.append(row)
    return rows


def underflow_rows(records: list[dict]) -> list[dict]:
    """Per (task, variant, layer): the fraction of nonzero gradient elements flushed to zero when they were
    encoded for a GEMM, averaged over the epochs of a run, then mean/min/max over the seeds."""
    rows = []
    groups = _groups(_ok(records))
    for task in _tasks(records):
        for variant in _variants(_ok(records), task):
            runs = groups.get((task, variant), [])
            layers = list(runs[0]["epochs"][-1]["gradient_underflow"]) if runs else []
            for layer in layers:
                per_run = [statistics.fmean(e["gradient_underflow"].get(layer, 0.0) for e in r["epochs"])
                           for r in runs]
                saturation = [statistics.fmean(e["gradient_saturation"].get(layer, 0.0) for e in r["epochs"])
                              for r in runs]
                rows.append({"task": task, "variant": variant, "layer": layer, "seeds": len(runs),
                             "underflow_mean": statistics.fmean(per_run), "underflow_min": min(per_run),
                             "underflow_max": max(per_run), "saturation_mean": statistics.fmean(saturation)})
    return rows


# ----------------------------------------------------------------------------------------------------------
# figures


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def _step_losses(run: dict) -> np.ndarray:
    # a skipped step's loss was computed but not learned from; it is plotted like any other step
    return np.asarray(run["step_losses"], float)


def plot_curves(records: list[dict], out_stem: Path) -> list[Path]:
    tasks = _tasks(_ok(records))
    groups = _groups(_ok(records))
    fig, axes = plt.subplots(len(tasks), 3, figsize=(20, 4.2 * max(len(tasks), 1)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.3, 1.3, 1]}, layout="constrained")
    for row, task in enumerate(tasks):
        variants = _variants(_ok(records), task)
        _plot_loss_panel(axes[row][0], task, variants, groups)
        _plot_delta_panel(axes[row][1], task, variants, groups)
        _plot_metric_panel(axes[row][2], task, variants, groups)
    return _save(fig, out_stem)


def _plot_loss_panel(ax, task: str, variants: list[str], groups: dict) -> None:
    for variant in variants:
        runs = groups[(task, variant)]
        steps = min(len(r["step_losses"]) for r in runs)
        window = max(1, steps // 15)
        curves = np.array([_smooth(_step_losses(r)[:steps], window) for r in runs])
        x = np.arange(curves.shape[1]) + window
        ax.plot(x, curves.mean(axis=0), color=COLORS.get(variant), lw=1.3, label=f"{variant} ({len(runs)} seeds)")
        if len(runs) > 1 and variant == "fp32":  # one band: the seed-to-seed spread of the baseline
            ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=COLORS.get(variant), alpha=0.12, lw=0)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (running mean)")
    ax.set_title(f"{TASK_TITLES.get(task, task)}: training loss, mean over seeds (band: fp32 min..max)",
                 fontsize=10)
    ax.legend(fontsize=7)


def _plot_delta_panel(ax, task: str, variants: list[str], groups: dict) -> None:
    """Training loss minus that of the fp32 run of the same seed (same weights and batches at the start)."""
    base = {r["seed"]: r for r in groups.get((task, "fp32"), [])}
    for variant in variants:
        runs = [r for r in groups[(task, variant)] if r["seed"] in base and variant != "fp32"]
        if not runs:
            continue
        steps = min(min(len(r["step_losses"]), len(base[r["seed"]]["step_losses"])) for r in runs)
        window = max(1, steps // 15)
        deltas = np.array([_smooth(_step_losses(r)[:steps] - _step_losses(base[r["seed"]])[:steps], window)
                           for r in runs])
        x = np.arange(deltas.shape[1]) + window
        ax.plot(x, deltas.mean(axis=0), color=COLORS.get(variant), lw=1.3, label=variant)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss - fp32's, same seed (running mean)")
    ax.set_title(f"{TASK_TITLES.get(task, task)}: difference to fp32, mean over seeds", fontsize=10)
    ax.legend(fontsize=7)


def _plot_metric_panel(ax, task: str, variants: list[str], groups: dict) -> None:
    metric = groups[(task, variants[0])][0]["epochs"][-1]["metric_name"]
    for y, variant in enumerate(variants):
        values = [r["epochs"][-1]["metric"] for r in groups[(task, variant)]]
        ax.plot(values, [y] * len(values), "o", color=COLORS.get(variant), alpha=0.6, ms=5)
        ax.plot([statistics.fmean(values)], [y], "|", color="black", ms=16, mew=2)
    ax.set_yticks(range(len(variants)), variants, fontsize=8)
    ax.invert_yaxis()
    better = "higher" if higher_is_better(metric) else "lower"
    ax.set_xlabel(f"final test {metric} ({better} is better); dots: seeds, bar: mean")
    ax.set_title(f"{TASK_TITLES.get(task, task)}: final {metric}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def plot_loss_scales(records: list[dict], out_stem: Path) -> list[Path]:
    tasks = _tasks(_ok(records))
    groups = _groups(_ok(records))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * max(len(tasks), 1), 4), squeeze=False,
                             layout="constrained")
    for ax, task in zip(axes[0], tasks):
        for variant in _variants(_ok(records), task):
            for i, run in enumerate(groups[(task, variant)]):
                scales = np.log2(np.asarray(run["loss_scales"], float))
                ax.step(np.arange(len(scales)), scales, where="post", color=COLORS.get(variant), lw=1, alpha=0.7,
                        label=variant if i == 0 else None)
                skipped = np.flatnonzero(run["skipped"])
                ax.plot(skipped, scales[skipped], "x", color=COLORS.get(variant), ms=5)
        ax.set_xlabel("training step")
        ax.set_ylabel("log2 loss scale (x: skipped step)")
        ax.set_title(f"{TASK_TITLES.get(task, task)}: loss scale, every seed", fontsize=10)
        ax.legend(fontsize=7)
    return _save(fig, out_stem)


def plot_underflow(rows: list[dict], out_stem: Path) -> list[Path]:
    tasks = _order({r["task"] for r in rows}, lambda t: t, TASK_ORDER)
    fig, axes = plt.subplots(len(tasks), 1, figsize=(12, 3.6 * max(len(tasks), 1)), squeeze=False,
                             layout="constrained")
    for ax, task in zip(axes[:, 0], tasks):
        mine = [r for r in rows if r["task"] == task]
        layers = list(dict.fromkeys(r["layer"] for r in mine))
        variants = _order({r["variant"] for r in mine}, lambda v: v, VARIANT_ORDER)
        width = 0.8 / max(len(variants), 1)
        for i, variant in enumerate(variants):
            by_layer = {r["layer"]: r for r in mine if r["variant"] == variant}
            heights = [100 * by_layer[layer]["underflow_mean"] if layer in by_layer else 0.0 for layer in layers]
            ax.bar(np.arange(len(layers)) + i * width, heights, width, color=COLORS.get(variant), label=variant)
        ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2, layers, fontsize=7, rotation=20, ha="right")
        ax.set_ylabel("gradients flushed to zero (%)")
        ax.set_title(f"{TASK_TITLES.get(task, task)}: gradient underflow per layer (mean over seeds)", fontsize=10)
        ax.legend(fontsize=7, ncol=4)
    return _save(fig, out_stem)


def _save(fig, out_stem: Path) -> list[Path]:
    paths = []
    for suffix in (".png", ".svg"):
        path = out_stem.with_suffix(suffix)
        # no date and a fixed salt for the element ids: the same records give the same SVG
        with matplotlib.rc_context({"svg.hashsalt": "hfp8sim-training"}):
            fig.savefig(path, dpi=110, metadata={"Date": None} if suffix == ".svg" else {"Software": None})
        paths.append(path)
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------------------------------------
# tables and findings


def _fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _metric_text(row: dict, prefix: str = "") -> str:
    """'0.8123 +/- 0.0040 (0.8080..0.8160)' (std over seeds, min..max)."""
    mean, std, low, high = (row[f"{prefix}{key}"] for key in ("mean", "std", "min", "max"))
    if mean is None:
        return "n/a (every seed failed)"
    if row["seeds"] == 1:
        return f"{mean:.4f} (1 seed)"
    return f"{mean:.4f} +/- {std:.4f} ({low:.4f}..{high:.4f})"


def summary_table(rows: list[dict]) -> list[str]:
    lines = ["| task | variant | scheme | loss scaling | update | final test metric: mean +/- std (min..max) | "
             f"vs fp32 (2 s.e.) | training loss, last {TAIL_STEPS} steps | seeds ok/failed | skipped steps | "
             "final loss scale | mean grad. underflow |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        delta = "-" if r["variant"] == "fp32" else (
            "n/a" if r["delta_vs_fp32"] is None else
            f"{r['delta_vs_fp32']:+.4f} (+/- {_fmt(r['noise_vs_fp32'])})")
        scale = "n/a" if r["final_loss_scale_min"] is None else (
            f"{r['final_loss_scale_min']:g}" if r["final_loss_scale_min"] == r["final_loss_scale_max"]
            else f"{r['final_loss_scale_min']:g}..{r['final_loss_scale_max']:g}")
        lines.append(f"| {r['task']} | {r['variant']} | {r['scheme']} | {r['loss_scaling']} | {r['update_rule']} | "
                     f"{r['metric'] or ''} {_metric_text(r)} | {delta} | {_metric_text(r, 'tail_loss_')} | "
                     f"{r['seeds']}/{r['failed']} | "
                     f"{r['skipped_steps']} | {scale} | {_pct(r['mean_gradient_underflow'])} |")
    return lines


def underflow_table(rows: list[dict], task: str) -> list[str]:
    mine = [r for r in rows if r["task"] == task]
    variants = _order({r["variant"] for r in mine}, lambda v: v, VARIANT_ORDER)
    layers = list(dict.fromkeys(r["layer"] for r in mine))
    cells = {(r["layer"], r["variant"]): r for r in mine}
    lines = ["| layer | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for layer in layers:
        values = [_pct(cells[(layer, v)]["underflow_mean"]) if (layer, v) in cells else "" for v in variants]
        lines.append(f"| {layer} | " + " | ".join(values) + " |")
    return lines


def _find(rows: list[dict], task: str, variant: str) -> dict | None:
    for row in rows:
        if (row["task"], row["variant"]) == (task, variant) and row["mean"] is not None:
            return row
    return None


def _compare(row: dict, base: dict, prefix: str = "") -> tuple[str, float, float | None]:
    """('within noise' / 'better' / 'worse', difference of means, 2 standard errors) of ``row`` against
    ``base``; better/worse in the metric's own sense (lower perplexity or training loss is better)."""
    delta = row[f"{prefix}mean"] - base[f"{prefix}mean"]
    noise = _noise(row, base, row["seeds"], base["seeds"], prefix)
    if noise is None:
        return "not decidable (fewer than 2 seeds)", delta, None
    if abs(delta) <= noise:
        return "within noise", delta, noise
    good = delta > 0 if (higher_is_better(row["metric"]) and not prefix) else delta < 0
    return ("better" if good else "worse"), delta, noise


def paired_differences(records: list[dict], task: str, variant: str, against: str,
                       measure=lambda r: r["epochs"][-1]["metric"]) -> list[float]:
    """``measure(run of variant) - measure(run of against)`` for every seed both finished: the runs of one seed
    share initial weights and batch order, so these differences are free of the seed-to-seed spread."""
    runs = {(r["variant"], r["seed"]): r for r in _ok(records) if r["task"] == task}
    seeds = sorted(seed for v, seed in runs if v == variant and (against, seed) in runs)
    return [measure(runs[(variant, seed)]) - measure(runs[(against, seed)]) for seed in seeds]


def _paired_verdict(diffs: list[float], higher_better: bool) -> tuple[str, float | None]:
    """Verdict on the mean of paired differences against two standard errors of that mean."""
    if len(diffs) < 2:
        return "not decidable (fewer than 2 seeds)", None
    noise = 2.0 * statistics.stdev(diffs) / math.sqrt(len(diffs))
    mean = statistics.fmean(diffs)
    if abs(mean) <= noise:
        return "within noise", noise
    return ("better" if (mean > 0) == higher_better else "worse"), noise


def _versus(rows: list[dict], records: list[dict], task: str, variant: str,
            against: str) -> tuple[str, str] | None:
    """The verdict on the test metric, paired by seed, and the numbers behind it, with the same for the training
    loss of the last steps (which says whether a difference comes from training or from the test pass)."""
    row, base = _find(rows, task, variant), _find(rows, task, against)
    if row is None or base is None:
        return None
    diffs = paired_differences(records, task, variant, against)
    verdict, noise = _paired_verdict(diffs, higher_is_better(row["metric"]))
    tails = paired_differences(records, task, variant, against, tail_loss)
    tail_verdict, tail_noise = _paired_verdict(tails, higher_better=False)
    detail = (f"{row['metric']} {row['mean']:.4f} against {base['mean']:.4f}; per seed "
              f"{', '.join(f'{d:+.4f}' for d in diffs)} (two standard errors of their mean {_fmt(noise)}); "
              f"training loss of the last {TAIL_STEPS} steps {row['tail_loss_mean']:.4f} against "
              f"{base['tail_loss_mean']:.4f}, per seed {', '.join(f'{d:+.4f}' for d in tails)} "
              f"(+/- {_fmt(tail_noise)}: {tail_verdict})")
    return verdict, detail


def expected_shape_findings(rows: list[dict], records: list[dict]) -> list[str]:
    """The paper's two claims, checked task by task, saying plainly where they do not hold."""
    lines = []
    for task in _order({r["task"] for r in rows}, lambda t: t, TASK_ORDER):
        name = TASK_TITLES.get(task, task)
        found = _versus(rows, records, task, "hfp8", "fp32")
        if found:
            verdict, detail = found
            shape = "as expected" if verdict in ("within noise", "better") else "NOT as expected"
            lines.append(f"- **{name}: `hfp8` against `fp32` is {verdict}** ({shape}): {detail}.")
        found = _versus(rows, records, task, "fp8_e5m2", "hfp8")
        if found:
            verdict, detail = found
            claimed = task in ("cnn", "transformer")
            if claimed:
                shape = ("the expected shape appears" if verdict == "worse"
                         else "the expected shape (1-5-2-only worse) does NOT appear")
            else:
                shape = "no claim for this model"
            lines.append(f"- {name}: `fp8_e5m2` (1,5,2 everywhere) against `hfp8` is {verdict}, {shape}: {detail}.")
    return lines


def variant_findings(rows: list[dict], underflow: list[dict], records: list[dict]) -> list[str]:
    lines = []
    for task in _order({r["task"] for r in rows}, lambda t: t, TASK_ORDER):
        name = TASK_TITLES.get(task, task)
        outside = []
        for variant, against in COMPARISONS:
            compared = paired_comparison(rows, records, task, variant, against)
            if compared is None:
                continue
            for what, verdict in (("test " + compared["metric"], compared["verdict"]),
                                  ("training loss", compared["tail_verdict"])):
                if verdict in ("better", "worse"):
                    outside.append(f"`{variant}` {verdict} than `{against}` in {what}")
        if outside:
            lines.append(f"- {name}, beyond two standard errors of the paired differences (sizes in the table "
                         f"below): " + "; ".join(outside) + ".")
        for scaled, unscaled in LOSS_SCALING_PAIRS:
            lines += _underflow_finding(rows, underflow, records, task, scaled, unscaled)
    return lines


def paired_comparison(rows: list[dict], records: list[dict], task: str, variant: str,
                      against: str) -> dict | None:
    """The numbers of one comparison, paired by seed, on the test metric and the last steps' training loss."""
    row, base = _find(rows, task, variant), _find(rows, task, against)
    if row is None or base is None:
        return None
    diffs = paired_differences(records, task, variant, against)
    tails = paired_differences(records, task, variant, against, tail_loss)
    verdict, noise = _paired_verdict(diffs, higher_is_better(row["metric"]))
    tail_verdict, tail_noise = _paired_verdict(tails, higher_better=False)
    return {"variant": variant, "against": against, "metric": row["metric"], "mean": row["mean"],
            "base": base["mean"], "diffs": diffs, "noise": noise, "verdict": verdict, "tails": tails,
            "tail_noise": tail_noise, "tail_verdict": tail_verdict}


def comparison_table(rows: list[dict], records: list[dict], task: str) -> list[str]:
    lines = ["| variant | against | test metric | per-seed differences | +/- 2 s.e. | verdict | "
             f"training loss (last {TAIL_STEPS} steps): per-seed differences | +/- 2 s.e. | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    pairs = (("hfp8", "fp32"), ("fp8_e5m2", "hfp8"), *COMPARISONS)
    for variant, against in pairs:
        c = paired_comparison(rows, records, task, variant, against)
        if c is None:
            continue
        lines.append(f"| {variant} | {against} | {c['metric']} {c['mean']:.4f} vs {c['base']:.4f} | "
                     f"{', '.join(f'{d:+.4f}' for d in c['diffs'])} | {_fmt(c['noise'])} | {c['verdict']} | "
                     f"{', '.join(f'{d:+.4f}' for d in c['tails'])} | {_fmt(c['tail_noise'])} | "
                     f"{c['tail_verdict']} |")
    return lines


def _same_training(records: list[dict], task: str, first: str, second: str) -> tuple[int, int]:
    """(seeds whose two runs have bit-identical step losses and final metric, seeds with both runs)."""
    runs = {(r["variant"], r["seed"]): r for r in _ok(records) if r["task"] == task}
    seeds = sorted(seed for variant, seed in runs if variant == first and (second, seed) in runs)
    same = sum(runs[(first, seed)]["step_losses"] == runs[(second, seed)]["step_losses"]
               and runs[(first, seed)]["epochs"][-1]["metric"] == runs[(second, seed)]["epochs"][-1]["metric"]
               for seed in seeds)
    return same, len(seeds)


def _is_fp16_layer(layer: str) -> bool:
    # the models name their first and last GEMM layers "first" (attention: "first.q" ...) and "last"
    return layer == "last" or layer == "first" or layer.startswith("first.")


def _fp16_layer_split(underflow: list[dict], records: list[dict], task: str, variant: str) -> str:
    """Underflow in the FP16 first/last layers against the FP8 layers, when the runs kept those layers FP16."""
    configs = [r["config"] for r in records if r["task"] == task and r["variant"] == variant]
    mine = [r for r in underflow if r["task"] == task and r["variant"] == variant]
    if not configs or not configs[0]["first_last_fp16"] or not mine:
        return ""
    fp16 = [r["underflow_mean"] for r in mine if _is_fp16_layer(r["layer"])]
    fp8 = [r["underflow_mean"] for r in mine if not _is_fp16_layer(r["layer"])]
    if not fp16 or not fp8:
        return ""
    how = "with the formats' fixed bias, unscaled" if configs[0]["recipe"] == "fixed" else "scaled per tensor"
    return (f"; by layer kind: {_pct(statistics.fmean(fp16))} in the FP16 first/last layers (FP16 operands are "
            f"never scaled up) against {_pct(statistics.fmean(fp8))} in the FP8 layers ({how})")


def _underflow_finding(rows: list[dict], underflow: list[dict], records: list[dict], task: str, scaled_name: str,
                       unscaled_name: str) -> list[str]:
    scaled, unscaled = _find(rows, task, scaled_name), _find(rows, task, unscaled_name)
    if scaled is None or unscaled is None:
        return []
    worst = max((r for r in underflow if r["task"] == task and r["variant"] == unscaled_name),
                key=lambda r: r["underflow_mean"], default=None)
    text = (f"- {TASK_TITLES.get(task, task)}: `{unscaled_name}` flushes "
            f"{_pct(unscaled['mean_gradient_underflow'])} of the nonzero gradient elements to zero (mean over the "
            f"layers; `{scaled_name}` with dynamic loss scaling {_pct(scaled['mean_gradient_underflow'])})")
    if worst is not None:
        text += f", the most in `{worst['layer']}` ({_pct(worst['underflow_mean'])})"
    text += _fp16_layer_split(underflow, records, task, unscaled_name)
    same, seeds = _same_training(records, task, scaled_name, unscaled_name)
    if same:
        text += (f"; with and without loss scaling the training is bit-identical for {same} of {seeds} seeds "
                 f"(same step losses and final metric): a power-of-two loss scale is undone by the per-tensor "
                 f"scale of every gradient operand")
    return [text + "."]


def stability_findings(records: list[dict]) -> list[str]:
    """Where the test metric scatters far more between runs than the training loss does: then differences of the
    test metric between schemes say little about training."""
    lines = []
    for task in _tasks(_ok(records)):
        runs = [r for r in _ok(records) if r["task"] == task]
        if len(runs) < 2:
            continue
        test = [r["epochs"][-1]["test_loss"] for r in runs]
        tail = [tail_loss(r) for r in runs]
        test_spread = (max(test) - min(test)) / statistics.fmean(test)
        tail_spread = (max(tail) - min(tail)) / statistics.fmean(tail)
        if test_spread > 3 * tail_spread:
            lines.append(
                f"- **{TASK_TITLES.get(task, task)}: the test pass scatters far more than training.** Over its "
                f"{len(runs)} runs the test loss ranges {min(test):.3f}..{max(test):.3f} ({100 * test_spread:.0f}% "
                f"of its mean) while the training loss of the last {TAIL_STEPS} steps ranges "
                f"{min(tail):.3f}..{max(tail):.3f} ({100 * tail_spread:.0f}%); every scheme trains about equally "
                f"well and the final test metric differs mostly by run, not by scheme"
                + _scatter_cause(runs) + ".")
    return lines


def _scatter_cause(runs: list[dict]) -> str:
    """The likely cause of a scattered test metric in a model with batch norms evaluated with their moving
    averages (older records have no ``bn_recalibration`` key: they were evaluated that way)."""
    if runs[0]["task"] not in WITH_BATCH_NORM or any(r["config"].get("bn_recalibration") for r in runs):
        return ""
    return (" (a likely cause: batch-norm running statistics at momentum 0.1 follow the last ~10 batches of weights "
            "that still move fast after one short epoch; `bn_recalibration` recomputes them before evaluating)")


def loss_scale_findings(rows: list[dict], records: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        if row["loss_scaling"] != "dynamic" or row["mean"] is None:
            continue
        if row["skipped_steps"] or row["final_loss_scale_min"] != 2.0 ** 16:
            lines.append(f"- {row['task']} `{row['variant']}`: {row['skipped_steps']} skipped steps over "
                         f"{row['seeds']} seeds, final loss scale {row['final_loss_scale_min']:g}.."
                         f"{row['final_loss_scale_max']:g}.")
    steps = max((len(r["step_losses"]) for r in _ok(records)), default=0)
    lines.append(f"- The dynamic scaler starts at 2^16 and doubles after 2000 good steps in a row; no run here is "
                 f"longer than {steps} steps, so the scale can only have gone down (by halving on an inf/NaN "
                 f"gradient); runs not listed above kept 2^16 and skipped no step.")
    return lines


def _exceptions_text(records: list[dict]) -> str:
    """Which runs kept IBM's FP16 exceptions (first and last GEMM layers, softmax input), from the configs."""
    with_first_last = sorted({r["task"] for r in records if r["config"]["first_last_fp16"]}, key=TASK_ORDER.index)
    without = sorted({r["task"] for r in records if not r["config"]["first_last_fp16"] and r["variant"] != "fp32"},
                     key=TASK_ORDER.index)
    text = ""
    if with_first_last:
        text += (f"The first and last GEMM layers are FP16 in every FP8 variant of the {', '.join(with_first_last)} "
                 f"(IBM's exceptions), ")
    if without:
        text += (f"{'and ' if text else ''}in none of the {', '.join(without)} (it has only a first and a last "
                 f"layer: with the exceptions its FP8 variants would run FP16 GEMMs only); ")
    baseline = [r for r in records if r["variant"] == "fp32"]
    fp32_pure = all(not r["config"]["first_last_fp16"] and not r["config"]["softmax_fp16"] for r in baseline)
    text += "the softmax input is FP16 in every variant but `fp32`" if fp32_pure else "the softmax input is FP16"
    return text + (", which is float32 throughout." if fp32_pure and baseline else ".")


def _evaluation_text(records: list[dict]) -> str:
    parts = []
    for task in _tasks(records):
        config = next(r["config"] for r in records if r["task"] == task)
        limit = config.get("eval_subset")
        if config["dataset"] == "pydoc":
            what = (f"validation perplexity on {'the first ' + str(limit) if limit else 'all'} non-overlapping "
                    f"{config['context']}-character windows of the held-out pydoc topics")
        else:
            what = f"accuracy on {'the first ' + str(limit) if limit else 'all'} {config['dataset']} test images"
            if task in WITH_BATCH_NORM:
                images = config.get("bn_recalibration")
                what += (f", batch-norm statistics recomputed with the final weights over {images} training images "
                         f"in the run's own forward formats (precise BN)" if images else
                         ", batch norms with their moving-average statistics")
        parts.append(f"{task}: {what}")
    return "Measured after the last epoch: " + "; ".join(parts) + "."


def _budget_lines(study: dict, records: list[dict]) -> list[str]:
    budget = study.get("budget", {})
    lines = []
    for task in budget.get("tasks", []):
        subset = task["train_subset"]
        steps = task["steps_per_epoch"]
        size = f"a fixed {subset}-image subset of the training set" if subset else "the whole training set"
        if task["dataset"] == "pydoc":
            size = f"{steps} steps per epoch of random {task['context']}-character windows"
        elif steps:
            size += f", {steps} steps per epoch"
        lines.append(f"- {task['model']} on {task['dataset']}: {task['epochs']} epoch(s) of {size}, batch "
                     f"{task['batch_size']}, {task['optimizer']} lr {task['lr']:g}.")
    if budget:
        lines.append(f"- seeds {', '.join(map(str, budget.get('seeds', [])))}; the seed sets the initial weights, "
                     f"the order of the batches and the stochastic rounding, the training subset is the same "
                     f"for every run.")
    walls = [r["wall_seconds"] for r in _ok(records) if r.get("wall_seconds")]
    if study:
        lines.append(f"- wall time of the study: {study.get('wall_seconds', 0) / 60:.1f} min with "
                     f"{study.get('jobs')} worker process(es) on {study.get('machine', {}).get('cpus')} cores "
                     f"shared with other work; {study.get('kept_from_before', 0)} records kept from an earlier "
                     f"run; one run took {min(walls, default=0):.0f}..{max(walls, default=0):.0f} s, all "
                     f"{len(walls)} runs together {sum(walls) / 60:.0f} min of worker time.")
    return lines


def _timing_lines(rows: list[dict], records: list[dict]) -> list[str]:
    lines, full_epochs = [], []
    for row in rows:
        if not (row["wall_seconds_mean"] and row["steps"]):
            continue
        per_step = row["wall_seconds_mean"] / row["steps"]
        lines.append(f"{row['task']} `{row['variant']}` {per_step:.2f}")
        images = TRAIN_IMAGES.get(row["dataset"])
        if images and row["variant"] in ("hfp8", "fp16"):
            batch = next(r["config"]["batch_size"] for r in records if r["task"] == row["task"])
            full_epochs.append(f"{row['task']} `{row['variant']}` {per_step * math.ceil(images / batch) / 60:.0f} min")
    out = ["- seconds per training step as run (wall time of a run over its steps, so the test pass is included; "
           "mean over seeds; they follow the load of the shared machine more than the scheme): " + ", ".join(lines)
           + "."]
    if full_epochs:
        out.append("- at these rates one full epoch of the whole training set would take, per run: "
                   + ", ".join(full_epochs) + "; hence the subset.")
    return out


def write_training_report(folder: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write the report of the records in ``folder`` to ``out`` (default: the same folder)."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder
    out.mkdir(parents=True, exist_ok=True)
    records, study = load_records(folder)
    if not records:
        from ..errors import Hfp8SimError

        raise Hfp8SimError(f"{folder / RUNS_FOLDER}: no run records; run `hfp8sim train-report --out {folder}`")
    rows, underflow = summarize(records), underflow_rows(records)
    written = [_write_csv(out / "training.csv", SUMMARY_FIELDS, rows),
               _write_csv(out / "training_runs.csv", RUN_FIELDS, run_rows(records)),
               _write_csv(out / "training_underflow.csv", UNDERFLOW_FIELDS, underflow)]
    if _ok(records):
        written += plot_curves(records, out / "training_curves")
        written += plot_loss_scales(records, out / "loss_scale")
        written += plot_underflow(underflow, out / "underflow")
    md = out / "training.md"
    md.write_text("\n".join(_markdown(records, study, rows, underflow)) + "\n", encoding="utf-8")
    return [md, *written]


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return path


def _markdown(records: list[dict], study: dict, rows: list[dict], underflow: list[dict]) -> list[str]:
    """Long because it is the report's text, section by section, in the order it is read."""
    name = study.get("budget", {}).get("name")
    quick = name == "quick"
    title = "# Training on the bit-accurate datapath: every scheme, the same networks and seeds"
    lines = [title + (" (QUICK MODE: test-sized, not the study)" if quick else ""), ""]
    if quick:
        lines += ["**This is the quick mode** (scikit-learn's digits and a few steps per run), written by the tests "
                  "and `--quick`; its numbers say that the pipeline works, not how the schemes train.", ""]
    lines += ["Regenerate with `hfp8sim train-report --out reports/training` (trains every run whose record is "
              "missing, then writes this report from `runs/*.json` and `study.json`); "
              "`hfp8sim train-report --report-only` rewrites the report from the records without training.", "",
              "Every GEMM of every pass (forward, backward-data, weight-gradient) runs on the bit-accurate datapath "
              "of the default core (its array's accumulation order and DLFloat16/FP16 accumulators); operands are "
              "scaled per tensor from their amax (current scaling); non-GEMM ops are float32. "
              + _exceptions_text(records), "",
              "![training curves](training_curves.png)", "", "## What it says", ""]
    lines += stability_findings(records)
    lines += expected_shape_findings(rows, records)
    lines += variant_findings(rows, underflow, records)
    lines += loss_scale_findings(rows, records)
    failed = [r for r in records if r.get("error") is not None]
    for record in failed:
        lines.append(f"- **run `{record['run']}` failed**: {record['error']}")
    steps = sorted({len(r["step_losses"]) for r in _ok(records)})
    lines += [f"- These are short runs ({'/'.join(map(str, steps))} steps, see the budget below): the numbers are "
              f"early in training, and a scheme that fails late in a long run would not show here.", "",
              "## Final test accuracy and validation perplexity", "", _evaluation_text(records), ""]
    lines += summary_table(rows)
    lines += ["", "Mean +/- sample standard deviation over the seeds that finished, with min..max. `vs fp32`: the "
              "difference of means and two standard errors of that difference; a difference within it is called "
              "\"within noise\" (the findings compare runs paired by seed, which share initial weights and batches: "
              "the mean of the per-seed differences against two standard errors of that mean). Skipped steps: steps whose gradients overflowed (summed over seeds). Gradient "
              "underflow: nonzero gradient elements flushed to zero when encoded for a GEMM, mean over layers "
              "and epochs. Every run: `training_runs.csv`.", "", "## Paired comparisons", "",
              "Runs of one seed share initial weights, batch order and training subset, so each comparison is made "
              "on the per-seed differences: their mean against two standard errors of that mean (from 3 seeds "
              "that error is itself rough). Better/worse in the metric's own sense: higher accuracy, lower "
              "perplexity, lower training loss.", ""]
    for task in _tasks(_ok(records)):
        lines += [f"### {TASK_TITLES.get(task, task)}", "", *comparison_table(rows, records, task), ""]
    lines += ["## Loss scale", "", "![loss scale](loss_scale.png)",
              "", "## Gradient underflow per layer", "", "![underflow](underflow.png)", ""]
    for task in _order({r["task"] for r in underflow}, lambda t: t, TASK_ORDER):
        lines += [f"### {TASK_TITLES.get(task, task)}", "", *underflow_table(underflow, task), ""]
    lines += ["Fraction of the nonzero gradient elements of each layer's GEMM operands that their format flushed to "
              "zero, mean over epochs and seeds (`training_underflow.csv` has min..max and saturation). FP16 "
              "layers (first, last) and `fp32` flush almost nothing.", "", "## How this was run", ""]
    lines += _budget_lines(study, records)
    lines += _timing_lines(rows, records)
    versions = sorted({str(r.get("hfp8sim_version")) for r in records})
    lines.append(f"- hfp8sim {', '.join(versions)}, Python {study.get('machine', {}).get('python', '?')}.")
    return lines


__all__ = ["RUNS_FOLDER", "STUDY_FILE", "load_records", "run_rows", "summarize", "underflow_rows",
           "write_training_report"]
