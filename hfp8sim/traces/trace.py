"""Layer traces: a workload run through the bit-accurate datapath, layer by layer, written as one JSON file.

The trace is what the timing model executes and what runs are compared by.  Two kinds of tensors:

- **real**: ``minilm`` (all-MiniLM-L6-v2 on real English sentences, padded or truncated to exactly
  :data:`MINILM_TOKENS` tokens) and ``efficientnet_lite0`` (EfficientNet-Lite0 on the bundled photos, 224x224)
  run their real weights on real inputs through :class:`~hfp8sim.traces.DatapathOps`; every GEMM is
  computed in full.  Their non-GEMM layers come from the shipped workload of the same network
  (``minilm_l6_seq128``, ``efficientnet_lite0``: one sentence or image), with their sizes multiplied by the
  number of sentences or images.
- **synthetic (seed N)**: any other workload (a shipped name or a YAML file) gets seeded synthetic operands
  of its shapes (:mod:`hfp8sim.traces.synthetic`).  Big layers are sampled: only ``sampled_rows`` rows of M
  (evenly spaced, the same in every batch entry) are computed bit-accurately, at most ``max_rows`` and at
  most ``max_macs`` MACs per layer; statistics of the operands (zeros, saturation, underflow, dynamic range)
  and all shapes and bytes are always those of the whole layer.

The file (``"format": "hfp8sim-trace/2"``) holds the workload, the tensors, the seed, the scheme, the arch,
the scaling policy and the hfp8sim version at the top, then ``layers`` in execution order.  A GEMM layer
has ``gemm: {M, N, K, batch}`` as the datapath runs it and the statistics of
:class:`~hfp8sim.traces.GemmRecord`; a non-GEMM layer has ``gemm: null``, its ``shape``, ``elements`` and
``ops`` (for the vector-unit model).  Keys are sorted and floats written with 6 significant digits, so the
same inputs and seed give the same bytes.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import __version__, limits
from ..config.arch import ArchConfig, parse_arch, resolve_arch
from ..errors import TraceError, WorkloadError
from ..formats import Scheme
from ..workloads import load_workload, load_workload_file, resolve_workload
from ..workloads.network import Network, layer_op_name
from . import synthetic
from .datapath_ops import DatapathOps, GemmRecord, describe_arith
from .schema import TRACE_FORMAT, VECTOR_WORK_COUNTS, Trace, with_digest
from ..progress import Eta

REAL_NETWORKS = {"minilm": "minilm_l6_seq128", "efficientnet_lite0": "efficientnet_lite0"}
"""Real networks and the shipped workload whose layer list (one sentence or image) their trace follows."""
MINILM_TOKENS = 128
DEFAULT_SENTENCES = 8
DEFAULT_IMAGES = 1
DEFAULT_MAX_ROWS = 2048
DEFAULT_MAX_MACS = 20_000_000

Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------
# arch and scheme


def one_product_per_step(arch: ArchConfig) -> ArchConfig:
    """The same core completing one FP8 MAC per PE per cycle: no FMMA pair mode, so FP8 GEMMs run on the
    datapath's vectorised float32 kernel (pair mode needs its exact kernel, about 50 times slower)."""
    data = arch.model.model_dump(mode="python")
    data["array"]["macs_per_pe_per_cycle"] = {**data["array"]["macs_per_pe_per_cycle"], 8: 1}
    return parse_arch(data, source=arch.source or "<arch>")


def _scheme_record(scheme: Scheme) -> dict:
    return {"name": scheme.name, "forward": scheme.forward.name, "backward": scheme.backward_name,
            "accumulate": scheme.accumulate.name}


def _arch_record(arch: ArchConfig, ops: DatapathOps) -> dict:
    array = arch.array
    acc = array.accumulator
    return {
        "name": arch.name, "file": Path(arch.source).name if arch.source else None, "rows": ops.arith.rows,
        "cols": ops.arith.cols, "dataflow": ops.arith.dataflow, "clock_ghz": arch.clock_ghz,
        "macs_per_pe_per_cycle": {str(bits): int(rate) for bits, rate in sorted(array.macs_per_pe_per_cycle.items())},
        "accumulator": {"format": ops.arith.acc_format.name, "buffer_format": ops.arith.buffer_format.name,
                        "chunk": acc.chunk, "chain": acc.chain, "rounding": acc.rounding, "overflow": acc.overflow},
        "arithmetic_8bit": describe_arith(ops.arith), "arithmetic_16bit": describe_arith(ops.wide_arith),
    }


# ----------------------------------------------------------------------------------------------------------
# layer entries


def _gemm_entry(record: GemmRecord, layer=None) -> dict:
    entry = {
        "name": record.name, "op": record.op, "pass": getattr(layer, "pass_", "forward"),
        "gemm": {"M": record.m, "N": record.n, "K": record.k, "batch": record.batch},
        "macs": record.macs, "sampled_rows": record.sampled_rows, "arith": record.arith, "conv": record.conv,
        "out_shape": list(record.out_shape), "out_format": record.out_format,
        "out_element_bytes": record.out_element_bytes, "out_bytes": record.out_bytes,
        "zero_mac_fraction": record.zero_mac_fraction, "saturated_out": record.saturated_out,
        "rel_error": record.rel_error, "sqnr_db": record.sqnr_db, "output_sha256": record.output_sha256,
    }
    for side, operand in (("a", record.a), ("b", record.b)):
        entry.update({
            f"{side}_role": operand.role, f"{side}_shape": list(operand.shape), f"{side}_format": operand.format,
            f"{side}_element_bytes": operand.element_bytes, f"{side}_bytes": operand.bytes,
            f"{side}_scale_log2": [operand.scale_log2_min, operand.scale_log2_max],
            f"zero_fraction_{side}": operand.zero_fraction, f"saturated_{side}": operand.saturated,
            f"underflow_{side}": operand.underflow, f"dynamic_range_log2_{side}": operand.dynamic_range_log2,
            f"{side}_codes_sha256": operand.codes_sha256,
        })
    if layer is not None:
        entry["inputs"] = list(layer.inputs)
    return entry


def _vector_entry(layer, batch: int = 1) -> dict:
    shape = list(layer.output_shape)
    shape[0] *= batch
    work = layer.vector_work()  # what the workload asks of the vector unit, so a trace costs the same
    # whole counts as integers: the trace rounds floats to a few significant digits
    counts = {key: int(value) if float(value).is_integer() else value
              for key in VECTOR_WORK_COUNTS for value in [getattr(work, key) * batch]}
    return {"name": layer.name, "op": layer_op_name(layer), "pass": layer.pass_, "gemm": None,
            "inputs": list(layer.inputs), "shape": shape, "elements": int(layer.elements) * batch,
            "ops": int(layer.ops) * batch, "vector_work": counts | {"fusable": work.fusable, "folded": work.folded},
            **({"folded": bool(layer.folded)} if layer_op_name(layer) == "batchnorm" else {})}


def sample_rows(m: int, limit: int) -> np.ndarray | None:
    """``limit`` evenly spaced rows of ``m`` (None when all are kept)."""
    if limit >= m:
        return None
    return (np.arange(limit, dtype=np.int64) * m) // limit


# ----------------------------------------------------------------------------------------------------------
# synthetic tensors


def _check_tensor_sizes(network: Network) -> None:
    """Every operand tensor is materialised whole (only the sampled rows are multiplied), so a layer whose
    operand exceeds ``limits.MAX_TRACE_TENSOR_ELEMENTS`` is refused before the first layer is traced."""
    for layer in network.gemm_layers():
        g = layer.gemm()
        sizes = {"A": g.batch * g.M * g.K, "B": g.batch * g.K * g.N}
        if layer.is_conv:
            sizes.update(input=math.prod(layer.input_shape), weights=math.prod(layer.weight_shape))
        operand, elements = max(sizes.items(), key=lambda item: item[1])
        if elements > limits.MAX_TRACE_TENSOR_ELEMENTS:
            raise TraceError(f"{network.file or network.name}: layer {layer.name}: operand {operand} has "
                             f"{elements:.3g} elements, more than the limit of {limits.MAX_TRACE_TENSOR_ELEMENTS:,} "
                             "per tensor in a trace (hfp8sim.limits.MAX_TRACE_TENSOR_ELEMENTS)")


def trace_synthetic(network: Network, ops: DatapathOps, *, seed: int, max_rows: int, max_macs: int,
                    progress: Progress | None = None) -> list[dict]:
    """Layer entries of ``network`` with seeded synthetic operands (see the module docstring)."""
    _check_tensor_sizes(network)
    gemm_total = len(network.gemm_layers())
    done = 0
    eta = Eta(sum(_sampled_macs(layer, max_rows, max_macs) for layer in network.gemm_layers()))
    entries = []
    for index, layer in enumerate(network.layers):
        if not layer.is_gemm:
            entries.append(_vector_entry(layer))
            continue
        start = time.perf_counter()
        g = layer.gemm()
        by_macs = max(1, max_macs // max(1, g.batch * g.N * g.K))
        rows = sample_rows(g.M, min(max_rows, by_macs))
        rng = synthetic.layer_rng(seed, index)
        if layer.is_conv and layer.pass_ == "forward" and layer.convention == "native":
            x, w = synthetic.conv_operands(network, layer, rng)
            ops.run_conv2d(layer.name, x, w, layer.stride, layer.padding, layer.dilation, layer.groups, rows=rows)
        else:
            a, b = synthetic.gemm_operands(network, layer, rng)
            ops.run_matmul(layer.name, a, b, g.a_role, g.b_role, rows=rows)
        record = ops.records[-1]
        if (record.batch, record.m, record.n, record.k) != (g.batch, g.M, g.N, g.K):
            raise TraceError(f"{network.name}: layer {layer.name!r} lowers to batch {record.batch} x "
                             f"[{record.m}x{record.k}] x [{record.k}x{record.n}] on the datapath but the workload "
                             f"says batch {g.batch} x [{g.M}x{g.K}] x [{g.K}x{g.N}]")
        entries.append(_gemm_entry(record, layer))
        ops.records.clear()
        ops.clear_cache()
        done += 1
        if progress:
            progress(f"trace: [{done}/{gemm_total}] {layer.name}  M={g.M} N={g.N} K={g.K} batch={g.batch}"
                     f"{'' if rows is None else f' ({len(rows)} rows sampled)'}  {time.perf_counter() - start:.1f} s; "
                     f"{eta.advance(_sampled_macs(layer, max_rows, max_macs))}")
    return entries


def _sampled_macs(layer, max_rows: int, max_macs: int) -> int:
    """The MACs a synthetic trace computes for ``layer`` (its sampled rows only): the weight of its ETA."""
    g = layer.gemm()
    by_macs = max(1, max_macs // max(1, g.batch * g.N * g.K))
    return g.batch * g.N * g.K * min(g.M, max_rows, by_macs)


# ----------------------------------------------------------------------------------------------------------
# real networks


def _real_entries(template: Network, records: list[GemmRecord], batch: int) -> list[dict]:
    """Records of a real forward merged into the layer list of its shipped workload (sizes times ``batch``)."""
    by_name = {r.name: r for r in records}
    template_gemms = [layer.name for layer in template.gemm_layers()]
    if [r.name for r in records] != template_gemms:
        raise TraceError(f"the forward called GEMMs {[r.name for r in records][:4]}... but the shipped workload "
                         f"{template.name} lists {template_gemms[:4]}...; they must match one to one")
    entries = []
    for layer in template.layers:
        if not layer.is_gemm:
            entries.append(_vector_entry(layer, batch))
            continue
        record, g = by_name[layer.name], layer.gemm()
        expected = {(g.batch, g.M * batch, g.N, g.K), (g.batch * batch, g.M, g.N, g.K)}
        if (record.batch, record.m, record.n, record.k) not in expected:
            raise TraceError(f"layer {layer.name!r}: the forward ran batch {record.batch} x {record.m}x{record.n}x"
                             f"{record.k}, the shipped workload {template.name} says batch {g.batch} x "
                             f"{g.M}x{g.N}x{g.K} per input")
        entries.append(_gemm_entry(record, layer))
    return entries


def _gemm_progress(template: Network, inputs: int, progress: Progress | None):
    """A progress callback per GEMM of a real forward over ``inputs`` inputs of ``template``'s size, with an
    ETA weighted by MACs."""
    if progress is None:
        return None
    total = len(template.gemm_layers())
    count = [0]
    eta = Eta(template.macs * inputs)

    def report(record: GemmRecord, seconds: float) -> None:
        count[0] += 1
        progress(f"trace: [{count[0]}/{total}] {record.name}  M={record.m} N={record.n} K={record.k} "
                 f"batch={record.batch}  {seconds:.1f} s; "
                 f"{eta.advance(record.batch * record.m * record.n * record.k)}")

    return report


def minilm_token_batch(model, sentences: list[str], tokens: int = MINILM_TOKENS):
    """Token batch of ``sentences`` padded (or truncated) to exactly ``tokens`` tokens."""
    from ..networks import TokenBatch

    batch = model.tokenizer.batch(sentences, max_length=tokens)
    ids = np.full((len(sentences), tokens), model.tokenizer.pad_id, dtype=np.int64)
    mask = np.zeros((len(sentences), tokens), dtype=np.int64)
    width = batch.input_ids.shape[1]
    ids[:, :width] = batch.input_ids
    mask[:, :width] = batch.attention_mask
    return TokenBatch(ids, mask)


def cosine_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = x.astype(np.float64), y.astype(np.float64)
    return (x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


def trace_minilm(ops: DatapathOps, *, sentences: int, seed: int, progress: Progress | None = None):
    from ..networks import Float32Ops, load_minilm, real_sentences

    model = load_minilm()
    texts = real_sentences(sentences, seed=seed)
    batch = minilm_token_batch(model, texts)
    template = load_workload(resolve_workload(REAL_NETWORKS["minilm"]))
    ops.progress = _gemm_progress(template, sentences, progress)
    embedded = model.pool(model.forward(batch, ops), batch.attention_mask)
    reference = model.pool(model.forward(batch, Float32Ops()), batch.attention_mask)
    cosine = cosine_rows(embedded, reference)
    inputs = {"network": "all-MiniLM-L6-v2", "sentences": sentences, "tokens": MINILM_TOKENS,
              "real_tokens": int(batch.attention_mask.sum()), "source": "pydoc_data.topics (CPython)",
              "layout": template.name}
    outputs = {"cosine_to_float32_mean": float(cosine.mean()), "cosine_to_float32_min": float(cosine.min())}
    return _real_entries(template, ops.records, sentences), inputs, outputs


def _with_batch_norms(network: Network, fold: bool) -> Network:
    """``network`` with its batch norms folded (as loaded) or all kept on the vector unit."""
    return network if network.fold_batch_norms == fold else dataclasses.replace(network, fold_batch_norms=fold)


def _check_batch_norms_folded(template: Network, folded: bool) -> None:
    """The datapath folded every batch norm of the forward (or none): the workload the trace follows must
    say the same of each, or the timing model would charge work the datapath did not do (or the reverse)."""
    disagree = [layer.name for layer in template.layers if layer.op_name == "batchnorm" and layer.folded != folded]
    if disagree:
        raise TraceError(f"the forward {'folded' if folded else 'did not fold'} batch norm, but the shipped "
                         f"workload {template.name} says {disagree[0]} is {'not ' if folded else ''}folded")


def trace_efficientnet(ops: DatapathOps, *, images: int, fold_batch_norms: bool = True,
                       progress: Progress | None = None):
    from ..networks import PHOTO_NAMES, Float32Ops, load_efficientnet_lite0, preprocess, real_photos

    if not 1 <= images <= len(PHOTO_NAMES):
        raise TraceError(f"--images must be between 1 and {len(PHOTO_NAMES)} (the bundled photos), got {images}")
    model = load_efficientnet_lite0()
    photos = real_photos(PHOTO_NAMES[:images])
    batch = np.stack([preprocess(photo) for photo in photos.values()])
    template = load_workload(resolve_workload(REAL_NETWORKS["efficientnet_lite0"]))
    template = _with_batch_norms(template, fold_batch_norms)
    _check_batch_norms_folded(template, fold_batch_norms)
    ops.progress = _gemm_progress(template, images, progress)
    logits = model.forward(batch, ops, fold_batch_norms)
    reference = model.forward(batch, Float32Ops(), fold_batch_norms)
    top1, ref_top1 = logits.argmax(axis=1), reference.argmax(axis=1)
    top5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    inputs = {"network": "EfficientNet-Lite0", "images": list(photos), "size": [224, 224], "layout": template.name}
    outputs = {"top1": [int(c) for c in top1], "top1_float32": [int(c) for c in ref_top1],
               "top1_agreement": float(np.mean(top1 == ref_top1)),
               "top5_agreement": float(np.mean([ref_top1[i] in top5[i] for i in range(len(top1))])),
               "logit_rel_error": float(np.linalg.norm(logits - reference) / np.linalg.norm(reference))}
    return _real_entries(template, ops.records, images), inputs, outputs


# ----------------------------------------------------------------------------------------------------------
# the trace


def _batch_norm_record(entries: list[dict], fold: bool, real: bool) -> str:
    folded = sum(1 for e in entries if e.get("folded"))
    kept = sum(1 for e in entries if e["op"] == "batchnorm" and not e.get("folded"))
    how = ("w' = w * gamma/sqrt(var+eps), b' = (b - mean) * gamma/sqrt(var+eps) + beta, folded before "
           "quantization; the bias added after the conv" if real else "synthetic weights stand for the folded ones")
    if not fold:
        return f"unfolded (explicitly): {kept} batch norms run after their conv on the vector unit"
    return f"{folded} folded into their conv ({how}); {kept} kept on the vector unit"


def trace_workload(workload: str | Path, *, scheme: str | Scheme | None = None,
                   arch: ArchConfig | str | Path | None = None, scaling: str = "per_tensor", seed: int = 0,
                   max_rows: int = DEFAULT_MAX_ROWS, max_macs: int = DEFAULT_MAX_MACS,
                   sentences: int = DEFAULT_SENTENCES, images: int = DEFAULT_IMAGES, synthetic_tensors: bool = False,
                   fold_batch_norms: bool = True, progress: Progress | None = None) -> Trace:
    """The layer trace of ``workload`` (a real network name, a shipped workload name or a workload file).

    ``synthetic_tensors`` traces a real network's shipped workload with synthetic tensors instead.
    ``fold_batch_norms`` (the default) folds inference batch norms into their convs (the real network's
    datapath runs the folded, then quantized, weights; the trace marks those norms ``folded``); False keeps
    them after the conv, on the vector unit, for comparison.
    """
    arch_config = resolve_arch(arch)
    ops = DatapathOps.from_arch(arch_config, scheme, scaling)
    for key, value in (("max_rows", max_rows), ("max_macs", max_macs), ("sentences", sentences),
                       ("images", images)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TraceError(f"{key} must be a positive integer, got {value!r}")
    name = str(workload)
    real = name in REAL_NETWORKS and not synthetic_tensors
    if real:
        if name == "minilm":
            entries, inputs, outputs = trace_minilm(ops, sentences=sentences, seed=seed, progress=progress)
        else:
            entries, inputs, outputs = trace_efficientnet(ops, images=images, fold_batch_norms=fold_batch_norms,
                                                          progress=progress)
        workload_name, tensors = name, "real"
    else:
        try:
            path = resolve_workload(REAL_NETWORKS.get(name, name))
        except WorkloadError as exc:
            raise WorkloadError(f"{exc.detail}; real networks: {', '.join(REAL_NETWORKS)}", file=exc.file) from None
        network = _with_batch_norms(load_workload_file(path), fold_batch_norms)  # YAML, ONNX, SCALE-Sim
        entries = trace_synthetic(network, ops, seed=seed, max_rows=max_rows, max_macs=max_macs, progress=progress)
        workload_name, tensors, outputs = network.name, f"synthetic (seed {seed})", None
        inputs = {"workload_file": path.name, "max_rows": max_rows, "max_macs": max_macs,
                  "distributions": "weights normal/sqrt(K); activations by producer (relu: max(z,0), "
                                   "averaged relu: |z|, softmax, gelu ...), else normal; gradients normal*1e-3"}
    gemms = [e for e in entries if e["gemm"] is not None]
    return Trace.from_document({
        "format": TRACE_FORMAT, "workload": workload_name, "tensors": tensors, "seed": seed, "inputs": inputs,
        "outputs": outputs, "scheme": _scheme_record(ops.scheme), "arch": _arch_record(arch_config, ops),
        "scaling": {"policy": ops.scaling, "power_of_two": ops.power_of_two,
                    "margin": "amax at most sqrt(accumulator max / products per segment)" if ops.margin is None
                    else ops.margin,
                    "activations": "per tensor, from each call's own amax"},
        "hfp8sim_version": __version__,
        "batch_norm": _batch_norm_record(entries, fold_batch_norms, real),
        "totals": {"layers": len(entries), "gemm_layers": len(gemms), "macs": sum(e["macs"] for e in gemms),
                   "macs_computed": sum(e["gemm"]["batch"] * e["sampled_rows"] * e["gemm"]["N"] * e["gemm"]["K"]
                                        for e in gemms)},
        "layers": [with_digest(entry) for entry in entries],
    })
