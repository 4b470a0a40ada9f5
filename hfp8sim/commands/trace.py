"""``hfp8sim trace WORKLOAD --scheme S --arch ARCH --out FILE``: run a workload through the bit-accurate
datapath layer by layer and write the layer trace (JSON) the timing model executes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .args import add_formats_option, load_format_files, non_negative_int, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "trace", help="run a workload through the bit-accurate datapath and write its layer trace (JSON)",
        description="WORKLOAD is a real network (minilm: all-MiniLM-L6-v2 on real sentences; efficientnet_lite0: "
                    "EfficientNet-Lite0 on bundled photos), or a shipped workload name or YAML file, which gets "
                    "seeded synthetic tensors of its shapes.")
    p.add_argument("workload", help="minilm, efficientnet_lite0, a shipped workload name or a workload file (YAML, "
                                    "ONNX or SCALE-Sim CSV, told apart by content); or a trace file (JSON) to check "
                                    "and summarise")
    p.add_argument("--scheme", help="precision scheme (default: the arch config's)")
    p.add_argument("--arch", help="arch config file or shipped name (default: the shipped default core); it "
                                  "sets the array, dataflow, accumulators and pair mode, i.e. the order of additions")
    p.add_argument("--out", help="trace file to write (default: out/traces/<workload>.json)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the synthetic tensors, or of the choice of sentences (default 0)")
    p.add_argument("--scaling", choices=("per_tensor", "per_channel"), default="per_tensor",
                   help="weight scales per tensor or per output channel (activations: per tensor)")
    p.add_argument("--max-rows", type=positive_int, default=2048,
                   help="synthetic tensors: rows of M computed bit-accurately per layer (default 2048)")
    p.add_argument("--max-macs", type=positive_int, default=20_000_000,
                   help="synthetic tensors: MACs computed bit-accurately per layer, by capping rows (default 2e7)")
    p.add_argument("--sentences", type=positive_int, default=8,
                   help="minilm: real sentences, each padded or truncated to 128 tokens (default 8)")
    p.add_argument("--images", type=positive_int, default=1, help="efficientnet_lite0: bundled photos (default 1, "
                                                                  "at most 7)")
    p.add_argument("--synthetic", action="store_true",
                   help="trace a real network's shipped workload with synthetic tensors instead of real ones")
    p.add_argument("--unfolded-batch-norm", action="store_true",
                   help="keep inference batch norms after their conv, on the vector unit (default: folded into "
                        "the conv's weights before quantization and its bias, as deployed)")
    p.add_argument("--quiet", action="store_true", help="no per-layer progress on stderr")
    add_formats_option(p)
    p.set_defaults(func=run_trace)


def run_trace(args: argparse.Namespace) -> int:
    from ..traces.schema import Trace
    from ..traces.trace import trace_workload

    if _is_trace_file(args.workload):
        _summarise(Trace.load(args.workload).document, None)
        return 0
    from ..io.outputs import check_output_file, write_file_atomically

    load_format_files(args.formats)

    out = check_output_file(Path(args.out) if args.out else
                            Path("out/traces") / f"{Path(str(args.workload)).stem}.json", "--out")
    start = time.perf_counter()
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    trace = trace_workload(args.workload, scheme=args.scheme, arch=args.arch, scaling=args.scaling, seed=args.seed,
                           max_rows=args.max_rows, max_macs=args.max_macs, sentences=args.sentences,
                           images=args.images, synthetic_tensors=args.synthetic,
                           fold_batch_norms=not args.unfolded_batch_norm, progress=progress)
    write_file_atomically(out, trace.write)
    _summarise(trace.document, time.perf_counter() - start)
    print(f"wrote {out}")
    return 0


def _is_trace_file(workload: str) -> bool:
    """A trace to summarise (by content, or a .json name), rather than a workload to trace (a name, YAML, ONNX
    or a SCALE-Sim topology)."""
    from ..io.file_kinds import FileKind, detect_file_kind

    path = Path(str(workload))
    return (path.is_file() or path.suffix == ".json") and detect_file_kind(path) == FileKind.TRACE


def _summarise(trace: dict, seconds: float | None) -> None:
    totals = trace.get("totals", {})
    print(f"{trace['workload']} ({trace['tensors']} tensors), scheme {trace['scheme']['name']}, "
          f"{trace['arch']['name']} ({trace['arch'].get('arithmetic_8bit', '')}), "
          f"{trace.get('scaling', {}).get('policy', '?')} scaling")
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    if totals:
        print(f"  {totals['layers']} layers ({totals['gemm_layers']} GEMM), {totals['macs'] / 1e9:.3f} G MACs, "
              f"{totals['macs_computed'] / 1e9:.3f} G computed bit-accurately{took}")
    if trace.get("batch_norm") and any(layer["op"] == "batchnorm" for layer in trace["layers"]):
        print(f"  batch norm: {trace['batch_norm']}")
    gemms = [layer for layer in trace["layers"] if layer["gemm"] is not None and layer.get("rel_error") is not None]
    worst = sorted(gemms, key=lambda layer: -layer["rel_error"])[:3]
    if worst:
        print("  largest error against float32: " + ", ".join(f"{layer['name']} {layer['rel_error']:.2%}"
                                                          for layer in worst))
    if trace.get("outputs"):
        print("  network output vs float32: " + ", ".join(f"{k} {v:.4f}" for k, v in trace["outputs"].items()
                                                        if isinstance(v, float)))
