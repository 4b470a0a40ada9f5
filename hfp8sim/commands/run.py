"""``hfp8sim run [ARCH] [WORKLOAD] --scheme S --compare hfp8,fp16 --out DIR``: simulate a network on a core.

With no arguments: the default core (``arch_configs/default.yaml``) on ResNet-50 under its scheme (HFP8), and
the same run in FP16 for comparison.  Writes ``layers.csv`` and ``summary.json`` (with the resolved config
and the version) per scheme into ``--out`` (default ``out/run``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .args import add_formats_option, load_format_files, name_list, non_negative_int, positive_int, \
    positive_int_list

DEFAULT_WORKLOAD = "resnet50"


def register(sub) -> None:
    p = sub.add_parser("run", help="simulate a workload on an arch config (default: ResNet-50 on the default core)")
    p.add_argument("arch", nargs="?", help="arch config file or shipped name (default: the default core)")
    p.add_argument("workload", nargs="?", help=f"workload file or shipped name (default: {DEFAULT_WORKLOAD}): "
                                               "YAML, an ONNX model or a SCALE-Sim topology CSV (conv or GEMM "
                                               "form), told apart by content; or a layer trace (JSON, from "
                                               "`hfp8sim trace`) whose measured zero operands are counted")
    p.add_argument("--scheme", help="precision scheme (default: the arch config's)")
    p.add_argument("--compare", type=name_list, help="comma-separated schemes to run side by side, e.g. hfp8,fp16 "
                                     "(default with no arguments: the arch's scheme and fp16)")
    p.add_argument("--out", default="out/run", help="output folder (default: out/run)")
    p.add_argument("--layers", type=non_negative_int, default=8, help="per-layer rows to print (default 8; 0 for none)")
    p.add_argument("--timeline", help="write a Chrome-trace / Perfetto JSON of the simulated events to this file "
                                      "(one file per scheme when comparing: NAME.SCHEME.json)")
    p.add_argument("--format", choices=("hfp8sim", "scalesim"), default="hfp8sim",
                   help="scalesim: also write SCALE-Sim v3's COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv and "
                        "DETAILED_ACCESS_REPORT.csv (its columns; accesses in words) into the output folder; "
                        "needs an arch in SCALE-Sim mode, e.g. a SCALE-Sim .cfg")
    p.add_argument("--retime", action="store_true",
                   help="run a trace on an arch or scheme other than the one it was made with (its measured "
                        "statistics then describe another arithmetic; refused without this flag)")
    add_training_options(p)
    add_formats_option(p)
    p.set_defaults(func=run_main_job)


def add_training_options(p, *, sweep: bool = False) -> None:
    """``--train``, ``--batch``, ``--optimizer``, ``--update-rule`` (shared with ``sweep``, whose ``--batch``
    is a list of values: an axis of the grid)."""
    from ..workloads.training_layers import OPTIMIZERS, UPDATE_RULES

    p.add_argument("--train", action="store_true",
                   help="simulate a training step derived from the (forward) workload: forward, data and weight "
                        "gradients, vector-unit backward ops, the optimizer update; results split by pass")
    p.add_argument("--batch", type=positive_int_list if sweep else positive_int, default=None,
                   help=("samples per step (a sweep: a comma-separated list, one axis; per chip in a data-parallel "
                         "sweep, default 32): rescales the workload's batch (images' N, a linear layer's rows, "
                         "attention's heads x samples); default: the workload's own"))
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="momentum",
                   help="with --train: the optimizer whose states the update reads and writes (default momentum)")
    add_first_last_option(p)
    p.add_argument("--update-rule", choices=UPDATE_RULES, default=None if sweep else "fp32_master",
                   help="with --train: fp32_master (FP32 master weights, forward-format copy for the GEMMs) or "
                        "round_off_residual (IBM HFP8: forward-format weights + FP16 residual); default fp32_master"
                        + (" (in a data-parallel sweep: each protocol's own)" if sweep else ""))


def add_first_last_option(p) -> None:
    p.add_argument("--first-last-fp16", action="store_true",
                   help="run the first and last GEMM layers with weights (a stem conv, a classifier) in fp16, in "
                        "every pass, as IBM's HFP8 keeps them; the other layers in the scheme")


def _progress(index: int, total: int, name: str) -> None:
    if sys.stderr.isatty():
        print(f"\r  layer {index + 1}/{total} {name[:40]:<40}", end="" if index + 1 < total else "\n",
              file=sys.stderr)


def run_main_job(args: argparse.Namespace) -> int:
    from ..config.arch import resolve_arch
    from ..errors import Hfp8SimError
    from ..run import check_limits, simulate_network

    load_format_files(args.formats)
    arch = resolve_arch(args.arch)
    network, workload_file, trace = _load_network(args.workload)
    network = _training_network(network, trace, args)
    trace_scheme = trace.scheme_name if trace is not None else None
    if args.compare is not None:
        schemes = args.compare
    elif args.scheme:
        schemes = [args.scheme]
    elif trace_scheme:
        schemes = [trace_scheme]
    elif args.arch is None and args.workload is None:
        schemes = [arch.scheme.name, "fp16"]
    else:
        schemes = [arch.scheme.name]
    schemes = [arch.resolve_scheme(s).name for s in schemes]  # unknown names fail here, before any simulation
    if trace is not None and not args.retime:
        _check_trace_fits(trace, arch, schemes, args.workload)
    if args.format == "scalesim" and arch.mode != "scalesim":
        raise Hfp8SimError(f"--format scalesim needs an arch in SCALE-Sim mode (a SCALE-Sim .cfg, or mode: "
                           f"scalesim); {args.arch or 'the default core'} is in {arch.mode} mode")
    for scheme in schemes:
        try:
            check_limits(arch, network, scheme)
        except Hfp8SimError as exc:
            if len(schemes) == 1:
                raise
            raise Hfp8SimError(f"--compare {','.join(schemes)}: in {scheme}, {exc}") from None  # which one
    out, timelines = _check_outputs(args, schemes)  # and bad output paths fail here too
    if trace is not None:  # said only once every check passed: a refusal stays one line
        print(f"trace {args.workload}: {network.name}, {network.tensors} tensors, scheme {trace_scheme}",
              file=sys.stderr)
    simulated = []
    for scheme in schemes:
        print(f"{network.name} on {arch.name} ({arch.array.rows}x{arch.array.cols} {arch.array.dataflow}, "
              f"{arch.clock_ghz:g} GHz, {arch.mode} mode), scheme {scheme}", file=sys.stderr)
        simulated.append((scheme, simulate_network(arch, network, scheme=scheme, progress=_progress,
                                                   record_events=bool(args.timeline))))
    scalesim = (arch, network) if args.format == "scalesim" else None
    results = _write_results(out, simulated, _run_id(simulated, workload_file), timelines, scalesim)
    _print_report(results, args.layers)
    return 0


def _training_network(network, trace, args: argparse.Namespace):
    """The network to simulate: the workload, at ``--batch`` samples, with its first and last layers in fp16
    (``--first-last-fp16``), as a training step with ``--train``."""
    from ..errors import WorkloadError
    from ..workloads import keep_first_last
    from ..workloads.training_step import derive_training_step, rescale_batch

    if trace is not None and (args.train or args.batch or args.first_last_fp16):
        raise WorkloadError(f"{args.workload}: a trace records the layers it ran; --train, --batch and "
                            "--first-last-fp16 need a workload file (YAML, ONNX or SCALE-Sim CSV)")
    if args.first_last_fp16:
        network = keep_first_last(network, "fp16")
    if args.train:
        return derive_training_step(network, batch=args.batch, optimizer=args.optimizer,
                                    update_rule=args.update_rule)
    if args.optimizer != "momentum" or args.update_rule != "fp32_master":
        raise WorkloadError("--optimizer and --update-rule describe a training step: add --train")
    return rescale_batch(network, args.batch) if args.batch else network


def _check_trace_fits(trace, arch, schemes: list[str], source: str) -> None:
    """A trace runs on the arithmetic and scheme it was made with (``--retime`` lifts this)."""
    from ..errors import TraceError
    from ..traces.timing_view import check_trace_arch

    others = [s for s in schemes if s != trace.scheme_name]
    if others:
        raise TraceError(f"{source}: traced with scheme {trace.scheme_name}, not {', '.join(others)}; trace the "
                         "workload in that scheme, or pass --retime to time its layers in it anyway")
    check_trace_arch(trace, arch, source)


def _load_network(workload: str | None):
    """(network, the file it came from, the Trace when it is one, else None).  The file's kind (YAML, ONNX,
    SCALE-Sim CSV, trace JSON) is told by its content."""
    from ..io.file_kinds import FileKind
    from ..workloads import load_workload_file, workload_file_kind

    path, kind = workload_file_kind(workload or DEFAULT_WORKLOAD)
    if kind == FileKind.TRACE:
        from ..traces.schema import Trace
        from ..traces.timing_view import network_from_trace

        trace = Trace.load(path)
        return network_from_trace(trace), Path(path), trace
    return load_workload_file(path), Path(path), None


def _check_outputs(args: argparse.Namespace, schemes: list[str]) -> tuple[Path, dict[str, Path]]:
    """The output folder and each scheme's timeline file, checked writable before anything is simulated."""
    from ..io.outputs import check_output_dir, check_output_file
    from ..results import is_result_folder

    out = check_output_dir(args.out, "--out", replaceable=is_result_folder)
    timelines = {}
    if args.timeline:
        check_output_file(args.timeline, "--timeline")  # a folder is refused even when names get a suffix
        for scheme in schemes:
            target = Path(args.timeline)
            if len(schemes) > 1:
                target = target.with_name(f"{target.stem}.{scheme}{target.suffix or '.json'}")
            timelines[scheme] = check_output_file(target, "--timeline")
    return out, timelines


def _run_id(simulated, workload_file: Path) -> str:
    import hashlib

    from .. import __version__
    from ..results import run_id

    digest = hashlib.sha256(workload_file.read_bytes()).hexdigest()
    return run_id(__version__, [result.config | {"run_scheme": scheme} for scheme, result in simulated], digest)


def _write_results(out: Path, simulated, run_id: str, timelines: dict[str, Path], scalesim=None):
    """Every scheme's results into a staging folder that replaces ``out`` only when all are written (the
    folder then holds this run alone), with SCALE-Sim's reports beside them when ``scalesim`` is (arch,
    network); then the timelines, each replaced whole."""
    import json

    from ..io.outputs import staged_folder, write_file_atomically
    from ..reports.timeline import chrome_trace
    from ..results import is_result_folder

    results = []
    with staged_folder(out, replaceable=is_result_folder, option="--out") as staging:
        for scheme, result in simulated:
            sub = Path(scheme) if len(simulated) > 1 else Path()
            result.write(staging / sub, run_id=run_id)
            if scalesim is not None:
                _write_scalesim_reports(result, *scalesim, staging / sub, out / sub)
            results.append((scheme, result, out / sub if len(simulated) > 1 else out))
    for scheme, result in simulated:
        if scheme in timelines:
            document = chrome_trace(result)
            document["otherData"]["run_id"] = run_id
            target = write_file_atomically(
                timelines[scheme], lambda path, doc=document: path.write_text(json.dumps(doc) + "\n"))
            print(f"timeline: {target} ({len(result.events)} events)", file=sys.stderr)
    return results


def _write_scalesim_reports(result, arch, network, folder: Path, final: Path) -> None:
    from ..reports.scalesim_reports import scalesim_rows, write_scalesim_reports

    a = arch.array
    write_scalesim_reports(result, a.rows, a.cols, a.dataflow, folder, network)
    rows = scalesim_rows(result, a.rows, a.cols, a.dataflow, network)
    if rows:
        macs, cycles = sum(r.gemm.macs for r in rows), sum(r.cycles for r in rows)
        compute = sum(r.compute[5] * r.cycles for r in rows) / cycles
        overall = macs / (cycles * a.rows * a.cols)
        print(f"SCALE-Sim reports ({len(rows)} rows) -> {final}: overall util {overall:.1%}, "
              f"compute util {compute / 100:.1%} (cycle-weighted)", file=sys.stderr)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1000
    return f"{n:.1f} GB"


def _print_report(results, n_layers: int) -> None:
    """Headline first (the FP8-versus-FP16 comparison when several schemes ran), then the totals, where the
    energy goes, the first layers, and what the columns mean."""
    if len(results) > 1:
        _print_headline(results)
    _print_totals(results)
    if results[0][1].is_training:
        _print_passes(results)
    _print_layers(results[0], n_layers)
    import textwrap

    print("\n" + textwrap.fill(
        "columns: cycles = core clock cycles (a run's layers run one after another); stall = cycles the array "
        "waited for operands from DRAM or the scratchpads (in the totals, as a share of the cycles); util = MACs / "
        "(cycles x peak MACs per cycle); DRAM = bytes read + written off chip; pJ/MAC = energy / MACs; power = "
        "energy / time.  Every layer is in layers.csv, the totals in summary.json of the output folder.",
        width=110, subsequent_indent="  "))


def _print_headline(results) -> None:
    base_name, base_result, _ = results[0]
    base = base_result.summary()
    for scheme, result, _ in results[1:]:
        other = result.summary()
        dram = (other["dram_read_bytes"] + other["dram_write_bytes"]) / (base["dram_read_bytes"] + base["dram_write_bytes"])
        print(f"\n{base['workload']}: {base_name} vs {scheme}: {other['cycles'] / base['cycles']:.2f}x faster "
              f"({base['cycles']:,.0f} vs {other['cycles']:,.0f} cycles), {dram:.2f}x less DRAM traffic, "
              f"{other['energy_total_pj'] / base['energy_total_pj']:.2f}x less energy "
              f"(MAC energy {other['energy_mac_pj'] / base['energy_mac_pj']:.2f}x)")


def _print_totals(results) -> None:
    print("\ntotals:")
    print(f"  {'scheme':<10} {'cycles':>12} {'time':>10} {'TMAC/s':>8} {'util':>6} {'stall':>7} {'DRAM':>10} "
          f"{'energy':>9} {'pJ/MAC':>7} {'TOPS/W':>7} {'power':>7}")
    for scheme, result, folder in results:
        s = result.summary()
        print(f"  {scheme:<10} {s['cycles']:>12.0f} {s['seconds'] * 1e3:>8.3f}ms {s['tera_macs_per_second']:>8.2f} "
              f"{s['utilization']:>6.1%} {s['stall_cycles'] / s['cycles']:>7.1%} "
              f"{_fmt_bytes(s['dram_read_bytes'] + s['dram_write_bytes']):>10} {s['energy_joules'] * 1e3:>7.3f}mJ "
              f"{s['pj_per_mac']:>7.3f} {s['tops_per_watt']:>7.2f} {s['average_power_w']:>6.2f}W   -> {folder}")
    scheme, first, _ = results[0]
    s = first.summary()
    parts = {k[len("energy_"):-len("_pj")]: v for k, v in s.items()
             if k.startswith("energy_") and k.endswith("_pj")
             and k not in ("energy_total_pj", "energy_dynamic_pj", "energy_on_chip_pj")}
    print(f"  energy of {scheme} by component: "
          + ", ".join(f"{name} {value / s['energy_total_pj']:.0%}" for name, value in
                      sorted(parts.items(), key=lambda kv: -kv[1]) if value > 0))
    mapped = [layer.mapping for layer in first.layers if layer.mapping and layer.mapping != "gemm"]
    if mapped:
        print(f"  ({scheme}: grouped convs mapped as "
              + ", ".join(f"{mapped.count(m)} {m}" for m in sorted(set(mapped))) + ")")
    kept = [layer for layer in first.layers if layer.precision and layer.kind == "gemm"]
    if kept:
        names = list(dict.fromkeys(layer.source_layer or layer.name for layer in kept))
        print(f"  ({scheme}: {len(kept)} GEMM rows in {', '.join(sorted({layer.precision for layer in kept}))}, "
              f"every pass of {', '.join(names)}; the precision column of layers.csv)")
    vector = [layer for layer in first.layers if layer.kind == "vector" and not layer.mapping]
    if vector:
        fused = sum(1 for layer in vector if layer.fused and not layer.folded)  # a folded one does no work
        folded = sum(1 for layer in vector if layer.folded)  # no work left: in their conv's weights and bias
        print(f"  ({scheme}: {len(vector) - folded} non-GEMM layers on the vector unit, {fused} fused with "
              f"their GEMM{f', {folded} batch norms folded into their conv' if folded else ''}; "
              f"{s['exposed_vector_cycles'] / s['cycles']:.1%} of the cycles are vector-unit time)")


def _print_passes(results) -> None:
    """A training step's totals split by pass, per scheme: where the step's time, stalls, bytes and energy go."""
    print("\nper pass (training step):")
    print(f"  {'scheme':<10} {'pass':<16} {'cycles':>12} {'share':>6} {'stall':>7} {'GMACs':>9} {'DRAM':>10} "
          f"{'energy':>9}")
    for scheme, result, _ in results:
        total = result.cycles
        for name, row in result.per_pass().items():
            print(f"  {scheme:<10} {name:<16} {row.cycles:>12.0f} {row.cycles / total:>6.1%} "
                  f"{row.stall_cycles / row.cycles if row.cycles else 0.0:>7.1%} {row.macs / 1e9:>9.2f} "
                  f"{_fmt_bytes(row.dram_read_bytes + row.dram_write_bytes):>10} "
                  f"{row.energy.get('energy_total_pj', 0.0) * 1e-9:>7.3f}mJ")


def _print_layers(first_result, n_layers: int) -> None:
    scheme, first, _ = first_result
    gemm_layers = [layer for layer in first.layers if layer.mapping]  # on the array or a conv on the vector unit
    if not n_layers or not gemm_layers:
        return
    print(f"\nper-layer ({scheme}, first {min(n_layers, len(gemm_layers))} of {len(gemm_layers)} GEMM layers; "
          f"--layers N for more):")
    print(f"  {'layer':<28} {'M':>6} {'N':>6} {'K':>6} {'cycles':>10} {'stall':>9} {'util':>6} {'DRAM':>10}  mapping")
    for layer in gemm_layers[:n_layers]:
        print(f"  {layer.name[:28]:<28} {layer.M:>6} {layer.N:>6} {layer.K:>6} {layer.cycles:>10.0f} "
              f"{layer.stall_cycles:>9.0f} {layer.utilization:>6.1%} "
              f"{_fmt_bytes(layer.dram_read_bytes + layer.dram_write_bytes):>10}  {layer.mapping}")
