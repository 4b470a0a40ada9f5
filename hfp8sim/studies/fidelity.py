"""Inference without retraining: FP32-trained weights mapped straight onto each FP8 scheme.

Every GEMM and convolution of the two real networks runs on the bit-accurate datapath
(:class:`~hfp8sim.traces.DatapathOps`) with the default core's array and accumulators; everything else stays
float32.  Results are compared with the same network in float32 (:class:`~hfp8sim.networks.Float32Ops`):

- **MiniLM** (all-MiniLM-L6-v2): cosine similarity of each sentence embedding to its float32 embedding, over
  :data:`MINILM_SENTENCES` real sentences (batches of 16, sorted by length so that little is padding);
- **EfficientNet-Lite0**: top-1 and top-5 agreement with float32 (the float32 top-1 class is the FP8 top-1 /
  among the FP8 top-5) and the relative error of the logits, on the bundled photos.

Cases: each scheme (``hfp8``, ``fp8_e5m2``, ``ocp_fp8``, ``fp16``) with weight scales per tensor and per output
channel (activations per tensor, from each call's amax), plus variants that keep some layers in FP16
(``overrides``): EfficientNet-Lite0's depthwise convolutions, its first and last layers, its depthwise and
projection convolutions.  ``fp16`` operands are never scaled up (:class:`DatapathOps`), so its two scalings are
the same computation and only ``per_tensor`` is run.

Cost: FP8 x FP8 products with one product per PE step run on the datapath's vectorised float32 kernel; FP16
operands and the FMMA pair mode need its exact kernel, about 50 times slower.  So the FP8 cases use the arch
with pair mode off (``pair_check`` measures one EfficientNet case with it on, as the default core runs), and
the ``fp16`` MiniLM case runs :data:`FP16_MINILM_SENTENCES` sentences.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..progress import Eta
from ..traces.datapath_ops import (
    DatapathOps, accumulator_limit, arithmetic_for_arch, describe_arith, summarize_by_layer,
)

SCHEMES = ("hfp8", "fp8_e5m2", "ocp_fp8", "fp16")
SCALINGS = ("per_tensor", "per_channel")
MINILM_SENTENCES = 200
FP16_MINILM_SENTENCES = 8
MINILM_BATCH = 16
SENTENCE_SEED = 0
ALL_FP8 = "all GEMMs in the scheme"

EFFICIENTNET_VARIANTS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("per_tensor", "depthwise convs in float16", (("blocks.*.depthwise", "float16"),)),
    ("per_channel", "depthwise convs in float16", (("blocks.*.depthwise", "float16"),)),
    ("per_channel", "stem and fc in float16", (("stem", "float16"), ("fc", "float16"))),
    ("per_channel", "depthwise and project convs in float16",
     (("blocks.*.depthwise", "float16"), ("blocks.*.project", "float16"))),
)
"""(scaling, variant label, layer-name overrides) of the ``hfp8`` EfficientNet variants."""

RESULT_FIELDS = ("network", "scheme", "forward_format", "scaling", "variant", "arithmetic", "inputs",
                 "mean_cosine", "min_cosine", "top1_agreement", "top5_agreement", "logit_rel_error", "seconds")
LAYER_FIELDS = ("network", "scheme", "scaling", "variant", "layer", "op", "a_format", "b_format", "macs",
                "rel_error", "a_elements", "b_elements", "underflow_a", "underflow_b", "saturated_a", "saturated_b")


@dataclasses.dataclass(frozen=True)
class FidelityCase:
    network: str  # "minilm" or "efficientnet_lite0"
    scheme: str
    scaling: str
    variant: str = ALL_FP8
    overrides: tuple[tuple[str, str], ...] = ()
    pair: bool = False  # FMMA pair mode for 8-bit operands
    inputs: int | None = None  # sentences (MiniLM); None: the default for the network


def default_cases(*, pair_check: bool = True) -> list[FidelityCase]:
    cases = []
    for network in ("minilm", "efficientnet_lite0"):
        for scheme in SCHEMES:
            for scaling in SCALINGS if scheme != "fp16" else ("per_tensor",):
                inputs = FP16_MINILM_SENTENCES if network == "minilm" and scheme == "fp16" else None
                cases.append(FidelityCase(network, scheme, scaling, inputs=inputs))
    for scaling, label, overrides in EFFICIENTNET_VARIANTS:
        cases.append(FidelityCase("efficientnet_lite0", "hfp8", scaling, label, overrides))
    if pair_check:
        cases.append(FidelityCase("efficientnet_lite0", "hfp8", "per_channel", "pair mode (FMMA) on", pair=True))
    return cases


def _cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = x.astype(np.float64), y.astype(np.float64)
    return (x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


class _Networks:
    """The two models, their inputs and float32 outputs, loaded once."""

    def __init__(self, sentences: int):
        from ..networks import Float32Ops, load_efficientnet_lite0, load_minilm, preprocess, real_photos, real_sentences

        self.minilm = load_minilm()
        texts = real_sentences(sentences, seed=SENTENCE_SEED)
        lengths = [len(self.minilm.tokenizer.encode(t, self.minilm.config.max_seq_length)) for t in texts]
        self.sentences = [texts[i] for i in np.argsort(lengths, kind="stable")]  # little padding per batch
        self.embeddings32 = self.minilm.embed(self.sentences, Float32Ops(), batch_size=MINILM_BATCH)
        self.efficientnet = load_efficientnet_lite0()
        photos = real_photos()
        self.photo_names = list(photos)
        self.images = np.stack([preprocess(p) for p in photos.values()])
        self.logits32 = self.efficientnet.forward(self.images, Float32Ops())


def run_case(case: FidelityCase, nets: _Networks, arch) -> tuple[dict, list[dict]]:
    """One case: its result row and its per-layer rows."""
    wide = arithmetic_for_arch(arch, 16, case.scheme)
    arith = dataclasses.replace(arithmetic_for_arch(arch, 8, case.scheme), pair=case.pair)
    ops = DatapathOps(case.scheme, arith, case.scaling, wide_arith=wide, overrides=dict(case.overrides))
    start = time.perf_counter()
    row = {"network": case.network, "scheme": case.scheme, "forward_format": ops.scheme.forward.name,
           "scaling": case.scaling, "variant": case.variant, "arithmetic": describe_arith(arith)}
    if case.network == "minilm":
        count = case.inputs or len(nets.sentences)
        # the first `count` of a random draw, so the subset is itself a random sample
        chosen = np.sort(np.random.default_rng(SENTENCE_SEED).permutation(len(nets.sentences))[:count])
        embeddings = nets.minilm.embed([nets.sentences[i] for i in chosen], ops, batch_size=MINILM_BATCH)
        cosine = _cosines(embeddings, nets.embeddings32[chosen])
        row.update(inputs=count, mean_cosine=float(cosine.mean()), min_cosine=float(cosine.min()))
    else:
        logits = nets.efficientnet.forward(nets.images, ops)
        ref = nets.logits32
        top1, ref_top1 = logits.argmax(axis=1), ref.argmax(axis=1)
        top5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
        row.update(inputs=len(ref), top1_agreement=int(np.sum(top1 == ref_top1)),
                   top5_agreement=int(sum(ref_top1[i] in top5[i] for i in range(len(ref)))),
                   logit_rel_error=float(np.linalg.norm(logits - ref) / np.linalg.norm(ref)))
    row["seconds"] = round(time.perf_counter() - start, 1)
    layers = []
    for name, s in summarize_by_layer(ops.records).items():
        layers.append({"network": case.network, "scheme": case.scheme, "scaling": case.scaling,
                       "variant": case.variant, "layer": name, "op": s["op"], "a_format": s["a_format"],
                       "b_format": s["b_format"], "macs": s["macs"], "rel_error": s["rel_error"],
                       "a_elements": s["a_elements"], "b_elements": s["b_elements"],
                       "underflow_a": s["underflow_a"] / s["a_elements"],
                       "underflow_b": s["underflow_b"] / s["b_elements"],
                       "saturated_a": s["saturated_a"] / s["a_elements"],
                       "saturated_b": s["saturated_b"] / s["b_elements"]})
    return row, layers


def run_fidelity_study(out: str | Path, *, arch=None, cases: Sequence[FidelityCase] | None = None,
                       sentences: int = MINILM_SENTENCES,
                       progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Run ``cases`` (default: :func:`default_cases`) and write ``fidelity.csv``, ``fidelity_layers.csv`` and
    ``fidelity_run.json`` into ``out``; returns their paths."""
    import numba

    from .. import __version__
    from ..config.arch import resolve_arch

    started = time.perf_counter()
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    arch_config = resolve_arch(arch)
    cases = list(cases) if cases is not None else default_cases()
    nets = _Networks(sentences)
    eta = Eta(len(cases))  # by cases: a rough estimate, the FP16 cases run the slower exact kernel
    rows, layer_rows = [], []
    for i, case in enumerate(cases):
        row, layers = run_case(case, nets, arch_config)
        rows.append(row)
        layer_rows.extend(layers)
        metric = (f"mean cosine {row['mean_cosine']:.5f} (min {row['min_cosine']:.5f})" if case.network == "minilm"
                  else f"top-1 {row['top1_agreement']}/{row['inputs']}, top-5 {row['top5_agreement']}/"
                       f"{row['inputs']}, logit error {row['logit_rel_error']:.3f}")
        say(f"fidelity: [{i + 1}/{len(cases)}] {case.network} {case.scheme} {case.scaling} {case.variant}: "
            f"{metric}  ({row['seconds']:.0f} s; {eta.advance(1)})")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"results": folder / "fidelity.csv", "layers": folder / "fidelity_layers.csv",
             "run": folder / "fidelity_run.json"}
    _write_csv(paths["results"], RESULT_FIELDS, rows)
    _write_csv(paths["layers"], LAYER_FIELDS, layer_rows)
    run = {"wall_seconds": round(time.perf_counter() - started, 1), "hfp8sim_version": __version__,
           "arch": arch_config.name, "arch_file": Path(arch_config.source).name if arch_config.source else None,
           "arithmetic_8bit": describe_arith(arithmetic_for_arch(arch_config, 8)),
           "sentences": sentences, "sentence_seed": SENTENCE_SEED, "minilm_batch": MINILM_BATCH,
           "fp16_minilm_sentences": FP16_MINILM_SENTENCES, "photos": nets.photo_names,
           "amax_limits": _amax_limits(arch_config),
           "cpu_count": _cpu_count(), "numba_threads": numba.get_num_threads(), "python": platform.python_version()}
    paths["run"].write_text(json.dumps(run, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return paths


def _amax_limits(arch) -> dict[str, float]:
    """Where each scheme puts an operand's amax (before rounding down to a power of two) in a reduction of
    1024 products on ``arch`` with one product per step: the format's max, or the accumulator limit (16-bit
    operands are only scaled down, to that value)."""
    limits = {}
    for scheme in SCHEMES:
        arith = dataclasses.replace(arithmetic_for_arch(arch, 8, scheme), pair=False)
        fmt = arch.resolve_scheme(scheme).forward
        top = min(float(fmt.max_value), accumulator_limit(arith, 1024))
        limits[scheme] = round(top, 3)
    return limits


def _cpu_count() -> int | None:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _write_csv(path: Path, fields: Sequence[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else _fmt(row.get(k))) for k in fields})


def _fmt(value):
    return f"{value:.6g}" if isinstance(value, float) else value
