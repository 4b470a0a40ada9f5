"""``hfp8sim run [ARCH] [WORKLOAD] --scheme S --compare hfp8,fp16 --out DIR``: simulate a network on a core.

With no arguments: the default core (``arch_configs/default.yaml``) on ResNet-50 under its scheme (HFP8), and
the same run in FP16 for comparison.  Writes ``layers.csv`` and ``summary.json`` (with the resolved config
and the version) per scheme into ``--out`` (default ``out/run``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_WORKLOAD = "resnet50"


def register(sub) -> None:
    p = sub.add_parser("run", help="simulate a workload on an arch config (default: ResNet-50 on the default core)")
    p.add_argument("arch", nargs="?", help="arch config file or shipped name (default: the default core)")
    p.add_argument("workload", nargs="?", help=f"workload file or shipped name (default: {DEFAULT_WORKLOAD}): "
                                               "YAML, an ONNX model or a SCALE-Sim topology CSV (conv or GEMM "
                                               "form), told apart by content; or a layer trace (JSON, from "
                                               "`hfp8sim trace`) whose measured zero operands are counted")
    p.add_argument("--scheme", help="precision scheme (default: the arch config's)")
    p.add_argument("--compare", help="comma-separated schemes to run side by side, e.g. hfp8,fp16 "
                                     "(default with no arguments: the arch's scheme and fp16)")
    p.add_argument("--out", default="out/run", help="output folder (default: out/run)")
    p.add_argument("--layers", type=int, default=8, help="per-layer rows to print (default 8; 0 for none)")
    p.add_argument("--timeline", help="write a Chrome-trace / Perfetto JSON of the simulated events to this file "
                                      "(one file per scheme when comparing: NAME.SCHEME.json)")
    p.add_argument("--format", choices=("hfp8sim", "scalesim"), default="hfp8sim",
                   help="scalesim: also write SCALE-Sim v3's COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv and "
                        "DETAILED_ACCESS_REPORT.csv (its columns; accesses in words) into the output folder; needs an "
                        "arch in SCALE-Sim mode, e.g. a SCALE-Sim .cfg")
    p.set_defaults(func=run_main_job)


def _progress(index: int, total: int, name: str) -> None:
    if sys.stderr.isatty():
        print(f"\r  layer {index + 1}/{total} {name[:40]:<40}", end="" if index + 1 < total else "\n",
              file=sys.stderr)


def run_main_job(args: argparse.Namespace) -> int:
    from ..errors import Hfp8SimError
    from ..run import simulate_network
    from ..io.file_kinds import FileKind
    from ..workloads import load_workload_file, workload_file_kind

    from ..config.arch import resolve_arch

    arch = resolve_arch(args.arch)
    trace_scheme = None
    workload = args.workload or DEFAULT_WORKLOAD
    workload_path, workload_kind = workload_file_kind(workload)
    if workload_kind == FileKind.TRACE:
        from ..traces.schema import Trace
        from ..traces.timing_view import network_from_trace

        trace = Trace.load(workload_path)
        network = network_from_trace(trace)
        trace_scheme = trace.scheme_name
        print(f"trace {args.workload}: {network.name}, {network.tensors} tensors, scheme {trace_scheme}",
              file=sys.stderr)
    else:
        network = load_workload_file(workload)  # YAML, ONNX or SCALE-Sim CSV, told apart by content
    if args.compare:
        schemes = [s.strip() for s in args.compare.split(",") if s.strip()]
        if not schemes:
            raise Hfp8SimError("--compare needs at least one scheme name, e.g. hfp8,fp16")
    elif args.scheme:
        schemes = [args.scheme]
    elif trace_scheme:
        schemes = [trace_scheme]
    elif args.arch is None and args.workload is None:
        schemes = [arch.scheme.name, "fp16"]
    else:
        schemes = [arch.scheme.name]
    schemes = [arch.resolve_scheme(s).name for s in schemes]  # unknown names fail here, before any simulation
    if args.format == "scalesim" and arch.mode != "scalesim":
        raise Hfp8SimError(f"--format scalesim needs an arch in SCALE-Sim mode (a SCALE-Sim .cfg, or mode: scalesim); "
                           f"{args.arch or 'the default core'} is in {arch.mode} mode")
    out = Path(args.out)
    results = []
    for scheme in schemes:
        print(f"{network.name} on {arch.name} ({arch.array.rows}x{arch.array.cols} {arch.array.dataflow}, "
              f"{arch.clock_ghz:g} GHz, {arch.mode} mode), scheme {scheme}", file=sys.stderr)
        result = simulate_network(arch, network, scheme=scheme, progress=_progress,
                                  record_events=bool(args.timeline))
        folder = out / scheme if len(schemes) > 1 else out
        result.write(folder)
        if args.format == "scalesim":
            _write_scalesim_reports(result, arch, network, folder)
        if args.timeline:
            from ..reports.timeline import write_chrome_trace

            target = Path(args.timeline)
            if len(schemes) > 1:
                target = target.with_name(f"{target.stem}.{scheme}{target.suffix or '.json'}")
            print(f"timeline: {write_chrome_trace(result, target)} ({len(result.events)} events)", file=sys.stderr)
        results.append((scheme, result, folder))
    _print_report(results, args.layers)
    return 0


def _write_scalesim_reports(result, arch, network, folder: Path) -> None:
    from ..reports.scalesim_reports import scalesim_rows, write_scalesim_reports

    a = arch.array
    write_scalesim_reports(result, a.rows, a.cols, a.dataflow, folder, network)
    rows = scalesim_rows(result, a.rows, a.cols, a.dataflow, network)
    if rows:
        macs, cycles = sum(r.gemm.macs for r in rows), sum(r.cycles for r in rows)
        compute = sum(r.compute[5] * r.cycles for r in rows) / cycles
        print(f"SCALE-Sim reports ({len(rows)} rows) -> {folder}: overall util {macs / (cycles * a.rows * a.cols):.1%}, "
              f"compute util {compute / 100:.1%} (cycle-weighted)", file=sys.stderr)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1000
    return f"{n:.1f} GB"


def _print_report(results, n_layers: int) -> None:
    scheme, first, _ = results[0]
    gemm_layers = [layer for layer in first.layers if layer.kind == "gemm"]
    if n_layers:
        print(f"\nper-layer ({scheme}, first {min(n_layers, len(gemm_layers))} of {len(gemm_layers)} GEMM layers):")
        print(f"  {'layer':<28} {'M':>6} {'N':>6} {'K':>6} {'cycles':>10} {'stall':>9} {'util':>6} {'DRAM':>10}")
        for layer in gemm_layers[:n_layers]:
            print(f"  {layer.name[:28]:<28} {layer.M:>6} {layer.N:>6} {layer.K:>6} {layer.cycles:>10.0f} "
                  f"{layer.stall_cycles:>9.0f} {layer.utilization:>6.1%} "
                  f"{_fmt_bytes(layer.dram_read_bytes + layer.dram_write_bytes):>10}")
    print("\ntotals:")
    header = (f"  {'scheme':<10} {'cycles':>12} {'time':>10} {'TMAC/s':>8} {'util':>6} {'stall':>7} {'DRAM':>10} "
              f"{'energy':>9} {'pJ/MAC':>7} {'TOPS/W':>7} {'power':>7}")
    print(header)
    for scheme, result, folder in results:
        s = result.summary()
        print(f"  {scheme:<10} {s['cycles']:>12.0f} {s['seconds'] * 1e3:>8.3f}ms {s['tera_macs_per_second']:>8.2f} "
              f"{s['utilization']:>6.1%} {s['stall_cycles'] / s['cycles']:>7.1%} "
              f"{_fmt_bytes(s['dram_read_bytes'] + s['dram_write_bytes']):>10} {s['energy_joules'] * 1e3:>7.3f}mJ "
              f"{s['pj_per_mac']:>7.3f} {s['tops_per_watt']:>7.2f} {s['average_power_w']:>6.2f}W   -> {folder}")
    if len(results) > 1:
        base = results[0][1].summary()
        for scheme, result, _ in results[1:]:
            other = result.summary()
            print(f"  {results[0][0]} vs {scheme}: {other['cycles'] / base['cycles']:.2f}x faster, "
                  f"{(other['dram_read_bytes'] + other['dram_write_bytes']) / (base['dram_read_bytes'] + base['dram_write_bytes']):.2f}x "
                  f"less DRAM traffic, {other['energy_total_pj'] / base['energy_total_pj']:.2f}x less energy "
                  f"(MAC energy {other['energy_mac_pj'] / base['energy_mac_pj']:.2f}x)")
    s = first.summary()
    parts = {k[len("energy_"):-len("_pj")]: v for k, v in s.items()
             if k.startswith("energy_") and k.endswith("_pj") and k not in ("energy_total_pj", "energy_dynamic_pj")}
    print(f"  energy of {results[0][0]} by component: "
          + ", ".join(f"{name} {value / s['energy_total_pj']:.0%}" for name, value in
                      sorted(parts.items(), key=lambda kv: -kv[1]) if value > 0))
    vector = [layer for layer in first.layers if layer.kind == "vector"]
    if vector:
        s = first.summary()
        fused = sum(1 for layer in vector if layer.fused)
        print(f"  ({results[0][0]}: {len(vector)} non-GEMM layers on the vector unit, {fused} fused with their GEMM; "
              f"{s['exposed_vector_cycles'] / s['cycles']:.1%} of the cycles are vector-unit time)")
