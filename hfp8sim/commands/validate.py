"""``hfp8sim validate FILE...``: check arch configs, workloads and format libraries without running them."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("validate", help="check arch configs, workloads or format libraries (all errors at once)")
    p.add_argument("files", nargs="+", help="YAML files (kind detected from their top-level keys), ONNX models, "
                                            "SCALE-Sim topology CSVs and configs, layer traces (told apart by "
                                            "content), or shipped names (default, resnet50, tech_7nm, ...)")
    p.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from ..config import load_format_library
    from ..config.arch import parse_arch
    from ..errors import ConfigError
    from ..io import read_yaml
    from ..workloads import parse_workload

    for name in args.files:
        path = _file_or_shipped(name)
        if _validate_by_content(path):
            continue
        data = read_yaml(path)
        if isinstance(data, dict) and "layers" in data:
            network = parse_workload(data, source=str(path))
            print(f"{path}: workload {network.name}: {len(network.layers)} layers, "
                  f"{len(network.gemm_layers())} GEMM layers, {network.macs:,} MACs")
        elif isinstance(data, dict) and "array" in data:
            arch = parse_arch(data, str(path))
            print(f"{path}: arch config {arch.name}: {arch.array.rows}x{arch.array.cols} {arch.array.dataflow}, "
                  f"{arch.clock_ghz:g} GHz, scheme {arch.scheme.name}, {arch.mode} mode")
        elif isinstance(data, dict) and "operating_points" in data:
            from ..config.tech import parse_tech

            tech = parse_tech(data, str(path))
            print(f"{path}: technology table {tech.name}: operating points "
                  f"{', '.join(tech.model.operating_points)}")
        elif isinstance(data, dict) and ({"formats", "schemes"} & set(data)):
            formats, schemes = load_format_library(path)
            print(f"{path}: format library: {len(formats)} formats, {len(schemes)} schemes")
        else:
            raise ConfigError("not an arch config (needs 'array'), a workload (needs 'layers'), a technology "
                              "table (needs 'operating_points') or a format library (needs 'formats' or "
                              "'schemes')", file=str(path))
    return 0


def _file_or_shipped(name: str) -> str:
    """``name`` itself when it is a file, else the shipped arch config, workload, tech table or format library of
    that name (as ``run`` and ``sweep`` take them); a name that is neither is refused listing the kinds."""
    from pathlib import Path

    from ..errors import ConfigError
    from ..io.shipped import ARCH_CONFIGS, FORMAT_LIBRARIES, TECH_TABLES, WORKLOADS

    if Path(name).exists():
        return name
    for kind in (ARCH_CONFIGS, WORKLOADS, TECH_TABLES, FORMAT_LIBRARIES):
        if name in kind.files():
            return str(kind.files()[name])
    raise ConfigError("no such file, and not the name of a shipped arch config, workload, tech table or format "
                      "library", file=name)


def _validate_by_content(path: str) -> bool:
    """Check a file that is not hfp8sim YAML (an ONNX model, a SCALE-Sim topology or config, a trace) with the
    reader of its kind, which reports mistakes as the Python API does; False for YAML (checked by keys)."""
    from ..io.file_kinds import FileKind, detect_file_kind

    kind = detect_file_kind(path)
    if kind in (FileKind.ONNX, FileKind.SCALESIM_CSV):
        from ..workloads import import_onnx, import_scalesim_csv

        network = import_onnx(path) if kind == FileKind.ONNX else import_scalesim_csv(path)
        print(f"{path}: workload {network.name} ({network.source}): {len(network.layers)} layers, "
              f"{len(network.gemm_layers())} GEMM layers, {network.macs:,} MACs")
    elif kind == FileKind.SCALESIM_CFG:
        from ..config.arch import load_arch

        arch = load_arch(path)
        print(f"{path}: SCALE-Sim config as arch config {arch.name}: {arch.array.rows}x{arch.array.cols} "
              f"{arch.array.dataflow}, scheme {arch.scheme.name}, {arch.mode} mode")
    elif kind == FileKind.TRACE:
        from ..traces.schema import Trace

        trace = Trace.load(path)
        print(f"{path}: layer trace of {trace.workload}: {len(trace.layers)} layers, scheme {trace.scheme_name}")
    else:
        return False
    return True
