"""The section of ``fidelity.md`` on the networks trained here in FP32 (Fashion-MNIST CNN, character transformer),
read from ``fidelity_trained.csv`` and ``fidelity_trained_run.json``
(:func:`hfp8sim.studies.fidelity_trained.run_trained_study`).  Every number comes from those files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

RESULTS_FILE = "fidelity_trained.csv"
RUN_FILE = "fidelity_trained_run.json"
TEXT_FIELDS = ("network", "dataset", "scheme", "forward_format", "scaling", "batch_norm", "variant", "arithmetic")
ALL_IN_SCHEME = "all GEMMs in the scheme"
TITLES = {"small_cnn": "small CNN (depthwise-separable block), Fashion-MNIST test set",
          "char_transformer": "character transformer, held-out pydoc text"}


def load_trained(folder: str | Path) -> tuple[list[dict], dict] | None:
    """(rows, run) from ``folder``; None when the study has not been run there."""
    folder = Path(folder)
    if not (folder / RESULTS_FILE).is_file():
        return None
    with (folder / RESULTS_FILE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if key not in TEXT_FIELDS:
                row[key] = None if value == "" else float(value)
    run_path = folder / RUN_FILE
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else {}
    return rows, run


def _label(row: dict) -> str:
    scales = f" {row['scaling'].replace('per_', 'per-')}" if row["scaling"] else ""
    extra = "" if row["variant"] == ALL_IN_SCHEME else f", {row['variant']}"
    folded = ", BN folded" if row["batch_norm"] == "folded" and row["scheme"] == "fp32" else ""
    return f"`{row['scheme']}`{scales}{extra}{folded}"


def _findings(rows: list[dict]) -> list[str]:
    out = []
    for network in ("small_cnn", "char_transformer"):
        mine = [r for r in rows if r["network"] == network]
        if not mine:
            continue
        ref, others = mine[0], mine[1:]
        inputs = int(ref["inputs"])
        if network == "small_cnn":
            parts = [f"{_label(r)} {r['accuracy']:.2%} (agrees on {r['top1_agreement']:.2%})" for r in others]
            out.append(f"**{TITLES[network]}** ({inputs} images): float32 as trained {ref['accuracy']:.2%}; "
                       + "; ".join(parts) + ".")
        else:
            parts = [f"{_label(r)} x{r['perplexity_ratio']:.4f} (next character agrees on {r['top1_agreement']:.2%})"
                     for r in others]
            out.append(f"**{TITLES[network]}** ({inputs} characters): float32 perplexity {ref['perplexity']:.3f}; "
                       "perplexity ratio to float32: " + "; ".join(parts) + ".")
        fp8 = [r for r in others if r["scheme"] not in ("fp32", "fp16")]
        if fp8:
            worst = min(fp8, key=lambda r: r["top1_agreement"])
            best = max(fp8, key=lambda r: r["top1_agreement"])
            out.append(f"{TITLES[network].split(',')[0]}: the FP8 cases agree with float32 on "
                       f"{worst['top1_agreement']:.2%} ({_label(worst)}) to {best['top1_agreement']:.2%} "
                       f"({_label(best)}) of the {'predictions' if network == 'small_cnn' else 'next characters'}.")
    return out


def _cell(key: str, value) -> str:
    if value is None:
        return ""
    if key in ("accuracy", "top1_agreement"):
        return f"{value:.4f}"
    if key in ("inputs", "seconds"):
        return f"{value:.0f}"
    if key in ("loss", "perplexity", "perplexity_ratio"):
        return f"{value:.4f}"
    return str(value)


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(t for t, _ in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(k, r.get(k)) for _, k in columns) + " |" for r in rows]
    return lines


def _training_notes(run: dict) -> list[str]:
    notes = []
    for name, meta in sorted(run.get("models", {}).items()):
        config = meta.get("config", {})
        budget = (f"{config.get('epochs')} epoch(s)" + (f" of {config['steps_per_epoch']} steps"
                                                         if config.get("steps_per_epoch") else "")
                  + f", batch {config.get('batch_size')}, {config.get('optimizer')} lr {config.get('lr')}, "
                    f"seed {config.get('seed')}")
        source = (f"loaded from `{meta['loaded_from']}`" if meta.get("loaded_from")
                  else "trained in this run")
        trained = (f"; training took {meta['train_seconds']:.0f} s and ended at {meta.get('train_metric')} "
                   f"{meta.get('train_final_metric', float('nan')):.4f}" if "train_seconds" in meta else "")
        statistics = meta.get("batch_norm_statistics")
        if statistics:
            trained += ((" (test accuracy with the moving-average batch-norm statistics of training)" if trained
                         else "") + f"; batch-norm statistics then recomputed with the final weights over "
                        f"{statistics['images']} training images, as evaluated here")
        notes.append(f"- {name}: fp32 on {config.get('dataset')}, {budget}; weights {source}{trained};")
    return notes


def trained_section(folder: str | Path) -> list[str]:
    """The Markdown lines of the section (none when the study has not been run in ``folder``)."""
    loaded = load_trained(folder)
    if loaded is None:
        return []
    rows, run = loaded
    columns = [("scheme", "scheme"), ("forward format", "forward_format"), ("weight scales", "scaling"),
               ("batch norm", "batch_norm"), ("layers", "variant"), ("accuracy", "accuracy"),
               ("top-1 agreement", "top1_agreement"), ("cross-entropy", "loss")]
    lines = ["## Networks trained here in FP32: full Fashion-MNIST test set and held-out text", "",
             "Regenerated by the same command (`hfp8sim fidelity --trained-only` runs this part alone). The CNN and "
             "the character transformer of `hfp8sim train` are trained once in float32 (fixed seed; weights kept in "
             "`trained_fp32_*.npz` beside this report, retrained when missing or with `--retrain`), then mapped "
             "straight to each scheme: batch norm folded into the convolutions, weights one power-of-two scale per "
             "tensor or per output channel, activations one per tensor from each call's amax; every forward GEMM "
             "on the bit-accurate datapath with the core's own arithmetic "
             f"({next((r['arithmetic'] for r in rows if r['scheme'] == 'hfp8'), '?')}); pooling, activations, "
             "LayerNorm and softmax (float32 input) in float32. Agreement: the predicted class (the most likely "
             "next character) equals float32's as trained.", ""]
    lines += [f"- {text}" for text in _findings(rows)]
    for network in ("small_cnn", "char_transformer"):
        mine = [r for r in rows if r["network"] == network]
        if not mine:
            continue
        extra = [("perplexity", "perplexity"), ("ratio to fp32", "perplexity_ratio")] if network != "small_cnn" else []
        lines += ["", f"### {TITLES[network]} ({int(mine[0]['inputs'])} "
                      f"{'images' if network == 'small_cnn' else 'predicted characters'})", ""]
        lines += _table(mine, columns + extra + [("seconds", "seconds")])
    lines += ["", "How this part was run:", ""] + _training_notes(run)
    lines += [f"- wall time of this part: {run.get('wall_seconds', float('nan')):.0f} s "
              f"(training included when it ran), arch {run.get('arch', '?')}"
              + (f", first {run['limit']} inputs only" if run.get("limit") else "") + ".", ""]
    return lines


def write_trained_only_report(folder: str | Path) -> Path:
    """``fidelity.md`` with this section alone, for a folder without the MiniLM / EfficientNet results."""
    md = Path(folder) / "fidelity.md"
    md.write_text("\n".join(["# Inference without retraining: FP32-trained weights on FP8", "",
                             *trained_section(folder)]), encoding="utf-8")
    return md
