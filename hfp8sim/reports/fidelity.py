"""Tables, findings and a figure of the fidelity study (``hfp8sim fidelity``), read from its result files.

Reads ``fidelity.csv``, ``fidelity_layers.csv`` and ``fidelity_run.json`` (written by
:func:`hfp8sim.studies.fidelity.run_fidelity_study`); writes ``fidelity.md`` and ``fidelity.png`` / ``.svg``.
Every number and every statement of the findings comes from those files.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .fidelity_trained import trained_section  # noqa: E402

MINILM_TARGET = 0.99
ALL_FP8 = "all GEMMs in the scheme"


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if value == "":
                row[key] = None
            elif key not in ("network", "scheme", "forward_format", "scaling", "variant", "arithmetic", "layer", "op",
                             "a_format", "b_format"):
                row[key] = float(value)
    return rows


def load_results(folder: str | Path) -> tuple[list[dict], list[dict], dict]:
    folder = Path(folder)
    run_path = folder / "fidelity_run.json"
    run = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else {}
    return _read_csv(folder / "fidelity.csv"), _read_csv(folder / "fidelity_layers.csv"), run


def _scales(scaling: str) -> str:
    return scaling.replace("per_", "per-")


def _label(row: dict) -> str:
    variant = "" if row["variant"] == ALL_FP8 else f" + {row['variant']}"
    return f"{row['scheme']} {_scales(row['scaling'])}{variant}"


def _find(rows: list[dict], network: str, scheme: str, scaling: str, variant: str = ALL_FP8) -> dict | None:
    for row in rows:
        if (row["network"], row["scheme"], row["scaling"], row["variant"]) == (network, scheme, scaling, variant):
            return row
    return None


# ----------------------------------------------------------------------------------------------------------
# figure


def plot_fidelity(rows: list[dict], out_stem: Path) -> list[Path]:
    minilm = [r for r in rows if r["network"] == "minilm"]
    effnet = [r for r in rows if r["network"] == "efficientnet_lite0"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 6), gridspec_kw={"width_ratios": [1, 1.2, 1]},
                             layout="constrained")
    ax = axes[0]
    labels = [_label(r) for r in minilm]
    ax.barh(range(len(minilm)), [1 - r["mean_cosine"] for r in minilm], color="tab:blue", label="1 - mean cosine")
    ax.plot([1 - r["min_cosine"] for r in minilm], range(len(minilm)), "k|", ms=12, mew=2, label="1 - min cosine")
    ax.axvline(1 - MINILM_TARGET, color="tab:red", ls="--", lw=1, label=f"target: mean cosine {MINILM_TARGET}")
    ax.set_xscale("log")
    ax.set_yticks(range(len(minilm)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("1 - cosine to float32 (lower is better)")
    ax.set_title("all-MiniLM-L6-v2 sentence embeddings", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax = axes[1]
    labels = [_label(r) for r in effnet]
    n = [int(r["inputs"]) for r in effnet]
    ax.barh([i - 0.2 for i in range(len(effnet))], [r["top1_agreement"] for r in effnet], 0.4, label="top-1 agrees")
    ax.barh([i + 0.2 for i in range(len(effnet))], [r["top5_agreement"] for r in effnet], 0.4,
            label="float32 top-1 in top-5")
    ax.set_xlim(0, max(n) if n else 1)
    ax.set_yticks(range(len(effnet)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"photos (of {max(n) if n else 0}) agreeing with float32")
    ax.set_title("EfficientNet-Lite0 classes", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax = axes[2]
    ax.barh(range(len(effnet)), [r["logit_rel_error"] for r in effnet], color="tab:purple")
    ax.set_xscale("log")
    ax.set_yticks(range(len(effnet)), [""] * len(effnet))
    ax.invert_yaxis()
    ax.set_xlabel("relative error of the logits vs float32")
    ax.set_title("EfficientNet-Lite0 logits", fontsize=10)
    for axis in axes:
        axis.grid(True, axis="x", which="both", alpha=0.3)
    fig.suptitle("FP32-trained weights mapped straight to each scheme (bit-accurate datapath, no retraining)",
                 fontsize=11)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        path = out_stem.with_suffix(suffix)
        fig.savefig(path, dpi=110)
        written.append(path)
    plt.close(fig)
    return written


# ----------------------------------------------------------------------------------------------------------
# markdown


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _case_layers(layers: list[dict], row: dict) -> list[dict]:
    key = (row["network"], row["scheme"], row["scaling"], row["variant"])
    return [r for r in layers if (r["network"], r["scheme"], r["scaling"], r["variant"]) == key]


def _fraction(layers: list[dict], side: str, what: str) -> float:
    """Share of all elements of operand ``side`` (a or b) over the layers that ``what`` (underflow/saturated)."""
    total = sum(r[f"{side}_elements"] for r in layers)
    return sum(r[f"{what}_{side}"] * r[f"{side}_elements"] for r in layers) / total if total else 0.0


def _fp16_mac_share(layers: list[dict]) -> float:
    total = sum(r["macs"] for r in layers)
    return sum(r["macs"] for r in layers if r["a_format"] == "float16") / total if total else 0.0


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else float("nan")


def _layer_kind(name: str) -> str:
    """``blocks.3.depthwise`` -> ``depthwise``; ``layer.2.attention.qk`` -> ``attention.qk``."""
    parts = name.split(".")
    return ".".join(parts[2:]) if len(parts) > 2 and parts[1].isdigit() else name


def _same_outcome(a: dict, b: dict) -> bool:
    return (abs(a["top1_agreement"] - b["top1_agreement"]) <= 1
            and abs(a["logit_rel_error"] - b["logit_rel_error"]) <= 0.1 * max(a["logit_rel_error"], 1e-9))


def _minilm_findings(rows: list[dict], layers: list[dict]) -> list[str]:
    out = []
    hfp8 = _find(rows, "minilm", "hfp8", "per_tensor")
    if hfp8:
        met = "meets" if hfp8["mean_cosine"] >= MINILM_TARGET else "does NOT meet"
        out.append(f"**MiniLM under `hfp8` {met} the target** (mean cosine >= {MINILM_TARGET}): mean "
                   f"{hfp8['mean_cosine']:.4f}, worst sentence {hfp8['min_cosine']:.4f} over "
                   f"{int(hfp8['inputs'])} sentences, per-tensor scales.")
    short: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["network"] == "minilm" and r["mean_cosine"] < MINILM_TARGET:
            short[r["scheme"]].append(r)
    for group in short.values():
        r = group[0]
        scalings = " and ".join(_scales(x["scaling"]) for x in group)
        case = _case_layers(layers, r)
        worst = sorted(case, key=lambda x: -x["rel_error"])[:2]
        where = ", ".join(f"`{w['layer']}` {_pct(w['rel_error'])}" for w in worst)
        better = [x for x in rows if x["network"] == "minilm" and x["mean_cosine"] >= MINILM_TARGET
                  and x["scheme"] != "fp16" and x["scaling"] == r["scaling"]]
        fix = "; ".join(f"`{x['scheme']}` ({x['forward_format']}) reaches {x['mean_cosine']:.4f}" for x in better)
        out.append(f"**FP8 falls short on MiniLM with `{r['scheme']}` ({r['forward_format']}, {scalings} "
                   f"scales)**: mean cosine {r['mean_cosine']:.4f} < {MINILM_TARGET}, worst sentence "
                   f"{r['min_cosine']:.4f}; the median layer is {_pct(_median([x['rel_error'] for x in case]))} off "
                   f"float32 and the worst {where}." + (f" With the same scales {fix}." if fix else ""))
    return out


def _efficientnet_findings(rows: list[dict], layers: list[dict]) -> list[str]:
    """The EfficientNet-Lite0 statements: outcome, scales, worst layers, what fixes it, fp16 and pair mode."""
    pt = _find(rows, "efficientnet_lite0", "hfp8", "per_tensor")
    pc = _find(rows, "efficientnet_lite0", "hfp8", "per_channel")
    base = pc or pt
    if base is None:
        return []
    lc = _case_layers(layers, base)
    out = [_effnet_outcome([r for r in (pt, pc) if r is not None], int(base["inputs"]))]
    if pt and pc:
        out.append(_effnet_scales(pt, pc, _case_layers(layers, pt), lc))
    out.append(_effnet_worst_layers(base, lc))
    variants = [r for r in rows if r["network"] == "efficientnet_lite0" and r["scheme"] == "hfp8"
                and r["variant"] != ALL_FP8 and "pair" not in r["variant"]]
    if variants:
        out.append(_effnet_fixes(base, variants, layers))
    fp16 = _find(rows, "efficientnet_lite0", "fp16", "per_tensor")
    if fp16:
        out.append(f"`fp16` (FP16 operands, FP16 accumulation) keeps top-1 on {int(fp16['top1_agreement'])}/"
                   f"{int(fp16['inputs'])} photos, logit error {fp16['logit_rel_error']:.2%}.")
    pair = [r for r in rows if r["network"] == "efficientnet_lite0" and "pair" in r["variant"]]
    if pair:
        out.append(_effnet_pair_mode(pair[0], base))
    return out


def _effnet_outcome(present: list[dict], n: int) -> str:
    """Whether all-FP8 EfficientNet keeps its classes, with each weight scaling's agreement on the ``n`` photos."""
    lead = ("**FP8 falls short on EfficientNet-Lite0.**" if any(r["top1_agreement"] < n for r in present)
            else "EfficientNet-Lite0 keeps its classes.")
    return f"{lead} With every GEMM in `hfp8`, top-1 agrees with float32 on " + " and ".join(
        f"{int(r['top1_agreement'])}/{n} photos with {_scales(r['scaling'])} weight scales (the "
        f"float32 class in the top five on {int(r['top5_agreement'])}/{n}, logits off by {r['logit_rel_error']:.0%})"
        for r in present) + "."


def _effnet_scales(pt: dict, pc: dict, lt: list[dict], lc: list[dict]) -> str:
    """Per-tensor against per-channel weight scales: range lost (flushed, saturated) or rounding."""
    errors = [r["rel_error"] for r in lc]
    range_text = (f"weights flushed to zero: {_pct(_fraction(lt, 'b', 'underflow'))} of all weights per-tensor, "
                  f"{_pct(_fraction(lc, 'b', 'underflow'))} per-channel; activations flushed: "
                  f"{_pct(_fraction(lc, 'a', 'underflow'))}; saturated: "
                  f"{_pct(max(_fraction(lc, 'a', 'saturated'), _fraction(lc, 'b', 'saturated')))}")
    if _same_outcome(pt, pc):
        return (f"Per-channel scales do not change the outcome, and range is not what is lost ({range_text}). "
                f"Rounding is: E4M3 keeps 3 mantissa bits, and each of the {len(lc)} GEMM layers is "
                f"{_pct(_median(errors))} off float32 on its own inputs (median; max {_pct(max(errors))}), "
                "errors that compound through the network.")
    return f"Per-channel weight scales change the outcome ({range_text}); median layer error {_pct(_median(errors))}."


def _effnet_worst_layers(base: dict, lc: list[dict]) -> str:
    """The three layers furthest from float32, and the median error by kind of layer."""
    worst = sorted(lc, key=lambda r: -r["rel_error"])[:3]
    kinds: dict[str, list[float]] = defaultdict(list)
    for r in lc:
        kinds[_layer_kind(r["layer"])].append(r["rel_error"])
    medians = ", ".join(f"{k} {_pct(_median(v))}" for k, v in sorted(kinds.items(), key=lambda kv: -_median(kv[1])))
    depthwise_note = (" - depthwise convolutions, whose 9 or 25 products per output average nothing out"
                      if worst and all("depthwise" in r["layer"] for r in worst) else "")
    return (f"Largest per-layer errors (hfp8 {_scales(base['scaling'])}): " + ", ".join(
        f"`{r['layer']}` {_pct(r['rel_error'])}" for r in worst) + depthwise_note + f". Median by kind: {medians}.")


def _effnet_fixes(base: dict, variants: list[dict], layers: list[dict]) -> str:
    """The variants that move layers to FP16, against all-FP8, and which gains most per MAC moved."""
    n = int(base["inputs"])
    shares = [(r, _fp16_mac_share(_case_layers(layers, r))) for r in variants]
    text = "; ".join(f"{_label(r)} ({share:.1%} of the MACs in FP16): top-1 {int(r['top1_agreement'])}/"
                     f"{int(r['inputs'])}, logit error {r['logit_rel_error']:.0%}" for r, share in shares)
    gains = [(r, (base["logit_rel_error"] - r["logit_rel_error"]) / max(share, 1e-9)) for r, share in shares
             if r["scaling"] == base["scaling"] and r["logit_rel_error"] < base["logit_rel_error"]]
    best = max(gains, key=lambda g: g[1], default=None)
    tail = (f" Per MAC moved to FP16, {best[0]['variant']} reduces the logit error the most." if best else
            " None of them improves on all-FP8.")
    return (f"**What fixes it** (measured, against all-FP8 {_scales(base['scaling'])}: top-1 "
            f"{int(base['top1_agreement'])}/{n}, logit error {base['logit_rel_error']:.0%}): {text}.{tail}")


def _effnet_pair_mode(p: dict, base: dict) -> str:
    """The FMMA pair-mode case against one product per PE step."""
    n = int(base["inputs"])
    verdict = ("the order of additions is not what limits fidelity" if _same_outcome(p, base)
               else "pair mode changes the outcome")
    return (f"The FP8 cases add one product per PE step; with the default core's FMMA pair mode (two "
            f"products added with one rounding) hfp8 {_scales(p['scaling'])} gives top-1 "
            f"{int(p['top1_agreement'])}/{int(p['inputs'])} and logit error {p['logit_rel_error']:.1%}, "
            f"against {int(base['top1_agreement'])}/{n} and {base['logit_rel_error']:.1%}: {verdict}.")


def _scaling_findings(rows: list[dict]) -> list[str]:
    groups: dict[str, list[str]] = {"exactly the same": [], "nearly the same": [], "a different": []}
    for r in rows:
        other = _find(rows, r["network"], r["scheme"], "per_channel")
        if r["scaling"] != "per_tensor" or r["variant"] != ALL_FP8 or other is None:
            continue
        if r["network"] == "minilm":
            keys = ("mean_cosine", "min_cosine")
            near = abs(r["mean_cosine"] - other["mean_cosine"]) < 1e-3
        else:
            keys = ("top1_agreement", "top5_agreement", "logit_rel_error")
            near = _same_outcome(r, other)
        kind = "exactly the same" if all(r[k] == other[k] for k in keys) else "nearly the same" if near else \
            "a different"
        groups[kind].append(f"{r['network']} `{r['scheme']}`")
    if not any(groups.values()):
        return []
    parts = [f"{kind} result for {', '.join(names)}" for kind, names in groups.items() if names]
    return ["Per-channel weight scales matter little with floating-point formats: a power-of-two scale moves "
            "values by whole binades, which changes their rounding only where they reach the subnormal range or "
            "the top of the format. Per-tensor and per-channel scales give " + "; ".join(parts) + "."]


def findings(rows: list[dict], layers: list[dict]) -> list[str]:
    """Plain statements, each computed from the results."""
    return _minilm_findings(rows, layers) + _efficientnet_findings(rows, layers) + _scaling_findings(rows)


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(title for title, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for _, key in columns:
            value = row.get(key)
            if key in ("mean_cosine", "min_cosine"):
                cells.append(f"{value:.5f}")
            elif key == "logit_rel_error":
                cells.append(f"{value:.4f}")
            elif key in ("top1_agreement", "top5_agreement"):
                cells.append(f"{int(value)}/{int(row['inputs'])}")
            elif key in ("inputs", "seconds"):
                cells.append(f"{value:.0f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_fidelity_report(folder: str | Path) -> list[Path]:
    """``fidelity.md`` and the figure, from the result files in ``folder``."""
    folder = Path(folder)
    rows, layers, run = load_results(folder)
    figures = plot_fidelity(rows, folder / "fidelity")
    minilm = [r for r in rows if r["network"] == "minilm"]
    effnet = [r for r in rows if r["network"] == "efficientnet_lite0"]
    lines = [
        "# Inference without retraining: FP32-trained weights on FP8",
        "",
        "Regenerate with `hfp8sim fidelity --out reports/fidelity` (runs the study, then this report from "
        "`fidelity.csv`, `fidelity_layers.csv` and `fidelity_run.json`).",
        "",
        "Every GEMM and convolution runs on the bit-accurate datapath "
        f"({run.get('arch', '?')}: {run.get('arithmetic_8bit', '?')}; the FP8 cases with one product per PE step, "
        "see below); LayerNorm, softmax, GELU, batch norm and ReLU6 stay float32. Operands are encoded with "
        "round-to-nearest-even and saturation after power-of-two scales from their amax: activations one scale "
        "per tensor from each call's own values, weights one per tensor or one per output channel. Everything is "
        "compared with the same network in float32.",
        "",
        "![fidelity](fidelity.png)",
        "",
        "## Findings",
        "",
    ]
    lines += [f"- {text}" for text in findings(rows, layers)]
    lines += ["", "## all-MiniLM-L6-v2: cosine similarity of sentence embeddings to float32", ""]
    lines += _table(minilm, [("scheme", "scheme"), ("forward format", "forward_format"), ("weight scales", "scaling"),
                             ("layers", "variant"), ("sentences", "inputs"), ("mean cosine", "mean_cosine"),
                             ("min cosine", "min_cosine"), ("seconds", "seconds")])
    lines += ["", f"Real sentences from CPython's `pydoc_data.topics` (seed {run.get('sentence_seed', 0)}), in "
                  f"batches of {run.get('minilm_batch', 16)} sorted by length. The `fp16` case runs the first "
                  f"{run.get('fp16_minilm_sentences', '?')} of a random order of them only: FP16 x FP16 products "
                  "need the datapath's exact kernel, about 50 times slower than the FP8 one.",
              "", "## EfficientNet-Lite0: agreement with float32 on the bundled photos", ""]
    lines += _table(effnet, [("scheme", "scheme"), ("forward format", "forward_format"), ("weight scales", "scaling"),
                             ("layers", "variant"), ("top-1 agrees", "top1_agreement"),
                             ("float32 top-1 in top-5", "top5_agreement"), ("logit rel. error", "logit_rel_error"),
                             ("seconds", "seconds")])
    photos = ", ".join(run.get("photos", []))
    lines += ["", f"Photos: {photos} (scikit-image, scikit-learn), 224x224 centre crops. "
                  "Top-5 agreement counts the photos whose float32 class is among the FP8 top five.", "",
              "## How this was run", "",
              f"- wall time of the whole `hfp8sim fidelity` run: {run.get('wall_seconds', float('nan')):.0f} s on "
              f"{run.get('cpu_count', '?')} cores ({run.get('numba_threads', '?')} numba threads), hfp8sim "
              f"{run.get('hfp8sim_version', '?')}, Python {run.get('python', '?')};",
              "- scales are powers of two: an operand's amax lands on the format's largest value, or lower so that "
              "no partial sum can overflow the accumulator (amax at most sqrt(accumulator max / products per fold)). "
              "For a reduction of 1024 products on this core that puts amax at most at "
              + ", ".join(f"{v:.4g} for `{k}`" for k, v in run.get("amax_limits", {}).items())
              + " (FP16 operands are only ever scaled down to that; `fp16` runs with per-tensor scales only);",
              "- the default core adds two FP8 products per PE step (FMMA pair mode); that needs the datapath's exact "
              "kernel, so the FP8 cases run with one product per step and one EfficientNet case measures pair mode;",
              "- per-layer errors of every case are in `fidelity_layers.csv`.", ""]
    lines += trained_section(folder)
    md = folder / "fidelity.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    return [md, *figures]
